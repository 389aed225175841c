# Rule prepare: clean the source and target tables of one property, fit its transform and grid.
from pathlib import Path

from sim2real_scaling.stages import stage_prepare
from sim2real_scaling.workflow_script import run

sm = snakemake  # noqa: F821 (injected by Snakemake)
run(sm, lambda settings: stage_prepare(settings, sm.wildcards.property, Path(sm.output.grid).parent,
                                       rejected_log=sm.log.rejected))
