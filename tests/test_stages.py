"""The stages that make the workflow cheaper to run give the same numbers as the plain way.

* A transfer job that pretrains its own networks (one chunk per block of n) writes the same networks and the
  same trial tables as a pretrain job followed by a transfer job that loads them, and a block of n gives the
  trials that one job per n gives; a job refuses networks or a design made for other settings.
* Analysing each property on its own (aggregate, fit) and collecting the results gives the same study
  tables, byte for byte, and the same fits.json as aggregating and fitting the whole study at once.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from sim2real_scaling.config import ConfigError, validate_config
from sim2real_scaling.data.clean import DataError
from sim2real_scaling.stages import (set_threads, stage_aggregate, stage_analyse, stage_collect, stage_design,
                                     stage_featurize, stage_prepare, stage_pretrain, stage_train)
from sim2real_scaling.data.synthetic import generate_benchmark

PROPERTIES = ("density", "tg")
TABLES = ("trials", "summary", "groups", "materials")


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[Path, dict]:
    """Two properties on small synthetic tables, prepared and featurized."""
    folder = tmp_path_factory.mktemp("stages")
    generate_benchmark(seed=5, n_source=90, n_target=40, noise_source=0.01, noise_target=0.015, hidden_strength=0.2,
                       source_path=folder / "simulated.csv", target_path=folder / "experimental.csv")
    tables = {"source": {"path": str(folder / "simulated.csv")}, "target": {"path": str(folder / "experimental.csv")}}
    config = validate_config({
        "study": "stages", "seed": 11, "device": "cpu", "results_dir": str(folder / "results"),
        "descriptor": {"set": "rdkit_basic"},
        # tg lists first in the config but sorts last: fits.json keeps the config's order, tables sort by name
        "properties": {"tg": {**tables, "transform": ["standardize"]},
                       "density": {**tables, "transform": ["standardize"], "grid_m": [10, 1.0]}},
        "grid": {"n": [30, 60, 90]},
        "protocol": {"trials": 4, "chunk_size": 4, "group_columns": ["polymer_class"], "per_material": True,
                     "pretrain_replicates": 2},  # shared draws: the pretrain job and the saved networks
        "model": {"hidden": [8], "pretrain": {"epochs": 5, "batch_size": 32},
                  "finetune": {"epochs": 10, "batch_size": 8}, "direct": {"epochs": 10},
                  "selection": {"folds": 3, "every": 2, "patience": 2}},
        "analysis": {"bootstrap_resamples": 200, "fit_bootstrap": 20},
    })
    for name in PROPERTIES:
        stage_prepare(config, name, folder / "prepared" / name)
    stage_featurize(config, [folder / "prepared" / n / f"{t}.csv" for n in PROPERTIES for t in ("source", "target")],
                    folder / "descriptors.npz", folder / "cache.npz")
    for name in PROPERTIES:
        prepared = folder / "prepared" / name
        stage_design(config, name, _inputs(folder, name, design=False),
                     {"design": prepared / "design.json", "qc": prepared / "qc.csv"})
    set_threads(1)
    return folder, config


def _inputs(folder: Path, name: str, design: bool = True, **extra: Path) -> dict[str, Path]:
    prepared = folder / "prepared" / name
    files = {"source": prepared / "source.csv", "target": prepared / "target.csv",
             "descriptors": folder / "descriptors.npz"}
    return {**files, **({"design": prepared / "design.json"} if design else {}), **extra}


def _outputs(folder: Path, stem: str) -> dict[str, Path]:
    return {kind: folder / f"{stem}.{kind}.csv" for kind in ("trials", "groups", "materials")}


def test_transfer_job_that_pretrains_equals_pretrain_job_then_transfer(study) -> None:
    folder, config = study
    out = folder / "fused"
    out.mkdir()
    # the workflow's two ways: one job (pretrain, save, fine-tune) or two jobs (pretrain; load, fine-tune)
    fused = _outputs(out, "one_job")
    stage_train(config, "density", "finetune", 0, [1, 2], _inputs(folder, "density"),
                {**fused, "pretrained": out / "one_job.pt"})
    stage_pretrain(config, "density", [1, 2], _inputs(folder, "density"), out / "two_jobs.pt")
    split = _outputs(out, "two_jobs")
    stage_train(config, "density", "finetune", 0, [1, 2], _inputs(folder, "density", pretrained=out / "two_jobs.pt"),
                split)
    for kind in fused:
        assert fused[kind].read_bytes() == split[kind].read_bytes(), kind
    trials = pd.read_csv(fused["trials"])
    assert set(trials["method"]) == {"finetune"} and set(trials["n"]) == {60, 90} and (trials["status"] == "ok").all()
    a = torch.load(out / "one_job.pt", weights_only=True)["networks"]
    b = torch.load(out / "two_jobs.pt", weights_only=True)["networks"]
    assert [s["n"] for s in a] == [s["n"] for s in b] == [60, 90]
    for x, y in zip(a, b, strict=True):
        for p, q in zip(x["params"], y["params"], strict=True):
            assert torch.equal(p, q)
    # a job's block of n gives the trials that one job per n gives
    for i, n in ((1, 60), (2, 90)):
        alone = _outputs(out, f"n{i}")
        stage_train(config, "density", "finetune", 0, [i], _inputs(folder, "density"),
                    {**alone, "pretrained": out / f"n{i}.pt"})
        pd.testing.assert_frame_equal(pd.read_csv(alone["trials"]),
                                      trials[trials["n"] == n].reset_index(drop=True))


def test_a_job_refuses_networks_pretrained_for_other_n(study) -> None:
    folder, config = study
    model = folder / "other_block.pt"
    stage_pretrain(config, "density", [0], _inputs(folder, "density"), model)
    with pytest.raises(ValueError, match=r"other_block.pt: networks for grid positions \[0\], this job trains \[1, 2\]"):
        stage_train(config, "density", "finetune", 0, [1, 2], _inputs(folder, "density", pretrained=model),
                    _outputs(folder, "refused"))


def test_a_design_made_for_another_grid_is_refused(study, tmp_path: Path) -> None:
    folder, config = study
    other = {**config, "grid": {**config["grid"], "n": [30, 90]}}
    with pytest.raises(ConfigError, match="design.json was made for other settings"):
        stage_train(other, "density", "direct", 0, None, _inputs(folder, "density"), _outputs(tmp_path, "x"))


def test_per_property_analysis_collected_equals_study_wide_analysis(study) -> None:
    folder, config = study
    out = folder / "analysis"
    chunks: dict[str, dict[str, list[Path]]] = {name: {k: [] for k in ("trials", "groups", "materials")}
                                                for name in PROPERTIES}
    for name in PROPERTIES:
        for b, block in enumerate(([0, 1], [2])):
            files = _outputs(out / "trials" / name, f"finetune_b{b}_c0")
            stage_train(config, name, "finetune", 0, block, _inputs(folder, name),
                        {**files, "pretrained": out / "models" / name / f"finetune_b{b}.pt"})
            for kind, path in files.items():
                chunks[name][kind].append(path)
        for method in ("direct", "simulation"):
            files = _outputs(out / "trials" / name, f"{method}_c0")
            stage_train(config, name, method, 0, None, _inputs(folder, name), files)
            for kind, path in files.items():
                chunks[name][kind].append(path)

    def table_paths(root: Path) -> dict[str, Path]:
        return {"trials": root / "trials.csv", "summary": root / "summary.csv", "groups": root / "group_trials.csv",
                "materials": root / "material_errors.csv"}

    # the whole study at once (the workflow before per-property analysis)
    whole = table_paths(out / "whole")
    stage_aggregate(config, [p for n in PROPERTIES for p in chunks[n]["trials"]],
                    [p for n in PROPERTIES for p in chunks[n]["groups"]],
                    [p for n in PROPERTIES for p in chunks[n]["materials"]], whole)
    stage_analyse(config, whole, out / "whole" / "fits.json", out / "whole" / "figures")
    # each property on its own, then collected
    per_property = {}
    for name in PROPERTIES:
        root = out / "by_property" / name
        tables = table_paths(root)
        stage_aggregate(config, chunks[name]["trials"], chunks[name]["groups"], chunks[name]["materials"], tables)
        stage_analyse(config, tables, root / "fits.json", root / "figures", properties=[name])
        assert set(pd.read_csv(tables["trials"])["property"]) == {name}
        per_property[name] = {**tables, "fits": root / "fits.json", "figures": root / "figures"}
    collected = {**table_paths(out / "collected"), "fits": out / "collected" / "fits.json",
                 "figures": out / "collected" / "figures"}
    stage_collect(config, per_property, collected)

    for kind in TABLES:
        assert collected[kind].read_bytes() == whole[kind].read_bytes(), kind
    counts = pd.read_csv(collected["trials"]).groupby("property").size()
    # 4 trials x (3 n + direct + simulation) x m
    assert counts.to_dict() == {"density": 4 * (3 + 2) * 2, "tg": 4 * (3 + 2) * 1}
    whole_fits = json.loads((out / "whole" / "fits.json").read_text())
    collected_fits = json.loads(collected["fits"].read_text())
    assert collected_fits == whole_fits
    assert list(collected_fits["properties"]) == ["tg", "density"]  # the config's order
    figures = sorted(p.name for p in collected["figures"].iterdir())
    assert figures == sorted(p.name for p in (out / "whole" / "figures").iterdir())
    assert {f"{name}_scaling.png" for name in PROPERTIES} <= set(figures)


def test_collect_names_a_table_whose_columns_differ(study, tmp_path: Path) -> None:
    folder, config = study
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text("property,mae\ndensity,0.1\n")
    bad.write_text("property,error\ntg,0.2\n")
    per_property = {name: {t: path for t in TABLES} | {"fits": tmp_path / "none.json", "figures": tmp_path}
                    for name, path in (("density", good), ("tg", bad))}
    outputs = {t: tmp_path / f"out_{t}.csv" for t in TABLES} | {"fits": tmp_path / "fits.json",
                                                                "figures": tmp_path / "figs"}
    with pytest.raises(ValueError, match="bad.csv: columns 'property,error' differ"):
        stage_collect(config, per_property, outputs)
    assert not outputs["trials"].exists()  # nothing half-written


def test_aggregate_refuses_a_trial_found_in_two_chunk_tables(study, tmp_path: Path) -> None:
    """Chunk tables of an earlier layout (another chunk_size) left beside the new ones are not pooled."""
    folder, config = study
    old = _outputs(tmp_path, "old_c0")  # trials 0-3 (the old chunk of 4)
    stage_train(config, "tg", "direct", 0, None, _inputs(folder, "tg"), old)
    small = {**config, "protocol": {**config["protocol"], "chunk_size": 2}}
    new = _outputs(tmp_path, "new_c1")  # trials 2-3 (chunk 1 of 2)
    stage_train(small, "tg", "direct", 1, None, _inputs(folder, "tg"), new)
    tables = {t: tmp_path / f"{t}.csv" for t in TABLES}
    with pytest.raises(DataError, match=r"4 trial rows appear in more than one chunk table, e\.g\. property=tg, "
                                        r"method=direct, n=0, m=\d+, trial=2, in .*new_c1.trials.csv, .*old_c0"):
        stage_aggregate(config, [old["trials"], new["trials"]], [old["groups"], new["groups"]],
                        [old["materials"], new["materials"]], tables)
    assert not tables["trials"].exists()


def test_a_property_without_material_rows_still_collects(study, tmp_path: Path) -> None:
    """A property whose chunks have no per-material rows (all diverged, or per_material off) gets the same
    material-table header as one with rows, so collect can join them."""
    folder, config = study
    with_rows = _outputs(tmp_path, "with_rows")
    stage_train(config, "tg", "direct", 0, None, _inputs(folder, "tg"), with_rows)
    empty = tmp_path / "empty.materials.csv"
    empty.write_text(pd.read_csv(with_rows["materials"]).head(0).to_csv(index=False))
    headers = []
    for name, materials in (("rows", with_rows["materials"]), ("none", empty)):
        tables = {t: tmp_path / f"{name}_{t}.csv" for t in TABLES}
        stage_aggregate(config, [with_rows["trials"]], [with_rows["groups"]], [materials], tables)
        headers.append(tables["materials"].read_text().splitlines()[0])
    assert headers[0] == headers[1] and headers[0].endswith("mean_abs_error")
