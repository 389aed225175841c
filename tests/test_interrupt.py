"""Interrupted sweeps lose nothing; failed work is contained and makes the exit status say so.

Real Snakemake runs of a micro study (7 training jobs, seconds each): a reference run, and a run that is
killed mid-sweep with SIGTERM, resumed and killed again with SIGKILL, then resumed to the end. Only the
unfinished jobs run again, no half-written file is ever taken as done, and the final trials.csv, summary
and fits are identical to the reference. A study with a diverged trial still gets its report, and the
workflow's exit status is non-zero with the reason on the last line of the check_study log.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from conftest import ROOT, SNAKEMAKE, run_snakemake
from sim2real_scaling.io import atomic_path, write_csv
from sim2real_scaling.report.content import study_problems
from sim2real_scaling.stages import StudyIncomplete, stage_aggregate, stage_check_study
from sim2real_scaling.data.synthetic import generate_benchmark
from sim2real_scaling.workflow_script import run

STUDY = "micro"
TRAINING = ("pretrain", "transfer", "direct", "simulation")  # rules
TRAINING_LOGS = ("pretrain", "finetune", "direct", "simulation")  # their log folders (by method)


def micro_config(root: Path, inputs: Path) -> Path:
    """The micro study with its outputs under ``root/results``; its input tables are in ``inputs``."""
    config = {
        "study": STUDY, "seed": 11, "results_dir": str(root / "results"), "descriptor": {"set": "rdkit_basic"},
        "properties": {"density": {"unit": "g/cm3", "source": {"path": str(inputs / "simulated.csv")},
                                   "target": {"path": str(inputs / "experimental.csv")},
                                   "transform": ["standardize"], "transform_fit_on": "source"}},
        "grid": {"n": [40, 80, 160]},
        # one job per n (not one for all three), so that a run can be stopped between training jobs
        "protocol": {"trials": 4, "chunk_size": 4, "group_columns": ["polymer_class"], "ensembles_per_job": 1},
        "model": {"hidden": [16], "pretrain": {"epochs": 10, "batch_size": 64},
                  "finetune": {"epochs": 30}, "direct": {"epochs": 30}},
        "analysis": {"bootstrap_resamples": 100, "fit_bootstrap": 0},
    }
    root.mkdir(parents=True, exist_ok=True)
    path = root / "micro.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def command(config: Path, workdir: Path, cores: int, *extra: str) -> list[str]:
    return [*SNAKEMAKE, "--cores", str(cores), "--configfile", str(config), "--directory", str(workdir), *extra]


def snapshot(folder: Path) -> dict[str, int]:
    """path -> mtime (ns) of every file under ``folder`` (hidden temporary files of atomic writes excluded)."""
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")}


def assert_all_complete(results: Path) -> None:
    """Every output file present is whole: it parses (a half-written file would not)."""
    for path in results.rglob("*"):
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.suffix == ".csv":
            pd.read_csv(path)
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".pt":
            torch.load(path, map_location="cpu", weights_only=True)
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                [data[k] for k in data.files]


def training_outputs(results: Path) -> set[str]:
    return {str(p) for p in (results / "models").rglob("*.pt")} | \
        {str(p) for p in (results / "trials").rglob("*.trials.csv")}


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    # its own session: the signal goes to Snakemake and every job it started, as from a scheduler
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], sig: signal.Signals, log: Path,
              timeout: float = 400) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it could be interrupted:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("the run did not reach the point of interruption in time")
        time.sleep(0.05)
    os.killpg(proc.pid, sig)
    proc.wait(timeout=120)


def jobs_of_dry_run(cmd: list[str]) -> list[tuple[str, list[str]]]:
    """(rule, outputs) of every job a dry run of ``cmd`` would run."""
    proc = subprocess.run([*cmd, "-n"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    jobs = []
    for match in re.finditer(r"^(?:local)?rule (\w+):\n((?:    .*\n?)*)", proc.stdout, re.M):
        outputs = re.search(r"^    output: (.*)$", match.group(2), re.M)
        jobs.append((match.group(1), outputs.group(1).split(", ") if outputs else []))
    return jobs


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """The micro study's input tables, read-only, outside every results folder."""
    folder = tmp_path_factory.mktemp("inputs")
    generate_benchmark(seed=5, n_source=160, n_target=40, noise_source=0.01, noise_target=0.015,
                       hidden_strength=0.2, source_path=folder / "simulated.csv",
                       target_path=folder / "experimental.csv")
    for p in folder.iterdir():
        p.chmod(0o444)
    return folder


@pytest.fixture(scope="module")
def reference(tmp_path_factory, inputs) -> Path:
    """An uninterrupted run of the micro study (``--cores 2``); returns its root (config, results, workdir)."""
    root = tmp_path_factory.mktemp("reference")
    config = micro_config(root, inputs)
    before = {p.name: p.read_bytes() for p in inputs.iterdir()}
    run_snakemake(*command(config, root / "wd", 2)[len(SNAKEMAKE):], "--quiet", "rules")
    assert {p.name: p.read_bytes() for p in inputs.iterdir()} == before, "an input table was modified"
    return root


@pytest.mark.slow
def test_outputs_stay_under_results_study_and_logs_study(reference: Path):
    results = reference / "results"
    assert {p.name for p in results.iterdir()} == {STUDY}
    assert {p.name for p in (reference / "wd").iterdir()} <= {"logs", ".snakemake"}
    assert {p.name for p in (reference / "wd" / "logs").iterdir()} == {STUDY}
    assert {p.name for p in reference.iterdir()} == {"micro.yaml", "results", "wd"}
    study = results / STUDY
    assert (study / "complete.json").is_file() and json.loads((study / "complete.json").read_text())["complete"]
    assert_all_complete(study)
    # two studies never share an output: another study name gives disjoint paths
    other = reference / "other.yaml"
    other.write_text((reference / "micro.yaml").read_text().replace(f"study: {STUDY}", "study: other"))
    mine = {str(p) for p in (results / STUDY).rglob("*") if p.is_file()}
    theirs = {o for _, outs in jobs_of_dry_run(command(other, reference / "wd", 1)) for o in outs}
    assert mine and theirs and not mine & theirs
    assert all(o.startswith(str(results / STUDY)) for o in mine)
    assert all(o.startswith(str(results / "other")) for o in theirs)


@pytest.mark.slow
def test_run_records_versions_and_resolved_config(reference: Path):
    run_dir = reference / "results" / STUDY / "run"
    resolved = yaml.safe_load((run_dir / "config.resolved.yaml").read_text())
    assert resolved["seed"] == 11 and resolved["protocol"]["trials"] == 4
    assert resolved["protocol"]["test_fraction"] == 0.2  # defaults are filled in
    env = json.loads((run_dir / "environment.json").read_text())
    for package in ("torch", "numpy", "pandas", "scipy", "rdkit", "snakemake", "sim2real-scaling"):
        assert env["packages"][package], package
    assert env["python"].count(".") == 2


@pytest.mark.slow
def test_sigterm_then_sigkill_then_rerun_loses_nothing(reference: Path, inputs: Path, tmp_path: Path):
    config = micro_config(tmp_path, inputs)
    wd, results = tmp_path / "wd", tmp_path / "results" / STUDY
    logs = wd / "logs" / STUDY

    # 1. SIGTERM while a training job runs (after at least one finished). One chunk per n: each transfer job
    # pretrains first and writes the network before its trial tables, so only the trial tables count as done.
    def training_job_running() -> bool:
        done = {p for p in training_outputs(results) if p.endswith(".trials.csv")}
        if not done:
            return False
        started = [p for rule in TRAINING_LOGS for p in (logs / rule).glob("*.log")] if logs.is_dir() else []
        return len(started) > len(done)

    out1 = tmp_path / "run1.txt"
    proc = start(command(config, wd, 1), out1)  # --cores 1 here, 2 in the reference and below: no difference
    kill_when(proc, training_job_running, signal.SIGTERM, out1)
    assert proc.returncode != 0
    assert not (results / "trials.csv").exists(), "the run was not interrupted mid-sweep"
    assert_all_complete(results)
    finished = snapshot(results)

    # only the unfinished jobs are scheduled again
    jobs = jobs_of_dry_run(command(config, wd, 2))
    planned = [o for _, outs in jobs for o in outs]
    assert planned and not [o for o in planned if Path(o).exists()], "a finished output would be redone"
    assert {"aggregate", "fit", "collect", "report", "check_study"} <= {rule for rule, _ in jobs}
    assert any(rule in TRAINING for rule, _ in jobs)

    # 2. the same command, killed hard (SIGKILL to Snakemake and its jobs) right after one more output appeared
    # (a network whose job goes on to its trials, or a job's trial tables)
    before, before_kill = training_outputs(results), finished
    out2 = tmp_path / "run2.txt"
    proc = start(command(config, wd, 2), out2)
    kill_when(proc, lambda: len(training_outputs(results) - before) >= 1, signal.SIGKILL, out2)
    assert proc.returncode == -signal.SIGKILL
    assert_all_complete(results)
    for path, mtime in finished.items():
        assert Path(path).stat().st_mtime_ns == mtime, f"{path} was redone"

    # 3. after a SIGKILL: --unlock (the lock of the dead run is stale), then the same command. Outputs of a job
    # that was killed before Snakemake recorded it as done are never taken as done: the default profile's
    # rerun-incomplete redoes them, and only them (the outputs of the jobs the killed run had started)
    subprocess.run([*command(config, wd, 1), "--unlock"], cwd=ROOT, check=True, capture_output=True)
    finished = snapshot(results)
    planned = {o for _, outs in jobs_of_dry_run(command(config, wd, 2)) for o in outs}
    incomplete = {path for path in finished if path in planned}
    assert not incomplete & set(before_kill), incomplete  # only what the killed run wrote
    proc = subprocess.run(command(config, wd, 2), cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    for path, mtime in finished.items():
        if path not in incomplete:
            assert Path(path).stat().st_mtime_ns == mtime, f"{path} was redone"

    # 4. the result is the uninterrupted run's, to the bit
    ref = reference / "results" / STUDY
    for name in ("trials.csv", "summary.csv", "group_trials.csv", "fits.json"):
        assert (results / name).read_bytes() == (ref / name).read_bytes(), name
    assert (results / "complete.json").is_file()


@pytest.mark.slow
def test_diverged_trial_is_reported_and_the_exit_status_says_incomplete(reference: Path, tmp_path: Path):
    """A chunk with a diverged trial: the study completes (report written), Snakemake exits non-zero."""
    config = tmp_path / "micro.yaml"
    results_dir = tmp_path / "results"
    config.write_text((reference / "micro.yaml").read_text().replace(str(reference / "results"), str(results_dir)))
    shutil.copytree(reference / "results", results_dir)  # keeps the mtimes: the copy is up to date
    results = results_dir / STUDY
    (results / "complete.json").unlink()
    chunk = results / "trials" / "density" / "direct_c0.trials.csv"
    trials = pd.read_csv(chunk)
    trials.loc[1, ["mae", "train_loss", "status"]] = [float("nan"), float("nan"), "diverged"]
    write_csv(trials, chunk)

    # only mtimes decide (the copy has no Snakemake metadata, and a script edited meanwhile must not redo all)
    proc = run_snakemake(*command(config, tmp_path / "wd", 1, "--rerun-triggers", "mtime")[len(SNAKEMAKE):],
                         check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Error in rule check_study" in out and f"logs/{STUDY}/check_study.log" in out, out[-4000:]
    ran = re.findall(r"^(?:local)?rule (\w+):", out, re.M)
    assert sorted(ran) == ["aggregate", "check_study", "collect", "fit", "report"], ran
    last = (tmp_path / "wd" / "logs" / STUDY / "check_study.log").read_text().strip().splitlines()[-1]
    assert "ERROR" in last and f"study {STUDY} is incomplete" in last
    assert "1 of 20 trials diverged" in last  # 4 trials x (3 n + direct + simulation) and "density direct n=0 m=32: 1" in last
    assert "Traceback" not in last
    summary = pd.read_csv(results / "summary.csv").set_index("method")
    assert summary.loc["direct", "failed"] == 1 and summary.loc["direct", "trials"] == 3
    report = (results / "report.md").read_text()
    assert "1 diverged" in report
    top = report.split("\n## ", 1)[0]  # said at the top, not only by the exit status
    assert "This study is incomplete" in top and "1 of 20 trials diverged" in top
    assert (results / "fits.json").is_file() and not (results / "complete.json").exists()


# ---- the same at the level of the stages (fast) -------------------------------------------------------


def _trials(statuses: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"property": "p", "method": "transfer", "n": 100, "m": 20, "trial": range(len(statuses)),
                         "mae": [np.nan if s != "ok" else 0.1 for s in statuses], "train_loss": 0.01,
                         "status": statuses})


def test_study_problems_name_diverged_trials_and_failed_fits_but_not_small_grids():
    fits = {"properties": {"p": {"law_n": {"status": "failed", "message": "no start converged"},
                                 "law_m": {"status": "too_few_points", "message": "need at least 3"}}}}
    problems, notes = study_problems(_trials(["ok", "diverged", "ok"]), fits)
    assert len(problems) == 2 and len(notes) == 1
    assert "1 of 3 trials diverged" in problems[0] and "p transfer n=100 m=20: 1" in problems[0]
    assert "the fit of R(n) for p" in problems[1] and "no start converged" in problems[1]
    assert "R(m)" in notes[0]
    assert study_problems(_trials(["ok"] * 3), {"properties": {"p": {"law_n": {"status": "ok"}}}}) == ([], [])


def test_check_study_writes_complete_json_or_exits_1_with_one_line(tmp_path, monkeypatch):
    trials, fits = tmp_path / "trials.csv", tmp_path / "fits.json"
    fits.write_text(json.dumps({"properties": {"p": {"law_n": {"status": "ok"}}}}))
    config = {"study": "s"}
    write_csv(_trials(["ok", "ok"]), trials)
    stage_check_study(config, {"trials": trials, "fits": fits}, tmp_path / "complete.json")
    assert json.loads((tmp_path / "complete.json").read_text())["complete"] is True

    write_csv(_trials(["ok", "diverged"]), trials)
    with pytest.raises(StudyIncomplete, match="study s is incomplete: 1 of 2 trials diverged"):
        stage_check_study(config, {"trials": trials, "fits": fits}, tmp_path / "again.json")
    assert not (tmp_path / "again.json").exists()

    log_file = tmp_path / "check.log"

    class FakeSnakemake:  # what workflow_script.run reads: the rule's params are its config slices
        log = [str(log_file)]
        threads = 1
        rule = "check_study"
        params = config
        wildcards = {}
    root = logging.getLogger()
    handlers = root.handlers[:]
    try:
        with pytest.raises(SystemExit) as info:
            run(FakeSnakemake, lambda cfg: stage_check_study(cfg, {"trials": trials, "fits": fits}, tmp_path / "c.json"))
    finally:
        root.handlers[:] = handlers
    assert info.value.code == 1
    lines = log_file.read_text().strip().splitlines()
    assert len(lines) == 1 and "ERROR study s is incomplete" in lines[0]


@pytest.mark.slow
def test_diverging_training_is_recorded_not_raised(reference: Path, tmp_path: Path):
    """A NaN loss gives status 'diverged' and NaN MAE (the job does not fail); aggregation counts it in
    summary.failed. Direct learning of the micro study at a learning rate of 1e10, fixed training length."""
    from sim2real_scaling.config import validate_config
    from sim2real_scaling.stages import stage_train

    config = validate_config(yaml.safe_load((reference / "micro.yaml").read_text()))
    config["model"]["direct"]["lr"] = 1e10
    config["model"]["selection"]["scheme"] = "fixed"  # no selection that could keep an untrained network
    root = reference / "results" / STUDY
    inputs = {"source": root / "prepared" / "density" / "source.csv",
              "target": root / "prepared" / "density" / "target.csv",
              "descriptors": root / "features" / "descriptors.npz",
              "design": root / "prepared" / "density" / "design.json"}
    paths = {kind: tmp_path / f"direct_c0.{kind}.csv" for kind in ("trials", "groups", "materials")}
    stage_train({**config, "trials": [0, 1, 2]}, "density", "direct", 0, None, inputs, paths)
    trials = pd.read_csv(paths["trials"])
    assert (trials["status"] == "diverged").all() and trials["mae"].isna().all()
    outputs = {k: tmp_path / f"{k}.csv" for k in ("trials", "summary", "groups", "materials")}
    stage_aggregate({"seed": 1, "analysis": {"confidence": 0.9, "bootstrap_resamples": 100},
                     "protocol": {"trials": 3}}, [paths["trials"]], [paths["groups"]], [paths["materials"]], outputs)
    summary = pd.read_csv(outputs["summary"])
    assert summary.loc[0, "failed"] == 3 and summary.loc[0, "trials"] == 0 and np.isnan(summary.loc[0, "mae_mean"])


# ---- atomic writes --------------------------------------------------------------------------------------


def test_a_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path):
    target = tmp_path / "out" / "table.csv"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert not target.exists() and not list(target.parent.iterdir())
    write_csv(pd.DataFrame({"a": [1]}), target)
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "a\n1\n" and [p.name for p in target.parent.iterdir()] == ["table.csv"]


def test_results_are_readable_by_others_as_the_umask_allows(tmp_path):
    """Atomic writes go through a temporary file (owner-only by default): the result still gets the mode of
    a plain write, so collaborators on a shared file system can read it."""
    before = os.umask(0o022)
    try:
        write_csv(pd.DataFrame({"a": [1]}), tmp_path / "shared.csv")
        os.umask(0o077)
        write_csv(pd.DataFrame({"a": [1]}), tmp_path / "private.csv")
    finally:
        os.umask(before)
    assert stat.S_IMODE((tmp_path / "shared.csv").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "private.csv").stat().st_mode) == 0o600


def test_a_killed_writer_never_leaves_a_partial_file(tmp_path):
    """SIGKILL in the middle of a large write: the target is absent or whole, never truncated."""
    target = tmp_path / "big.csv"
    code = ("import sys, numpy as np, pandas as pd\n"
            "from sim2real_scaling.io import write_csv\n"
            "frame = pd.DataFrame(np.arange(4_000_000, dtype=float).reshape(-1, 4))\n"
            "print('writing', flush=True)\n"
            f"write_csv(frame, {str(target)!r})\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".big.csv.*.tmp")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    assert not target.exists() or len(pd.read_csv(target)) == 1_000_000
    assert list(tmp_path.glob(".big.csv.*.tmp")), "the kill was meant to land during the write"
