"""The study report: one page (Markdown and HTML, same content) with the figures beside it.

The page is built as a list of blocks (heading, paragraph, table, figure) rendered twice, so the
Markdown and HTML versions never disagree.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from sim2real_scaling.io import read_json, write_text


@dataclass
class Block:
    kind: str  # heading | text | table | figure
    content: Any
    level: int = 2


FIT_FAILURES = ("failed", "invalid_input")
FITS = (("law_n", "R(n)"), ("law_m", "R(m)"), ("surface", "R(n, m)"))


def study_problems(trials: pd.DataFrame, fits: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """``(problems, notes)`` of a finished study: problems make it incomplete, notes do not."""
    problems: list[str] = []
    notes: list[str] = []
    bad = trials[trials["status"] != "ok"]
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
            text = f"the fit of {label} for {name} failed ({fit.get('status')}: {fit.get('message')})"
            (problems if fit.get("status") in FIT_FAILURES else notes).append(text)
    return problems, notes


def fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _interval(low: Any, high: Any) -> str:
    return f"[{fmt(low)}, {fmt(high)}]"


def _law_table(law: Mapping[str, Any]) -> list[list[str]]:
    rows = [["parameter", "estimate", f"{law.get('ci_level', 0.9):.0%} bootstrap interval", "bootstrap SD", "lmfit stderr"]]
    stderr = law.get("stderr") or {}
    for p in ("D", "alpha", "C"):
        ci = law.get(f"{p}_ci") or [None, None]
        rows.append([p, fmt(law.get(p), 6), _interval(*ci), fmt(law.get(f"{p}_sd")), fmt(stderr.get(p))])
    return rows


def _property_blocks(name: str, rec: Mapping[str, Any], summary: pd.DataFrame, figures: Mapping[str, list[str]],
                     rejected: int, fig_dir: str) -> list[Block]:
    unit = rec.get("unit") or ""
    u = f" ({unit})" if unit else ""
    blocks = [Block("heading", f"Property: {name}{u}", 2)]
    law = rec["law_n"]
    if f"{name}_scaling" in figures:
        blocks.append(Block("figure", (f"{fig_dir}/{figures[f'{name}_scaling'][0]}",
                                       f"{name}: mean test MAE against n (90% bootstrap band), fitted law dashed, "
                                       "direct learning as the horizontal line")))
    if law.get("status") == "ok":
        blocks.append(Block("text", f"Fitted law at m = {fmt(law.get('m'))}: **{law.get('equation', '')}** "
                                    f"({law.get('space', 'linear')}-space fit, {law.get('n_points')} points). "
                                    f"BIC prefers the law {'with' if law.get('preferred') == 'floor' else 'without'} "
                                    f"a floor (BIC {fmt(law.get('bic'))} with, {fmt(law.get('bic_no_floor'))} without)."))
        blocks.append(Block("table", _law_table(law)))
    else:
        blocks.append(Block("text", f"**The fit of R(n) failed** ({law.get('status')}): {law.get('message')}"))

    comparison = rec.get("transfer_vs_direct") or []
    if comparison:
        rows = [["n", "m", f"transfer MAE{u}", f"direct MAE{u}", "transfer - direct (paired, 90% CI)", "verdict"]]
        for c in comparison:
            d = c["difference"]
            verdict = ("transfer better" if d.get("transfer_better") else
                       "direct better" if d.get("direct_better") else "no clear difference")
            rows.append([fmt(c["n"]), fmt(c["m"]), fmt(c["transfer_mae"]), fmt(c["direct_mae"]),
                         f"{fmt(d.get('mean'))} {_interval(d.get('ci_low'), d.get('ci_high'))}", verdict])
        every = rec.get("transfer_beats_direct_at_every_n")
        blocks.append(Block("heading", "Transfer against direct learning", 3))
        blocks.append(Block("text", "Differences are paired by trial (the same split for both methods). "
                                    + ("Transfer learning beats direct learning at every n."
                                       if every else "Transfer learning does **not** beat direct learning at every n.")))
        blocks.append(Block("table", rows))

    if "surface" in rec:
        s = rec["surface"]
        blocks.append(Block("heading", "Two-dimensional scaling R(n, m)", 3))
        if f"{name}_surface" in figures:
            blocks.append(Block("figure", (f"{fig_dir}/{figures[f'{name}_surface'][0]}", "MAE against n at several m; fitted surface dashed")))
        if s.get("status") == "ok":
            verdict = "describes the data" if s.get("holds") else f"does NOT describe the data: {s.get('holds_explanation')}"
            blocks.append(Block("text", f"Surface: **{s.get('equation')}**; it {verdict}."))
        else:
            blocks.append(Block("text", f"The surface fit failed ({s.get('status')}): {s.get('message')}"))
        rate = rec.get("marginal_rate")
        if rate:
            blocks.append(Block("text", f"Marginal rate of substitution at n = {fmt(rate['n'])}, m = {fmt(rate['m'])} "
                                        f"(from the {'surface' if rate['source'] == 'surface' else '1-D gradients'}): "
                                        f"one experiment is worth **{fmt(rate['sims_per_experiment'])} simulations** "
                                        f"{_interval(*(rate.get('sims_per_experiment_ci') or [None, None]))}; "
                                        f"dR/dn = {fmt(rate['dR_dn'])}, dR/dm = {fmt(rate['dR_dm'])}."
                                        + (f" Note: {rate['message']}" if rate.get("message") else "")))
        if f"{name}_indifference" in figures:
            blocks.append(Block("figure", (f"{fig_dir}/{figures[f'{name}_indifference'][0]}", "Indifference curves R(n, m) = r")))
        plan = rec.get("plan")
        if plan:
            blocks.append(Block("text", f"Budget plan for MAE <= {fmt(plan.get('target'))}: n = {fmt(plan.get('n_int'))}, "
                                        f"m = {fmt(plan.get('m_int'))}, cost {fmt(plan.get('cost'))}"
                                        + ("" if plan.get("feasible") else f" (not feasible: {plan.get('message')})")))

    for group_by, g in (rec.get("groups") or {}).items():
        blocks.append(Block("heading", f"Scaling per {group_by}", 3))
        if "error" in g:
            blocks.append(Block("text", f"Per-group fits could not be made: {g['error']}"))
            continue
        key = f"{name}_groups_{group_by}"
        if key in figures:
            blocks.append(Block("figure", (f"{fig_dir}/{figures[key][0]}", f"Scaling per {group_by}, ranked by alpha")))
        rows = [["rank", group_by, "alpha [90% CI]", "C [90% CI]", "MAE at largest n", "direct MAE", "test trials", "status"]]
        for r in g["table"]:
            rows.append([fmt(r.get("rank")), str(r.get("group")), f"{fmt(r.get('alpha'))} {_interval(r.get('alpha_ci_low'), r.get('alpha_ci_high'))}",
                         f"{fmt(r.get('C'))} {_interval(r.get('C_ci_low'), r.get('C_ci_high'))}", fmt(r.get("mae_at_max_n")),
                         fmt(r.get("mae_direct")), fmt(r.get("trials")), str(r.get("status"))])
        blocks.append(Block("table", rows))
    if rejected:
        blocks.append(Block("text", f"{rejected} input rows were rejected while preparing {name}; "
                                    f"see prepared/{name}/rejected.csv for file, row and reason."))
    return blocks


def build_blocks(config: Mapping[str, Any], fits: Mapping[str, Any], summary: pd.DataFrame, trials: pd.DataFrame,
                 rejected: Mapping[str, int], environment: Mapping[str, Any], fig_dir: str = "figures") -> list[Block]:
    protocol = config["protocol"]
    blocks = [Block("heading", f"Sim2Real scaling study: {config['study']}", 1)]
    if "synthetic" in config:
        blocks.append(Block("text", "**Synthetic data.** This study runs on the embedded synthetic benchmark: real polymer "
                                    "repeat units with made-up property values (see the README). Its numbers say that the "
                                    "workflow works, not anything about real materials."))
    failed = int((trials["status"] != "ok").sum()) if "status" in trials else 0
    problems, _ = study_problems(trials, fits) if "status" in trials else ([], [])
    if problems:
        blocks.append(Block("text", "**This study is incomplete:** " + "; ".join(problems) + ". Below is what finished "
                                    "(diverged trials are left out of the means); the workflow's exit status is non-zero."))
    blocks.append(Block("text", f"{protocol['trials']} trials per point, test fraction {protocol['test_fraction']}, "
                                f"descriptor `{config['descriptor']['set']}`, seed {config['seed']}. "
                                f"{len(trials)} trainings recorded, {failed} diverged (left out of the means)."))
    figures = fits.get("figures", {})
    for name, rec in fits["properties"].items():
        blocks.extend(_property_blocks(name, rec, summary, figures, rejected.get(name, 0), fig_dir))
    blocks.append(Block("heading", "Files", 2))
    blocks.append(Block("text", "`trials.csv` (one row per trial), `summary.csv` (means with 90% bootstrap CIs), "
                                "`fits.json` (every fitted parameter, unrounded), `group_trials.csv`, `figures/`, "
                                "`run/config.resolved.yaml` and `run/environment.json`."))
    versions = ", ".join(f"{k} {v}" for k, v in (environment.get("packages") or {}).items() if v)
    blocks.append(Block("text", f"Made {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC with Python {environment.get('python')}; {versions}."))
    return blocks


def to_markdown(blocks: Sequence[Block]) -> str:
    out = []
    for b in blocks:
        if b.kind == "heading":
            out.append("#" * b.level + " " + b.content)
        elif b.kind == "text":
            out.append(b.content)
        elif b.kind == "figure":
            path, caption = b.content
            out.append(f"![{caption}]({path})")
        elif b.kind == "table":
            header, *rows = b.content
            out.append("| " + " | ".join(header) + " |")
            out.append("|" + "---|" * len(header))
            out.extend("| " + " | ".join(r) + " |" for r in rows)
            out[-1] += ""
        out.append("")
    return "\n".join(out)


def _inline(text: str) -> str:
    import re

    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


def to_html(blocks: Sequence[Block], title: str) -> str:
    body = []
    for b in blocks:
        if b.kind == "heading":
            body.append(f"<h{b.level}>{html.escape(b.content)}</h{b.level}>")
        elif b.kind == "text":
            body.append(f"<p>{_inline(b.content)}</p>")
        elif b.kind == "figure":
            path, caption = b.content
            body.append(f'<figure><img src="{html.escape(path)}" alt="{html.escape(caption)}">'
                        f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        elif b.kind == "table":
            header, *rows = b.content
            cells = "".join(f"<th>{html.escape(h)}</th>" for h in header)
            trs = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in rows)
            body.append(f"<table><thead><tr>{cells}</tr></thead><tbody>{trs}</tbody></table>")
    style = ("body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}"
             "table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}td,th{border:1px solid #ccc;padding:.25rem .5rem}"
             "th{background:#f3f3f3}img{max-width:100%}figcaption{font-size:.85rem;color:#555}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_report(config: Mapping[str, Any], inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> None:
    fits = read_json(inputs["fits"])
    summary = pd.read_csv(inputs["summary"])
    trials = pd.read_csv(inputs["trials"])
    environment = read_json(inputs["environment"])
    rejected = {}
    for path in inputs["rejected"] if not isinstance(inputs["rejected"], str) else [inputs["rejected"]]:
        rejected[Path(path).parent.name] = len(pd.read_csv(path))
    fig_dir = Path(inputs["figures"]).name
    blocks = build_blocks(config, fits, summary, trials, rejected, environment, fig_dir)
    write_text(to_markdown(blocks), outputs["markdown"])
    write_text(to_html(blocks, f"Sim2Real scaling: {config['study']}"), outputs["html"])
