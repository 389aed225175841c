"""The Snakemake workflow: lint and format, how configs combine, dry-runs of every shipped study, one real
end-to-end run."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT, run_snakemake, tiny_config

BASE_CONFIG = ROOT / "config" / "config.yaml"  # what every study starts from (the Snakefile's configfile)
STUDIES = sorted(p for p in (ROOT / "config").glob("*.yaml") if p != BASE_CONFIG)


@pytest.mark.parametrize("study", [None, ROOT / "config" / "chi.yaml"], ids=["default", "chi"])
def test_lint_is_clean(study):
    proc = run_snakemake("--lint", "--nolock", *(["--configfile", str(study)] if study else []), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Lints for" not in proc.stdout + proc.stderr


def test_rule_files_are_snakefmt_formatted():
    proc = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "--diff", "workflow/"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.parametrize("config", STUDIES, ids=lambda p: p.name)
def test_dry_run_of_every_study(config):
    proc = run_snakemake("-n", "--nolock", "--configfile", str(config), "--cores", "2")
    assert "job" in proc.stdout.lower()


def _job_counts(out: str) -> dict[str, int]:
    """rule -> jobs, from the "Job stats" table of a dry run."""
    table = out.split("Job stats:", 1)[1].split("total", 1)[0] if "Job stats:" in out else ""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_plain_snakemake_runs_the_embedded_default(tmp_path):
    """No arguments: the default profile names config/default.yaml, laid over config/config.yaml."""
    proc = run_snakemake("-n", "--nolock", "--config", f"results_dir={tmp_path}")
    jobs = _job_counts(proc.stdout)
    assert jobs["prepare"] == 1 and not [rule for rule in jobs if rule.startswith("fetch")], jobs
    assert f"{tmp_path}/default/prepared/density/grid.json" in proc.stdout  # study `default`, property density


def test_a_study_config_inherits_settings_but_no_study_from_the_base_config(tmp_path):
    """Snakemake's --configfile semantics: the study is laid over config/config.yaml key by key, which holds no
    study, so nothing of the embedded default (its property density, its synthetic tables) leaks in."""
    base = yaml.safe_load(BASE_CONFIG.read_text())
    assert not {"study", "properties", "synthetic"} & set(base), base
    proc = run_snakemake("-n", "--nolock", "--configfile", str(ROOT / "config" / "chi.yaml"),
                         "--config", f"results_dir={tmp_path}")
    jobs = _job_counts(proc.stdout)
    assert "synthesize" not in jobs and jobs["prepare"] == 1, jobs
    assert "density" not in proc.stdout and f"{tmp_path}/chi/prepared/chi/grid.json" in proc.stdout


def test_no_study_says_how_to_give_one():
    proc = run_snakemake("-n", "--nolock", "--workflow-profile", "none", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "invalid config" in out and "'study' is a required property" in out and "--configfile" in out


def _planned_jobs(out: str) -> list[dict]:
    """rule, output, wildcards and priority of every job of a dry run."""
    jobs = []
    for block in re.split(r"^\[.*\]$", out, flags=re.M):
        rule = re.search(r"^(?:local)?rule (\w+):", block, re.M)
        if rule:
            field = lambda key: (m.group(1) if (m := re.search(rf"^\s+{key}: (.*)$", block, re.M)) else "")  # noqa: E731
            jobs.append({"rule": rule.group(1), "output": field("output"), "wildcards": field("wildcards"),
                         "priority": float(field("priority") or 0)})
    return jobs


def test_one_chunk_per_block_pretrains_inside_the_transfer_job_longest_jobs_first(tmp_path):
    # the polymer study at the paper's protocol: 500 trials in one chunk, density on a 4-value m grid, the
    # others on one m: 4 (n, m) ensembles per job = 1 n per density job, 4 n per job of the others
    # (shared pretraining draws, protocol.pretrain_replicates: 4, so that the job saves the networks it pretrained)
    proc = run_snakemake("-n", "--nolock", "--configfile", str(ROOT / "config" / "polymer.yaml"), "--cores", "2",
                         "--config", f"results_dir={tmp_path}", "protocol={pretrain_replicates: 4}")
    jobs = _planned_jobs(proc.stdout)
    rules = [j["rule"] for j in jobs]
    assert "pretrain" not in rules and rules.count("direct") == 3
    transfer = [j for j in jobs if j["rule"] == "transfer"]

    def block(job):
        return re.search(r"block=([\d-]+)", job["wildcards"]).group(1)

    blocks = {prop: sorted((block(j) for j in transfer if f"property={prop}" in j["wildcards"]),
                           key=lambda b: int(b.split("-")[0])) for prop in ("density", "refractive_index", "cp")}
    assert blocks == {"density": [str(i) for i in range(10)], "refractive_index": ["0-3", "4-6", "7-9"],
                      "cp": ["0-3", "4-6", "7-9"]}
    assert rules.count("aggregate") == rules.count("fit") == 3 and rules.count("collect") == 1
    for job in transfer:  # files named by the block's n indices; the job saves the networks it pretrained
        assert f"finetune_n{block(job)}_c0.trials.csv" in job["output"]
        assert f"/models/{job['wildcards'].split('property=')[1].split(',')[0]}/finetune_n{block(job)}.pt" in job["output"]
    # longest first: 4-ensemble jobs (density's, the others' 4-n blocks) before 3-ensemble ones, larger n
    # first among equals, the analysis of a finished property before any waiting training job
    priority = {(j["rule"], j["wildcards"]): j["priority"] for j in jobs if j["rule"] in ("transfer", "direct")}
    cp = {block(j): j["priority"] for j in transfer if "property=cp" in j["wildcards"]}
    assert cp["0-3"] > cp["7-9"] > cp["4-6"]  # 4 n (0-3); 3 n ending at n 9; 3 n ending at n 6
    density = [j["priority"] for j in transfer if "property=density" in j["wildcards"]]
    assert min(density) > cp["7-9"] and max(density) > cp["0-3"]
    analysis = [j["priority"] for j in jobs if j["rule"] in ("aggregate", "fit")]
    assert min(analysis) > max(priority.values())


def test_several_chunks_per_block_share_one_pretrain_job(tmp_path):
    config = tiny_config(tmp_path, protocol={"trials": 12, "chunk_size": 6, "pretrain_replicates": 4})  # shared draws
    proc = run_snakemake("-n", "--nolock", "--configfile", str(config), "--cores", "2")
    jobs = _planned_jobs(proc.stdout)
    pretrain = [j for j in jobs if j["rule"] == "pretrain"]
    transfer = [j for j in jobs if j["rule"] == "transfer"]
    assert pretrain and len(transfer) == 2 * len(pretrain)
    assert all(".pt" not in j["output"] for j in transfer)
    assert all(j["priority"] > max(t["priority"] for t in transfer) for j in pretrain)


def test_config_typo_stops_the_workflow_with_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("protocol:\n  trails: 3\n")
    proc = run_snakemake("-n", "--nolock", "--configfile", str(bad), check=False)
    assert proc.returncode != 0
    assert "protocol.trails" in proc.stdout + proc.stderr


def test_end_to_end_tiny_study_follows_the_output_contract(tiny_study: Path):
    trials = pd.read_csv(tiny_study / "trials.csv")
    assert {"property", "method", "n", "m", "trial", "mae"} <= set(trials.columns)
    # method = strategy name: the transfer method (finetune) and the references direct and simulation
    assert set(trials["method"]) == {"finetune", "direct", "simulation"}
    assert len(trials) == 12 * 4  # 12 trials at 2 values of n + direct + simulation
    assert trials.groupby(["method", "n"])["trial"].nunique().eq(12).all()
    summary = pd.read_csv(tiny_study / "summary.csv")
    assert {"property", "method", "n", "m", "mae_mean", "mae_ci_low", "mae_ci_high", "trials"} <= set(summary.columns)
    measured = summary.dropna(subset=["mae_mean"])  # the simulation reference needs molecules with both values
    assert set(measured["method"]) >= {"finetune", "direct"}
    assert (measured["mae_ci_low"] <= measured["mae_mean"]).all() and (measured["mae_mean"] <= measured["mae_ci_high"]).all()
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
    best_transfer = summary.loc[("finetune", 600), "mae_mean"]
    assert best_transfer < direct
    fits = json.loads((tiny_study / "fits.json").read_text())
    largest = [c for c in fits["properties"]["density"]["transfer_vs_direct"] if c["n"] == 600][0]
    assert largest["difference"]["transfer_better"]


def test_rerun_does_nothing_when_complete(tiny_study: Path, tmp_path):
    config = tiny_study.parent.parent / "tiny.yaml"
    proc = run_snakemake("-n", "--nolock", "--configfile", str(config), "--cores", "2")
    assert "Nothing to be done" in proc.stdout + proc.stderr
