"""The one bootstrap of the analysis: the resampling design, its determinism and the pooled pretraining estimate."""

from __future__ import annotations

import numpy as np
import pytest

from sim2real_scaling.analysis.bootstrap import (
    draw_resamples,
    paired_difference,
    point_key,
    resamples_for,
    shrunk_covariance,
    trial_design,
    value_matrix,
)
from sim2real_scaling.analysis.simulate import SimulatedLaw, simulate_trials

N = np.geomspace(100, 1e4, 8).round()


def test_two_stage_weights_resample_replicates_then_trials() -> None:
    ids = np.arange(12)
    res = draw_resamples(ids, ids % 3, 500, np.random.default_rng(0), pooled=False)
    assert res.weights.shape == (500, 12) and np.all(res.weights.sum(axis=1) == 12)
    # a replicate's trials are drawn together: how much weight each replicate gets varies between resamples
    per_replicate = np.stack([res.weights[:, ids % 3 == r].sum(axis=1) for r in range(3)], axis=1)
    assert set(np.unique(per_replicate)) <= {0, 4, 8, 12} and per_replicate.std() > 0
    # few replicates holding several trials each: every replicate kept once, trials resampled within it
    pooled = draw_resamples(ids, ids % 3, 500, np.random.default_rng(0))
    assert pooled.pooled and np.all(np.stack([pooled.weights[:, ids % 3 == r].sum(axis=1) for r in range(3)]) == 4)
    # one trial per replicate: the paired trial bootstrap
    per_trial = draw_resamples(ids, None, 10, np.random.default_rng(0))
    assert not per_trial.pooled and per_trial.n_replicates == 12


def test_resamples_depend_on_seed_property_and_trials_only() -> None:
    table = simulate_trials(SimulatedLaw(), N, [50], 20, 4, seed=1)
    a = resamples_for(table, 50, 3, "p")
    b = resamples_for(table.sample(frac=1.0, random_state=0), 50, 3, "p")  # row order does not matter
    assert np.array_equal(a.weights, b.weights)
    assert not np.array_equal(a.weights, resamples_for(table, 50, 4, "p").weights)
    # older tables without replicates: every trial its own
    ids, reps, note = trial_design(table.drop(columns=["replicate"]))
    assert np.array_equal(ids, reps) and "own pretraining draw" in note
    bad = table.copy()
    bad.loc[bad.index[0], "replicate"] = 3 if bad.loc[bad.index[0], "replicate"] != 3 else 2
    with pytest.raises(ValueError, match="different replicates"):
        trial_design(bad)


def test_pooled_pretraining_estimate_recovers_the_simulated_variance() -> None:
    law = SimulatedLaw(split_sd=0.02, pretrain_sd=0.004, noise_sd=0.003)
    estimates = []
    for seed in range(8):
        table = simulate_trials(law, N, [50], 120, 4, seed=seed)
        res = resamples_for(table, 10, seed, "p")
        values = value_matrix(table, res, [point_key("finetune", n, 50) for n in N], ["method", "n", "m"])
        v, dof = res.pretraining(values, N)
        assert dof == 3 * N.size
        estimates.append(v.mean())
    # the variance the pretraining draws add to a mean: 0.004^2 / 4, despite a split SD 5x larger
    assert np.mean(estimates) == pytest.approx(0.004**2 / 4, rel=0.3)


def test_means_leave_out_diverged_trials_point_by_point() -> None:
    res = draw_resamples(np.arange(4), None, 50, np.random.default_rng(0))
    values = np.array([[1.0, 2.0], [np.nan, 4.0], [3.0, 6.0], [5.0, np.nan]])
    means = res.means(values)
    w = res.weights
    with np.errstate(invalid="ignore"):
        first = (w[:, 0] * 1.0 + w[:, 2] * 3.0 + w[:, 3] * 5.0) / (w[:, 0] + w[:, 2] + w[:, 3])
        second = (w[:, 0] * 2.0 + w[:, 1] * 4.0 + w[:, 2] * 6.0) / (w[:, 0] + w[:, 1] + w[:, 2])
    assert np.allclose(means[:, 0], first, equal_nan=True) and np.allclose(means[:, 1], second, equal_nan=True)


def test_paired_difference_needs_two_trials() -> None:
    res = draw_resamples(np.arange(30), None, 200, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    split = rng.normal(0, 0.05, 30)
    d = paired_difference(0.1 + split, 0.12 + split + rng.normal(0, 0.002, 30), res, 0.9)
    assert d["first_better"] and d["ci_high"] < 0  # the shared split cancels: a tight, paired interval
    one = paired_difference(np.r_[0.1, [np.nan] * 29], np.r_[0.2, [np.nan] * 29], res, 0.9)
    assert one["first_better"] is None and "one trial" in one["note"]


def test_shrunk_covariance_keeps_variances() -> None:
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(50, 20)) * np.arange(1, 21)
    cov = shrunk_covariance(samples)
    assert np.allclose(np.diag(cov), samples.var(axis=0, ddof=1))
    assert np.all(np.linalg.eigvalsh(cov) > 0)
