"""Tests of the 2-D surface R(n, m) = (A n^-alpha + B) m^-beta + eps: recovery, gradients, goodness."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sim2real_scaling.analysis.laws import required_x
from sim2real_scaling.analysis.surface import SurfaceFit, fit_surface, fit_surface_bootstrap, runs_test, surface

# the published density surface (Minami et al. 2025)
TRUE = {"A": 0.338, "alpha": 0.265, "B": 0.0192, "beta": 0.239, "eps": 0.0535}
NS = np.geomspace(100, 7e4, 8)
MS = np.array([50.0, 100.0, 200.0, 400.0, 600.0])


def _grid() -> tuple[np.ndarray, np.ndarray]:
    n, m = np.meshgrid(NS, MS)
    return n.ravel(), m.ravel()


def _trials(seed: int, mean: np.ndarray, sd: float = 0.01, T: int = 150) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [mu + rng.normal(0.0, sd, T) for mu in mean]


@pytest.fixture(scope="module")
def density_fit() -> SurfaceFit:
    n, m = _grid()
    return fit_surface_bootstrap(n, m, _trials(3, surface(n, m, **TRUE)), n_boot=40, seed=0)


def test_noise_free_surface_is_recovered() -> None:
    n, m = _grid()
    fit = fit_surface(n, m, surface(n, m, **TRUE))
    assert fit.ok
    for k, v in TRUE.items():
        assert getattr(fit, k) == pytest.approx(v, rel=1e-4), k
    assert fit.r2 == pytest.approx(1.0)


def test_recovers_parameters_from_noisy_grid(density_fit: SurfaceFit) -> None:
    fit = density_fit
    assert fit.ok and fit.weighted and fit.n_points == 40 and fit.dof == 35
    assert fit.alpha == pytest.approx(TRUE["alpha"], rel=0.15)
    assert fit.beta == pytest.approx(TRUE["beta"], rel=0.15)
    assert fit.eps == pytest.approx(TRUE["eps"], rel=0.1)
    assert fit.A == pytest.approx(TRUE["A"], rel=0.3)
    for k, v in TRUE.items():
        lo, hi = getattr(fit, f"{k}_ci")
        assert lo <= v <= hi, (k, lo, hi)
        assert getattr(fit, f"{k}_sd") > 0
    assert fit.boot_samples.shape == (40, 5) and fit.n_boot_failed == 0
    # the surface describes data generated from it
    assert fit.holds, fit.holds_explanation
    assert 0.5 < fit.chi2_dof < 2.0
    assert fit.r2 > 0.95
    assert 0.5 < fit.rms_over_se < 1.5
    assert fit.std_residuals.shape == (40,)


def test_gradients_match_finite_differences(density_fit: SurfaceFit) -> None:
    fit = density_fit
    n, m, h = 5000.0, 300.0, 1e-4
    dn = (fit.predict(n * (1 + h), m) - fit.predict(n * (1 - h), m)) / (2 * h * n)
    dm = (fit.predict(n, m * (1 + h)) - fit.predict(n, m * (1 - h))) / (2 * h * m)
    assert float(fit.grad_n(n, m)) == pytest.approx(float(dn), rel=1e-6)
    assert float(fit.grad_m(n, m)) == pytest.approx(float(dm), rel=1e-6)
    gn, gm = fit.boot_grad(n, m)
    assert gn.shape == gm.shape == (40,)
    assert np.all(gn < 0) and np.all(gm < 0)


def test_law_at_m_matches_surface(density_fit: SurfaceFit) -> None:
    fit = density_fit
    law = fit.law_at_m(300.0)
    n = np.array([100.0, 1e4, 1e6])
    assert np.allclose(law.predict(n), fit.predict(n, 300.0))
    assert law.C == pytest.approx(fit.B * 300.0 ** -fit.beta + fit.eps)
    assert law.boot_samples.shape == (40, 3)
    res = required_x(law, 0.07)
    assert res.reachable and res.ci_low <= res.value <= res.ci_high


def test_surface_bootstrap_keeps_the_pairing_and_the_replicates() -> None:
    n, m = _grid()
    T = 120
    rng = np.random.default_rng(4)
    split = rng.normal(0.0, 0.02, T)
    trials = [mu + split + rng.normal(0.0, 0.005, T) for mu in surface(n, m, **TRUE)]
    fit = fit_surface_bootstrap(n, m, trials, n_boot=10, seed=0, replicates=np.arange(T) % 6)
    assert fit.ok and fit.n_boot == 10 and fit.replicates == 6 and fit.trials == T
    assert "pretraining effects from the pooled replicate variance" in fit.bootstrap
    # the split effect shared by every point does not make the surface look wrong: chi2 under the covariance
    # of the paired means is of the size of its degrees of freedom
    assert fit.holds and fit.chi2_dof < 3


def test_surface_model_is_an_lmfit_model() -> None:
    import lmfit

    from sim2real_scaling.analysis.surface import SurfaceModel

    n, m = _grid()
    y = surface(n, m, **TRUE)
    model = SurfaceModel(n0=float(np.exp(np.log(n).mean())), m0=float(np.exp(np.log(m).mean())), cmax=float(y.min()))
    assert isinstance(model, lmfit.Model)
    result = model.fit(y, model.guess(y, n=n, m=m), n=n, m=m, cov=np.diag((0.01 * y) ** 2))
    for k in ("A", "alpha", "B", "beta", "eps"):
        assert result.params[k].value == pytest.approx(TRUE[k], rel=1e-4), k


def test_non_product_surface_does_not_hold() -> None:
    """Decay rate in n that grows with m (as in the paper's chi study) breaks the product form."""
    n, m = _grid()
    alpha_m = 0.02 + 0.5 * m / 600.0
    mean = 0.5 * n ** (-alpha_m) * m**-0.2 + 0.02
    fit = fit_surface_bootstrap(n, m, _trials(5, mean, sd=0.005, T=100), n_boot=0)
    assert fit.ok
    assert not fit.holds
    assert "does not describe" in fit.holds_explanation
    assert fit.chi2_dof > 3.0


def test_unweighted_fit_and_log_space() -> None:
    n, m = _grid()
    mean = np.array([t.mean() for t in _trials(9, surface(n, m, **TRUE))])
    fit = fit_surface(n, m, mean)
    assert fit.ok and not fit.weighted and math.isnan(fit.chi2_dof)
    assert fit.alpha == pytest.approx(TRUE["alpha"], rel=0.25)
    logfit = fit_surface(n, m, mean, space="log")
    assert logfit.ok and logfit.space == "log"
    assert logfit.beta == pytest.approx(TRUE["beta"], rel=0.25)


@pytest.mark.parametrize(
    ("n", "m", "status"),
    [
        (NS, np.full(NS.size, 600.0), "too_few_points"),
        (np.r_[NS, NS], np.r_[np.full(8, 100.0), np.full(8, 600.0)], "too_few_points"),
        (np.r_[0.0, NS[1:]], np.linspace(50, 600, 8), "invalid_input"),
    ],
)
def test_failures(n: np.ndarray, m: np.ndarray, status: str) -> None:
    fit = fit_surface(n, m, 0.1 + 0.01 * np.arange(n.size) % 3)
    assert fit.status == status and not fit.holds
    json.dumps(fit.to_dict(), allow_nan=False)


def test_bootstrap_input_errors() -> None:
    n, m = _grid()
    fit = fit_surface_bootstrap(n, m, [np.ones(3)] * 5)
    assert fit.status == "invalid_input"


def test_serialisation_round_trip(density_fit: SurfaceFit) -> None:
    d = json.loads(json.dumps(density_fit.to_dict(), allow_nan=False))
    back = SurfaceFit.from_dict(d)
    assert back == density_fit
    assert d["equation"].startswith("MAE = (")


def test_runs_test() -> None:
    alternating = [np.array([True, False] * 10)]
    blocks = [np.array([True] * 10 + [False] * 10)]
    assert runs_test(alternating)[1] > 0.5
    z, p = runs_test(blocks)
    assert z < -3 and p < 0.001
    assert math.isnan(runs_test([np.array([True, True, True])])[1])
