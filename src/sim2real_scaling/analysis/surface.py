"""The 2-D scaling surface R(n, m) = (A n^-alpha + B) m^-beta + eps as an lmfit Model, and whether it holds.

n = simulated (source) samples, m = experimental training samples, R = mean test MAE (property units). A, alpha,
B, beta, eps >= 0 and eps <= the smallest observed mean. At fixed m the surface is the 1-D law with
``D = A m^-beta`` and ``C = B m^-beta + eps`` (:meth:`SurfaceFit.law_at_m`).

The model: :class:`SurfaceModel` (an ``lmfit.Model``) whose ``guess`` is variable projection on a grid of
(alpha, beta) - for each pair the model is linear in (A, B, eps) and the box-constrained generalised
least-squares problem is solved exactly by enumerating active sets from the normal equations - and whose fit
polishes the best grid minima by ``least_squares`` on whitened residuals. n and m are divided internally by
their geometric means. Weights, the extra-scatter term and the bootstrap are those of every law
(:mod:`sim2real_scaling.analysis.fitting`): the covariance of the paired means, refits of the property's
resamples (grid search, then a polish warm-started from the full-data optimum).

Goodness (``holds``): the surface is said to describe the data when all of
  * ``R^2 >= r2_min`` (0.9): it explains the variation of the means;
  * ``chi2/dof <= chi2_dof_max`` (3, under the trials' covariance): residuals are of the size of the noise;
  * no systematic residual structure: a runs test on the signs of the residuals along n (within each m) and
    along m (within each n) is not significant at ``runs_p_min`` (0.01, Bonferroni over the two orders) -
    checked only when ``chi2/dof > 1.5`` (without covariance always).
Otherwise ``holds = False`` with an explanation; a surface that does not hold yields no plan or rate of its
own (the marginal rate is then taken from 1-D fits, as the paper does for the chi study).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import lmfit
import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import least_squares
from scipy.stats import norm

from sim2real_scaling.analysis.bootstrap import TrialResamples, draw_resamples
from sim2real_scaling.analysis.fitting import (
    PointData,
    WhitenedModel,
    from_summary,
    from_trials,
    gls_fit,
    inverse,
    poor_fit_note,
    scatter_note,
    whitener,
)
from sim2real_scaling.analysis.laws import SPACES, PowerLawFit, _finite_or_none, _interval, _none_to_nan

__all__ = [
    "SurfaceModel",
    "SurfaceFamily",
    "SurfaceFit",
    "fit_surface",
    "fit_surface_points",
    "fit_surface_trials",
    "fit_surface_bootstrap",
    "fit_surface_summary",
    "surface",
    "runs_test",
]

SURFACE_PARAMS: tuple[str, ...] = ("A", "alpha", "B", "beta", "eps")
DEFAULT_EXP_MAX = 5.0

def surface(
    n: ArrayLike, m: ArrayLike, A: float, alpha: float, B: float, beta: float, eps: float
) -> np.ndarray:
    """``(A n^-alpha + B) m^-beta + eps`` (broadcast over n and m)."""
    na = np.asarray(n, dtype=float)
    ma = np.asarray(m, dtype=float)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        return (A * na ** (-alpha) + B) * ma ** (-beta) + eps




def _surface_scaled(ns: np.ndarray, ms: np.ndarray, As: float, alpha: float, Bs: float, beta: float,
                    eps: float) -> np.ndarray:
    return (As * ns ** (-alpha) + Bs) * ms ** (-beta) + eps


# ----------------------------------------------------------------------------------------------
# Variable projection over (alpha, beta), with a full weight matrix
# ----------------------------------------------------------------------------------------------


def _exp_grid(exp_max: float, size: int) -> np.ndarray:
    return np.concatenate([[0.0], np.geomspace(1e-3, exp_max, size - 1)])


def _design(ns: np.ndarray, ms: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Columns (ns^-a ms^-b, ms^-b, 1) for each (a, b): shape ``(G, N, 3)``."""
    mb = ms[None, :] ** (-b[:, None])
    u = ns[None, :] ** (-a[:, None]) * mb
    return np.stack([u, mb, np.ones_like(mb)], axis=-1)


def _grid_solve(X: np.ndarray, Y: np.ndarray, P: np.ndarray, cmax: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact box-constrained GLS for ``y ~ X p`` on every grid design and data row.

    Constraints p0, p1 >= 0, 0 <= p2 <= cmax. Enumerates active sets (each coefficient free or at a bound),
    solves the free part from the normal equations and keeps the feasible candidate with the lowest chi2 - exact
    for this convex problem.

    Args:
        X: designs ``(G, N, 3)``. Y: data ``(B, N)``. P: weight matrix ``(N, N)``. cmax: ``(B,)``.

    Returns:
        ``(coef (B, G, 3), chi2 (B, G))``.
    """
    XP = np.einsum("gnk,nm->gmk", X, P)
    Gm = np.einsum("gmk,gml->gkl", XP, X)
    h = np.einsum("gmk,bm->bgk", XP, Y)
    yy = np.einsum("bn,nm,bm->b", Y, P, Y)[:, None]
    B_, G_ = h.shape[0], h.shape[1]
    best_ssr = np.full((B_, G_), np.inf)
    best = np.zeros((B_, G_, 3))
    for s0, s1, s2 in itertools.product(("free", "zero"), ("free", "zero"), ("free", "zero", "cmax")):
        states = (s0, s1, s2)
        free = [k for k, st in enumerate(states) if st == "free"]
        p = np.zeros((B_, G_, 3))
        if s2 == "cmax":
            p[:, :, 2] = cmax[:, None]
        if free:
            fixed_contrib = np.einsum("gkl,bgl->bgk", Gm, p)
            rhs = (h - fixed_contrib)[:, :, free]
            Gff = Gm[:, free][:, :, free]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                inv = np.linalg.pinv(Gff, rcond=1e-12)
            p[:, :, free] = np.einsum("gkl,bgl->bgk", inv, rhs)
        feas = (p[:, :, 0] >= 0) & (p[:, :, 1] >= 0) & (p[:, :, 2] >= 0) & (
            p[:, :, 2] <= cmax[:, None] * (1 + 1e-12))
        ssr = yy - 2 * np.einsum("bgk,bgk->bg", p, h) + np.einsum("bgk,gkl,bgl->bg", p, Gm, p)
        ssr = np.where(feas & np.isfinite(ssr), ssr, np.inf)
        better = ssr < best_ssr
        best_ssr = np.where(better, ssr, best_ssr)
        best = np.where(better[:, :, None], p, best)
    return best, np.maximum(best_ssr, 0.0)


def _grid_starts(ns: np.ndarray, ms: np.ndarray, Y: np.ndarray, P: np.ndarray, cmax: np.ndarray, exp_max: float,
                 size: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid search; returns (params (B, G, 5) in scaled units, chi2 (B, G))."""
    g = _exp_grid(exp_max, size)
    a, b = (v.ravel() for v in np.meshgrid(g, g, indexing="ij"))
    coef, ssr = _grid_solve(_design(ns, ms, a, b), Y, P, cmax)
    params = np.empty((Y.shape[0], a.size, 5))
    params[:, :, 0] = coef[:, :, 0]
    params[:, :, 1] = a[None, :]
    params[:, :, 2] = coef[:, :, 1]
    params[:, :, 3] = b[None, :]
    params[:, :, 4] = coef[:, :, 2]
    return params, ssr


def _polish(ns: np.ndarray, ms: np.ndarray, y: np.ndarray, Wh: np.ndarray, p0: np.ndarray, cmax: float,
            exp_max: float, space: str) -> tuple[np.ndarray, float]:
    """least-squares polish of scaled (As, alpha, Bs, beta, eps) on whitened residuals; (params, chi2)."""
    fit_eps = cmax > 0
    lb = np.zeros(5 if fit_eps else 4)
    ub = np.array([np.inf, exp_max, np.inf, exp_max] + ([cmax] if fit_eps else []))

    def full(v: np.ndarray) -> np.ndarray:
        return v if fit_eps else np.append(v, 0.0)

    log_n, log_m = np.log(ns), np.log(ms)

    def resid(v: np.ndarray) -> np.ndarray:
        mod = _surface_scaled(ns, ms, *full(v))
        if space == "log":
            return Wh @ (np.log(np.maximum(mod, 1e-300)) - np.log(y))
        return Wh @ (mod - y)

    def jac(v: np.ndarray) -> np.ndarray:
        As, a, Bs, b, e = full(v)
        na_ = ns ** (-a)
        mb = ms ** (-b)
        cols = [na_ * mb, -As * log_n * na_ * mb, mb, -log_m * (As * na_ + Bs) * mb]
        if fit_eps:
            cols.append(np.ones_like(ns))
        J = np.column_stack(cols)
        if space == "log":
            J = J / np.maximum((As * na_ + Bs) * mb + e, 1e-300)[:, None]
        return Wh @ J

    x0 = np.asarray(p0[: lb.size], dtype=float).copy()
    span = np.where(np.isfinite(ub), ub - lb, np.maximum(np.abs(x0), 1.0))
    x0 = np.clip(x0, lb + 1e-9 * span, np.where(np.isfinite(ub), ub - 1e-9 * span, np.inf))
    try:
        res = least_squares(resid, x0, jac=jac, bounds=(lb, ub), method="trf", x_scale="jac")
    except (ValueError, FloatingPointError):
        return np.full(5, np.nan), math.inf
    r = resid(res.x)
    return full(res.x), float(r @ r)


# ----------------------------------------------------------------------------------------------
# The lmfit Model and the family the shared fit path runs
# ----------------------------------------------------------------------------------------------


class SurfaceModel(WhitenedModel):
    """``R(n, m) = (A n^-alpha + B) m^-beta + eps`` as an lmfit Model (parameters As, alpha, Bs, beta, eps with
    fixed n0, m0; A = As n0^alpha m0^beta, B = Bs m0^beta). ``guess`` = variable projection on the (alpha, beta)
    grid; ``fit(..., cov=S)`` = generalised least squares."""

    def __init__(self, *, n0: float = 1.0, m0: float = 1.0, cmax: float = np.inf, exp_max: float = DEFAULT_EXP_MAX,
                 space: str = "linear", grid_size: int = 31, **kws: Any) -> None:
        def scaled(n: np.ndarray, m: np.ndarray, As: float, alpha: float, Bs: float, beta: float, eps: float,
                   n0: float, m0: float) -> np.ndarray:
            return _surface_scaled(np.asarray(n, float) / n0, np.asarray(m, float) / m0, As, alpha, Bs, beta, eps)

        super().__init__(scaled, independent_vars=["n", "m"], **kws)
        self.n0, self.m0, self.cmax, self.exp_max, self.space, self.grid_size = (
            float(n0), float(m0), float(cmax), exp_max, space, grid_size)
        for name in ("As", "Bs"):
            self.set_param_hint(name, min=0.0)
        for name in ("alpha", "beta"):
            self.set_param_hint(name, min=0.0, max=exp_max)
        if cmax > 0:
            self.set_param_hint("eps", min=0.0, max=cmax if math.isfinite(cmax) else np.inf)
        else:
            self.set_param_hint("eps", value=0.0, vary=False)
        self.set_param_hint("n0", value=self.n0, vary=False)
        self.set_param_hint("m0", value=self.m0, vary=False)
        self.set_param_hint("A", expr="As * n0**alpha * m0**beta")
        self.set_param_hint("B", expr="Bs * m0**beta")

    def surface_params(self, p: np.ndarray) -> lmfit.Parameters:
        """Parameters at scaled (As, alpha, Bs, beta, eps), nudged inside their bounds."""
        pars = self.make_params()
        pars["As"].set(value=max(float(p[0]), 1e-12))
        pars["alpha"].set(value=float(np.clip(p[1], 1e-6, self.exp_max * (1 - 1e-6))))
        pars["Bs"].set(value=max(float(p[2]), 1e-12))
        pars["beta"].set(value=float(np.clip(p[3], 1e-6, self.exp_max * (1 - 1e-6))))
        if pars["eps"].vary:
            pars["eps"].set(value=float(np.clip(p[4], 1e-9 * self.cmax, self.cmax * (1 - 1e-9))))
        return pars

    def grid_guesses(self, data: ArrayLike, n: ArrayLike, m: ArrayLike, cov: np.ndarray | None = None,
                     k: int = 4) -> list[np.ndarray]:
        """The ``k`` best distinct grid minima (scaled parameters), best first."""
        y = np.asarray(data, dtype=float)
        P = np.eye(y.size) if cov is None else inverse(cov)
        cmax = self.cmax if math.isfinite(self.cmax) else float(y.min())
        params, ssr = _grid_starts(np.asarray(n, float) / self.n0, np.asarray(m, float) / self.m0, y[None, :], P,
                                   np.array([cmax]), self.exp_max, self.grid_size)
        starts: list[np.ndarray] = []
        for idx in np.argsort(ssr[0]):
            if not np.isfinite(ssr[0, idx]):
                break
            cand = params[0, idx]
            if all(abs(cand[1] - s[1]) + abs(cand[3] - s[3]) > 0.05 for s in starts):
                starts.append(cand)
            if len(starts) >= k:
                break
        return starts

    def guess(self, data: ArrayLike, n: ArrayLike = None, m: ArrayLike = None, cov: np.ndarray | None = None,
              **kws: Any) -> lmfit.Parameters:
        """The best grid point of the variable projection as starting parameters."""
        starts = self.grid_guesses(data, n, m, cov, k=1)
        if not starts:
            raise ValueError("variable-projection grid found no finite solution")
        return self.surface_params(starts[0])


class SurfaceFamily:
    """The surface for :func:`~sim2real_scaling.analysis.fitting.gls_fit` (one variant)."""

    variants = ("surface",)
    n_params = {"surface": 5}

    def __init__(self, n: np.ndarray, m: np.ndarray, space: str = "linear", exp_max: float = DEFAULT_EXP_MAX,
                 grid_size: int = 31) -> None:
        self.n, self.m = np.asarray(n, float), np.asarray(m, float)
        self.n0 = float(np.exp(np.mean(np.log(self.n))))
        self.m0 = float(np.exp(np.mean(np.log(self.m))))
        self.ns, self.ms = self.n / self.n0, self.m / self.m0
        self.space, self.exp_max, self.grid_size = space, exp_max, grid_size
        self.p_hat: np.ndarray | None = None

    def _public(self, p: np.ndarray) -> np.ndarray:
        p = np.atleast_2d(p)
        return np.column_stack([p[:, 0] * self.n0 ** p[:, 1] * self.m0 ** p[:, 3], p[:, 1],
                                p[:, 2] * self.m0 ** p[:, 3], p[:, 3], p[:, 4]])

    def _wh(self, y: np.ndarray, cov: np.ndarray | None) -> np.ndarray:
        if cov is None:
            return np.eye(y.size)
        return whitener(cov / np.outer(y, y) if self.space == "log" else cov)

    def chi2(self, y: np.ndarray, cov: np.ndarray, variant: str) -> float:
        model = SurfaceModel(n0=self.n0, m0=self.m0, cmax=float(y.min()), exp_max=self.exp_max, space=self.space,
                             grid_size=16)
        starts = model.grid_guesses(y, self.n, self.m, cov, k=1)
        if not starts:
            return math.inf
        return _polish(self.ns, self.ms, y, self._wh(y, cov), starts[0], float(y.min()), self.exp_max,
                       self.space)[1]

    def fit(self, y: np.ndarray, cov: np.ndarray | None, variant: str) -> tuple[np.ndarray, float, Any]:
        cmax = float(y.min())
        model = SurfaceModel(n0=self.n0, m0=self.m0, cmax=cmax, exp_max=self.exp_max, space=self.space,
                             grid_size=self.grid_size)
        starts = model.grid_guesses(y, self.n, self.m, cov)
        Wh = self._wh(y, cov)
        best_p, best_chi, best_res = np.full(5, np.nan), math.inf, None
        for s in starts:
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    res = model.fit(y, model.surface_params(s), n=self.n, m=self.m, cov=cov)
            except (ValueError, TypeError, FloatingPointError, np.linalg.LinAlgError):
                continue
            chi = float(res.chisqr) if res.chisqr is not None else math.inf
            if res.success and math.isfinite(chi) and chi < best_chi:
                best_res, best_chi = res, chi
                best_p = np.array([res.params[k].value for k in ("As", "alpha", "Bs", "beta", "eps")])
        if not np.all(np.isfinite(best_p)) and starts:
            with np.errstate(all="ignore"):
                best_p, best_chi = _polish(self.ns, self.ms, y, Wh, starts[0], cmax, self.exp_max, self.space)
        self.p_hat = best_p
        return self._public(best_p)[0], best_chi, best_res

    def refit(self, Y: np.ndarray, cov: np.ndarray, variant: str) -> tuple[np.ndarray, np.ndarray]:
        B = Y.shape[0]
        out = np.full((B, 5), np.nan)
        chi_out = np.full(B, np.nan)
        if self.p_hat is None or not np.all(np.isfinite(self.p_hat)):
            return out, chi_out
        P = inverse(cov)
        good = np.all(np.isfinite(Y), axis=1)
        cmax = np.where(good, np.maximum(np.nanmin(np.where(good[:, None], Y, 1.0), axis=1), 0.0), 0.0)
        params, ssr = _grid_starts(self.ns, self.ms, np.where(good[:, None], Y, 0.0), P, cmax, self.exp_max, 16)
        for b in range(B):
            if not good[b] or (self.space == "log" and np.any(Y[b] <= 0)):
                continue
            Wh = self._wh(Y[b], cov) if self.space == "log" else whitener(cov)
            warm = np.minimum(self.p_hat, np.r_[np.inf, self.exp_max, np.inf, self.exp_max, cmax[b]])
            best_p, best_c = _polish(self.ns, self.ms, Y[b], Wh, warm, float(cmax[b]), self.exp_max, self.space)
            # the grid's chi2 is exact at its (alpha, beta): when it beats the warm-started optimum the resample
            # has moved to another basin - polish from there too
            k = int(np.argmin(ssr[b])) if np.isfinite(ssr[b]).any() else -1
            if k >= 0 and (self.space == "log" or ssr[b, k] < best_c):
                p, c = _polish(self.ns, self.ms, Y[b], Wh, params[b, k], float(cmax[b]), self.exp_max, self.space)
                if c < best_c:
                    best_c, best_p = c, p
            if np.all(np.isfinite(best_p)):
                out[b] = self._public(best_p)[0]
                chi_out[b] = best_c
        return out, chi_out


def runs_test(signs: Sequence[np.ndarray]) -> tuple[float, float]:
    """Wald-Wolfowitz runs test pooled over several ordered sequences of residual signs.

    Args:
        signs: per sequence, a 1-D boolean array (residual > 0) in the order to test.

    Returns:
        ``(z, p)``: z of the observed number of runs against its expectation under random order
        and the one-sided p-value of *too few* runs (systematic structure). ``(nan, nan)`` when no
        sequence has both signs.
    """
    runs = expected = var = 0.0
    for s in signs:
        s = np.asarray(s, dtype=bool)
        n1 = float(s.sum())
        n2 = float(s.size - n1)
        if n1 == 0 or n2 == 0:
            continue
        runs += 1.0 + float(np.count_nonzero(s[1:] != s[:-1]))
        tot = n1 + n2
        expected += 1.0 + 2.0 * n1 * n2 / tot
        var += 2.0 * n1 * n2 * (2.0 * n1 * n2 - tot) / (tot * tot * (tot - 1.0))
    if var <= 0:
        return math.nan, math.nan
    z = (runs - expected) / math.sqrt(var)
    return z, float(norm.cdf(z))



# ----------------------------------------------------------------------------------------------
# Result
# ----------------------------------------------------------------------------------------------


@dataclass
class SurfaceFit:
    """A fitted surface ``R(n, m) = (A n^-alpha + B) m^-beta + eps`` with uncertainty and goodness.

    Units: A, B, eps in property units (A multiplies ``n^-alpha m^-beta``, B ``m^-beta``); alpha, beta
    dimensionless. ``*_ci``: percentile bootstrap intervals at ``ci_level``; ``*_sd`` bootstrap SDs;
    the intervals are the one uncertainty to quote. Goodness: ``r2``, ``chi2_dof`` (under the trials'
    covariance; ``p_value`` its chi-square test), ``rms_over_se`` (residual RMS / mean SE), ``runs_p`` and
    ``holds`` + ``holds_explanation``; ``tau2`` the extra scatter (see :mod:`.fitting`); ``trials``,
    ``replicates`` the fewest at any point; ``warnings`` what qualifies the numbers. ``boot_samples``: ``(B, 5)``
    (A, alpha, B, beta, eps) and ``std_residuals``: ``(N,)`` standardized residuals in the order
    of the input, both not serialised.
    """

    A: float
    alpha: float
    B: float
    beta: float
    eps: float
    A_ci: tuple[float, float] = (math.nan, math.nan)
    alpha_ci: tuple[float, float] = (math.nan, math.nan)
    B_ci: tuple[float, float] = (math.nan, math.nan)
    beta_ci: tuple[float, float] = (math.nan, math.nan)
    eps_ci: tuple[float, float] = (math.nan, math.nan)
    A_sd: float = math.nan
    alpha_sd: float = math.nan
    B_sd: float = math.nan
    beta_sd: float = math.nan
    eps_sd: float = math.nan
    status: str = "ok"
    message: str = ""
    n_points: int = 0
    space: str = "linear"
    weighted: bool = False
    chi2: float = math.nan
    dof: int = 0
    chi2_dof: float = math.nan
    chi2_design: float = math.nan
    p_value: float = math.nan
    tau2: float = 0.0
    trials: int = 0
    replicates: int = 0
    warnings: list[str] = field(default_factory=list)
    r2: float = math.nan
    rms_over_se: float = math.nan
    runs_z: float = math.nan
    runs_p: float = math.nan
    holds: bool = True
    holds_explanation: str = ""
    n_range: tuple[float, float] = (math.nan, math.nan)
    m_range: tuple[float, float] = (math.nan, math.nan)
    ci_level: float = 0.90
    n_boot: int = 0
    n_boot_failed: int = 0
    bootstrap: str = "none"
    boot_samples: np.ndarray = field(
        default_factory=lambda: np.empty((0, 5)), repr=False, compare=False
    )
    std_residuals: np.ndarray = field(
        default_factory=lambda: np.empty(0), repr=False, compare=False
    )

    @classmethod
    def from_params(
        cls, A: float, alpha: float, B: float, beta: float, eps: float, *,
        boot_samples: np.ndarray | None = None, **kwargs: Any,
    ) -> SurfaceFit:
        """A surface with given parameters (e.g. the published density surface), status ``ok``."""
        fit = cls(A=float(A), alpha=float(alpha), B=float(B), beta=float(beta), eps=float(eps),
                  **kwargs)
        if boot_samples is not None:
            fit.boot_samples = np.asarray(boot_samples, dtype=float).reshape(-1, 5)
            fit._summarise_boot(fit.ci_level)
        return fit

    @classmethod
    def failed(cls, status: str, message: str, n_points: int = 0, space: str = "linear") -> SurfaceFit:
        """A result for a fit that could not be made (parameters NaN, ``holds=False``)."""
        nan = math.nan
        return cls(A=nan, alpha=nan, B=nan, beta=nan, eps=nan, status=status, message=message,
                   n_points=n_points, space=space, holds=False,
                   holds_explanation=f"no surface fit ({status}): {message}")

    @property
    def ok(self) -> bool:
        """True when the fit succeeded (see ``holds`` for whether it describes the data)."""
        return self.status == "ok"

    @property
    def params(self) -> tuple[float, float, float, float, float]:
        """``(A, alpha, B, beta, eps)``."""
        return (self.A, self.alpha, self.B, self.beta, self.eps)

    def predict(self, n: ArrayLike, m: ArrayLike) -> np.ndarray:
        """``R(n, m)`` in property units (broadcast)."""
        return surface(n, m, *self.params)

    def grad_n(self, n: ArrayLike, m: ArrayLike) -> np.ndarray:
        """``dR/dn = -alpha A n^(-alpha-1) m^-beta`` (property units per simulated sample)."""
        na, ma = np.asarray(n, float), np.asarray(m, float)
        return -self.alpha * self.A * na ** (-self.alpha - 1.0) * ma ** (-self.beta)

    def grad_m(self, n: ArrayLike, m: ArrayLike) -> np.ndarray:
        """``dR/dm = -beta (A n^-alpha + B) m^(-beta-1)`` (property units per experiment)."""
        na, ma = np.asarray(n, float), np.asarray(m, float)
        return -self.beta * (self.A * na ** (-self.alpha) + self.B) * ma ** (-self.beta - 1.0)

    def boot_params(self) -> np.ndarray:
        """Finite bootstrap samples, ``(B', 5)``."""
        s = self.boot_samples
        return s[np.all(np.isfinite(s), axis=1)] if s.size else s.reshape(0, 5)

    def boot_grad(self, n: float, m: float) -> tuple[np.ndarray, np.ndarray]:
        """``(dR/dn, dR/dm)`` for each finite bootstrap sample, each ``(B',)``."""
        s = self.boot_params()
        A, a, B, b = s[:, 0], s[:, 1], s[:, 2], s[:, 3]
        gn = -a * A * n ** (-a - 1.0) * m ** (-b)
        gm = -b * (A * n ** (-a) + B) * m ** (-b - 1.0)
        return gn, gm

    def law_at_m(self, m: float) -> PowerLawFit:
        """The 1-D law in n at fixed m: ``D = A m^-beta``, ``C = B m^-beta + eps``.

        Bootstrap samples are transformed too, so :func:`~sim2real_scaling.analysis.laws.required_x`
        gives an interval for the n needed at this m.
        """
        if not self.ok:
            return PowerLawFit.failed(self.status, self.message, self.n_points, self.space)
        mb = m ** (-self.beta)
        s = self.boot_params()
        boot = None
        if s.shape[0]:
            mbs = m ** (-s[:, 3])
            boot = np.column_stack([s[:, 0] * mbs, s[:, 1], s[:, 2] * mbs + s[:, 4]])
        fit = PowerLawFit.from_params(
            self.A * mb, self.alpha, self.B * mb + self.eps, boot_samples=boot,
            ci_level=self.ci_level, space=self.space, n_points=self.n_points,
            x_min=self.n_range[0], x_max=self.n_range[1], floor=True,
            message=f"law of the surface at m = {m:g}",
        )
        return fit

    def equation(self, digits: int = 3, lhs: str = "MAE") -> str:
        """Plain-text surface, e.g. ``"MAE = (0.338 n^-0.265 + 0.0192) m^-0.239 + 0.0535"``."""
        if not self.ok:
            return f"{lhs}: surface fit failed ({self.status})"
        d = digits
        return (
            f"{lhs} = ({self.A:.{d}g} n^-{self.alpha:.{d}g} + {self.B:.{d}g}) m^-{self.beta:.{d}g}"
            f" + {self.eps:.{d}g}"
        )

    def _summarise_boot(self, ci: float) -> None:
        s = self.boot_samples
        self.ci_level = float(ci)
        self.n_boot = int(s.shape[0])
        good = np.all(np.isfinite(s), axis=1)
        self.n_boot_failed = int((~good).sum())
        for j, name in enumerate(SURFACE_PARAMS):
            col = s[good, j]
            if col.size >= 2:
                setattr(self, f"{name}_ci", _interval(col, ci))
                setattr(self, f"{name}_sd", float(np.std(col, ddof=1)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN/inf -> None), parameters unrounded."""
        out = {
            k: _finite_or_none(getattr(self, k))
            for k in self.__dataclass_fields__
            if k not in ("boot_samples", "std_residuals")
        }
        out["equation"] = self.equation()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SurfaceFit:
        """Inverse of :meth:`to_dict` (bootstrap samples and residuals are not restored)."""
        kwargs: dict[str, Any] = {}
        for name, f in cls.__dataclass_fields__.items():
            if name in ("boot_samples", "std_residuals") or name not in data:
                continue
            v = data[name]
            if name.endswith("_ci") or name.endswith("_range"):
                v = (math.nan, math.nan) if v is None else tuple(_none_to_nan(u) for u in v)
            elif name == "warnings":
                v = list(v or [])
            elif f.type == "float":
                v = _none_to_nan(v)
            kwargs[name] = v
        return cls(**kwargs)


# ----------------------------------------------------------------------------------------------
# Fitting
# ----------------------------------------------------------------------------------------------


def _prepare(
    n: ArrayLike, m: ArrayLike, y: ArrayLike, space: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    na = np.asarray(n, dtype=float).ravel()
    ma = np.asarray(m, dtype=float).ravel()
    ya = np.asarray(y, dtype=float).ravel()
    if not (na.shape == ma.shape == ya.shape):
        return na, ma, ya, f"n, m, y_mean have sizes {na.size}, {ma.size}, {ya.size}"
    if not np.all(np.isfinite(np.concatenate([na, ma, ya]))):
        return na, ma, ya, "NaN/inf in n, m or y_mean"
    if np.any(na <= 0) or np.any(ma <= 0):
        return na, ma, ya, "n and m must be > 0 (drop direct-learning rows, n = 0)"
    if np.any(ya < 0) or (space == "log" and np.any(ya <= 0)):
        return na, ma, ya, "y_mean must be >= 0 (> 0 in log space)"
    return na, ma, ya, ""


def _diagnose(
    fit: SurfaceFit, na: np.ndarray, ma: np.ndarray, ya: np.ndarray, se: np.ndarray | None,
    *, r2_min: float, chi2_dof_max: float, runs_p_min: float,
) -> None:
    pred = fit.predict(na, ma)
    resid = ya - pred
    ss_tot = float(np.sum((ya - ya.mean()) ** 2))
    fit.r2 = 1.0 - float(np.sum(resid**2)) / ss_tot if ss_tot > 0 else math.nan
    if se is not None:
        z = resid / se
        fit.std_residuals = z
        fit.rms_over_se = float(np.sqrt(np.mean(resid**2)) / np.mean(se))
        fit.chi2_dof = fit.chi2_design / fit.dof if fit.dof > 0 else math.nan
    else:
        fit.std_residuals = resid / np.std(resid) if np.std(resid) > 0 else resid
    seqs = []
    for key, along in ((ma, na), (na, ma)):
        for v in np.unique(key):
            sel = key == v
            if sel.sum() >= 3:
                order = np.argsort(along[sel])
                seqs.append((resid[sel][order] > 0, "n" if along is na else "m"))
    zs, ps = [], []
    for label in ("n", "m"):
        zz, pp = runs_test([s for s, lab in seqs if lab == label])
        zs.append(zz)
        ps.append(pp)
    finite = [(z, p) for z, p in zip(zs, ps, strict=True) if math.isfinite(p)]
    if finite:
        z_min, p_min = min(finite, key=lambda t: t[1])
        fit.runs_z, fit.runs_p = z_min, min(1.0, 2.0 * p_min)
    problems = []
    if not (math.isfinite(fit.r2) and fit.r2 >= r2_min):
        problems.append(f"R^2 = {fit.r2:.3g} < {r2_min:g}")
    if se is not None and math.isfinite(fit.chi2_dof) and fit.chi2_dof > chi2_dof_max:
        problems.append(
            f"chi2/dof = {fit.chi2_dof:.3g} > {chi2_dof_max:g} under the trials' covariance (residuals "
            f"{fit.rms_over_se:.2g} x the mean SE)"
        )
    check_runs = se is None or not math.isfinite(fit.chi2_dof) or fit.chi2_dof > 1.5
    if check_runs and math.isfinite(fit.runs_p) and fit.runs_p < runs_p_min:
        problems.append(
            f"residuals are systematically structured (runs test p = {fit.runs_p:.2g})"
        )
    fit.holds = not problems
    if problems:
        fit.holds_explanation = (
            "the surface does not describe these data: " + "; ".join(problems)
            + "; use 1-D fits (R(n) at fixed m, R(m) at fixed n) for gradients"
        )
    else:
        parts = [f"R^2 = {fit.r2:.3g}"]
        if se is not None:
            parts.append(f"chi2/dof = {fit.chi2_dof:.3g}")
        if math.isfinite(fit.runs_p):
            parts.append(f"runs test p = {fit.runs_p:.2g}")
        fit.holds_explanation = "the surface describes the data: " + ", ".join(parts)



def fit_surface_points(n: ArrayLike, m: ArrayLike, data: PointData, *, n_boot: int = 200, ci: float = 0.90,
                       space: str = "linear", exp_max: float = DEFAULT_EXP_MAX, grid_size: int = 31,
                       r2_min: float = 0.9, chi2_dof_max: float = 3.0, runs_p_min: float = 0.01,
                       generator: np.random.Generator | None = None) -> SurfaceFit:
    """Fit the surface to points (the one path every surface fit takes; see :func:`~.laws.fit_law`).

    Args:
        n, m: grid coordinates, (N,) each, > 0 (transfer rows only); at least 3 distinct of each, 7 points.
        data: the means with their covariance and resamples.
        n_boot, ci, space: as for the 1-D law. exp_max: bound of alpha and beta. grid_size: points per exponent
            in the variable-projection grid. r2_min, chi2_dof_max, runs_p_min: thresholds of ``holds``.
    """
    if space not in SPACES:
        return SurfaceFit.failed("invalid_input", f"space must be one of {SPACES}, got {space!r}")
    na, ma, ya, problem = _prepare(n, m, data.y, space)
    if problem:
        return SurfaceFit.failed("invalid_input", problem, int(ya.size), space)
    N = int(ya.size)
    dn, dm = np.unique(na).size, np.unique(ma).size
    if dn < 3 or dm < 3 or N < 7:
        return SurfaceFit.failed(
            "too_few_points",
            f"need >= 3 distinct n, >= 3 distinct m and >= 7 points; got {dn} n, {dm} m, {N} points", N, space)
    family = SurfaceFamily(na, ma, space, exp_max, grid_size)
    gen = generator if generator is not None else np.random.default_rng(0)
    res = gls_fit(family, data, n_boot=n_boot, generator=gen, select="surface")
    p = res.params["surface"]
    if not np.all(np.isfinite(p)):
        return SurfaceFit.failed("failed", "no start converged (variable projection, lmfit)", N, space)
    warn = [w for w in (poor_fit_note(res), scatter_note(res, data.replicates)) if w]
    fit = SurfaceFit(
        A=float(p[0]), alpha=float(p[1]), B=float(p[2]), beta=float(p[3]), eps=float(p[4]), status="ok",
        message="; ".join(list(res.notes) + warn), n_points=N, space=space, weighted=res.weighted,
        chi2=res.chi2["surface"], dof=N - 5, chi2_design=res.chi2_design.get("surface", math.nan),
        p_value=res.p_value, tau2=res.tau2, trials=data.trials, replicates=data.replicates, warnings=warn,
        n_range=(float(na.min()), float(na.max())), m_range=(float(ma.min()), float(ma.max())), ci_level=ci,
    )
    se = np.sqrt(np.diag(data.cov)) if data.cov is not None else None
    _diagnose(fit, na, ma, ya, se, r2_min=r2_min, chi2_dof_max=chi2_dof_max, runs_p_min=runs_p_min)
    if not fit.holds:
        fit.warnings.insert(0, "surface rejected: " + fit.holds_explanation)
    if res.samples.size:
        fit.boot_samples = res.samples
        fit.bootstrap = res.kind
        fit._summarise_boot(ci)
        if fit.n_boot_failed:
            fit.message = "; ".join(x for x in (fit.message, f"{fit.n_boot_failed} of {fit.n_boot} bootstrap "
                                                             "refits failed") if x)
    return fit


def fit_surface(n: ArrayLike, m: ArrayLike, y_mean: ArrayLike, y_sem: ArrayLike | None = None, *,
                cov: np.ndarray | None = None, space: str = "linear", exp_max: float = DEFAULT_EXP_MAX,
                grid_size: int = 31, r2_min: float = 0.9, chi2_dof_max: float = 3.0,
                runs_p_min: float = 0.01) -> SurfaceFit:
    """Fit the surface to a grid of means (no bootstrap): weighted by ``cov`` (N, N), by ``y_sem`` as
    independent points, or unweighted. Never raises on bad data."""
    ya = np.asarray(y_mean, dtype=float).ravel()
    if cov is not None:
        data = PointData(y=ya, cov=np.asarray(cov, dtype=float))
    else:
        data = from_summary(ya, y_sem)
        data.notes = [x for x in data.notes if not x.startswith("from summary")]
    try:
        return fit_surface_points(n, m, data, n_boot=0, space=space, exp_max=exp_max, grid_size=grid_size,
                                  r2_min=r2_min, chi2_dof_max=chi2_dof_max, runs_p_min=runs_p_min)
    except ValueError as exc:
        return SurfaceFit.failed("invalid_input", str(exc), ya.size, space)


def fit_surface_trials(n: ArrayLike, m: ArrayLike, values: np.ndarray, resamples: TrialResamples, *,
                       n_boot: int = 200, ci: float = 0.90, space: str = "linear",
                       generator: np.random.Generator | None = None, **kws: Any) -> SurfaceFit:
    """Fit the surface to trial values (T, N) with the property's resamples (see
    :func:`~.laws.fit_power_law_trials`)."""
    v = np.asarray(values, dtype=float)
    na = np.asarray(n, float).ravel()
    if v.ndim != 2 or v.shape[1] != na.size:
        return SurfaceFit.failed("invalid_input", f"{na.size} points but trial values of shape {v.shape}",
                                 na.size, space)
    if np.any(np.isfinite(v).sum(axis=0) == 0):
        return SurfaceFit.failed("invalid_input", "a point has no finite trial MAE", na.size, space)
    return fit_surface_points(na, m, from_trials(v, resamples, n_boot, na), n_boot=n_boot, ci=ci, space=space,
                              generator=generator, **kws)


def fit_surface_bootstrap(n: ArrayLike, m: ArrayLike, mae_by_trial: Sequence[ArrayLike], *,
                          trial_ids: Sequence[ArrayLike] | None = None, replicates: ArrayLike | None = None,
                          n_boot: int = 200, seed: int = 0, ci: float = 0.90, space: str = "linear",
                          **kws: Any) -> SurfaceFit:
    """Fit the surface to per-point arrays of trial MAEs (a convenience; pairing as
    :func:`~.laws.fit_power_law_bootstrap`)."""
    arrays = [np.asarray(a, dtype=float).ravel() for a in mae_by_trial]
    na = np.asarray(n, float).ravel()
    if len(arrays) != na.size:
        return SurfaceFit.failed("invalid_input", f"{na.size} points but {len(arrays)} trial arrays", na.size, space)
    if any(a.size == 0 for a in arrays):
        return SurfaceFit.failed("invalid_input", "a point has no trials", na.size, space)
    if trial_ids is None:
        if len({a.size for a in arrays}) != 1:
            return SurfaceFit.failed("invalid_input", "without trial ids every point needs the same number of "
                                     "trials", na.size, space)
        trial_ids = [np.arange(arrays[0].size)] * len(arrays)
    ids = [np.asarray(t).ravel() for t in trial_ids]
    universe = np.unique(np.concatenate(ids))
    gen = np.random.default_rng(seed)
    resamples = draw_resamples(universe, replicates, max(n_boot, 1000), gen, seed=seed, key="surface")
    values = np.full((universe.size, na.size), np.nan)
    for j, (a, t) in enumerate(zip(arrays, ids, strict=True)):
        values[resamples.positions(t), j] = a
    return fit_surface_trials(na, m, values, resamples, n_boot=n_boot, ci=ci, space=space, generator=gen, **kws)


def fit_surface_summary(n: ArrayLike, m: ArrayLike, y_mean: ArrayLike, y_sem: ArrayLike, *, n_boot: int = 200,
                        seed: int = 0, ci: float = 0.90, space: str = "linear", **kws: Any) -> SurfaceFit:
    """Fit the surface to summary means; parametric bootstrap from their SEs (points taken as independent)."""
    data = from_summary(np.asarray(y_mean, float).ravel(), np.asarray(y_sem, float).ravel())
    return fit_surface_points(n, m, data, n_boot=n_boot, ci=ci, space=space, generator=np.random.default_rng(seed),
                              **kws)
