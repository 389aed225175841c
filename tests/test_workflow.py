"""The Snakemake workflow: lint, dry-runs of every shipped config, one real end-to-end run."""

import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, run_snakemake, tiny_config

CONFIGS = sorted((ROOT / "config").glob("*.yaml"))


def test_lint_is_clean():
    proc = run_snakemake("--lint", "--nolock", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Lints for" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_dry_run_of_every_config(config):
    proc = run_snakemake("-n", "--nolock", "--configfile", str(config), "--cores", "2")
    assert "job" in proc.stdout.lower()


def test_config_typo_stops_the_workflow_with_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("protocol:\n  trails: 3\n")
    proc = run_snakemake("-n", "--nolock", "--configfile", str(bad), check=False)
    assert proc.returncode != 0
    assert "protocol.trails" in proc.stdout + proc.stderr


def test_end_to_end_tiny_study_follows_the_output_contract(tiny_study: Path):
    trials = pd.read_csv(tiny_study / "trials.csv")
    assert {"property", "method", "n", "m", "trial", "mae"} <= set(trials.columns)
    assert set(trials["method"]) == {"transfer", "direct"}
    assert len(trials) == 12 * 3  # 12 trials at 2 values of n + direct
    assert trials.groupby(["method", "n"])["trial"].nunique().eq(12).all()
    summary = pd.read_csv(tiny_study / "summary.csv")
    assert {"property", "method", "n", "m", "mae_mean", "mae_ci_low", "mae_ci_high", "trials"} <= set(summary.columns)
    assert (summary["mae_ci_low"] <= summary["mae_mean"]).all() and (summary["mae_mean"] <= summary["mae_ci_high"]).all()
    fits = json.loads((tiny_study / "fits.json").read_text())
    law = fits["properties"]["density"]["law_n"]
    assert {"D", "alpha", "C", "status"} <= set(law)
    assert (tiny_study / "report.html").stat().st_size > 1000
    assert "Sim2Real scaling study" in (tiny_study / "report.md").read_text()
    figures = {p.name for p in (tiny_study / "figures").iterdir()}
    assert {"density_scaling.png", "density_scaling.svg"} <= figures
    assert (tiny_study / "run" / "config.resolved.yaml").is_file()
    assert json.loads((tiny_study / "run" / "environment.json").read_text())["packages"]["torch"]


def test_transfer_beats_direct_on_the_default_benchmark(tiny_study: Path):
    summary = pd.read_csv(tiny_study / "summary.csv").set_index(["method", "n"])
    direct = summary.loc[("direct", 0), "mae_mean"]
    best_transfer = summary.loc[("transfer", 600), "mae_mean"]
    assert best_transfer < direct
    fits = json.loads((tiny_study / "fits.json").read_text())
    largest = [c for c in fits["properties"]["density"]["transfer_vs_direct"] if c["n"] == 600][0]
    assert largest["difference"]["transfer_better"]


def test_rerun_does_nothing_when_complete(tiny_study: Path, tmp_path):
    config = tiny_study.parent.parent / "tiny.yaml"
    proc = run_snakemake("-n", "--nolock", "--configfile", str(config), "--cores", "2")
    assert "Nothing to be done" in proc.stdout + proc.stderr
