"""All fits of one study, from its trials/summary/group tables: what ``fits.json`` holds.

Per property: the 1-D law R(n) at the largest m (trial-paired bootstrap: trial k shares its split at
every n), the transfer-versus-direct comparison at every n (trial-paired differences), and, when m is
on a grid, R(m) at the largest n, the surface R(n, m) with its diagnostic, and the marginal rate of
substitution at (largest n, largest m) from the surface or, where the surface does not hold, from the
1-D gradients (the paper's fallback). Per group column: the ranked per-group scaling table.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sim2real_scaling.analysis.groups import GroupScaling, fit_group_scaling
from sim2real_scaling.analysis.decisions import Plan, marginal_rate_1d, marginal_rate_surface, plan_for_target
from sim2real_scaling.analysis.laws import PowerLawFit, fit_power_law_bootstrap
from sim2real_scaling.seeding import rng
from sim2real_scaling.analysis.surface import SurfaceFit, fit_surface_bootstrap
from sim2real_scaling.analysis.tables import TableError, curve, trial_ids_by_point, trials_by_point

log = logging.getLogger(__name__)


def paired_difference(transfer: pd.DataFrame, direct: pd.DataFrame, *, confidence: float, n_boot: int,
                      seed: int) -> dict[str, Any]:
    """Mean of (transfer - direct) MAE over trials present in both, with a percentile bootstrap CI."""
    merged = transfer[["trial", "mae"]].merge(direct[["trial", "mae"]], on="trial", suffixes=("_t", "_d")).dropna()
    diff = (merged["mae_t"] - merged["mae_d"]).to_numpy()
    if diff.size == 0:
        return {"trials": 0, "mean": None, "ci_low": None, "ci_high": None, "transfer_better": None}
    means = rng(seed, "bootstrap", "paired_difference").choice(diff, size=(n_boot, diff.size)).mean(axis=1)
    lo, hi = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return {"trials": int(diff.size), "mean": float(diff.mean()), "ci_low": float(lo), "ci_high": float(hi),
            "transfer_better": bool(hi < 0), "direct_better": bool(lo > 0)}


def _fit_curve(trials: pd.DataFrame, summary: pd.DataFrame, vary: str, fixed: float | None, *, method: str,
               n_boot: int, seed: int, ci: float, space: str) -> tuple[float, PowerLawFit]:
    fixed_value, rows = curve(summary, vary=vary, fixed=fixed, method=method)
    by_trial = trials_by_point(trials, rows)
    x = rows[vary].to_numpy(dtype=float)
    # trial k has the same split at every point: resample trials jointly (paired) across points
    fit = fit_power_law_bootstrap(x, by_trial, n_boot=n_boot, seed=seed, ci=ci, space=space, paired=True,
                                  trial_ids=trial_ids_by_point(trials, rows))
    return fixed_value, fit


@dataclass
class PropertyAnalysis:
    """The fits of one property: ``record`` (JSON-safe, goes into fits.json) and the fitted objects."""

    record: dict[str, Any]
    law_n: PowerLawFit
    law_m: PowerLawFit | None = None
    surface: SurfaceFit | None = None
    plan: Plan | None = None
    groups: dict[str, GroupScaling] = field(default_factory=dict)


def analyse_property(name: str, trials: pd.DataFrame, summary: pd.DataFrame, groups: pd.DataFrame,
                     *, confidence: float, n_boot: int, seed: int, space: str, unit: str = "",
                     plan: Mapping[str, Any] | None = None) -> PropertyAnalysis:
    t = trials[(trials["property"] == name) & (trials["status"] == "ok")]
    s = summary[summary["property"] == name]
    out: dict[str, Any] = {"unit": unit}
    transfer = s[s["method"] == "transfer"]
    m_values = sorted(transfer["m"].unique())
    n_values = sorted(transfer["n"].unique())
    m_max, n_max = float(m_values[-1]), float(n_values[-1])
    try:
        _, fit_n = _fit_curve(t, s, "n", m_max, method="transfer", n_boot=n_boot, seed=seed, ci=confidence, space=space)
    except TableError as exc:
        fit_n = PowerLawFit.failed("invalid_input", str(exc))
    out["law_n"] = {"m": m_max, **fit_n.to_dict()}
    if not fit_n.ok:
        log.warning("%s: the fit of R(n) failed: %s", name, fit_n.message)

    direct_trials = t[t["method"] == "direct"]
    if not direct_trials.empty:
        comparison = []
        for m in m_values:
            d = direct_trials[direct_trials["m"] == m]
            drow = s[(s["method"] == "direct") & (s["m"] == m)]
            for n in n_values:
                tr = t[(t["method"] == "transfer") & (t["n"] == n) & (t["m"] == m)]
                if tr.empty or d.empty:
                    continue
                diff = paired_difference(tr, d, confidence=confidence, n_boot=2000, seed=seed)
                comparison.append({"n": float(n), "m": float(m), "transfer_mae": float(tr["mae"].mean()),
                                   "direct_mae": float(drow["mae_mean"].iloc[0]), "difference": diff})
        out["transfer_vs_direct"] = comparison
        at_m = [c for c in comparison if c["m"] == m_max]
        out["transfer_beats_direct_at_every_n"] = bool(at_m) and all(c["difference"]["transfer_better"] for c in at_m)

    fit_m: PowerLawFit | None = None
    surface: SurfaceFit | None = None
    best_plan: Plan | None = None
    if len(m_values) >= 2:
        try:
            _, fit_m = _fit_curve(t, s, "m", n_max, method="transfer", n_boot=n_boot, seed=seed, ci=confidence, space=space)
        except TableError as exc:
            fit_m = PowerLawFit.failed("invalid_input", str(exc))
        out["law_m"] = {"n": n_max, **fit_m.to_dict(), "equation": fit_m.equation(var="m")}
        grid = transfer.sort_values(["n", "m"])
        surface = _fit_surface(t, grid, n_boot=n_boot, seed=seed, ci=confidence, space=space)
        out["surface"] = surface.to_dict()
        if surface.ok and surface.holds:
            rate = marginal_rate_surface(surface, n_max, m_max)
        else:
            # the paper's fallback where the surface does not describe the data: 1-D gradients
            rate = marginal_rate_1d(fit_n, fit_m, n_max, m_max)
        out["marginal_rate"] = rate.to_dict()
        if plan and surface.ok:
            target = plan.get("target_mae") or float(transfer["mae_mean"].min())
            best_plan = plan_for_target(surface, target, cost_sim=plan["cost_simulation"],
                                        cost_exp=plan["cost_experiment"])
            out["plan"] = best_plan.to_dict()

    group_results: dict[str, Any] = {}
    scalings: dict[str, GroupScaling] = {}
    g = groups[groups["property"] == name] if not groups.empty else groups
    for group_by in sorted(g["group_by"].unique()) if not g.empty else []:
        try:
            scaling = fit_group_scaling(g, property=name, group_by=group_by, m=m_max, n_boot=min(n_boot, 100),
                                        seed=seed, ci=confidence, space=space, paired=True)
            group_results[group_by] = {"m": scaling.m, "table": scaling.table.to_dict(orient="records")}
            scalings[group_by] = scaling
        except TableError as exc:
            group_results[group_by] = {"error": str(exc)}
    if group_results:
        out["groups"] = group_results
    return PropertyAnalysis(record=out, law_n=fit_n, law_m=fit_m, surface=surface, plan=best_plan, groups=scalings)


def _fit_surface(t: pd.DataFrame, grid: pd.DataFrame, *, n_boot: int, seed: int, ci: float, space: str) -> SurfaceFit:
    try:
        by_trial = trials_by_point(t, grid)
    except TableError as exc:
        return SurfaceFit.failed("invalid_input", str(exc))
    return fit_surface_bootstrap(grid["n"].to_numpy(float), grid["m"].to_numpy(float), by_trial, n_boot=n_boot,
                                 seed=seed, ci=ci, space=space, paired=True, trial_ids=trial_ids_by_point(t, grid))


def analyse_study(config: Mapping[str, Any], trials: pd.DataFrame, summary: pd.DataFrame,
                  groups: pd.DataFrame) -> tuple[dict[str, Any], dict[str, PropertyAnalysis]]:
    """``(fits.json content, property -> PropertyAnalysis)``."""
    analysis = config["analysis"]
    record: dict[str, Any] = {"study": config["study"], "confidence": analysis["confidence"],
                              "fit_space": analysis["fit_space"], "fit_bootstrap": analysis["fit_bootstrap"],
                              "properties": {}}
    results: dict[str, PropertyAnalysis] = {}
    for name, prop in config["properties"].items():
        log.info("fitting %s", name)
        results[name] = analyse_property(
            name, trials, summary, groups, confidence=analysis["confidence"], n_boot=analysis["fit_bootstrap"],
            seed=config["seed"], space=analysis["fit_space"], unit=prop["unit"], plan=analysis["plan"])
        record["properties"][name] = results[name].record
    return record, results
