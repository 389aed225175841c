"""Data QC before training: rows whose value is implausible next to the rest of their table or their simulation.

Three checks, each a robust z-score (distance from the median in units of 1.4826 x the median absolute
deviation, so a few bad rows cannot hide themselves by inflating the spread):

* ``outlier``: the value on the property's transformed scale (the transform the network is trained on) is far
  from the rest of its table;
* ``unit slip``: for a table of positive values, its log10 is far from the rest: the signature of a value in
  other units (a factor 1000 is 3 decades, however narrow the property's range is on a linear scale);
* ``disagreement``: where a material has both a simulated (source) and an experimental (target) value, the
  experimental value is far from what a robust (Theil-Sen) line through all such pairs predicts from its
  simulated value, compared with how far the other materials are (on the log10 scale for positive values).

Flagged rows are written to ``prepared/<property>/qc.csv`` (table, file, row, key, value, check, score,
reason) and listed in the report; with ``qc.action: drop`` (the default) they are left out of training and
testing, with ``flag`` they are kept. QC looks at whole tables before any split: its decisions are the same for
every trial and method.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim2real_scaling.data.transforms import PropertyTransform, TransformError

QC_COLUMNS = ["table", "file", "row", "key", "value", "check", "score", "reason"]
#: qc.csv: the flags and what was done with each row (``dropped`` or ``kept``)
QC_FILE_COLUMNS = [*QC_COLUMNS, "action"]
ACTIONS = ("flag", "drop")


@dataclass(frozen=True)
class QCSettings:
    """Config ``qc``: what to do with flagged rows, and how extreme a robust z-score must be to flag a row."""

    action: str = "drop"
    z_max: float = 6.0
    disagreement_z_max: float = 6.0
    gap: float = 2.0

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"qc.action must be one of {ACTIONS}, got {self.action!r}")

    @classmethod
    def from_config(cls, section: dict | None) -> QCSettings:
        s = dict(section or {})
        return cls(action=s.get("action", "drop"), z_max=float(s.get("z_max", 6.0)),
                   disagreement_z_max=float(s.get("disagreement_z_max", 6.0)), gap=float(s.get("gap", 2.0)))


def robust_z(values: np.ndarray) -> np.ndarray:
    """``(x - median) / (1.4826 MAD)``; where the MAD is 0 (over half the values equal) the mean absolute
    deviation x 1.2533 stands in; all values equal: zeros."""
    x = np.asarray(values, dtype=float)
    med = np.median(x)
    scale = 1.4826 * np.median(np.abs(x - med))
    if not scale > 0:
        scale = 1.2533 * np.mean(np.abs(x - med))
    if not scale > 0:
        return np.zeros_like(x)
    return (x - med) / scale


def isolated(z: np.ndarray, z_max: float, gap: float) -> np.ndarray:
    """Rows with ``|z| > z_max`` separated from the median by an empty stretch of more than ``gap`` robust SDs.

    A heavy tail (chi of non-solvents, metals among conductivities) is far from the median but continuous; a
    value in other units, or a handful of them, sits beyond a gap. ``z``: robust z-scores (median 0).
    """
    far = np.abs(z) > z_max
    if not far.any():
        return far
    order = np.argsort(z, kind="stable")
    zs = z[order]
    cum = np.concatenate([[0], np.cumsum(np.diff(zs) > gap)])  # cum[i]: gaps between sorted rows 0 and i
    k = min(int(np.searchsorted(zs, 0.0)), len(zs) - 1)  # the first sorted row at or above the median
    beyond = np.where(zs > 0, cum - cum[k] > 0, cum[k] - cum > 0)
    out = np.zeros(len(z), dtype=bool)
    out[order] = beyond
    return out & far


def _rows(table: pd.DataFrame) -> np.ndarray:
    return table["source_row"].to_numpy() if "source_row" in table.columns else np.arange(len(table)) + 2


def _flags(role: str, path: str, table: pd.DataFrame, mask: np.ndarray, check: str, score: np.ndarray,
           reasons: Sequence[str]) -> pd.DataFrame:
    idx = np.flatnonzero(mask)
    return pd.DataFrame({
        "table": role, "file": path, "row": _rows(table)[idx], "key": table["key"].to_numpy()[idx],
        "value": table["value"].to_numpy(dtype=float)[idx], "check": check, "score": score[idx],
        "reason": [reasons[i] for i in idx],
    }, columns=QC_COLUMNS)


def _factor(decades: float, than: str = "the median of its table") -> str:
    factor = 10 ** abs(decades)
    side = "larger" if decades > 0 else "smaller"
    return f"about {factor:.3g}x {side} than {than}"


def check_table(table: pd.DataFrame, role: str, path: str, steps: Sequence[str], settings: QCSettings,
                log_scale: bool = False) -> pd.DataFrame:
    """The outlier and unit-slip flags of one table (columns ``key, value`` and optionally ``source_row``).

    ``log_scale``: the values are log10s already (``scale: log10``), so the outlier check is the unit-slip check.
    """
    values = table["value"].to_numpy(dtype=float)
    out = []
    if len(values) < 8:  # a robust spread needs a handful of rows
        return pd.DataFrame(columns=QC_COLUMNS)
    try:
        transformed = PropertyTransform(list(steps)).fit(values).transform(values)
        z = robust_z(transformed)
        bad = isolated(z, settings.z_max, settings.gap)
        out.append(_flags(role, path, table, bad, "outlier", z, [
            f"value {v:.6g} is {zz:+.1f} robust SDs from the median of its table on the transformed scale "
            f"({' -> '.join(steps) or 'none'})" for v, zz in zip(values, z, strict=True)]))
    except TransformError:
        pass  # the prepare stage refuses such tables with its own message
    if (values > 0).all() and not log_scale and not any(s in ("log", "log10") for s in steps):
        logs = np.log10(values)
        z = robust_z(logs)
        med = float(np.median(logs))
        bad = isolated(z, settings.z_max, settings.gap)
        out.append(_flags(role, path, table, bad, "unit slip", z, [
            f"value {v:.6g} is {_factor(lv - med)} (log10 robust z {zz:+.1f}): a value in other units?"
            for v, lv, zz in zip(values, logs, z, strict=True)]))
    return _merge(out)


def _merge(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=QC_COLUMNS)
    flags = pd.concat(frames, ignore_index=True)
    # one row per (table, row): the checks that flagged it joined
    return (flags.sort_values("score", key=np.abs, ascending=False)
            .groupby(["table", "row"], as_index=False, sort=False)
            .agg({"file": "first", "key": "first", "value": "first", "check": lambda c: "; ".join(dict.fromkeys(c)),
                  "score": "first", "reason": lambda r: "; ".join(dict.fromkeys(r))})[QC_COLUMNS])


def check_disagreement(source: pd.DataFrame, target: pd.DataFrame, path: str, settings: QCSettings,
                       match: str = "key") -> pd.DataFrame:
    """Target rows whose experimental value disagrees with their material's simulated value far more than the
    other materials' do (robust z of the residual from a Theil-Sen line; log10 scale for positive values)."""
    from scipy import stats

    sim = source.drop_duplicates(match).set_index(match)["value"]
    matched = target[match].map(sim)
    have = matched.notna().to_numpy()
    if have.sum() < 8:
        return pd.DataFrame(columns=QC_COLUMNS)
    s = matched.to_numpy(dtype=float)[have]
    e = target["value"].to_numpy(dtype=float)[have]
    log = bool((s > 0).all() and (e > 0).all())
    xs, ys = (np.log10(s), np.log10(e)) if log else (s, e)
    if np.ptp(xs) == 0:
        return pd.DataFrame(columns=QC_COLUMNS)
    slope, intercept, _, _ = stats.theilslopes(ys, xs)
    residual = ys - (intercept + slope * xs)
    z = robust_z(residual)
    bad_local = isolated(z, settings.disagreement_z_max, settings.gap)
    z_full = np.zeros(len(target))
    z_full[have] = z
    bad = np.zeros(len(target), dtype=bool)
    bad[have] = bad_local
    scale = "log10 " if log else ""
    sims = np.full(len(target), np.nan)
    sims[have] = s
    resid_full = _full(residual, have)
    reasons = [
        f"experimental value {v:.6g} against simulated {sv:.6g}: {scale}residual {zz:+.1f} robust SDs from the "
        f"line through the {int(have.sum())} materials with both values"
        + (f" ({_factor(r, 'the line predicts')})" if log and math.isfinite(sv) else "")
        for v, sv, zz, r in zip(target["value"].to_numpy(dtype=float), sims, z_full, resid_full, strict=True)]
    return _flags("target", path, target, bad, "disagreement", z_full, reasons)


def _full(values: np.ndarray, have: np.ndarray) -> np.ndarray:
    out = np.zeros(len(have))
    out[have] = values
    return out


def qc_flags(source: pd.DataFrame, target: pd.DataFrame, *, source_path: str, target_path: str,
             steps: Sequence[str], settings: QCSettings, match: str = "key", log_scale: bool = False,
             same_quantity: bool = True) -> pd.DataFrame:
    """Every QC flag of a property's two tables (see the module docstring).

    ``same_quantity``: source and target measure the same quantity (the disagreement check only makes sense
    then; thermal against electrical conductivity disagree by physics, not by error).
    """
    checks = [check_table(source, "source", source_path, steps, settings, log_scale),
              check_table(target, "target", target_path, steps, settings, log_scale)]
    if same_quantity:
        checks.append(check_disagreement(source, target, target_path, settings, match=match))
    return _merge(checks)
