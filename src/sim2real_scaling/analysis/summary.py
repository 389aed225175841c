"""Aggregation of trial MAEs: per (property, method, n, m) mean with a bootstrap confidence interval."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from sim2real_scaling.seeding import rng

SUMMARY_KEYS = ["property", "method", "n", "m"]


def mean_ci(values: np.ndarray, *, confidence: float, n_resamples: int, random_state: np.random.Generator) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (``scipy.stats.bootstrap``); a single value gives (v, v)."""
    values = np.asarray(values, dtype=float)
    if values.size < 2 or np.all(values == values[0]):
        return float(values.mean()), float(values.mean())
    res = stats.bootstrap((values,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                          method="percentile", vectorized=True, random_state=random_state)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def summarize(trials: pd.DataFrame, *, confidence: float = 0.9, n_resamples: int = 2000, seed: int = 0,
              keys: Sequence[str] = SUMMARY_KEYS) -> pd.DataFrame:
    """One row per ``keys`` group: ``mae_mean, mae_ci_low, mae_ci_high, mae_sd, trials, failed``.

    Diverged trials (NaN MAE) are left out of the mean and counted in ``failed``. Each group's bootstrap
    draws from its own seeded stream, so adding a group never changes another group's interval.
    """
    rows = []
    for group_key, frame in trials.groupby(list(keys), sort=True):
        group_key = group_key if isinstance(group_key, tuple) else (group_key,)
        values = frame["mae"].to_numpy(dtype=float)
        ok = values[np.isfinite(values)]
        row = dict(zip(keys, group_key, strict=True))
        if ok.size == 0:
            row.update(mae_mean=np.nan, mae_ci_low=np.nan, mae_ci_high=np.nan, mae_sd=np.nan, trials=0,
                       failed=int(values.size))
        else:
            low, high = mean_ci(ok, confidence=confidence, n_resamples=n_resamples,
                                random_state=rng(seed, "bootstrap", *[str(k) for k in group_key]))
            row.update(mae_mean=float(ok.mean()), mae_ci_low=low, mae_ci_high=high,
                       mae_sd=float(ok.std(ddof=1)) if ok.size > 1 else 0.0, trials=int(ok.size),
                       failed=int(values.size - ok.size))
        rows.append(row)
    return pd.DataFrame(rows)
