# Rule featurize: descriptors once per distinct molecule of the study.
from sim2real_scaling.stages import stage_featurize
from sim2real_scaling.workflow_script import run

sm = snakemake  # noqa: F821 (injected by Snakemake)
run(sm, lambda settings: stage_featurize(settings, sm.input.tables, sm.output.descriptors, sm.params.study_cache,
                                             sm.output.failed))
