"""The one fit-and-bootstrap path of every scaling law (the 1-D law and the surface).

Input: the mean MAE at N points, the covariance of those means, and resampled means (:class:`PointData`).

Weights (generalised least squares)
    The means share splits across n and m (a paired design) and, within a pretraining replicate, the
    pretrained network: they are correlated. The fit minimises ``r^T S^-1 r`` with ``S`` the covariance of the
    mean vector, estimated as the covariance of the cluster-bootstrap means (:mod:`.bootstrap`; correlations
    shrunk toward zero). ``chi2`` under ``S`` then has expectation ``dof`` when the law holds and the design's
    noise is all there is, so chi2/dof, AIC and BIC mean what they say.

Extra scatter (``tau``)
    Noise that the resampling cannot see - above all the pretraining draw when a study runs one or few
    replicates, each shared by every trial at its n - scatters the means around the law by more than ``S``
    says. It is estimated by the method of moments as an extra independent variance per point,
    ``tau^2 * S_jj``, the value at which chi2/dof of the fit with ``S + tau^2 diag(S)`` is 1 (0 when chi2/dof
    <= 1 already), like the random-effects term of a meta-regression. The parameters, AIC/BIC and every
    bootstrap refit use ``S + tau^2 diag(S)``; the goodness of fit (``chi2_design``, ``p_value``) is reported
    under ``S`` alone, so a law that misses its points is still named.

Uncertainty (the one quoted)
    Each resample's means (plus a draw of the extra scatter) are refitted with the weights held fixed; the
    percentile interval of the refits is the interval to quote. Where model selection picks the law (floor or
    no floor), every resample selects again, so the interval includes the selection.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import lmfit
import numpy as np
from scipy.optimize import brentq
from scipy.stats import chi2 as chi2_dist

from sim2real_scaling.analysis.bootstrap import TrialResamples, shrunk_covariance

__all__ = ["PointData", "GLSResult", "Family", "WhitenedModel", "gls_fit", "from_trials", "from_summary", "inverse",
           "whitener"]

#: p-value of the chi-square test of the law (under the trials' covariance) below which the fit is "poor"
POOR_FIT_P = 0.01


@dataclass
class PointData:
    """Means to fit and what is known of their noise.

    ``y``: (N,) means; ``cov``: (N, N) covariance of the means (``None``: unknown, unweighted fit);
    ``boot``: (B, N) resampled means for the refits (``None`` with ``kind="parametric"``: drawn from ``cov``);
    ``trials``, ``replicates``: the fewest finite trials and distinct replicates at any point.
    """

    y: np.ndarray
    cov: np.ndarray | None
    boot: np.ndarray | None = None
    kind: str = "none"
    trials: int = 0
    replicates: int = 0
    notes: list[str] = field(default_factory=list)


def from_trials(values: np.ndarray, resamples: TrialResamples, n_boot: int,
                n_of_point: np.ndarray | None = None) -> PointData:
    """Points from trial values (T, N) (NaN = missing or diverged) and the property's resamples.

    ``n_of_point``: (N,) the n of each point (for the pretraining draws of pooled resamples). The covariance uses
    every resample (the summary's, usually 2000); the refits the first ``n_boot``.
    """
    v = np.asarray(values, dtype=float)
    finite = np.isfinite(v)
    counts = finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.where(counts > 0, np.where(finite, v, 0.0).sum(axis=0) / np.maximum(counts, 1), np.nan)
    reps = resamples.replicates_at(v)
    data = PointData(y=y, cov=None, trials=int(counts.min()) if counts.size else 0,
                     replicates=int(reps.min()) if reps.size else 0)
    if data.trials < 2:
        data.notes.append("a point has a single trial: no intervals and no verdicts (the spread between trials "
                          "is unknown); unweighted fit")
        return data
    means = resamples.means(v, n_of_point)
    cov = shrunk_covariance(means)
    if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) <= 0):
        data.notes.append("the trials do not vary at some point: unweighted fit, no intervals")
        return data
    data.cov = cov
    data.boot = means[:n_boot]
    data.kind = resamples.scheme
    return data


def from_summary(y: np.ndarray, se: np.ndarray | None) -> PointData:
    """Points from summary means and their standard errors (the covariance between points is unknown and taken
    as zero; intervals from a parametric bootstrap)."""
    ya = np.asarray(y, dtype=float)
    data = PointData(y=ya, cov=None)
    if se is None:
        data.notes.append("no standard errors: unweighted fit, no intervals")
        return data
    raw = np.asarray(se, dtype=float).ravel()
    good = np.isfinite(raw) & (raw > 0)
    if not good.any():
        data.notes.append("no usable standard errors: unweighted fit, no intervals")
        return data
    if not good.all():
        fill = float(np.median(raw[good]))
        data.notes.append(f"{int((~good).sum())} missing/zero SE replaced by the median SE {fill:.3g}")
        raw = np.where(good, raw, fill)
    data.cov = np.diag(raw**2)
    data.kind = "parametric"
    data.notes.append("from summary means alone: the points' covariance is unknown and taken as zero (give the "
                      "trials table for the paired design's intervals)")
    return data


def inverse(cov: np.ndarray) -> np.ndarray:
    """Inverse of a covariance matrix, with a tiny ridge when it is ill-conditioned."""
    c = 0.5 * (cov + cov.T)
    scale = float(np.mean(np.diag(c)))
    for ridge in (0.0, 1e-10, 1e-8, 1e-6, 1e-4):
        try:
            L = np.linalg.cholesky(c + ridge * scale * np.eye(c.shape[0]))
            Li = np.linalg.inv(L)
            return Li.T @ Li
        except np.linalg.LinAlgError:
            continue
    return np.linalg.pinv(c)


def whitener(cov: np.ndarray) -> np.ndarray:
    """``W`` with ``W^T W = cov^-1``: whitened residuals ``W r`` have unit covariance."""
    return np.linalg.cholesky(inverse(cov)).T


class WhitenedModel(lmfit.Model):
    """An ``lmfit.Model`` fitted by generalised least squares: :meth:`fit` takes ``cov=`` (the covariance of the
    data) and minimises whitened residuals ``W (data - model)`` (in log space ``W (log data - log model)`` with
    the delta-method covariance of log data). Without ``cov`` it is lmfit's ordinary fit."""

    space: str = "linear"

    def fit(self, data: Any, params: lmfit.Parameters | None = None, weights: Any = None, *,
            cov: np.ndarray | None = None, **kws: Any) -> lmfit.model.ModelResult:
        y = np.asarray(data, dtype=float)
        self._whiten = None
        if cov is not None:
            self._whiten = whitener(cov / np.outer(y, y) if self.space == "log" else cov)
        kws.setdefault("method", "least_squares")
        kws.setdefault("scale_covar", cov is None)
        return super().fit(y, params, weights=weights, **kws)

    def _residual(self, params: lmfit.Parameters, data: np.ndarray, weights: Any, **kwargs: Any) -> np.ndarray:
        model = self.eval(params, **kwargs)
        if self.space == "log":
            diff = np.log(data) - np.log(np.maximum(model, 1e-300))
        else:
            diff = data - model
        if getattr(self, "_whiten", None) is not None:
            diff = self._whiten @ diff
        elif weights is not None:
            diff = diff * weights
        return np.asarray(diff, dtype=float)


class Family(Protocol):
    """A family of nested laws the runner can fit (``variants``, most general first)."""

    variants: tuple[str, ...]
    n_params: dict[str, int]

    def fit(self, y: np.ndarray, cov: np.ndarray | None, variant: str) -> tuple[np.ndarray, float, Any]:
        """Best parameters (public units), chi2 (GLS, or SSR when ``cov`` is None) and the lmfit result."""
        ...

    def chi2(self, y: np.ndarray, cov: np.ndarray, variant: str) -> float:
        """The minimum chi2 (fast, for the extra-scatter search)."""
        ...

    def refit(self, Y: np.ndarray, cov: np.ndarray, variant: str) -> tuple[np.ndarray, np.ndarray]:
        """Refits of every row of ``Y`` (B, N) with fixed weights: params (B, k) and chi2 (B,)."""
        ...


@dataclass
class GLSResult:
    """What :func:`gls_fit` found: per variant the parameters, chi2 and criteria; the selected variant; the
    bootstrap samples of the selected law and of each variant."""

    params: dict[str, np.ndarray]
    chi2: dict[str, float]
    chi2_design: dict[str, float]
    aic: dict[str, float]
    bic: dict[str, float]
    selected: str
    weighted: bool
    tau2: float
    dof: int
    p_value: float
    lmfit_result: Any
    samples: np.ndarray
    variant_samples: dict[str, np.ndarray]
    kind: str
    notes: list[str]


def _criteria(chi2: float, n: int, k: int, weighted: bool) -> tuple[float, float]:
    if not math.isfinite(chi2):
        return math.nan, math.nan
    if weighted:
        return chi2 + 2 * k, chi2 + k * math.log(n)
    base = n * math.log(max(chi2, 1e-300) / n)
    return base + 2 * k, base + k * math.log(n)


def _extra_scatter(family: Family, y: np.ndarray, cov: np.ndarray, variant: str, dof: float) -> float:
    """tau^2 with chi2(S + tau^2 diag(S)) = dof (0 when chi2(S) <= dof; ``dof`` already scaled by the inflation
    of a covariance estimated from few trials)."""
    if dof <= 0:
        return 0.0
    d = np.diag(np.diag(cov))

    def excess(t: float) -> float:
        return family.chi2(y, cov + t * d, variant) - dof

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        f0 = excess(0.0)
        if not math.isfinite(f0) or f0 <= 0:
            return 0.0
        hi = 1.0
        while excess(hi) > 0:
            hi *= 4.0
            if hi > 1e12:
                return hi
        return float(brentq(excess, 0.0, hi, xtol=1e-6, rtol=1e-6))


def gls_fit(family: Family, data: PointData, *, n_boot: int, generator: np.random.Generator,
            select: str = "bic") -> GLSResult:
    """Fit every variant of ``family`` to ``data``; select one; bootstrap it.

    Args:
        family: the laws (:class:`~sim2real_scaling.analysis.laws.PowerLawFamily`, the surface's).
        data: the points.
        n_boot: refits (0: none; for trial data at most the resamples given).
        generator: draws the extra scatter (and, for summary data, the parametric resamples).
        select: ``"bic"`` (the variant BIC prefers, re-selected in every resample) or a variant name.
    """
    y = data.y
    N = y.size
    notes = list(data.notes)
    weighted = data.cov is not None
    general = family.variants[0]
    dof = N - family.n_params[general]
    tau2 = 0.0
    cov_tot = data.cov
    chi2_design: dict[str, float] = {}
    # a covariance estimated from T trials makes chi2 larger than its degrees of freedom by about
    # (T - 1) / (T - 1 - dof) (Hotelling's T^2; the growth-curve model): chi2 is reported divided by it, so that
    # chi2/dof, its p-value, AIC/BIC and the extra-scatter estimate refer to the design, not to how many trials
    # estimated the covariance
    inflation = 1.0
    if data.boot is not None and data.trials > 1 and data.trials - 1 - dof > 0:
        inflation = (data.trials - 1) / (data.trials - 1 - dof)
    if weighted:
        for v in family.variants:
            chi2_design[v] = family.chi2(y, data.cov, v) / inflation
        tau2 = _extra_scatter(family, y, data.cov, general, dof * inflation)
        if tau2 > 0:
            cov_tot = data.cov + tau2 * np.diag(np.diag(data.cov))
    params: dict[str, np.ndarray] = {}
    chi2: dict[str, float] = {}
    aic: dict[str, float] = {}
    bic: dict[str, float] = {}
    results: dict[str, Any] = {}
    for v in family.variants:
        p, c, res = family.fit(y, cov_tot, v)
        c = c / inflation
        params[v], chi2[v], results[v] = p, c, res
        aic[v], bic[v] = _criteria(c, N, family.n_params[v], weighted)
    if select == "bic":
        finite = {v: b for v, b in bic.items() if math.isfinite(b)}
        selected = min(finite, key=lambda v: (finite[v], family.variants.index(v))) if finite else general
    else:
        selected = select
    sel_dof = N - family.n_params[selected]
    p_value = math.nan
    if weighted and sel_dof > 0 and math.isfinite(chi2_design.get(selected, math.nan)):
        p_value = float(chi2_dist.sf(chi2_design[selected], sel_dof))
    samples = np.empty((0, params[general].size))
    variant_samples: dict[str, np.ndarray] = {}
    kind = "none"
    if weighted and n_boot > 0 and all(np.all(np.isfinite(params[v])) for v in family.variants):
        if data.boot is not None:
            Y = np.asarray(data.boot[:n_boot], dtype=float)
            kind = data.kind
            # the weights come from a covariance estimated from the same T trials; holding them fixed in the
            # refits misses that noise. For generalised least squares with a covariance estimated from T
            # replicates the estimator's covariance is (T - 1) / (T - 1 - (N - k)) times the known-covariance one
            # (the growth-curve model): the resampled deviations are scaled by its square root.
            T = data.trials
            slack = T - 1 - (N - family.n_params[general])
            if T > 1 and slack > 0:
                Y = y[None, :] + (Y - y[None, :]) * math.sqrt((T - 1) / slack)
            if tau2 > 0:
                # tau^2 is estimated from the lack of fit with dof degrees of freedom. Where it stands for the whole
                # pretraining noise (one replicate: nothing else measures it), each resample draws its own from
                # that estimate's sampling distribution (tau^2 dof / chi2_dof), so the interval has the heavier
                # tails of an estimated variance (Student-t like); with several replicates the pretraining noise is
                # already measured and tau^2 only mops up what is left, at its estimate
                t2 = (tau2 * dof / generator.chisquare(dof, size=Y.shape[0]) if data.replicates <= 1
                      else np.full(Y.shape[0], tau2))
                Y = Y + generator.standard_normal(Y.shape) * np.sqrt(np.outer(t2, np.diag(data.cov)))
        else:
            L = np.linalg.cholesky(cov_tot + 1e-12 * np.mean(np.diag(cov_tot)) * np.eye(N))
            Y = y[None, :] + generator.standard_normal((n_boot, N)) @ L.T
            Y = np.maximum(Y, 1e-12 * max(float(np.max(y)), 1e-300))
            kind = "parametric"
        boot_chi: dict[str, np.ndarray] = {}
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            for v in family.variants if select == "bic" else (selected,):
                variant_samples[v], boot_chi[v] = family.refit(Y, cov_tot, v)
        if select == "bic" and len(family.variants) > 1:
            crit = np.column_stack([boot_chi[v] / inflation + family.n_params[v] * math.log(N)
                                    for v in family.variants])
            crit = np.where(np.isfinite(crit), crit, np.inf)
            pick = np.argmin(crit, axis=1)
            stacked = np.stack([variant_samples[v] for v in family.variants])  # (V, B, k)
            samples = stacked[pick, np.arange(Y.shape[0])]
            samples[~np.isfinite(crit).any(axis=1)] = np.nan
        else:
            samples = variant_samples[selected]
    return GLSResult(params=params, chi2=chi2, chi2_design=chi2_design, aic=aic, bic=bic, selected=selected,
                     weighted=weighted, tau2=tau2, dof=sel_dof, p_value=p_value, lmfit_result=results[selected],
                     samples=samples, variant_samples=variant_samples, kind=kind, notes=notes)


def scatter_note(result: GLSResult, replicates: int) -> str:
    """What the extra scatter means, for the fit's message ('' when there is none)."""
    if result.tau2 <= 0:
        return ""
    why = ("one pretraining draw per point cannot be resampled" if replicates == 1 else
           f"{replicates} pretraining replicates" if 1 < replicates < 10 else "the law or the noise model")
    return (f"the means scatter around the law by more than the trials explain (extra variance "
            f"{result.tau2:.3g} x each point's own; {why}): the intervals include it")


def poor_fit_note(result: GLSResult) -> str:
    """The goodness-of-fit warning under the trials' covariance ('' when the fit is acceptable)."""
    if not result.weighted or not math.isfinite(result.p_value) or result.p_value >= POOR_FIT_P:
        return ""
    c = result.chi2_design[result.selected]
    return (f"poor fit: chi2/dof = {c / result.dof:.3g} (p = {result.p_value:.2g}) under the trials' covariance: "
            "the law misses the means by more than their noise")


def interval_columns(samples: np.ndarray, names: Sequence[str], ci: float) -> dict[str, Any]:
    """``{name}_ci`` and ``{name}_sd`` of the finite rows of ``samples`` (B, k)."""
    from sim2real_scaling.analysis.bootstrap import percentile_interval

    out: dict[str, Any] = {}
    good = samples[np.all(np.isfinite(samples), axis=1)] if samples.size else samples
    for j, name in enumerate(names):
        if good.shape[0] >= 2:
            out[f"{name}_ci"] = percentile_interval(good[:, j], ci)
            out[f"{name}_sd"] = float(np.std(good[:, j], ddof=1))
    return out
