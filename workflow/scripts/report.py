# Rule report: the report page (Markdown and HTML) with the figures beside it.
from sim2real_scaling.stages import stage_report
from sim2real_scaling.workflow_script import run

sm = snakemake  # noqa: F821 (injected by Snakemake)
run(sm, lambda settings: stage_report(settings, dict(sm.input.items()), dict(sm.output.items())))
