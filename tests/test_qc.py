"""Data QC before training: a planted unit slip is flagged in qc.csv, left out by the design and named in the
report; heavy but continuous tails are not flagged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim2real_scaling.config import validate_config
from sim2real_scaling.data.qc import QCSettings, isolated, qc_flags, robust_z
from sim2real_scaling.data.synthetic import generate_benchmark
from sim2real_scaling.report.content import _data_blocks, read_data_checks, to_markdown
from sim2real_scaling.stages import stage_design
from sim2real_scaling.training.design import Design
from sim2real_scaling.io import read_json

from conftest import prepare_property

RNG = np.random.default_rng(11)


def _tables(n: int = 300, spread: float = 0.15) -> tuple[pd.DataFrame, pd.DataFrame]:
    sim = np.exp(RNG.normal(0.0, spread, n))
    source = pd.DataFrame({"key": [f"k{i}" for i in range(n)], "value": sim, "source_row": np.arange(n) + 2})
    exp = sim[: n // 2] * 1.05 * np.exp(RNG.normal(0, 0.02, n // 2))
    target = pd.DataFrame({"key": [f"k{i}" for i in range(n // 2)], "value": exp, "source_row": np.arange(n // 2) + 2})
    return source, target


@pytest.mark.parametrize("steps", [["standardize"], ["log", "standardize"], ["yeo-johnson"]])
@pytest.mark.parametrize("factor", [1e-3, 1e3, 10.0])
def test_a_value_in_other_units_is_flagged_whatever_the_transform(steps, factor):
    source, target = _tables()
    target.loc[17, "value"] *= factor
    flags = qc_flags(source, target, source_path="s.csv", target_path="t.csv", steps=steps, settings=QCSettings())
    assert flags[["table", "row", "key"]].values.tolist() == [["target", 19, "k17"]]
    assert "disagreement" in flags["check"].item()  # against its own simulated value


def test_heavy_continuous_tails_are_data_not_errors(shared_data: Path):
    """The experimental chi of the public chi study: non-solvents reach 4.4 against a median of 0.5, far beyond a
    robust z of 6, but the tail is continuous; one value in other units beyond it is flagged."""
    chi = pd.read_csv(shared_data / "chi" / "chi_experimental.csv")["chi"].to_numpy(dtype=float)
    z = robust_z(chi)
    assert (np.abs(z) > 6).sum() > 20 and not isolated(z, 6.0, 2.0).any()
    with_slip = np.append(chi, 450.0)
    assert np.flatnonzero(isolated(robust_z(with_slip), 6.0, 2.0)).tolist() == [len(chi)]
    table = pd.DataFrame({"key": [f"m{i}" for i in range(len(chi))], "value": chi})
    assert qc_flags(table, table.iloc[:0], source_path="s", target_path="t", steps=["standardize"],
                    settings=QCSettings()).empty


def test_a_planted_unit_slip_is_flagged_left_out_and_named_in_the_report(tmp_path: Path):
    generate_benchmark(seed=4, n_source=120, n_target=50, noise_source=0.01, noise_target=0.015, hidden_strength=0.2,
                       source_path=tmp_path / "simulated.csv", target_path=tmp_path / "experimental.csv")
    experimental = pd.read_csv(tmp_path / "experimental.csv")
    experimental.loc[7, "value"] /= 1000.0  # a density in kg/cm3
    experimental.to_csv(tmp_path / "experimental.csv", index=False)
    slipped = experimental.loc[7]
    config = validate_config({
        "study": "qc", "seed": 3, "device": "cpu", "descriptor": {"set": "rdkit_basic"},
        "properties": {"density": {"source": {"path": str(tmp_path / "simulated.csv")},
                                   "target": {"path": str(tmp_path / "experimental.csv")},
                                   "transform": ["log", "standardize"], "transform_fit_on": "each"}},
        "grid": {"n": [40, 120]}, "protocol": {"trials": 4, "chunk_size": 4}})
    prepared = tmp_path / "prepared" / "density"
    inputs = prepare_property(config, "density", prepared, tmp_path / "descriptors.npz")
    qc = pd.read_csv(prepared / "qc.csv")
    assert qc[["table", "row", "action"]].values.tolist() == [["target", 9, "dropped"]]  # file row 9: header + 8
    assert "unit" in qc["check"].item() or "outlier" in qc["check"].item()
    design = Design.from_dict(read_json(prepared / "design.json"))
    assert design.n_target == 49 and design.qc == {"action": "drop", "flagged": 1, "dropped": 1}
    page = to_markdown(_data_blocks("density", read_data_checks(prepared)))
    assert "1 rows flagged by the data QC" in page and "left out of training and testing" in page
    assert f"| target | {tmp_path / 'experimental.csv'} | 9 |" in page and f"{slipped['value']:.6g}" in page
    # kept instead: flagged, listed, and said to be kept
    kept = {**config, "qc": {**config["qc"], "action": "flag"}}
    stage_design(kept, "density", inputs, {"design": prepared / "design.json", "qc": prepared / "qc.csv"})
    assert pd.read_csv(prepared / "qc.csv")["action"].tolist() == ["kept"]
    assert Design.from_dict(read_json(prepared / "design.json")).n_target == 50
    assert "kept in training and testing" in to_markdown(_data_blocks("density", read_data_checks(prepared)))
    # a qc.csv without its action column (an older run): the report says it does not know, it does not guess
    pd.read_csv(prepared / "qc.csv").drop(columns=["action"]).to_csv(prepared / "qc.csv", index=False)
    page = to_markdown(_data_blocks("density", read_data_checks(prepared)))
    assert "does not record whether they were kept or left out" in page and "kept in training" not in page
