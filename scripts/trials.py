# Rules transfer and direct: train one chunk of trials as a vectorised ensemble (a transfer job with the
# output "pretrained" pretrains its network first; one with the input "pretrained" loads it).
from pathlib import Path

from sim2real_scaling.stages import stage_trials
from sim2real_scaling.workflow_script import run

sm = snakemake  # noqa: F821 (injected by Snakemake)
pretrained = sm.input.get("pretrained")
pretrain_output = sm.output.get("pretrained")
n_index = int(sm.wildcards.n_index) if "n_index" in sm.wildcards.keys() else None
outputs = {k: v for k, v in sm.output.items() if k != "pretrained"}
chunk = int(sm.wildcards.get("chunk", 0))  # a transfer job that pretrains has the one chunk 0
run(sm, lambda config: stage_trials(config, sm.wildcards.property, chunk, Path(sm.input.grid).parent,
                                    sm.input.descriptors, outputs, pretrained,
                                    pretrain=(n_index, pretrain_output) if pretrain_output else None))
