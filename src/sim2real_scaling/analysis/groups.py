"""Per-group scaling: which material classes (or single materials) keep improving with more n.

Input: ``group_trials`` (``property, method, n, m, trial, group_by, group, mae, count``, optional
``replicate``; the MAE on the test samples of one group in one trial) or a per-group summary (``property,
method, n, m, group_by, group, mae_mean, mae_ci_low, mae_ci_high, trials``). For each group the 1-D law
R(n) = D n^-alpha + C is fitted to the transfer-learning means at one fixed m, by the one fit path of every
law (:func:`~sim2real_scaling.analysis.laws.fit_power_law_trials`), with the property's resamples (the same
trial weights for every group, so a group's result does not depend on the others), or a parametric bootstrap
from a summary. A group's mean at an n is the plain mean of its per-trial MAEs over the trials in which it was
in the test set; diverged trials (NaN) are left out point by point, never the group.

The table is ranked by alpha, descending (the groups that profit most from more simulations first), ties
broken by the smaller floor C; groups with no scaling (a parameter at its bound) come after them, and groups
whose fit failed come last.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sim2real_scaling.analysis.bootstrap import TrialResamples, percentile_interval, resamples_for, value_matrix
from sim2real_scaling.analysis.laws import PowerLawFit, fit_power_law_summary, fit_power_law_trials
from sim2real_scaling.analysis.tables import TableError, select_property, summary_standard_errors, transfer_method

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
    "mae_direct", "n_points", "trials", "replicates", "test_rows", "message",
)
#: a group is ranked only when its test rows at the largest n add up to at least this many over the trials and
#: it is tested in at least this share of them: two polymers of a class say nothing about how the class scales
MIN_TEST_ROWS = 30
MIN_TRIAL_SHARE = 0.5


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
    """Sort a per-group table by alpha descending (ties: smaller C first), ``no_scaling`` next, failed fits last.

    Adds/overwrites ``rank`` (1 = steepest decay). Returns a new DataFrame with a fresh index.
    """
    t = table.copy()
    ok = (t["status"] == "ok") & np.isfinite(t["alpha"].astype(float))
    flat = t["status"].isin(["no_scaling", "too_few_rows"])
    good = t[ok].sort_values(["alpha", "C", "group"], ascending=[False, True, True], kind="mergesort")
    none = t[flat & ~ok].sort_values("group", kind="mergesort")
    bad = t[~ok & ~flat].sort_values("group", kind="mergesort")
    out = pd.concat([x for x in (good, none, bad) if len(x)] or [t.iloc[:0]], ignore_index=True)
    out["rank"] = np.arange(1, len(out) + 1)
    cols = [c for c in TABLE_COLUMNS if c in out.columns] + [
        c for c in out.columns if c not in TABLE_COLUMNS
    ]
    return out[cols]


def _row(group_by: str, group: str, fit: PowerLawFit, n_max: float, mae_max: float,
         direct: float, trials: int, replicates: int = 0, test_rows: float = math.nan) -> dict[str, object]:
    return {
        "group_by": group_by, "group": group, "status": fit.status,
        "alpha": fit.alpha, "alpha_ci_low": fit.alpha_ci[0], "alpha_ci_high": fit.alpha_ci[1],
        "C": fit.C, "C_ci_low": fit.C_ci[0], "C_ci_high": fit.C_ci[1],
        "D": fit.D, "D_ci_low": fit.D_ci[0], "D_ci_high": fit.D_ci[1],
        "max_n": n_max, "mae_at_max_n": mae_max, "mae_direct": direct,
        "n_points": fit.n_points, "trials": trials, "replicates": replicates, "test_rows": test_rows,
        "message": fit.message,
    }


def _select(
    df: pd.DataFrame, property: str | None, group_by: str | None, m: float | None,
    source: str, method: str | None = None,
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
    transfer = rows[rows["method"] == transfer_method(rows, method, source)]
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
    method: str | None = None,
    n_boot: int = 100,
    seed: int = 0,
    ci: float = 0.90,
    space: str = "linear",
    resamples: TrialResamples | None = None,
    n_resamples: int = 2000,
    source: str = "group_trials",
) -> GroupScaling:
    """Fit the 1-D law in n for every group of a validated ``group_trials`` table.

    Args:
        group_trials: validated table (:func:`~sim2real_scaling.analysis.tables.read_group_trials`).
        property: which property (needed when several are present).
        group_by: which grouping (needed when several are present, e.g. class and compound).
        m: the fixed experimental size (default: the largest with transfer rows).
        method: the transfer method (default: the one present).
        n_boot: bootstrap refits per group.
        seed: study seed (the resamples are the property's, :func:`~.bootstrap.resamples_for`).
        ci: interval level. space: fit weighting (see :mod:`~sim2real_scaling.analysis.laws`).
        resamples: the property's resamples (default: drawn from this table's trial and replicate ids with
            ``n_resamples`` resamples, as the aggregation draws them from trials.csv).
        source: name used in error messages.

    Returns:
        :class:`GroupScaling` (a group with fewer than 3 distinct n gets a failed fit, listed last).

    Raises:
        TableError: unknown property / group_by / m (table-level problems only).
    """
    prop, gb, m_used, rows = _select(group_trials, property, group_by, m, source, method)
    meth = transfer_method(rows, method, source)
    prop_rows = group_trials[group_trials["property"] == prop]
    if resamples is None:
        resamples = resamples_for(prop_rows, max(n_resamples, n_boot), seed, prop)
    transfer = rows[rows["method"] == meth]
    n_trials = int(prop_rows.loc[prop_rows["method"] == meth, "trial"].nunique())
    direct_rows = rows[rows["method"] == "direct"]
    direct = {str(g): float(np.nanmean(d["mae"].to_numpy(float))) if np.isfinite(d["mae"].to_numpy(float)).any()
              else math.nan for g, d in direct_rows.groupby("group", sort=False)}
    records, curves = [], []
    fits: dict[str, PowerLawFit] = {}
    for group, g in transfer.groupby("group", sort=True):
        group = str(group)
        xs = np.unique(g["n"].to_numpy(float))
        values = value_matrix(g, resamples, [(float(n),) for n in xs], ["n"])
        keep = np.isfinite(values).any(axis=0)
        xs, values = xs[keep], values[:, keep]
        gen = np.random.default_rng(_group_seed(seed, group))
        if xs.size == 0:
            fit = PowerLawFit.failed("invalid_input", "every trial of this group diverged")
        else:
            fit = fit_power_law_trials(xs, values, resamples, n_boot=n_boot, ci=ci, space=space,
                                       generator=gen)
        fits[group] = fit
        counts = np.isfinite(values).sum(axis=0)
        boot = resamples.means(values, xs) if xs.size and counts.min() >= 2 else None
        for j, n in enumerate(xs):
            col = values[:, j]
            mean = float(np.nanmean(col))
            lo, hi = percentile_interval(boot[:, j], ci) if boot is not None else (math.nan, math.nan)
            curves.append({"group": group, "n": float(n), "mae_mean": mean, "mae_ci_low": lo, "mae_ci_high": hi,
                           "trials": int(counts[j])})
        tested = float(g.loc[np.isclose(g["n"].to_numpy(float), xs.max()), "count"].sum()) if xs.size else 0.0
        share = (int(counts.min()) / n_trials) if counts.size and n_trials else 0.0
        # too few test rows says more than any law fitted to them: it comes first, decaying or not
        if fit.has_params and (tested < MIN_TEST_ROWS or share < MIN_TRIAL_SHARE):
            fit.status = "too_few_rows"
            why = (f"{tested:.0f} test rows in {int(counts.min())} of {n_trials} trials at the largest n: too few to "
                   f"say how this group scales (ranked from {MIN_TEST_ROWS} rows in half of the trials)")
            fit.message = f"{why}; {fit.message}" if fit.message else why
        records.append(_row(gb, group, fit, float(xs.max()) if xs.size else math.nan,
                            float(np.nanmean(values[:, -1])) if xs.size else math.nan,
                            direct.get(group, math.nan), int(counts.min()) if counts.size else 0,
                            int(resamples.replicates_at(values).min()) if xs.size else 0, tested))
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
    transfer = rows[rows["method"] == transfer_method(rows, None, source)]
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
