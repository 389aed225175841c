"""Tests of the figures: PNG and SVG are written, non-empty, on log-log axes, with readable labels."""

from __future__ import annotations

from pathlib import Path

import matplotlib
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


def test_scaling_curve(data: dict, tmp_path: Path) -> None:
    fig = scaling_curve_figure(data["summary"], data["law"], "density", unit="g/cm$^3$")
    _log_log(fig)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "Test MAE [g/cm$^3$]"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "direct learning" in labels
    assert any(lab.startswith("MAE = $") for lab in labels)
    assert "m$ = 600" in ax.get_title()
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


def test_surface_curves(data: dict, tmp_path: Path) -> None:
    fig = surface_curves_figure(data["summary"], data["surface"], "density", source="DFT runs")
    _log_log(fig)
    assert fig.axes[0].get_xlabel() == "Number of DFT runs $n$"
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert [lab for lab in labels if lab.startswith("$m$")] == ["$m$ = 50", "$m$ = 150", "$m$ = 600"]
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
