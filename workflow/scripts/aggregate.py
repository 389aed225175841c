# Rule aggregate: the chunk tables of one property -> trials.csv, summary.csv (bootstrap CIs), group and material tables.
from sim2real_scaling.stages import stage_aggregate
from sim2real_scaling.workflow_script import run

sm = snakemake  # noqa: F821 (injected by Snakemake)
run(sm, lambda settings: stage_aggregate(settings, sm.input.trials, sm.input.groups, sm.input.materials,
                                           dict(sm.output.items()), design=sm.input.design))
