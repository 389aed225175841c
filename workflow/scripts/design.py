# Rule design: the usable rows, n and m grids and QC flags of one property (design.json, qc.csv).
from sim2real_scaling.stages.train import stage_design
from sim2real_scaling.workflow_script import run

sm = snakemake  # noqa: F821 (injected by Snakemake)
slices = dict(sm.params.items())
run(sm, lambda _: stage_design(slices, sm.wildcards.property, dict(sm.input.items()), dict(sm.output.items())))
