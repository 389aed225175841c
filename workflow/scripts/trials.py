# Rules transfer and direct: train one chunk of trials as a vectorised ensemble, at each n of the job's block
# in turn (transfer) or once (direct). A transfer job with the output "pretrained" pretrains its networks
# first; one with the input "pretrained" loads them. The stage gets the rule's config slices (params).
from pathlib import Path

from sim2real_scaling.stages import stage_trials
from sim2real_scaling.workflow_script import chunk_settings, run

sm = snakemake  # noqa: F821 (injected by Snakemake)
outputs = {k: v for k, v in sm.output.items() if k != "pretrained"}


def stage(settings):
    settings, chunk = chunk_settings(settings, sm.params.trials)
    stage_trials(settings, sm.wildcards.property, chunk, Path(sm.input.grid).parent, sm.input.descriptors,
                 outputs, n_indices=sm.params.get("n_indices"), pretrained=sm.input.get("pretrained"),
                 pretrain_output=sm.output.get("pretrained"))


run(sm, stage)
