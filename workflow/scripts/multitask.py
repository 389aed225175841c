# Rules multitask and multitask_direct: train one chunk of trials of the multitask model.
from pathlib import Path

from sim2real_scaling.stages import stage_multitask
from sim2real_scaling.workflow_script import chunk_settings, run

sm = snakemake  # noqa: F821 (injected by Snakemake)
n_index = int(sm.wildcards.n_index) if "n_index" in sm.wildcards.keys() else None


def stage(settings):
    settings, chunk = chunk_settings(settings, sm.params.trials)
    stage_multitask(settings, sm.wildcards.property, chunk, n_index, Path(sm.input.grid).parent,
                    sm.input.descriptors, dict(sm.output.items()))


run(sm, stage)
