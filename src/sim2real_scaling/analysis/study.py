"""All fits of one study, from its trials and group tables: what ``fits.json`` holds.

Per property, with one set of resamples (:func:`~sim2real_scaling.analysis.bootstrap.resamples_for`: the same
the summary's intervals come from):

* ``law_n``: the 1-D law R(n) at the largest m (the variant BIC prefers: no floor C where there is none);
* ``backtest``: the law refitted without the largest n (and the two largest), its prediction of the held-out
  means with intervals and whether the observed means fall inside;
* ``references``: transfer against each reference (``direct``, ``simulation``) at every n, trial-paired
  differences with intervals and verdicts (none from a single trial); the comparison with the simulation uses
  every method's MAE on the test rows that have a simulated value (``mae_sim_rows``), so both are measured on
  the same rows; ``transfer_vs_direct`` keeps the direct comparison under its old key;
* where m is on a grid: ``law_m`` (R(m) at the largest n), ``surface`` with its diagnostic, the marginal rate of
  substitution (from the surface when it holds, else from the two 1-D laws, paired resample by resample) and a
  ``plan`` only from a surface that holds; with one m, ``rate_note`` says why there is no rate and how to get
  one;
* per group column: the ranked per-group scaling table;
* ``warnings``: every caveat, each naming the number it qualifies.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sim2real_scaling.analysis.backtest import backtest
from sim2real_scaling.analysis.bootstrap import TrialResamples, paired_difference, resamples_for, value_matrix
from sim2real_scaling.analysis.decisions import (
    MarginalRate,
    Plan,
    marginal_rate_1d,
    marginal_rate_surface,
    plan_for_target,
)
from sim2real_scaling.analysis.groups import GroupScaling, fit_group_scaling
from sim2real_scaling.analysis.laws import PowerLawFit, _finite_or_none, fit_power_law_trials
from sim2real_scaling.analysis.surface import SurfaceFit, fit_surface_trials
from sim2real_scaling.analysis.tables import TableError, transfer_method
from sim2real_scaling.contract import REFERENCE_METHODS, canonical_method
from sim2real_scaling.seeding import rng

log = logging.getLogger(__name__)

#: fewer pretraining replicates than this at a point: the report warns that intervals are approximate
FEW_REPLICATES = 4


@dataclass
class PropertyAnalysis:
    """The fits of one property: ``record`` (JSON-safe, goes into fits.json) and the fitted objects."""

    record: dict[str, Any]
    law_n: PowerLawFit
    law_m: PowerLawFit | None = None
    surface: SurfaceFit | None = None
    plan: Plan | None = None
    rate: MarginalRate | None = None
    groups: dict[str, GroupScaling] = field(default_factory=dict)
    method: str = "finetune"


def property_rows(trials: pd.DataFrame, name: str) -> pd.DataFrame:
    """One property's trial rows with contract method names (every status: diverged rows keep their trial in
    the resampling design; their NaN MAE is left out of every mean)."""
    t = trials[trials["property"] == name].copy()
    t["method"] = t["method"].astype(str).map(canonical_method)
    t["n"] = t["n"].astype(float)
    t["m"] = t["m"].astype(float)
    t["mae"] = pd.to_numeric(t["mae"], errors="coerce")
    if "status" in t.columns:
        t.loc[t["status"].astype(str) != "ok", "mae"] = np.nan
    return t


def law_values(t: pd.DataFrame, resamples: TrialResamples, method: str, vary: str, fixed: float,
               value: str = "mae") -> tuple[np.ndarray, np.ndarray]:
    """``(x, values (T, N))`` of one 1-D curve (``vary`` = "n" at m = ``fixed``, or "m" at n = ``fixed``)."""
    other = "m" if vary == "n" else "n"
    rows = t[(t["method"] == method) & np.isclose(t[other], fixed)]
    x = np.unique(rows[vary].to_numpy(float))
    points = [(method, float(v), float(fixed)) if vary == "n" else (method, float(fixed), float(v)) for v in x]
    return x, value_matrix(rows, resamples, points, ["method", "n", "m"], value=value)


def fit_curve(t: pd.DataFrame, resamples: TrialResamples, method: str, vary: str, fixed: float, *, n_boot: int,
              ci: float, space: str, seed: int, key: str, floor: bool | None = None) -> PowerLawFit:
    """The 1-D law of one curve with the property's resamples (what fits.json, the report and the CLI share)."""
    x, values = law_values(t, resamples, method, vary, fixed)
    if x.size == 0:
        return PowerLawFit.failed("invalid_input", f"no {method} rows at {'m' if vary == 'n' else 'n'} = {fixed:g}")
    keep = np.isfinite(values).any(axis=0)
    if not keep.all():
        dropped = ", ".join(f"{v:g}" for v in x[~keep])
        x, values = x[keep], values[:, keep]
        note = f"every trial diverged at {vary} = {dropped}: left out"
    else:
        note = ""
    n_of_point = x if vary == "n" else np.full(x.size, fixed)
    fit = fit_power_law_trials(x, values, resamples, n_boot=n_boot, ci=ci, space=space, floor=floor,
                               n_of_point=n_of_point, generator=rng(seed, "bootstrap", "law", key, vary))
    if note:
        fit.message = "; ".join(m for m in (note, fit.message) if m)
        fit.warnings.insert(0, note)
    return fit


def compare(t: pd.DataFrame, resamples: TrialResamples, first: str, second: str, n: float, m: float, *, ci: float,
            value_first: str = "mae", value_second: str = "mae") -> dict[str, Any]:
    """Trial-paired difference ``first(n, m) - second(m)`` (second a reference at n = 0)."""
    a_rows = t[(t["method"] == first) & np.isclose(t["n"], n) & np.isclose(t["m"], m)]
    b_rows = t[(t["method"] == second) & np.isclose(t["m"], m)]
    a = value_matrix(a_rows, resamples, [(float(n), float(m))], ["n", "m"], value=value_first)[:, 0]
    b = value_matrix(b_rows, resamples, [(0.0, float(m))], ["n", "m"], value=value_second)[:, 0]
    d = paired_difference(a, b, resamples, ci, n_first=n)
    return {"n": float(n), "m": float(m), f"{first}_mae": _nanmean(a), f"{second}_mae": _nanmean(b),
            "first_mae": _nanmean(a[np.isfinite(a) & np.isfinite(b)]), "second_mae":
            _nanmean(b[np.isfinite(a) & np.isfinite(b)]), "difference": d}


def _nanmean(v: np.ndarray) -> float:
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan


def _verdict(d: Mapping[str, Any], first: str, second: str) -> str:
    if d.get("first_better") is None:
        return "no verdict"
    if d["first_better"]:
        return f"{first} better"
    if d["second_better"]:
        return f"{second} better"
    return "no clear difference"


def analyse_property(name: str, trials: pd.DataFrame, groups: pd.DataFrame, *, confidence: float, n_boot: int,
                     seed: int, space: str, unit: str = "", plan: Mapping[str, Any] | None = None,
                     n_resamples: int = 2000, method: str | None = None) -> PropertyAnalysis:
    """The fits of one property (see the module docstring)."""
    t = property_rows(trials, name)
    resamples = resamples_for(trials[trials["property"] == name], max(n_resamples, n_boot), seed, name)
    meth = transfer_method(t, method, name)
    tr = t[t["method"] == meth]
    ok_tr = tr[np.isfinite(tr["mae"])]
    m_values = sorted(ok_tr["m"].unique()) or sorted(tr["m"].unique())
    n_values = sorted(ok_tr["n"].unique()) or sorted(tr["n"].unique())
    m_max, n_max = float(m_values[-1]), float(n_values[-1])
    out: dict[str, Any] = {"unit": unit, "method": meth, "trials": resamples.n_trials,
                           "replicates": resamples.n_replicates, "bootstrap": resamples.scheme}
    warnings: list[dict[str, str]] = []

    fit_n = fit_curve(t, resamples, meth, "n", m_max, n_boot=n_boot, ci=confidence, space=space, seed=seed, key=name)
    out["law_n"] = {"m": m_max, **fit_n.to_dict()}
    for w in fit_n.warnings:
        warnings.append({"about": "law_n", "message": w})
    if not fit_n.has_params:
        log.warning("%s: the fit of R(n) failed: %s", name, fit_n.message)
    if resamples.n_trials < 2:
        warnings.append({"about": "intervals", "message": "one trial: no intervals and no verdicts (the spread "
                         "between trials is unknown); run more trials (protocol.trials)"})
    elif resamples.n_replicates < FEW_REPLICATES:
        warnings.append({"about": "intervals", "message": (
            f"{resamples.n_replicates} pretraining replicate{'s' if resamples.n_replicates > 1 else ''}: the "
            "variation between pretrainings is " + ("not resampled (the intervals rely on the lack of fit to "
                                                    "include it)" if resamples.n_replicates == 1 else
                                                    "estimated from few draws") +
            "; set protocol.pretrain_replicates: per_trial for calibrated intervals")})

    # backtest: does the law, fitted without the largest n, predict the held-out means?
    if fit_n.has_params:
        x, values = law_values(t, resamples, meth, "n", m_max)
        keep = np.isfinite(values).any(axis=0)
        out["backtest"] = backtest(x[keep], values[:, keep], resamples, n_boot=n_boot, ci=confidence, space=space,
                                   generator=rng(seed, "bootstrap", "backtest", name))
        for rec in out["backtest"]:
            if rec.get("all_inside") is False:
                missed = [p for p in rec["points"] if p["inside"] is False]
                warnings.append({"about": "backtest", "message": (
                    f"the law fitted up to n = {rec['fitted_x_max']:g} misses the observed mean at n = "
                    + ", ".join(f"{p['x']:g} (predicted {p['predicted']:.4g}, observed {p['observed']:.4g})"
                                for p in missed)
                    + ": extrapolations beyond the largest n (required n, plans) are not supported by the data")})

    # transfer against the references, paired by trial
    references: dict[str, list[dict[str, Any]]] = {}
    for ref in REFERENCE_METHODS:
        ref_rows = t[(t["method"] == ref) & np.isfinite(t["mae"])]
        if ref_rows.empty:
            continue
        on_sim_rows = ref == "simulation"
        rows = []
        for m in m_values:
            for n in n_values:
                if tr[np.isclose(tr["n"], n) & np.isclose(tr["m"], m)].empty:
                    continue
                c = compare(t, resamples, meth, ref, n, m, ci=confidence,
                            value_first="mae_sim_rows" if on_sim_rows and "mae_sim_rows" in t.columns else "mae")
                c["verdict"] = _verdict(c["difference"], "transfer", ref)
                rows.append(c)
        if on_sim_rows and "direct" in set(t["method"]) and "mae_sim_rows" in t.columns:
            for m in m_values:
                c = compare(t, resamples, "direct", ref, 0.0, m, ci=confidence, value_first="mae_sim_rows")
                c["verdict"] = _verdict(c["difference"], "direct", ref)
                c["first"] = "direct"
                rows.append(c)
        references[ref] = rows
    if references:
        out["references"] = _finite_or_none(references)
    if "direct" in references:
        comparison = [{"n": c["n"], "m": c["m"], "transfer_mae": c[f"{meth}_mae"], "direct_mae": c["direct_mae"],
                       "difference": {**c["difference"], "transfer_better": c["difference"]["first_better"],
                                      "direct_better": c["difference"]["second_better"]},
                       "verdict": c["verdict"]} for c in references["direct"]]
        out["transfer_vs_direct"] = _finite_or_none(comparison)
        at_m = [c for c in comparison if c["m"] == m_max]
        verdicts = [c["difference"]["transfer_better"] for c in at_m]
        out["transfer_beats_direct_at_every_n"] = (None if not at_m or any(v is None for v in verdicts)
                                                   else all(verdicts))

    fit_m: PowerLawFit | None = None
    surface: SurfaceFit | None = None
    best_plan: Plan | None = None
    rate: MarginalRate | None = None
    if len(m_values) >= 2:
        fit_m = fit_curve(t, resamples, meth, "m", n_max, n_boot=n_boot, ci=confidence, space=space, seed=seed,
                          key=name)
        out["law_m"] = {"n": n_max, **fit_m.to_dict(), "equation": fit_m.equation(var="m")}
        for w in fit_m.warnings:
            warnings.append({"about": "law_m", "message": w})
        surface = _fit_surface(t, resamples, meth, n_boot=n_boot, ci=confidence, space=space, seed=seed, key=name)
        out["surface"] = surface.to_dict()
        for w in surface.warnings:
            warnings.append({"about": "surface", "message": w})
        if surface.ok and surface.holds:
            rate = marginal_rate_surface(surface, n_max, m_max)
        else:
            # the paper's fallback where the surface does not describe the data: 1-D gradients
            rate = marginal_rate_1d(fit_n, fit_m, n_max, m_max)
        out["marginal_rate"] = rate.to_dict()
        if plan and surface.ok:
            target = plan.get("target_mae") or float(np.nanmin(ok_tr.groupby(["n", "m"])["mae"].mean()))
            if surface.holds:
                best_plan = plan_for_target(surface, target, cost_sim=plan["cost_simulation"],
                                            cost_exp=plan["cost_experiment"])
                out["plan"] = best_plan.to_dict()
                if best_plan.message:
                    warnings.append({"about": "plan", "message": best_plan.message})
            else:
                out["plan"] = {"feasible": False, "target": target, "recommended": False,
                               "message": "no plan: the surface does not describe the data ("
                                          + surface.holds_explanation + ")"}
                warnings.append({"about": "plan", "message": out["plan"]["message"]})
    else:
        out["rate_note"] = (f"no rate of substitution: every trial used the same number of experiments "
                            f"(m = {m_max:g}), so the data say nothing about dR/dm; put several values on the "
                            "m grid (properties.<property>.grid_m, e.g. [0.25, 0.5, 1.0]) to measure it")

    group_results: dict[str, Any] = {}
    scalings: dict[str, GroupScaling] = {}
    g = groups[groups["property"] == name] if not groups.empty else groups
    if not g.empty:
        g = g.copy()
        g["method"] = g["method"].astype(str).map(canonical_method)
        g["mae"] = pd.to_numeric(g["mae"], errors="coerce")
    for group_by in sorted(g["group_by"].astype(str).unique()) if not g.empty else []:
        try:
            scaling = fit_group_scaling(g, property=name, group_by=group_by, m=m_max, method=meth,
                                        n_boot=min(n_boot, 100), seed=seed, ci=confidence, space=space,
                                        resamples=resamples)
            group_results[group_by] = {"m": scaling.m, "table": _finite_or_none(
                scaling.table.to_dict(orient="records"))}
            scalings[group_by] = scaling
        except TableError as exc:
            group_results[group_by] = {"error": str(exc)}
    if group_results:
        out["groups"] = group_results
    out["warnings"] = warnings
    return PropertyAnalysis(record=out, law_n=fit_n, law_m=fit_m, surface=surface, plan=best_plan, rate=rate,
                            groups=scalings, method=meth)


def _fit_surface(t: pd.DataFrame, resamples: TrialResamples, method: str, *, n_boot: int, ci: float, space: str,
                 seed: int, key: str) -> SurfaceFit:
    rows = t[t["method"] == method]
    grid = rows[["n", "m"]].drop_duplicates().sort_values(["n", "m"])
    points = [(method, float(n), float(m)) for n, m in grid.itertuples(index=False, name=None)]
    values = value_matrix(rows, resamples, points, ["method", "n", "m"])
    keep = np.isfinite(values).any(axis=0)
    n = np.array([p[1] for p in points])[keep]
    m = np.array([p[2] for p in points])[keep]
    return fit_surface_trials(n, m, values[:, keep], resamples, n_boot=n_boot, ci=ci, space=space,
                              generator=rng(seed, "bootstrap", "surface", key))


def analyse_study(settings: Mapping[str, Any], trials: pd.DataFrame,
                  groups: pd.DataFrame) -> tuple[dict[str, Any], dict[str, PropertyAnalysis]]:
    """``(fits.json content, property -> PropertyAnalysis)`` for the properties in ``settings``."""
    analysis = settings["analysis"]
    record: dict[str, Any] = {"study": settings.get("study"), "confidence": analysis["confidence"],
                              "fit_space": analysis["fit_space"], "fit_bootstrap": analysis["fit_bootstrap"],
                              "bootstrap_resamples": analysis.get("bootstrap_resamples", 2000),
                              "seed": settings["seed"], "properties": {}}
    results: dict[str, PropertyAnalysis] = {}
    for name, prop in settings["properties"].items():
        log.info("fitting %s", name)
        results[name] = analyse_property(
            name, trials, groups, confidence=analysis["confidence"], n_boot=analysis["fit_bootstrap"],
            seed=settings["seed"], space=analysis["fit_space"], unit=prop.get("unit") or "",
            plan=analysis.get("plan"), n_resamples=analysis.get("bootstrap_resamples", 2000))
        record["properties"][name] = results[name].record
    return record, results
