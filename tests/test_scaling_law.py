"""Tests of the 1-D scaling law R(x) = D x^-alpha + C: recovery, intervals, model choice, failures, the lmfit
Model and the generalised least squares that make chi2 mean what it says."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sim2real_scaling.analysis.bootstrap import draw_resamples
from sim2real_scaling.analysis.laws import (
    PowerLawFit,
    PowerLawModel,
    RequiredX,
    fit_power_law,
    fit_power_law_bootstrap,
    fit_power_law_summary,
    fit_power_law_trials,
    quantile_inf,
    required_x,
)

TRUE = {"D": 0.3, "alpha": 0.3, "C": 0.05}
X = np.geomspace(100, 7e4, 10)


def _trials(seed: int, D: float = 0.3, alpha: float = 0.3, C: float = 0.05, sd: float = 0.01,
            T: int = 200) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    mean = D * X ** (-alpha) + C
    return [mu + rng.normal(0.0, sd, T) for mu in mean]


def test_noise_free_curve_is_recovered_exactly() -> None:
    y = 0.3 * X**-0.3 + 0.05
    fit = fit_power_law(X, y)
    assert fit.status == "ok"
    assert fit.D == pytest.approx(0.3, rel=1e-5)
    assert fit.alpha == pytest.approx(0.3, rel=1e-5)
    assert fit.C == pytest.approx(0.05, rel=1e-5)


def test_recovers_parameters_from_noisy_trials() -> None:
    fit = fit_power_law_bootstrap(X, _trials(1), n_boot=100, seed=0)
    assert fit.ok and fit.weighted and fit.bootstrap == "replicates, then trials"
    assert fit.alpha == pytest.approx(0.3, rel=0.1)
    assert fit.C == pytest.approx(0.05, rel=0.1)
    assert fit.D == pytest.approx(0.3, rel=0.15)
    for name, value in TRUE.items():
        lo, hi = getattr(fit, f"{name}_ci")
        assert lo <= value <= hi, (name, lo, hi)
        assert lo <= getattr(fit, name) <= hi
    # the law with a floor is clearly preferred on data with a floor
    assert fit.preferred == "floor" and fit.preferred_aic == "floor"
    assert fit.delta_bic < 0 and fit.delta_aic < 0
    assert fit.floor and fit.boot_samples.shape == (100, 3)
    assert 0.3 < fit.redchi < 3.0 and fit.p_value > 0.01 and not fit.warnings
    assert "stderr" not in fit.to_dict()  # one quoted uncertainty: the bootstrap interval


def test_bootstrap_intervals_cover_truth_in_most_replicates() -> None:
    covered = {k: 0 for k in TRUE}
    reps = 20
    for seed in range(reps):
        fit = fit_power_law_bootstrap(X, _trials(100 + seed, T=100), n_boot=60, seed=seed)
        assert fit.ok
        for k, v in TRUE.items():
            lo, hi = getattr(fit, f"{k}_ci")
            covered[k] += lo <= v <= hi
    # nominal 90%: fewer than 14 of 20 would be very unlikely (p ~ 0.002)
    for k, c in covered.items():
        assert c >= 14, (k, c)


def test_parametric_bootstrap_from_summary() -> None:
    trials = _trials(7)
    mean = np.array([t.mean() for t in trials])
    sem = np.array([t.std(ddof=1) / math.sqrt(t.size) for t in trials])
    fit = fit_power_law_summary(X, mean, sem, n_boot=100, seed=3)
    assert fit.ok and fit.bootstrap == "parametric"
    for name, value in TRUE.items():
        lo, hi = getattr(fit, f"{name}_ci")
        assert lo <= value <= hi, (name, lo, hi)
    # same seed, same answer
    again = fit_power_law_summary(X, mean, sem, n_boot=100, seed=3)
    assert np.array_equal(fit.boot_samples, again.boot_samples)


def test_log_space_fit() -> None:
    trials = _trials(2)
    fit = fit_power_law_bootstrap(X, trials, n_boot=30, seed=0, space="log")
    assert fit.ok and fit.space == "log"
    assert fit.alpha == pytest.approx(0.3, rel=0.1)
    assert fit.C == pytest.approx(0.05, rel=0.1)
    unweighted = fit_power_law(X, [t.mean() for t in trials], None, space="log")
    assert unweighted.ok and not unweighted.weighted
    assert unweighted.alpha == pytest.approx(0.3, rel=0.2)


def test_no_floor_data_prefers_no_floor_by_bic() -> None:
    trials = _trials(3, D=0.3, alpha=0.3, C=0.0, sd=0.002)
    fit = fit_power_law_bootstrap(X, trials, n_boot=30, seed=0)
    assert fit.ok
    assert fit.preferred == "no_floor" and fit.delta_bic > 0
    # the headline is the law model selection prefers: no C term
    assert not fit.floor and fit.C == 0.0 and fit.equation() == f"MAE = {fit.D:.3g} n^-{fit.alpha:.3g}"
    assert fit.alpha == pytest.approx(fit.alpha_no_floor)
    assert fit.alpha == pytest.approx(0.3, rel=0.05)
    assert fit.C_floor < 0.002
    forced = fit_power_law_bootstrap(X, trials, n_boot=30, seed=0, floor=True)
    assert forced.ok and forced.floor and forced.alpha == pytest.approx(fit.alpha_floor)


def test_floor_is_bounded_by_smallest_mean() -> None:
    y = np.array([1.0, 0.8, 0.7, 0.65, 0.64, 0.635])
    x = np.geomspace(100, 1e5, y.size)
    fit = fit_power_law(x, y)
    assert fit.ok
    assert 0.0 <= fit.C <= y.min()


@pytest.mark.parametrize(
    ("x", "y", "status"),
    [
        ([100, 1000], [0.2, 0.1], "too_few_points"),
        ([100, 100, 1000, 1000], [0.2, 0.21, 0.1, 0.11], "too_few_points"),
        ([100, 1000, 1e4], [0.2, float("nan"), 0.1], "invalid_input"),
        ([0, 1000, 1e4], [0.2, 0.15, 0.1], "invalid_input"),
        ([100, 1000, 1e4], [0.2, 0.15], "invalid_input"),
        ([100, 1000, 1e4], [0.2, -0.15, 0.1], "invalid_input"),
    ],
)
def test_failures_return_status_not_exceptions(x: list[float], y: list[float], status: str) -> None:
    fit = fit_power_law(x, y)
    assert fit.status == status
    assert not fit.ok and fit.message
    assert math.isnan(fit.D) and math.isnan(fit.alpha) and math.isnan(fit.C)
    assert np.isnan(fit.predict([100.0])).all()
    assert json.dumps(fit.to_dict(), allow_nan=False)


def test_bootstrap_failure_paths() -> None:
    assert fit_power_law_bootstrap([1, 2, 3], [np.ones(3), np.array([])]).status == "invalid_input"
    assert fit_power_law_bootstrap([1, 2, 3], [np.ones(3)] * 2).status == "invalid_input"
    assert fit_power_law([1, 2, 3], [1, 2, 3], space="cubic").status == "invalid_input"
    # a point where every trial diverged cannot be fitted
    dead = [np.array([0.1, 0.12]), np.array([np.nan, np.nan]), np.array([0.1, 0.2])]
    assert fit_power_law_bootstrap([1, 2, 3], dead).status == "invalid_input"


def test_diverged_trials_are_left_out_point_by_point() -> None:
    trials = _trials(4, T=60)
    clean = fit_power_law_bootstrap(X, trials, n_boot=40, seed=0)
    trials[3] = trials[3].copy()
    trials[3][7] = np.nan  # trial 7 diverged at one n: its other points still count
    fit = fit_power_law_bootstrap(X, trials, n_boot=40, seed=0)
    assert fit.ok and fit.n_boot_failed == 0
    assert fit.alpha == pytest.approx(clean.alpha, rel=0.05)


def test_one_trial_gives_no_interval() -> None:
    fit = fit_power_law_bootstrap(X, [np.array([v]) for v in 0.3 * X**-0.3 + 0.05], n_boot=50, seed=0)
    assert fit.ok and not fit.weighted and fit.n_boot == 0
    assert all(math.isnan(v) for v in fit.alpha_ci)
    assert "single trial" in fit.message


def test_paired_design_gives_a_narrower_covering_interval() -> None:
    """Trial t shares its split at every x: the split cancels in the slope, so the paired resampling gives a
    narrow interval for alpha that still covers it; treating each x's trials as unrelated would not."""
    T = 100

    def shared_split_trials(seed: int) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        split_effect = rng.normal(0.0, 0.02, T)
        return [0.3 * x**-0.3 + 0.05 + split_effect + rng.normal(0, 0.003, T) for x in X]

    trials = shared_split_trials(5)
    paired = fit_power_law_bootstrap(X, trials, n_boot=80, seed=1, floor=True)
    unpaired = fit_power_law_bootstrap(X, trials, n_boot=80, seed=1, floor=True,
                                       trial_ids=[np.arange(T) + j * T for j in range(X.size)])
    width = lambda f: f.alpha_ci[1] - f.alpha_ci[0]  # noqa: E731
    assert width(paired) < 0.5 * width(unpaired)
    covered = 0
    for seed in range(15):
        f = fit_power_law_bootstrap(X, shared_split_trials(seed), n_boot=60, seed=seed)
        covered += f.alpha_ci[0] <= 0.3 <= f.alpha_ci[1]
    assert covered >= 11  # nominal 90%: P(<= 10 of 15) ~ 0.013
    # a diverged trial missing at one x: pairing by trial id still works
    ids = [np.arange(T) for _ in X]
    trials[4], ids[4] = trials[4][1:], ids[4][1:]
    by_id = fit_power_law_bootstrap(X, trials, n_boot=40, seed=1, trial_ids=ids)
    assert by_id.ok and by_id.n_boot_failed == 0


def test_gls_chi2_follows_its_distribution_under_the_paired_design() -> None:
    """Trials share a split effect across x: weighting each mean by its own SE made chi2/dof ~0.2; with the
    covariance of the paired means it averages ~1."""
    T = 150
    chi, pvals = [], []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        split = rng.normal(0.0, 0.02, T)
        trials = [0.3 * x**-0.3 + 0.05 + split + rng.normal(0, 0.003, T) for x in X]
        fit = fit_power_law_bootstrap(X, trials, n_boot=0, seed=seed, floor=True)
        chi.append(fit.chi2_design / fit.dof)
        pvals.append(fit.p_value)
    assert 0.7 < np.mean(chi) < 1.4, np.mean(chi)
    assert 0.25 < np.mean(np.array(pvals) < 0.5) < 0.75


def test_cluster_resampling_widens_intervals_when_pretraining_is_shared() -> None:
    """200 trials fine-tune 4 pretrained networks per x: resampling trials alone sees 200 independent values,
    so the means scatter around the law far more than it explains (only the lack-of-fit term saves its
    interval); the replicate-aware resampling sees the 4 draws, explains the scatter and is wider still."""
    T, R = 200, 4
    rng = np.random.default_rng(11)
    split = rng.normal(0.0, 0.02, T)
    pre = rng.normal(0.0, 0.004, (R, X.size))
    trials = [0.3 * x**-0.3 + 0.05 + split + pre[np.arange(T) % R, j] + rng.normal(0, 0.003, T)
              for j, x in enumerate(X)]
    naive = fit_power_law_bootstrap(X, trials, n_boot=100, seed=1, floor=True)
    aware = fit_power_law_bootstrap(X, trials, n_boot=100, seed=1, floor=True, replicates=np.arange(T) % R)
    width = lambda f: f.alpha_ci[1] - f.alpha_ci[0]  # noqa: E731
    assert aware.replicates == R and naive.replicates == T
    assert naive.p_value < 1e-6 and naive.tau2 > 0 and any("scatter" in w for w in naive.warnings)
    assert aware.p_value > 0.01
    assert width(aware) > width(naive)


def test_power_law_model_is_an_lmfit_model_with_a_closed_form_guess() -> None:
    import lmfit

    y = 0.3 * X**-0.3 + 0.05
    model = PowerLawModel(x0=float(np.exp(np.log(X).mean())), cmax=float(y.min()))
    assert isinstance(model, lmfit.Model)
    guess = model.guess(y, x=X)
    assert guess["alpha"].value == pytest.approx(0.3, rel=1e-4)  # the projection is already the optimum
    result = model.fit(y, guess, x=X, cov=np.diag((0.01 * y) ** 2))
    assert result.params["D"].value == pytest.approx(0.3, rel=1e-6)
    assert result.params["C"].value == pytest.approx(0.05, rel=1e-6)


def test_a_law_that_does_not_decay_is_no_scaling() -> None:
    rng = np.random.default_rng(2)
    flat = [0.1 + rng.normal(0, 0.01, 80) for _ in X]
    fit = fit_power_law_bootstrap(X, flat, n_boot=40, seed=0, floor=True)
    assert fit.status == "no_scaling" and not fit.ok and fit.has_params
    assert "no scaling detected" in fit.message
    assert not required_x(fit, 0.05).reachable


def test_trials_matrix_with_ids_and_replicates() -> None:
    values = np.column_stack(_trials(9, T=50))
    resamples = draw_resamples(np.arange(50), np.arange(50) % 5, 400, np.random.default_rng(0))
    fit = fit_power_law_trials(X, values, resamples, n_boot=100)
    assert fit.ok and fit.replicates == 5 and fit.trials == 50 and fit.n_boot == 100


def test_predict_derivative_and_equation() -> None:
    fit = PowerLawFit.from_params(0.0684, 0.0145, 1.75e-11)
    assert fit.equation() == "MAE = 0.0684 n^-0.0145 + 1.75e-11"
    assert PowerLawFit.from_params(0.2, 0.3).equation() == "MAE = 0.2 n^-0.3"
    x = np.array([1e3, 1e4])
    assert np.allclose(fit.predict(x), 0.0684 * x**-0.0145 + 1.75e-11)
    h = 1e-3
    numeric = (fit.predict(x * (1 + h)) - fit.predict(x * (1 - h))) / (2 * h * x)
    assert np.allclose(fit.derivative(x), numeric, rtol=1e-5)


def test_required_x() -> None:
    fit = fit_power_law_bootstrap(X, _trials(6), n_boot=60, seed=0)
    target = 0.07
    res = required_x(fit, target)
    assert isinstance(res, RequiredX)
    value, lo, hi, reachable = res  # unpacks like a 4-tuple
    assert reachable and res.reachable_fraction == pytest.approx(1.0)
    assert value == pytest.approx((fit.D / (target - fit.C)) ** (1 / fit.alpha))
    assert fit.predict(value) == pytest.approx(target)
    assert lo <= value <= hi
    true_x = (0.3 / (target - 0.05)) ** (1 / 0.3)
    assert lo <= true_x <= hi

    below = required_x(fit, fit.C * 0.5)
    assert not below.reachable and math.isinf(below.value) and "unreachable" in below.message
    assert below.reachable_fraction == pytest.approx(0.0)
    json.dumps(below.to_dict(), allow_nan=False)

    # a target just above the floor: reachable for some bootstrap samples only
    edge = required_x(fit, fit.C_ci[1])
    assert 0.0 < edge.reachable_fraction < 1.0
    assert math.isinf(edge.ci_high)
    # answers outside the measured range are flagged
    easy = required_x(fit, float(fit.predict(X.min())) * 1.5)
    assert easy.measured == "below" and "below the smallest" in easy.message
    hard = required_x(fit, float(fit.predict(X.max())) * 0.99)
    assert hard.measured == "above" and "extrapolated" in hard.message


def test_required_x_on_failed_fit() -> None:
    res = required_x(fit_power_law([1, 2], [1, 2]), 0.5)
    assert not res.reachable and math.isnan(res.value)


def test_serialisation_round_trip() -> None:
    fit = fit_power_law_bootstrap(X, _trials(8), n_boot=20, seed=0)
    d = fit.to_dict()
    text = json.dumps(d, allow_nan=False)
    back = PowerLawFit.from_dict(json.loads(text))
    assert back == fit  # boot samples are not part of equality
    assert back.alpha == fit.alpha  # unrounded
    assert back.boot_samples.shape == (0, 3)


def test_quantile_inf() -> None:
    assert quantile_inf([1.0, 2.0, 3.0], 0.5) == 2.0
    assert math.isinf(quantile_inf([1.0, 2.0, np.inf], 0.95))
    assert quantile_inf([1.0, 2.0, np.inf, np.inf], 0.0) == 1.0
    assert math.isnan(quantile_inf([], 0.5))
