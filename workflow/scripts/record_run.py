# Rule record_run: the resolved config (its param: the record of the run) and library versions.
from sim2real_scaling.stages import stage_record_run
from sim2real_scaling.workflow_script import run

sm = snakemake  # noqa: F821 (injected by Snakemake)
run(sm, lambda settings: stage_record_run(sm.params.config, sm.output.config, sm.output.environment))
