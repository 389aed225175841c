"""The SLURM profile, tested for real.

A one-node SLURM cluster is started on this machine (tests/slurm/start.sh; one partition, two fake
GPUs, no accounting database) and a tiny study (tests/slurm/tiny.yaml) runs through
``snakemake --workflow-profile`` with workflow/profiles/slurm/config.yaml plus the test's changes to it
(tests/slurm/profile.yaml: partition, node size, squeue for status). The same study runs locally
at the same time; the trial MAEs of the two runs must be identical. Every daemon the test started
is stopped by its pid at the end (tests/slurm/stop.sh).

It needs root and SLURM + munge (``bash tests/slurm/install.sh`` installs them with apt-get). Where
the machine cannot run it (not root; no SLURM and no apt-get to install it) it is skipped with the
reason printed (pytest -ra); on CI (CI=true) it never skips for a reason that a root machine with
apt-get can fix.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "tests" / "slurm"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
PARTITION = "debug"  # the test cluster's partition (tests/slurm/profile.yaml names it too)
TOOLS = ["slurmctld", "slurmd", "munged", "sbatch", "squeue", "sinfo", "scontrol", "srun"]
STUDY_ARGS = ["--snakefile", str(ROOT / "workflow" / "Snakefile"),
              "--configfile", str(HERE / "tiny.yaml")]
TRIALS = "results/slurm_tiny/trials.csv"
THREADS = ["featurize=1", "pretrain=1", "transfer=1", "direct=1"]  # as tests/slurm/profile.yaml sets them

pytestmark = pytest.mark.slurm


def _load_submissions():
    spec = importlib.util.spec_from_file_location("slurm_submissions", HERE / "submissions.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


submissions = _load_submissions()


def _which(tool: str) -> str | None:
    return shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def _missing_tools() -> list[str]:
    return [tool for tool in TOOLS if _which(tool) is None]


def _cannot_run() -> str | None:
    """Why this machine cannot run a SLURM cluster (None: it can); installs SLURM where it is missing."""
    if os.name != "posix" or os.geteuid() != 0:
        return "the SLURM test needs root (slurmd and munged run as root) -- run pytest as root"
    if _missing_tools():
        if _which("apt-get") is None:
            return f"SLURM is not installed ({', '.join(_missing_tools())} missing) and there is no apt-get to install it"
        proc = subprocess.run(["bash", str(HERE / "install.sh")], capture_output=True, text=True, timeout=900)
        if proc.returncode != 0 or _missing_tools():
            return f"tests/slurm/install.sh could not install SLURM:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    conf = Path("/etc/slurm/slurm.conf")
    if conf.is_symlink() and (Path(os.readlink(conf)).parent / "started.pids").exists():
        # left behind by an interrupted run of this test: stop what it recorded, remove its link
        subprocess.run(["bash", str(HERE / "stop.sh"), str(Path(os.readlink(conf)).parent)], timeout=120)
    if conf.exists() or conf.is_symlink():
        return f"{conf} exists: this machine has a SLURM set-up of its own, which the test leaves alone"
    return None


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A running one-node cluster; yields its state folder. Stops every daemon it started."""
    reason = _cannot_run()
    if reason:
        if os.environ.get("CI", "").lower() == "true" and os.geteuid() == 0 and _which("apt-get"):
            pytest.fail(f"on CI as root with apt-get the SLURM test must run, but: {reason}")
        print(f"SLURM test skipped: {reason}", file=sys.stderr)
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("slurm-cluster")
    try:
        proc = subprocess.run(["bash", str(HERE / "start.sh"), str(state), PARTITION],
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            pytest.fail(f"tests/slurm/start.sh failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        yield state
    finally:
        stop = subprocess.run(["bash", str(HERE / "stop.sh"), str(state)], capture_output=True, text=True, timeout=120)
        sys.stderr.write(stop.stdout + stop.stderr)


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for key, value in update.items():
        out[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def _test_profile(folder: Path) -> Path:
    """workflow/profiles/slurm/config.yaml with tests/slurm/profile.yaml merged in, written to ``folder``."""
    base = yaml.safe_load((ROOT / "workflow" / "profiles" / "slurm" / "config.yaml").read_text())
    override = yaml.safe_load((HERE / "profile.yaml").read_text())
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(_merge(base, override), sort_keys=False))
    return folder


def _slurm_jobs() -> list[dict[str, str]]:
    """Every job the test cluster knows (finished ones stay visible for MinJobAge = 300 s)."""
    out = subprocess.run(["scontrol", "show", "job", "--oneliner"], capture_output=True, text=True, check=True).stdout
    jobs = []
    for line in out.splitlines():
        if line.strip() and not line.startswith("No jobs"):
            jobs.append(dict(re.findall(r"(\w+)=(\S*)", line)))
    return jobs


def _show(text: str, capsys: pytest.CaptureFixture) -> None:
    with capsys.disabled():
        print("\n" + text)


def test_tiny_study_on_slurm_equals_local_run(slurm_cluster: Path, tmp_path: Path, capsys) -> None:
    profile = _test_profile(tmp_path / "profile")
    slurm_dir, local_dir, dry_dir = tmp_path / "slurm", tmp_path / "local", tmp_path / "dry"
    for folder in (slurm_dir, local_dir, dry_dir):
        folder.mkdir()

    start = time.monotonic()
    slurm_log = tmp_path / "slurm-run.log"
    with slurm_log.open("w") as log:
        slurm_run = subprocess.Popen([*SNAKEMAKE, "--workflow-profile", str(profile), "--directory", str(slurm_dir), *STUDY_ARGS],
                                     stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            # meanwhile: the submissions a dry run predicts (same study, an empty working directory) ...
            expected = submissions.count(
                submissions.dry_run("--directory", str(dry_dir), *STUDY_ARGS[2:], profile=profile),
                *submissions.profile_settings(profile),
            )
            # ... and the local reference run (same study, same threads per job: 1)
            local = subprocess.run([*SNAKEMAKE, "--cores", "2", "--directory", str(local_dir), *STUDY_ARGS,
                                    "--set-threads", *THREADS, "--", TRIALS],
                                   capture_output=True, text=True, cwd=ROOT, timeout=600)
            assert local.returncode == 0, f"local run failed:\n{local.stdout[-3000:]}\n{local.stderr[-5000:]}"
            slurm_run.wait(timeout=600)
        finally:
            if slurm_run.poll() is None:  # a failure above: Ctrl-C makes Snakemake scancel its jobs
                slurm_run.send_signal(signal.SIGINT)
                try:
                    slurm_run.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    slurm_run.kill()
    elapsed = time.monotonic() - start
    text = slurm_log.read_text()
    assert slurm_run.returncode == 0, (
        f"snakemake --workflow-profile (SLURM) failed ({slurm_run.returncode}):\n{text[-8000:]}\n"
        f"slurmctld.log:\n{(slurm_cluster / 'slurmctld.log').read_text()[-3000:]}")

    # jobs were submitted to SLURM, as many as the dry run predicts, and all completed
    submitted = sorted({int(i) for i in re.findall(r"(?:submitted with SLURM jobid|and SLURM job ID) (\d+)", text)})
    jobs = {j["JobId"]: j for j in _slurm_jobs()}
    assert len(submitted) == expected.total, f"{len(submitted)} sbatch submissions, dry run predicted {expected.total}"
    assert all(j["JobState"] == "COMPLETED" for j in jobs.values()), {k: j["JobState"] for k, j in jobs.items()}
    # GPU rules (train group: pretrain + transfer; direct) asked for a GPU, CPU rules (prep, analysis) did not
    asked_gpu = {j.get("Comment", "?"): "gpu" in (j.get("TresPerJob", "") + j.get("TresPerNode", "")) for j in jobs.values()}
    for comment, gpu in asked_gpu.items():
        is_gpu_rule = any(name in comment for name in ("train", "pretrain", "transfer", "direct"))
        assert gpu == is_gpu_rule, f"job {comment}: GPU requested = {gpu}; jobs: {list(jobs.values())}"

    slurm_trials = pd.read_csv(slurm_dir / TRIALS)
    local_trials = pd.read_csv(local_dir / TRIALS)
    keys = ["property", "method", "n", "m", "trial"]
    merged = slurm_trials.merge(local_trials, on=keys, suffixes=("_slurm", "_local"), validate="one_to_one")
    assert len(merged) == len(slurm_trials) == len(local_trials) == 4 * 4  # (2 n + direct + simulation) x 4 trials
    for column in ("mae", "train_loss"):  # bit for bit (NaN where a reference has nothing to compare)
        pd.testing.assert_series_equal(merged[f"{column}_slurm"], merged[f"{column}_local"], check_names=False,
                                       check_exact=True)
    pd.testing.assert_frame_equal(pd.read_csv(slurm_dir / "results" / "slurm_tiny" / "summary.csv"),
                                  pd.read_csv(local_dir / "results" / "slurm_tiny" / "summary.csv"))
    for name in ("fits.json", "report.html"):
        assert (slurm_dir / "results" / "slurm_tiny" / name).is_file(), name

    lines = [f"SLURM test: {len(submitted)} sbatch submissions (dry run predicted {expected.total}: "
             + ", ".join(f"{k} {v}" for k, v in expected.per_kind().items()) + f") for {expected.jobs} jobs",
             "  SLURM jobs: " + ", ".join(f"{k} {j['JobState']} ({j.get('Comment', '')}"
                                          f"{', GPU' if asked_gpu.get(j.get('Comment', '?')) else ''})"
                                          for k, j in sorted(jobs.items(), key=lambda kv: kv[0].zfill(12))),
             f"  trial MAEs identical to the local run: {len(merged)} trials (and summary.csv), "
             f"max |MAE(slurm) - MAE(local)| = {(merged['mae_slurm'] - merged['mae_local']).abs().max():.1e}",
             f"  wall time (SLURM run with the local run alongside): {elapsed:.0f} s"]
    _show("\n".join(lines), capsys)
