"""Figures of the scaling analysis (PNG + SVG), in the style of the paper's Figs. 1b, 2, 5a/6e.

Every function takes an output path *stem* (``out/density_scaling``; a trailing ``.png``/``.svg``/
``.pdf`` is dropped), writes ``<stem>.png`` and ``<stem>.svg`` and returns both paths. Figures are
built on :class:`matplotlib.figure.Figure` with the Agg canvas, so the global pyplot backend and
state are never touched (safe in notebooks and in parallel Snakemake jobs). MAEs are plotted in the
property's units; pass ``unit`` to label the axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import LogFormatter, LogLocator

from sim2real_scaling.analysis.groups import GroupScaling
from sim2real_scaling.analysis.decisions import Plan
from sim2real_scaling.analysis.laws import PowerLawFit
from sim2real_scaling.analysis.surface import SurfaceFit
from sim2real_scaling.analysis.tables import TableError, curve, select_property
from sim2real_scaling.contract import METHOD_LABELS, REFERENCE_METHODS

__all__ = [
    "plot_scaling_curve",
    "plot_surface_curves",
    "plot_indifference_curves",
    "plot_group_panels",
    "plot_bootstrap_distribution",
    "scaling_curve_figure",
    "surface_curves_figure",
    "indifference_figure",
    "group_panels_figure",
    "bootstrap_figure",
    "tex_law",
    "typeset_unit",
    "GROUPS_PER_PAGE",
]

#: panels per page of the per-group figure (more groups: more pages, ``<stem>_p2`` ...)
GROUPS_PER_PAGE = 24
_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def typeset_unit(unit: str | None) -> str | None:
    """A unit as it should read: ``g/cm3`` -> ``g/cm³``, ``W m^-1 K^-1`` -> ``W m⁻¹ K⁻¹``, ``m2/s`` -> ``m²/s``;
    a logarithm's base is a subscript, not a power: ``log10(S/m)`` -> ``log₁₀(S/m)``."""
    import re

    if not unit:
        return unit
    text = re.sub(r"\^\{?(-?\d+)\}?", lambda mt: mt.group(1).translate(_SUPERSCRIPT), str(unit))
    text = re.sub(r"\blog(\d+)", lambda mt: "log" + mt.group(1).translate(_SUBSCRIPT), text)
    return re.sub(r"(?<=[A-Za-z])(-?\d+)(?![\d.])", lambda mt: mt.group(1).translate(_SUPERSCRIPT), text)

_TRANSFER = "#1f5fa8"
_DIRECT = "#c0392b"
_SIMULATION = "#2e8b57"
_REFERENCE_COLORS = {"direct": _DIRECT, "simulation": _SIMULATION}


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, out: str | Path) -> list[Path]:
    stem = Path(out)
    if stem.suffix.lower() in (".png", ".svg", ".pdf"):
        stem = stem.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [Path(f"{stem}.png"), Path(f"{stem}.svg")]
    fig.savefig(paths[0], dpi=150)
    # The layout found for the PNG serves the SVG too: fixing it saves a second constrained-layout pass
    # (about half the time of a many-panel figure).
    fig.set_layout_engine("none")
    fig.savefig(paths[1])
    return paths


class _PlainLogFormatter(LogFormatter):
    """matplotlib decides which log ticks get a label; the label is a plain number (0.06)."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        label = super().__call__(x, pos)
        return f"{x:.3g}" if label else ""


class _CountLogFormatter(LogFormatter):
    """Sample counts as plain numbers (1,000, not 10^3 or 1e+03), on the ticks matplotlib labels."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        label = super().__call__(x, pos)
        if not label:
            return ""
        return f"{x:,.0f}" if x >= 1 else f"{x:.3g}"


def _log_axes(ax: Axes) -> None:
    """Log-log axes with MAE ticks as plain numbers (0.06, not 6x10^-2); on a y range of less than a few
    decades the minor ticks are labelled too, so every axis carries several numbers."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(_PlainLogFormatter(labelOnlyBase=False))
    ax.yaxis.set_minor_locator(LogLocator(base=10.0, subs=(1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0)))
    ax.yaxis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2.5, 0.9)))
    ax.xaxis.set_major_formatter(_CountLogFormatter(labelOnlyBase=False))
    ax.xaxis.set_minor_formatter(_CountLogFormatter(labelOnlyBase=False, minor_thresholds=(2.2, 0.8)))


def _tex_num(v: float, digits: int = 3) -> str:
    s = f"{v:.{digits}g}"
    if "e" in s:
        mant, exp = s.split("e")
        return rf"{mant}\times10^{{{int(exp)}}}"
    return s


def tex_law(fit: PowerLawFit, var: str = "n", lhs: str = "MAE", digits: int = 3) -> str:
    """Mathtext label of a 1-D law, e.g. ``MAE = $0.0684\\,n^{-0.0145} + 1.75\\times10^{-11}$`` (no ``+ C`` for the
    law without floor), with the alpha interval when the fit has one."""
    if not fit.has_params:
        return f"{lhs}: fit failed ({fit.status})"
    text = f"{lhs} = ${_tex_num(fit.D, digits)}\\,{var}^{{-{_tex_num(fit.alpha, digits)}}}"
    text += (f" + {_tex_num(fit.C, digits)}$" if fit.floor else "$")
    lo, hi = fit.alpha_ci
    if math.isfinite(lo) and math.isfinite(hi):
        text += f"\n$\\alpha$ = {fit.alpha:.3g}, {fit.ci_level:.0%} interval [{lo:.3g}, {hi:.3g}]"
    if fit.status == "no_scaling":
        text += "\n(no scaling detected)"
    return text


def _tex_surface(fit: SurfaceFit, digits: int = 3) -> str:
    t = lambda v: _tex_num(v, digits)  # noqa: E731
    return (
        f"MAE = $({t(fit.A)}\\,n^{{-{t(fit.alpha)}}} + {t(fit.B)})\\,m^{{-{t(fit.beta)}}}"
        f" + {t(fit.eps)}$"
    )


def _mae_label(unit: str | None) -> str:
    return f"Test MAE [{typeset_unit(unit)}]" if unit else "Test MAE"


def plot_scaling_curve(
    summary: pd.DataFrame,
    fit: PowerLawFit | None,
    property: str,
    m: float | None = None,
    *,
    out: str | Path,
    unit: str | None = None,
    source: str = "simulated samples",
    title: str | None = None,
    show_fit_band: bool = True,
) -> list[Path]:
    """Mean test MAE vs n (log-log) with its CI band, the fitted law and the direct baseline.

    Args:
        summary: validated summary (several properties allowed).
        fit: the 1-D law R(n) at this m (``None`` or failed: no fitted line).
        property: which property to draw.
        m: fixed experimental size (default: largest with transfer rows).
        out: output path stem. unit: the property's unit for the axis label. source: what one source
            row is (the n axis reads "Number of <source> n"). title: custom title.
        show_fit_band: shade the bootstrap band of the law when the fit has samples.

    Returns:
        ``[png, svg]`` paths.
    """
    return _save(scaling_curve_figure(summary, fit, property, m, unit=unit, source=source, title=title,
                                      show_fit_band=show_fit_band), out)


def scaling_curve_figure(
    summary: pd.DataFrame,
    fit: PowerLawFit | None,
    property: str,
    m: float | None = None,
    *,
    unit: str | None = None,
    source: str = "simulated samples",
    title: str | None = None,
    show_fit_band: bool = True,
) -> Figure:
    """The figure of :func:`plot_scaling_curve`, unsaved."""
    prop, rows = select_property(summary, property)
    m_used, tr = curve(rows, vary="n", fixed=m)
    method = str(tr["method"].iloc[0])
    n = tr["n"].to_numpy(float)
    fig = _new_figure(9.6, 4.8)
    ax = fig.add_subplot()
    label = METHOD_LABELS.get(method, method)
    if np.isfinite(tr["mae_ci_low"].to_numpy(float)).any():
        ax.fill_between(n, tr["mae_ci_low"], tr["mae_ci_high"], color=_TRANSFER, alpha=0.2, lw=0,
                        label=f"{label}: 90% CI of the mean")
    ax.plot(n, tr["mae_mean"], "o-", color=_TRANSFER, lw=1.5, ms=4, label=f"{label}: mean over trials")
    if fit is not None and fit.has_params:
        grid = np.geomspace(n.min(), n.max(), 200)
        if show_fit_band and fit.boot_samples.shape[0] >= 2:
            lo, hi = fit.predict_band(grid)
            ax.fill_between(grid, lo, hi, color="k", alpha=0.08, lw=0,
                            label=f"fitted law: {fit.ci_level:.0%} bootstrap band")
        ax.plot(grid, fit.predict(grid), "--", color="k" if fit.ok else "0.5", lw=1.3, label=tex_law(fit))
    for ref in REFERENCE_METHODS:
        r = rows[(rows["method"] == ref) & np.isclose(rows["m"].to_numpy(float), m_used)]
        if r.empty or not np.isfinite(float(r.iloc[0]["mae_mean"])):
            continue
        d = r.iloc[0]
        color = _REFERENCE_COLORS.get(ref, "0.3")
        ref_label = METHOD_LABELS.get(ref, ref)
        if np.isfinite(d["mae_ci_low"]) and np.isfinite(d["mae_ci_high"]):
            ax.axhspan(d["mae_ci_low"], d["mae_ci_high"], color=color, alpha=0.12, lw=0,
                       label=f"{ref_label}: 90% CI")
        line_label = f"{ref_label} (n = 0)"
        if ref == "simulation" and "sim_rows" in d and np.isfinite(float(d["sim_rows"])):
            # the simulation predicts only the materials that were simulated: say on how many rows, and how the
            # transfer method does on those same rows, so the lines are not read as a like-for-like comparison
            line_label = f"{ref_label}, on the {float(d['sim_rows']):.3g} test rows/trial it covers"
            same = tr.iloc[-1].get("mae_sim_rows_mean") if "mae_sim_rows_mean" in tr.columns else None
            if same is not None and np.isfinite(float(same)):
                line_label += f"\n(transfer there, largest n: {float(same):.3g})"
        ax.axhline(d["mae_mean"], color=color, lw=1.5, ls="-" if ref == "direct" else "-.", label=line_label)
    _log_axes(ax)
    ax.set_xlabel(f"Number of {source} $n$")
    ax.set_ylabel(_mae_label(unit))
    ax.set_title(title or f"{prop}: Sim2Real scaling ($m$ = {m_used:g})")
    ax.grid(True, which="both", alpha=0.25, lw=0.5)
    # beside the axes: a legend inside would hide a reference line or the curve
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7.5, frameon=False, borderaxespad=0.0)
    return fig


def plot_surface_curves(
    summary: pd.DataFrame,
    fit: SurfaceFit | None,
    property: str,
    *,
    out: str | Path,
    unit: str | None = None,
    source: str = "simulated samples",
    m_values: Sequence[float] | None = None,
    title: str | None = None,
) -> list[Path]:
    """MAE vs n, one line per m (Fig. 2 style), with the fitted surface dashed in the same colour.

    Args:
        summary: validated summary. fit: fitted surface or ``None``. property: which property.
        out: output path stem. unit: property unit. source: what one source row is (the n axis
            reads "Number of <source> n"). m_values: the m to draw (default: all).
        title: custom title.

    Returns:
        ``[png, svg]`` paths.
    """
    return _save(surface_curves_figure(summary, fit, property, unit=unit, source=source, m_values=m_values,
                                       title=title), out)


def surface_curves_figure(
    summary: pd.DataFrame,
    fit: SurfaceFit | None,
    property: str,
    *,
    unit: str | None = None,
    source: str = "simulated samples",
    m_values: Sequence[float] | None = None,
    title: str | None = None,
) -> Figure:
    """The figure of :func:`plot_surface_curves`, unsaved."""
    from sim2real_scaling.analysis.tables import transfer_method

    prop, rows = select_property(summary, property)
    tr = rows[rows["method"] == transfer_method(rows, None, prop)]
    ms = np.unique(tr["m"].to_numpy(float)) if m_values is None else np.asarray(m_values, float)
    if ms.size == 0:
        raise TableError(f"no transfer rows for property {prop!r}")
    fig = _new_figure(9.6, 4.6)
    ax = fig.add_subplot()
    colors = colormaps["viridis"](np.linspace(0.0, 0.9, ms.size))
    for color, m in zip(colors, ms, strict=True):
        c = tr[np.isclose(tr["m"].to_numpy(float), m)].sort_values("n")
        if c.empty:
            continue
        n = c["n"].to_numpy(float)
        ax.fill_between(n, c["mae_ci_low"], c["mae_ci_high"], color=color, alpha=0.15, lw=0,
                        label=f"$m$ = {m:g}: 90% CI")
        ax.plot(n, c["mae_mean"], "o-", color=color, ms=3, lw=1.2, label=f"$m$ = {m:g}: mean")
        if fit is not None and fit.ok:
            grid = np.geomspace(n.min(), n.max(), 150)
            ax.plot(grid, fit.predict(grid, m), "--", color=color, lw=1.0)
    handles, labels = ax.get_legend_handles_labels()
    if fit is not None and fit.ok:
        handles.append(Line2D([], [], ls="--", color="k", lw=1.0))
        labels.append(_tex_surface(fit) + ("" if fit.holds else "  (does not hold)"))
    _log_axes(ax)
    ax.set_xlabel(f"Number of {source} $n$")
    ax.set_ylabel(_mae_label(unit))
    ax.set_title(title or f"{prop}: scaling surface $R(n, m)$")
    ax.grid(True, which="both", alpha=0.25, lw=0.5)
    ax.legend(handles, labels, fontsize=7.5, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0),
              borderaxespad=0.0)
    return fig


def plot_indifference_curves(
    fit: SurfaceFit,
    *,
    out: str | Path,
    levels: Sequence[float] | None = None,
    plan: Plan | None = None,
    n_range: tuple[float, float] | None = None,
    m_range: tuple[float, float] | None = None,
    unit: str | None = None,
    source: str = "simulated samples",
    title: str | None = None,
) -> list[Path]:
    """Indifference curves R(n, m) = r in the (n, m) plane, with the budget line and plan optimum.

    Args:
        fit: fitted surface.
        out: output path stem.
        levels: MAE levels r (property units); default five levels spanning the fitted range.
        plan: a :class:`~sim2real_scaling.analysis.decisions.Plan`; its cost line ``c_n n + c_m m = cost``
            and optimum are drawn (and its target level added).
        n_range, m_range: axis ranges (default: the fitted ranges widened to include the plan).
        unit: property unit. source: what one source row is (the n axis reads "Number of <source> n").
        title: custom title.

    Returns:
        ``[png, svg]`` paths.
    """
    return _save(indifference_figure(fit, levels=levels, plan=plan, n_range=n_range,
                                     m_range=m_range, unit=unit, source=source, title=title), out)


def indifference_figure(
    fit: SurfaceFit,
    *,
    levels: Sequence[float] | None = None,
    plan: Plan | None = None,
    n_range: tuple[float, float] | None = None,
    m_range: tuple[float, float] | None = None,
    unit: str | None = None,
    source: str = "simulated samples",
    title: str | None = None,
) -> Figure:
    """The figure of :func:`plot_indifference_curves`, unsaved."""
    n_lo, n_hi = n_range or fit.n_range
    m_lo, m_hi = m_range or fit.m_range
    if not all(math.isfinite(v) for v in (n_lo, n_hi, m_lo, m_hi)):
        if plan is None or not (plan.feasible and math.isfinite(plan.n)):
            raise ValueError("the surface has no fitted (n, m) range: pass n_range and m_range")
        n_lo, n_hi, m_lo, m_hi = plan.n / 100, plan.n * 100, plan.m / 100, plan.m * 100
    if plan is not None and plan.feasible and math.isfinite(plan.n):
        n_lo, n_hi = min(n_lo, plan.n / 2), max(n_hi, plan.n * 2)
        m_lo, m_hi = min(m_lo, plan.m / 2), max(m_hi, plan.m * 2)
    if levels is None:
        r_hi = float(fit.predict(n_lo, m_lo))
        r_lo = float(fit.predict(n_hi, m_hi))
        levels = list(np.geomspace(max(r_lo, fit.eps * 1.0001), r_hi, 7)[1:-1]) if r_hi > r_lo else [r_lo]
    levels = sorted(float(v) for v in levels)
    if plan is not None and plan.feasible and math.isfinite(plan.mae):
        levels = sorted(set(levels) | {float(plan.mae)})
    fig = _new_figure(8.8, 4.6)
    ax = fig.add_subplot()
    n_grid = np.geomspace(n_lo, n_hi, 400)
    colors = colormaps["plasma"](np.linspace(0.05, 0.85, len(levels)))
    for color, r in zip(colors, levels, strict=True):
        with np.errstate(all="ignore"):
            m_curve = ((fit.A * n_grid ** (-fit.alpha) + fit.B) / (r - fit.eps)) ** (1.0 / fit.beta)
        ok = np.isfinite(m_curve) & (m_curve > 0) & (r > fit.eps)
        if ok.any():
            ax.plot(n_grid[ok], m_curve[ok], color=color, lw=1.4, label=f"MAE = {r:.4g}")
    if plan is not None and plan.feasible and math.isfinite(plan.n):
        cost = plan.cost
        m_line = (cost - plan.cost_sim * n_grid) / plan.cost_exp
        ok = m_line > 0
        ax.plot(n_grid[ok], m_line[ok], ":", color="k", lw=1.2,
                label=f"cost = {cost:.4g} ($c_n$ = {plan.cost_sim:g}, $c_m$ = {plan.cost_exp:g})")
        ax.plot([plan.n], [plan.m], marker="*", ms=13, color="k", ls="none",
                label=f"optimum $n$ = {plan.n:.4g}, $m$ = {plan.m:.4g}")
    (fn_lo, fn_hi), (fm_lo, fm_hi) = fit.n_range, fit.m_range
    if all(math.isfinite(v) for v in (fn_lo, fn_hi, fm_lo, fm_hi)):
        from matplotlib.patches import Rectangle

        ax.add_patch(Rectangle((fn_lo, fm_lo), fn_hi - fn_lo, fm_hi - fm_lo, facecolor="0.85", edgecolor="0.5",
                               lw=0.8, alpha=0.5, zorder=0, label="measured (n, m) range"))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(_CountLogFormatter(labelOnlyBase=False))
    ax.yaxis.set_major_formatter(_CountLogFormatter(labelOnlyBase=False))
    ax.yaxis.set_minor_formatter(_CountLogFormatter(labelOnlyBase=False, minor_thresholds=(1.2, 0.6)))
    ax.set_xlim(n_lo, n_hi)
    ax.set_ylim(m_lo, m_hi)
    ax.set_xlabel(f"Number of {source} $n$")
    ax.set_ylabel("Number of experimental samples $m$")
    ax.set_title(title or "Indifference curves $R(n, m) = r$" + (f" [{typeset_unit(unit)}]" if unit else ""))
    ax.grid(True, which="both", alpha=0.25, lw=0.5)
    ax.legend(fontsize=7.5, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    return fig


def plot_group_panels(
    scaling: GroupScaling,
    *,
    out: str | Path,
    unit: str | None = None,
    source: str = "simulated samples",
    per_page: int = GROUPS_PER_PAGE,
    ncols: int = 4,
    title: str | None = None,
) -> list[Path]:
    """Small multiples, one panel per group in rank order (paper Figs. 5a/6e), every group on as many pages as
    needed (``<stem>``, ``<stem>_p2``, ...; ``per_page`` panels each).

    Each panel: the group's mean MAE vs n with its band, the fitted law dashed, the direct-learning mean as a red
    line, tick labels on both axes and a legend; the title gives rank, group, alpha and C (or "no scaling
    detected" / the reason of a failed fit).

    Returns:
        ``[png, svg]`` paths of every page.
    """
    paths: list[Path] = []
    for page, fig in enumerate(group_panels_figures(scaling, unit=unit, source=source, per_page=per_page,
                                                    ncols=ncols, title=title)):
        stem = Path(out)
        if stem.suffix.lower() in (".png", ".svg", ".pdf"):
            stem = stem.with_suffix("")
        paths += _save(fig, stem if page == 0 else stem.with_name(f"{stem.name}_p{page + 1}"))
    return paths


def group_panels_figures(scaling: GroupScaling, *, unit: str | None = None, source: str = "simulated samples",
                         per_page: int = GROUPS_PER_PAGE, ncols: int = 4, title: str | None = None) -> list[Figure]:
    """The pages of :func:`plot_group_panels`, unsaved."""
    table = scaling.table
    pages = max(1, math.ceil(len(table) / per_page))
    return [group_panels_figure(scaling, unit=unit, source=source, rows=table.iloc[k * per_page:(k + 1) * per_page],
                                ncols=ncols, title=title, page=(k + 1, pages)) for k in range(pages)]


def group_panels_figure(
    scaling: GroupScaling,
    *,
    unit: str | None = None,
    source: str = "simulated samples",
    rows: pd.DataFrame | None = None,
    ncols: int = 4,
    title: str | None = None,
    page: tuple[int, int] = (1, 1),
) -> Figure:
    """One page of :func:`plot_group_panels` (``rows``: the table rows to draw, default all), unsaved."""
    table = scaling.table if rows is None else rows
    k = max(len(table), 1)
    ncols = max(1, min(ncols, k))
    nrows = math.ceil(k / ncols)
    fig = _new_figure(2.9 * ncols + 0.4, 2.6 * nrows + 0.7)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel()[len(table):]:
        ax.set_visible(False)
    for ax, (_, row) in zip(axes.ravel(), table.iterrows(), strict=False):
        g = str(row["group"])
        c = scaling.curves[scaling.curves["group"] == g].sort_values("n")
        n = c["n"].to_numpy(float)
        if np.isfinite(c["mae_ci_low"].to_numpy(float)).any():
            ax.fill_between(n, c["mae_ci_low"].clip(lower=1e-300), c["mae_ci_high"], color=_TRANSFER,
                            alpha=0.2, lw=0, label="90% CI")
        ax.plot(n, c["mae_mean"], "o-", color=_TRANSFER, ms=2.5, lw=1.0, label="transfer mean")
        fit = scaling.fits.get(g)
        if fit is not None and fit.has_params and n.size:
            grid = np.geomspace(n.min(), n.max(), 100)
            ax.plot(grid, fit.predict(grid), "--", color="k" if fit.ok else "0.5", lw=1.0, label="fitted law")
        d = scaling.direct.get(g, math.nan)
        if math.isfinite(d):
            ax.axhline(d, color=_DIRECT, lw=1.0, label="direct")
        if n.size:
            _log_axes(ax)
        label = g if len(g) <= 22 else g[:21] + "…"
        if row["status"] == "ok":
            sub = f"α = {row['alpha']:.3g}, C = {row['C']:.2g}"
        elif row["status"] == "no_scaling":
            sub = "no scaling detected"
        elif row["status"] == "too_few_rows":
            sub = f"too few test rows ({row.get('test_rows', math.nan):.0f}) to rank"
        else:
            sub = f"fit: {row['status']}"
        rank = f"#{int(row['rank'])} " if row["status"] == "ok" else ""  # only laws that scale are ranked
        ax.set_title(f"{rank}{label}\n{sub}", fontsize=8)
        ax.tick_params(which="both", labelsize=6.5)
        ax.grid(True, which="both", alpha=0.2, lw=0.4)
        ax.legend(fontsize=5.5, frameon=False, loc="lower left")  # the curve falls to the right
    fig.supxlabel(f"Number of {source} $n$", fontsize=9)
    fig.supylabel(_mae_label(unit), fontsize=9)
    pages = f" (page {page[0]} of {page[1]})" if page[1] > 1 else ""
    fig.suptitle(
        (title or f"{scaling.property}: scaling per {scaling.group_by} ($m$ = {scaling.m:g}), ranked by α") + pages,
        fontsize=10,
    )
    return fig


def plot_bootstrap_distribution(
    fit: PowerLawFit,
    *,
    out: str | Path,
    params: Sequence[str] = ("alpha", "C"),
    title: str | None = None,
) -> list[Path]:
    """Histograms of bootstrap samples of the law's parameters with estimate and interval.

    Args:
        fit: a law with ``boot_samples``. out: output path stem.
        params: any of ``"D"``, ``"alpha"``, ``"C"``. title: custom title.

    Returns:
        ``[png, svg]`` paths. Raises ``ValueError`` without bootstrap samples.
    """
    return _save(bootstrap_figure(fit, params=params, title=title), out)


def bootstrap_figure(
    fit: PowerLawFit, *, params: Sequence[str] = ("alpha", "C"), title: str | None = None
) -> Figure:
    """The figure of :func:`plot_bootstrap_distribution`, unsaved."""
    s = fit.boot_samples
    s = s[np.all(np.isfinite(s), axis=1)] if s.size else s
    if s.shape[0] < 2:
        raise ValueError("the fit has no bootstrap samples")
    index = {"D": 0, "alpha": 1, "C": 2}
    fig = _new_figure(3.2 * len(params), 3.0)
    axes = fig.subplots(1, len(params), squeeze=False)[0]
    for ax, name in zip(axes, params, strict=True):
        col = s[:, index[name]]
        ax.hist(col, bins=min(40, max(10, col.size // 5)), color=_TRANSFER, alpha=0.7)
        ax.axvline(getattr(fit, name), color="k", lw=1.3, label="estimate")
        lo, hi = getattr(fit, f"{name}_ci")
        for v in (lo, hi):
            if math.isfinite(v):
                ax.axvline(v, color="k", ls="--", lw=1.0)
        ax.set_xlabel({"alpha": "α", "C": "C (floor)", "D": "D"}[name])
        ax.set_ylabel("bootstrap samples")
        ax.tick_params(labelsize=7)
    fig.suptitle(title or f"Bootstrap ({fit.n_boot} refits, {fit.bootstrap}); "
                 f"dashed: {fit.ci_level:.0%} interval", fontsize=9)
    return fig
