"""Reruns exactly what changed: after a real run of a small study, a changed setting makes the dry run plan the
jobs that use it and no others (every rule declares the config slices it reads as params; Snakemake's default
rerun triggers), an unchanged config plans nothing, and a new chunk size runs through.

One study is run once for the module, in a working directory of its own (its own .snakemake metadata); the
last test changes it for real.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT, run_snakemake, tiny_config

SNAKEFILE = str(ROOT / "workflow" / "Snakefile")
ANALYSIS = {"aggregate", "fit", "collect", "report", "check_study", "all"}
EVERY_RULE = {"synthesize", "prepare", "featurize", "design", "pretrain", "transfer", "direct", "simulation",
              "record_run"} | ANALYSIS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> dict[str, Path]:
    """A small study (6 trials in chunks of 2, 2 shared pretraining draws: a pretrain job per block), run once."""
    tmp = tmp_path_factory.mktemp("reruns")
    config = tiny_config(tmp, study="reruns", protocol={"trials": 6, "chunk_size": 2, "pretrain_replicates": 2,
                                                        "group_columns": ["polymer_class"]},
                         synthetic={"n_source": 300, "n_target": 80,
                                    "source_path": str(tmp / "results" / "input" / "simulated.csv"),
                                    "target_path": str(tmp / "results" / "input" / "experimental.csv")},
                         grid={"n": [40, 300]},
                         model={"hidden": [16], "pretrain": {"epochs": 20, "batch_size": 64, "min_steps": 100},
                                "finetune": {"epochs": 40}, "direct": {"epochs": 40}},
                         analysis={"bootstrap_resamples": 100, "fit_bootstrap": 0})
    spec = yaml.safe_load(config.read_text())
    for side, name in (("source", "simulated.csv"), ("target", "experimental.csv")):
        spec["properties"]["density"][side]["path"] = str(tmp / "results" / "input" / name)
    config.write_text(yaml.safe_dump(spec))
    workdir = tmp / "wd"
    workdir.mkdir()
    snakemake(config, workdir, "--cores", "2")
    return {"config": config, "workdir": workdir, "results": tmp / "results" / "reruns"}


def snakemake(config: Path, workdir: Path, *args: str):
    return run_snakemake("--snakefile", SNAKEFILE, "--directory", str(workdir), "--configfile", str(config), *args)


def planned(study: dict[str, Path], *args: str, config: Path | None = None) -> tuple[dict[str, int], str]:
    """rule -> jobs a dry run would run (after ``args``, e.g. --config overrides), and its output."""
    out = snakemake(config or study["config"], study["workdir"], "-n", *args).stdout
    if "Nothing to be done" in out:
        return {}, out
    table = out.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}, out


def test_an_unchanged_config_reruns_nothing(study):
    jobs, out = planned(study)
    assert jobs == {}, out[-3000:]


def test_a_new_seed_reruns_every_seeded_job(study):
    jobs, _ = planned(study, "--config", "seed=1")
    assert set(jobs) == EVERY_RULE, jobs  # the synthetic tables are drawn from the seed, so everything


def test_a_pretraining_hyperparameter_reruns_pretraining_and_what_uses_it(study):
    jobs, _ = planned(study, "--config", "model={pretrain: {epochs: 21}}")
    assert {"pretrain", "transfer"} <= set(jobs) and not {"prepare", "featurize", "design"} & set(jobs), jobs


def test_a_finetuning_hyperparameter_reruns_the_finetuning_jobs_only(study):
    jobs, _ = planned(study, "--config", "model={finetune: {lr: 0.003}}")
    assert set(jobs) == {"transfer", "record_run"} | ANALYSIS, jobs
    assert jobs["transfer"] == 3  # one per chunk; their shared pretraining stays


def test_a_direct_learning_hyperparameter_reruns_the_direct_jobs_only(study):
    jobs, _ = planned(study, "--config", "model={direct: {epochs: 41}}")
    assert set(jobs) == {"direct", "record_run"} | ANALYSIS, jobs


def test_a_model_selection_setting_reruns_what_selects_not_the_pretraining(study):
    jobs, _ = planned(study, "--config", "model={selection: {folds: 3}}")
    assert set(jobs) == {"transfer", "direct", "record_run"} | ANALYSIS, jobs


def test_a_new_chunk_size_reruns_the_training_jobs_not_the_data(study):
    jobs, _ = planned(study, "--config", "protocol={chunk_size: 3}")
    assert set(jobs) == {"transfer", "direct", "simulation", "record_run"} | ANALYSIS, jobs
    assert jobs["transfer"] == jobs["direct"] == jobs["simulation"] == 2  # 2 chunks of 3


def test_more_trials_run_only_the_new_chunk(study):
    jobs, out = planned(study, "--config", "protocol={trials: 8}")
    assert set(jobs) == {"transfer", "direct", "simulation", "record_run"} | ANALYSIS, jobs
    assert jobs["transfer"] == jobs["direct"] == jobs["simulation"] == 1
    outputs = " ".join(re.findall(r"^\s+output: (.*)$", out, re.M))
    written = re.findall(r"/trials/density/(\w+?)(?:_n[\d-]+)?_c(\d+)\.trials\.csv", outputs)
    assert sorted(written) == [("direct", "3"), ("finetune", "3"), ("simulation", "3")], written


def test_a_descriptor_setting_reruns_descriptors_and_training_not_the_tables(study):
    jobs, _ = planned(study, "--config", "descriptor={drop_zero_variance: false}")
    assert {"featurize", "design", "pretrain", "transfer", "direct"} <= set(jobs), jobs
    assert not {"synthesize", "prepare"} & set(jobs), jobs


def test_a_transform_reruns_that_property_from_its_tables_on(study, tmp_path):
    spec = yaml.safe_load(study["config"].read_text())
    spec["properties"]["density"]["transform"] = ["log", "standardize"]
    changed = tmp_path / "transform.yaml"
    changed.write_text(yaml.safe_dump(spec))
    jobs, _ = planned(study, config=changed)
    assert "prepare" in jobs and "synthesize" not in jobs, jobs


def test_a_changed_table_path_or_content_reruns_from_prepare(study, tmp_path):
    source = Path(yaml.safe_load(study["config"].read_text())["properties"]["density"]["source"]["path"])
    copy = tmp_path / "simulated_copy.csv"
    copy.write_bytes(source.read_bytes())
    spec = yaml.safe_load(study["config"].read_text())
    spec["properties"]["density"]["source"]["path"] = str(copy)
    moved = tmp_path / "moved.yaml"
    moved.write_text(yaml.safe_dump(spec))
    jobs, _ = planned(study, config=moved)  # same content, another file: the study reads another table
    assert "prepare" in jobs and "synthesize" not in jobs, jobs

    table = pd.read_csv(copy)
    table.loc[0, "value"] += 0.01
    table.to_csv(copy, index=False)
    jobs, _ = planned(study, config=moved)
    assert {"prepare", "featurize", "design", "transfer"} <= set(jobs), jobs


def test_a_run_with_a_new_chunk_size_completes_and_is_then_up_to_date(study):
    # (last: it changes the study) formerly, chunk tables of the old size were mixed with the new ones
    snakemake(study["config"], study["workdir"], "--cores", "2", "--config", "protocol={chunk_size: 3}")
    trials = pd.read_csv(study["results"] / "trials.csv")
    assert trials.groupby(["method", "n"])["trial"].nunique().eq(6).all()
    assert sorted(trials["trial"].unique()) == list(range(6))
    jobs, out = planned(study, "--config", "protocol={chunk_size: 3}")
    assert jobs == {}, out[-3000:]
