# Rule pretrain: pretrain the networks of one property at the n of one training job (its block).
from sim2real_scaling.stages import stage_pretrain
from sim2real_scaling.workflow_script import run

sm = snakemake  # noqa: F821 (injected by Snakemake)
run(sm, lambda settings: stage_pretrain(settings, sm.wildcards.property, sm.params.n_indices,
                                        dict(sm.input.items()), sm.output[0]))
