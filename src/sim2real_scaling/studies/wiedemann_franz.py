"""Case study 3 (Real2Real, Starrydata): the Wiedemann-Franz (WF) classes and per-compound scaling.

The Wiedemann-Franz law says that, where free electrons carry both heat and charge (metals), the
ratio of thermal to electrical conductivity is ``kappa / sigma = L T`` with the Lorenz number
``L = 2.44e-8 W Ohm K^-2``. For a compound with both values (at ``T = 300 K``) its deviation from the
law is measured on the log scale of the paper's parity plot (Fig. 6b)::

    d = log10( kappa / (L T sigma) )        (0 on the WF line; > 0: more heat than the electrons carry)

and the compounds are ranked by ``|d|``: the ``fraction`` (10%) closest to the line form the *WF*
subset, the ``fraction`` farthest the *non-WF* subset, the rest is *middle*; compounds without both
values are *unknown*. The classes are computed once per compound from the cleaned source and target
tables (so both transfer directions get the same classes) and become a group column (``wf_class``) of
the target table: the engine then records per-class test MAEs in every trial, and the study analysis
fits one scaling law per class (the paper's Fig. 6d).

Per-compound scaling (the paper's Fig. 6e): with ``protocol.per_material: true`` the engine writes,
for every test compound and n, its absolute error summed over the trials in which it was in the test
set (``material_errors.csv``). A trial's split does not depend on n, so each compound is tested in
the same trials at every n and its curve MAE_i(n) differs between n only through the pretraining.
Each curve is summarised by the slope of ``log MAE_i`` against ``log n`` (ordinary least squares over
the n grid): ``alpha_i = -slope`` is the compound's scaling exponent (> 0: improves with more source
data), with the OLS standard error; a compound *scales* when ``alpha_i - z se > 0``, *worsens* when
``alpha_i + z se < 0`` and is *flat* otherwise (``z`` for the analysis confidence level). A power law
with a floor has three parameters and is not identifiable from one compound's ten noisy points, so
the slope is used instead; the floored law is fitted to the class means above.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from sim2real_scaling.config import ConfigError
from sim2real_scaling.contract import is_transfer
from sim2real_scaling.data.clean import KEY, VALUE, DataError

log = logging.getLogger(__name__)

LORENZ_NUMBER = 2.44e-8  # W Ohm K^-2, the value the paper uses
TEMPERATURE = 300.0  # K
WF, NON_WF, MIDDLE, UNKNOWN = "WF", "non-WF", "middle", "unknown"
CLASSES = (WF, NON_WF, MIDDLE, UNKNOWN)
DEVIATION_COLUMN = "wf_log10_ratio"
KAPPA_COLUMN, SIGMA_COLUMN = "wf_kappa", "wf_sigma"
PER_COMPOUND_COLUMNS = [
    "property", "material", "wf_class", "n_points", "tests", "n_min", "n_max", "mae_n_min", "mae_n_max",
    "mae_direct", "ratio_n_max_to_n_min", "alpha", "alpha_se", "verdict",
]

# colours and markers of the paper's Fig. 6b/d: WF blue squares, non-WF green triangles
STYLE = {WF: ("#1f5fa8", "s"), NON_WF: ("#2e8b57", "^"), MIDDLE: ("#9a9a9a", "o"), UNKNOWN: ("#d0d0d0", ".")}


def wf_deviation(kappa: Sequence[float] | np.ndarray, sigma: Sequence[float] | np.ndarray, *,
                 lorenz: float = LORENZ_NUMBER, temperature: float = TEMPERATURE) -> np.ndarray:
    """``log10(kappa / (L T sigma))`` per compound; NaN where either value is missing or not positive.

    ``kappa`` in W m^-1 K^-1, ``sigma`` in S m^-1 (so kappa / sigma is in W Ohm K^-1, as L T).
    """
    k = np.asarray(kappa, dtype=float)
    s = np.asarray(sigma, dtype=float)
    out = np.full(np.broadcast(k, s).shape, np.nan)
    ok = np.isfinite(k) & np.isfinite(s) & (k > 0) & (s > 0)
    out[ok] = np.log10(k[ok]) - np.log10(s[ok]) - math.log10(lorenz * temperature)
    return out


def classify_wf(deviation: Sequence[float] | np.ndarray, fraction: float = 0.1) -> np.ndarray:
    """WF / non-WF / middle / unknown label per compound from its deviation ``d``.

    Among the compounds with a finite ``d`` (N of them), the ``k = round(fraction * N)`` with the
    smallest ``|d|`` are ``WF`` and the ``k`` with the largest ``|d|`` are ``non-WF``; ties in ``|d|``
    are broken by position (stable sort), so the subsets always have exactly k members each. NaN
    deviations are ``unknown``.
    """
    if not 0 < fraction <= 0.5:
        raise ValueError(f"fraction must be in (0, 0.5], got {fraction}")
    d = np.asarray(deviation, dtype=float)
    labels = np.full(d.shape, UNKNOWN, dtype=object)
    valid = np.flatnonzero(np.isfinite(d))
    labels[valid] = MIDDLE
    k = int(round(fraction * valid.size))
    if k == 0:
        return labels
    order = valid[np.argsort(np.abs(d[valid]), kind="stable")]
    labels[order[:k]] = WF
    labels[order[-k:]] = NON_WF
    return labels


def _check_units(path: str, expected: str, role: str, thermal: str, units: Sequence[str] | None = None) -> None:
    """Where a table has a ``unit`` column (the Starrydata files do), it must hold the expected quantity.

    ``units``: the distinct values of the table's unit column as cleaning found them (no second read); None:
    read them from ``path``.
    """
    if units is None:
        from sim2real_scaling.data.clean import unit_cells
        from sim2real_scaling.data.tables import read_table

        try:
            units = list(unit_cells(read_table(path, what=f"wiedemann_franz ({role} table)"))[1])
        except DataError:  # unreadable here: cleaning reports it
            return
    wrong = [u for u in units if u.replace(" ", "") != expected.replace(" ", "")]
    if wrong:
        raise ConfigError(
            f"config key wiedemann_franz.thermal is {thermal!r}, so the {role} table {path} should hold "
            f"{'thermal' if expected.startswith('W') else 'electrical'} conductivity in {expected}, but its unit "
            f"column says {wrong[:3]} (is the direction swapped?)"
        )


def wf_annotator(settings: Mapping[str, Any]):  # noqa: ANN201 - data.prepare.Annotate
    """The prepare stage's class hook for this study: :func:`add_wf_columns` on the cleaned tables, with the
    unit columns as cleaning read them."""

    def annotate(source: pd.DataFrame, target: pd.DataFrame, source_clean: Any, target_clean: Any):  # noqa: ANN202
        return add_wf_columns(source, target, settings, paths=(source_clean.path, target_clean.path),
                              units=(list(source_clean.units), list(target_clean.units)))

    return annotate


def add_wf_columns(source: pd.DataFrame, target: pd.DataFrame, settings: Mapping[str, Any], *,
                   paths: tuple[str, str] = ("", ""),
                   units: tuple[Sequence[str], Sequence[str]] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add ``wf_kappa``, ``wf_sigma``, ``wf_log10_ratio`` and the class column to both cleaned tables.

    ``source``/``target``: cleaned tables (columns ``key, value, ...``; one row per compound, values in
    the files' units). ``settings``: the config's ``wiedemann_franz`` block (``thermal`` says which
    table holds kappa). Compounds are matched by canonical key; the class ranking runs over the
    compounds present in both tables.
    """
    thermal = settings["thermal"]
    if thermal not in ("source", "target"):
        raise ConfigError(f"config key wiedemann_franz.thermal: 'source' or 'target', not {thermal!r}")
    kappa_table, sigma_table = (source, target) if thermal == "source" else (target, source)
    if (paths[0] and paths[1]) or units is not None:
        kappa_path, sigma_path = paths if thermal == "source" else paths[::-1]
        kappa_units, sigma_units = (None, None) if units is None else (units if thermal == "source" else units[::-1])
        _check_units(kappa_path, "W m^-1 K^-1", "source" if thermal == "source" else "target", thermal, kappa_units)
        _check_units(sigma_path, "S m^-1", "target" if thermal == "source" else "source", thermal, sigma_units)
    both = (kappa_table[[KEY, VALUE]].rename(columns={VALUE: KAPPA_COLUMN})
            .merge(sigma_table[[KEY, VALUE]].rename(columns={VALUE: SIGMA_COLUMN}), on=KEY, how="inner"))
    if both.empty:
        raise DataError("wiedemann_franz: no compound is in both the source and the target table")
    both[DEVIATION_COLUMN] = wf_deviation(both[KAPPA_COLUMN], both[SIGMA_COLUMN], lorenz=settings["lorenz"],
                                          temperature=settings["temperature"])
    both[settings["column"]] = classify_wf(both[DEVIATION_COLUMN].to_numpy(), settings["fraction"])
    columns = [KAPPA_COLUMN, SIGMA_COLUMN, DEVIATION_COLUMN, settings["column"]]
    out = []
    for table in (source, target):
        merged = table.drop(columns=[c for c in columns if c in table.columns]).merge(both[[KEY, *columns]], on=KEY,
                                                                                    how="left")
        merged[settings["column"]] = merged[settings["column"]].fillna(UNKNOWN)
        out.append(merged)
    counts = pd.Series(both[settings["column"]]).value_counts().to_dict()
    log.info("Wiedemann-Franz classes over %d compounds with both values: %s", len(both), counts)
    return out[0], out[1]


def class_thresholds(deviation: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The |d| range of each subset: WF up to ``wf_max_abs``, non-WF from ``non_wf_min_abs`` (decades)."""
    a = np.abs(np.asarray(deviation, dtype=float))
    labels = np.asarray(labels)
    out = {"wf_max_abs": math.nan, "non_wf_min_abs": math.nan}
    if (labels == WF).any():
        out["wf_max_abs"] = float(a[labels == WF].max())
    if (labels == NON_WF).any():
        out["non_wf_min_abs"] = float(a[labels == NON_WF].min())
    return out


# --------------------------------------------------------------------------------------------------
# per-compound scaling


def per_compound_scaling(materials: pd.DataFrame, property: str, *, classes: Mapping[str, str] | None = None,
                         m: float | None = None, confidence: float = 0.9) -> pd.DataFrame:
    """One row per test compound: its error curve over n summarised by a log-log slope.

    ``materials``: the aggregated ``material_errors.csv`` (``property, method, n, m, material,
    abs_error_sum, count, mean_abs_error``). ``classes``: material -> WF class (optional). ``m``: the
    experimental size (default: the largest with transfer rows). Returns :data:`PER_COMPOUND_COLUMNS`.
    """
    rows = materials[(materials["property"] == property)]
    transfer = rows[rows["method"].map(is_transfer)]
    if transfer.empty:
        return pd.DataFrame(columns=PER_COMPOUND_COLUMNS)
    m_used = float(transfer["m"].max()) if m is None else float(m)
    transfer = transfer[np.isclose(transfer["m"].astype(float), m_used)]
    direct = rows[(rows["method"] == "direct") & np.isclose(rows["m"].astype(float), m_used)]
    direct_mae = direct.set_index(direct["material"].astype(str))["mean_abs_error"].to_dict()
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    wide = transfer.pivot_table(index="material", columns="n", values="mean_abs_error", aggfunc="mean")
    tests = transfer.groupby("material")["count"].min()
    n = wide.columns.to_numpy(dtype=float)
    values = wide.to_numpy(dtype=float)
    records = []
    for material, y in zip(wide.index.astype(str), values, strict=True):
        ok = np.isfinite(y) & (y > 0)
        alpha = se = math.nan
        if ok.sum() >= 3:
            x, ly = np.log(n[ok]), np.log(y[ok])
            res = stats.linregress(x, ly)
            alpha, se = -float(res.slope), float(res.stderr)
        if not math.isfinite(alpha):
            verdict = "too few points"
        elif alpha - z * se > 0:
            verdict = "scales"
        elif alpha + z * se < 0:
            verdict = "worsens"
        else:
            verdict = "flat"
        first, last = np.flatnonzero(ok)[[0, -1]] if ok.any() else (None, None)
        records.append({
            "property": property, "material": material,
            "wf_class": (classes or {}).get(material, UNKNOWN),
            "n_points": int(ok.sum()), "tests": int(tests.get(material, 0)),
            "n_min": float(n[first]) if first is not None else math.nan,
            "n_max": float(n[last]) if last is not None else math.nan,
            "mae_n_min": float(y[first]) if first is not None else math.nan,
            "mae_n_max": float(y[last]) if last is not None else math.nan,
            "mae_direct": float(direct_mae.get(material, math.nan)),
            "ratio_n_max_to_n_min": float(y[last] / y[first]) if first is not None else math.nan,
            "alpha": alpha, "alpha_se": se, "verdict": verdict,
        })
    return pd.DataFrame.from_records(records, columns=PER_COMPOUND_COLUMNS)


def summarise_per_compound(table: pd.DataFrame) -> dict[str, Any]:
    """Counts and alpha quantiles of the per-compound table, overall and per WF class."""

    def block(t: pd.DataFrame) -> dict[str, Any]:
        a = t["alpha"].to_numpy(float)
        a = a[np.isfinite(a)]
        verdicts = t["verdict"].value_counts().to_dict()
        return {
            "compounds": int(len(t)),
            "alpha_median": float(np.median(a)) if a.size else None,
            "alpha_q10": float(np.quantile(a, 0.1)) if a.size else None,
            "alpha_q90": float(np.quantile(a, 0.9)) if a.size else None,
            "share_alpha_positive": float((a > 0).mean()) if a.size else None,
            "scales": int(verdicts.get("scales", 0)), "flat": int(verdicts.get("flat", 0)),
            "worsens": int(verdicts.get("worsens", 0)),
            "median_ratio_n_max_to_n_min": float(t["ratio_n_max_to_n_min"].median()) if len(t) else None,
            "median_tests_per_n": float(t["tests"].median()) if len(t) else None,
        }

    out = {"all": block(table)}
    for label in CLASSES:
        part = table[table["wf_class"] == label]
        if len(part):
            out[label] = block(part)
    return out


def class_transfer_vs_direct(groups: pd.DataFrame, property: str, column: str, *, confidence: float = 0.9,
                             n_boot: int = 2000, seed: int = 0) -> list[dict[str, Any]]:
    """Per WF class and n: mean transfer and direct MAE on the class's test compounds, and the
    trial-paired difference (transfer - direct) with its interval from the analysis' one bootstrap
    (:mod:`sim2real_scaling.analysis.bootstrap`: the property's replicates, then trials; no interval and no
    verdict from a single trial)."""
    from sim2real_scaling.analysis.bootstrap import paired_difference, resamples_for, value_matrix
    from sim2real_scaling.contract import canonical_method, is_transfer

    prop_rows = groups[groups["property"] == property].copy()
    prop_rows["method"] = prop_rows["method"].astype(str).map(canonical_method)
    g = prop_rows[prop_rows["group_by"] == column]
    transfer = g[g["method"].map(is_transfer)]
    if g.empty or transfer.empty:
        return []
    m_max = float(transfer["m"].max())
    g = g[np.isclose(g["m"].astype(float), m_max)]
    resamples = resamples_for(prop_rows, n_boot, seed, property)
    out = []
    for (label, n), t in g[g["method"].map(is_transfer)].groupby(["group", "n"], sort=True):
        values = pd.to_numeric(t["mae"], errors="coerce")
        rec: dict[str, Any] = {"group": str(label), "n": float(n), "transfer_mae": float(values.mean()),
                               "trials": int(values.notna().sum())}
        d = g[(g["method"] == "direct") & (g["group"] == label)]
        if not d.empty:
            a = value_matrix(t, resamples, [(float(n),)], ["n"])[:, 0]
            b = value_matrix(d, resamples, [(0.0,)], ["n"])[:, 0]
            diff = paired_difference(a, b, resamples, confidence, n_first=float(n))
            rec["direct_mae"] = float(pd.to_numeric(d["mae"], errors="coerce").mean())
            if diff["trials"]:
                rec.update(difference=diff["mean"], ci_low=diff["ci_low"], ci_high=diff["ci_high"],
                           transfer_better=diff["first_better"], direct_better=diff["second_better"])
                if diff["note"]:
                    rec["note"] = diff["note"]
        out.append(rec)
    return out


# --------------------------------------------------------------------------------------------------
# figures (PNG + SVG, Agg canvas, like plots.py)


def _figure(width: float, height: float):  # noqa: ANN202
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=150)
    fig.savefig(paths[1])
    return paths


def plot_wf_parity(compounds: pd.DataFrame, column: str, *, lorenz: float, temperature: float,
                   out: str | Path) -> list[Path]:
    """The paper's Fig. 6b: sigma (x) vs kappa (y), log-log, the WF line, the two subsets highlighted."""
    fig = _figure(5.2, 4.6)
    ax = fig.add_subplot()
    for label in (MIDDLE, WF, NON_WF):
        part = compounds[compounds[column] == label]
        colour, marker = STYLE[label]
        ax.scatter(part[SIGMA_COLUMN], part[KAPPA_COLUMN], s=6 if label == MIDDLE else 10, c=colour, marker=marker,
                   alpha=0.35 if label == MIDDLE else 0.8, lw=0, label=f"{label} ({len(part)})")
    s = compounds[SIGMA_COLUMN].to_numpy(float)
    k = compounds[KAPPA_COLUMN].to_numpy(float)
    grid = np.geomspace(np.nanmin(s), np.nanmax(s), 100)
    ax.plot(grid, lorenz * temperature * grid, "--", color="k", lw=1.0,
            label=rf"WF law $\kappa = L T \sigma$ (T = {temperature:g} K)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(np.nanmin(k) / 3, np.nanmax(k) * 3)  # the law's line is clipped to the measured kappa range
    ax.set_xlabel(r"Electrical conductivity $\sigma$ [S m$^{-1}$]")
    ax.set_ylabel(r"Thermal conductivity $\kappa$ [W m$^{-1}$ K$^{-1}$]")
    ax.set_title(f"Starrydata, {temperature:g} K: {len(compounds)} compounds with both values", fontsize=9)
    ax.grid(True, which="major", alpha=0.25, lw=0.5)
    ax.legend(fontsize=7.5, frameon=False, loc="upper left")
    return _save(fig, Path(out))


def plot_class_scaling(groups: pd.DataFrame, summary: pd.DataFrame, fits: Mapping[str, Any], property: str,
                       column: str, *, unit: str, out: str | Path) -> list[Path]:
    """The paper's Fig. 6d: mean test MAE vs n of the WF and non-WF subsets (and the rest), with the
    per-class fitted laws (fits.json) dashed and each class's direct-learning MAE as a flat line."""
    from sim2real_scaling.analysis.laws import PowerLawFit

    g = groups[(groups["property"] == property) & (groups["group_by"] == column)]
    m_max = float(g.loc[g["method"].map(is_transfer), "m"].max())
    g = g[np.isclose(g["m"].astype(float), m_max)]
    table = {r["group"]: r for r in fits.get("groups", {}).get(column, {}).get("table", [])}
    fig = _figure(6.0, 4.4)
    ax = fig.add_subplot()
    for label in (WF, NON_WF, MIDDLE):
        t = g[g["method"].map(is_transfer) & (g["group"] == label)]
        if t.empty:
            continue
        colour, marker = STYLE[label]
        curve = t.groupby("n")["mae"].agg(["mean", "std", "count"]).reset_index()
        half = 1.645 * curve["std"] / np.sqrt(curve["count"])
        ax.fill_between(curve["n"], curve["mean"] - half, curve["mean"] + half, color=colour, alpha=0.15, lw=0)
        rec = table.get(label)
        law = ""
        if rec is not None and rec.get("status") == "ok":
            fit = PowerLawFit.from_params(rec["D"], rec["alpha"], rec["C"])
            grid = np.geomspace(curve["n"].min(), curve["n"].max(), 100)
            ax.plot(grid, fit.predict(grid), "--", color=colour, lw=1.0)
            law = f": {fit.equation()}".replace("MAE = ", "")
        ax.plot(curve["n"], curve["mean"], marker=marker, color=colour, ms=4, lw=1.2, label=f"{label}{law}")
        d = g[(g["method"] == "direct") & (g["group"] == label)]
        if not d.empty:
            ax.axhline(d["mae"].mean(), color=colour, lw=0.8, ls=":")
    overall = summary[(summary["property"] == property) & summary["method"].map(is_transfer)
                      & np.isclose(summary["m"].astype(float), m_max)].sort_values("n")
    ax.plot(overall["n"], overall["mae_mean"], "-", color="k", lw=1.0, alpha=0.6, label="all test compounds")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("Number of source samples $n$")
    ax.set_ylabel(f"Test MAE [{unit}]" if unit else "Test MAE")
    ax.set_title(f"{property}: WF and non-WF subsets (dotted: direct learning)", fontsize=9)
    ax.grid(True, which="both", alpha=0.25, lw=0.5)
    ax.legend(fontsize=7, frameon=False, loc="best")
    return _save(fig, Path(out))


def plot_per_compound(materials: pd.DataFrame, table: pd.DataFrame, property: str, *, unit: str,
                      out: str | Path, examples: int = 3) -> list[Path]:
    """The paper's Fig. 6e: every test compound's MAE vs n (thin lines, coloured by its exponent), the
    distribution of the per-compound exponents by WF class, and a few compounds that scale or not."""
    from matplotlib import colormaps
    from matplotlib.colors import TwoSlopeNorm

    rows = materials[(materials["property"] == property) & materials["method"].map(is_transfer)]
    m_max = float(rows["m"].max())
    rows = rows[np.isclose(rows["m"].astype(float), m_max)]
    wide = rows.pivot_table(index="material", columns="n", values="mean_abs_error", aggfunc="mean")
    n = wide.columns.to_numpy(float)
    alpha = table.set_index("material")["alpha"].reindex(wide.index.astype(str)).to_numpy(float)
    fig = _figure(13.0, 4.2)
    ax1, ax2, ax3 = fig.subplots(1, 3)
    lim = float(np.nanquantile(np.abs(alpha), 0.95)) if np.isfinite(alpha).any() else 1.0
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-lim, vmax=lim)
    cmap = colormaps["coolwarm_r"]
    values = wide.to_numpy(float)
    for y, a in zip(values, alpha, strict=True):
        if np.isfinite(a):
            ax1.plot(n, y, color=cmap(norm(a)), lw=0.3, alpha=0.25)
    ax1.plot(n, np.nanmean(values, axis=0), color="k", lw=1.8, label="mean over compounds")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("Number of source samples $n$")
    ax1.set_ylabel(f"Compound's mean abs. error [{unit}]" if unit else "Compound's mean abs. error")
    ax1.set_title(f"{len(wide)} test compounds (colour: exponent α$_i$)", fontsize=9)
    sm = __import__("matplotlib.cm", fromlist=["ScalarMappable"]).ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=ax1, label=r"$\alpha_i$ = -d log MAE$_i$ / d log $n$", shrink=0.85)
    ax1.legend(fontsize=7, frameon=False, loc="lower left")
    bins = np.linspace(-lim * 1.5, lim * 1.5, 41)
    for label in (MIDDLE, WF, NON_WF):
        a = table.loc[table["wf_class"] == label, "alpha"].to_numpy(float)
        a = a[np.isfinite(a)]
        if a.size:
            ax2.hist(np.clip(a, bins[0], bins[-1]), bins=bins, density=True, histtype="step", lw=1.4,
                     color=STYLE[label][0], label=f"{label} (n={a.size}, median {np.median(a):.3f})")
    ax2.axvline(0, color="k", lw=0.6)
    ax2.set_xlabel(r"Per-compound exponent $\alpha_i$")
    ax2.set_ylabel("Density")
    ax2.set_title("Which compounds scale: exponent by WF class", fontsize=9)
    if ax2.get_legend_handles_labels()[0]:  # no finite exponent with fewer than 3 values of n
        ax2.legend(fontsize=7, frameon=False)
    # examples among the compounds tested at least as often as the median one (fewer tests = noisier curve)
    ranked = table[np.isfinite(table["alpha"]) & (table["tests"] >= table["tests"].median())].sort_values("alpha")
    chosen = pd.concat([ranked.tail(examples), ranked.head(examples)])
    for _, rec in chosen.iterrows():
        y = wide.loc[rec["material"]].to_numpy(float)
        colour = cmap(norm(rec["alpha"]))
        ax3.plot(n, y, "o-", color=colour, ms=3, lw=1.0,
                 label=f"{rec['material'][:28]} ({rec['wf_class']}), α={rec['alpha']:.2f}")
    ax3.set_xscale("log")
    ax3.set_yscale("log")
    ax3.set_xlabel("Number of source samples $n$")
    ax3.set_title(f"Examples: the {examples} largest and {examples} smallest α$_i$", fontsize=9)
    if ax3.get_legend_handles_labels()[0]:  # no finite exponent with fewer than 3 values of n
        ax3.legend(fontsize=5.5, frameon=False, loc="best")
    for ax in (ax1, ax2, ax3):
        ax.grid(True, which="major", alpha=0.25, lw=0.5)
    fig.suptitle(f"{property}: per-compound scaling (m = {m_max:g})", fontsize=10)
    return _save(fig, Path(out))


# --------------------------------------------------------------------------------------------------
# the workflow stage


def stage_wiedemann_franz(config: Mapping[str, Any], inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> None:
    """Rule ``wiedemann_franz``: WF classes, per-class comparison, per-compound scaling and figures.

    ``inputs``: ``targets`` (prepared target.csv per property, in config order), ``summary``,
    ``groups`` (group_trials.csv), ``materials`` (material_errors.csv), ``fits`` (fits.json).
    ``outputs``: ``json``, ``compounds`` (per-compound table, all properties), ``figures`` (a folder).
    """
    from sim2real_scaling.io import read_json, write_csv, write_json

    settings = config["wiedemann_franz"]
    column = settings["column"]
    analysis = config["analysis"]
    summary = pd.read_csv(inputs["summary"])
    groups = pd.read_csv(inputs["groups"], keep_default_na=False, na_values=["", "nan", "NaN"])
    materials = pd.read_csv(inputs["materials"], keep_default_na=False, na_values=["", "nan", "NaN"])
    fits = read_json(inputs["fits"])
    figures = Path(outputs["figures"])
    figures.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "lorenz_number": settings["lorenz"], "temperature_K": settings["temperature"],
        "fraction": settings["fraction"], "thermal": settings["thermal"], "column": column, "properties": {},
    }
    tables = []
    targets = list(inputs["targets"])
    for name, target_path in zip(config["properties"], targets, strict=True):
        unit = config["properties"][name]["unit"]
        tgt = pd.read_csv(target_path, keep_default_na=False, na_values=["", "nan", "NaN"])
        both = tgt[tgt[column] != UNKNOWN]
        labels = both[column].to_numpy()
        prop_fits = fits["properties"].get(name, {})
        entry: dict[str, Any] = {
            "compounds_with_both": int(len(both)),
            "classes": {k: int(v) for k, v in both[column].value_counts().items()},
            "thresholds_abs_log10": class_thresholds(both[DEVIATION_COLUMN].to_numpy(float), labels),
            "deviation_quantiles": {f"q{int(q * 100)}": float(np.quantile(both[DEVIATION_COLUMN], q))
                                    for q in (0.01, 0.1, 0.5, 0.9, 0.99)},
            "class_laws": prop_fits.get("groups", {}).get(column, {}).get("table", []),
            "class_transfer_vs_direct": class_transfer_vs_direct(groups, name, column,
                                                                 confidence=analysis["confidence"], seed=config["seed"]),
        }
        classes = dict(zip(tgt["key"].astype(str), tgt[column].astype(str), strict=True))
        if "id" in tgt.columns:
            classes.update(zip(tgt["id"].astype(str), tgt[column].astype(str), strict=True))
        drawn = [p.name for p in plot_wf_parity(both, column, lorenz=settings["lorenz"],
                                                temperature=settings["temperature"], out=figures / f"{name}_wf_parity")]
        if not groups.empty and (groups["group_by"] == column).any():
            drawn += [p.name for p in plot_class_scaling(groups, summary, prop_fits, name, column, unit=unit,
                                                         out=figures / f"{name}_wf_subsets")]
        per_compound = per_compound_scaling(materials, name, classes=classes, confidence=analysis["confidence"])
        if per_compound.empty:
            log.warning("%s: no per-material errors (set protocol.per_material: true for per-compound scaling)", name)
        else:
            entry["per_compound"] = summarise_per_compound(per_compound)
            drawn += [p.name for p in plot_per_compound(materials, per_compound, name, unit=unit,
                                                        out=figures / f"{name}_per_compound")]
            tables.append(per_compound)
        entry["figures"] = drawn
        record["properties"][name] = entry
    write_csv(pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=PER_COMPOUND_COLUMNS),
              outputs["compounds"])
    write_json(record, outputs["json"])
