# Rules transfer and direct: train one chunk of trials as a vectorised ensemble, at each n of the job's block
# in turn (transfer) or once (direct). A transfer job with the output "pretrained" pretrains its networks
# first; one with the input "pretrained" loads them.
from pathlib import Path

from sim2real_scaling.stages import stage_trials
from sim2real_scaling.workflow_script import run

sm = snakemake  # noqa: F821 (injected by Snakemake)
chunk = int(sm.wildcards.get("chunk", 0))  # a transfer job that pretrains has the one chunk 0
outputs = {k: v for k, v in sm.output.items() if k != "pretrained"}
run(sm, lambda config: stage_trials(config, sm.wildcards.property, chunk, Path(sm.input.grid).parent,
                                    sm.input.descriptors, outputs, n_indices=sm.params.get("n_indices"),
                                    pretrained=sm.input.get("pretrained"),
                                    pretrain_output=sm.output.get("pretrained")))
