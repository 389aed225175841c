"""``sim2real-scaling``: fit and use Sim2Real scaling laws from any ``summary.csv``.

Subcommands (``sim2real-scaling <cmd> --help`` for every option):

* ``fit``        the 1-D law R(n) = D n^-alpha + C (or R(m) with ``--in m``), or the surface
                 R(n, m) = (A n^-alpha + B) m^-beta + eps with ``--surface``;
* ``rate``       marginal rate of substitution: simulations worth one experiment at (n, m);
* ``required-n`` simulated samples needed for a target MAE at fixed m;
* ``plan``       cheapest (n, m) for a target MAE, or lowest MAE for a budget;
* ``groups``     per-group scaling table from ``group_trials.csv``;
* ``backtest``   refit without the largest n (and the two largest) and check the predictions.

The first argument is a ``summary.csv`` or a study's results folder (``results/<study>`` or
``results/<study>/analysis/<property>``): a folder gives its summary.csv and trials.csv and, from
``run/config.resolved.yaml``, the study's seed and analysis settings, so the answers equal the workflow's
(fits.json). The defaults are the workflow's: the paired cluster bootstrap over pretraining replicates and trials
(:mod:`sim2real_scaling.analysis.bootstrap`), 90% intervals, 200 refits, 2000 resamples, seed 0. Answers outside
the measured range are flagged; warnings are printed beside the numbers they qualify.

Prints an aligned table, or JSON with ``--json``. A bad table (missing columns, NaN means, one n
value, unknown property...) prints one ``sim2real-scaling: error: ...`` line and exits with 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim2real_scaling.analysis.backtest import backtest
from sim2real_scaling.analysis.bootstrap import TrialResamples, resamples_for, value_matrix
from sim2real_scaling.analysis.decisions import (
    MarginalRate,
    marginal_rate_1d,
    marginal_rate_surface,
    plan_for_budget,
    plan_for_target,
    required_n,
)
from sim2real_scaling.analysis.groups import fit_group_scaling
from sim2real_scaling.analysis.laws import PowerLawFit, _finite_or_none, fit_power_law_summary
from sim2real_scaling.analysis.study import fit_curve, law_values, property_rows
from sim2real_scaling.analysis.surface import SurfaceFit, fit_surface_summary, fit_surface_trials
from sim2real_scaling.analysis.tables import (
    TableError,
    curve,
    read_group_trials,
    read_summary,
    read_trials,
    select_property,
    summary_standard_errors,
    transfer_method,
)
from sim2real_scaling.contract import REFERENCE_METHODS, TRANSFER_METHODS
from sim2real_scaling.seeding import rng

PROG = "sim2real-scaling"


# ----------------------------------------------------------------------------------------------
# formatting
# ----------------------------------------------------------------------------------------------


def _fmt(v: Any, digits: int = 6) -> str:
    if v is None:
        return "-"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return "-"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.{digits}g}"
    return str(v)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in header]] + [[_fmt(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for k, r in enumerate(cells):
        parts = [c.ljust(w) if i == 0 or not _numeric_cell(c) else c.rjust(w)
                 for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(parts).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _numeric_cell(c: str) -> bool:
    try:
        float(c)
        return True
    except ValueError:
        return c in ("-", "inf", "-inf")


def _emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    if args.json:
        print(json.dumps(_finite_or_none(payload), indent=2, allow_nan=False))
    else:
        print(text)


def _ci_pct(ci: float) -> str:
    return f"{ci * 100:g}%"


# ----------------------------------------------------------------------------------------------
# loading and fitting
# ----------------------------------------------------------------------------------------------


#: the workflow's analysis defaults (config schema ``analysis`` and ``seed``)
DEFAULTS = {"seed": 0, "ci": 0.90, "n_boot": 200, "n_resamples": 2000, "space": "linear"}


def _study_settings(folder: Path) -> dict[str, Any]:
    """Seed and analysis settings of the study a results folder belongs to (its run/config.resolved.yaml)."""
    for base in (folder, *folder.parents[:3]):
        path = base / "run" / "config.resolved.yaml"
        if path.is_file():
            import yaml

            config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            analysis = config.get("analysis") or {}
            out = {"seed": config.get("seed"), "ci": analysis.get("confidence"),
                   "n_boot": analysis.get("fit_bootstrap"), "n_resamples": analysis.get("bootstrap_resamples"),
                   "space": analysis.get("fit_space"), "config": str(path)}
            return {k: v for k, v in out.items() if v is not None}
    return {}


def _resolve_inputs(args: argparse.Namespace, table: str = "summary") -> None:
    """A results folder as the first argument: its tables and the study's settings; then the defaults."""
    given = Path(getattr(args, table))
    settings: dict[str, Any] = {}
    if given.is_dir():
        names = {"summary": "summary.csv", "group_trials": "group_trials.csv"}
        path = given / names[table]
        if not path.is_file():
            raise TableError(f"{given}: is a folder without {names[table]} (give a results folder or a CSV file)")
        setattr(args, table, str(path))
        if table == "summary" and getattr(args, "trials", None) is None and (given / "trials.csv").is_file():
            args.trials = str(given / "trials.csv")
        settings = _study_settings(given)
    for key, default in DEFAULTS.items():
        if getattr(args, key, None) is None:
            setattr(args, key, settings.get(key, default))
    args.settings_from = settings.get("config")


def _load(args: argparse.Namespace) -> tuple[str, pd.DataFrame, pd.DataFrame | None]:
    _resolve_inputs(args)
    summary = read_summary(args.summary, drop_nan_mean=True)
    dropped = summary.attrs.get("dropped_lines") or []
    if dropped:
        raw = pd.read_csv(args.summary)
        rows = raw.iloc[[line - 2 for line in dropped]]
        # a reference with nothing to compare (the simulation where no test row has a simulated value) is
        # missing by design; anything else had every trial diverge
        by_design = rows["method"].astype(str).eq("simulation") & (
            pd.to_numeric(rows.get("failed", pd.Series(0, index=rows.index)), errors="coerce").fillna(0) == 0)
        diverged = [line for line, d in zip(dropped, by_design, strict=True) if not d]
        if diverged:
            print(f"{PROG}: note: {args.summary}: line(s) {', '.join(str(v) for v in diverged[:8])} have no mean "
                  "(every trial diverged there): left out", file=sys.stderr)
    prop, rows = select_property(summary, args.property, args.summary)
    trials_rows = None
    if getattr(args, "trials", None):
        trials = read_trials(args.trials)
        _, trials_rows = select_property(trials, prop, args.trials)
    return prop, rows, trials_rows


def _resamples(args: argparse.Namespace, prop: str, trials: pd.DataFrame) -> TrialResamples:
    """The property's resamples, drawn as the workflow draws them (same seed, same count)."""
    cache = getattr(args, "_resamples", None)
    if cache is None or cache[0] != prop:
        res = resamples_for(trials, max(args.n_resamples, args.n_boot), args.seed, prop)
        args._resamples = (prop, res)
    return args._resamples[1]


def _fit_law(
    args: argparse.Namespace, rows: pd.DataFrame, trials: pd.DataFrame | None, vary: str,
    fixed: float | None, method: str | None = None, floor: bool | None = None,
) -> tuple[float, pd.DataFrame, PowerLawFit]:
    fixed_used, c = curve(rows, vary=vary, fixed=fixed, method=method, source=args.summary)
    method = str(c["method"].iloc[0])
    other = "m" if vary == "n" else "n"
    distinct = np.unique(c[vary].to_numpy(float))
    if distinct.size < 3:
        vals = ", ".join(f"{v:g}" for v in distinct)
        raise TableError(
            f"{args.summary}: property {c['property'].iloc[0]!r} ({method}, {other} = {fixed_used:g}) "
            f"has {'a single' if distinct.size == 1 else distinct.size} {vary} value"
            f"{'' if distinct.size == 1 else 's'} ({vals}); need at least 3 distinct {vary} to fit "
            "the scaling law"
        )
    if trials is not None:
        prop = str(c["property"].iloc[0])
        t = property_rows(trials, prop)
        resamples = _resamples(args, prop, trials)
        x, _ = law_values(t, resamples, method, vary, fixed_used)
        missing = sorted(set(distinct) - set(x))
        if missing:
            raise TableError(f"{args.trials}: no trials for property={prop}, method={method}, {vary}="
                             f"{missing[0]:g}, {other}={fixed_used:g}")
        fit = fit_curve(t, resamples, method, vary, fixed_used, n_boot=args.n_boot, ci=args.ci, space=args.space,
                        seed=args.seed, key=prop, floor=floor)
    else:
        fit = fit_power_law_summary(c[vary].to_numpy(float), c["mae_mean"].to_numpy(float), c["se"].to_numpy(float),
                                    n_boot=args.n_boot, seed=args.seed, ci=args.ci, space=args.space, floor=floor)
    return fixed_used, c, fit


def _fit_surf(
    args: argparse.Namespace, rows: pd.DataFrame, trials: pd.DataFrame | None
) -> tuple[pd.DataFrame, SurfaceFit]:
    method = transfer_method(rows, getattr(args, "method", None), args.summary)
    tr = rows[rows["method"] == method].sort_values(["n", "m"])
    dn, dm = tr["n"].nunique(), tr["m"].nunique()
    if dn < 3 or dm < 3:
        raise TableError(
            f"{args.summary}: property {tr['property'].iloc[0]!r} has {dn} distinct n and {dm} "
            f"distinct m among {method} rows; the surface needs at least 3 of each (put several values on the m "
            "grid, properties.<property>.grid_m, to measure R(n, m))"
        )
    n, m = tr["n"].to_numpy(float), tr["m"].to_numpy(float)
    if trials is not None:
        prop = str(tr["property"].iloc[0])
        t = property_rows(trials, prop)
        resamples = _resamples(args, prop, trials)
        points = [(method, float(a), float(b)) for a, b in zip(n, m, strict=True)]
        values = value_matrix(t[t["method"] == method], resamples, points, ["method", "n", "m"])
        empty = ~np.isfinite(values).any(axis=0)
        if empty.any():
            j = int(np.flatnonzero(empty)[0])
            raise TableError(f"{args.trials}: no trials for property={prop}, method={method}, n={n[j]:g}, "
                             f"m={m[j]:g}")
        fit = fit_surface_trials(n, m, values, resamples, n_boot=args.n_boot, ci=args.ci, space=args.space,
                                 generator=rng(args.seed, "bootstrap", "surface", prop))
    else:
        fit = fit_surface_summary(n, m, tr["mae_mean"].to_numpy(float), summary_standard_errors(tr),
                                  n_boot=args.n_boot, seed=args.seed, ci=args.ci, space=args.space)
    return tr, fit


def _require_ok(fit: PowerLawFit | SurfaceFit, what: str) -> None:
    if not fit.ok:
        raise TableError(f"{what} could not be fitted ({fit.status}): {fit.message}")


def _warning_lines(items: Sequence[str]) -> list[str]:
    seen: list[str] = []
    for w in items:
        if w and w not in seen:
            seen.append(w)
    return [f"WARNING: {w}" for w in seen]


def _law_text(prop: str, what: str, fit: PowerLawFit, var: str) -> str:
    ci = _ci_pct(fit.ci_level)
    headline = ("no scaling detected" if fit.status == "no_scaling" else
                f"the law {'with a floor C' if fit.floor else 'without a floor (C = 0)'}, as BIC prefers")
    lines = [
        f"property: {prop}   law: {what}",
        f"points: {fit.n_points}, space: {fit.space}, "
        f"{'generalised least squares (covariance of the paired means)' if fit.weighted else 'unweighted'}, "
        f"bootstrap: {fit.bootstrap} ({fit.n_boot} refits; {fit.trials} trials, {fit.replicates} replicates)",
        f"{fit.equation(var=var)}   ({headline})",
        "",
        _table(
            ["parameter", "value", f"{ci} CI low", f"{ci} CI high"],
            [[p, getattr(fit, p), *getattr(fit, f"{p}_ci")] for p in ("D", "alpha", "C")],
        ),
        "",
        _table(
            ["model", "AIC", "BIC"],
            [["with floor C", fit.aic, fit.bic], ["no floor (C = 0)", fit.aic_no_floor, fit.bic_no_floor]],
        ),
        f"delta (floor - no floor): AIC {_fmt(fit.delta_aic)}, BIC {_fmt(fit.delta_bic)}; "
        f"preferred by BIC: {fit.preferred or '-'}, by AIC: {fit.preferred_aic or '-'}",
        f"chi2/dof under the trials' covariance: "
        f"{_fmt(fit.chi2_design / fit.dof if fit.dof > 0 else math.nan)} (p = {_fmt(fit.p_value, 2)})   "
        f"status: {fit.status}",
        *_warning_lines(fit.warnings),
    ]
    # the message joins the warnings with "; " (some of which hold "; " themselves): a part that belongs to a
    # warning printed above is not a note
    notes = [m for m in fit.message.split("; ") if m and not any(m in w for w in fit.warnings)]
    if notes:
        lines.append("note: " + "; ".join(notes))
    return "\n".join(lines)


def _surface_text(prop: str, fit: SurfaceFit) -> str:
    ci = _ci_pct(fit.ci_level)
    lines = [
        f"property: {prop}   surface: R(n, m) = (A n^-alpha + B) m^-beta + eps",
        f"points: {fit.n_points}, space: {fit.space}, "
        f"{'generalised least squares' if fit.weighted else 'unweighted'}, bootstrap: {fit.bootstrap}"
        f" ({fit.n_boot} refits)",
        fit.equation(),
        "",
        _table(
            ["parameter", "value", f"{ci} CI low", f"{ci} CI high"],
            [[p, getattr(fit, p), *getattr(fit, f"{p}_ci")] for p in ("A", "alpha", "B", "beta", "eps")],
        ),
        "",
        f"R^2: {_fmt(fit.r2)}   chi2/dof: {_fmt(fit.chi2_dof)}   residual RMS / mean SE: "
        f"{_fmt(fit.rms_over_se)}   runs test p: {_fmt(fit.runs_p)}",
        f"holds: {_fmt(fit.holds)} - {fit.holds_explanation}",
        f"status: {fit.status}",
        *_warning_lines(fit.warnings),
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# subcommands
# ----------------------------------------------------------------------------------------------


def _cmd_fit(args: argparse.Namespace) -> int:
    prop, rows, trials = _load(args)
    if args.surface:
        _, surf = _fit_surf(args, rows, trials)
        if args.plot:
            from sim2real_scaling.report.figures import plot_surface_curves

            plot_surface_curves(rows, surf, prop, out=args.plot, unit=args.unit, source=args.source_label)
        _emit(args, {"property": prop, "kind": "surface", "fit": surf.to_dict(), "warnings": surf.warnings},
              _surface_text(prop, surf))
        return 0 if surf.ok else 1
    vary = args.vary
    fixed = args.m if vary == "n" else args.n
    method = args.method
    if vary == "n" and method in REFERENCE_METHODS:
        raise TableError(f"{method} has no n (a reference at n = 0): use --in m with --method {method}")
    if vary == "m" and method in REFERENCE_METHODS:
        fixed = 0.0
    floor = {"auto": None, "yes": True, "no": False}[args.floor]
    if args.no_floor:
        floor = False
    fixed_used, c, fit = _fit_law(args, rows, trials, vary, fixed, method, floor=floor)
    method = str(c["method"].iloc[0])
    other = "m" if vary == "n" else "n"
    what = f"R({vary}) = D {vary}^-alpha + C at {other} = {fixed_used:g} ({method})"
    if args.plot and vary == "n":
        from sim2real_scaling.report.figures import plot_scaling_curve

        plot_scaling_curve(rows, fit, prop, fixed_used, out=args.plot, unit=args.unit, source=args.source_label)
    _emit(args, {"property": prop, "kind": "law", "vary": vary, other: fixed_used, "method": method,
                 "fit": fit.to_dict(), "warnings": fit.warnings, "settings": _settings_record(args)},
          _law_text(prop, what, fit, vary))
    return 0 if fit.has_params else 1


def _settings_record(args: argparse.Namespace) -> dict[str, Any]:
    return {"seed": args.seed, "ci": args.ci, "n_boot": args.n_boot, "n_resamples": args.n_resamples,
            "space": args.space, "from": getattr(args, "settings_from", None)}


def _cmd_backtest(args: argparse.Namespace) -> int:
    prop, rows, trials = _load(args)
    if trials is None:
        raise TableError("backtest needs the trials table (--trials TRIALS_CSV, or a results folder)")
    m, c, fit = _fit_law(args, rows, trials, "n", args.m, args.method)
    method = str(c["method"].iloc[0])
    t = property_rows(trials, prop)
    resamples = _resamples(args, prop, trials)
    x, values = law_values(t, resamples, method, "n", m)
    keep = np.isfinite(values).any(axis=0)
    tests = backtest(x[keep], values[:, keep], resamples, n_boot=args.n_boot, ci=args.ci, space=args.space,
                     generator=rng(args.seed, "bootstrap", "backtest", prop))
    ci = _ci_pct(args.ci)
    table_rows = []
    for rec in tests:
        for p in rec["points"]:
            table_rows.append([rec["fitted_x_max"], p["x"], p["predicted"], *p["interval"], p["observed"],
                               "n/a" if p["inside"] is None else ("yes" if p["inside"] else "NO")])
    lines = [f"property: {prop}   law R(n) at m = {m:g} ({method}), all n: {fit.equation('n')}",
             "refitted without the largest n (and the two largest); the interval is for the observed mean",
             "", _table(["fitted up to n", "held-out n", "predicted", f"{ci} low", f"{ci} high", "observed",
                         "inside"], table_rows)]
    missed = [rec for rec in tests if rec.get("all_inside") is False]
    if missed:
        lines.append("WARNING: the law misses held-out means: extrapolations beyond the largest n (required n, "
                     "plans) are not supported by these data")
    elif tests and all(rec.get("all_inside") for rec in tests):
        lines.append("every held-out mean lies inside its interval")
    _emit(args, {"property": prop, "m": m, "method": method, "backtest": tests, "fit": fit.to_dict()},
          "\n".join(lines))
    return 0


def _nearest(values: np.ndarray, v: float) -> float:
    return float(values[np.argmin(np.abs(np.log(values) - math.log(v)))])


def _rate_text(prop: str, rate: MarginalRate, extra: list[str]) -> str:
    ci = _ci_pct(rate.ci_level)
    rows = [
        ["dR/dn (per simulation)", rate.dR_dn, *rate.dR_dn_ci],
        ["dR/dm (per experiment)", rate.dR_dm, *rate.dR_dm_ci],
        ["dm/dn", rate.dm_dn, *rate.dm_dn_ci],
        ["simulations per experiment", rate.sims_per_experiment, *rate.sims_per_experiment_ci],
    ]
    lines = [f"property: {prop}   at n = {rate.n:g}, m = {rate.m:g}   gradients from: {rate.source}",
             *extra, "", _table(["quantity", "value", f"{ci} CI low", f"{ci} CI high"], rows)]
    if rate.message:
        lines.append(f"WARNING: {rate.message}")
    return "\n".join(lines)


def _cmd_rate(args: argparse.Namespace) -> int:
    prop, rows, trials = _load(args)
    tr = rows[rows["method"] == transfer_method(rows, args.method, args.summary)]
    n = float(tr["n"].max()) if args.n is None else float(args.n)
    m = float(tr["m"].max()) if args.m is None else float(args.m)
    if n <= 0 or m <= 0:
        raise TableError("--n and --m must be > 0")
    extra: list[str] = []
    payload: dict[str, Any] = {"property": prop}
    surf = None
    if tr["m"].nunique() < 2:
        raise TableError(f"{args.summary}: property {prop!r} has one m (m = {tr['m'].iloc[0]:g}): every trial used "
                         "the same number of experiments, so the data say nothing about dR/dm and there is no rate "
                         "of substitution; put several values on the m grid (properties.<property>.grid_m, e.g. "
                         "[0.25, 0.5, 1.0]) to measure it")
    if args.source in ("auto", "surface"):
        if args.source == "auto" and (tr["n"].nunique() < 3 or tr["m"].nunique() < 3):
            extra.append("surface not fitted (fewer than 3 distinct n or m): using 1-D fits")
        else:
            _, surf = _fit_surf(args, rows, trials)
            _require_ok(surf, "the surface")
            payload["surface"] = surf.to_dict()
            extra.append(f"surface: {surf.equation()}  (holds: {_fmt(surf.holds)})")
    if surf is not None and (surf.holds or args.source == "surface"):
        rate = marginal_rate_surface(surf, n, m, ci=args.ci)
    else:
        if surf is not None:
            extra.append(f"surface rejected: {surf.holds_explanation}")
        m_grid = _nearest(np.unique(tr["m"].to_numpy(float)), m)
        n_grid = _nearest(np.unique(tr["n"].to_numpy(float)), n)
        _, _, fit_n = _fit_law(args, rows, trials, "n", m_grid, args.method)
        _, _, fit_m = _fit_law(args, rows, trials, "m", n_grid, args.method)
        _require_ok(fit_n, f"R(n) at m = {m_grid:g}")
        _require_ok(fit_m, f"R(m) at n = {n_grid:g}")
        extra.append(f"R(n) at m = {m_grid:g}: {fit_n.equation('n')}")
        extra.append(f"R(m) at n = {n_grid:g}: {fit_m.equation('m', lhs='MAE')}")
        payload["law_n"] = {"m": m_grid, **fit_n.to_dict()}
        payload["law_m"] = {"n": n_grid, **fit_m.to_dict()}
        rate = marginal_rate_1d(fit_n, fit_m, n, m, ci=args.ci)
    payload["rate"] = rate.to_dict()
    payload["warnings"] = [rate.message] if rate.message else []
    _emit(args, payload, _rate_text(prop, rate, extra))
    return 0


def _cmd_required_n(args: argparse.Namespace) -> int:
    prop, rows, trials = _load(args)
    notes: list[str] = []
    if args.surface:
        tr, surf = _fit_surf(args, rows, trials)
        _require_ok(surf, "the surface")
        m = float(tr["m"].max()) if args.m is None else float(args.m)
        res = required_n(surf, args.target, m, ci=args.ci)
        law = surf.law_at_m(m)
        source = f"surface {surf.equation()} at m = {m:g} (holds: {_fmt(surf.holds)})"
        fit_dict: dict[str, Any] = surf.to_dict()
        notes += surf.warnings
    else:
        m, _, law = _fit_law(args, rows, trials, "n", args.m, args.method)
        if law.status == "no_scaling":
            notes.append(law.message)
        else:
            _require_ok(law, f"R(n) at m = {m:g}")
        res = required_n(law, args.target, ci=args.ci)
        source = f"1-D law at m = {m:g}: {law.equation('n')}"
        fit_dict = law.to_dict()
        notes += law.warnings
    if res.message:
        notes.insert(0, res.message)
    ci = _ci_pct(res.ci_level)
    text = "\n".join([
        f"property: {prop}   target MAE: {args.target:g}   m = {m:g}",
        f"from {source}",
        "",
        _table(["quantity", "value", f"{ci} CI low", f"{ci} CI high"],
               [["required n", res.value, res.ci_low, res.ci_high],
                ["floor C at this m", law.C, *law.C_ci]]),
        f"reachable: {_fmt(res.reachable)}   fraction of bootstrap samples where reachable: "
        f"{_fmt(res.reachable_fraction)}   measured n: {_fmt(law.x_min)} to {_fmt(law.x_max)}"
        + (f" (the answer lies {res.measured} it)" if res.measured in ("below", "above") else ""),
        *_warning_lines(notes),
    ])
    _emit(args, {"property": prop, "m": m, "required_n": res.to_dict(), "fit": fit_dict, "warnings": notes}, text)
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    prop, rows, trials = _load(args)
    tr, surf = _fit_surf(args, rows, trials)
    _require_ok(surf, "the surface")
    if not surf.holds and not args.allow_rejected_surface:
        print(_surface_text(prop, surf), file=sys.stderr)
        raise TableError(f"no plan: the surface does not describe the data ({surf.holds_explanation}); a plan from it "
                         "would be no recommendation (--allow-rejected-surface computes one anyway, marked as such)")
    kw = dict(cost_sim=args.cost_sim, cost_exp=args.cost_exp, n_min=args.n_min, n_max=args.n_max,
              m_min=args.m_min, m_max=args.m_max, ci=args.ci)
    if args.target is not None:
        plan = plan_for_target(surf, args.target, **kw)
        head = f"cheapest (n, m) for target MAE {args.target:g}"
    else:
        plan = plan_for_budget(surf, args.budget, **kw)
        head = f"lowest MAE for budget {args.budget:g}"
    ci = _ci_pct(plan.ci_level)
    rows_out = [
        ["n (simulations)", plan.n, *plan.n_ci, plan.n_int],
        ["m (experiments)", plan.m, *plan.m_ci, plan.m_int],
        ["cost", plan.cost, *plan.cost_ci, plan.cost_int],
        ["MAE", plan.mae, *plan.mae_ci, plan.mae_int],
    ]
    lines = [
        f"property: {prop}   {head}   cost per simulation {args.cost_sim:g}, per experiment "
        f"{args.cost_exp:g}",
        f"surface: {surf.equation()}",
    ]
    if not surf.holds:
        lines.append(f"WARNING: not a recommendation: {surf.holds_explanation}")
    lines += [
        "",
        _table(["quantity", "optimum", f"{ci} CI low", f"{ci} CI high", "whole samples"], rows_out),
        f"feasible: {_fmt(plan.feasible)}   feasible in bootstrap surfaces: "
        f"{_fmt(plan.feasible_fraction)}   tangency (dR/dn)/(dR/dm) / (c_n/c_m): {_fmt(plan.tangency)}"
        + (f"   at bounds: {', '.join(plan.bound)}" if plan.bound else ""),
    ]
    if plan.message:
        lines.append(f"WARNING: {plan.message}")
    if args.plot:
        from sim2real_scaling.report.figures import plot_indifference_curves

        plot_indifference_curves(surf, out=args.plot, plan=plan, unit=args.unit, source=args.source_label)
    _emit(args, {"property": prop, "plan": plan.to_dict(), "surface": surf.to_dict()},
          "\n".join(lines))
    return 0 if plan.feasible else 1


def _cmd_groups(args: argparse.Namespace) -> int:
    _resolve_inputs(args, "group_trials")
    gt = read_group_trials(args.group_trials)
    res = fit_group_scaling(gt, property=args.property, group_by=args.group_by, m=args.m, method=args.method,
                            n_boot=args.n_boot, seed=args.seed, ci=args.ci, space=args.space,
                            n_resamples=args.n_resamples, source=args.group_trials)
    table = res.table if args.top is None else res.table.head(args.top)
    if args.plot:
        from sim2real_scaling.report.figures import plot_group_panels

        plot_group_panels(res, out=args.plot, unit=args.unit, source=args.source_label)
    ci = _ci_pct(args.ci)
    rows = [[int(r["rank"]) if r["status"] == "ok" else "-", r["group"], r["alpha"], r["alpha_ci_low"],
             r["alpha_ci_high"], r["C"], r["C_ci_low"], r["C_ci_high"], r["D"], r["mae_at_max_n"], r["mae_direct"],
             {"ok": "ok", "no_scaling": "no scaling detected",
              "too_few_rows": "too few test rows to rank"}.get(r["status"], r["status"])]
            for _, r in table.iterrows()]
    text = "\n".join([
        f"property: {res.property}   groups by: {res.group_by}   m = {res.m:g}   "
        f"{len(res.table)} groups, ranked by alpha (largest first; no scaling detected, then failed fits, last)",
        "",
        _table(["rank", "group", "alpha", f"alpha {ci} low", "high", "C", f"C {ci} low", "high",
                "D", "MAE at max n", "MAE direct", "status"], rows),
    ])
    records = [{k: v for k, v in r.items()} for r in table.to_dict(orient="records")]
    _emit(args, {"property": res.property, "group_by": res.group_by, "m": res.m, "groups": records},
          text)
    return 0


# ----------------------------------------------------------------------------------------------
# parser
# ----------------------------------------------------------------------------------------------


def _positive_int(s: str) -> int:
    v = int(s)
    if v < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return v


def _level(s: str) -> float:
    v = float(s)
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1 (e.g. 0.9)")
    return v


def _positive_float(s: str) -> float:
    v = float(s)
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError("must be a positive number")
    return v


class _HelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` unless the help already speaks of a default or X is None/False."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "default" not in text
            and action.default is not None
            and action.default is not False
            and action.default is not argparse.SUPPRESS
            and action.option_strings
        ):
            text += " (default: %(default)s)"
        return text


def _add_plot_options(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--plot", metavar="STEM", default=None, help=f"also write {what} to STEM.png and STEM.svg")
    p.add_argument("--unit", default=None, help="property unit for plot labels, e.g. 'g/cm^3'")
    p.add_argument("--source-label", default="simulated samples",
                   help="what one source row is, for the n axis (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``sim2real-scaling`` (all options documented in ``--help``)."""
    fmt = _HelpFormatter
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Fit and use the scaling law of Sim2Real transfer learning (Minami et al. 2025) from a\n"
            "summary.csv (columns property, method, n, m, mae_mean, mae_ci_low, mae_ci_high, trials;\n"
            "method = finetune | multitask | feature_extraction | affine (n > 0; the older 'transfer' =\n"
            "finetune) or a reference direct | simulation (n = 0)) and its trials.csv, or a study's results\n"
            "folder (then with the study's seed and settings: the workflow's numbers). n = simulated (source)\n"
            "samples, m = experimental training samples, MAE in the property's own units. Intervals: the\n"
            "paired bootstrap over pretraining replicates and trials (docs/analysis.md)."
        ),
        epilog="Run '%(prog)s <command> --help' for the options of a command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="command")

    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("data and statistics")
    g.add_argument("--property", metavar="NAME", default=None,
                   help="property to analyse (required when the table holds several)")
    g.add_argument("--n-boot", type=_positive_int, default=None, metavar="B",
                   help="bootstrap refits for the intervals (0: none; default: the study's analysis.fit_bootstrap "
                        "from a results folder, else 200)")
    g.add_argument("--n-resamples", type=_positive_int, default=None, metavar="R",
                   help="resamples of the trials (the covariance of the means; default: the study's "
                        "analysis.bootstrap_resamples, else 2000)")
    g.add_argument("--seed", type=int, default=None,
                   help="seed of the resampling (default: the study's seed from a results folder, else 0)")
    g.add_argument("--ci", type=_level, default=None, metavar="LEVEL",
                   help="level of the percentile intervals (default: the study's analysis.confidence, else 0.9)")
    g.add_argument("--space", choices=("linear", "log"), default=None,
                   help="fit residuals of MAE or of log(MAE) (default: the study's analysis.fit_space, else linear)")
    g.add_argument("--method", choices=(*TRANSFER_METHODS, *REFERENCE_METHODS, "transfer"), default=None,
                   help="the method to fit (default: the transfer method present; 'transfer' = finetune)")
    g.add_argument("--json", action="store_true", help="print JSON instead of a table")
    g.add_argument("--debug", action="store_true", help="show Python tracebacks instead of one-line errors")

    data = argparse.ArgumentParser(add_help=False)
    d = data.add_argument_group("input")
    d.add_argument("summary", metavar="SUMMARY_CSV_OR_RESULTS",
                   help="summary.csv of the output contract, or a results folder (results/<study> or "
                        "results/<study>/analysis/<property>: its tables and the study's settings)")
    d.add_argument("--trials", metavar="TRIALS_CSV", default=None,
                   help="trials.csv (property, method, n, m, trial, replicate, mae): intervals from the paired "
                        "bootstrap over replicates and trials (the workflow's); without it a parametric bootstrap "
                        "from the SEs of the summary that takes the points as independent")

    p = sub.add_parser("fit", parents=[data, common], formatter_class=fmt,
                       help="fit the 1-D law or the surface",
                       description="Fit R(x) = D x^-alpha + C with x = n at fixed m (default) or "
                                   "x = m at fixed n, or the surface R(n, m) = (A n^-alpha + B) "
                                   "m^-beta + eps (--surface). Reports parameters, intervals, "
                                   "AIC/BIC against the law without floor, and goodness of fit.")
    p.add_argument("--in", dest="vary", choices=("n", "m"), default="n",
                   help="which size varies: n (simulated samples, at fixed --m) or m (experimental "
                        "samples, at fixed --n)")
    p.add_argument("--m", type=_positive_float, default=None, metavar="M",
                   help="fixed number of experimental samples for --in n (default: largest m)")
    p.add_argument("--n", type=_positive_float, default=None, metavar="N",
                   help="fixed number of simulated samples for --in m (default: largest n)")
    p.add_argument("--surface", action="store_true", help="fit the 2-D surface instead")
    p.add_argument("--floor", choices=("auto", "yes", "no"), default="auto",
                   help="report the law BIC prefers (auto), the law with a floor C, or without (C = 0)")
    p.add_argument("--no-floor", action="store_true", help="same as --floor no")
    _add_plot_options(p, "a figure")
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser("rate", parents=[data, common], formatter_class=fmt,
                       help="simulations worth one experiment (marginal rate of substitution)",
                       description="Marginal rate of substitution at (n, m): dm/dn = -(dR/dn)/(dR/dm) "
                                   "and simulations worth one experiment = (dR/dm)/(dR/dn), from "
                                   "the surface or, when it does not hold, from 1-D fits R(n) at "
                                   "the m nearest to --m and R(m) at the n nearest to --n.")
    p.add_argument("--n", type=_positive_float, default=None, metavar="N",
                   help="simulated samples where the rate is taken (default: largest n)")
    p.add_argument("--m", type=_positive_float, default=None, metavar="M",
                   help="experimental samples where the rate is taken (default: largest m)")
    p.add_argument("--from", dest="source", choices=("auto", "surface", "1d"), default="auto",
                   help="gradients from the surface, the 1-D fits, or the surface when it holds")
    p.set_defaults(func=_cmd_rate)

    p = sub.add_parser("required-n", parents=[data, common], formatter_class=fmt,
                       help="simulated samples needed for a target MAE",
                       description="n needed to reach a target MAE at fixed m: (D/(target - C))^"
                                   "(1/alpha), with a bootstrap interval; unreachable when the "
                                   "target is at or below the floor C.")
    p.add_argument("--target", type=_positive_float, required=True, metavar="MAE",
                   help="target MAE in the property's units")
    p.add_argument("--m", type=_positive_float, default=None, metavar="M",
                   help="experimental samples (default: largest m; any m with --surface)")
    p.add_argument("--surface", action="store_true",
                   help="use the surface's law at m instead of the 1-D fit at m")
    p.set_defaults(func=_cmd_required_n)

    p = sub.add_parser("plan", parents=[data, common], formatter_class=fmt,
                       help="cheapest (n, m) for a target, or lowest MAE for a budget",
                       description="Budget planner on the fitted surface: with cost per simulation "
                                   "and per experiment (same currency), the cheapest (n, m) with "
                                   "R(n, m) <= --target, or the lowest R(n, m) with cost <= "
                                   "--budget. Intervals from the bootstrap surfaces.")
    p.add_argument("--cost-sim", type=_positive_float, required=True, metavar="C_N",
                   help="cost of one simulation (any currency)")
    p.add_argument("--cost-exp", type=_positive_float, required=True, metavar="C_M",
                   help="cost of one experiment (same currency)")
    goal = p.add_mutually_exclusive_group(required=True)
    goal.add_argument("--target", type=_positive_float, metavar="MAE",
                      help="target MAE in the property's units")
    goal.add_argument("--budget", type=_positive_float, metavar="COST",
                      help="total budget in the cost currency")
    p.add_argument("--n-min", type=_positive_float, default=1.0, help="smallest n allowed")
    p.add_argument("--n-max", type=_positive_float, default=None,
                   help="largest n allowed, e.g. the database size (default: unbounded)")
    p.add_argument("--m-min", type=_positive_float, default=1.0, help="smallest m allowed")
    p.add_argument("--m-max", type=_positive_float, default=None,
                   help="largest m allowed (default: unbounded)")
    p.add_argument("--allow-rejected-surface", action="store_true",
                   help="plan even when the surface does not describe the data (the plan is then marked as no "
                        "recommendation)")
    _add_plot_options(p, "indifference curves")
    p.set_defaults(func=_cmd_plan)

    p = sub.add_parser("groups", parents=[common], formatter_class=fmt,
                       help="per-group scaling table from group_trials.csv",
                       description="Fit R(n) = D n^-alpha + C per group (transfer rows at fixed m) "
                                   "with trial-resampling intervals and rank the groups by alpha.")
    p.add_argument("group_trials", metavar="GROUP_TRIALS_CSV_OR_RESULTS",
                   help="group_trials.csv (property, method, n, m, trial, group_by, group, mae, count) or a results "
                        "folder")
    p.add_argument("--group-by", default=None, metavar="KIND",
                   help="grouping to use when several are present (e.g. class, compound)")
    p.add_argument("--m", type=_positive_float, default=None, metavar="M",
                   help="fixed experimental samples (default: largest m)")
    p.add_argument("--top", type=_positive_int, default=None, metavar="K",
                   help="print only the K best-ranked groups (default: all)")
    _add_plot_options(p, "small multiples")
    p.set_defaults(func=_cmd_groups)

    p = sub.add_parser("backtest", parents=[data, common], formatter_class=fmt,
                       help="does the law predict the largest n when fitted without it?",
                       description="Refit R(n) without the largest n (and without the two largest), predict the "
                                   "held-out mean MAE with an interval that includes its own noise, and say whether "
                                   "the observed mean falls inside: how far extrapolations (required n, plans) may "
                                   "be trusted. Needs the trials table.")
    p.add_argument("--m", type=_positive_float, default=None, metavar="M",
                   help="fixed experimental samples (default: largest m)")
    p.set_defaults(func=_cmd_backtest)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sim2real-scaling`` console script; returns the exit status.

    0: success; 1: the analysis ran but failed (fit not possible, plan infeasible);
    2: usage error or bad input table (one-line message on stderr).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or usage error (2)
        return int(exc.code) if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return int(args.func(args))
    except (TableError, ValueError, OSError) as exc:
        if getattr(args, "debug", False):
            raise
        msg = " ".join(str(exc).split())
        print(f"{PROG}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
