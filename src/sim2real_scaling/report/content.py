"""What the report says, in one place: the study page (Markdown and HTML, same content), a page per property,
and the figures of a property.

The page is built as a list of blocks (heading, paragraph, table, figure) rendered twice, so the Markdown and
HTML versions never disagree. Every warning stands next to the number it qualifies: a poor fit or extra scatter
beside the law, an extrapolation beside required n and the plan, a rejected surface instead of a plan, too few
replicates beside the intervals. The headline law is the one model selection (BIC) prefers; a law at a bound of
its parameters reads "no scaling detected" and is never ranked as a scaling law.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sim2real_scaling.contract import METHOD_LABELS, canonical_method
from sim2real_scaling.io import read_json, write_text

__all__ = ["Block", "study_problems", "build_blocks", "property_blocks", "to_markdown", "to_html", "write_report",
           "write_property_page", "draw_property_figures", "read_data_checks"]


@dataclass
class Block:
    kind: str  # heading | text | table | figure | warning
    content: Any
    level: int = 2


FIT_FAILURES = ("failed", "invalid_input")
FITS = (("law_n", "R(n)"), ("law_m", "R(m)"), ("surface", "R(n, m)"))


def study_problems(trials: pd.DataFrame, fits: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """``(problems, notes)`` of a finished study: problems make it incomplete, notes do not.

    Diverged trials and failed fits are problems; a simulation reference that has no simulated values to use
    (status ``no_reference``), a grid too small for a fit and a law with no scaling are notes.
    """
    problems: list[str] = []
    notes: list[str] = []
    status = trials["status"].astype(str) if "status" in trials.columns else pd.Series([], dtype=str)
    bad = trials[status == "diverged"] if len(status) else trials.iloc[:0]
    if len(bad):
        points = bad.groupby(["property", "method", "n", "m"]).size()
        shown = ", ".join(f"{p} {method} n={n:g} m={m:g}: {k}" for (p, method, n, m), k in points.head(4).items())
        more = f" and {len(points) - 4} more points" if len(points) > 4 else ""
        problems.append(
            f"{len(bad)} of {len(trials)} trials diverged (NaN loss or MAE at {shown}{more}; lower "
            f"model.finetune.lr / model.direct.lr or the epochs, then rerun with --forcerun transfer direct)"
        )
    for name, record in (fits.get("properties") or {}).items():
        for key, label in FITS:
            fit = record.get(key)
            if not isinstance(fit, Mapping) or fit.get("status", "ok") == "ok":
                continue
            if fit.get("status") in FIT_FAILURES:
                problems.append(f"the fit of {label} for {name} failed ({fit.get('status')}: {fit.get('message')})")
            else:  # a design too small for the law, or a law that does not decay: said, not a failure
                notes.append(f"the fit of {label} for {name}: {fit.get('status')} ({fit.get('message')})")
    return problems, notes


def _count(value: Any) -> str:
    """A count of rows, in full (17,670 rather than 1.767e+04)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{float(value):,.0f}"


def fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _interval(low: Any, high: Any) -> str:
    if low is None and high is None:
        return "(no interval)"
    return f"[{fmt(low)}, {fmt(high)}]"


def _unit(unit: str) -> str:
    from sim2real_scaling.report.figures import typeset_unit

    return typeset_unit(unit) or ""


def _warnings_about(rec: Mapping[str, Any], *about: str) -> list[str]:
    return [w["message"] for w in rec.get("warnings") or [] if w.get("about") in about]


def _warning_blocks(messages: Sequence[str]) -> list[Block]:
    seen: list[str] = []
    for m in messages:
        if m and m not in seen:
            seen.append(m)
    return [Block("warning", m) for m in seen]


def _law_blocks(law: Mapping[str, Any], var: str, what: str, rec: Mapping[str, Any], about: str) -> list[Block]:
    blocks: list[Block] = []
    status = law.get("status")
    if status in FIT_FAILURES or status == "too_few_points":
        blocks.append(Block("text", f"**The fit of {what} could not be made** ({status}): {law.get('message')}"))
        return blocks
    level = law.get("ci_level", 0.9)
    floor = law.get("floor", True)
    chosen = ("with a floor C" if floor else "without a floor (C = 0: the data show no floor)")
    bic = f"BIC {fmt(law.get('bic'))} with a floor, {fmt(law.get('bic_no_floor'))} without"
    if status == "no_scaling":
        blocks.append(Block("text", f"**No scaling detected** in {what}: the fitted law does not decay over the "
                                    f"measured range ({law.get('equation', '')}); its parameters are at a bound and "
                                    "say nothing about how the error falls."))
    else:
        blocks.append(Block("text", f"Fitted law {what}: **{law.get('equation', '')}**, the law {chosen} that "
                                    f"model selection prefers ({bic}; {law.get('n_points')} points, "
                                    f"{law.get('space', 'linear')}-space generalised least squares with the "
                                    "covariance of the paired means)."))
    rows = [["parameter", "estimate", f"{level:.0%} bootstrap interval (the uncertainty to quote)"]]
    for p in ("D", "alpha", "C"):
        if p == "C" and not floor:
            rows.append(["C", "0 (no floor)", f"{_interval(*(law.get('C_ci') or [None, None]))} over resamples "
                                                "(each selects its own law)"])
            continue
        name = f"alpha (the exponent of {var})" if p == "alpha" and var != "n" else p
        rows.append([name, fmt(law.get(p), 6), _interval(*(law.get(f"{p}_ci") or [None, None]))])
    blocks.append(Block("table", rows))
    quality = []
    if law.get("weighted") and (law.get("dof") or 0) <= 0:
        quality.append(f"{law.get('n_points')} points for {law.get('n_points', 0) - (law.get('dof') or 0)} "
                       "parameters: no degrees of freedom left to test the fit")
    elif law.get("weighted"):
        quality.append(f"chi2/dof = {fmt((law.get('chi2_design') or math.nan) / max(law.get('dof') or 1, 1), 3)} "
                       f"under the trials' covariance (p = {fmt(law.get('p_value'), 2)})")
        if (law.get("tau2") or 0) > 0:
            quality.append(f"extra scatter between points {fmt(law.get('tau2'), 3)} x their own variance, "
                           "included in the intervals")
    intervals = (f"intervals from {law.get('n_boot')} refits ({law.get('bootstrap')}; {law.get('trials')} trials, "
                 f"{law.get('replicates')} pretraining replicates at the sparsest point)")
    if not law.get("n_boot"):
        intervals = "no intervals"
    blocks.append(Block("text", "; ".join(quality + [intervals]) + "."))
    blocks += _warning_blocks(_warnings_about(rec, about))
    return blocks


def _backtest_blocks(rec: Mapping[str, Any]) -> list[Block]:
    tests = rec.get("backtest")
    if tests is None:
        return []
    if not tests:
        return [Block("heading", "Extrapolation check (backtest)", 3),
                Block("text", f"Not possible here: refitting without the largest n needs at least 4 other values of "
                              f"n, and the law was fitted to {rec['law_n'].get('n_points')}. Answers beyond the "
                              "largest n measured (required n, plans) are extrapolations nothing here checks.")]
    blocks = [Block("heading", "Extrapolation check (backtest)", 3),
              Block("text", "The law refitted without the largest n (and without the two largest) predicts the "
                            "held-out mean MAE; the interval combines the refit's uncertainty and the held-out "
                            "mean's own noise. A law that misses one step beyond its data should not be "
                            "extrapolated further (required n, plans).")]
    rows = [["fitted up to n", "held-out n", "predicted", "90% interval for the observed mean", "observed",
             "inside?"]]
    for t in tests:
        for p in t.get("points") or []:
            rows.append([fmt(t.get("fitted_x_max")), fmt(p.get("x")), fmt(p.get("predicted")),
                         _interval(*(p.get("interval") or [None, None])), fmt(p.get("observed")),
                         "n/a" if p.get("inside") is None else ("yes" if p["inside"] else "**no**")])
        if not t.get("points"):
            rows.append([fmt(t.get("fitted_x_max")), "-", "-", "-", "-", f"refit: {t.get('status')}"])
    blocks.append(Block("table", rows))
    blocks += _warning_blocks(_warnings_about(rec, "backtest"))
    return blocks


def _reference_blocks(rec: Mapping[str, Any], u: str) -> list[Block]:
    refs = rec.get("references") or {}
    blocks: list[Block] = []
    method = rec.get("method", "finetune")
    label = METHOD_LABELS.get(method, method)
    if "direct" in refs:
        rows = [["n", "m", f"{label} MAE{u}", f"direct MAE{u}", "transfer - direct (paired, 90% CI)", "verdict"]]
        for c in refs["direct"]:
            d = c["difference"]
            rows.append([fmt(c["n"]), fmt(c["m"]), fmt(c.get(f"{method}_mae")), fmt(c.get("direct_mae")),
                         f"{fmt(d.get('mean'))} {_interval(d.get('ci_low'), d.get('ci_high'))}",
                         c.get("verdict", "") + (f" ({d['note']})" if d.get("note") else "")])
        every = rec.get("transfer_beats_direct_at_every_n")
        m_max = rec.get("law_n", {}).get("m")
        several_m = len({c["m"] for c in refs["direct"]}) > 1
        at = f" at the largest m ({fmt(m_max)})" if several_m else ""
        blocks.append(Block("heading", "Transfer against direct learning", 3))
        summary = (f"Transfer learning beats direct learning at every n{at}." if every else
                   "No verdict: the comparison needs at least two trials." if every is None else
                   f"Transfer learning does **not** beat direct learning at every n{at}.")
        blocks.append(Block("text", "Differences are paired by trial (the same split for both methods). " + summary))
        blocks.append(Block("table", rows))
    if "simulation" in refs:
        blocks.append(Block("heading", "Against the simulation itself", 3))
        blocks.append(Block("text", "The simulated value, linearly recalibrated on each trial's training rows, is a "
                                    "predictor too. Both are measured on the same test rows (those with a simulated "
                                    "value), paired by trial: does learning beat running the simulation?"))
        rows = [["method", "n", "m", f"its MAE on those rows{u}", f"simulation MAE{u}", "difference (90% CI)",
                 "verdict"]]
        for c in refs["simulation"]:
            d = c["difference"]
            first = c.get("first", method)
            rows.append([METHOD_LABELS.get(first, first), fmt(c["n"]), fmt(c["m"]), fmt(c.get("first_mae")),
                         fmt(c.get("second_mae")), f"{fmt(d.get('mean'))} {_interval(d.get('ci_low'), d.get('ci_high'))}",
                         c.get("verdict", "") + (f" ({d['note']})" if d.get("note") else "")])
        blocks.append(Block("table", rows))
    return blocks


def _surface_blocks(name: str, rec: Mapping[str, Any], figures: Mapping[str, list[str]], fig_dir: str) -> list[Block]:
    blocks: list[Block] = []
    if "surface" not in rec:
        if rec.get("rate_note"):
            blocks.append(Block("heading", "Rate of substitution", 3))
            blocks.append(Block("text", rec["rate_note"] + "."))
        return blocks
    s = rec["surface"]
    blocks.append(Block("heading", "Two-dimensional scaling R(n, m)", 3))
    if "law_m" in rec:
        blocks += _law_blocks(rec["law_m"], "m", f"R(m) at n = {fmt(rec['law_m'].get('n'))}", rec, "law_m")
    if f"{name}_surface" in figures:
        blocks.append(Block("figure", (f"{fig_dir}/{figures[f'{name}_surface'][0]}",
                                       "Mean MAE against n at every m (90% CI bands); the fitted surface dashed")))
    if s.get("status") == "ok":
        if s.get("holds"):
            blocks.append(Block("text", f"Surface: **{s.get('equation')}**; it describes the data "
                                        f"({s.get('holds_explanation', '').split(': ', 1)[-1]})."))
        else:
            blocks.append(Block("text", f"Surface fitted as {s.get('equation')}, but **rejected**: "
                                        f"{s.get('holds_explanation')}. It yields no plan."))
    else:
        blocks.append(Block("text", f"The surface fit failed ({s.get('status')}): {s.get('message')}"))
    blocks += _warning_blocks([w for w in _warnings_about(rec, "surface") if not w.startswith("surface rejected")])
    rate = rec.get("marginal_rate")
    if rate:
        source = "surface" if rate["source"] == "surface" else "two 1-D laws (the surface does not hold)"
        blocks.append(Block("text", f"Marginal rate of substitution at n = {fmt(rate['n'])}, m = {fmt(rate['m'])} "
                                    f"(from the {source}): one experiment is worth **{fmt(rate['sims_per_experiment'])} "
                                    f"simulations**, {rate.get('ci_level', 0.9):.0%} interval "
                                    f"{_interval(*(rate.get('sims_per_experiment_ci') or [None, None]))}; "
                                    f"dR/dn = {fmt(rate['dR_dn'])}, dR/dm = {fmt(rate['dR_dm'])}."))
        if rate.get("message"):
            blocks.append(Block("warning", rate["message"]))
    if f"{name}_indifference" in figures:
        blocks.append(Block("figure", (f"{fig_dir}/{figures[f'{name}_indifference'][0]}",
                                       "Indifference curves R(n, m) = r of the surface, with the plan")))
    plan = rec.get("plan")
    if plan:
        if plan.get("recommended", True) and plan.get("feasible"):
            blocks.append(Block("text", f"Budget plan for MAE <= {fmt(plan.get('target'))}: n = {fmt(plan.get('n_int'))} "
                                        f"{_interval(*(plan.get('n_ci') or [None, None]))}, m = {fmt(plan.get('m_int'))} "
                                        f"{_interval(*(plan.get('m_ci') or [None, None]))}, cost {fmt(plan.get('cost'))} "
                                        f"{_interval(*(plan.get('cost_ci') or [None, None]))}."))
            if plan.get("message"):
                blocks.append(Block("warning", plan["message"]))
        elif not plan.get("recommended", True):
            blocks.append(Block("warning", plan.get("message") or "no plan"))
        else:
            blocks.append(Block("text", f"Budget plan for MAE <= {fmt(plan.get('target'))}: not feasible "
                                        f"({plan.get('message')})."))
    return blocks


def _group_blocks(name: str, rec: Mapping[str, Any], figures: Mapping[str, list[str]], fig_dir: str) -> list[Block]:
    blocks: list[Block] = []
    for group_by, g in (rec.get("groups") or {}).items():
        blocks.append(Block("heading", f"Scaling per {group_by}", 3))
        if "error" in g:
            blocks.append(Block("text", f"Per-group fits could not be made: {g['error']}"))
            continue
        key = f"{name}_groups_{group_by}"
        pages = [k for k in figures if k == key or k.startswith(f"{key}_p")]
        for k in sorted(pages, key=lambda s: (len(s), s)):
            blocks.append(Block("figure", (f"{fig_dir}/{figures[k][0]}", f"Scaling per {group_by}, ranked by alpha")))
        blocks.append(Block("text", "Ranked by alpha among the groups whose law decays and that were tested often "
                                    "enough (at least 30 test rows over the trials at the largest n, in at least "
                                    "half of the trials); groups with no scaling (a parameter at its bound), too few "
                                    "test rows or failed fits follow, unranked as scaling laws."))
        rows = [["rank", group_by, "alpha [90% CI]", "C [90% CI]", "MAE at largest n", "direct MAE", "trials",
                 "test rows", "verdict"]]
        for r in g["table"]:
            status = r.get("status")
            verdict = {"ok": "scales", "no_scaling": "no scaling detected",
                       "too_few_rows": "too few test rows to rank"}.get(
                status, f"no fit ({status})")
            alpha = (f"{fmt(r.get('alpha'))} {_interval(r.get('alpha_ci_low'), r.get('alpha_ci_high'))}"
                     if status == "ok" else "-")
            c = f"{fmt(r.get('C'))} {_interval(r.get('C_ci_low'), r.get('C_ci_high'))}" if status == "ok" else "-"
            rows.append([fmt(r.get("rank")) if status == "ok" else "-", str(r.get("group")), alpha, c,
                         fmt(r.get("mae_at_max_n")), fmt(r.get("mae_direct")), fmt(r.get("trials")),
                         _count(r.get("test_rows")), verdict])
        blocks.append(Block("table", rows))
    return blocks


def read_data_checks(prepared_dir: str | Path | None, checks: str | Path | None = None,
                     qc: str | Path | None = None) -> dict[str, Any]:
    """What the input checks found for one property: ``checks`` (prepared/<p>/checks.json: a list of
    ``{level, code, message}``), ``qc`` (prepared/<p>/qc.csv rows: flagged outliers and unit slips) and
    ``rejected`` (rows of rejected.csv). Files that are absent give empty entries."""
    base = Path(prepared_dir) if prepared_dir else None
    out: dict[str, Any] = {"checks": [], "qc": [], "rejected": 0}
    checks_path = Path(checks) if checks else (base / "checks.json" if base else None)
    if checks_path and checks_path.is_file():
        data = json.loads(checks_path.read_text(encoding="utf-8"))
        items = data if isinstance(data, list) else data.get("checks") or data.get("warnings") or []
        items = [i if isinstance(i, Mapping) else {"level": "note", "message": str(i)} for i in items]
        order = {"error": 0, "warning": 1}
        out["checks"] = sorted(items, key=lambda i: order.get(str(i.get("level")), 2))  # warnings first
    qc_path = Path(qc) if qc else (base / "qc.csv" if base else None)
    if qc_path and qc_path.is_file():
        try:
            out["qc"] = pd.read_csv(qc_path, keep_default_na=False).to_dict(orient="records")
        except pd.errors.EmptyDataError:
            out["qc"] = []
    rejected = base / "rejected.csv" if base else None
    if rejected and rejected.is_file():
        try:
            out["rejected"] = len(pd.read_csv(rejected))
        except pd.errors.EmptyDataError:
            out["rejected"] = 0
    return out


def _data_blocks(name: str, data: Mapping[str, Any]) -> list[Block]:
    blocks: list[Block] = []
    checks, qc, rejected = data.get("checks") or [], data.get("qc") or [], data.get("rejected") or 0
    blocks.append(Block("heading", "Data checks", 3))
    if not (checks or qc or rejected):
        blocks.append(Block("text", "The input checks found nothing to report, the data QC flagged no row (outliers, "
                                    "values in other units, experiments that disagree with their own simulation; "
                                    f"prepared/{name}/qc.csv) and no input row was rejected."))
        return blocks
    if not qc:
        blocks.append(Block("text", "The data QC flagged no row (outliers, values in other units, experiments that "
                                    f"disagree with their own simulation; prepared/{name}/qc.csv)."))
    for c in checks:
        level = str(c.get("level", "note"))
        text = f"{c.get('message')}" + (f" ({c.get('code')})" if c.get("code") else "")
        blocks.append(Block("warning" if level in ("warning", "error") else "text", text))
    if qc:
        dropped = sum(str(r.get("action", "")) == "dropped" for r in qc)
        kept = sum(str(r.get("action", "")) == "kept" for r in qc)
        if dropped:
            what = f"{dropped} of them left out of training and testing (qc.action: drop)" + (
                f", {kept} kept" if kept else "")
        elif kept == len(qc):
            what = "all of them kept in training and testing (qc.action: flag): check them"
        else:  # a qc.csv without its action column (written before it had one): say so, do not guess
            what = ("qc.csv does not record whether they were kept or left out (it predates that column; "
                    "rerun the design with --forcerun design)")
        blocks.append(Block("warning", f"{len(qc)} rows flagged by the data QC (an outlier of its table on the "
                                       "transformed scale, a value in other units, or an experimental value that "
                                       "disagrees with its own simulated value far more than the other materials' "
                                       f"do), {what}; prepared/{name}/qc.csv lists them:"))
        rows = [["table", "file", "row", "key", "value", "check", "action", "reason"]]
        for r in qc[:50]:
            rows.append([str(r.get(k, "")) for k in ("table", "file", "row", "key", "value", "check", "action",
                                                     "reason")])
        if len(qc) > 50:
            rows.append(["...", "", "", "", "", "", "", f"{len(qc) - 50} more in qc.csv"])
        blocks.append(Block("table", rows))
    if rejected:
        blocks.append(Block("text", f"{rejected} input rows were rejected while preparing {name}; "
                                    f"see prepared/{name}/rejected.csv for file, row and reason."))
    return blocks


def property_blocks(name: str, rec: Mapping[str, Any], figures: Mapping[str, list[str]], fig_dir: str = "figures",
                    data: Mapping[str, Any] | None = None, level: int = 2) -> list[Block]:
    """The report section of one property (also a page of its own for the native report)."""
    unit = _unit(rec.get("unit") or "")
    u = f" ({unit})" if unit else ""
    blocks = [Block("heading", f"Property: {name}{u}", level)]
    # what qualifies every interval of this property comes first
    blocks += _warning_blocks(_warnings_about(rec, "intervals"))
    # the data the numbers come from: what the checks found, what the QC left out
    blocks += _data_blocks(name, data or {})
    law = rec["law_n"]
    refs = [r for r in ("direct", "simulation") if r in (rec.get("references") or {})]
    if f"{name}_scaling" in figures:
        shown = {"direct": "direct learning", "simulation": "the simulation itself"}
        lines = (f", the references ({' and '.join(shown[r] for r in refs)}) as horizontal lines" if refs else "")
        blocks.append(Block("figure", (f"{fig_dir}/{figures[f'{name}_scaling'][0]}",
                                       f"{name}: mean test MAE against n (90% band of the mean), the fitted law "
                                       f"dashed with its band and the alpha interval{lines}")))
    blocks += _law_blocks(law, "n", f"R(n) at m = {fmt(law.get('m'))}", rec, "law_n")
    blocks += _backtest_blocks(rec)
    blocks += _reference_blocks(rec, u)
    if "simulation" not in refs:
        blocks.append(Block("text", "No simulation reference: no target material of this property has a simulated "
                                    "value in the source table (matched by canonical key), so the simulation cannot be "
                                    "compared with experiment here (trials.csv: method simulation, status "
                                    "no_reference)."))
    blocks += _surface_blocks(name, rec, figures, fig_dir)
    blocks += _group_blocks(name, rec, figures, fig_dir)
    return blocks


def build_blocks(config: Mapping[str, Any], fits: Mapping[str, Any], trials: pd.DataFrame,
                 data: Mapping[str, Mapping[str, Any]], environment: Mapping[str, Any],
                 fig_dir: str = "figures") -> list[Block]:
    """The study page: a heading, what is incomplete, the protocol, every property, the files."""
    protocol = config["protocol"]
    blocks = [Block("heading", f"Sim2Real scaling study: {config['study']}", 1)]
    if "synthetic" in config:
        blocks.append(Block("text", "**Synthetic data.** This study runs on the embedded synthetic benchmark: real "
                                    "polymer repeat units with made-up property values (see the README). Its numbers "
                                    "say that the workflow works, not anything about real materials."))
    status = trials["status"].astype(str) if "status" in trials.columns else pd.Series(["ok"] * len(trials))
    failed = int((status == "diverged").sum())
    problems, _ = study_problems(trials, fits)
    if problems:
        blocks.append(Block("warning", "This study is incomplete: " + "; ".join(problems) + ". Below is what "
                                       "finished (diverged trials are left out of the means); the workflow's exit "
                                       "status is non-zero."))
    replicates = protocol.get("pretrain_replicates", 1)
    blocks.append(Block("text", f"{protocol['trials']} trials per point, test fraction {protocol['test_fraction']}, "
                                f"pretraining replicates: {replicates}, descriptor `{config['descriptor']['set']}`, "
                                f"seed {config['seed']}. {len(trials)} trainings recorded, {failed} diverged (left "
                                "out of the means). Every interval is a 90% bootstrap interval over pretraining "
                                "replicates and the trials within them, paired across n, m and methods."))
    figures = fits.get("figures", {})
    for name, rec in fits["properties"].items():
        blocks.extend(property_blocks(name, rec, figures, fig_dir, data.get(name)))
    blocks.append(Block("heading", "Files", 2))
    blocks.append(Block("text", "`trials.csv` (one row per trial), `summary.csv` (means with 90% bootstrap CIs), "
                                "`fits.json` (every fitted parameter, unrounded, with the warnings), "
                                "`group_trials.csv`, `figures/`, `run/config.resolved.yaml` and "
                                "`run/environment.json`."))
    versions = ", ".join(f"{k} {v}" for k, v in (environment.get("packages") or {}).items() if v)
    blocks.append(Block("text", f"Made with Python {environment.get('python')}; {versions}."))
    return blocks


def to_markdown(blocks: Sequence[Block]) -> str:
    out = []
    for b in blocks:
        if b.kind == "heading":
            out.append("#" * b.level + " " + b.content)
        elif b.kind == "text":
            out.append(b.content)
        elif b.kind == "warning":
            out.append(f"> **Warning:** {b.content}")
        elif b.kind == "figure":
            path, caption = b.content
            out.append(f"![{caption}]({path})")
        elif b.kind == "table":
            header, *rows = b.content
            out.append("| " + " | ".join(header) + " |")
            out.append("|" + "---|" * len(header))
            out.extend("| " + " | ".join(r) + " |" for r in rows)
        out.append("")
    return "\n".join(out)


def _inline(text: str) -> str:
    import re

    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


def _image_source(path: str, base: Path | None) -> str:
    """The figure as a data URI (PNG, base64) when it can be read from ``base``, so the page stands alone (also
    inside Snakemake's report archive); else the relative link."""
    import base64

    if base is not None:
        file = base / path
        if file.is_file():
            return "data:image/png;base64," + base64.b64encode(file.read_bytes()).decode("ascii")
    return path


def to_html(blocks: Sequence[Block], title: str, base: str | Path | None = None) -> str:
    """The page as HTML; with ``base`` (the folder the figure paths are relative to) the figures are embedded."""
    base = Path(base) if base is not None else None
    body = []
    for b in blocks:
        if b.kind == "heading":
            body.append(f"<h{b.level}>{html.escape(b.content)}</h{b.level}>")
        elif b.kind == "text":
            body.append(f"<p>{_inline(b.content)}</p>")
        elif b.kind == "warning":
            body.append(f'<p class="warning"><strong>Warning:</strong> {_inline(b.content)}</p>')
        elif b.kind == "figure":
            path, caption = b.content
            body.append(f'<figure><img src="{html.escape(_image_source(path, base))}" alt="{html.escape(caption)}">'
                        f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        elif b.kind == "table":
            header, *rows = b.content
            cells = "".join(f"<th>{html.escape(h)}</th>" for h in header)
            trs = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in rows)
            body.append(f"<table><thead><tr>{cells}</tr></thead><tbody>{trs}</tbody></table>")
    style = ("body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}"
             "table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}td,th{border:1px solid #ccc;padding:.25rem .5rem}"
             "th{background:#f3f3f3}img{max-width:100%}figcaption{font-size:.85rem;color:#555}"
             ".warning{background:#fff4e5;border-left:4px solid #e67e22;padding:.4rem .6rem}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, (str, Path)) else [str(v) for v in value]


def _data_by_property(inputs: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per property, the data checks (checks.json, qc.csv, rejected.csv) of the prepared folders the inputs name."""
    folders = {Path(p).parent.name: Path(p).parent for p in _as_list(inputs.get("rejected"))}
    checks = {Path(p).parent.name: p for p in _as_list(inputs.get("checks"))}
    qc = {Path(p).parent.name: p for p in _as_list(inputs.get("qc"))}
    return {name: read_data_checks(folder, checks.get(name), qc.get(name)) for name, folder in folders.items()}


def write_report(config: Mapping[str, Any], inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> None:
    """The study page (``outputs["markdown"]``, ``outputs["html"]``) from fits.json, trials.csv, the environment and
    the prepared folders' checks (``inputs["rejected"]``, and ``inputs["checks"]`` / ``inputs["qc"]`` where the rule
    declares them; otherwise the files beside rejected.csv are read when present)."""
    fits = read_json(inputs["fits"])
    trials = pd.read_csv(inputs["trials"], keep_default_na=False, na_values=["", "nan", "NaN"])
    environment = read_json(inputs["environment"])
    fig_dir = Path(inputs["figures"]).name
    blocks = build_blocks(config, fits, trials, _data_by_property(inputs), environment, fig_dir)
    write_text(to_markdown(blocks), outputs["markdown"])
    write_text(to_html(blocks, f"Sim2Real scaling: {config['study']}", base=Path(inputs["figures"]).parent),
               outputs["html"])


def write_property_page(name: str, fits: Mapping[str, Any], outputs: Mapping[str, Any], *, fig_dir: str = "figures",
                        prepared_dir: str | Path | None = None, checks: str | Path | None = None,
                        qc: str | Path | None = None) -> None:
    """One property's page (``outputs["markdown"]`` and/or ``outputs["html"]``) from its fits.json: the same blocks
    as its section of the study page (for a per-property page of the native report)."""
    rec = fits["properties"][name]
    blocks = property_blocks(name, rec, fits.get("figures", {}), fig_dir, read_data_checks(prepared_dir, checks, qc),
                             level=1)
    if "markdown" in outputs:
        write_text(to_markdown(blocks), outputs["markdown"])
    if "html" in outputs:
        write_text(to_html(blocks, f"Sim2Real scaling: {name}", base=Path(outputs["html"]).parent), outputs["html"])


def draw_property_figures(name: str, result: Any, summary: pd.DataFrame, figures: Path, *, unit: str | None,
                          source: str) -> dict[str, list[str]]:
    """Draw one property's figures into ``figures`` (PNG + SVG); returns figure key -> paths.

    Keys (file stems): ``<p>_scaling``; with an m grid ``<p>_surface`` and, for a surface that holds,
    ``<p>_indifference``; per group column ``<p>_groups_<column>`` and further pages ``<p>_groups_<column>_p2``...
    """
    from sim2real_scaling.report import figures as plots

    drawn: dict[str, list[str]] = {}
    rows = summary[summary["property"] == name].copy()
    rows["method"] = rows["method"].astype(str).map(canonical_method)
    m = result.record["law_n"]["m"]
    paths = plots.plot_scaling_curve(rows, result.law_n, name, m, out=figures / f"{name}_scaling", unit=unit,
                                     source=source)
    drawn[f"{name}_scaling"] = [str(p) for p in paths]
    if result.surface is not None:
        paths = plots.plot_surface_curves(rows, result.surface if result.surface.ok else None, name,
                                          out=figures / f"{name}_surface", unit=unit, source=source)
        drawn[f"{name}_surface"] = [str(p) for p in paths]
        if result.surface.ok and result.surface.holds:
            paths = plots.plot_indifference_curves(result.surface, out=figures / f"{name}_indifference",
                                                   plan=result.plan, unit=unit, source=source)
            drawn[f"{name}_indifference"] = [str(p) for p in paths]
    for group_by, scaling in result.groups.items():
        stem = f"{name}_groups_{group_by}"
        paths = plots.plot_group_panels(scaling, out=figures / stem, unit=unit, source=source)
        for p in paths:
            drawn.setdefault(Path(p).stem, []).append(str(p))
    return drawn
