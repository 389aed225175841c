# Rule collect: the study's trials.csv, summary.csv, group/material tables, fits.json and figures/ from the
# per-property analyses.
from sim2real_scaling.stages import stage_collect
from sim2real_scaling.workflow_script import run

sm = snakemake  # noqa: F821 (injected by Snakemake)
names = [str(p) for p in sm.params.properties]
per_property = {name: {key: sm.input[key][i] for key in ("trials", "summary", "groups", "materials", "fits", "figures")}
                for i, name in enumerate(names)}
run(sm, lambda settings: stage_collect(settings, per_property, dict(sm.output.items())))
