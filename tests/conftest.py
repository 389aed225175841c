"""Shared fixtures: paths of the project and the shared data, a tiny end-to-end config."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def tiny_config(tmp_path: Path, **overrides) -> Path:
    """Write the tiny study of .test/ (the CI study) with its outputs under ``tmp_path``; return its path."""
    text = (ROOT / ".test" / "config" / "config.yaml").read_text()
    config = yaml.safe_load(text.replace("results/", f"{tmp_path / 'results'}/"))
    config["results_dir"] = str(tmp_path / "results")
    for key, value in overrides.items():
        config[key] = value
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_snakemake(*args: str, cwd: Path = ROOT, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory) -> Path:
    """Run the tiny default study once per session; return its results folder."""
    tmp = tmp_path_factory.mktemp("tiny")
    config = tiny_config(tmp)
    run_snakemake("--cores", "2", "--configfile", str(config), "--directory", str(ROOT),
                  "--nolock", "--quiet", "rules")
    return tmp / "results" / "tiny"


def prepare_property(config: dict, name: str, prepared: Path, descriptors: Path) -> dict[str, Path]:
    """The data stages of one property as the workflow runs them: prepare into ``prepared/``, featurize into
    ``descriptors`` (its cache beside it), design (``prepared/design.json``, ``qc.csv``). Returns the training
    inputs without the design."""
    from sim2real_scaling.stages import stage_design, stage_featurize, stage_prepare

    stage_prepare(config, name, prepared)
    stage_featurize(config, [prepared / "source.csv", prepared / "target.csv"], descriptors,
                    descriptors.with_name("cache.npz"))
    inputs = {"source": prepared / "source.csv", "target": prepared / "target.csv", "descriptors": descriptors}
    stage_design(config, name, inputs, {"design": prepared / "design.json", "qc": prepared / "qc.csv"})
    return inputs


def require_shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the shared data folder {SHARED_DATA} is missing (tests read the public data sets from there)")
    return SHARED_DATA


@pytest.fixture
def shared_data() -> Path:
    return require_shared_data()


def has(cmd: str) -> bool:
    return shutil.which(cmd) is not None
