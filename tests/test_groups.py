"""Tests of per-group scaling: fits per group, ranking by alpha, failed groups last."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sim2real_scaling.analysis.groups import TABLE_COLUMNS, fit_group_scaling, fit_group_scaling_summary, rank_groups
from sim2real_scaling.analysis.tables import Z90, TableError, validate_group_trials

NS = np.geomspace(100, 1e4, 8).round()
GROUPS = {"steep": (0.5, 0.4, 0.02), "medium": (0.4, 0.2, 0.01), "flat": (0.3, 0.05, 0.0)}


def _group_trials(seed: int = 0, T: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for group, (D, a, C) in GROUPS.items():
        for n in [*NS, 0.0]:
            method = "direct" if n == 0 else "transfer"
            mu = D * n ** (-a) + C if n > 0 else D * 100.0 ** (-a) + C + 0.05
            for t in range(T):
                rows.append(dict(property="chi", method=method, n=n, m=600, trial=t,
                                 group_by="class", group=group, mae=mu + rng.normal(0, 0.005),
                                 count=4))
    # a group seen at two n only: cannot be fitted
    for n in NS[:2]:
        for t in range(T):
            rows.append(dict(property="chi", method="transfer", n=n, m=600, trial=t,
                             group_by="class", group="rare", mae=0.2 + rng.normal(0, 0.01), count=1))
    return pd.DataFrame(rows)


def test_ranked_by_alpha_with_failed_groups_last() -> None:
    res = fit_group_scaling(validate_group_trials(_group_trials()), n_boot=30, seed=0)
    t = res.table
    assert list(t.columns[: len(TABLE_COLUMNS)]) == list(TABLE_COLUMNS)
    assert list(t["group"]) == ["steep", "medium", "flat", "rare"]
    assert list(t["rank"]) == [1, 2, 3, 4]
    assert list(t["status"]) == ["ok", "ok", "ok", "too_few_points"]
    assert res.property == "chi" and res.group_by == "class" and res.m == 600
    for g, (_, a, _) in GROUPS.items():
        row = t[t["group"] == g].iloc[0]
        assert row["alpha_ci_low"] <= a <= row["alpha_ci_high"], g
        assert row["mae_direct"] > row["mae_at_max_n"]
        assert row["max_n"] == NS.max()
    assert math.isnan(t[t["group"] == "rare"]["alpha"].iloc[0])
    assert set(res.fits) == {"steep", "medium", "flat", "rare"}
    assert set(res.curves["group"]) == {"steep", "medium", "flat", "rare"}
    assert (res.curves["mae_ci_low"] < res.curves["mae_mean"]).all()


def test_group_results_do_not_depend_on_other_groups() -> None:
    gt = validate_group_trials(_group_trials())
    full = fit_group_scaling(gt, n_boot=20, seed=5)
    alone = fit_group_scaling(gt[gt["group"] == "medium"], n_boot=20, seed=5)
    a = full.table.set_index("group").loc["medium"]
    b = alone.table.set_index("group").loc["medium"]
    assert a["alpha_ci_low"] == b["alpha_ci_low"] and a["C_ci_high"] == b["C_ci_high"]


def test_one_diverged_trial_does_not_wipe_the_group_fits() -> None:
    gt = _group_trials()
    gt.loc[(gt["trial"] == 3) & (gt["n"] == NS[2]) & (gt["method"] == "transfer"), "mae"] = np.nan
    res = fit_group_scaling(validate_group_trials(gt), n_boot=20, seed=0)
    assert list(res.table["status"]) == ["ok", "ok", "ok", "too_few_points"]
    curve = res.curves[(res.curves["group"] == "steep") & (res.curves["n"] == NS[2])].iloc[0]
    assert curve["trials"] == 39 and np.isfinite(curve["mae_mean"])


def test_a_group_with_no_scaling_is_not_ranked_as_a_scaling_law() -> None:
    gt = _group_trials()
    rng = np.random.default_rng(1)
    flat = gt[gt["group"] == "flat"].copy()
    flat["group"] = "none"
    flat["mae"] = 0.2 + rng.normal(0, 0.005, len(flat))
    res = fit_group_scaling(validate_group_trials(pd.concat([gt, flat], ignore_index=True)), n_boot=30, seed=0)
    t = res.table.set_index("group")
    assert t.loc["none", "status"] == "no_scaling"
    ok_ranks = t[t["status"] == "ok"]["rank"]
    assert t.loc["none", "rank"] > ok_ranks.max() and t.loc["none", "rank"] < t.loc["rare", "rank"]


@pytest.mark.parametrize("law", ["decaying", "flat"])
def test_a_rarely_tested_group_is_not_ranked_whatever_its_law(law: str) -> None:
    """A group with under 30 test rows at the largest n, or seen in under half of the trials, is labelled
    too_few_rows, whether its fitted law decays or not (a 17-row group is not "no scaling detected")."""
    gt = _group_trials()
    rng = np.random.default_rng(2)
    rare = gt[(gt["group"] == "steep") & (gt["trial"] < 15)].copy()  # 15 of 40 trials, 4 rows each: 60 rows
    rare["group"] = "seldom"
    if law == "flat":
        rare["mae"] = 0.2 + rng.normal(0, 0.005, len(rare))
    few = gt[(gt["group"] == "medium") & (gt["trial"] < 25)].copy()  # 25 of 40 trials, 1 row each: 25 rows
    few["group"] = "thin"
    few["count"] = 1
    res = fit_group_scaling(validate_group_trials(pd.concat([gt, rare, few], ignore_index=True)), n_boot=20, seed=0)
    t = res.table.set_index("group")
    assert t.loc["seldom", "status"] == "too_few_rows" and t.loc["thin", "status"] == "too_few_rows"
    assert "too few to say how this group scales" in res.fits["seldom"].message
    assert t.loc["steep", "status"] == "ok" and t.loc["medium", "status"] == "ok"
    assert t.loc["seldom", "rank"] > t[t["status"] == "ok"]["rank"].max()


def test_from_group_summary() -> None:
    gt = _group_trials()
    g = gt.groupby(["property", "method", "n", "m", "group_by", "group"])["mae"]
    summ = g.agg(mae_mean="mean", sd="std", trials="count").reset_index()
    se = summ["sd"] / np.sqrt(summ["trials"])
    summ["mae_ci_low"] = summ["mae_mean"] - Z90 * se
    summ["mae_ci_high"] = summ["mae_mean"] + Z90 * se
    res = fit_group_scaling_summary(summ, n_boot=30, seed=0)
    assert list(res.table["group"]) == ["steep", "medium", "flat", "rare"]
    assert res.fits["steep"].bootstrap == "parametric"
    with pytest.raises(TableError, match="missing column"):
        fit_group_scaling_summary(summ.drop(columns=["trials"]))


def test_selection_errors() -> None:
    gt = _group_trials()
    other = gt.copy()
    other["group_by"] = "compound"
    both = validate_group_trials(pd.concat([gt, other], ignore_index=True))
    with pytest.raises(TableError, match="--group-by"):
        fit_group_scaling(both, n_boot=0)
    assert fit_group_scaling(both, group_by="compound", n_boot=0).group_by == "compound"
    with pytest.raises(TableError, match="unknown group_by"):
        fit_group_scaling(both, group_by="family", n_boot=0)
    with pytest.raises(TableError, match="no transfer rows at m"):
        fit_group_scaling(validate_group_trials(gt), m=123, n_boot=0)
    with pytest.raises(TableError, match="unknown property"):
        fit_group_scaling(validate_group_trials(gt), property="density", n_boot=0)


def test_rank_groups_ties() -> None:
    t = pd.DataFrame({"group": ["a", "b", "c", "d"], "status": ["ok", "ok", "failed", "ok"],
                      "alpha": [0.2, 0.2, np.nan, 0.5], "C": [0.03, 0.01, np.nan, 0.1]})
    r = rank_groups(t)
    assert list(r["group"]) == ["d", "b", "a", "c"]
    assert list(r["rank"]) == [1, 2, 3, 4]


def test_the_report_prints_row_counts_in_full_and_rarely_tested_groups_unranked() -> None:
    from sim2real_scaling.report.content import _group_blocks, to_markdown

    table = [{"rank": 1, "group": "middle", "status": "ok", "alpha": 0.05, "alpha_ci_low": 0.02,
              "alpha_ci_high": 0.08, "C": 0.0, "C_ci_low": 0.0, "C_ci_high": 0.0, "mae_at_max_n": 0.67,
              "mae_direct": 0.69, "trials": 50, "test_rows": 17670.0},
             {"rank": 2, "group": "PDIE", "status": "too_few_rows", "mae_at_max_n": 0.02, "mae_direct": 0.02,
              "trials": 17, "test_rows": 17.0}]
    page = to_markdown(_group_blocks("density", {"groups": {"class": {"table": table}}}, {}, "figures"))
    assert "| 1 | middle |" in page and "| 17,670 | scales |" in page
    assert "| - | PDIE | - | - |" in page and "| 17 | too few test rows to rank |" in page
