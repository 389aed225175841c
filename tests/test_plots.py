"""Tests of the figures: PNG and SVG are written, non-empty, on log-log axes, with readable labels."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.axes
import matplotlib.figure
import numpy as np
import pandas as pd
import pytest

from sim2real_scaling.analysis.groups import fit_group_scaling
from sim2real_scaling.analysis.decisions import plan_for_target
from sim2real_scaling.report.figures import (
    bootstrap_figure,
    group_panels_figure,
    indifference_figure,
    plot_bootstrap_distribution,
    plot_group_panels,
    plot_indifference_curves,
    plot_scaling_curve,
    plot_surface_curves,
    scaling_curve_figure,
    surface_curves_figure,
    tex_law,
)
from sim2real_scaling.analysis.laws import PowerLawFit, fit_power_law_bootstrap
from sim2real_scaling.analysis.surface import fit_surface_bootstrap
from sim2real_scaling.analysis.tables import validate_group_trials, validate_summary

NS = np.geomspace(100, 7e4, 8).round()
MS = [50.0, 150.0, 600.0]


def _density(n: np.ndarray | float, m: np.ndarray | float) -> np.ndarray | float:
    return (0.338 * n**-0.265 + 0.0192) * m**-0.239 + 0.0535


@pytest.fixture(scope="module")
def data() -> dict[str, object]:
    rng = np.random.default_rng(1)
    rows, trials = [], {}
    for m in MS:
        for n in [*NS, 0.0]:
            method = "direct" if n == 0 else "transfer"
            mu = _density(n, m) if n > 0 else 1.3 * _density(100.0, m)
            t = mu + rng.normal(0, 0.01, 50)
            se = t.std(ddof=1) / np.sqrt(t.size)
            rows.append(dict(property="density", method=method, n=n, m=m, mae_mean=t.mean(),
                             mae_ci_low=t.mean() - 1.645 * se, mae_ci_high=t.mean() + 1.645 * se,
                             trials=t.size))
            trials[(method, n, m)] = t
    for m in MS:  # the third reference: the simulated value itself (n = 0)
        rows.append(dict(property="density", method="simulation", n=0.0, m=m, mae_mean=0.06, mae_ci_low=0.058,
                         mae_ci_high=0.062, trials=50))
    summary = validate_summary(pd.DataFrame(rows))
    law = fit_power_law_bootstrap(NS, [trials[("transfer", n, 600.0)] for n in NS], n_boot=30)
    keys = [k for k in trials if k[0] == "transfer"]
    surf = fit_surface_bootstrap([k[1] for k in keys], [k[2] for k in keys],
                                 [trials[k] for k in keys], n_boot=15)
    groups = []
    for g, a in {"alpha-rich": 0.3, "flat": 0.05}.items():
        for n in NS:
            for k in range(20):
                groups.append(dict(property="density", method="transfer", n=n, m=600, trial=k,
                                   group_by="class", group=g, mae=0.5 * n**-a + rng.normal(0, 0.005),
                                   count=2))
    scaling = fit_group_scaling(validate_group_trials(pd.DataFrame(groups)), n_boot=10)
    return {"summary": summary, "law": law, "surface": surf, "groups": scaling}


def _check_files(paths: list[Path]) -> None:
    assert [p.suffix for p in paths] == [".png", ".svg"]
    for p in paths:
        assert p.exists() and p.stat().st_size > 1000
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in paths[1].read_bytes()[:2000]


def _log_log(fig: matplotlib.figure.Figure) -> None:
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert axes
    for ax in axes:
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        assert ax.get_xlabel() or fig.supxlabel  # labelled


def _visible_tick_labels(fig: matplotlib.figure.Figure, ax: matplotlib.axes.Axes, axis: str,
                         draw: bool = True) -> list[str]:
    if draw:
        fig.canvas.draw()
    which = ax.yaxis if axis == "y" else ax.xaxis
    lo, hi = (ax.get_ylim() if axis == "y" else ax.get_xlim())
    ticks = [t for t in which.get_majorticklabels() + which.get_minorticklabels()
             if t.get_text() and lo <= t.get_position()[1 if axis == "y" else 0] <= hi]
    return [t.get_text() for t in ticks]


def test_scaling_curve(data: dict, tmp_path: Path) -> None:
    fig = scaling_curve_figure(data["summary"], data["law"], "density", unit="g/cm3")
    _log_log(fig)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "Test MAE [g/cm³]"  # units typeset
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    # every band and line is in the legend
    drawn = [a.get_label() for a in [*ax.lines, *ax.collections, *ax.patches]
             if a.get_label() and not a.get_label().startswith("_")]
    assert sorted(drawn) == sorted(labels)
    assert "direct learning (n = 0)" in labels and "direct learning: 90% CI" in labels
    assert "simulation (recalibrated) (n = 0)" in labels  # the third reference line
    assert "transfer (fine-tuning): 90% CI of the mean" in labels and "fitted law: 90% bootstrap band" in labels
    law = [lab for lab in labels if lab.startswith("MAE = $")][0]
    lo, hi = data["law"].alpha_ci
    assert f"[{lo:.3g}, {hi:.3g}]" in law  # the alpha interval on the curve
    assert "m$ = 600" in ax.get_title()
    assert len(_visible_tick_labels(fig, ax, "y")) >= 3  # enough numbers on a narrow MAE range
    assert ax.get_xlabel() == "Number of simulated samples $n$"  # the default source
    real2real = scaling_curve_figure(data["summary"], data["law"], "density", source="thermal-conductivity samples")
    assert real2real.axes[0].get_xlabel() == "Number of thermal-conductivity samples $n$"
    _check_files(plot_scaling_curve(data["summary"], data["law"], "density", out=tmp_path / "a.png"))
    assert (tmp_path / "a.svg").exists()
    # without a fit, and a stem with dots
    _check_files(plot_scaling_curve(data["summary"], None, "density", 150.0, out=tmp_path / "d.m150"))


def test_equation_label() -> None:
    label = tex_law(PowerLawFit.from_params(0.0684, 0.0145, 1.75e-11))
    assert label == r"MAE = $0.0684\,n^{-0.0145} + 1.75\times10^{-11}$"
    assert tex_law(PowerLawFit.from_params(0.2, 0.3)) == r"MAE = $0.2\,n^{-0.3}$"  # no floor: no C term


def test_surface_curves(data: dict, tmp_path: Path) -> None:
    fig = surface_curves_figure(data["summary"], data["surface"], "density", source="DFT runs")
    _log_log(fig)
    assert fig.axes[0].get_xlabel() == "Number of DFT runs $n$"
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert [lab for lab in labels if lab.startswith("$m$") and lab.endswith("mean")] == [
        "$m$ = 50: mean", "$m$ = 150: mean", "$m$ = 600: mean"]
    assert "$m$ = 50: 90% CI" in labels
    _check_files(plot_surface_curves(data["summary"], data["surface"], "density", out=tmp_path / "s"))


def test_indifference_curves(data: dict, tmp_path: Path) -> None:
    surf = data["surface"]
    plan = plan_for_target(surf, 0.07, cost_sim=1.0, cost_exp=200.0)
    fig = indifference_figure(surf, plan=plan)
    _log_log(fig)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(lab.startswith("optimum") for lab in labels)
    assert any(lab.startswith("cost") for lab in labels)
    _check_files(plot_indifference_curves(surf, plan=plan, levels=[0.07, 0.08], out=tmp_path / "i"))


def test_group_panels(data: dict, tmp_path: Path) -> None:
    fig = group_panels_figure(data["groups"])
    _log_log(fig)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles[0].startswith("#1 alpha-rich") and titles[1].startswith("#2 flat")
    _check_files(plot_group_panels(data["groups"], out=tmp_path / "g", unit="K"))


def test_group_panels_keep_every_group(tmp_path: Path) -> None:
    """13 classes on pages of 12: every one is drawn, each panel with tick labels and a legend."""
    rng = np.random.default_rng(3)
    rows = []
    for g in range(13):
        for n in NS:
            for k in range(8):
                rows.append(dict(property="p", method="transfer", n=n, m=100, trial=k, group_by="class",
                                 group=f"class {g:02d}", mae=0.5 * n ** -(0.1 + g / 100) + rng.normal(0, 0.003),
                                 count=2))
    scaling = fit_group_scaling(validate_group_trials(pd.DataFrame(rows)), n_boot=0)
    paths = plot_group_panels(scaling, out=tmp_path / "many", per_page=12)
    assert [p.name for p in paths] == ["many.png", "many.svg", "many_p2.png", "many_p2.svg"]
    from sim2real_scaling.report.figures import group_panels_figures

    pages = group_panels_figures(scaling, per_page=12)
    panels = [ax for fig in pages for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 13
    for fig in pages:
        fig.canvas.draw()
        for ax in [a for a in fig.axes if a.get_visible()]:
            assert ax.get_legend() is not None
            assert _visible_tick_labels(fig, ax, "x", draw=False) and _visible_tick_labels(fig, ax, "y", draw=False)


def test_bootstrap_distribution(data: dict, tmp_path: Path) -> None:
    fig = bootstrap_figure(data["law"])
    assert len(fig.axes) == 2
    _check_files(plot_bootstrap_distribution(data["law"], out=tmp_path / "b"))
    with pytest.raises(ValueError):
        plot_bootstrap_distribution(PowerLawFit.from_params(1.0, 0.1, 0.0), out=tmp_path / "x")


def test_pyplot_state_untouched(data: dict) -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    scaling_curve_figure(data["summary"], data["law"], "density")
    assert plt.get_fignums() == before


@pytest.mark.parametrize(("unit", "typeset"), [("g/cm3", "g/cm³"), ("W m^-1 K^-1", "W m⁻¹ K⁻¹"), ("m2/s", "m²/s"),
                                               ("log10(S/m)", "log₁₀(S/m)"), ("J/(kg K)", "J/(kg K)")])
def test_units_are_typeset_with_powers_raised_and_a_logarithm_base_lowered(unit: str, typeset: str) -> None:
    from sim2real_scaling.report.figures import typeset_unit

    assert typeset_unit(unit) == typeset
