# Rules transfer, direct and simulation: one chunk of trials (params.trials) of one method (params.method), at each
# n of the job's block (a transfer method) or once (a reference). A job with the output "pretrained" pretrains its
# networks first and saves them; one with the input "pretrained" loads them.
from sim2real_scaling.stages.train import n_indices_of, stage_train
from sim2real_scaling.workflow_script import run

sm = snakemake  # noqa: F821 (injected by Snakemake)
slices = {k: v for k, v in sm.params.items() if k not in ("method", "n_indices")}
block = sm.wildcards.get("block")
run(sm, lambda _: stage_train(slices, sm.wildcards.property, sm.params.method, int(sm.wildcards.get("chunk", 0)),
                              n_indices_of(block), dict(sm.input.items()), dict(sm.output.items())))
