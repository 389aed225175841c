"""The 2-D scaling surface R(n, m) = (A n^-alpha + B) m^-beta + eps and whether it holds.

n = simulated (source) samples, m = experimental training samples, R = mean test MAE (property
units). A, alpha, B, beta, eps >= 0 and eps <= the smallest observed mean. At fixed m the surface is
the 1-D law with ``D = A m^-beta`` and ``C = B m^-beta + eps`` (:meth:`SurfaceFit.law_at_m`).

Weighting is the same as :mod:`sim2real_scaling.analysis.laws` (default linear space, residuals
divided by the SE of each mean; ``space="log"`` for log residuals), for the same reasons.

Fitting: variable projection on a grid of (alpha, beta) - for each pair the model is linear in
(A, B, eps) and the box-constrained least-squares problem is solved exactly by enumerating active
sets from the normal equations - then lmfit ``least_squares`` polishes the best few grid minima and
keeps the lowest chi-square. n and m are divided internally by their geometric means. Bootstrap
refits (trial resampling or parametric from the SEs) run the same grid search followed by a scipy
least-squares polish.

Goodness (``holds``): the surface is said to describe the data when all of
  * ``R^2 >= r2_min`` (0.9): it explains the variation of the means;
  * ``chi2/dof <= chi2_dof_max`` (3, only with SEs): residuals are of the size of the noise;
  * no systematic residual structure: a runs test on the signs of the residuals along n (within
    each m) and along m (within each n) is not significant at ``runs_p_min`` (0.01, Bonferroni over
    the two orders) - checked only when ``chi2/dof > 1.5`` (without SEs always), since structure
    in residuals that are within the noise does not matter.
Otherwise ``holds = False`` with an explanation, and the marginal rate should be taken from 1-D fits
(as the paper does for the chi study).
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

from sim2real_scaling.analysis.laws import (
    SPACES,
    PowerLawFit,
    _finite_or_none,
    _interval,
    _none_to_nan,
    clean_weights,
    resample_means,
)

__all__ = [
    "SurfaceFit",
    "fit_surface",
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


def _surface_scaled(
    ns: np.ndarray, ms: np.ndarray, As: float, alpha: float, Bs: float, beta: float, eps: float
) -> np.ndarray:
    return (As * ns ** (-alpha) + Bs) * ms ** (-beta) + eps


def _log_surface_scaled(
    ns: np.ndarray, ms: np.ndarray, As: float, alpha: float, Bs: float, beta: float, eps: float
) -> np.ndarray:
    return np.log(np.maximum(_surface_scaled(ns, ms, As, alpha, Bs, beta, eps), 1e-300))


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
# Variable projection over (alpha, beta)
# ----------------------------------------------------------------------------------------------


def _exp_grid(exp_max: float, size: int) -> np.ndarray:
    return np.concatenate([[0.0], np.geomspace(1e-3, exp_max, size - 1)])


def _design(ns: np.ndarray, ms: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Columns (ns^-a ms^-b, ms^-b, 1) for each (a, b): shape ``(G, N, 3)``."""
    mb = ms[None, :] ** (-b[:, None])
    u = ns[None, :] ** (-a[:, None]) * mb
    return np.stack([u, mb, np.ones_like(mb)], axis=-1)


def _grid_solve(
    X: np.ndarray, Y: np.ndarray, W: np.ndarray, cmax: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Exact box-constrained weighted LS for ``y ~ X p`` on every grid design and data row.

    Constraints p0, p1 >= 0, 0 <= p2 <= cmax. Enumerates active sets (each coefficient free or at a
    bound), solves the free part from the normal equations and keeps the feasible candidate with
    the lowest SSR - exact for this convex problem.

    Args:
        X: designs ``(G, N, 3)``. Y: data ``(B, N)``. W: squared weights ``(N,)``.
        cmax: upper bound of p2 per data row ``(B,)``.

    Returns:
        ``(coef (B, G, 3), ssr (B, G))``.
    """
    Gm = np.einsum("gnk,n,gnl->gkl", X, W, X)  # (G, 3, 3)
    h = np.einsum("gnk,n,bn->bgk", X, W, Y)  # (B, G, 3)
    yy = np.einsum("bn,n,bn->b", Y, W, Y)[:, None]  # (B, 1)
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
            fixed_contrib = np.einsum("gkl,bgl->bgk", Gm, p)  # G p_fixed
            rhs = (h - fixed_contrib)[:, :, free]
            Gff = Gm[:, free][:, :, free]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                inv = np.linalg.pinv(Gff, rcond=1e-12)
            sol = np.einsum("gkl,bgl->bgk", inv, rhs)
            p[:, :, free] = sol
        feas = (p[:, :, 0] >= 0) & (p[:, :, 1] >= 0) & (p[:, :, 2] >= 0) & (
            p[:, :, 2] <= cmax[:, None] * (1 + 1e-12)
        )
        ssr = yy - 2 * np.einsum("bgk,bgk->bg", p, h) + np.einsum("bgk,gkl,bgl->bg", p, Gm, p)
        ssr = np.where(feas & np.isfinite(ssr), ssr, np.inf)
        better = ssr < best_ssr
        best_ssr = np.where(better, ssr, best_ssr)
        best = np.where(better[:, :, None], p, best)
    return best, np.maximum(best_ssr, 0.0)


def _grid_starts(
    ns: np.ndarray, ms: np.ndarray, Y: np.ndarray, W: np.ndarray, cmax: np.ndarray,
    exp_max: float, size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid search; returns (params (B, G, 5) in scaled units, ssr (B, G), (a, b) grid (G, 2))."""
    g = _exp_grid(exp_max, size)
    a, b = (v.ravel() for v in np.meshgrid(g, g, indexing="ij"))
    X = _design(ns, ms, a, b)
    coef, ssr = _grid_solve(X, Y, W, cmax)
    B_ = Y.shape[0]
    params = np.empty((B_, a.size, 5))
    params[:, :, 0] = coef[:, :, 0]
    params[:, :, 1] = a[None, :]
    params[:, :, 2] = coef[:, :, 1]
    params[:, :, 3] = b[None, :]
    params[:, :, 4] = coef[:, :, 2]
    return params, ssr, np.column_stack([a, b])


def _polish(
    ns: np.ndarray, ms: np.ndarray, y: np.ndarray, w: np.ndarray, p0: np.ndarray, cmax: float,
    exp_max: float, space: str,
) -> tuple[np.ndarray, float]:
    """scipy least-squares polish of scaled (As, alpha, Bs, beta, eps); returns (params, chi2)."""
    fit_eps = cmax > 0
    lb = np.zeros(5 if fit_eps else 4)
    ub = np.array([np.inf, exp_max, np.inf, exp_max] + ([cmax] if fit_eps else []))

    def full(v: np.ndarray) -> np.ndarray:
        return v if fit_eps else np.append(v, 0.0)

    log_n, log_m = np.log(ns), np.log(ms)

    def resid(v: np.ndarray) -> np.ndarray:
        mod = _surface_scaled(ns, ms, *full(v))
        if space == "log":
            return w * (np.log(np.maximum(mod, 1e-300)) - np.log(y))
        return w * (mod - y)

    def jac(v: np.ndarray) -> np.ndarray:
        As, a, Bs, b, e = full(v)
        na_ = ns ** (-a)
        mb = ms ** (-b)
        cols = [na_ * mb, -As * log_n * na_ * mb, mb, -log_m * (As * na_ + Bs) * mb]
        if fit_eps:
            cols.append(np.ones_like(ns))
        J = np.column_stack(cols) * w[:, None]
        if space == "log":
            J /= np.maximum((As * na_ + Bs) * mb + e, 1e-300)[:, None]
        return J

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
# Result
# ----------------------------------------------------------------------------------------------


@dataclass
class SurfaceFit:
    """A fitted surface ``R(n, m) = (A n^-alpha + B) m^-beta + eps`` with uncertainty and goodness.

    Units: A, B, eps in property units (A multiplies ``n^-alpha m^-beta``, B ``m^-beta``); alpha, beta
    dimensionless. ``*_ci``: percentile bootstrap intervals at ``ci_level``; ``*_sd`` bootstrap SDs;
    ``stderr``: lmfit covariance stderrs. Goodness: ``r2``, ``chi2_dof``, ``rms_over_se`` (residual
    RMS / mean SE), ``runs_p`` and ``holds`` + ``holds_explanation``. ``boot_samples``: ``(B, 5)``
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
    stderr: dict[str, float] = field(
        default_factory=lambda: {k: math.nan for k in SURFACE_PARAMS}
    )
    status: str = "ok"
    message: str = ""
    n_points: int = 0
    space: str = "linear"
    weighted: bool = False
    chi2: float = math.nan
    dof: int = 0
    chi2_dof: float = math.nan
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
            x_min=self.n_range[0], x_max=self.n_range[1],
            message=f"law of the surface at m = {m:g}",
        )
        fit.floor = True
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
            elif name == "stderr":
                v = {k: _none_to_nan(u) for k, u in (v or {}).items()}
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
        chi2_lin = float(z @ z)
        fit.chi2_dof = chi2_lin / fit.dof if fit.dof > 0 else math.nan
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
            f"chi2/dof = {fit.chi2_dof:.3g} > {chi2_dof_max:g} (residuals "
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


def fit_surface(
    n: ArrayLike,
    m: ArrayLike,
    y_mean: ArrayLike,
    y_sem: ArrayLike | None = None,
    *,
    space: str = "linear",
    exp_max: float = DEFAULT_EXP_MAX,
    grid_size: int = 31,
    r2_min: float = 0.9,
    chi2_dof_max: float = 3.0,
    runs_p_min: float = 0.01,
) -> SurfaceFit:
    """Fit ``R(n, m) = (A n^-alpha + B) m^-beta + eps`` to a grid of mean MAEs (no bootstrap).

    Args:
        n: simulated-sample sizes, shape ``(N,)``, > 0 (transfer rows only).
        m: experimental-sample sizes, shape ``(N,)``, > 0.
        y_mean: mean test MAE per (n, m), property units, ``(N,)``.
        y_sem: standard errors of the means, ``(N,)``, or ``None`` (unweighted).
        space: ``"linear"`` (weights 1/SE) or ``"log"``.
        exp_max: upper bound of alpha and beta.
        grid_size: points per exponent in the variable-projection grid.
        r2_min, chi2_dof_max, runs_p_min: thresholds of ``holds`` (module docstring).

    Returns:
        :class:`SurfaceFit`, ``status`` ``"ok"``, ``"too_few_points"``, ``"invalid_input"`` or
        ``"failed"``; never raises on bad data.
    """
    if space not in SPACES:
        return SurfaceFit.failed("invalid_input", f"space must be one of {SPACES}, got {space!r}")
    na, ma, ya, problem = _prepare(n, m, y_mean, space)
    if problem:
        return SurfaceFit.failed("invalid_input", problem, int(ya.size), space)
    N = int(ya.size)
    dn, dm = np.unique(na).size, np.unique(ma).size
    if dn < 3 or dm < 3 or N < 7:
        return SurfaceFit.failed(
            "too_few_points",
            f"need >= 3 distinct n, >= 3 distinct m and >= 7 points; got {dn} n, {dm} m, {N} points",
            N, space,
        )
    try:
        w, w_lin, weighted, note = clean_weights(
            ya, None if y_sem is None else np.asarray(y_sem, float).ravel(), space
        )
    except ValueError as exc:
        return SurfaceFit.failed("invalid_input", str(exc), N, space)
    n0 = float(np.exp(np.mean(np.log(na))))
    m0 = float(np.exp(np.mean(np.log(ma))))
    ns, ms = na / n0, ma / m0
    cmax = float(ya.min())

    params, ssr, _ = _grid_starts(ns, ms, ya[None, :], w_lin**2, np.array([cmax]), exp_max, grid_size)
    order = np.argsort(ssr[0])
    starts: list[np.ndarray] = []
    for idx in order:
        if not np.isfinite(ssr[0, idx]):
            break
        cand = params[0, idx]
        if all(abs(cand[1] - s[1]) + abs(cand[3] - s[3]) > 0.05 for s in starts):
            starts.append(cand)
        if len(starts) >= 4:
            break
    if not starts:
        return SurfaceFit.failed("failed", "variable-projection grid found no finite solution", N, space)

    func = _log_surface_scaled if space == "log" else _surface_scaled
    data = np.log(ya) if space == "log" else ya
    model = lmfit.Model(func, independent_vars=["ns", "ms"])
    best: Any = None
    best_chi = math.inf
    best_p = None
    for s in starts:
        pars = lmfit.Parameters()
        pars.add("As", value=max(float(s[0]), 1e-12), min=0.0)
        pars.add("alpha", value=float(np.clip(s[1], 1e-6, exp_max * (1 - 1e-6))), min=0.0, max=exp_max)
        pars.add("Bs", value=max(float(s[2]), 1e-12), min=0.0)
        pars.add("beta", value=float(np.clip(s[3], 1e-6, exp_max * (1 - 1e-6))), min=0.0, max=exp_max)
        if cmax > 0:
            pars.add("eps", value=float(np.clip(s[4], 1e-9 * cmax, cmax * (1 - 1e-9))), min=0.0, max=cmax)
        else:
            pars.add("eps", value=0.0, vary=False)
        pars.add("n0", value=n0, vary=False)
        pars.add("m0", value=m0, vary=False)
        pars.add("A", expr="As * n0**alpha * m0**beta")
        pars.add("B", expr="Bs * m0**beta")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = model.fit(data, pars, ns=ns, ms=ms, weights=w, method="least_squares",
                                scale_covar=not weighted)
        except (ValueError, TypeError, FloatingPointError, np.linalg.LinAlgError):
            continue
        chi = float(res.chisqr) if res.chisqr is not None else math.inf
        if res.success and math.isfinite(chi) and chi < best_chi:
            best, best_chi = res, chi
            best_p = np.array([res.params[k].value for k in ("As", "alpha", "Bs", "beta", "eps")])
    messages = [note] if note else []
    if best_p is None:
        # fall back to a scipy polish of the best grid point
        best_p, best_chi = _polish(ns, ms, ya, w, starts[0], cmax, exp_max, space)
        if not np.all(np.isfinite(best_p)):
            return SurfaceFit.failed("failed", "no start converged", N, space)
        messages.append("lmfit did not converge; scipy polish of the grid optimum reported")
    As, alpha, Bs, beta, eps = (float(v) for v in best_p)
    stderr = {k: math.nan for k in SURFACE_PARAMS}
    if best is not None and best.errorbars:
        for k in SURFACE_PARAMS:
            par = best.params[k]
            if k in ("A", "B") or par.vary:
                stderr[k] = _none_to_nan(par.stderr)
    dof = N - 5
    fit = SurfaceFit(
        A=As * n0**alpha * m0**beta, alpha=alpha, B=Bs * m0**beta, beta=beta, eps=eps,
        stderr=stderr, status="ok", message="; ".join(messages), n_points=N, space=space,
        weighted=weighted, chi2=best_chi, dof=dof,
        n_range=(float(na.min()), float(na.max())), m_range=(float(ma.min()), float(ma.max())),
    )
    se_used = None
    if weighted:
        se_used = 1.0 / w if space == "linear" else ya / w
    _diagnose(fit, na, ma, ya, se_used, r2_min=r2_min, chi2_dof_max=chi2_dof_max,
              runs_p_min=runs_p_min)
    return fit


def _attach_bootstrap(
    fit: SurfaceFit, na: np.ndarray, ma: np.ndarray, ya: np.ndarray, Y: np.ndarray,
    w: np.ndarray, w_lin: np.ndarray, ci: float, kind: str, exp_max: float,
) -> SurfaceFit:
    n0 = float(np.exp(np.mean(np.log(na))))
    m0 = float(np.exp(np.mean(np.log(ma))))
    ns, ms = na / n0, ma / m0
    cmax = np.maximum(Y.min(axis=1), 0.0)
    # warm start: the full-data optimum in scaled units
    p_hat = np.array([fit.A / (n0**fit.alpha * m0**fit.beta), fit.alpha, fit.B / m0**fit.beta,
                      fit.beta, fit.eps])
    with np.errstate(all="ignore"):
        params, ssr, _ = _grid_starts(ns, ms, Y, w_lin**2, cmax, exp_max, 16)
    out = np.full((Y.shape[0], 5), np.nan)
    for b in range(Y.shape[0]):
        if np.any(Y[b] <= 0) and fit.space == "log":
            continue
        warm = np.minimum(p_hat, np.r_[np.inf, exp_max, np.inf, exp_max, cmax[b]])
        with np.errstate(all="ignore"):
            best_p, best_c = _polish(ns, ms, Y[b], w, warm, float(cmax[b]), exp_max, fit.space)
        # the grid's SSR is exact at its (alpha, beta): if it beats the warm-started optimum, the
        # resample has moved to another basin - polish from there too
        k = int(np.argmin(ssr[b])) if np.isfinite(ssr[b]).any() else -1
        if k >= 0 and (fit.space == "log" or ssr[b, k] < best_c):
            with np.errstate(all="ignore"):
                p, chi = _polish(ns, ms, Y[b], w, params[b, k], float(cmax[b]), exp_max, fit.space)
            if chi < best_c:
                best_c, best_p = chi, p
        if best_p is not None and np.all(np.isfinite(best_p)):
            As, a, Bs, be, e = best_p
            out[b] = (As * n0**a * m0**be, a, Bs * m0**be, be, e)
    fit.boot_samples = out
    fit.bootstrap = kind
    fit._summarise_boot(ci)
    if fit.n_boot_failed:
        extra = f"{fit.n_boot_failed} of {fit.n_boot} bootstrap refits failed"
        fit.message = f"{fit.message}; {extra}" if fit.message else extra
    return fit


def fit_surface_bootstrap(
    n: ArrayLike,
    m: ArrayLike,
    mae_by_trial: Sequence[ArrayLike],
    *,
    n_boot: int = 200,
    seed: int = 0,
    ci: float = 0.90,
    space: str = "linear",
    exp_max: float = DEFAULT_EXP_MAX,
    r2_min: float = 0.9,
    chi2_dof_max: float = 3.0,
    runs_p_min: float = 0.01,
    paired: bool = False,
    trial_ids: Sequence[ArrayLike] | None = None,
) -> SurfaceFit:
    """Fit the surface to trial means; intervals from refits of trial-resampled means.

    Args:
        n, m: grid coordinates, ``(N,)`` each.
        mae_by_trial: per grid point, the 1-D array of trial MAEs (property units).
        n_boot: resamples (0 = none). seed: ``numpy.random.default_rng`` seed. ci: interval level.
        space, exp_max, r2_min, chi2_dof_max, runs_p_min: see :func:`fit_surface`.
        paired, trial_ids: resample trials jointly across grid points (see
            :func:`~sim2real_scaling.analysis.laws.resample_means`); default within each point.

    Returns:
        :class:`SurfaceFit` with SE = SD/sqrt(trials) weights and bootstrap intervals.
    """
    arrays = [np.asarray(a, dtype=float).ravel() for a in mae_by_trial]
    na = np.asarray(n, float).ravel()
    if len(arrays) != na.size:
        return SurfaceFit.failed("invalid_input", f"{na.size} points but {len(arrays)} trial arrays",
                                 na.size, space)
    if any(a.size == 0 or not np.all(np.isfinite(a)) for a in arrays):
        return SurfaceFit.failed("invalid_input", "empty or NaN trial MAEs", na.size, space)
    means = np.array([a.mean() for a in arrays])
    sem = np.array([a.std(ddof=1) / math.sqrt(a.size) if a.size > 1 else math.nan for a in arrays])
    fit = fit_surface(n, m, means, sem, space=space, exp_max=exp_max, r2_min=r2_min,
                      chi2_dof_max=chi2_dof_max, runs_p_min=runs_p_min)
    if not fit.ok or n_boot <= 0:
        return fit
    rng = np.random.default_rng(seed)
    Y, note = resample_means(arrays, n_boot, rng, paired=paired, trial_ids=trial_ids)
    if note:
        fit.message = "; ".join(x for x in (fit.message, note) if x)
    w, w_lin, _, _ = clean_weights(means, sem, space)
    return _attach_bootstrap(fit, na, np.asarray(m, float).ravel(), means, Y, w, w_lin, ci,
                             "paired trials" if paired and not note else "trials", exp_max)


def fit_surface_summary(
    n: ArrayLike,
    m: ArrayLike,
    y_mean: ArrayLike,
    y_sem: ArrayLike,
    *,
    n_boot: int = 200,
    seed: int = 0,
    ci: float = 0.90,
    space: str = "linear",
    exp_max: float = DEFAULT_EXP_MAX,
    r2_min: float = 0.9,
    chi2_dof_max: float = 3.0,
    runs_p_min: float = 0.01,
) -> SurfaceFit:
    """Fit the surface to summary means; parametric bootstrap ``y + SE * N(0, 1)`` for intervals."""
    fit = fit_surface(n, m, y_mean, y_sem, space=space, exp_max=exp_max, r2_min=r2_min,
                      chi2_dof_max=chi2_dof_max, runs_p_min=runs_p_min)
    if not fit.ok or n_boot <= 0:
        return fit
    na, ma, ya, _ = _prepare(n, m, y_mean, space)
    w, w_lin, weighted, _ = clean_weights(ya, np.asarray(y_sem, float).ravel(), space)
    if not weighted:
        fit.message = "; ".join(x for x in (fit.message, "no SEs: no parametric bootstrap") if x)
        return fit
    se_used = 1.0 / w if space == "linear" else ya / w
    rng = np.random.default_rng(seed)
    Y = ya[None, :] + se_used[None, :] * rng.standard_normal((n_boot, ya.size))
    Y = np.maximum(Y, 1e-12 * max(float(ya.max()), 1e-300))
    return _attach_bootstrap(fit, na, ma, ya, Y, w, w_lin, ci, "parametric", exp_max)
