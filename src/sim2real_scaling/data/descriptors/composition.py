"""Chemical formulas -> atomic fractions -> the 580-dim compositional kernel mean descriptor (KMD).

Definition (Kusaba, Hayashi, Liu, Wakiuchi, Yoshida, "Representation of materials by kernel mean
embedding", Phys. Rev. B 108, 134107 (2023); reference code ``KmdPlus.KMD(method="1d")``, used with
``sigma="auto"``): a composition is the probability distribution ``P = sum_e x_e delta(e)`` over its
elements ``e`` with atomic fractions ``x_e`` (sum 1). Each of the F = 58 element features (the
XenonPy ``elements_completed``-style table in ``sim2real_scaling/data/element_features.csv``, see
:mod:`.element_table`) is min-max scaled to [0, 1] over the 94 elements of that table,
``f_e = (v_e - min) / (max - min)``. For each feature the kernel mean embedding of P with a Gaussian
kernel is read off at G (``grid_points``) equally spaced points ``g_k = k / (G - 1)``, k = 0..G-1::

    phi_{f,k} = sum_e x_e exp(-(f_e - g_k)^2 / (2 s^2))

and the F blocks of G values are concatenated feature by feature, giving F * G = 58 * 10 = 580
columns named ``{feature}_k{k}``. The default kernel width ``s`` is KmdPlus' ``sigma="auto"``: there
the kernel is ``exp(-(f - g)^2 / h^2)`` with the grid spacing ``h = 1 / (G - 1)``, i.e.
``s = h / sqrt(2)`` (0.0786 for G = 10): adjacent grid points sit about 1.4 s apart, so every scaled
value is seen by at least one grid point with weight >= exp(-1/4) = 0.78 and the embedding stays
invertible (KmdPlus' inverse transform recovers the fractions). No further normalisation is applied:
each block is a mixture of Gaussian bumps with weights summing to 1, values lie in [0, G].

The descriptor is invariant to scaling the formula (``Bi2Te3`` == ``Bi4Te6``) and linear in the
fractions (``Bi2Te3`` == 0.4 * ``Bi`` + 0.6 * ``Te``).
"""

from __future__ import annotations

import functools
import io
import math
import re
import warnings
from collections.abc import Sequence
from importlib import resources

import numpy as np
import pandas as pd

from . import DescriptorError

STATISTICS = ("kernel_mean", "summary")
SUMMARY_STATS = ("mean", "var", "max", "min")
_ISOTOPE_TOKEN = re.compile(r"[DT](?![a-z])")  # D / T: pymatgen silently reads them as H


@functools.lru_cache(maxsize=1)
def _element_table() -> pd.DataFrame:
    text = resources.files("sim2real_scaling").joinpath("data/element_features.csv").read_text()
    table = pd.read_csv(io.StringIO(text), comment="#", index_col="symbol")
    return table.drop(columns="Z").astype(float)


def load_element_table() -> pd.DataFrame:
    """The packaged element table (a copy): index element symbol (H..Pu, 94 rows), 58 feature columns
    in the physical units listed in the CSV header (the ``Z`` column is dropped)."""
    return _element_table().copy()


@functools.lru_cache(maxsize=1)
def _scaled_features() -> tuple[dict[str, int], np.ndarray, tuple[str, ...]]:
    """(symbol -> row, min-max scaled features (94, 58) in [0, 1], feature names)."""
    table = _element_table()
    values = table.to_numpy(dtype=np.float64)
    lo, hi = values.min(axis=0), values.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)  # a constant feature would scale to 0 (none is constant)
    scaled = (values - lo) / span
    scaled.setflags(write=False)
    return {s: i for i, s in enumerate(table.index)}, scaled, tuple(table.columns)


def element_feature_names() -> list[str]:
    """The 58 element feature names, in descriptor block order."""
    return list(_scaled_features()[2])


def _parse_one(formula: object) -> tuple[dict[str, float] | None, str | None]:
    from pymatgen.core import Composition, Element

    if not isinstance(formula, str):
        return None, f"not a string: {formula!r}"
    if not formula.strip():
        return None, "empty formula"
    if _ISOTOPE_TOKEN.search(formula):
        return None, "contains 'D' or 'T', which pymatgen would silently read as hydrogen"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            comp = Composition(formula)
    except Exception as exc:  # pymatgen raises ValueError, sometimes other types, on bad formulas
        return None, f"pymatgen cannot parse it: {exc}"
    amounts: dict[str, float] = {}
    for species, amount in comp.items():
        symbol = str(getattr(species, "symbol", species))
        if not isinstance(species, Element):
            return None, f"unknown element '{symbol}'"
        if not math.isfinite(amount) or amount < 0:
            return None, f"invalid amount {amount!r} for {symbol}"
        if amount > 0:  # elements with amount 0 (e.g. 'PbTe1Se0') are dropped
            amounts[symbol] = amounts.get(symbol, 0.0) + float(amount)
    total = sum(amounts.values())
    if not amounts or total <= 0:
        return None, "no element with a positive amount"
    return {s: a / total for s, a in amounts.items()}, None


def parse_formulas(formulas: Sequence[str]) -> tuple[list[dict[str, float] | None], list[str | None]]:
    """Atomic fractions per formula (summing to 1) via ``pymatgen.core.Composition``.

    Returns ``(fractions, reasons)``, both of length ``len(formulas)``: ``fractions[i]`` maps element
    symbol -> atomic fraction and ``reasons[i]`` is None, or ``fractions[i]`` is None and
    ``reasons[i]`` says why: pymatgen cannot parse the string (lower-case symbol typos such as ``ga``,
    ``%``, ``/``, ``*``, unbalanced brackets...), an unknown element (``Xx``, ``Mm``: pymatgen reads
    these as dummy species), a negative amount, no element with a positive amount, an empty or
    non-string entry, or the isotope symbols ``D``/``T`` (pymatgen maps them to H, which for strings
    such as ``TI0.1...`` hides a typo). Elements with amount 0 are dropped; brackets are expanded.
    """
    fractions: list[dict[str, float] | None] = []
    reasons: list[str | None] = []
    for formula in formulas:
        frac, reason = _parse_one(formula)
        fractions.append(frac)
        reasons.append(reason)
    return fractions, reasons


def _fraction_matrix(formulas: Sequence[str]) -> np.ndarray:
    """(n, 94) atomic fractions over the element table; raises DescriptorError on the first bad row."""
    index, _, _ = _scaled_features()
    fractions, reasons = parse_formulas(formulas)
    bad: list[tuple[int, str]] = []
    weights = np.zeros((len(formulas), len(index)), dtype=np.float64)
    for row, (frac, reason) in enumerate(zip(fractions, reasons)):
        if frac is None:
            bad.append((row, reason or "unparseable"))
            continue
        outside = sorted(s for s in frac if s not in index)
        if outside:
            bad.append((row, f"element(s) {', '.join(outside)} outside the element table (H..Pu)"))
            continue
        for symbol, x in frac.items():
            weights[row, index[symbol]] = x
    if bad:
        row, reason = bad[0]
        more = f" (and {len(bad) - 1} more bad formulas)" if len(bad) > 1 else ""
        raise DescriptorError(f"composition {formulas[row]!r} at row {row}: {reason}{more}")
    return weights


def composition_kmd_descriptor(
    formulas: Sequence[str],
    *,
    grid_points: int = 10,
    kernel_width: float | None = None,
    statistic: str = "kernel_mean",
) -> tuple[np.ndarray, list[str]]:
    """Compositional descriptor of each formula.

    ``statistic="kernel_mean"`` (default): the kernel mean descriptor defined in the module
    docstring; values float64 of shape ``(len(formulas), 58 * grid_points)`` (580 for the default
    10 points), names ``'{feature}_k{k}'`` (``'atomic_number_k0'`` .. ``'num_s_valence_k9'``),
    feature-major. ``kernel_width`` is the Gaussian ``s`` on the [0, 1]-scaled feature axis;
    None means ``1 / ((grid_points - 1) * sqrt(2))`` (KmdPlus' automatic width).

    ``statistic="summary"``: the summary-statistics baseline of the same paper (KmdPlus
    ``StatsDescriptor``): fraction-weighted mean and variance, max and min over the present elements
    of each scaled feature; shape ``(n, 4 * 58)``, names ``'{feature}_{mean|var|max|min}'``,
    statistic-major. ``grid_points`` and ``kernel_width`` are ignored.

    Raises :class:`DescriptorError` naming the first formula (and its row) that does not parse or
    has an element outside H..Pu, and ``ValueError`` for bad parameters.
    """
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
    _, scaled, names = _scaled_features()
    if statistic == "kernel_mean":
        if isinstance(grid_points, bool) or not isinstance(grid_points, (int, np.integer)) or grid_points < 2:
            raise ValueError(f"grid_points must be an integer >= 2, got {grid_points!r}")
        width = 1.0 / ((grid_points - 1) * math.sqrt(2.0)) if kernel_width is None else float(kernel_width)
        if not (math.isfinite(width) and width > 0):
            raise ValueError(f"kernel_width must be a positive number, got {kernel_width!r}")
    weights = _fraction_matrix(formulas)

    if statistic == "summary":
        mean = weights @ scaled
        var = np.maximum(weights @ scaled**2 - mean**2, 0.0)
        present = weights[:, :, None] > 0  # (n, 94, 1)
        maxi = np.where(present, scaled[None], -np.inf).max(axis=1) if len(weights) else mean
        mini = np.where(present, scaled[None], np.inf).min(axis=1) if len(weights) else mean
        values = np.concatenate([mean, var, maxi, mini], axis=1)
        out_names = [f"{f}_{s}" for s in SUMMARY_STATS for f in names]
        return np.ascontiguousarray(values, dtype=np.float64), out_names

    grid = np.linspace(0.0, 1.0, grid_points)
    # Per-element embedding (94, 58, G): Gaussian bumps at each element's scaled feature values.
    element_kmd = np.exp(-((scaled[:, :, None] - grid[None, None, :]) ** 2) / (2.0 * width**2))
    values = weights @ element_kmd.reshape(len(scaled), -1)
    out_names = [f"{f}_k{k}" for f in names for k in range(grid_points)]
    return np.ascontiguousarray(values, dtype=np.float64), out_names
