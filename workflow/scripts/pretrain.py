# Rule pretrain: pretrain the network(s) of one property at the n of one training job (its block).
from pathlib import Path

from sim2real_scaling.stages import stage_pretrain
from sim2real_scaling.workflow_script import run

sm = snakemake  # noqa: F821 (injected by Snakemake)
run(sm, lambda settings: stage_pretrain(settings, sm.wildcards.property, sm.params.n_indices,
                                        Path(sm.input.grid).parent, sm.input.descriptors, sm.output[0]))
