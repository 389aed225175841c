# Rule fit: the scaling laws of one property (its fits.json) and its figures.
from sim2real_scaling.stages import stage_analyse
from sim2real_scaling.workflow_script import run

sm = snakemake  # noqa: F821 (injected by Snakemake)
run(sm, lambda settings: stage_analyse(settings, dict(sm.input.items()), sm.output.fits, sm.output.figures,
                                       properties=[sm.wildcards.property]))
