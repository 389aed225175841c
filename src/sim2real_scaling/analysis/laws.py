"""The 1-D scaling law R(x) = D x^-alpha + C as an lmfit Model, its fit, its uncertainty and its inverse.

``x`` is the number of simulated samples n (at fixed m) or of experimental samples m (at fixed n); ``R`` is the
mean test MAE over trials, in the property's units. D, alpha, C >= 0; C (the transfer gap, the floor that more
data cannot cross) is bounded above by the smallest observed mean.

The model
    :class:`PowerLawModel` is an ``lmfit.Model`` whose :meth:`~PowerLawModel.guess` is the closed-form
    variable-projection search: for each alpha on a grid (0 and 160 log-spaced values up to ``alpha_max``) D and
    C are solved exactly by box-constrained generalised least squares (D >= 0, 0 <= C <= min y), and the best
    alpha is refined by golden-section search. In linear space this profile is exact, so the guess is the
    global optimum; ``fit`` polishes it with ``least_squares`` on residuals whitened by the covariance of the
    means. x is divided internally by its geometric mean x0 for conditioning; D is reported in original units.
    Bootstrap refits use the same projection, vectorised over resamples.

Weights, model choice and intervals: :mod:`sim2real_scaling.analysis.fitting` (generalised least squares with
the covariance of the paired means, an extra-scatter term, the law with and without a floor compared by BIC
and re-selected in every resample, percentile intervals of the refits). ``space="log"`` fits log R with the
covariance of log means (delta method).

Status: ``ok``; ``no_scaling`` when the fitted law does not decay (D = 0, alpha at 0 or at its upper bound: a
parameter at its bound) - its parameters are kept but it is never reported or ranked as a scaling law;
``too_few_points``, ``invalid_input`` or ``failed`` when no fit could be made (never raises on bad data).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import lmfit
import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import least_squares

from sim2real_scaling.analysis.bootstrap import (
    TrialResamples,
    draw_resamples,
    percentile_interval,
    quantile_inf,
)
from sim2real_scaling.analysis.fitting import (
    GLSResult,
    PointData,
    WhitenedModel,
    from_summary,
    from_trials,
    gls_fit,
    interval_columns,
    inverse,
    poor_fit_note,
    scatter_note,
    whitener,
)

__all__ = [
    "PowerLawModel",
    "PowerLawFamily",
    "PowerLawFit",
    "RequiredX",
    "fit_law",
    "fit_power_law",
    "fit_power_law_bootstrap",
    "fit_power_law_summary",
    "fit_power_law_trials",
    "required_x",
    "power_law",
    "quantile_inf",
]

PARAMS: tuple[str, str, str] = ("D", "alpha", "C")
SPACES: tuple[str, str] = ("linear", "log")
DEFAULT_ALPHA_MAX = 5.0
_GOLD = (math.sqrt(5.0) - 1.0) / 2.0
_VARIANT = {True: "floor", False: "no_floor"}


def power_law(x: ArrayLike, D: float, alpha: float, C: float) -> np.ndarray:
    """``D x^-alpha + C`` for ``x > 0`` (any shape; same units as D and C)."""
    xa = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        return D * xa ** (-alpha) + C


def _finite_or_none(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (tuple, list)):
        return [_finite_or_none(u) for u in v]
    if isinstance(v, dict):
        return {k: _finite_or_none(u) for k, u in v.items()}
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.ndarray):
        return [_finite_or_none(u) for u in v.tolist()]
    return v


def _none_to_nan(v: Any) -> float:
    return float("nan") if v is None else float(v)


def _interval(samples: np.ndarray, ci: float) -> tuple[float, float]:
    return percentile_interval(samples, ci)


# ----------------------------------------------------------------------------------------------
# Variable projection with a full weight matrix P (the inverse covariance), vectorised
# ----------------------------------------------------------------------------------------------


def _alpha_grid(alpha_max: float) -> np.ndarray:
    return np.concatenate([[0.0], np.geomspace(1e-4, alpha_max, 160)])


def _solve_box(Szz: np.ndarray, Sz: np.ndarray, Sw: float, Szy: np.ndarray, Sy: np.ndarray, yPy: np.ndarray,
               cmax: np.ndarray, floor: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact minimum of ``(Ds z + C - y)^T P (Ds z + C - y)`` over Ds >= 0, 0 <= C <= cmax from its sums.

    The objective is a convex quadratic in two variables: its minimum is the unconstrained one when feasible,
    else the best of the edge minima (each a clipped 1-D problem). Arrays broadcast.
    """
    Szz, Sz, Szy, Sy, yPy, cmax = np.broadcast_arrays(Szz, Sz, Szy, Sy, yPy, cmax)

    def ssr(Ds: np.ndarray, C: np.ndarray) -> np.ndarray:
        return Ds * Ds * Szz + 2 * Ds * C * Sz + C * C * Sw - 2 * Ds * Szy - 2 * C * Sy + yPy

    with np.errstate(divide="ignore", invalid="ignore"):
        Ds_best = np.maximum(Szy / Szz, 0.0)
    C_best = np.zeros_like(Ds_best)
    best = ssr(Ds_best, C_best)
    if floor:
        with np.errstate(divide="ignore", invalid="ignore"):
            cands = [(np.maximum((Szy - cmax * Sz) / Szz, 0.0), cmax.astype(float)),
                     (np.zeros_like(Szz), np.clip(Sy / Sw, 0.0, cmax))]
            det = Sw * Szz - Sz * Sz
            Ds_i = (Sw * Szy - Sz * Sy) / det
            C_i = (Szz * Sy - Sz * Szy) / det
        ok = (det > 1e-12 * abs(Sw) * Szz) & (Ds_i >= 0) & (C_i >= 0) & (C_i <= cmax)
        cands.append((np.where(ok, Ds_i, 0.0), np.where(ok, C_i, 0.0)))
        for k, (Ds_c, C_c) in enumerate(cands):
            s = ssr(Ds_c, C_c)
            if k == 2:
                s = np.where(ok, s, np.inf)
            better = s < best
            best = np.where(better, s, best)
            Ds_best = np.where(better, Ds_c, Ds_best)
            C_best = np.where(better, C_c, C_best)
    return Ds_best, C_best, np.maximum(best, 0.0)


def varpro(xs: np.ndarray, Y: np.ndarray, P: np.ndarray, cmax: np.ndarray, floor: bool, alpha_max: float,
           n_iter: int = 45) -> tuple[np.ndarray, np.ndarray]:
    """Global generalised-least-squares fit of ``Ds xs^-alpha + C`` to each row of ``Y``.

    Args:
        xs: scaled x, (N,). Y: data, (B, N) (rows with NaN give NaN). P: (N, N) weight matrix (inverse
            covariance). cmax: (B,) upper bound of C per row. floor: fit C (else C = 0). alpha_max: bound.

    Returns:
        ``(params (B, 3) = (Ds, alpha, C), chi2 (B,))``.
    """
    Y = np.asarray(Y, dtype=float)
    bad_rows = ~np.all(np.isfinite(Y), axis=1)
    Y = np.where(bad_rows[:, None], 0.0, Y)
    YP = Y @ P
    Sy = YP.sum(-1)
    yPy = (YP * Y).sum(-1)
    Sw = float(P.sum())
    grid = _alpha_grid(alpha_max)
    Z = xs[None, :] ** (-grid[:, None])  # (G, N)
    ZP = Z @ P
    _, _, prof = _solve_box((ZP * Z).sum(-1)[None, :], ZP.sum(-1)[None, :], Sw, Y @ ZP.T, Sy[:, None],
                            yPy[:, None], cmax[:, None], floor)
    prof = np.where(np.isfinite(prof), prof, np.inf)
    k = np.argmin(prof, axis=1)
    lo = grid[np.maximum(k - 1, 0)]
    hi = grid[np.minimum(k + 1, grid.size - 1)]

    def f(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        zz = xs[None, :] ** (-a[:, None])
        zP = zz @ P
        return _solve_box((zP * zz).sum(-1), zP.sum(-1), Sw, (zP * Y).sum(-1), Sy, yPy, cmax, floor)

    c = hi - _GOLD * (hi - lo)
    d = lo + _GOLD * (hi - lo)
    fc, fd = f(c)[2], f(d)[2]
    for _ in range(n_iter):
        left = fc < fd
        lo_n, hi_n = np.where(left, lo, c), np.where(left, d, hi)
        c_n = np.where(left, hi_n - _GOLD * (hi_n - lo_n), d)
        d_n = np.where(left, c, lo_n + _GOLD * (hi_n - lo_n))
        fp = f(np.where(left, c_n, d_n))[2]
        fc, fd = np.where(left, fp, fd), np.where(left, fc, fp)
        lo, hi, c, d = lo_n, hi_n, c_n, d_n
    a_ref = 0.5 * (lo + hi)
    Ds_r, C_r, s_r = f(a_ref)
    a_grid = grid[k]
    Ds_g, C_g, s_g = f(a_grid)
    use_ref = s_r <= s_g
    out = np.column_stack([np.where(use_ref, Ds_r, Ds_g), np.where(use_ref, a_ref, a_grid),
                           np.where(use_ref, C_r, C_g)])
    chi = np.where(use_ref, s_r, s_g)
    bad = bad_rows | ~np.isfinite(chi)
    out[bad] = np.nan
    chi = np.where(bad, np.nan, chi)
    return out, chi


def _log_polish(xs: np.ndarray, y: np.ndarray, Wh: np.ndarray, p0: np.ndarray, cmax: float, floor: bool,
                alpha_max: float) -> tuple[np.ndarray, float]:
    """least-squares polish of scaled (Ds, alpha, C) on whitened log residuals; returns (params, chi2)."""
    fit_c = floor and cmax > 0
    log_y = np.log(y)
    log_x = np.log(xs)

    def unpack(v: np.ndarray) -> tuple[float, float, float]:
        return v[0], v[1], (v[2] if fit_c else 0.0)

    def resid(v: np.ndarray) -> np.ndarray:
        Ds, a, C = unpack(v)
        return Wh @ (np.log(np.maximum(Ds * xs ** (-a) + C, 1e-300)) - log_y)

    def jac(v: np.ndarray) -> np.ndarray:
        Ds, a, C = unpack(v)
        z = xs ** (-a)
        mod = np.maximum(Ds * z + C, 1e-300)
        cols = [z, -Ds * log_x * z] + ([np.ones_like(z)] if fit_c else [])
        return Wh @ (np.column_stack(cols) / mod[:, None])

    lb = np.array([0.0, 0.0] + ([0.0] if fit_c else []))
    ub = np.array([np.inf, alpha_max] + ([cmax] if fit_c else []))
    x0 = np.array([p0[0], p0[1]] + ([p0[2]] if fit_c else []), dtype=float)
    span = np.where(np.isfinite(ub), ub - lb, np.maximum(np.abs(x0), 1.0))
    x0 = np.clip(x0, lb + 1e-9 * span, np.where(np.isfinite(ub), ub - 1e-9 * span, np.inf))
    x0[0] = max(x0[0], 1e-12)
    try:
        res = least_squares(resid, x0, jac=jac, bounds=(lb, ub), method="trf", x_scale="jac")
    except (ValueError, FloatingPointError):
        return np.full(3, np.nan), math.inf
    r = resid(res.x)
    return np.array(unpack(res.x)), float(r @ r)


# ----------------------------------------------------------------------------------------------
# The lmfit Model
# ----------------------------------------------------------------------------------------------


def _scaled_law(x: np.ndarray, Ds: float, alpha: float, C: float, x0: float) -> np.ndarray:
    return Ds * (np.asarray(x, dtype=float) / x0) ** (-alpha) + C


class PowerLawModel(WhitenedModel):
    """``R(x) = D x^-alpha + C`` as an lmfit Model (parameters Ds, alpha, C, fixed x0; D = Ds x0^alpha).

    Args:
        x0: scale of x (the geometric mean of the fitted x, for conditioning).
        floor: fit C (else C = 0).
        cmax: upper bound of C (the smallest observed mean).
        alpha_max: upper bound of alpha.
        space: ``"linear"`` or ``"log"`` residuals.

    :meth:`guess` is the variable-projection search (the global optimum in linear space); ``fit(..., cov=S)``
    minimises residuals whitened by the covariance ``S`` of the data (generalised least squares).
    """

    def __init__(self, *, x0: float = 1.0, floor: bool = True, cmax: float = np.inf,
                 alpha_max: float = DEFAULT_ALPHA_MAX, space: str = "linear", **kws: Any) -> None:
        super().__init__(_scaled_law, independent_vars=["x"], **kws)
        self.x0, self.floor, self.cmax, self.alpha_max, self.space = float(x0), floor, float(cmax), alpha_max, space
        self.set_param_hint("Ds", min=0.0)
        self.set_param_hint("alpha", min=0.0, max=alpha_max)
        if floor and cmax > 0:
            self.set_param_hint("C", min=0.0, max=cmax if math.isfinite(cmax) else np.inf)
        else:
            self.set_param_hint("C", value=0.0, vary=False)
        self.set_param_hint("x0", value=self.x0, vary=False)
        self.set_param_hint("D", expr="Ds * x0**alpha")

    def law_params(self, Ds: float, alpha: float, C: float) -> lmfit.Parameters:
        """Parameters at a given (scaled) point, nudged inside their bounds."""
        params = self.make_params()
        params["Ds"].set(value=max(float(Ds), 1e-12))
        params["alpha"].set(value=float(np.clip(alpha, 1e-9, self.alpha_max * (1 - 1e-9))))
        if params["C"].vary:
            params["C"].set(value=float(np.clip(C, 1e-12 * self.cmax, self.cmax * (1 - 1e-12))))
        return params

    def guess(self, data: ArrayLike, x: ArrayLike, cov: np.ndarray | None = None, **kws: Any) -> lmfit.Parameters:
        """The variable-projection optimum as starting parameters (``cov``: covariance of ``data``)."""
        y = np.asarray(data, dtype=float)
        xs = np.asarray(x, dtype=float) / self.x0
        P = np.eye(y.size) if cov is None else inverse(cov)
        cmax = self.cmax if self.floor and math.isfinite(self.cmax) else float(y.min())
        p, _ = varpro(xs, y[None, :], P, np.array([cmax if self.floor else 0.0]), self.floor, self.alpha_max)
        return self.law_params(*p[0])


class PowerLawFamily:
    """The law with a floor and without (C = 0) for :func:`~sim2real_scaling.analysis.fitting.gls_fit`."""

    variants = ("floor", "no_floor")
    n_params = {"floor": 3, "no_floor": 2}

    def __init__(self, x: np.ndarray, space: str = "linear", alpha_max: float = DEFAULT_ALPHA_MAX) -> None:
        self.x = np.asarray(x, dtype=float)
        self.x0 = float(np.exp(np.mean(np.log(self.x))))
        self.xs = self.x / self.x0
        self.space, self.alpha_max = space, alpha_max

    def _P(self, y: np.ndarray, cov: np.ndarray | None) -> np.ndarray:
        return np.eye(y.size) if cov is None else inverse(cov)

    def _public(self, p: np.ndarray) -> np.ndarray:
        p = np.atleast_2d(p)
        return np.column_stack([p[:, 0] * self.x0 ** p[:, 1], p[:, 1], p[:, 2]])

    def chi2(self, y: np.ndarray, cov: np.ndarray, variant: str) -> float:
        return float(self._fit_scaled(y, cov, variant)[1])

    def _fit_scaled(self, y: np.ndarray, cov: np.ndarray | None, variant: str) -> tuple[np.ndarray, float]:
        floor = variant == "floor"
        cmax = float(y.min()) if floor else 0.0
        p, chi = varpro(self.xs, y[None, :], self._P(y, cov), np.array([cmax]), floor, self.alpha_max)
        p, chi = p[0], float(chi[0])
        if self.space == "log" and np.all(np.isfinite(p)):
            Wh = np.eye(y.size) if cov is None else whitener(cov / np.outer(y, y))
            p, chi = _log_polish(self.xs, y, Wh, p, cmax, floor, self.alpha_max)
        return p, chi

    def fit(self, y: np.ndarray, cov: np.ndarray | None, variant: str) -> tuple[np.ndarray, float, Any]:
        floor = variant == "floor"
        p, chi = self._fit_scaled(y, cov, variant)
        if not np.all(np.isfinite(p)):
            return np.full(3, np.nan), math.inf, None
        model = PowerLawModel(x0=self.x0, floor=floor, cmax=float(y.min()) if floor else 0.0,
                              alpha_max=self.alpha_max, space=self.space)
        res = None
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                res = model.fit(y, model.law_params(*p), x=self.x, cov=cov)
            q = res.params
            cand = np.array([q["Ds"].value, q["alpha"].value, q["C"].value])
            chi_l = float(res.chisqr)
            if res.success and math.isfinite(chi_l) and chi_l < chi * (1 - 1e-9):
                p, chi = cand, chi_l
        except (ValueError, TypeError, FloatingPointError, np.linalg.LinAlgError):
            res = None
        return self._public(p)[0], chi, res

    def refit(self, Y: np.ndarray, cov: np.ndarray, variant: str) -> tuple[np.ndarray, np.ndarray]:
        floor = variant == "floor"
        cmax = np.maximum(np.nanmin(Y, axis=1), 0.0) if floor else np.zeros(Y.shape[0])
        cmax = np.where(np.isfinite(cmax), cmax, 0.0)
        p, chi = varpro(self.xs, Y, inverse(cov), cmax, floor, self.alpha_max)
        if self.space == "log":
            for b in range(Y.shape[0]):
                if np.all(np.isfinite(p[b])) and np.all(Y[b] > 0):
                    Wh = whitener(cov / np.outer(Y[b], Y[b]))
                    p[b], chi[b] = _log_polish(self.xs, Y[b], Wh, p[b], float(cmax[b]), floor, self.alpha_max)
                else:
                    p[b], chi[b] = np.nan, np.nan
        return self._public(p), chi


# ----------------------------------------------------------------------------------------------
# Result objects
# ----------------------------------------------------------------------------------------------


@dataclass
class PowerLawFit:
    """A fitted law ``R(x) = D x^-alpha + C`` with its uncertainty and model comparison.

    Units: D and C in the property's units (C is the floor; D scales ``x^-alpha`` with x in samples); alpha
    dimensionless. ``floor`` says whether the reported law has a floor (the one BIC prefers unless forced);
    ``*_ci`` are percentile bootstrap intervals at ``ci_level`` (the one uncertainty to quote), ``*_sd`` the
    bootstrap SDs. ``aic``/``bic`` belong to the law with a floor, ``*_no_floor`` to C = 0; ``preferred`` is the
    one BIC prefers. ``chi2`` (and ``redchi``) under the covariance used for the parameters (the trials' plus
    the extra scatter ``tau2`` x each point's own variance); ``chi2_design`` and ``p_value`` under the trials'
    covariance alone (the goodness of fit). ``trials``/``replicates``: fewest finite trials / pretraining
    replicates at any point. ``boot_samples``: (B, 3) (D, alpha, C) refits, NaN rows for failed ones; not
    serialised.
    """

    D: float
    alpha: float
    C: float
    D_ci: tuple[float, float] = (math.nan, math.nan)
    alpha_ci: tuple[float, float] = (math.nan, math.nan)
    C_ci: tuple[float, float] = (math.nan, math.nan)
    D_sd: float = math.nan
    alpha_sd: float = math.nan
    C_sd: float = math.nan
    status: str = "ok"
    message: str = ""
    n_points: int = 0
    space: str = "linear"
    floor: bool = True
    weighted: bool = False
    chi2: float = math.nan
    dof: int = 0
    redchi: float = math.nan
    chi2_design: float = math.nan
    p_value: float = math.nan
    tau2: float = 0.0
    aic: float = math.nan
    bic: float = math.nan
    aic_no_floor: float = math.nan
    bic_no_floor: float = math.nan
    delta_aic: float = math.nan
    delta_bic: float = math.nan
    preferred: str = ""
    preferred_aic: str = ""
    D_floor: float = math.nan
    alpha_floor: float = math.nan
    C_floor: float = math.nan
    D_no_floor: float = math.nan
    alpha_no_floor: float = math.nan
    x_min: float = math.nan
    x_max: float = math.nan
    trials: int = 0
    replicates: int = 0
    warnings: list[str] = field(default_factory=list)
    ci_level: float = 0.90
    n_boot: int = 0
    n_boot_failed: int = 0
    bootstrap: str = "none"
    boot_samples: np.ndarray = field(default_factory=lambda: np.empty((0, 3)), repr=False, compare=False)

    @classmethod
    def from_params(cls, D: float, alpha: float, C: float = 0.0, *, boot_samples: np.ndarray | None = None,
                    **kwargs: Any) -> PowerLawFit:
        """A law with given parameters (e.g. published ones), status ``ok``."""
        kwargs.setdefault("floor", C != 0.0)
        fit = cls(D=float(D), alpha=float(alpha), C=float(C), **kwargs)
        if boot_samples is not None:
            fit.boot_samples = np.asarray(boot_samples, dtype=float).reshape(-1, 3)
            fit._summarise_boot(fit.ci_level)
        return fit

    @classmethod
    def failed(cls, status: str, message: str, n_points: int = 0, space: str = "linear") -> PowerLawFit:
        """A result for a fit that could not be made (all parameters NaN)."""
        return cls(D=math.nan, alpha=math.nan, C=math.nan, status=status, message=message, n_points=n_points,
                   space=space)

    @property
    def ok(self) -> bool:
        """True when the fit succeeded and the law decays (``no_scaling`` is not ok)."""
        return self.status == "ok"

    @property
    def has_params(self) -> bool:
        """True when there are fitted parameters to draw (``ok`` or ``no_scaling``)."""
        return self.status in ("ok", "no_scaling")

    def predict(self, x: ArrayLike) -> np.ndarray:
        """``R(x)`` in property units; ``x`` any shape, > 0."""
        return power_law(x, self.D, self.alpha, self.C)

    def derivative(self, x: ArrayLike) -> np.ndarray:
        """``dR/dx = -alpha D x^(-alpha-1)`` in property units per sample."""
        xa = np.asarray(x, dtype=float)
        return -self.alpha * self.D * xa ** (-self.alpha - 1.0)

    def boot_predict(self, x: ArrayLike) -> np.ndarray:
        """``R(x)`` for every bootstrap sample: shape ``(B, len(x))``."""
        xa = np.atleast_1d(np.asarray(x, dtype=float))
        s = self.boot_samples
        return s[:, 0:1] * xa[None, :] ** (-s[:, 1:2]) + s[:, 2:3]

    def boot_derivative(self, x: ArrayLike) -> np.ndarray:
        """``dR/dx`` for every bootstrap sample: shape ``(B, len(x))``."""
        xa = np.atleast_1d(np.asarray(x, dtype=float))
        s = self.boot_samples
        return -s[:, 1:2] * s[:, 0:1] * xa[None, :] ** (-s[:, 1:2] - 1.0)

    def predict_band(self, x: ArrayLike, ci: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise percentile band of ``R(x)`` over bootstrap samples (NaN without samples)."""
        xa = np.atleast_1d(np.asarray(x, dtype=float))
        ci = self.ci_level if ci is None else ci
        if self.boot_samples.shape[0] == 0:
            nan = np.full(xa.shape, np.nan)
            return nan, nan.copy()
        pred = self.boot_predict(xa)
        a = (1.0 - ci) / 2.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanquantile(pred, a, axis=0), np.nanquantile(pred, 1.0 - a, axis=0)

    def equation(self, var: str = "n", digits: int = 3, lhs: str = "MAE") -> str:
        """Plain-text law, e.g. ``"MAE = 0.0684 n^-0.0145 + 1.75e-11"`` (no ``+ C`` for the law without floor)."""
        if not self.has_params:
            return f"{lhs}: fit failed ({self.status})"
        core = f"{lhs} = {self.D:.{digits}g} {var}^-{self.alpha:.{digits}g}"
        return core + (f" + {self.C:.{digits}g}" if self.floor else "")

    def _summarise_boot(self, ci: float) -> None:
        s = self.boot_samples
        self.ci_level = float(ci)
        self.n_boot = int(s.shape[0])
        good = np.all(np.isfinite(s), axis=1) if s.size else np.zeros(0, bool)
        self.n_boot_failed = int((~good).sum())
        for k, v in interval_columns(s, PARAMS, ci).items():
            setattr(self, k, v)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN/inf -> None, tuples -> lists), parameters unrounded."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            if name == "boot_samples":
                continue
            out[name] = _finite_or_none(getattr(self, name))
        out["equation"] = self.equation()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PowerLawFit:
        """Inverse of :meth:`to_dict` (bootstrap samples are not restored)."""
        kwargs: dict[str, Any] = {}
        for name, f in cls.__dataclass_fields__.items():
            if name == "boot_samples" or name not in data:
                continue
            v = data[name]
            if name.endswith("_ci"):
                v = (math.nan, math.nan) if v is None else tuple(_none_to_nan(u) for u in v)
            elif f.type in ("float",):
                v = _none_to_nan(v)
            elif name == "warnings":
                v = list(v or [])
            kwargs[name] = v
        return cls(**kwargs)


@dataclass
class RequiredX:
    """The x (samples) needed to reach a target MAE, with a bootstrap interval.

    ``value`` is ``inf`` when unreachable (target <= C). ``reachable_fraction`` is the fraction of bootstrap
    samples in which the target is above the sample's floor (NaN without samples); the interval treats
    unreachable samples as ``inf``. ``measured``: ``"inside"``, ``"below"`` or ``"above"`` the measured x
    range (outside: the answer is an extrapolation). Unpacks as ``value, ci_low, ci_high, reachable``.
    """

    value: float
    ci_low: float
    ci_high: float
    reachable: bool
    reachable_fraction: float = math.nan
    target: float = math.nan
    ci_level: float = 0.90
    n_boot: int = 0
    message: str = ""
    measured: str = ""
    x_min: float = math.nan
    x_max: float = math.nan

    def __iter__(self) -> Iterator[Any]:
        return iter((self.value, self.ci_low, self.ci_high, self.reachable))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (inf/NaN -> None)."""
        return {k: _finite_or_none(getattr(self, k)) for k in self.__dataclass_fields__}


# ----------------------------------------------------------------------------------------------
# Fitting
# ----------------------------------------------------------------------------------------------


def _prepare(x: ArrayLike, y_mean: ArrayLike, space: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Validate and sort; returns (order, x, y, problem) with problem '' when fine."""
    xa = np.asarray(x, dtype=float).ravel()
    ya = np.asarray(y_mean, dtype=float).ravel()
    if xa.shape != ya.shape:
        return np.arange(0), xa, ya, f"x has {xa.size} values, y_mean {ya.size}"
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(ya))):
        bad = np.flatnonzero(~(np.isfinite(xa) & np.isfinite(ya)))
        return np.arange(0), xa, ya, f"NaN/inf in x or y_mean at positions {bad.tolist()}"
    if np.any(xa <= 0):
        return np.arange(0), xa, ya, "x must be > 0"
    if np.any(ya < 0) or (space == "log" and np.any(ya <= 0)):
        return np.arange(0), xa, ya, "y_mean must be >= 0 (> 0 in log space)"
    order = np.argsort(xa, kind="stable")
    return order, xa[order], ya[order], ""


def _no_scaling(D: float, alpha: float, alpha_max: float) -> str:
    if not (D > 0) or alpha < 1e-6:
        return "no scaling detected: the fitted law does not decay (D = 0 or alpha = 0, a parameter at its bound)"
    if alpha >= alpha_max * (1 - 1e-6):
        return (f"no scaling detected: alpha at its upper bound {alpha_max:g} (the error reaches its floor "
                "at the smallest x)")
    return ""


def fit_law(x: ArrayLike, data: PointData, *, n_boot: int = 200, ci: float = 0.90, floor: bool | None = None,
            space: str = "linear", alpha_max: float = DEFAULT_ALPHA_MAX,
            generator: np.random.Generator | None = None) -> PowerLawFit:
    """Fit ``R(x) = D x^-alpha + C`` to points (the one path every 1-D fit takes).

    Args:
        x: sample sizes, (N,), > 0, at least 3 distinct.
        data: the means with their covariance and resamples (:func:`~.fitting.from_trials`,
            :func:`~.fitting.from_summary`).
        n_boot: refits for the intervals (0: none).
        ci: interval level.
        floor: report the law with a floor (True), without (False) or the one BIC prefers (None, default; then
            every resample selects again).
        space: ``"linear"`` or ``"log"`` residuals.
        alpha_max: upper bound of alpha.
        generator: random generator for the extra-scatter draws (default: seed 0).
    """
    if space not in SPACES:
        return PowerLawFit.failed("invalid_input", f"space must be one of {SPACES}, got {space!r}")
    order, xa, ya, problem = _prepare(x, data.y, space)
    n_pts = int(xa.size)
    if problem:
        return PowerLawFit.failed("invalid_input", problem, n_pts, space)
    n_distinct = int(np.unique(xa).size)
    if n_distinct < 3:
        return PowerLawFit.failed("too_few_points",
                                  f"need at least 3 distinct x values to fit D, alpha, C; got {n_distinct}",
                                  n_pts, space)
    sorted_data = PointData(y=ya, cov=None if data.cov is None else data.cov[np.ix_(order, order)],
                            boot=None if data.boot is None else data.boot[:, order], kind=data.kind,
                            trials=data.trials, replicates=data.replicates, notes=list(data.notes))
    family = PowerLawFamily(xa, space, alpha_max)
    select = "bic" if floor is None else _VARIANT[bool(floor)]
    gen = generator if generator is not None else np.random.default_rng(0)
    res = gls_fit(family, sorted_data, n_boot=n_boot, generator=gen, select=select)
    return _law_from(res, family, n_pts, space, alpha_max, ci, data)


def _law_from(res: GLSResult, family: PowerLawFamily, n_pts: int, space: str, alpha_max: float, ci: float,
              data: PointData) -> PowerLawFit:
    p = res.params[res.selected]
    if not np.all(np.isfinite(p)):
        return PowerLawFit.failed("failed", "no start converged (variable projection, lmfit)", n_pts, space)
    D, alpha, C = (float(v) for v in p)
    pf, pn = res.params["floor"], res.params["no_floor"]
    messages = list(res.notes)
    warn: list[str] = []
    for note in (poor_fit_note(res), scatter_note(res, data.replicates)):
        if note:
            warn.append(note)
    if res.weighted and data.replicates == 1 and data.kind != "parametric":
        warn.append("one pretraining replicate per point: the interval cannot contain the variation between "
                    "pretrainings except through the extra scatter; run more replicates "
                    "(protocol.pretrain_replicates)")
    elif res.weighted and 1 < data.replicates < 4 and data.kind != "parametric":
        warn.append(f"{data.replicates} pretraining replicates: the variation between pretrainings is estimated "
                    "from few draws, the interval is approximate; run more replicates (protocol.pretrain_replicates)")
    status = "ok"
    why = _no_scaling(D, alpha, alpha_max)
    if why:
        status = "no_scaling"
        warn.insert(0, why)
    if res.selected == "floor" and C >= float(family.x.size and data.y.min()) * (1 - 1e-9) and C > 0:
        messages.append("C at its upper bound (the smallest mean)")
    k = family.n_params[res.selected]
    fit = PowerLawFit(
        D=D, alpha=alpha, C=C, status=status, message="; ".join(messages + warn), n_points=n_pts, space=space,
        floor=res.selected == "floor", weighted=res.weighted, chi2=res.chi2[res.selected], dof=n_pts - k,
        redchi=res.chi2[res.selected] / (n_pts - k) if n_pts > k else math.nan,
        chi2_design=res.chi2_design.get(res.selected, math.nan), p_value=res.p_value, tau2=res.tau2,
        aic=res.aic["floor"], bic=res.bic["floor"], aic_no_floor=res.aic["no_floor"],
        bic_no_floor=res.bic["no_floor"], delta_aic=res.aic["floor"] - res.aic["no_floor"],
        delta_bic=res.bic["floor"] - res.bic["no_floor"],
        D_floor=float(pf[0]), alpha_floor=float(pf[1]), C_floor=float(pf[2]),
        D_no_floor=float(pn[0]), alpha_no_floor=float(pn[1]),
        x_min=float(family.x.min()), x_max=float(family.x.max()), trials=data.trials, replicates=data.replicates,
        warnings=warn, ci_level=ci,
    )
    d_bic, d_aic = fit.delta_bic, fit.delta_aic
    fit.preferred = ("floor" if d_bic < 0 else "no_floor") if math.isfinite(d_bic) else ""
    fit.preferred_aic = ("floor" if d_aic < 0 else "no_floor") if math.isfinite(d_aic) else ""
    if res.samples.size:
        fit.boot_samples = res.samples
        fit.bootstrap = res.kind
        fit._summarise_boot(ci)
        if fit.n_boot_failed:
            fit.message = "; ".join(m for m in (fit.message, f"{fit.n_boot_failed} of {fit.n_boot} bootstrap "
                                                             "refits failed") if m)
        if fit.status == "ok":
            # the decay over the measured range, R(x_min) - R(x_max), in every resample: an interval that reaches
            # 0 means the data do not show the law decaying at all
            s = fit.boot_samples[np.all(np.isfinite(fit.boot_samples), axis=1)]
            lo_x, hi_x = fit.x_min, fit.x_max
            drop = s[:, 0] * (lo_x ** (-s[:, 1]) - hi_x ** (-s[:, 1]))
            scale = max(float(np.max(data.y)), 1e-300)
            if s.shape[0] >= 2 and quantile_inf(drop, (1.0 - ci) / 2.0) <= 1e-9 * scale:
                fit.status = "no_scaling"
                why = (f"no scaling detected: the decay over the measured range has a {ci:.0%} interval that "
                       "reaches 0 (the error does not fall measurably with x)")
                fit.warnings.insert(0, why)
                fit.message = "; ".join(m for m in (why, fit.message) if m)
    return fit


def fit_power_law(x: ArrayLike, y_mean: ArrayLike, y_sem: ArrayLike | None = None, *, cov: np.ndarray | None = None,
                  space: str = "linear", floor: bool | None = None,
                  alpha_max: float = DEFAULT_ALPHA_MAX) -> PowerLawFit:
    """Fit the law to means (no bootstrap): weighted by ``cov`` (N, N), or by ``y_sem`` as independent points,
    or unweighted.

    Returns a :class:`PowerLawFit` (``status`` as in the module docstring; never raises on bad data).
    """
    ya = np.asarray(y_mean, dtype=float).ravel()
    if cov is not None:
        data = PointData(y=ya, cov=np.asarray(cov, dtype=float))
    else:
        data = from_summary(ya, y_sem)
        data.notes = [n for n in data.notes if not n.startswith("from summary")]
    try:
        return fit_law(x, data, n_boot=0, space=space, floor=floor, alpha_max=alpha_max)
    except ValueError as exc:
        return PowerLawFit.failed("invalid_input", str(exc), ya.size, space)


def fit_power_law_summary(x: ArrayLike, y_mean: ArrayLike, y_sem: ArrayLike, *, n_boot: int = 200, seed: int = 0,
                          ci: float = 0.90, space: str = "linear", floor: bool | None = None,
                          alpha_max: float = DEFAULT_ALPHA_MAX) -> PowerLawFit:
    """Fit the law to summary means with a parametric bootstrap from their SEs (points taken as independent)."""
    ya = np.asarray(y_mean, dtype=float).ravel()
    sem = np.asarray(y_sem, dtype=float).ravel()
    if sem.shape != ya.shape:
        return PowerLawFit.failed("invalid_input", f"y_sem has shape {sem.shape}, y has {ya.shape}", ya.size, space)
    return fit_law(x, from_summary(ya, sem), n_boot=n_boot, ci=ci, floor=floor, space=space, alpha_max=alpha_max,
                   generator=np.random.default_rng(seed))


def fit_power_law_trials(x: ArrayLike, values: np.ndarray, resamples: TrialResamples, *, n_boot: int = 200,
                         ci: float = 0.90, space: str = "linear", floor: bool | None = None,
                         alpha_max: float = DEFAULT_ALPHA_MAX, n_of_point: ArrayLike | None = None,
                         generator: np.random.Generator | None = None) -> PowerLawFit:
    """Fit the law to trial values with the property's cluster-bootstrap resamples.

    Args:
        x: (N,) sample sizes of the points.
        values: (T, N) trial MAEs in the order of ``resamples.trial_ids`` (NaN = missing/diverged).
        resamples: :func:`~sim2real_scaling.analysis.bootstrap.resamples_for` (the covariance uses all of them,
            the refits the first ``n_boot``).
        n_of_point: (N,) the n of each point (default ``x``: a law in n); for a law in m at fixed n, that n.
    """
    v = np.asarray(values, dtype=float)
    xa = np.asarray(x, dtype=float).ravel()
    if v.ndim != 2 or v.shape[1] != xa.size:
        return PowerLawFit.failed("invalid_input", f"{xa.size} x values but trial values of shape {v.shape}",
                                  xa.size, space)
    if np.any(np.isfinite(v).sum(axis=0) == 0):
        bad = np.flatnonzero(np.isfinite(v).sum(axis=0) == 0).tolist()
        return PowerLawFit.failed("invalid_input", f"no finite trial MAE at positions {bad}", xa.size, space)
    n_pt = xa if n_of_point is None else np.broadcast_to(np.asarray(n_of_point, dtype=float), xa.shape)
    return fit_law(xa, from_trials(v, resamples, n_boot, n_pt), n_boot=n_boot, ci=ci, floor=floor, space=space,
                   alpha_max=alpha_max, generator=generator)


def fit_power_law_bootstrap(x: ArrayLike, mae_by_trial: Sequence[ArrayLike], *, trial_ids: Sequence[ArrayLike] | None = None,
                            replicates: ArrayLike | None = None, n_boot: int = 200, seed: int = 0, ci: float = 0.90,
                            space: str = "linear", floor: bool | None = None,
                            alpha_max: float = DEFAULT_ALPHA_MAX) -> PowerLawFit:
    """Fit the law to per-point arrays of trial MAEs (a convenience for notebooks).

    Args:
        x: (N,) sample sizes.
        mae_by_trial: per point, the trial MAEs (NaN = diverged).
        trial_ids: per point, the trial ids of its values (trial t shares its split at every point); without
            them the arrays must have equal lengths and position k is trial k.
        replicates: the replicate of each trial id 0..T-1 (or of each sorted distinct id); default: each trial
            its own.
        n_boot, seed, ci, space, floor, alpha_max: as :func:`fit_law`.
    """
    arrays = [np.asarray(a, dtype=float).ravel() for a in mae_by_trial]
    xa = np.asarray(x, dtype=float).ravel()
    if len(arrays) != xa.size:
        return PowerLawFit.failed("invalid_input", f"{xa.size} x values but {len(arrays)} trial arrays", xa.size,
                                  space)
    if any(a.size == 0 for a in arrays):
        return PowerLawFit.failed("invalid_input", "a point has no trials", xa.size, space)
    if trial_ids is None:
        if len({a.size for a in arrays}) != 1:
            return PowerLawFit.failed("invalid_input", "without trial ids every point needs the same number of "
                                      "trials (position k = trial k)", xa.size, space)
        trial_ids = [np.arange(arrays[0].size)] * len(arrays)
    ids = [np.asarray(t).ravel() for t in trial_ids]
    universe = np.unique(np.concatenate(ids))
    reps = None if replicates is None else np.asarray(replicates).ravel()
    if reps is not None and reps.size != universe.size:
        return PowerLawFit.failed("invalid_input", f"{reps.size} replicates for {universe.size} trials", xa.size,
                                  space)
    gen = np.random.default_rng(seed)
    resamples = draw_resamples(universe, reps, max(n_boot, 1000), gen)
    values = np.full((universe.size, xa.size), np.nan)
    for j, (a, t) in enumerate(zip(arrays, ids, strict=True)):
        values[resamples.positions(t), j] = a
    return fit_power_law_trials(xa, values, resamples, n_boot=n_boot, ci=ci, space=space, floor=floor,
                                alpha_max=alpha_max, generator=gen)


# ----------------------------------------------------------------------------------------------
# Inverse: x needed for a target
# ----------------------------------------------------------------------------------------------


def _x_for_target(D: np.ndarray, alpha: np.ndarray, C: np.ndarray, target: float) -> np.ndarray:
    """``(D / (target - C))^(1/alpha)``; inf where unreachable (target <= C, or no decay)."""
    D, alpha, C = np.broadcast_arrays(np.asarray(D, float), np.asarray(alpha, float), np.asarray(C, float))
    out = np.full(D.shape, np.inf)
    gap = target - C
    with np.errstate(all="ignore"):
        decays = (D > 0) & (alpha > 0)
        ok = (gap > 0) & decays
        out[ok] = (D[ok] / gap[ok]) ** (1.0 / alpha[ok])
        flat_ok = ~decays & (D + C <= target)
        out[flat_ok] = 0.0
    out[np.isnan(D) | np.isnan(alpha) | np.isnan(C)] = np.nan
    return out


def required_x(fit: PowerLawFit, target: float, ci: float | None = None) -> RequiredX:
    """Sample size x at which the law reaches a target MAE.

    Returns:
        :class:`RequiredX`: ``value = (D / (target - C))^(1/alpha)``, ``inf`` and ``reachable=False`` when
        ``target <= C``; the interval from the same formula applied to each bootstrap sample (unreachable
        samples count as ``inf``); ``measured`` and the message say when the answer lies below the smallest or
        above the largest x measured (an extrapolation of the law).
    """
    ci = fit.ci_level if ci is None else ci
    if not fit.ok:
        why = fit.message if fit.status == "no_scaling" else f"fit not usable ({fit.status})"
        return RequiredX(math.nan, math.nan, math.nan, False, target=target, ci_level=ci, message=why)
    value = float(_x_for_target(np.array(fit.D), np.array(fit.alpha), np.array(fit.C), target))
    reachable = math.isfinite(value)
    msgs = [] if reachable else [
        f"unreachable: target {target:g} <= floor C = {fit.C:.4g}" if target <= fit.C
        else "unreachable: the law does not decay"]
    s = fit.boot_samples
    good = np.all(np.isfinite(s), axis=1) if s.size else np.zeros(0, bool)
    if good.sum() >= 2:
        xb = _x_for_target(s[good, 0], s[good, 1], s[good, 2], target)
        lo, hi = _interval(xb, ci)
        frac = float(np.mean(np.isfinite(xb)))
    else:
        lo = hi = frac = math.nan
    measured = ""
    if reachable and math.isfinite(fit.x_max):
        if value > fit.x_max * 1.0000001:
            measured = "above"
            msgs.append(f"extrapolated: above the largest x measured ({fit.x_max:g}); see the backtest for how far "
                        "the law may be trusted")
        elif value < fit.x_min / 1.0000001:
            measured = "below"
            msgs.append(f"below the smallest x measured ({fit.x_min:g}): the target is met at every measured x; "
                        "the value itself is an extrapolation")
        else:
            measured = "inside"
    return RequiredX(value, lo, hi, reachable, frac, target, ci, int(good.sum()), "; ".join(msgs), measured,
                     fit.x_min, fit.x_max)
