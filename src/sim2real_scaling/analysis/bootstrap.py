"""One bootstrap for every interval of the analysis: pretraining draws (replicates), then trials within them.

The design it resamples (see ``METHOD.md``, "The statistical design, stated"): trial t fixes a test split, its
m-subsets and its initial weights, shared by every n, m and method (a *paired* design); the transfer models of
trial t start from pretraining draw ``replicate(t)``, shared by every trial of that replicate. A mean MAE therefore
carries the split noise (shared across n and m), the pretraining noise (shared by the trials of one replicate)
and the fine-tuning noise. A resample draws R replicates with replacement from the R present, then, within each
drawn replicate, as many trials with replacement as it holds (a two-stage cluster bootstrap). A drawn trial
brings all its rows - every n, m and method - so pairing is kept everywhere.

:class:`TrialResamples` holds the result as weights: ``weights[b, k]`` is how often trial ``trial_ids[k]``
appears in resample b. Every consumer - the means of summary.csv, the 1-D laws, the surface, the rate of
substitution, required n, plans, per-group fits, transfer-minus-reference differences - applies the same
weights with :meth:`TrialResamples.means`, which leaves out missing and diverged (NaN) trial values point by
point. The weights of one property depend only on (study seed, property, its trial and replicate ids), so the
aggregation, the fits and the command-line tool draw identical resamples.

With one trial per replicate (``protocol.pretrain_replicates: per_trial``) the scheme is the paired trial
bootstrap. With one replicate the pretraining draw cannot be resampled: intervals then miss its noise, which
the fits detect as lack of fit (:mod:`sim2real_scaling.analysis.fitting`) and the tables flag.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from sim2real_scaling.seeding import rng as seeded_rng

__all__ = [
    "TrialResamples",
    "draw_resamples",
    "resamples_for",
    "trial_design",
    "percentile_interval",
    "quantile_inf",
    "shrunk_covariance",
    "weighted_mean",
    "paired_difference",
    "SCHEME",
]

#: how the resampling is described in tables and reports
SCHEME = "replicates, then trials"


def quantile_inf(values: ArrayLike, q: float) -> float:
    """Quantile (linear interpolation) of ``values`` that may contain ``+inf``; NaNs are dropped.

    Where the interpolation touches an infinite value the result is ``inf`` (so an interval reaching into
    'unreachable' bootstrap samples is open-ended). Returns NaN for no data.
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


def percentile_interval(samples: ArrayLike, ci: float) -> tuple[float, float]:
    """The central ``ci`` percentile interval of bootstrap samples (NaN-free part; ``inf`` allowed)."""
    a = (1.0 - ci) / 2.0
    return quantile_inf(samples, a), quantile_inf(samples, 1.0 - a)


@dataclass(frozen=True)
class TrialResamples:
    """Bootstrap resamples of the trials of one property.

    ``trial_ids``: (T,) sorted trial ids; ``replicate_ids``: (T,) the pretraining draw of each trial;
    ``weights``: (B, T) how often each trial is drawn in each resample (each row sums to T). ``pooled``: the
    replicates are few but hold several trials each (2 <= R < T): the weights then keep every replicate once and
    resample trials within them, and :meth:`means` adds the pretraining noise drawn from the pooled estimate of
    :meth:`pretraining` (see the module docstring). ``seed``/``key`` derive the streams of those draws.
    """

    trial_ids: np.ndarray
    replicate_ids: np.ndarray
    weights: np.ndarray
    pooled: bool = False
    seed: int = 0
    key: str = ""

    @property
    def n_boot(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_trials(self) -> int:
        return int(self.trial_ids.size)

    @property
    def n_replicates(self) -> int:
        return int(np.unique(self.replicate_ids).size)

    @property
    def scheme(self) -> str:
        if self.pooled:
            return "trials within replicates, pretraining effects from the pooled replicate variance"
        return SCHEME

    def head(self, k: int) -> TrialResamples:
        """The first ``k`` resamples (the fits use the first ``fit_bootstrap`` of the summary's)."""
        return replace(self, weights=self.weights[: max(int(k), 0)])

    def positions(self, trial_ids: ArrayLike) -> np.ndarray:
        """Column of each given trial id in :attr:`weights` (-1 for ids not in the resamples)."""
        ids = np.asarray(trial_ids)
        if self.trial_ids.size == 0:
            return np.full(ids.shape, -1)
        pos = np.clip(np.searchsorted(self.trial_ids, ids), 0, self.trial_ids.size - 1)
        return np.where(self.trial_ids[pos] == ids, pos, -1)

    def means(self, values: np.ndarray, n_of_point: ArrayLike | None = None) -> np.ndarray:
        """Resampled means of trial values.

        Args:
            values: (T, J) one column per point (a (property, method, n, m) or group), rows in the order of
                :attr:`trial_ids`; NaN where a trial has no (finite) value at that point.
            n_of_point: (J,) the n of each point (0 for references). With :attr:`pooled` resamples, points with
                n > 0 get the pretraining noise of :meth:`pretraining`, one draw per n and resample (shared by
                every m at that n, as the pretrained network is).

        Returns:
            (B, J) weighted means over the finite values; NaN where a resample drew none.
        """
        v = np.asarray(values, dtype=float)
        if v.ndim == 1:
            v = v[:, None]
        finite = np.isfinite(v)
        filled = np.where(finite, v, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = (self.weights @ filled) / (self.weights @ finite.astype(float))
        if self.pooled and n_of_point is not None and self.n_boot:
            out = out + self._pretraining_draws(v, np.asarray(n_of_point, dtype=float).ravel())
        return out

    def pretraining(self, values: np.ndarray, n_of_point: ArrayLike) -> tuple[np.ndarray, int]:
        """Pooled method-of-moments estimate of the pretraining noise in each point's mean.

        The pretraining draw of a replicate differs from n to n (another network), while a trial's split is shared
        by every n. So each trial's values are centred on its own mean over the n of one m (removing the split),
        and at each point the replicate means of the centred values vary by the pretraining effect plus the
        trials' own noise. The excess of that variance over what the trials within replicates explain, summed
        over points and divided by the summed within-replicate variance (times ``1 - 1/J`` for the centring over
        J values of n), is the ratio ``kappa`` (pretraining variance per unit of within variance, pooled over every
        point: sum of (R - 1) degrees of freedom). Returns ``(v, dof)`` with ``v[j] = kappa * w_j * sum_r n_rj^2 /
        n_j^2`` the variance the pretraining draw adds to the mean at j (0 for references), treating draws at
        different n as independent (conservative when they are correlated, as nested source samples make them).
        Where a value of m has a single n, the values are not centred (the split then inflates the estimate).
        """
        v = np.asarray(values, dtype=float)
        n_pt = np.asarray(n_of_point, dtype=float).ravel()
        labels, members = np.unique(self.replicate_ids, return_inverse=True)
        centred = v.copy()
        factor = np.ones(v.shape[1])
        # columns that share an m cannot be told apart here: centre over the transfer columns of each block of
        # equal "other" coordinate, which for a curve in n is the whole curve
        transfer_cols = np.flatnonzero(n_pt > 0)
        if np.unique(n_pt[transfer_cols]).size >= 2:
            block = centred[:, transfer_cols]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                own = np.nanmean(block, axis=1, keepdims=True)
            centred[:, transfer_cols] = block - own
            factor[transfer_cols] = 1.0 - 1.0 / np.unique(n_pt[transfer_cols]).size
        excess = within_sum = 0.0
        dof = 0
        within = np.zeros(v.shape[1])
        share = np.zeros(v.shape[1])
        for j in transfer_cols:
            col = centred[:, j]
            ok = np.isfinite(col)
            groups = [col[ok & (members == r)] for r in range(labels.size)]
            groups = [g for g in groups if g.size]
            sizes = np.array([g.size for g in groups], dtype=float)
            if len(groups) < 2 or sizes.sum() - len(groups) < 1:
                continue
            w = sum(((g - g.mean()) ** 2).sum() for g in groups) / (sizes.sum() - len(groups))
            rep_means = np.array([g.mean() for g in groups])
            excess += (rep_means.var(ddof=1) - w * float(np.mean(1.0 / sizes))) / factor[j]
            within_sum += w
            dof += len(groups) - 1
            within[j] = w
            share[j] = float((sizes**2).sum() / sizes.sum() ** 2)
        kappa = max(excess, 0.0) / within_sum if within_sum > 0 else 0.0
        return kappa * within * share, dof

    def _pretraining_draws(self, values: np.ndarray, n_of_point: np.ndarray) -> np.ndarray:
        var, dof = self.pretraining(values, n_of_point)
        B = self.n_boot
        out = np.zeros((B, values.shape[1]))
        if dof < 1 or not np.any(var > 0):
            return out
        # the variance is estimated with dof degrees of freedom: each resample draws its own (var dof / chi2)
        scale = dof / seeded_rng(self.seed, "bootstrap", "pretrain_scale", self.key).chisquare(dof, size=B)
        for n in np.unique(n_of_point[n_of_point > 0]):
            z = seeded_rng(self.seed, "bootstrap", "pretrain", self.key, f"{n:g}").standard_normal(B)
            cols = np.flatnonzero(n_of_point == n)
            out[:, cols] = (np.sqrt(scale) * z)[:, None] * np.sqrt(var[cols])[None, :]
        return out

    def replicates_at(self, values: np.ndarray) -> np.ndarray:
        """(J,) number of distinct replicates with a finite value at each point."""
        v = np.asarray(values, dtype=float)
        if v.ndim == 1:
            v = v[:, None]
        out = np.empty(v.shape[1], dtype=int)
        for j in range(v.shape[1]):
            out[j] = np.unique(self.replicate_ids[np.isfinite(v[:, j])]).size
        return out


def draw_resamples(trial_ids: ArrayLike, replicate_ids: ArrayLike | None, n_boot: int,
                   generator: np.random.Generator, *, pooled: bool = True, seed: int = 0,
                   key: str = "") -> TrialResamples:
    """Two-stage resamples: R replicates with replacement, then each drawn replicate's trials with replacement.

    Args:
        trial_ids: (T,) distinct trial ids (any order; stored sorted).
        replicate_ids: (T,) the replicate of each trial; ``None``: every trial is its own replicate.
        n_boot: resamples.
        generator: the random generator (see :func:`resamples_for` for the seeded one).
        pooled: with 2 <= R < T replicates, keep each replicate once and draw the pretraining noise from the
            pooled estimate in :meth:`TrialResamples.means` (``False``: the plain two-stage scheme).
        seed, key: identify the streams of the pretraining draws.
    """
    ids = np.asarray(trial_ids)
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    if np.unique(ids).size != ids.size:
        raise ValueError("trial ids must be distinct")
    reps = ids.copy() if replicate_ids is None else np.asarray(replicate_ids)[order]
    T = ids.size
    B = max(int(n_boot), 0)
    weights = np.zeros((B, T))
    if T == 0 or B == 0:
        return TrialResamples(ids, reps, weights, False, seed, key)
    labels, members = np.unique(reps, return_inverse=True)
    R = labels.size
    pooled = bool(pooled and 2 <= R < T)
    # stage 1: how often each replicate is drawn in each resample (pooled: each once; its noise is drawn later)
    counts = np.ones((B, R), dtype=np.int64)
    if not pooled:
        counts[:] = 0
        picks = generator.integers(0, R, size=(B, R))
        np.add.at(counts, (np.repeat(np.arange(B), R), picks.ravel()), 1)
    # stage 2: within a replicate drawn c times, c * size trials with replacement (a multinomial)
    for r in range(R):
        cols = np.flatnonzero(members == r)
        if cols.size == 1:
            weights[:, cols[0]] = counts[:, r]
        else:
            weights[:, cols] = generator.multinomial(counts[:, r] * cols.size, np.full(cols.size, 1.0 / cols.size))
    return TrialResamples(ids, reps, weights, pooled, seed, key)


def trial_design(trials: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, str]:
    """``(trial_ids, replicate_ids, note)`` of one property's trial rows (every method, n, m and status).

    The replicate of a trial comes from the ``replicate`` column (its non-empty values must agree across the
    trial's rows); without the column, or where a trial has none, each such trial is its own replicate and the
    note says so.
    """
    if trials.empty:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), ""
    tid = pd.to_numeric(trials["trial"], errors="coerce")
    if tid.isna().any():
        raise ValueError("trial ids must be integers")
    ids = np.unique(tid.to_numpy(np.int64))
    note = ""
    if "replicate" not in trials.columns or trials["replicate"].isna().all():
        return ids, ids.copy(), "no replicate column: each trial counted as its own pretraining draw"
    frame = pd.DataFrame({"trial": tid.to_numpy(np.int64), "replicate": pd.to_numeric(trials["replicate"],
                                                                                      errors="coerce")})
    frame = frame.dropna()
    per_trial = frame.groupby("trial")["replicate"].agg(["min", "max"])
    conflict = per_trial[per_trial["min"] != per_trial["max"]]
    if len(conflict):
        t = conflict.index[0]
        raise ValueError(f"trial {t} has rows with different replicates "
                         f"({conflict.loc[t, 'min']:g} and {conflict.loc[t, 'max']:g}); a trial fine-tunes one "
                         "pretraining draw at every n")
    mapping = per_trial["min"].to_dict()
    missing = [t for t in ids if t not in mapping]
    if missing:
        note = f"{len(missing)} trials without a replicate counted as their own pretraining draws"
    # a trial without a replicate label gets a label of its own that no labelled trial has
    offset = (max(mapping.values()) + 1) if mapping else 0
    reps = np.array([mapping.get(t, offset + t) for t in ids], dtype=float)
    return ids, reps, note


def resamples_for(trials: pd.DataFrame, n_boot: int, seed: int, key: str) -> TrialResamples:
    """The resamples of one property (``key``), seeded by (study seed, "bootstrap", key): the same in every
    stage that analyses it and in the command-line tool."""
    ids, reps, _ = trial_design(trials)
    return draw_resamples(ids, reps, n_boot, seeded_rng(seed, "bootstrap", "trials", key), seed=seed, key=key)


def weighted_mean(values: np.ndarray) -> float:
    """Mean of the finite values (NaN when none)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan


def shrunk_covariance(samples: np.ndarray, n_units: int | None = None) -> np.ndarray:
    """Covariance of the columns of ``samples`` (B, J), correlations shrunk toward zero.

    The shrinkage intensity is the Schäfer-Strimmer estimate (the sampling variance of the correlations over their
    squared size). The correlations of resampled means are only as well known as the ``n_units`` independent
    units (trials) they were resampled from, not the B resamples: their sampling variance is scaled by
    ``B / n_units``. So a covariance of many points from few trials is shrunk more, which keeps the weights of the
    generalised least squares from trusting chance structure; variances are not shrunk. Rows with NaN are left
    out.
    """
    s = np.asarray(samples, dtype=float)
    s = s[np.all(np.isfinite(s), axis=1)]
    J = s.shape[1]
    if s.shape[0] < 3:
        return np.full((J, J), np.nan)
    sd = s.std(axis=0, ddof=1)
    cov = np.cov(s, rowvar=False).reshape(J, J)
    if J == 1:
        return cov
    safe = np.where(sd > 0, sd, 1.0)
    z = (s - s.mean(axis=0)) / safe
    n = z.shape[0]
    w = z[:, :, None] * z[:, None, :]
    r = w.mean(axis=0) * n / (n - 1)
    var_r = w.var(axis=0, ddof=1) * n / (n - 1) ** 2
    if n_units is not None and 1 < n_units < n:
        var_r = var_r * (n - 1) / (n_units - 1)
    off = ~np.eye(J, dtype=bool)
    denom = float((r[off] ** 2).sum())
    lam = 1.0 if denom <= 0 else float(np.clip(var_r[off].sum() / denom, 0.0, 1.0))
    r_shrunk = np.where(off, (1.0 - lam) * r, 1.0)
    out = r_shrunk * np.outer(sd, sd)
    return 0.5 * (out + out.T)


def paired_difference(a: np.ndarray, b: np.ndarray, resamples: TrialResamples | None, ci: float,
                      n_first: float = 0.0) -> dict[str, object]:
    """Mean of ``a - b`` over the trials where both are finite, with its bootstrap interval.

    Args:
        a, b: (T,) one value per trial in the order of ``resamples.trial_ids`` (NaN where missing), e.g. the
            transfer MAE at one (n, m) and the direct MAE at that m.
        resamples: the property's resamples (``None`` or fewer than 2 trials in common: no interval, no verdict).
        ci: interval level.
        n_first: the n of ``a`` (its pretraining noise is drawn for pooled resamples; ``b`` is a reference).

    Returns:
        ``trials, mean, ci_low, ci_high, first_better, second_better, note`` (``first_better``: the interval lies
        below 0, i.e. ``a`` has the lower error).
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    both = np.isfinite(a) & np.isfinite(b)
    k = int(both.sum())
    out: dict[str, object] = {"trials": k, "mean": weighted_mean(np.where(both, a - b, np.nan)), "ci_low": None,
                              "ci_high": None, "first_better": None, "second_better": None, "note": ""}
    if k < 2 or resamples is None or resamples.n_boot < 2:
        out["note"] = ("one trial: no interval and no verdict (the spread between trials is unknown)" if k == 1
                       else "no trials in common" if k == 0 else "no bootstrap resamples")
        return out
    pair = np.column_stack([np.where(both, a, np.nan), np.where(both, b, np.nan)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = resamples.means(pair, [n_first, 0.0])
    lo, hi = percentile_interval(means[:, 0] - means[:, 1], ci)
    out.update(ci_low=lo, ci_high=hi, first_better=bool(hi < 0), second_better=bool(lo > 0))
    return out


def value_matrix(trials: pd.DataFrame, resamples: TrialResamples, points: Sequence[tuple], keys: Sequence[str],
                 value: str = "mae") -> np.ndarray:
    """(T, J) trial values at each point (``keys`` values of ``points``), NaN where a trial has none.

    ``trials``: one property's rows; rows with non-finite ``value`` stay NaN (diverged trials are left out of
    every mean the same way).
    """
    out = np.full((resamples.n_trials, len(points)), np.nan)
    if trials.empty or not points:
        return out
    index = {p: j for j, p in enumerate(points)}
    key_frame = trials[list(keys)]
    tuples = list(key_frame.itertuples(index=False, name=None))
    cols = np.array([index.get(_norm(t), -1) for t in tuples])
    rows = resamples.positions(pd.to_numeric(trials["trial"]).to_numpy(np.int64))
    vals = pd.to_numeric(trials[value], errors="coerce").to_numpy(float)
    ok = (cols >= 0) & (rows >= 0)
    out[rows[ok], cols[ok]] = vals[ok]
    return out


def _norm(t: tuple) -> tuple:
    return tuple(float(v) if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                 else v for v in t)


def point_key(*values: object) -> tuple:
    """A point key as :func:`value_matrix` matches it (numbers as floats)."""
    return _norm(tuple(values))
