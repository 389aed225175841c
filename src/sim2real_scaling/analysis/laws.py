"""The 1-D scaling law R(x) = D x^-alpha + C, its fit, its uncertainty and its inverse.

``x`` is the number of simulated samples n (at fixed m) or of experimental samples m (at fixed n);
``R`` is the mean test MAE over trials, in the property's units. D, alpha, C >= 0; C (the transfer
gap, the floor that more data cannot cross) is bounded above by the smallest observed mean.

Weighting (default ``space="linear"``)
    Residuals ``(R(x_i) - y_i) / SE_i`` in linear space, with ``SE_i`` the standard error of the
    mean MAE at ``x_i`` (trial SD / sqrt(trials), or the 90% CI half-width / 1.645 when only the
    summary is known). Each point is a mean over 100-500 trials, so its sampling error is close to
    Gaussian with a known SD: this weighted least squares *is* the maximum-likelihood fit, the
    chi-square per degree of freedom says whether the law describes the points within their noise,
    and AIC/BIC are proper likelihood criteria. Linear space also keeps the floor C meaningful (a
    log-space fit lets tiny absolute misfits near the floor dominate). Missing, zero or NaN SEs are
    replaced by the median of the valid ones; with no SEs at all the fit is unweighted.

``space="log"``
    Residuals ``log R(x_i) - log y_i``, weighted by ``y_i / SE_i`` (the delta-method SE of
    ``log y_i``) when SEs are given and unweighted otherwise: equal *relative* errors, for curves
    spanning orders of magnitude or digitised published curves without SEs.

Model comparison
    The law with a floor (3 parameters) and without (C = 0, 2 parameters) are both fitted. With SEs
    the criteria are ``AIC = chi2 + 2k``, ``BIC = chi2 + k ln N`` (Gaussian likelihood with known
    variances, constants dropped); unweighted, ``N ln(chi2/N) + 2k`` / ``+ k ln N`` (unknown common
    variance, lmfit's definition). ``delta = floor - no_floor``: negative favours the floor.
    ``preferred`` follows BIC (``preferred_aic`` follows AIC).

Fitting
    Variable projection gives the start: for each alpha on a grid (0 and 160 log-spaced values up to
    ``alpha_max``) D and C are solved in closed form by bounded linear least squares (D >= 0,
    0 <= C <= min y) and the best alpha is refined by golden-section search - in linear space this
    profile is exact, so it finds the global optimum. That start and a few others (other local
    minima of the alpha profile, a log-log regression, a start with a high floor) are polished by
    bounded least squares with an analytic Jacobian; the best is polished once more by an
    ``lmfit.Model`` fit (``least_squares``), which gives the covariance - unscaled when SEs are
    given, scaled by reduced chi-square otherwise - and so ``stderr`` (D's by propagation through
    the expression ``D = Ds x0^alpha``). x is divided internally by its geometric mean x0 for
    conditioning; D is reported in the original units. Bootstrap refits (trials resampled within
    each x or, with ``paired=True``, jointly across x; or a parametric bootstrap from the SEs) use
    the same projection (vectorised over resamples) with weights fixed at the original SEs, and
    give the percentile intervals and SDs, the recommended uncertainties.

Nothing in the fit path raises on bad data: a fit that cannot be made (fewer than 3 distinct x,
NaN, non-positive x, non-convergence) returns a :class:`PowerLawFit` with ``status != "ok"`` and a
message.
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

__all__ = [
    "PowerLawFit",
    "RequiredX",
    "fit_power_law",
    "fit_power_law_bootstrap",
    "fit_power_law_summary",
    "required_x",
    "power_law",
    "quantile_inf",
    "clean_weights",
    "resample_means",
]

PARAMS: tuple[str, str, str] = ("D", "alpha", "C")
SPACES: tuple[str, str] = ("linear", "log")
DEFAULT_ALPHA_MAX = 5.0
_GOLD = (math.sqrt(5.0) - 1.0) / 2.0


def power_law(x: ArrayLike, D: float, alpha: float, C: float) -> np.ndarray:
    """``D x^-alpha + C`` for ``x > 0`` (any shape; same units as D and C)."""
    xa = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        return D * xa ** (-alpha) + C


def _law_scaled(xs: np.ndarray, Ds: float, alpha: float, C: float) -> np.ndarray:
    return Ds * xs ** (-alpha) + C


def _log_law_scaled(xs: np.ndarray, Ds: float, alpha: float, C: float) -> np.ndarray:
    return np.log(np.maximum(Ds * xs ** (-alpha) + C, 1e-300))


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
    return v


def _none_to_nan(v: Any) -> float:
    return float("nan") if v is None else float(v)


def quantile_inf(values: ArrayLike, q: float) -> float:
    """Quantile (linear interpolation) of ``values`` that may contain ``+inf``; NaNs are dropped.

    Where the interpolation touches an infinite value the result is ``inf`` (so an interval
    reaching into 'unreachable' bootstrap samples is open-ended). Returns NaN for no data.
    """
    v = np.sort(np.asarray(values, dtype=float).ravel())
    v = v[~np.isnan(v)]
    if v.size == 0:
        return float("nan")
    pos = q * (v.size - 1)
    lo, hi = int(math.floor(pos)), int(math.ceil(pos))
    if np.isinf(v[hi]) or np.isinf(v[lo]):
        return float(v[hi]) if (hi == lo or np.isinf(v[lo])) else float("inf")
    return float(v[lo] + (v[hi] - v[lo]) * (pos - lo))


def _interval(samples: np.ndarray, ci: float) -> tuple[float, float]:
    a = (1.0 - ci) / 2.0
    return quantile_inf(samples, a), quantile_inf(samples, 1.0 - a)


def clean_weights(
    y: np.ndarray, y_sem: ArrayLike | None, space: str
) -> tuple[np.ndarray, np.ndarray, bool, str]:
    """Residual weights for the fit.

    Args:
        y: means, shape ``(N,)``, > 0 for ``space="log"``.
        y_sem: standard errors of the means, shape ``(N,)``, or ``None``.
        space: ``"linear"`` or ``"log"``.

    Returns:
        ``(w, w_lin, weighted, note)``: ``w`` multiplies the residual in ``space``; ``w_lin`` is the
        equivalent linear-space weight (used by variable projection: ``w / y`` in log space);
        ``weighted`` tells whether SEs were used; ``note`` says what was replaced.
    """
    note = ""
    se: np.ndarray | None = None
    if y_sem is not None:
        raw = np.asarray(y_sem, dtype=float).ravel()
        if raw.shape != y.shape:
            raise ValueError(f"y_sem has shape {raw.shape}, y has {y.shape}")
        good = np.isfinite(raw) & (raw > 0)
        if not good.any():
            note = "no usable standard errors: unweighted fit"
        elif not good.all():
            fill = float(np.median(raw[good]))
            note = f"{int((~good).sum())} missing/zero SE replaced by the median SE {fill:.3g}"
            se = np.where(good, raw, fill)
        else:
            se = raw
    if se is None:
        ones = np.ones_like(y, dtype=float)
        return ones, (ones if space == "linear" else ones / y), False, note
    if space == "linear":
        return 1.0 / se, 1.0 / se, True, note
    return y / se, 1.0 / se, True, note


def resample_means(
    mae_by_trial: Sequence[np.ndarray],
    n_boot: int,
    rng: np.random.Generator,
    *,
    paired: bool = False,
    trial_ids: Sequence[ArrayLike] | None = None,
) -> tuple[np.ndarray, str]:
    """Bootstrap means of trial MAEs at several grid points.

    Args:
        mae_by_trial: per point, the 1-D array of trial MAEs.
        n_boot: resamples.
        rng: random generator.
        paired: resample *trials* jointly across points (trial t shares its random split at every
            point, as in the workflow's protocol), keeping the correlation between points; else
            independently within each point.
        trial_ids: per point, the trial ids of ``mae_by_trial`` (for ``paired``); trial t is
            matched by id, so points where some trials are missing (diverged) are fine. Without
            ids, paired resampling matches by position and needs equal trial counts.

    Returns:
        ``(Y, note)``: resampled means ``(n_boot, points)`` and a note when pairing was not
        possible (then resampled within points).
    """
    N = len(mae_by_trial)
    Y = np.empty((n_boot, N))
    note = ""
    if paired and trial_ids is None:
        if len({a.size for a in mae_by_trial}) == 1:
            trial_ids = [np.arange(mae_by_trial[0].size)] * N
        else:
            note = "paired bootstrap needs trial ids or equal trial counts: resampled within points"
            paired = False
    if paired and trial_ids is not None:
        ids = [np.asarray(t).ravel() for t in trial_ids]
        universe = np.unique(np.concatenate(ids))
        idx = rng.integers(0, universe.size, size=(n_boot, universe.size))
        for j, (a, t) in enumerate(zip(mae_by_trial, ids, strict=True)):
            full = np.full(universe.size, np.nan)
            full[np.searchsorted(universe, t)] = a
            drawn = full[idx]
            with np.errstate(invalid="ignore", divide="ignore"):
                Y[:, j] = np.nansum(drawn, axis=1) / np.sum(np.isfinite(drawn), axis=1)
        return Y, note
    for j, a in enumerate(mae_by_trial):
        Y[:, j] = a[rng.integers(0, a.size, size=(n_boot, a.size))].mean(axis=1)
    return Y, note


# ----------------------------------------------------------------------------------------------
# Variable projection (vectorised over bootstrap samples and the alpha grid)
# ----------------------------------------------------------------------------------------------


def _alpha_grid(alpha_max: float) -> np.ndarray:
    return np.concatenate([[0.0], np.geomspace(1e-4, alpha_max, 160)])


def _solve_dc(
    z: np.ndarray, y: np.ndarray, W: np.ndarray, cmax: np.ndarray, floor: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bounded weighted LS for ``y ~ Ds z + C``: Ds >= 0, 0 <= C <= cmax (exact, closed form).

    Shapes broadcast: ``z, y, W: (..., N)``, ``cmax: (...)``. Returns ``Ds, C, ssr`` of shape
    ``(...)``. The problem is a convex QP in two variables with box constraints, so its optimum is
    the unconstrained solution when feasible, else the best of the edge optima (each edge is a 1-D
    clipped least-squares problem).
    """
    z, y, W = np.broadcast_arrays(z, y, W)
    Sw = W.sum(-1)
    Sz = (W * z).sum(-1)
    Szz = (W * z * z).sum(-1)
    Sy = (W * y).sum(-1)
    Szy = (W * z * y).sum(-1)
    cmax = np.broadcast_to(cmax, Sw.shape)

    def ssr(Ds: np.ndarray, C: np.ndarray) -> np.ndarray:
        r = Ds[..., None] * z + C[..., None] - y
        return (W * r * r).sum(-1)

    with np.errstate(divide="ignore", invalid="ignore"):
        Ds_best = np.maximum(Szy / Szz, 0.0)
    C_best = np.zeros_like(Ds_best)
    best = ssr(Ds_best, C_best)
    if floor:
        with np.errstate(divide="ignore", invalid="ignore"):
            cands = [
                (np.maximum((Szy - cmax * Sz) / Szz, 0.0), cmax.copy()),
                (np.zeros_like(Sw), np.clip(Sy / Sw, 0.0, cmax)),
            ]
            det = Sw * Szz - Sz * Sz
            Ds_i = (Sw * Szy - Sz * Sy) / det
            C_i = (Szz * Sy - Sz * Szy) / det
        ok = (det > 1e-12 * Sw * Szz) & (Ds_i >= 0) & (C_i >= 0) & (C_i <= cmax)
        Ds_i = np.where(ok, Ds_i, 0.0)
        C_i = np.where(ok, C_i, 0.0)
        cands.append((Ds_i, C_i))
        for k, (Ds_c, C_c) in enumerate(cands):
            s = ssr(Ds_c, C_c)
            if k == 2:
                s = np.where(ok, s, np.inf)
            better = s < best
            best = np.where(better, s, best)
            Ds_best = np.where(better, Ds_c, Ds_best)
            C_best = np.where(better, C_c, C_best)
    return Ds_best, C_best, best


def _varpro(
    xs: np.ndarray,
    Y: np.ndarray,
    W: np.ndarray,
    cmax: np.ndarray,
    floor: bool,
    alpha_max: float,
    n_iter: int = 45,
) -> tuple[np.ndarray, np.ndarray]:
    """Global weighted LS fit of ``Ds xs^-alpha + C`` to each row of ``Y`` (linear-space weights).

    Args:
        xs: scaled x, shape ``(N,)``.
        Y: data, shape ``(B, N)``.
        W: squared linear weights, ``(N,)`` or ``(B, N)``.
        cmax: upper bound of C per row, ``(B,)``.
        floor: fit C (else C = 0).
        alpha_max: upper bound of alpha.

    Returns:
        ``(params, profile)``: params ``(B, 3)`` = (Ds, alpha, C) and the SSR profile over the
        alpha grid, ``(B, G)``.
    """
    grid = _alpha_grid(alpha_max)
    B = Y.shape[0]
    Wb = np.broadcast_to(W, Y.shape)
    z = xs[None, None, :] ** (-grid[None, :, None])  # (1, G, N)
    _, _, prof = _solve_dc(z, Y[:, None, :], Wb[:, None, :], cmax[:, None], floor)  # (B, G)
    prof = np.where(np.isfinite(prof), prof, np.inf)
    k = np.argmin(prof, axis=1)
    G = grid.size
    lo = grid[np.maximum(k - 1, 0)]
    hi = grid[np.minimum(k + 1, G - 1)]

    def f(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        zz = xs[None, :] ** (-a[:, None])
        return _solve_dc(zz, Y, Wb, cmax, floor)

    # golden-section search, one profile evaluation per step (lo < c < d < hi)
    c = hi - _GOLD * (hi - lo)
    d = lo + _GOLD * (hi - lo)
    fc = f(c)[2]
    fd = f(d)[2]
    for _ in range(n_iter):
        left = fc < fd  # minimum in [lo, d] (else in [c, hi])
        lo_n = np.where(left, lo, c)
        hi_n = np.where(left, d, hi)
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
    out = np.empty((B, 3))
    out[:, 0] = np.where(use_ref, Ds_r, Ds_g)
    out[:, 1] = np.where(use_ref, a_ref, a_grid)
    out[:, 2] = np.where(use_ref, C_r, C_g)
    bad = ~np.isfinite(np.minimum(s_r, s_g))
    out[bad] = np.nan
    return out, prof


def _profile_minima(prof: np.ndarray, grid: np.ndarray, k_max: int = 3) -> list[float]:
    """Alpha values of the lowest local minima of one SSR profile (best first)."""
    p = prof
    idx = [
        i
        for i in range(p.size)
        if np.isfinite(p[i])
        and (i == 0 or p[i] <= p[i - 1])
        and (i == p.size - 1 or p[i] <= p[i + 1])
    ]
    idx.sort(key=lambda i: p[i])
    return [float(grid[i]) for i in idx[:k_max]]


def _ls_polish(
    xs: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    p0: np.ndarray,
    cmax: float,
    floor: bool,
    alpha_max: float,
    space: str,
) -> tuple[np.ndarray, float]:
    """scipy least-squares polish of (Ds, alpha, C) from ``p0``; returns (params, chi2)."""
    fit_c = floor and cmax > 0

    def unpack(v: np.ndarray) -> tuple[float, float, float]:
        return v[0], v[1], (v[2] if fit_c else 0.0)

    log_x = np.log(xs)
    log_y = np.log(y) if space == "log" else y

    def resid(v: np.ndarray) -> np.ndarray:
        Ds, a, C = unpack(v)
        mod = Ds * xs ** (-a) + C
        if space == "log":
            return w * (np.log(np.maximum(mod, 1e-300)) - log_y)
        return w * (mod - y)

    def jac(v: np.ndarray) -> np.ndarray:
        Ds, a, C = unpack(v)
        z = xs ** (-a)
        cols = [z, -Ds * log_x * z] + ([np.ones_like(z)] if fit_c else [])
        J = np.column_stack(cols) * w[:, None]
        if space == "log":
            J /= np.maximum(Ds * z + C, 1e-300)[:, None]
        return J

    lb = [0.0, 0.0] + ([0.0] if fit_c else [])
    ub = [np.inf, alpha_max] + ([cmax] if fit_c else [])
    x0 = np.array([p0[0], p0[1]] + ([p0[2]] if fit_c else []), dtype=float)
    span = np.where(np.isfinite(ub), np.array(ub) - np.array(lb), np.maximum(np.abs(x0), 1.0))
    x0 = np.clip(x0, np.array(lb) + 1e-9 * span, np.array(ub) - 1e-9 * span)
    x0[0] = max(x0[0], 1e-12)
    try:
        res = least_squares(resid, x0, jac=jac, bounds=(lb, ub), method="trf", x_scale="jac")
        Ds, a, C = unpack(res.x)
        r = resid(res.x)
        return np.array([Ds, a, C]), float(r @ r)
    except (ValueError, FloatingPointError):
        return np.full(3, np.nan), float("inf")


def _batch_fit(
    xs: np.ndarray,
    Y: np.ndarray,
    w: np.ndarray,
    w_lin: np.ndarray,
    floor: bool,
    alpha_max: float,
    space: str,
) -> np.ndarray:
    """Fast refits of many data vectors (bootstrap); returns scaled params ``(B, 3)``."""
    cmax = np.maximum(Y.min(axis=1), 0.0) if floor else np.zeros(Y.shape[0])
    if space == "log":
        Wl = (w_lin[None, :] if w_lin.ndim == 1 else w_lin) ** 2
        # delta-method linear weights are w/y; refresh y for each sample when weighted by 1/y only
        params, _ = _varpro(xs, Y, np.broadcast_to(Wl, Y.shape), cmax, floor, alpha_max)
        for b in range(Y.shape[0]):
            if np.all(np.isfinite(params[b])) and np.all(Y[b] > 0):
                params[b], _ = _ls_polish(xs, Y[b], w, params[b], cmax[b], floor, alpha_max, space)
            else:
                params[b] = np.nan
        return params
    params, _ = _varpro(xs, Y, w**2, cmax, floor, alpha_max)
    return params


# ----------------------------------------------------------------------------------------------
# Result objects
# ----------------------------------------------------------------------------------------------


@dataclass
class PowerLawFit:
    """A fitted law ``R(x) = D x^-alpha + C`` with its uncertainty and model comparison.

    Units: D and C in the property's units (C is the floor; D scales ``x^-alpha`` with x in samples);
    alpha dimensionless. ``*_ci`` are percentile bootstrap intervals at ``ci_level`` (NaN without
    bootstrap), ``*_sd`` the bootstrap SDs, ``stderr`` the lmfit covariance stderrs.
    ``aic``/``bic`` belong to the law with a floor, ``*_no_floor`` to C = 0, whichever ``floor``
    selected the reported parameters. ``boot_samples``: ``(B, 3)`` bootstrap (D, alpha, C), rows of
    NaN for failed refits; not serialised.
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
    stderr: dict[str, float] = field(
        default_factory=lambda: {"D": math.nan, "alpha": math.nan, "C": math.nan}
    )
    status: str = "ok"
    message: str = ""
    n_points: int = 0
    space: str = "linear"
    floor: bool = True
    weighted: bool = False
    chi2: float = math.nan
    dof: int = 0
    redchi: float = math.nan
    aic: float = math.nan
    bic: float = math.nan
    aic_no_floor: float = math.nan
    bic_no_floor: float = math.nan
    delta_aic: float = math.nan
    delta_bic: float = math.nan
    preferred: str = ""
    preferred_aic: str = ""
    D_no_floor: float = math.nan
    alpha_no_floor: float = math.nan
    x_min: float = math.nan
    x_max: float = math.nan
    ci_level: float = 0.90
    n_boot: int = 0
    n_boot_failed: int = 0
    bootstrap: str = "none"
    boot_samples: np.ndarray = field(
        default_factory=lambda: np.empty((0, 3)), repr=False, compare=False
    )

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_params(
        cls, D: float, alpha: float, C: float = 0.0, *, boot_samples: np.ndarray | None = None,
        **kwargs: Any,
    ) -> PowerLawFit:
        """A law with given parameters (e.g. published ones), status ``ok``."""
        fit = cls(D=float(D), alpha=float(alpha), C=float(C), floor=C != 0.0, **kwargs)
        if boot_samples is not None:
            fit.boot_samples = np.asarray(boot_samples, dtype=float).reshape(-1, 3)
            fit._summarise_boot(fit.ci_level)
        return fit

    @classmethod
    def failed(cls, status: str, message: str, n_points: int = 0, space: str = "linear") -> PowerLawFit:
        """A result for a fit that could not be made (all parameters NaN)."""
        return cls(
            D=math.nan, alpha=math.nan, C=math.nan, status=status, message=message,
            n_points=n_points, space=space,
        )

    @property
    def ok(self) -> bool:
        """True when the fit succeeded."""
        return self.status == "ok"

    # -- evaluation --------------------------------------------------------------------------
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
        """Plain-text law, e.g. ``"MAE = 0.0684 n^-0.0145 + 1.75e-11"``."""
        if not self.ok:
            return f"{lhs}: fit failed ({self.status})"
        return (
            f"{lhs} = {self.D:.{digits}g} {var}^-{self.alpha:.{digits}g} + {self.C:.{digits}g}"
        )

    # -- bootstrap bookkeeping ---------------------------------------------------------------
    def _summarise_boot(self, ci: float) -> None:
        s = self.boot_samples
        self.ci_level = float(ci)
        self.n_boot = int(s.shape[0])
        good = np.all(np.isfinite(s), axis=1)
        self.n_boot_failed = int((~good).sum())
        for j, name in enumerate(PARAMS):
            col = s[good, j]
            if col.size >= 2:
                setattr(self, f"{name}_ci", _interval(col, ci))
                setattr(self, f"{name}_sd", float(np.std(col, ddof=1)))

    # -- serialisation -----------------------------------------------------------------------
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
            elif name == "stderr":
                v = {k: _none_to_nan(u) for k, u in (v or {}).items()}
            elif f.type in ("float",):
                v = _none_to_nan(v)
            kwargs[name] = v
        return cls(**kwargs)


@dataclass
class RequiredX:
    """The x (samples) needed to reach a target MAE, with a bootstrap interval.

    ``value`` is ``inf`` when unreachable (target <= C). ``reachable_fraction`` is the fraction of
    bootstrap samples in which the target is above the sample's floor (NaN without samples); the
    interval treats unreachable samples as ``inf``. Unpacks as ``value, ci_low, ci_high, reachable``.
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

    def __iter__(self) -> Iterator[Any]:
        return iter((self.value, self.ci_low, self.ci_high, self.reachable))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (inf/NaN -> None)."""
        return {k: _finite_or_none(getattr(self, k)) for k in self.__dataclass_fields__}


# ----------------------------------------------------------------------------------------------
# Fitting
# ----------------------------------------------------------------------------------------------


def _criteria(chi2: float, n: int, k: int, weighted: bool) -> tuple[float, float]:
    if weighted:
        return chi2 + 2 * k, chi2 + k * math.log(n)
    base = n * math.log(max(chi2, 1e-300) / n)
    return base + 2 * k, base + k * math.log(n)


def _prepare(
    x: ArrayLike, y_mean: ArrayLike, space: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
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


def _starts(
    xs: np.ndarray, y: np.ndarray, w_lin: np.ndarray, cmax: float, floor: bool, alpha_max: float,
    p_vp: np.ndarray, profile: np.ndarray,
) -> list[np.ndarray]:
    """Starting points: the projected optimum, other local minima of the alpha profile, a log-log
    regression (no floor) and a start with a high floor."""
    starts: list[np.ndarray] = []
    if np.all(np.isfinite(p_vp)):
        starts.append(p_vp)
    for a in _profile_minima(profile, _alpha_grid(alpha_max))[1:]:
        Ds, C, _ = _solve_dc(xs ** (-a), y, w_lin**2, np.asarray(cmax), floor)
        starts.append(np.array([float(Ds), a, float(C)]))
    if np.all(y > 0):
        slope, icpt = np.polyfit(np.log(xs), np.log(y), 1)
        starts.append(np.array([math.exp(icpt), min(max(-slope, 1e-3), alpha_max), 0.0]))
        if floor and cmax > 0 and np.all(y - 0.9 * cmax > 0):
            slope, icpt = np.polyfit(np.log(xs), np.log(y - 0.9 * cmax), 1)
            starts.append(np.array([math.exp(icpt), min(max(-slope, 1e-3), alpha_max), 0.9 * cmax]))
    return starts


def _fit_once(
    xs: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    w_lin: np.ndarray,
    x0: float,
    floor: bool,
    space: str,
    alpha_max: float,
    weighted: bool,
    use_lmfit: bool = True,
) -> tuple[lmfit.model.ModelResult | None, np.ndarray, float]:
    """Multi-start fit of one curve.

    Variable projection gives the global optimum in linear space (the alpha profile is exact in D
    and C); every start is polished by scipy least squares with an analytic Jacobian; the best is
    polished once more by an lmfit ``Model`` fit, which provides the covariance.

    Returns:
        ``(lmfit result or None, scaled params (Ds, alpha, C), chi2)``; the lmfit result is
        ``None`` when not used or when it did not reach the multi-start optimum.
    """
    cmax = float(y.min()) if floor else 0.0
    vp, prof = _varpro(xs, y[None, :], w_lin**2, np.array([cmax]), floor, alpha_max)
    best_p = np.full(3, np.nan)
    best_chi = math.inf
    if space == "linear" and np.all(np.isfinite(vp[0])):
        r = w * (_law_scaled(xs, *vp[0]) - y)
        best_p, best_chi = vp[0], float(r @ r)
    for s in _starts(xs, y, w_lin, cmax, floor, alpha_max, vp[0], prof[0])[:5]:
        with np.errstate(all="ignore"):
            p, chi = _ls_polish(xs, y, w, s, cmax, floor, alpha_max, space)
        if np.all(np.isfinite(p)) and chi < best_chi * (1 - 1e-12):
            best_p, best_chi = p, chi
    if not np.all(np.isfinite(best_p)) or not use_lmfit:
        return None, best_p, best_chi

    func = _log_law_scaled if space == "log" else _law_scaled
    data = np.log(y) if space == "log" else y
    params = lmfit.Parameters()
    params.add("Ds", value=max(float(best_p[0]), 1e-12), min=0.0)
    params.add("alpha", value=float(np.clip(best_p[1], 1e-9, alpha_max * (1 - 1e-9))), min=0.0,
               max=alpha_max)
    if floor and cmax > 0:
        c0 = float(np.clip(best_p[2], 1e-12 * cmax, cmax * (1 - 1e-12)))
        params.add("C", value=c0, min=0.0, max=cmax)
    else:
        params.add("C", value=0.0, vary=False)
    params.add("x0", value=x0, vary=False)
    params.add("D", expr="Ds * x0**alpha")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = lmfit.Model(func, independent_vars=["xs"]).fit(
                data, params, xs=xs, weights=w, method="least_squares", scale_covar=not weighted
            )
    except (ValueError, TypeError, FloatingPointError, np.linalg.LinAlgError):
        return None, best_p, best_chi
    chi = float(res.chisqr) if res.chisqr is not None else math.inf
    if res.success and chi <= best_chi * (1 + 1e-6) + 1e-300:
        p = res.params
        return res, np.array([p["Ds"].value, p["alpha"].value, p["C"].value]), chi
    return None, best_p, best_chi


def fit_power_law(
    x: ArrayLike,
    y_mean: ArrayLike,
    y_sem: ArrayLike | None = None,
    *,
    space: str = "linear",
    floor: bool = True,
    alpha_max: float = DEFAULT_ALPHA_MAX,
) -> PowerLawFit:
    """Fit ``R(x) = D x^-alpha + C`` to mean MAEs (no bootstrap).

    Args:
        x: sample sizes (n or m), shape ``(N,)``, > 0; at least 3 distinct values.
        y_mean: mean test MAE at each x, property units, shape ``(N,)``.
        y_sem: standard error of each mean (same units), or ``None`` for an unweighted fit.
        space: ``"linear"`` (default, weights 1/SE) or ``"log"`` (residuals of log y); see the
            module docstring.
        floor: report the law with a floor C (default) or with C = 0. Both are fitted for the
            AIC/BIC comparison either way.
        alpha_max: upper bound of alpha.

    Returns:
        A :class:`PowerLawFit`; ``status`` is ``"ok"``, ``"too_few_points"``, ``"invalid_input"`` or
        ``"failed"`` (never raises on bad data).
    """
    if space not in SPACES:
        return PowerLawFit.failed("invalid_input", f"space must be one of {SPACES}, got {space!r}")
    order, xa, ya, problem = _prepare(x, y_mean, space)
    n_pts = int(xa.size)
    if problem:
        return PowerLawFit.failed("invalid_input", problem, n_pts, space)
    n_distinct = int(np.unique(xa).size)
    if n_distinct < 3:
        return PowerLawFit.failed(
            "too_few_points",
            f"need at least 3 distinct x values to fit D, alpha, C; got {n_distinct}",
            n_pts, space,
        )
    try:
        sem = None if y_sem is None else np.asarray(y_sem, dtype=float).ravel()[order]
        w, w_lin, weighted, note = clean_weights(ya, sem, space)
    except ValueError as exc:
        return PowerLawFit.failed("invalid_input", str(exc), n_pts, space)

    x0 = float(np.exp(np.mean(np.log(xa))))
    xs = xa / x0
    fits: dict[bool, tuple[Any, np.ndarray, float]] = {}
    for fl in (True, False):  # lmfit only for the reported law; the other is only compared
        fits[fl] = _fit_once(xs, ya, w, w_lin, x0, fl, space, alpha_max, weighted,
                             use_lmfit=fl == floor)
    res, p, chi2 = fits[floor]
    if not np.all(np.isfinite(p)):
        return PowerLawFit.failed(
            "failed", "no start converged (variable projection, least squares, lmfit)", n_pts, space
        )
    Ds, alpha, C = (float(v) for v in p)
    D = Ds * x0**alpha
    stderr = {"D": math.nan, "alpha": math.nan, "C": math.nan}
    if res is not None and res.errorbars:
        for name in PARAMS:
            par = res.params[name]
            if name == "D" or par.vary:
                stderr[name] = _none_to_nan(par.stderr)
    k_floor, k_nf = 3, 2
    aic_f, bic_f = _criteria(fits[True][2], n_pts, k_floor, weighted)
    aic_n, bic_n = _criteria(fits[False][2], n_pts, k_nf, weighted)
    if not math.isfinite(fits[True][2]):
        aic_f = bic_f = math.nan
    if not math.isfinite(fits[False][2]):
        aic_n = bic_n = math.nan
    d_aic, d_bic = aic_f - aic_n, bic_f - bic_n
    p_nf = fits[False][1]
    messages = [m for m in (note,) if m]
    if res is None:
        messages.append("lmfit did not reach the multi-start optimum: reported without stderr")
    k = k_floor if floor else k_nf
    dof = n_pts - k
    if weighted and dof > 0 and chi2 / dof > 3.0:
        messages.append(f"poor fit: chi2/dof = {chi2 / dof:.3g} (the law misses the points by more "
                        "than their SE)")
    if D == 0.0 or alpha < 1e-6:
        messages.append("no decay with x (D = 0 or alpha = 0)")
    return PowerLawFit(
        D=D, alpha=alpha, C=C, stderr=stderr, status="ok", message="; ".join(messages),
        n_points=n_pts, space=space, floor=floor, weighted=weighted, chi2=chi2, dof=dof,
        redchi=chi2 / dof if dof > 0 else math.nan,
        aic=aic_f, bic=bic_f, aic_no_floor=aic_n, bic_no_floor=bic_n,
        delta_aic=d_aic, delta_bic=d_bic,
        preferred=("floor" if d_bic < 0 else "no_floor") if math.isfinite(d_bic) else "",
        preferred_aic=("floor" if d_aic < 0 else "no_floor") if math.isfinite(d_aic) else "",
        D_no_floor=float(p_nf[0] * x0 ** p_nf[1]) if np.all(np.isfinite(p_nf)) else math.nan,
        alpha_no_floor=float(p_nf[1]),
        x_min=float(xa.min()), x_max=float(xa.max()),
    )


def _attach_bootstrap(
    fit: PowerLawFit, x_sorted: np.ndarray, Y: np.ndarray, w: np.ndarray, w_lin: np.ndarray,
    ci: float, kind: str, alpha_max: float,
) -> PowerLawFit:
    x0 = float(np.exp(np.mean(np.log(x_sorted))))
    xs = x_sorted / x0
    with np.errstate(all="ignore"):
        sp = _batch_fit(xs, Y, w, w_lin, fit.floor, alpha_max, fit.space)
        samples = np.column_stack([sp[:, 0] * x0 ** sp[:, 1], sp[:, 1], sp[:, 2]])
    fit.boot_samples = samples
    fit.bootstrap = kind
    fit._summarise_boot(ci)
    if fit.n_boot_failed:
        extra = f"{fit.n_boot_failed} of {fit.n_boot} bootstrap refits failed"
        fit.message = f"{fit.message}; {extra}" if fit.message else extra
    return fit


def fit_power_law_bootstrap(
    x: ArrayLike,
    mae_by_trial: Sequence[ArrayLike],
    *,
    n_boot: int = 200,
    seed: int = 0,
    ci: float = 0.90,
    space: str = "linear",
    floor: bool = True,
    paired: bool = False,
    trial_ids: Sequence[ArrayLike] | None = None,
    alpha_max: float = DEFAULT_ALPHA_MAX,
) -> PowerLawFit:
    """Fit the law to trial means and get intervals by resampling trials.

    Args:
        x: sample sizes, shape ``(N,)``.
        mae_by_trial: for each x, the 1-D array of trial MAEs (property units; lengths may differ).
        n_boot: bootstrap resamples (0 = no intervals).
        seed: seed of ``numpy.random.default_rng``.
        ci: level of the percentile intervals.
        space, floor, alpha_max: see :func:`fit_power_law`.
        paired: resample trials jointly across x (trial t shares its split at every x in the
            workflow's protocol, so this keeps the correlation between points and gives the
            tighter, correct interval for the slope). Default: independently within each x.
        trial_ids: per x, the trial ids of ``mae_by_trial`` (pairs trials by id; see
            :func:`resample_means`).

    Returns:
        :class:`PowerLawFit` fitted to the means with SE = SD/sqrt(trials), with ``boot_samples``,
        ``*_ci`` and ``*_sd`` from refits of resampled means (weights kept at the original SEs).
    """
    xa = np.asarray(x, dtype=float).ravel()
    arrays = [np.asarray(a, dtype=float).ravel() for a in mae_by_trial]
    if len(arrays) != xa.size:
        return PowerLawFit.failed(
            "invalid_input", f"{xa.size} x values but {len(arrays)} trial arrays", xa.size, space
        )
    if any(a.size == 0 or not np.all(np.isfinite(a)) for a in arrays):
        bad = [i for i, a in enumerate(arrays) if a.size == 0 or not np.all(np.isfinite(a))]
        return PowerLawFit.failed(
            "invalid_input", f"empty or NaN trial MAEs at positions {bad}", xa.size, space
        )
    means = np.array([a.mean() for a in arrays])
    sem = np.array([a.std(ddof=1) / math.sqrt(a.size) if a.size > 1 else math.nan for a in arrays])
    fit = fit_power_law(xa, means, sem, space=space, floor=floor, alpha_max=alpha_max)
    if not fit.ok or n_boot <= 0:
        return fit
    order = np.argsort(xa, kind="stable")
    rng = np.random.default_rng(seed)
    Y, note = resample_means(arrays, n_boot, rng, paired=paired, trial_ids=trial_ids)
    if note:
        fit.message = "; ".join(m for m in (fit.message, note) if m)
    Y = Y[:, order]
    w, w_lin, _, _ = clean_weights(means[order], sem[order], space)
    return _attach_bootstrap(fit, xa[order], Y, w, w_lin, ci,
                             "paired trials" if paired and not note else "trials", alpha_max)


def fit_power_law_summary(
    x: ArrayLike,
    y_mean: ArrayLike,
    y_sem: ArrayLike,
    *,
    n_boot: int = 200,
    seed: int = 0,
    ci: float = 0.90,
    space: str = "linear",
    floor: bool = True,
    alpha_max: float = DEFAULT_ALPHA_MAX,
) -> PowerLawFit:
    """Fit the law to summary means with a parametric bootstrap from their SEs.

    Args:
        x: sample sizes, shape ``(N,)``.
        y_mean: mean MAEs, property units, ``(N,)``.
        y_sem: their standard errors, ``(N,)`` (missing ones replaced by the median SE).
        n_boot, seed, ci, space, floor, alpha_max: see :func:`fit_power_law_bootstrap`.

    Returns:
        :class:`PowerLawFit` whose intervals come from refits of ``y_mean + SE * N(0, 1)`` (clipped
        at a tiny positive value).
    """
    fit = fit_power_law(x, y_mean, y_sem, space=space, floor=floor, alpha_max=alpha_max)
    if not fit.ok or n_boot <= 0:
        return fit
    order, xa, ya, _ = _prepare(x, y_mean, space)
    sem = np.asarray(y_sem, dtype=float).ravel()[order]
    w, w_lin, weighted, _ = clean_weights(ya, sem, space)
    if not weighted:
        fit.message = "; ".join(m for m in (fit.message, "no SEs: no parametric bootstrap") if m)
        return fit
    se_used = (1.0 / w) if space == "linear" else ya / w
    rng = np.random.default_rng(seed)
    Y = ya[None, :] + se_used[None, :] * rng.standard_normal((n_boot, ya.size))
    Y = np.maximum(Y, 1e-12 * max(float(ya.max()), 1e-300))
    return _attach_bootstrap(fit, xa, Y, w, w_lin, ci, "parametric", alpha_max)


# ----------------------------------------------------------------------------------------------
# Inverse: x needed for a target
# ----------------------------------------------------------------------------------------------


def _x_for_target(D: np.ndarray, alpha: np.ndarray, C: np.ndarray, target: float) -> np.ndarray:
    """``(D / (target - C))^(1/alpha)``; inf where unreachable (target <= C, or no decay)."""
    D, alpha, C = np.broadcast_arrays(
        np.asarray(D, float), np.asarray(alpha, float), np.asarray(C, float)
    )
    out = np.full(D.shape, np.inf)
    gap = target - C
    with np.errstate(all="ignore"):
        decays = (D > 0) & (alpha > 0)
        ok = (gap > 0) & decays
        out[ok] = (D[ok] / gap[ok]) ** (1.0 / alpha[ok])
        # no decay but already below target: any x works
        flat_ok = ~decays & (D + C <= target)
        out[flat_ok] = 0.0
    out[np.isnan(D) | np.isnan(alpha) | np.isnan(C)] = np.nan
    return out


def required_x(fit: PowerLawFit, target: float, ci: float | None = None) -> RequiredX:
    """Sample size x at which the law reaches a target MAE.

    Args:
        fit: a fitted law (with bootstrap samples for an interval).
        target: target MAE, property units.
        ci: interval level (default: the fit's ``ci_level``).

    Returns:
        :class:`RequiredX`: ``value = (D / (target - C))^(1/alpha)``, ``inf`` and
        ``reachable=False`` when ``target <= C``; the interval from the same formula applied to
        each bootstrap sample (unreachable samples count as ``inf``) and the fraction of samples
        in which the target is reachable.
    """
    ci = fit.ci_level if ci is None else ci
    if not fit.ok:
        return RequiredX(math.nan, math.nan, math.nan, False, target=target, ci_level=ci,
                         message=f"fit not usable ({fit.status})")
    value = float(_x_for_target(np.array(fit.D), np.array(fit.alpha), np.array(fit.C), target))
    reachable = math.isfinite(value)
    msg = "" if reachable else (
        f"unreachable: target {target:g} <= floor C = {fit.C:.4g}" if target <= fit.C
        else "unreachable: the law does not decay"
    )
    s = fit.boot_samples
    good = np.all(np.isfinite(s), axis=1) if s.size else np.zeros(0, bool)
    if good.sum() >= 2:
        xb = _x_for_target(s[good, 0], s[good, 1], s[good, 2], target)
        lo, hi = _interval(xb, ci)
        frac = float(np.mean(np.isfinite(xb)))
    else:
        lo = hi = frac = math.nan
    if reachable and value > fit.x_max * 1.0000001 and math.isfinite(fit.x_max):
        extra = f"extrapolated beyond the largest observed x ({fit.x_max:g})"
        msg = f"{msg}; {extra}" if msg else extra
    return RequiredX(value, lo, hi, reachable, frac, target, ci, int(good.sum()), msg)
