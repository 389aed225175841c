"""The Snakemake profiles (workflow/profiles/slurm, workflow/profiles/default), checked without a cluster.

Dry runs with the SLURM profile work where SLURM is not installed; the profile passes --lint; the
GPU rules (and only they) ask the plugin for GPUs; the paper-scale grid goes to SLURM as tens of
submissions (the count is printed). The real SLURM run is tests/test_slurm.py.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SLURM_PROFILE = ROOT / "workflow" / "profiles" / "slurm"
LOCAL_PROFILE = ROOT / "workflow" / "profiles" / "default"
TINY = ROOT / "tests" / "slurm" / "tiny.yaml"
DEFAULT_STUDY = ROOT / "config" / "default.yaml"
GPU_RULES = {"pretrain", "transfer", "direct"}


def _load_submissions():
    spec = importlib.util.spec_from_file_location("slurm_submissions", ROOT / "tests" / "slurm" / "submissions.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


submissions = _load_submissions()


@pytest.fixture(scope="module")
def no_slurm_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment whose PATH has python and `which` but no SLURM command (as on a laptop)."""
    bin_dir = tmp_path_factory.mktemp("bin")
    for tool in ("which", "sh", "bash"):
        if found := shutil.which(tool):
            (bin_dir / tool).symlink_to(found)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{bin_dir}")
    env.pop("SLURM_CONF", None)
    return env


def _paper_config(tmp: Path, chunk_size: int, replicates: int | str = "per_trial") -> Path:
    """The paper-scale grid: 4 properties, 10 n, 500 trials, a 2-D m grid (on the synthetic tables)."""
    tables = {"source": {"path": str(tmp / "in" / "simulated.csv")}, "target": {"path": str(tmp / "in" / "experimental.csv")}}
    config = {
        "study": "paper_scale",
        "results_dir": str(tmp / "results"),
        "synthetic": {"source_path": tables["source"]["path"], "target_path": tables["target"]["path"]},
        "properties": {name: tables for name in ("density", "p2", "p3", "p4")},
        "grid": {"n": "auto", "n_points": 10, "m": [0.1, 0.2, 0.5, 1.0]},
        "protocol": {"trials": 500, "chunk_size": chunk_size, "pretrain_replicates": replicates},
    }
    path = tmp / f"paper_chunk{chunk_size}_{replicates}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _tiny_args(tmp: Path) -> list[str]:
    return ["--configfile", str(TINY), "--config", f"results_dir={tmp / 'results'}"]


def test_profiles_are_yaml_and_every_setting_is_commented() -> None:
    for profile in (SLURM_PROFILE, LOCAL_PROFILE):
        text = (profile / "config.yaml").read_text()
        assert isinstance(yaml.safe_load(text), dict)
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if re.match(r"^[a-z][\w-]*:", line):  # a top-level setting
                commented = "#" in line or (i > 0 and lines[i - 1].lstrip().startswith("#"))
                assert commented, f"{profile.name}/config.yaml: setting without a comment: {line!r}"
    slurm = yaml.safe_load((SLURM_PROFILE / "config.yaml").read_text())
    assert slurm["executor"] == "slurm"
    assert slurm["rerun-incomplete"] is True and slurm["keep-going"] is True
    for profile in (SLURM_PROFILE, LOCAL_PROFILE):  # Snakemake's default triggers: a changed param reruns its jobs
        assert "rerun-triggers" not in yaml.safe_load((profile / "config.yaml").read_text()), profile
    assert slurm["retries"] >= 1
    for rule in ("pretrain", "transfer", "direct"):
        spec = slurm["set-resources"][rule]
        assert spec["gpu"] >= 1 and "attempt" in str(spec["runtime"]) and "attempt" in str(spec["mem_mb"])
        assert not re.search(r"--(gres|gpus|mem|partition|account|time)\b|-[pAt] ", str(spec.get("slurm_extra", "")))


def test_slurm_dry_run_without_slurm_installed(no_slurm_env: dict[str, str], tmp_path: Path) -> None:
    assert shutil.which("sbatch", path=no_slurm_env["PATH"]) is None
    out = submissions.dry_run(*_tiny_args(tmp_path), env=no_slurm_env)
    assert "This was a dry-run" in out
    subs = submissions.count(out, *submissions.profile_settings(SLURM_PROFILE))
    assert subs.groups == {"prep": 1, "train": 2, "analysis": 1}, subs
    # GPU rules ask the plugin for a GPU (gpu=1 -> sbatch --gpus=1), CPU rules do not
    for rule, resources in re.findall(r"^\s*rule (\w+):\n(?:\s+\w+:.*\n)*?\s+resources: (.*)$", out, re.M):
        asks_gpu = re.search(r"\bgpu=[1-9]", resources) is not None
        assert asks_gpu == (rule in GPU_RULES), f"rule {rule}: resources {resources}"
        if rule in GPU_RULES:
            assert "slurm_partition=gpu" in resources, resources


def test_slurm_profile_passes_lint(no_slurm_env: dict[str, str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "--workflow-profile", str(SLURM_PROFILE),
                           "--configfile", str(DEFAULT_STUDY)],
                          cwd=ROOT, capture_output=True, text=True, env=no_slurm_env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_local_profile_dry_run(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", *_tiny_args(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]  # no --cores: the default profile has it
    assert "Group job" not in proc.stdout + proc.stderr


def test_paper_scale_grid_is_tens_of_submissions(no_slurm_env: dict[str, str], tmp_path: Path, capsys) -> None:
    report = []
    # one chunk (each trial its own pretraining draw, the default), and shared draws (4) in one or five chunks: a
    # block's pretrain job and all its chunks are one train job. (Own draws in several chunks: one job per chunk.)
    for chunk_size, replicates in ((500, "per_trial"), (500, 4), (100, 4)):
        out = submissions.dry_run("--configfile", str(_paper_config(tmp_path, chunk_size, replicates)),
                                  env=no_slurm_env)
        subs = submissions.count(out, *submissions.profile_settings(SLURM_PROFILE))
        assert subs.groups["train"] == 40 and subs.groups["prep"] == 1 and subs.groups["analysis"] == 1, subs
        assert subs.total < 60, subs.per_kind()
        report.append(f"paper-scale grid (4 properties x 10 n x 500 trials, chunk_size {chunk_size}, pretraining "
                      f"draws {replicates}, m grid of 4): {subs.jobs} jobs -> {subs.total} SLURM submissions under "
                      "workflow/profiles/slurm (" + ", ".join(f"{k}: {v}" for k, v in subs.per_kind().items()) + ")")
    with capsys.disabled():
        print("\n" + "\n".join(report))
