"""Aggregation of trial MAEs: per (property, method, n, m) mean with its bootstrap confidence interval.

The interval comes from the property's resamples (:mod:`sim2real_scaling.analysis.bootstrap`: pretraining
replicates, then trials within them), the same resamples the fits use, so a mean's interval and the laws'
intervals describe the same uncertainty. Diverged trials (NaN MAE) are left out of every mean and counted in
``failed``. A point with a single trial gets no interval (the spread between trials is unknown).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sim2real_scaling.analysis.bootstrap import percentile_interval, resamples_for, value_matrix
from sim2real_scaling.contract import is_transfer

SUMMARY_KEYS = ["property", "method", "n", "m"]
#: the columns of summary.csv
SUMMARY_COLUMNS = [*SUMMARY_KEYS, "mae_mean", "mae_ci_low", "mae_ci_high", "mae_sd", "trials", "failed",
                   "replicates", "mae_sim_rows_mean", "mae_sim_rows_ci_low", "mae_sim_rows_ci_high", "sim_rows"]


def _point_stats(values: np.ndarray, boot: np.ndarray | None, confidence: float) -> list[dict[str, float]]:
    out = []
    for j in range(values.shape[1]):
        col = values[:, j]
        ok = col[np.isfinite(col)]
        if ok.size == 0:
            out.append({"mean": math.nan, "low": math.nan, "high": math.nan, "sd": math.nan, "k": 0})
            continue
        low = high = math.nan
        if ok.size >= 2 and boot is not None:
            low, high = percentile_interval(boot[:, j], confidence)
        out.append({"mean": float(ok.mean()), "low": low, "high": high,
                    "sd": float(ok.std(ddof=1)) if ok.size > 1 else math.nan, "k": int(ok.size)})
    return out


def summarize(trials: pd.DataFrame, *, confidence: float = 0.9, n_resamples: int = 2000,
              seed: int = 0) -> pd.DataFrame:
    """One row per (property, method, n, m) with :data:`SUMMARY_COLUMNS`.

    ``mae_*``: mean test MAE over the finite trials with its bootstrap interval and trial SD (NaN interval for a
    single trial); ``trials``/``failed``: finite / diverged trials (a simulation reference with nothing to compare,
    status ``no_reference``, is neither); ``replicates``: distinct pretraining draws
    among them; ``mae_sim_rows_*``: the same for the MAE on the test rows that have a simulated value, over
    ``sim_rows`` such rows per trial (mean), where the table has them.
    """
    rows = []
    for prop, frame in trials.groupby("property", sort=True):
        prop = str(prop)
        resamples = resamples_for(frame, n_resamples, seed, prop)
        keys = frame[["method", "n", "m"]].drop_duplicates().sort_values(["method", "n", "m"])
        points = [(str(a), float(b), float(c)) for a, b, c in keys.itertuples(index=False, name=None)]
        n_of_point = np.array([n if is_transfer(meth) else 0.0 for meth, n, _ in points])
        values = value_matrix(frame, resamples, points, ["method", "n", "m"])
        boot = resamples.means(values, n_of_point) if resamples.n_boot else None
        stats = _point_stats(values, boot, confidence)
        reps = resamples.replicates_at(values)
        status = frame["status"].astype(str) if "status" in frame.columns else pd.Series("ok", index=frame.index)
        diverged = (status == "diverged") | (status.isin(["ok", "nan"]) & frame["mae"].isna())
        failed_counts = diverged.groupby([frame["method"], frame["n"], frame["m"]]).sum()
        sim_stats: list[dict[str, float]] = [{"mean": math.nan, "low": math.nan, "high": math.nan}] * len(points)
        sim_rows = [math.nan] * len(points)
        if "mae_sim_rows" in frame.columns:
            sim_values = value_matrix(frame, resamples, points, ["method", "n", "m"], value="mae_sim_rows")
            if np.isfinite(sim_values).any():
                sim_boot = resamples.means(sim_values, n_of_point) if resamples.n_boot else None
                sim_stats = _point_stats(sim_values, sim_boot, confidence)
            if "sim_rows" in frame.columns:
                count_values = value_matrix(frame, resamples, points, ["method", "n", "m"], value="sim_rows")
                sim_rows = [float(np.nanmean(c)) if np.isfinite(c).any() else math.nan for c in count_values.T]
        for j, (method, n, m) in enumerate(points):
            st = stats[j]
            failed = int(failed_counts.get((method, n, m), failed_counts.get((method, int(n), int(m)), 0)))
            rows.append({"property": prop, "method": method, "n": n, "m": m, "mae_mean": st["mean"],
                         "mae_ci_low": st["low"], "mae_ci_high": st["high"], "mae_sd": st["sd"], "trials": st["k"],
                         "failed": failed, "replicates": int(reps[j]),
                         "mae_sim_rows_mean": sim_stats[j]["mean"], "mae_sim_rows_ci_low": sim_stats[j]["low"],
                         "mae_sim_rows_ci_high": sim_stats[j]["high"], "sim_rows": sim_rows[j]})
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    for col in ("n", "m"):
        if len(out) and np.all(np.mod(out[col].to_numpy(float), 1) == 0):
            out[col] = out[col].astype(np.int64)
    return out
