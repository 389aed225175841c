# Rule wiedemann_franz (case study 3): WF classes, per-class comparison, per-compound scaling, figures.
from sim2real_scaling.studies.wiedemann_franz import stage_wiedemann_franz
from sim2real_scaling.workflow_script import run

sm = snakemake  # noqa: F821 (injected by Snakemake)
run(sm, lambda settings: stage_wiedemann_franz(settings, {"targets": list(sm.input.targets), **{
    k: sm.input[k] for k in ("summary", "groups", "materials", "fits")}}, dict(sm.output.items())))
