"""Using a fitted law: marginal rate of substitution, required n, and a cost planner.

Marginal rate of substitution (MRS) at (n, m): along an indifference curve R(n, m) = r,

    dm/dn = -(dR/dn) / (dR/dm)      and      simulations worth one experiment = (dR/dm) / (dR/dn),

from the surface (:class:`~sim2real_scaling.analysis.surface.SurfaceFit`) or - when the surface does not hold,
as in the paper's chi study - from two 1-D laws: R(n) at fixed m and R(m) at fixed n.

Planner: with cost ``c_n`` per simulation and ``c_m`` per experiment (any common currency),
``plan_for_target`` finds the cheapest (n, m) with R(n, m) <= r and ``plan_for_budget`` the lowest
R(n, m) with ``c_n n + c_m m <= budget``. Both search over m (dense log grid, then bounded Brent
refinement) with n in closed form: for a target, ``n(m) = (A m^-beta / (r - B m^-beta - eps))^(1/alpha)``;
for a budget, ``n(m) = (budget - c_m m) / c_n``. At an interior optimum the tangency condition
``(dR/dn) / (dR/dm) = c_n / c_m`` holds; :attr:`Plan.tangency` reports the ratio of the two sides.
Intervals come from re-solving the plan for every bootstrap surface.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from sim2real_scaling.analysis.laws import PowerLawFit, RequiredX, _finite_or_none, _interval, required_x
from sim2real_scaling.analysis.surface import SurfaceFit

__all__ = [
    "MarginalRate",
    "Plan",
    "substitution_rate",
    "marginal_rate_surface",
    "marginal_rate_1d",
    "required_n",
    "plan_for_target",
    "plan_for_budget",
]


def substitution_rate(dR_dn: float, dR_dm: float) -> tuple[float, float]:
    """``(dm/dn, simulations worth one experiment)`` from the two partial derivatives.

    ``dm/dn = -(dR/dn)/(dR/dm)`` (experiments per simulation along R = const, negative) and
    ``1/|dm/dn| = (dR/dm)/(dR/dn)``; ``inf`` when simulations no longer help (dR/dn = 0).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        dm_dn = -np.float64(dR_dn) / np.float64(dR_dm)
        worth = np.float64(dR_dm) / np.float64(dR_dn)
    if dR_dn == 0 and dR_dm != 0:
        worth = np.float64(np.inf)
    return float(dm_dn), float(worth)


@dataclass
class MarginalRate:
    """Marginal rate of substitution between simulations and experiments at (n, m).

    ``dR_dn`` in property units per simulated sample, ``dR_dm`` per experimental sample;
    ``sims_per_experiment = (dR/dm)/(dR/dn)``; ``dm_dn = -(dR/dn)/(dR/dm)``. ``*_ci``: percentile
    intervals over bootstrap samples (NaN without). ``source``: ``"surface"`` or ``"1d"``.
    """

    n: float
    m: float
    dR_dn: float
    dR_dm: float
    dm_dn: float
    sims_per_experiment: float
    dR_dn_ci: tuple[float, float] = (math.nan, math.nan)
    dR_dm_ci: tuple[float, float] = (math.nan, math.nan)
    dm_dn_ci: tuple[float, float] = (math.nan, math.nan)
    sims_per_experiment_ci: tuple[float, float] = (math.nan, math.nan)
    source: str = "surface"
    ci_level: float = 0.90
    n_boot: int = 0
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN/inf -> None), unrounded."""
        return {k: _finite_or_none(getattr(self, k)) for k in self.__dataclass_fields__}


def _rate_from_samples(
    n: float, m: float, gn: float, gm: float, gn_b: np.ndarray, gm_b: np.ndarray,
    ci: float, source: str, message: str = "",
) -> MarginalRate:
    dm_dn, worth = substitution_rate(gn, gm)
    rate = MarginalRate(n=float(n), m=float(m), dR_dn=float(gn), dR_dm=float(gm), dm_dn=dm_dn,
                        sims_per_experiment=worth, source=source, ci_level=ci, message=message)
    k = min(gn_b.size, gm_b.size)
    if k >= 2:
        gn_b, gm_b = gn_b[:k], gm_b[:k]
        with np.errstate(divide="ignore", invalid="ignore"):
            worth_b = np.where(gn_b == 0, np.inf, gm_b / gn_b)
            dm_dn_b = np.where(gm_b == 0, -np.inf, -gn_b / gm_b)
        rate.dR_dn_ci = _interval(gn_b, ci)
        rate.dR_dm_ci = _interval(gm_b, ci)
        rate.sims_per_experiment_ci = _interval(worth_b, ci)
        finite = dm_dn_b[np.isfinite(dm_dn_b)]
        rate.dm_dn_ci = _interval(finite, ci) if finite.size >= 2 else (math.nan, math.nan)
        rate.n_boot = int(k)
    return rate


def marginal_rate_surface(
    fit: SurfaceFit, n: float, m: float, *, ci: float | None = None
) -> MarginalRate:
    """MRS at (n, m) from the surface's partial derivatives, with bootstrap intervals.

    Args:
        fit: fitted (or published, :meth:`SurfaceFit.from_params`) surface.
        n: simulated samples; m: experimental samples.
        ci: interval level (default: the fit's).

    Returns:
        :class:`MarginalRate` with ``source="surface"``; its message warns when the surface does
        not hold or (n, m) lies outside the fitted ranges.
    """
    ci = fit.ci_level if ci is None else ci
    gn = float(fit.grad_n(n, m))
    gm = float(fit.grad_m(n, m))
    gn_b, gm_b = fit.boot_grad(n, m) if fit.boot_samples.size else (np.empty(0), np.empty(0))
    notes = []
    if not fit.holds and fit.holds_explanation:
        notes.append(fit.holds_explanation)
    for name, v, (lo, hi) in (("n", n, fit.n_range), ("m", m, fit.m_range)):
        if math.isfinite(lo) and not (lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9)):
            notes.append(f"{name} = {v:g} outside the fitted range [{lo:g}, {hi:g}]")
    return _rate_from_samples(n, m, gn, gm, gn_b, gm_b, ci, "surface", "; ".join(notes))


def marginal_rate_1d(
    fit_n: PowerLawFit, fit_m: PowerLawFit, n: float, m: float, *, ci: float | None = None
) -> MarginalRate:
    """MRS at (n, m) from two 1-D laws (the paper's fallback when the surface fails).

    Args:
        fit_n: law R(n) fitted at fixed m (ideally at this m).
        fit_m: law R(m) fitted at fixed n (ideally at this n).
        n, m: where to take the gradients.
        ci: interval level (default: ``fit_n``'s).

    Returns:
        :class:`MarginalRate` with ``source="1d"``; bootstrap samples of the two fits are paired by index: fits
        made by the study (or the command-line tool) from one property's resamples share resample b, so the
        pair is a joint draw that keeps the correlation of the two laws.
    """
    ci = fit_n.ci_level if ci is None else ci
    gn = float(fit_n.derivative(n))
    gm = float(fit_m.derivative(m))
    gn_b = fit_n.boot_derivative(n)[:, 0] if fit_n.boot_samples.size else np.empty(0)
    gm_b = fit_m.boot_derivative(m)[:, 0] if fit_m.boot_samples.size else np.empty(0)
    k = min(gn_b.size, gm_b.size)
    both = np.isfinite(gn_b[:k]) & np.isfinite(gm_b[:k])
    good_n, good_m = gn_b[:k][both], gm_b[:k][both]
    notes = [f"{k} fit not ok ({f.status})" for k, f in (("R(n)", fit_n), ("R(m)", fit_m)) if not f.ok]
    for name, v, f in (("n", n, fit_n), ("m", m, fit_m)):
        if math.isfinite(f.x_max) and not (f.x_min * (1 - 1e-9) <= v <= f.x_max * (1 + 1e-9)):
            notes.append(f"{name} = {v:g} outside the measured range [{f.x_min:g}, {f.x_max:g}]")
    return _rate_from_samples(n, m, gn, gm, good_n, good_m, ci, "1d", "; ".join(notes))


def required_n(
    fit: SurfaceFit | PowerLawFit, target: float, m: float | None = None, *, ci: float | None = None
) -> RequiredX:
    """Simulated samples n needed to reach a target MAE (property units) at fixed m.

    Args:
        fit: a surface (then ``m`` is required) or a 1-D law R(n) (fitted at the m of interest).
        target: target MAE.
        m: experimental samples (surface only).
        ci: interval level.

    Returns:
        :class:`~sim2real_scaling.analysis.laws.RequiredX` (``inf`` / ``reachable=False`` when the
        target is at or below the floor ``C = B m^-beta + eps``).
    """
    if isinstance(fit, SurfaceFit):
        if m is None:
            raise ValueError("required_n from a surface needs m")
        law = fit.law_at_m(m)
        return required_x(law, target, ci)
    return required_x(fit, target, ci)


# ----------------------------------------------------------------------------------------------
# Planner
# ----------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """The cheapest (n, m) for a target MAE, or the lowest MAE for a budget.

    Sizes in samples (continuous optimum; ``n_int``/``m_int`` rounded so that the plan still meets
    the target - up - or the budget - down), ``cost`` in the currency of ``cost_sim``/``cost_exp``,
    ``mae`` in property units. ``tangency = ((dR/dn)/(dR/dm)) / (c_n/c_m)`` is 1 at an interior
    optimum; ``bound`` names the bounds that bind. ``*_ci`` over bootstrap surfaces, with
    ``feasible_fraction`` the fraction of them in which the target is reachable.
    """

    mode: str
    cost_sim: float
    cost_exp: float
    feasible: bool
    n: float = math.nan
    m: float = math.nan
    cost: float = math.nan
    mae: float = math.nan
    target: float = math.nan
    budget: float = math.nan
    n_int: float = math.nan
    m_int: float = math.nan
    cost_int: float = math.nan
    mae_int: float = math.nan
    tangency: float = math.nan
    bound: list[str] = field(default_factory=list)
    message: str = ""
    n_ci: tuple[float, float] = (math.nan, math.nan)
    m_ci: tuple[float, float] = (math.nan, math.nan)
    cost_ci: tuple[float, float] = (math.nan, math.nan)
    mae_ci: tuple[float, float] = (math.nan, math.nan)
    feasible_fraction: float = math.nan
    ci_level: float = 0.90
    n_boot: int = 0
    extrapolated: bool = False
    recommended: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN/inf -> None), unrounded."""
        return {k: _finite_or_none(getattr(self, k)) for k in self.__dataclass_fields__}


def _R(p: tuple[float, ...], n: Any, m: Any) -> Any:
    A, a, B, b, e = p
    return (A * np.power(n, -a) + B) * np.power(m, -b) + e


def _n_for_target(p: tuple[float, ...], r: float, m: np.ndarray, n_min: float) -> np.ndarray:
    """Smallest n >= n_min with R(n, m) <= r, inf where none (vectorised over m)."""
    A, a, B, b, e = p
    m = np.asarray(m, dtype=float)
    mb = m ** (-b)
    gap = r - B * mb - e
    with np.errstate(all="ignore"):
        n = np.where((A > 0) & (a > 0) & (gap > 0), (A * mb / gap) ** (1.0 / a), np.inf)
    n = np.where(_R(p, n_min, m) <= r, n_min, n)
    return np.maximum(n, n_min)


def _refine(f: Any, grid: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """Bounded Brent refinement (in log m) around the best grid point; returns (m, f(m))."""
    k = int(np.nanargmin(values))
    lo = grid[max(k - 1, 0)]
    hi = grid[min(k + 1, grid.size - 1)]
    best_m, best_v = float(grid[k]), float(values[k])
    if hi > lo:
        res = minimize_scalar(lambda t: f(math.exp(t)), bounds=(math.log(lo), math.log(hi)),
                              method="bounded", options={"xatol": 1e-10})
        if res.success and math.isfinite(res.fun) and res.fun <= best_v:
            best_m, best_v = math.exp(res.x), float(res.fun)
    return best_m, best_v


def _solve_target(
    p: tuple[float, ...], r: float, c_n: float, c_m: float,
    n_min: float, n_max: float, m_min: float, m_max: float, grid_size: int = 2001,
) -> tuple[float, float, float, str]:
    """Cheapest (n, m) with R <= r for one parameter set: (n, m, cost, reason-if-infeasible)."""
    A, a, B, b, e = p
    if not all(math.isfinite(v) for v in p):
        return math.nan, math.nan, math.nan, "parameters not finite"
    if r <= e:
        return math.inf, math.inf, math.inf, (
            f"unreachable: target {r:g} <= eps = {e:.4g}, the floor no (n, m) can cross"
        )
    # smallest m for which some n reaches r: r > B m^-b + e (+ nothing from n when A = 0)
    if B > 0 and b > 0:
        m_lo = (B / (r - e)) ** (1.0 / b) * (1 + 1e-12)
    elif B > 0 and r <= B + e:
        return math.inf, math.inf, math.inf, "unreachable: target below B + eps and R does not decay in m"
    else:
        m_lo = 0.0
    lo = max(m_min, m_lo)
    if lo > m_max:
        return math.inf, math.inf, math.inf, f"unreachable with m <= m_max = {m_max:g}"

    def cost_of(m: float) -> float:
        n = float(_n_for_target(p, r, np.array([m]), n_min)[0])
        if not math.isfinite(n) or n > n_max * (1 + 1e-12):
            return math.inf
        return c_n * n + c_m * m

    # an upper bound on the optimal m from any feasible point: c_m m <= cost(feasible)
    hi = m_max
    if not math.isfinite(hi):
        m1 = max(lo * 2.0, lo + 1.0, 1.0)
        c1 = cost_of(m1)
        tries = 0
        while not math.isfinite(c1) and tries < 200:
            m1 *= 2.0
            c1 = cost_of(m1)
            tries += 1
        if not math.isfinite(c1):
            return math.inf, math.inf, math.inf, f"unreachable with n <= n_max = {n_max:g}"
        hi = max(c1 / c_m, m1)
    if hi <= lo:
        hi = lo * (1 + 1e-9) if lo > 0 else 1e-9
    start = lo if lo > 0 else min(hi * 1e-9, 1e-9)
    grid = np.geomspace(max(start, 1e-300), hi, grid_size)
    n_g = _n_for_target(p, r, grid, n_min)
    costs = np.where(np.isfinite(n_g) & (n_g <= n_max * (1 + 1e-12)), c_n * n_g + c_m * grid, np.inf)
    if not np.isfinite(costs).any():
        return math.inf, math.inf, math.inf, (
            f"unreachable with n <= n_max = {n_max:g} and m <= m_max = {m_max:g}"
        )
    m_opt, cost = _refine(cost_of, grid, costs)
    n_opt = float(_n_for_target(p, r, np.array([m_opt]), n_min)[0])
    return n_opt, m_opt, cost, ""


def _solve_budget(
    p: tuple[float, ...], budget: float, c_n: float, c_m: float,
    n_min: float, n_max: float, m_min: float, m_max: float, grid_size: int = 2001,
) -> tuple[float, float, float, str]:
    """Lowest R within the budget for one parameter set: (n, m, R, reason-if-infeasible)."""
    if not all(math.isfinite(v) for v in p):
        return math.nan, math.nan, math.nan, "parameters not finite"
    hi = min(m_max, (budget - c_n * n_min) / c_m)
    if hi < m_min:
        return math.nan, math.nan, math.nan, (
            f"budget {budget:g} below the cost of n_min = {n_min:g} and m_min = {m_min:g} "
            f"({c_n * n_min + c_m * m_min:g})"
        )

    def n_of(m: Any) -> Any:
        return np.minimum(n_max, (budget - c_m * np.asarray(m, float)) / c_n)

    def mae_of(m: float) -> float:
        return float(_R(p, max(float(n_of(m)), n_min), m))

    grid = np.geomspace(m_min, hi, grid_size) if hi > m_min else np.array([m_min])
    vals = _R(p, np.maximum(n_of(grid), n_min), grid)
    m_opt, val = _refine(mae_of, grid, vals)
    return float(max(n_of(m_opt), n_min)), m_opt, val, ""


def _grad_ratio(p: tuple[float, ...], n: float, m: float) -> float:
    A, a, B, b, e = p
    gn = -a * A * n ** (-a - 1.0) * m ** (-b)
    gm = -b * (A * n ** (-a) + B) * m ** (-b - 1.0)
    return gn / gm if gm != 0 else math.nan


def _bounds_hit(n: float, m: float, n_min: float, n_max: float, m_min: float, m_max: float) -> list[str]:
    out = []
    for name, v, lo, hi in (("n", n, n_min, n_max), ("m", m, m_min, m_max)):
        if math.isfinite(v) and abs(v - lo) <= 1e-6 * max(lo, 1e-300):
            out.append(f"{name}_min")
        if math.isfinite(v) and math.isfinite(hi) and abs(v - hi) <= 1e-6 * hi:
            out.append(f"{name}_max")
    return out


def _plan_notes(plan: Plan, fit: SurfaceFit, n: float, m: float) -> str:
    """What qualifies a plan: a surface that does not hold (then it is no recommendation) and a plan outside the
    measured (n, m) range (an extrapolation)."""
    notes = []
    if not fit.holds:
        plan.recommended = False
        notes.append("not a recommendation: " + fit.holds_explanation)
    (n_lo, n_hi), (m_lo, m_hi) = fit.n_range, fit.m_range
    if math.isfinite(n_hi) and (n > n_hi * (1 + 1e-9) or m > m_hi * (1 + 1e-9) or n < n_lo * (1 - 1e-9)
                                or m < m_lo * (1 - 1e-9)):
        plan.extrapolated = True
        notes.append(f"outside the measured range (n {n_lo:g}-{n_hi:g}, m {m_lo:g}-{m_hi:g}): an extrapolation "
                     "of the surface")
    return "; ".join(notes)


def _check_costs(cost_sim: float, cost_exp: float) -> None:
    if not (cost_sim > 0 and cost_exp > 0 and math.isfinite(cost_sim) and math.isfinite(cost_exp)):
        raise ValueError(f"costs must be positive and finite, got cost_sim={cost_sim}, cost_exp={cost_exp}")


def plan_for_target(
    fit: SurfaceFit,
    target: float,
    *,
    cost_sim: float,
    cost_exp: float,
    n_min: float = 1.0,
    n_max: float | None = None,
    m_min: float = 1.0,
    m_max: float | None = None,
    ci: float | None = None,
) -> Plan:
    """Cheapest (n, m) on the fitted surface with R(n, m) <= target.

    Args:
        fit: fitted surface (its bootstrap samples, if any, give intervals).
        target: target MAE, property units.
        cost_sim: cost of one simulation; cost_exp: cost of one experiment (same currency, > 0).
        n_min, n_max, m_min, m_max: bounds on the sizes (``None`` = unbounded above).
        ci: interval level (default: the fit's).

    Returns:
        :class:`Plan` (``feasible=False`` with a message when the target is at or below the floor
        ``eps`` or beyond the bounds). Raises ``ValueError`` for non-positive costs.
    """
    _check_costs(cost_sim, cost_exp)
    ci = fit.ci_level if ci is None else ci
    nmax = math.inf if n_max is None else float(n_max)
    mmax = math.inf if m_max is None else float(m_max)
    plan = Plan(mode="target", cost_sim=cost_sim, cost_exp=cost_exp, feasible=False,
                target=float(target), ci_level=ci)
    if not fit.ok:
        plan.message = f"surface fit not usable ({fit.status})"
        return plan
    p = fit.params
    n, m, cost, why = _solve_target(p, target, cost_sim, cost_exp, n_min, nmax, m_min, mmax)
    plan.feasible = not why
    plan.message = why
    if plan.feasible:
        plan.n, plan.m, plan.cost = n, m, cost
        plan.mae = float(_R(p, n, m))
        plan.n_int, plan.m_int = float(math.ceil(n - 1e-9)), float(math.ceil(m - 1e-9))
        plan.cost_int = cost_sim * plan.n_int + cost_exp * plan.m_int
        plan.mae_int = float(_R(p, plan.n_int, plan.m_int))
        plan.tangency = _grad_ratio(p, n, m) / (cost_sim / cost_exp)
        plan.bound = _bounds_hit(n, m, n_min, nmax, m_min, mmax)
        plan.message = _plan_notes(plan, fit, n, m)
    else:
        plan.n = plan.m = plan.cost = math.inf
    boot = fit.boot_params()
    if boot.shape[0] >= 2:
        res = np.array([
            _solve_target(tuple(row), target, cost_sim, cost_exp, n_min, nmax, m_min, mmax, 401)[:3]
            for row in boot
        ])
        plan.n_ci = _interval(res[:, 0], ci)
        plan.m_ci = _interval(res[:, 1], ci)
        plan.cost_ci = _interval(res[:, 2], ci)
        plan.feasible_fraction = float(np.mean(np.isfinite(res[:, 2])))
        plan.n_boot = int(boot.shape[0])
    return plan


def plan_for_budget(
    fit: SurfaceFit,
    budget: float,
    *,
    cost_sim: float,
    cost_exp: float,
    n_min: float = 1.0,
    n_max: float | None = None,
    m_min: float = 1.0,
    m_max: float | None = None,
    ci: float | None = None,
) -> Plan:
    """Lowest MAE on the fitted surface with ``cost_sim n + cost_exp m <= budget``.

    Args: as :func:`plan_for_target`, with ``budget`` in the cost currency.

    Returns:
        :class:`Plan` with ``mae`` the lowest reachable MAE and ``mae_ci`` its bootstrap interval
        (``n_ci``, ``m_ci`` too); ``feasible=False`` when the budget cannot buy ``n_min`` and
        ``m_min``.
    """
    _check_costs(cost_sim, cost_exp)
    ci = fit.ci_level if ci is None else ci
    nmax = math.inf if n_max is None else float(n_max)
    mmax = math.inf if m_max is None else float(m_max)
    plan = Plan(mode="budget", cost_sim=cost_sim, cost_exp=cost_exp, feasible=False,
                budget=float(budget), ci_level=ci)
    if not fit.ok:
        plan.message = f"surface fit not usable ({fit.status})"
        return plan
    p = fit.params
    n, m, val, why = _solve_budget(p, budget, cost_sim, cost_exp, n_min, nmax, m_min, mmax)
    plan.feasible = not why
    plan.message = why
    if plan.feasible:
        plan.n, plan.m, plan.mae = n, m, val
        plan.cost = cost_sim * n + cost_exp * m
        plan.n_int, plan.m_int = float(math.floor(n + 1e-9)), float(math.floor(m + 1e-9))
        plan.n_int, plan.m_int = max(plan.n_int, n_min), max(plan.m_int, m_min)
        plan.cost_int = cost_sim * plan.n_int + cost_exp * plan.m_int
        plan.mae_int = float(_R(p, plan.n_int, plan.m_int))
        plan.tangency = _grad_ratio(p, n, m) / (cost_sim / cost_exp)
        plan.bound = _bounds_hit(n, m, n_min, nmax, m_min, mmax)
        plan.message = _plan_notes(plan, fit, n, m)
    boot = fit.boot_params()
    if boot.shape[0] >= 2 and plan.feasible:
        res = np.array([
            _solve_budget(tuple(row), budget, cost_sim, cost_exp, n_min, nmax, m_min, mmax, 401)[:3]
            for row in boot
        ])
        plan.n_ci = _interval(res[:, 0], ci)
        plan.m_ci = _interval(res[:, 1], ci)
        plan.mae_ci = _interval(res[:, 2], ci)
        plan.feasible_fraction = 1.0
        plan.n_boot = int(boot.shape[0])
    return plan

