"""Per-group scaling: which material classes (or single materials) keep improving with more n.

Input: ``group_trials`` (``property, method, n, m, trial, group_by, group, mae, count``; the MAE on
the test samples of one group in one trial) or a per-group summary (``property, method, n, m,
group_by, group, mae_mean, mae_ci_low, mae_ci_high, trials``). For each group the 1-D law
R(n) = D n^-alpha + C is fitted to the transfer-learning means at one fixed m, with intervals by
resampling that group's trials (or a parametric bootstrap from a summary). A group's mean at an n is
the plain mean of its per-trial MAEs over the trials in which it was in the test set (each trial
counts once, as in the overall summary).

The table is ranked by alpha, descending (the groups that profit most from more simulations first),
ties broken by the smaller floor C; groups whose fit failed come last.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sim2real_scaling.analysis.laws import PowerLawFit, fit_power_law_bootstrap, fit_power_law_summary
from sim2real_scaling.analysis.tables import Z90, TableError, select_property, summary_standard_errors

__all__ = [
    "GroupScaling",
    "TABLE_COLUMNS",
    "fit_group_scaling",
    "fit_group_scaling_summary",
    "rank_groups",
]

TABLE_COLUMNS: tuple[str, ...] = (
    "rank", "group_by", "group", "status", "alpha", "alpha_ci_low", "alpha_ci_high",
    "C", "C_ci_low", "C_ci_high", "D", "D_ci_low", "D_ci_high", "max_n", "mae_at_max_n",
    "mae_direct", "n_points", "trials", "message",
)


@dataclass
class GroupScaling:
    """Per-group fits of one property at one m.

    ``table``: ranked DataFrame with :data:`TABLE_COLUMNS` (MAEs in property units).
    ``fits``: group -> :class:`~sim2real_scaling.analysis.laws.PowerLawFit`.
    ``curves``: DataFrame ``group, n, mae_mean, mae_ci_low, mae_ci_high, trials`` (normal-approx.
    90% band of the mean, for plotting). ``direct``: group -> mean direct-learning MAE (if present).
    """

    property: str
    group_by: str
    m: float
    table: pd.DataFrame
    fits: dict[str, PowerLawFit] = field(default_factory=dict)
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)
    direct: dict[str, float] = field(default_factory=dict)


def _group_seed(seed: int, group: str) -> list[int]:
    """A seed for ``default_rng`` that depends only on (seed, group name), not on group order."""
    return [int(seed), zlib.crc32(group.encode("utf-8"))]


def rank_groups(table: pd.DataFrame) -> pd.DataFrame:
    """Sort a per-group table by alpha descending (ties: smaller C first), failed fits last.

    Adds/overwrites ``rank`` (1 = steepest decay). Returns a new DataFrame with a fresh index.
    """
    t = table.copy()
    ok = (t["status"] == "ok") & np.isfinite(t["alpha"].astype(float))
    good = t[ok].sort_values(["alpha", "C", "group"], ascending=[False, True, True], kind="mergesort")
    bad = t[~ok].sort_values("group", kind="mergesort")
    out = pd.concat([good, bad], ignore_index=True)
    out["rank"] = np.arange(1, len(out) + 1)
    cols = [c for c in TABLE_COLUMNS if c in out.columns] + [
        c for c in out.columns if c not in TABLE_COLUMNS
    ]
    return out[cols]


def _row(group_by: str, group: str, fit: PowerLawFit, n_max: float, mae_max: float,
         direct: float, trials: int) -> dict[str, object]:
    return {
        "group_by": group_by, "group": group, "status": fit.status,
        "alpha": fit.alpha, "alpha_ci_low": fit.alpha_ci[0], "alpha_ci_high": fit.alpha_ci[1],
        "C": fit.C, "C_ci_low": fit.C_ci[0], "C_ci_high": fit.C_ci[1],
        "D": fit.D, "D_ci_low": fit.D_ci[0], "D_ci_high": fit.D_ci[1],
        "max_n": n_max, "mae_at_max_n": mae_max, "mae_direct": direct,
        "n_points": fit.n_points, "trials": trials, "message": fit.message,
    }


def _select(
    df: pd.DataFrame, property: str | None, group_by: str | None, m: float | None,
    source: str,
) -> tuple[str, str, float, pd.DataFrame]:
    prop, rows = select_property(df, property, source)
    kinds = list(dict.fromkeys(rows["group_by"].tolist()))
    if group_by is None:
        if len(kinds) != 1:
            raise TableError(
                f"{source}: property {prop!r} is grouped in {len(kinds)} ways "
                f"({', '.join(kinds)}); choose one with --group-by"
            )
        group_by = kinds[0]
    elif group_by not in kinds:
        raise TableError(f"{source}: unknown group_by {group_by!r}; present: {', '.join(kinds)}")
    rows = rows[rows["group_by"] == group_by]
    transfer = rows[rows["method"] == "transfer"]
    if transfer.empty:
        raise TableError(f"{source}: no transfer rows for property {prop!r}, group_by {group_by!r}")
    ms = np.unique(transfer["m"].to_numpy(float))
    if m is None:
        m = float(ms.max())
    elif not np.any(np.isclose(ms, m)):
        raise TableError(
            f"{source}: no transfer rows at m = {m:g}; available m: {', '.join(f'{v:g}' for v in ms)}"
        )
    rows = rows[np.isclose(rows["m"].to_numpy(float), m)]
    return prop, group_by, float(m), rows


def fit_group_scaling(
    group_trials: pd.DataFrame,
    *,
    property: str | None = None,
    group_by: str | None = None,
    m: float | None = None,
    n_boot: int = 100,
    seed: int = 0,
    ci: float = 0.90,
    space: str = "linear",
    paired: bool = False,
    source: str = "group_trials",
) -> GroupScaling:
    """Fit the 1-D law in n for every group of a validated ``group_trials`` table.

    Args:
        group_trials: validated table (:func:`~sim2real_scaling.analysis.tables.read_group_trials`).
        property: which property (needed when several are present).
        group_by: which grouping (needed when several are present, e.g. class and compound).
        m: the fixed experimental size (default: the largest with transfer rows).
        n_boot: trial-resampling bootstrap refits per group. seed: base seed; each group's seed is
            derived from (seed, crc32(group name)) so results do not depend on the other groups.
        ci: interval level. space: fit weighting (see :mod:`~sim2real_scaling.analysis.laws`).
        paired: resample trial ids jointly across n (trials share splits across n).
        source: name used in error messages.

    Returns:
        :class:`GroupScaling` (a group with fewer than 3 distinct n gets a failed fit, listed last).

    Raises:
        TableError: unknown property / group_by / m (table-level problems only).
    """
    prop, gb, m_used, rows = _select(group_trials, property, group_by, m, source)
    transfer = rows[rows["method"] == "transfer"]
    direct_rows = rows[rows["method"] == "direct"]
    direct = {str(g): float(d["mae"].mean()) for g, d in direct_rows.groupby("group", sort=False)}
    records, curves = [], []
    fits: dict[str, PowerLawFit] = {}
    for group, g in transfer.groupby("group", sort=True):
        group = str(group)
        parts = [d for _, d in g.groupby("n", sort=True)]
        by_n = [(float(d["n"].to_numpy(float)[0]), d["mae"].to_numpy(float)) for d in parts]
        xs = np.array([n for n, _ in by_n])
        arrays = [a for _, a in by_n]
        rng_seed = _group_seed(seed, group)
        fit = fit_power_law_bootstrap(
            xs, arrays, n_boot=n_boot, seed=int(np.random.SeedSequence(rng_seed).generate_state(1)[0]),
            ci=ci, space=space, paired=paired,
            trial_ids=[d["trial"].to_numpy() for d in parts] if paired else None,
        )
        fits[group] = fit
        for n, a in by_n:
            mean = float(a.mean())
            se = float(a.std(ddof=1) / math.sqrt(a.size)) if a.size > 1 else math.nan
            curves.append({"group": group, "n": n, "mae_mean": mean, "mae_ci_low": mean - Z90 * se,
                           "mae_ci_high": mean + Z90 * se, "trials": a.size})
        records.append(_row(gb, group, fit, float(xs.max()), float(arrays[-1].mean()),
                            direct.get(group, math.nan), int(min(a.size for a in arrays))))
    table = rank_groups(pd.DataFrame.from_records(records, columns=[c for c in TABLE_COLUMNS if c != "rank"]))
    return GroupScaling(prop, gb, m_used, table, fits, pd.DataFrame(curves), direct)


def fit_group_scaling_summary(
    group_summary: pd.DataFrame,
    *,
    property: str | None = None,
    group_by: str | None = None,
    m: float | None = None,
    n_boot: int = 100,
    seed: int = 0,
    ci: float = 0.90,
    space: str = "linear",
    source: str = "group_summary",
) -> GroupScaling:
    """As :func:`fit_group_scaling` from a per-group summary (parametric bootstrap from the SEs).

    ``group_summary`` needs ``property, method, n, m, group_by, group, mae_mean, mae_ci_low,
    mae_ci_high, trials`` (optional ``mae_sd``); SEs as in
    :func:`~sim2real_scaling.analysis.tables.summary_standard_errors`.
    """
    needed = ["property", "method", "n", "m", "group_by", "group", "mae_mean", "mae_ci_low",
              "mae_ci_high", "trials"]
    missing = [c for c in needed if c not in group_summary.columns]
    if missing:
        raise TableError(f"{source}: missing column(s) {', '.join(repr(c) for c in missing)}")
    df = group_summary.copy()
    df["group"] = df["group"].astype(str)
    df["group_by"] = df["group_by"].astype(str)
    prop, gb, m_used, rows = _select(df, property, group_by, m, source)
    transfer = rows[rows["method"] == "transfer"]
    direct = {
        str(g): float(d["mae_mean"].mean())
        for g, d in rows[rows["method"] == "direct"].groupby("group", sort=False)
    }
    records, curves = [], []
    fits: dict[str, PowerLawFit] = {}
    for group, g in transfer.groupby("group", sort=True):
        group = str(group)
        g = g.sort_values("n")
        se = summary_standard_errors(g)
        fit = fit_power_law_summary(
            g["n"].to_numpy(float), g["mae_mean"].to_numpy(float), se, n_boot=n_boot,
            seed=int(np.random.SeedSequence(_group_seed(seed, group)).generate_state(1)[0]), ci=ci,
            space=space,
        )
        fits[group] = fit
        cols = {k: g[k].to_numpy(float) for k in ("n", "mae_mean", "mae_ci_low", "mae_ci_high",
                                                   "trials")}
        for j in range(len(g)):
            curves.append({"group": group, **{k: float(v[j]) for k, v in cols.items()}})
        records.append(_row(gb, group, fit, float(g["n"].max()), float(g["mae_mean"].iloc[-1]),
                            direct.get(group, math.nan), int(np.nanmin(g["trials"].to_numpy(float)))
                            if g["trials"].notna().any() else 0))
    table = rank_groups(pd.DataFrame.from_records(records, columns=[c for c in TABLE_COLUMNS if c != "rank"]))
    return GroupScaling(prop, gb, m_used, table, fits, pd.DataFrame(curves), direct)
