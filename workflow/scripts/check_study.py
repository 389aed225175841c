# Rule check_study: the exit status says whether the study is complete (no diverged trial, no failed fit).
from sim2real_scaling.stages import stage_check_study
from sim2real_scaling.workflow_script import run

sm = snakemake  # noqa: F821 (injected by Snakemake)
run(sm, lambda settings: stage_check_study(settings, dict(sm.input.items()), sm.output[0]))
