# Rule synthesize: write the embedded synthetic benchmark tables.
from sim2real_scaling.stages import stage_synthesize
from sim2real_scaling.workflow_script import run

run(snakemake, stage_synthesize)  # noqa: F821 (snakemake is injected)
