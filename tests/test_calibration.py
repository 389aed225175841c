"""Calibration, measured in the suite: studies simulated from known laws, with a split effect shared across n and m
and a pretraining effect per replicate and n, go through the command-line tool as a user runs it
(``sim2real-scaling fit|rate SUMMARY --trials TRIALS --json``), and the 90% intervals must cover the truth in at
least 85% of them, no wider than 1.3 times what the estimates' own spread calls for.

The fuller measurement (100 studies per setting, 1, 4 and one replicate per trial) is benchmarks/calibration.py;
its numbers are in docs/analysis.md. Seeds are fixed, so the counts below are reproducible.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("calibration_benchmark", ROOT / "benchmarks" / "calibration.py")
calibration = importlib.util.module_from_spec(_spec)
sys.modules["calibration_benchmark"] = calibration
_spec.loader.exec_module(calibration)


def _needed_widths(studies: int, trials: int, replicates: int, seed0: int) -> tuple[float, float]:
    """2 x 1.645 x the SD of the estimates of alpha and C across many studies (point fits only: cheap)."""
    from sim2real_scaling.analysis.bootstrap import point_key, resamples_for, value_matrix
    from sim2real_scaling.analysis.laws import fit_power_law_trials
    from sim2real_scaling.analysis.simulate import simulate_trials

    n = calibration.N_LAW
    estimates = []
    for s in range(studies):
        table = simulate_trials(calibration.LAW, n, calibration.M_LAW, trials, replicates, seed0 + s)
        resamples = resamples_for(table, 300, s, "p")
        values = value_matrix(table, resamples, [point_key("finetune", x, calibration.M_LAW[0]) for x in n],
                              ["method", "n", "m"])
        fit = fit_power_law_trials(n, values, resamples, n_boot=0)
        estimates.append((fit.alpha, fit.C))
    sd = np.std(np.array(estimates), axis=0, ddof=1)
    return 2 * 1.6448536269514722 * float(sd[0]), 2 * 1.6448536269514722 * float(sd[1])


def test_law_intervals_cover_alpha_and_c_through_the_cli() -> None:
    alpha, c = calibration.calibrate_law(studies=60, trials=100, replicates=4, seed0=1000)
    for row in (alpha, c):
        assert row["coverage"] >= 0.85, row
    # the width the estimates' spread calls for, from 150 further studies (60 give it only to +-20%)
    for row, needed in zip((alpha, c), _needed_widths(150, 100, 4, 5000), strict=True):
        assert 0.7 <= row["median_width"] / needed <= 1.3, (row, needed)


def test_rate_of_substitution_interval_covers_the_truth_through_the_cli(monkeypatch) -> None:
    monkeypatch.setattr(calibration, "N_SURFACE", np.geomspace(100, 1e4, 5).round())
    monkeypatch.setattr(calibration, "M_SURFACE", [20, 50, 120])
    (rate,) = calibration.calibrate_rate(studies=30, trials=100, replicates=4, seed0=2000)
    assert rate["coverage"] >= 0.85, rate
    assert 0.7 <= rate["width_ratio"] <= 1.3, rate
