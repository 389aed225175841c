# Rules transfer and direct: train one chunk of trials as a vectorised ensemble.
from pathlib import Path

from sim2real_scaling.stages import stage_trials
from sim2real_scaling.workflow_script import run

sm = snakemake  # noqa: F821 (injected by Snakemake)
pretrained = sm.input.get("pretrained")
run(sm, lambda config: stage_trials(config, sm.wildcards.property, int(sm.wildcards.chunk), Path(sm.input.grid).parent,
                                    sm.input.descriptors, dict(sm.output.items()), pretrained))
