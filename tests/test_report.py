"""Snakemake's native report is the study's report: `snakemake --report report.zip` after a run holds, for every
property, its scaling figure and its summary table (with their captions), its fits, and the study's page."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, run_snakemake

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def archive(tiny_study: Path, tmp_path_factory) -> tuple[zipfile.ZipFile, dict]:
    config = tiny_study.parent.parent / "tiny.yaml"
    target = tmp_path_factory.mktemp("report") / "report.zip"
    run_snakemake("--configfile", str(config), "--report", str(target))
    return zipfile.ZipFile(target), yaml.safe_load(config.read_text())


def test_the_archive_holds_every_propertys_scaling_figure_and_summary_table(archive):
    zf, config = archive
    names = zf.namelist()
    page = zf.read("report/report.html").decode()  # the report's own page: categories, captions, labels
    for prop in config["properties"]:
        assert any(n.endswith(f"/{prop}_scaling.png") for n in names), names
        assert f"Scaling curve of <strong>{prop}</strong>" in page  # the figure's caption (workflow/report)
        assert f"Mean test MAE of <strong>{prop}</strong>" in page  # the summary table's caption
    summaries = [n for n in names if n.endswith("/summary.csv")]
    assert len(summaries) == len(config["properties"])
    header = zf.read(summaries[0]).decode().splitlines()[0].split(",")
    assert {"method", "n", "m", "mae_mean", "mae_ci_low", "mae_ci_high"} <= set(header)


def test_the_archive_carries_the_study_page_and_the_workflow_description(archive):
    zf, config = archive
    names = zf.namelist()
    assert any(n.endswith("/report.html") and "/data/raw/" in n for n in names), names  # the study page
    page = zf.read("report/report.html").decode()
    assert f"Sim2Real scaling study <strong>{config['study']}</strong>" in page  # workflow/report/workflow.rst
    assert "fits (every fitted law, unrounded)" in page


def test_every_report_caption_exists():
    rule_files = "".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    for caption in ("summary.rst", "fits.rst", "figure.rst", "study.rst", "wiedemann_franz.rst"):
        assert f'"../report/{caption}"' in rule_files, caption
        assert (ROOT / "workflow" / "report" / caption).is_file(), caption
