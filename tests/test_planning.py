"""Tests of the planning module: the paper's marginal rates, required n, and the cost planner."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sim2real_scaling.analysis.decisions import (
    marginal_rate_1d,
    marginal_rate_surface,
    plan_for_budget,
    plan_for_target,
    required_n,
    substitution_rate,
)
from sim2real_scaling.analysis.laws import PowerLawFit, fit_power_law_bootstrap
from sim2real_scaling.analysis.surface import SurfaceFit, fit_surface_bootstrap, surface

# Published density surface: R(n, m) = (0.0192 + 0.338 n^-0.265) m^-0.239 + 0.0535
DENSITY = SurfaceFit.from_params(A=0.338, alpha=0.265, B=0.0192, beta=0.239, eps=0.0535)


# ---------------------------------------------------------------------------------------------
# checks against the paper (Minami et al., npj Comput. Mater. 11, 146 (2025))
# ---------------------------------------------------------------------------------------------


def test_paper_density_surface_marginal_rate() -> None:
    rate = marginal_rate_surface(DENSITY, 71_068, 601)
    assert rate.source == "surface"
    assert rate.dR_dn == pytest.approx(-1.41e-8, rel=0.01)
    # the published parameters are rounded to 3 digits; recomputing from them gives
    # dR/dm = -3.163e-6 and a ratio of 223.6 against the paper's -3.13e-6 and 221 (1.1%)
    assert rate.dR_dm == pytest.approx(-3.13e-6, rel=0.02)
    assert rate.sims_per_experiment == pytest.approx(221, rel=0.02)
    assert rate.dm_dn == pytest.approx(-1 / rate.sims_per_experiment)


def test_paper_chi_one_dimensional_marginal_rate() -> None:
    fit_n = PowerLawFit.from_params(0.239, 0.0348, 4.52e-10)  # R(n, 612)
    fit_m = PowerLawFit.from_params(0.863, 0.240, 6.36e-16)  # R(9129, m)
    rate = marginal_rate_1d(fit_n, fit_m, 9129, 612)
    assert rate.source == "1d"
    assert rate.dR_dn == pytest.approx(-6.63e-7, rel=0.01)
    assert rate.dR_dm == pytest.approx(-7.25e-5, rel=0.01)
    assert rate.sims_per_experiment == pytest.approx(109, rel=0.01)


def test_substitution_rate() -> None:
    dm_dn, worth = substitution_rate(-1.0e-8, -2.0e-6)
    assert worth == pytest.approx(200.0)
    assert dm_dn == pytest.approx(-0.005)
    assert math.isinf(substitution_rate(0.0, -1e-6)[1])


# ---------------------------------------------------------------------------------------------
# intervals
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted_density() -> SurfaceFit:
    ns = np.geomspace(100, 7e4, 8)
    ms = np.array([50.0, 100.0, 200.0, 400.0, 600.0])
    n, m = (v.ravel() for v in np.meshgrid(ns, ms))
    rng = np.random.default_rng(11)
    mean = surface(n, m, *DENSITY.params)
    trials = [mu + rng.normal(0, 0.01, 150) for mu in mean]
    return fit_surface_bootstrap(n, m, trials, n_boot=40, seed=0)


def test_marginal_rate_interval_from_bootstrap(fitted_density: SurfaceFit) -> None:
    rate = marginal_rate_surface(fitted_density, 70_000, 600)
    lo, hi = rate.sims_per_experiment_ci
    assert lo <= rate.sims_per_experiment <= hi
    true_rate = marginal_rate_surface(DENSITY, 70_000, 600).sims_per_experiment
    assert lo <= true_rate <= hi
    assert rate.n_boot == 40
    json.dumps(rate.to_dict(), allow_nan=False)
    outside = marginal_rate_surface(fitted_density, 1e7, 600)
    assert "outside the fitted range" in outside.message


def test_marginal_rate_1d_interval() -> None:
    x = np.geomspace(100, 1e4, 8)
    rng = np.random.default_rng(0)
    fit_n = fit_power_law_bootstrap(x, [0.3 * v**-0.3 + 0.05 + rng.normal(0, 0.005, 100) for v in x],
                                    n_boot=40, seed=1)
    xm = np.geomspace(20, 600, 6)
    fit_m = fit_power_law_bootstrap(xm, [0.8 * v**-0.25 + rng.normal(0, 0.005, 100) for v in xm],
                                    n_boot=40, seed=2)
    rate = marginal_rate_1d(fit_n, fit_m, 1e4, 600)
    lo, hi = rate.sims_per_experiment_ci
    assert lo <= rate.sims_per_experiment <= hi
    assert rate.n_boot == 40


# ---------------------------------------------------------------------------------------------
# required n
# ---------------------------------------------------------------------------------------------


def test_required_n_from_surface_and_law() -> None:
    m, target = 601.0, 0.07
    res = required_n(DENSITY, target, m)
    D = 0.338 * m**-0.239
    C = 0.0192 * m**-0.239 + 0.0535
    assert res.reachable
    assert res.value == pytest.approx((D / (target - C)) ** (1 / 0.265))
    assert float(DENSITY.predict(res.value, m)) == pytest.approx(target)
    floor = required_n(DENSITY, C * 0.999, m)
    assert not floor.reachable and math.isinf(floor.value)
    law = PowerLawFit.from_params(D, 0.265, C)
    assert required_n(law, target).value == pytest.approx(res.value)
    with pytest.raises(ValueError):
        required_n(DENSITY, target)


def test_required_n_interval(fitted_density: SurfaceFit) -> None:
    res = required_n(fitted_density, 0.07, 600.0)
    assert res.reachable and res.ci_low <= res.value <= res.ci_high
    assert res.n_boot == 40


# ---------------------------------------------------------------------------------------------
# planner
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b", "c_n", "c_m", "r"), [(0.3, 0.2, 1.0, 50.0, 0.02),
                                                        (0.1, 0.4, 2.0, 1000.0, 0.05)])
def test_planner_closed_form(a: float, b: float, c_n: float, c_m: float, r: float) -> None:
    """R = n^-a m^-b: the cheapest plan satisfies c_n n / (c_m m) = a / b on R = r."""
    surf = SurfaceFit.from_params(A=1.0, alpha=a, B=0.0, beta=b, eps=0.0)
    k = (a / b) * (c_m / c_n)  # n = k m
    m_exact = (r * k**a) ** (-1.0 / (a + b))
    n_exact = k * m_exact
    plan = plan_for_target(surf, r, cost_sim=c_n, cost_exp=c_m, n_max=1e30, m_max=1e30)
    assert plan.feasible
    assert plan.n == pytest.approx(n_exact, rel=1e-5)
    assert plan.m == pytest.approx(m_exact, rel=1e-5)
    assert c_n * plan.n / (c_m * plan.m) == pytest.approx(a / b, rel=1e-5)
    assert plan.mae == pytest.approx(r, rel=1e-9)
    assert plan.tangency == pytest.approx(1.0, rel=1e-4)
    assert plan.bound == []
    # whole samples, rounded up, still meet the target
    assert plan.mae_int <= r and plan.n_int >= plan.n and plan.m_int >= plan.m
    # the dual: the budget of that plan buys exactly the target
    dual = plan_for_budget(surf, plan.cost, cost_sim=c_n, cost_exp=c_m)
    assert dual.feasible
    assert dual.mae == pytest.approx(r, rel=1e-6)
    assert dual.n == pytest.approx(n_exact, rel=1e-4)
    assert dual.cost == pytest.approx(plan.cost, rel=1e-9)
    assert dual.cost_int <= plan.cost


def test_planner_bounds_and_unreachable() -> None:
    free = plan_for_target(DENSITY, 0.065, cost_sim=1.0, cost_exp=221.0)
    assert free.feasible and free.tangency == pytest.approx(1.0, rel=1e-3)
    capped = plan_for_target(DENSITY, 0.065, cost_sim=1.0, cost_exp=221.0, m_max=free.m / 2)
    assert capped.feasible and "m_max" in capped.bound
    assert capped.m == pytest.approx(free.m / 2)
    assert capped.n > free.n and capped.cost > free.cost
    assert float(DENSITY.predict(capped.n, capped.m)) == pytest.approx(0.065)
    # too few simulations allowed and experiments capped: infeasible
    none = plan_for_target(DENSITY, 0.065, cost_sim=1.0, cost_exp=221.0, m_max=10, n_max=1e3)
    assert not none.feasible and "unreachable" in none.message
    below = plan_for_target(DENSITY, 0.05, cost_sim=1.0, cost_exp=221.0)
    assert not below.feasible and "eps" in below.message
    poor = plan_for_budget(DENSITY, 10.0, cost_sim=1.0, cost_exp=221.0)
    assert not poor.feasible and "budget" in poor.message
    with pytest.raises(ValueError):
        plan_for_target(DENSITY, 0.065, cost_sim=0.0, cost_exp=1.0)
    json.dumps(below.to_dict(), allow_nan=False)


def test_budget_with_n_cap_spends_rest_on_experiments() -> None:
    plan = plan_for_budget(DENSITY, 1e6, cost_sim=1.0, cost_exp=221.0, n_max=7e4)
    assert plan.feasible and "n_max" in plan.bound
    assert plan.cost == pytest.approx(1e6, rel=1e-6)
    assert plan.m == pytest.approx((1e6 - 7e4) / 221.0, rel=1e-6)


def test_plan_intervals_over_bootstrap_surfaces(fitted_density: SurfaceFit) -> None:
    plan = plan_for_target(fitted_density, 0.07, cost_sim=1.0, cost_exp=200.0)
    assert plan.feasible and plan.n_boot == 40
    assert plan.n_ci[0] <= plan.n <= plan.n_ci[1]
    assert plan.cost_ci[0] <= plan.cost <= plan.cost_ci[1]
    assert plan.feasible_fraction == pytest.approx(1.0)
    truth = plan_for_target(DENSITY, 0.07, cost_sim=1.0, cost_exp=200.0)
    assert plan.cost_ci[0] <= truth.cost <= plan.cost_ci[1]
    budget = plan_for_budget(fitted_density, plan.cost, cost_sim=1.0, cost_exp=200.0)
    assert budget.mae_ci[0] <= budget.mae <= budget.mae_ci[1]
