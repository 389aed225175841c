# Rule record_run: the resolved config and library versions next to the results.
from sim2real_scaling.stages import stage_record_run
from sim2real_scaling.workflow_script import run

sm = snakemake  # noqa: F821 (injected by Snakemake)
run(sm, lambda config: stage_record_run(config, sm.output.config, sm.output.environment))
