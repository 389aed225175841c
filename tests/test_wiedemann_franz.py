"""The Wiedemann-Franz classes (case study 3) and the per-compound scaling summary."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sim2real_scaling.config import ConfigError
from sim2real_scaling.studies.wiedemann_franz import (
    LORENZ_NUMBER,
    MIDDLE,
    NON_WF,
    UNKNOWN,
    WF,
    add_wf_columns,
    class_thresholds,
    class_transfer_vs_direct,
    classify_wf,
    per_compound_scaling,
    summarise_per_compound,
    wf_deviation,
)

SETTINGS = {"thermal": "source", "lorenz": LORENZ_NUMBER, "temperature": 300.0, "fraction": 0.1, "column": "wf_class"}


def test_deviation_is_zero_on_the_law_and_counts_decades():
    sigma = np.array([1e5, 1e6, 1e3])
    kappa = LORENZ_NUMBER * 300 * sigma * np.array([1.0, 10.0, 0.1])
    assert np.allclose(wf_deviation(kappa, sigma), [0.0, 1.0, -1.0])
    # a metal: copper at 300 K, sigma 5.96e7 S/m, kappa 401 W/m/K -> within 10% of the law
    assert abs(wf_deviation([401.0], [5.96e7])[0]) < math.log10(1.1)


def test_deviation_is_nan_for_missing_or_non_positive_values():
    d = wf_deviation([1.0, np.nan, 0.0, 1.0], [1e5, 1e5, 1e5, -1.0])
    assert np.isfinite(d[0]) and np.isnan(d[1:]).all()


def test_classes_are_the_closest_and_farthest_fraction_by_absolute_deviation():
    rng = np.random.default_rng(0)
    d = rng.normal(0.8, 1.0, size=200)  # signed: negative deviations count by their size
    labels = classify_wf(d, 0.1)
    assert (labels == WF).sum() == 20 and (labels == NON_WF).sum() == 20 and (labels == MIDDLE).sum() == 160
    a = np.abs(d)
    assert a[labels == WF].max() < a[labels == MIDDLE].min()
    assert a[labels == MIDDLE].max() < a[labels == NON_WF].min()
    # |d| and not d: a strongly negative deviation is non-WF, a tiny negative one WF
    assert labels[np.argmax(a)] == NON_WF and labels[np.argmin(a)] == WF


def test_classes_handle_nan_rounding_and_ties():
    d = np.array([0.1, np.nan, 0.5, -0.2, 3.0, 0.1, 2.0, np.nan, 1.0, 0.3, 0.4, 0.6])
    labels = classify_wf(d, 0.1)  # 10 finite -> k = 1 each
    assert list(labels[[1, 7]]) == [UNKNOWN, UNKNOWN]
    assert labels[0] == WF and labels[5] == MIDDLE  # tie at |d| = 0.1: the first row wins (stable)
    assert labels[4] == NON_WF
    assert (classify_wf(np.array([0.1, 0.2, 0.3]), 0.1) == MIDDLE).all()  # round(0.3) = 0: no subsets
    with pytest.raises(ValueError, match="fraction"):
        classify_wf(d, 0.6)


def test_thresholds_bracket_the_middle():
    d = np.linspace(-1, 3, 101)
    labels = classify_wf(d, 0.1)
    th = class_thresholds(d, labels)
    assert th["wf_max_abs"] < th["non_wf_min_abs"]
    assert th["non_wf_min_abs"] == pytest.approx(np.sort(np.abs(d))[-10])


def _tables():
    keys = [f"C{i}" for i in range(30)]
    sigma = np.geomspace(1e2, 1e6, 30)
    ratio = np.linspace(0.0, 2.9, 30)  # deviation of compound i: 0.1 * i decades
    kappa = LORENZ_NUMBER * 300 * sigma * 10 ** ratio
    kappa_table = pd.DataFrame({"key": keys, "value": kappa, "source_row": np.arange(30) + 2})
    sigma_table = pd.DataFrame({"key": keys[2:] + ["only_sigma"], "value": list(sigma[2:]) + [1e4],
                                "source_row": np.arange(29) + 2})
    return kappa_table, sigma_table


def test_add_wf_columns_matches_compounds_by_key_in_either_direction():
    kappa_table, sigma_table = _tables()
    src, tgt = add_wf_columns(kappa_table, sigma_table, SETTINGS)
    assert {"wf_kappa", "wf_sigma", "wf_log10_ratio", "wf_class"} <= set(tgt.columns)
    assert len(tgt) == len(sigma_table) and list(tgt["key"]) == list(sigma_table["key"])  # order kept
    assert tgt.set_index("key").loc["only_sigma", "wf_class"] == UNKNOWN
    assert src.set_index("key").loc["C0", "wf_class"] == UNKNOWN  # kappa only
    both = tgt[tgt["wf_class"] != UNKNOWN]
    assert len(both) == 28 and (both["wf_class"] == WF).sum() == 3 and (both["wf_class"] == NON_WF).sum() == 3
    assert set(both.loc[both["wf_class"] == WF, "key"]) == {"C2", "C3", "C4"}
    assert set(both.loc[both["wf_class"] == NON_WF, "key"]) == {"C27", "C28", "C29"}
    assert both.set_index("key").loc["C12", "wf_log10_ratio"] == pytest.approx(1.2)
    # the reverse direction (kappa is the target table) gives the same classes
    src_r, tgt_r = add_wf_columns(sigma_table, kappa_table, {**SETTINGS, "thermal": "target"})
    merged = tgt.merge(src_r, on="key", suffixes=("", "_r"))
    assert (merged["wf_class"] == merged["wf_class_r"]).all()


def test_add_wf_columns_checks_the_unit_column(tmp_path):
    kappa_table, sigma_table = _tables()
    k_path, s_path = tmp_path / "k.csv", tmp_path / "s.csv"
    pd.DataFrame({"unit": ["W m^-1 K^-1"]}).to_csv(k_path, index=False)
    pd.DataFrame({"unit": ["S m^-1"]}).to_csv(s_path, index=False)
    add_wf_columns(kappa_table, sigma_table, SETTINGS, paths=(str(k_path), str(s_path)))  # consistent: fine
    with pytest.raises(ConfigError, match="wiedemann_franz.thermal.*swapped"):
        add_wf_columns(sigma_table, kappa_table, SETTINGS, paths=(str(s_path), str(k_path)))


def _materials():
    rows = []
    n_values = [100, 300, 1000, 3000]
    for n in n_values:
        for material, mae in (("falls", 2.0 * n ** -0.5), ("flat", 0.3), ("rises", 0.01 * n ** 0.3)):
            rows.append(("p", "transfer", n, 80, material, mae * 10, 10))
    rows += [("p", "direct", 0, 80, "falls", 30.0, 10), ("q", "transfer", 100, 80, "other", 1.0, 5)]
    frame = pd.DataFrame(rows, columns=["property", "method", "n", "m", "material", "abs_error_sum", "count"])
    frame["mean_abs_error"] = frame["abs_error_sum"] / frame["count"]
    return frame


def test_per_compound_scaling_reads_the_exponent_off_each_curve():
    table = per_compound_scaling(_materials(), "p", classes={"falls": WF, "rises": NON_WF})
    t = table.set_index("material")
    assert set(t.index) == {"falls", "flat", "rises"}
    assert t.loc["falls", "alpha"] == pytest.approx(0.5)
    assert t.loc["rises", "alpha"] == pytest.approx(-0.3)
    assert t.loc["flat", "alpha"] == pytest.approx(0.0, abs=1e-12)
    assert t.loc["falls", "verdict"] == "scales" and t.loc["rises", "verdict"] == "worsens"
    assert t.loc["falls", "wf_class"] == WF and t.loc["flat", "wf_class"] == UNKNOWN
    assert t.loc["falls", "mae_direct"] == 3.0 and t.loc["falls", "tests"] == 10
    assert t.loc["falls", "ratio_n_max_to_n_min"] == pytest.approx((3000 / 100) ** -0.5)
    summary = summarise_per_compound(table)
    assert summary["all"]["compounds"] == 3 and summary["all"]["scales"] == 1 and summary["all"]["worsens"] == 1
    assert summary[WF]["alpha_median"] == pytest.approx(0.5)


def test_per_compound_scaling_of_an_unknown_property_is_empty():
    assert per_compound_scaling(_materials(), "nothing").empty


def test_class_transfer_vs_direct_pairs_trials():
    rows = []
    for trial in range(20):
        for group, gap in ((WF, -0.1), (NON_WF, 0.05)):
            rows.append(("p", "direct", 0, 80, trial, "wf_class", group, 1.0 + 0.01 * trial, 5))
            rows.append(("p", "transfer", 100, 80, trial, "wf_class", group, 1.0 + 0.01 * trial + gap, 5))
    groups = pd.DataFrame(rows, columns=["property", "method", "n", "m", "trial", "group_by", "group", "mae", "count"])
    out = {r["group"]: r for r in class_transfer_vs_direct(groups, "p", "wf_class")}
    assert out[WF]["difference"] == pytest.approx(-0.1) and out[WF]["transfer_better"]
    assert out[NON_WF]["direct_better"] and not out[NON_WF]["transfer_better"]
    assert class_transfer_vs_direct(groups, "p", "other_column") == []
