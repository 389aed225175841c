# Rules multitask and multitask_direct: train one chunk of trials of the multitask model.
from pathlib import Path

from sim2real_scaling.stages import stage_multitask
from sim2real_scaling.workflow_script import run

sm = snakemake  # noqa: F821 (injected by Snakemake)
n_index = int(sm.wildcards.n_index) if "n_index" in sm.wildcards.keys() else None
run(sm, lambda config: stage_multitask(config, sm.wildcards.property, int(sm.wildcards.chunk), n_index,
                                       Path(sm.input.grid).parent, sm.input.descriptors, dict(sm.output.items())))
