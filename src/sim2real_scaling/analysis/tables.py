"""Reading, validating and slicing the tables of the output contract.

The workflow writes, and users may bring their own:

``summary.csv``
    ``property, method, n, m, mae_mean, mae_ci_low, mae_ci_high, trials`` (+ optional ``mae_sd`` and more):
    one row per (property, method, n, m); ``mae_*`` in the property's own units, the CI is the 90%
    bootstrap interval of the mean over ``trials`` trials. ``method`` is a transfer method (``finetune``,
    ``multitask``, ``feature_extraction``, ``affine``; ``n > 0``) or a reference (``direct``, ``simulation``;
    ``n = 0``); the older name ``transfer`` is read as ``finetune``. ``n`` = number of simulated (source)
    samples used for pretraining, ``m`` = number of experimental training samples.
``trials.csv``
    ``property, method, n, m, trial, mae`` (+ optional ``replicate``, the pretraining draw of the trial, and
    ``status``): one row per trial; an empty ``mae`` is a diverged trial, left out of every mean.
``group_trials.csv``
    ``property, method, n, m, trial, group_by, group, mae, count``: the MAE on the test samples of
    one group (a polymer class, a single compound...) in one trial; ``count`` test samples.

Every reader raises :class:`TableError` (a ``ValueError``) with a one-line message that names the
file, the column and, where it applies, the rows (as CSV line numbers, header = line 1) - so a
command-line tool can print it as is. Nothing here fits or plots.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sim2real_scaling.contract import REFERENCE_METHODS, TRANSFER_METHODS, canonical_method, is_transfer

__all__ = [
    "TableError",
    "SUMMARY_COLUMNS",
    "TRIALS_COLUMNS",
    "GROUP_TRIALS_COLUMNS",
    "METHODS",
    "Z90",
    "read_summary",
    "read_trials",
    "read_group_trials",
    "validate_summary",
    "validate_trials",
    "validate_group_trials",
    "select_property",
    "summary_standard_errors",
    "curve",
    "transfer_method",
]

SUMMARY_COLUMNS: tuple[str, ...] = (
    "property",
    "method",
    "n",
    "m",
    "mae_mean",
    "mae_ci_low",
    "mae_ci_high",
    "trials",
)
TRIALS_COLUMNS: tuple[str, ...] = ("property", "method", "n", "m", "trial", "mae")
GROUP_TRIALS_COLUMNS: tuple[str, ...] = (
    "property",
    "method",
    "n",
    "m",
    "trial",
    "group_by",
    "group",
    "mae",
    "count",
)
METHODS: tuple[str, ...] = (*TRANSFER_METHODS, *REFERENCE_METHODS)

#: Standard-normal quantile of a two-sided 90% interval: half-width of a 90% CI / Z90 = SE.
Z90: float = 1.6448536269514722

_MAX_LISTED_ROWS = 8


class TableError(ValueError):
    """A table of the output contract is missing, unreadable or inconsistent (one-line message)."""


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def _lines(index: Sequence[int] | pd.Index) -> str:
    """CSV line numbers (header = line 1) of DataFrame row positions, shortened when many."""
    lines = [int(i) + 2 for i in index]
    shown = ", ".join(str(v) for v in lines[:_MAX_LISTED_ROWS])
    if len(lines) > _MAX_LISTED_ROWS:
        shown += f", ... ({len(lines)} rows)"
    return shown


def _describe(df: pd.DataFrame, index: Sequence[int] | pd.Index) -> str:
    """Short description 'line 5 (density, transfer, n=100, m=601)' of the first offending row."""
    first = index[0]
    row = df.loc[first]
    keys = [
        f"{c}={row[c]:g}" if isinstance(row[c], (float, np.floating)) else f"{c}={row[c]}"
        for c in ("property", "method", "n", "m", "group")
        if c in df.columns
    ]
    return f"line {int(first) + 2} ({', '.join(keys)})"


def _read_csv(path: str | Path, kind: str) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise TableError(f"{path}: {kind} file not found")
    if path.is_dir():
        raise TableError(f"{path}: is a directory, expected a {kind} CSV file")
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise TableError(f"{path}: {kind} file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise TableError(f"{path}: cannot parse {kind} CSV: {msg}") from None
    df.columns = [str(c).strip() for c in df.columns]
    return df.reset_index(drop=True)


def _require_columns(df: pd.DataFrame, required: Sequence[str], source: str) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise TableError(
            f"{source}: missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"found {', '.join(repr(c) for c in df.columns) or 'none'}"
        )
    if len(df) == 0:
        raise TableError(f"{source}: no data rows")


def _numeric(df: pd.DataFrame, column: str, source: str, *, allow_nan: bool) -> None:
    """Convert ``df[column]`` to float in place; complain about text and (optionally) NaN."""
    values = pd.to_numeric(df[column], errors="coerce")
    bad_text = values.isna() & df[column].notna()
    if bad_text.any():
        idx = df.index[bad_text]
        raise TableError(
            f"{source}: column '{column}' is not numeric at line(s) {_lines(idx)} "
            f"(e.g. {df.loc[idx[0], column]!r})"
        )
    if not allow_nan and values.isna().any():
        idx = df.index[values.isna()]
        raise TableError(
            f"{source}: column '{column}' has NaN/empty values at line(s) {_lines(idx)}, "
            f"first at {_describe(df, idx)}"
        )
    if np.isinf(values).any():
        idx = df.index[np.isinf(values)]
        raise TableError(f"{source}: column '{column}' has infinite values at line(s) {_lines(idx)}")
    df[column] = values.astype(float)


def _drop_nan(df: pd.DataFrame, column: str, source: str) -> pd.DataFrame:
    """Drop rows whose ``column`` is empty/NaN (text still errors); record their CSV lines."""
    values = pd.to_numeric(df[column], errors="coerce")
    nan = values.isna() & df[column].isna()
    out = df[~nan].copy()
    out.attrs["dropped_lines"] = [int(i) + 2 for i in df.index[nan]]
    if out.empty:
        raise TableError(f"{source}: every row has an empty/NaN '{column}'")
    return out


def _check_common(df: pd.DataFrame, source: str, value_column: str, allow_nan_value: bool = False) -> pd.DataFrame:
    df = df.copy()
    df["property"] = df["property"].astype(str).str.strip()
    if (df["property"].isin(["", "nan"])).any():
        idx = df.index[df["property"].isin(["", "nan"])]
        raise TableError(f"{source}: column 'property' is empty at line(s) {_lines(idx)}")
    df["method"] = df["method"].astype(str).str.strip().str.lower().map(canonical_method)
    bad = ~df["method"].isin(METHODS)
    if bad.any():
        idx = df.index[bad]
        raise TableError(
            f"{source}: column 'method' must be one of {', '.join(METHODS)} (or the older 'transfer'); got "
            f"{df.loc[idx[0], 'method']!r} at line(s) {_lines(idx)}"
        )
    for col in ("n", "m"):
        _numeric(df, col, source, allow_nan=False)
        neg = df[col] < 0
        if neg.any():
            raise TableError(f"{source}: column '{col}' is negative at line(s) {_lines(df.index[neg])}")
    reference = df["method"].isin(REFERENCE_METHODS)
    bad_direct = reference & (df["n"] != 0)
    if bad_direct.any():
        idx = df.index[bad_direct]
        raise TableError(
            f"{source}: {df.loc[idx[0], 'method']} rows (a reference without source rows) must have n = 0; "
            f"line(s) {_lines(idx)} have n = {df.loc[idx[0], 'n']:g}"
        )
    bad_transfer = ~reference & (df["n"] <= 0)
    if bad_transfer.any():
        idx = df.index[bad_transfer]
        raise TableError(f"{source}: {df.loc[idx[0], 'method']} rows need n > 0; line(s) {_lines(idx)} have n = 0")
    zero_m = df["m"] <= 0
    if zero_m.any():
        raise TableError(f"{source}: column 'm' must be > 0; line(s) {_lines(df.index[zero_m])}")
    _numeric(df, value_column, source, allow_nan=allow_nan_value)
    neg = df[value_column] < 0
    if neg.any():
        raise TableError(
            f"{source}: column '{value_column}' is negative at line(s) {_lines(df.index[neg])}"
        )
    return df


# ----------------------------------------------------------------------------------------------
# validation of DataFrames (used by the readers and by the workflow on in-memory tables)
# ----------------------------------------------------------------------------------------------


def validate_summary(
    df: pd.DataFrame, source: str = "summary", *, drop_nan_mean: bool = False
) -> pd.DataFrame:
    """Validate a summary table and return a cleaned copy.

    Checks the required columns, numeric ``n, m, mae_*, trials`` (``mae_mean`` must not be NaN;
    NaN CIs, ``trials`` and ``mae_sd`` are tolerated and only weaken the weighting), ``method`` in
    {transfer, direct}, ``n = 0`` for direct rows and ``n > 0`` for transfer rows, no negative MAE,
    ``mae_ci_low <= mae_ci_high``, and no duplicated (property, method, n, m).

    Args:
        df: the table as read.
        source: name used in error messages (usually the file path).
        drop_nan_mean: drop rows with an empty/NaN ``mae_mean`` (points where every trial
            diverged, as the workflow's aggregation writes them with ``trials = 0``) instead of
            raising; their CSV lines are listed in ``result.attrs["dropped_lines"]``.

    Returns:
        A copy with stripped strings, lower-case ``method`` and float numeric columns; the index
        is the row position in the file (CSV line = index + 2).

    Raises:
        TableError: with the file, the column and the offending CSV line numbers.
    """
    _require_columns(df, SUMMARY_COLUMNS, source)
    dropped: list[int] = []
    if drop_nan_mean:
        df = _drop_nan(df, "mae_mean", source)
        dropped = df.attrs.get("dropped_lines", [])
    out = _check_common(df, source, "mae_mean")
    out.attrs["dropped_lines"] = dropped
    for col in ("mae_ci_low", "mae_ci_high", "trials"):
        _numeric(out, col, source, allow_nan=True)
    if "mae_sd" in out.columns:
        _numeric(out, "mae_sd", source, allow_nan=True)
    bad_ci = out["mae_ci_low"] > out["mae_ci_high"]
    if bad_ci.any():
        raise TableError(
            f"{source}: mae_ci_low > mae_ci_high at line(s) {_lines(out.index[bad_ci])}"
        )
    bad_trials = out["trials"] < 1
    if bad_trials.any():
        raise TableError(f"{source}: column 'trials' < 1 at line(s) {_lines(out.index[bad_trials])}")
    keys = ["property", "method", "n", "m"]
    dup = out.duplicated(keys, keep=False)
    if dup.any():
        idx = out.index[dup]
        raise TableError(
            f"{source}: duplicated (property, method, n, m) at line(s) {_lines(idx)}, "
            f"first {_describe(out, idx)}"
        )
    return out


def validate_trials(
    df: pd.DataFrame, source: str = "trials", *, drop_nan_mae: bool = True
) -> pd.DataFrame:
    """Validate a trials table (checks as :func:`validate_summary`; extra columns are kept).

    Args:
        df: the table as read. source: name used in error messages.
        drop_nan_mae: accept trials with an empty/NaN ``mae`` (diverged trials; they stay in the table, so
            the trial still counts in the resampling design, and every mean leaves them out; their lines in
            ``result.attrs["dropped_lines"]``); ``False``: raise instead.
    """
    _require_columns(df, TRIALS_COLUMNS, source)
    values = pd.to_numeric(df["mae"], errors="coerce")
    nan_lines = [int(i) + 2 for i in df.index[values.isna() & df["mae"].isna()]]
    if nan_lines and not drop_nan_mae:
        raise TableError(f"{source}: column 'mae' has NaN/empty values at line(s) {_lines(np.array(nan_lines) - 2)}")
    if nan_lines and len(nan_lines) == len(df):
        raise TableError(f"{source}: every row has an empty/NaN 'mae'")
    out = _check_common(df, source, "mae", allow_nan_value=True)
    out.attrs["dropped_lines"] = nan_lines
    if "replicate" in out.columns:
        _numeric(out, "replicate", source, allow_nan=True)
    dup = out.duplicated(["property", "method", "n", "m", "trial"], keep=False)
    if dup.any():
        idx = out.index[dup]
        raise TableError(
            f"{source}: duplicated (property, method, n, m, trial) at line(s) {_lines(idx)}"
        )
    return out


def validate_group_trials(
    df: pd.DataFrame, source: str = "group_trials", *, drop_nan_mae: bool = True
) -> pd.DataFrame:
    """Validate a group_trials table; ``count`` must be >= 1; NaN ``mae`` as in :func:`validate_trials`."""
    _require_columns(df, GROUP_TRIALS_COLUMNS, source)
    values = pd.to_numeric(df["mae"], errors="coerce")
    nan_lines = [int(i) + 2 for i in df.index[values.isna() & df["mae"].isna()]]
    if nan_lines and not drop_nan_mae:
        raise TableError(f"{source}: column 'mae' has NaN/empty values at line(s) {_lines(np.array(nan_lines) - 2)}")
    if nan_lines and len(nan_lines) == len(df):
        raise TableError(f"{source}: every row has an empty/NaN 'mae'")
    out = _check_common(df, source, "mae", allow_nan_value=True)
    out.attrs["dropped_lines"] = nan_lines
    if "replicate" in out.columns:
        _numeric(out, "replicate", source, allow_nan=True)
    out["group_by"] = out["group_by"].astype(str).str.strip()
    out["group"] = out["group"].astype(str).str.strip()
    _numeric(out, "count", source, allow_nan=True)
    bad = out["count"] < 1
    if bad.any():
        raise TableError(f"{source}: column 'count' < 1 at line(s) {_lines(out.index[bad])}")
    dup = out.duplicated(["property", "method", "n", "m", "trial", "group_by", "group"], keep=False)
    if dup.any():
        idx = out.index[dup]
        raise TableError(
            f"{source}: duplicated (property, method, n, m, trial, group_by, group) at "
            f"line(s) {_lines(idx)}"
        )
    return out


def read_summary(path: str | Path, *, drop_nan_mean: bool = False) -> pd.DataFrame:
    """Read and validate a ``summary.csv`` (see :func:`validate_summary`)."""
    return validate_summary(_read_csv(path, "summary"), str(path), drop_nan_mean=drop_nan_mean)


def read_trials(path: str | Path, *, drop_nan_mae: bool = True) -> pd.DataFrame:
    """Read and validate a ``trials.csv`` (see :func:`validate_trials`)."""
    return validate_trials(_read_csv(path, "trials"), str(path), drop_nan_mae=drop_nan_mae)


def read_group_trials(path: str | Path, *, drop_nan_mae: bool = True) -> pd.DataFrame:
    """Read and validate a ``group_trials.csv`` (see :func:`validate_group_trials`)."""
    return validate_group_trials(
        _read_csv(path, "group_trials"), str(path), drop_nan_mae=drop_nan_mae
    )


# ----------------------------------------------------------------------------------------------
# slicing
# ----------------------------------------------------------------------------------------------


def select_property(
    df: pd.DataFrame, property: str | None, source: str = "table"
) -> tuple[str, pd.DataFrame]:
    """Rows of one property.

    Args:
        df: a validated table with a ``property`` column.
        property: the property to keep; ``None`` is allowed only when the table holds one.
        source: name used in error messages.

    Returns:
        ``(property, rows)`` with the rows' original index kept.

    Raises:
        TableError: unknown property, or several present and none chosen.
    """
    present = list(dict.fromkeys(df["property"].tolist()))
    if property is None:
        if len(present) != 1:
            raise TableError(
                f"{source}: holds {len(present)} properties ({', '.join(present)}); choose one "
                "with --property"
            )
        property = present[0]
    elif property not in present:
        raise TableError(
            f"{source}: unknown property {property!r}; present: {', '.join(present)}"
        )
    return property, df[df["property"] == property]


def summary_standard_errors(summary: pd.DataFrame) -> np.ndarray:
    """Standard error of each row's ``mae_mean`` (property units), shape ``(rows,)``.

    ``mae_sd / sqrt(trials)`` where ``mae_sd`` is present and finite (the trial-level SD), else the
    half-width of the 90% CI divided by :data:`Z90` (the CI is a bootstrap interval of the mean,
    close to normal for hundreds of trials). NaN where neither is known; fitting code replaces
    missing or zero SEs (see :mod:`sim2real_scaling.analysis.laws`).
    """
    half = (summary["mae_ci_high"].to_numpy(float) - summary["mae_ci_low"].to_numpy(float)) / 2.0
    se = half / Z90
    if "mae_sd" in summary.columns:
        sd = summary["mae_sd"].to_numpy(float)
        trials = summary["trials"].to_numpy(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            se_sd = sd / np.sqrt(trials)
        use = np.isfinite(se_sd) & (se_sd > 0)
        se = np.where(use, se_sd, se)
    return np.asarray(se, dtype=float)


def transfer_method(rows: pd.DataFrame, method: str | None = None, source: str = "table") -> str:
    """The transfer method of a property's rows: ``method`` if given (and present), else the one present.

    Raises:
        TableError: none present, or several and none chosen (one transfer method per study).
    """
    present = [m for m in dict.fromkeys(rows["method"].tolist()) if is_transfer(m)]
    if method is not None:
        method = canonical_method(method)
        if method not in set(rows["method"]):
            raise TableError(f"{source}: no {method} rows; present: {', '.join(dict.fromkeys(rows['method']))}")
        return method
    if not present:
        raise TableError(f"{source}: no transfer rows (methods present: {', '.join(dict.fromkeys(rows['method']))})")
    if len(present) > 1:
        raise TableError(f"{source}: several transfer methods ({', '.join(present)}); choose one with --method")
    return present[0]


def curve(
    summary: pd.DataFrame,
    *,
    vary: str = "n",
    fixed: float | None = None,
    method: str | None = None,
    source: str = "summary",
) -> tuple[float, pd.DataFrame]:
    """One 1-D learning curve of one property: the rows where ``vary`` changes and the other size is fixed.

    Args:
        summary: validated summary rows of ONE property.
        vary: ``"n"`` (R(n) at fixed m, transfer rows) or ``"m"`` (R(m) at fixed n).
        fixed: value of the other size; ``None`` = the largest available. For ``vary="n"`` it is an
            m value; for ``vary="m"`` an n value (use 0 with ``method="direct"``).
        method: the method (default: the transfer method present; a reference only makes sense with
            ``vary="m"``).
        source: name used in error messages.

    Returns:
        ``(fixed, rows)``: the fixed value used and the rows sorted by ``vary``, with an added
        ``se`` column (:func:`summary_standard_errors`).

    Raises:
        TableError: no such rows, or the requested fixed value is absent.
    """
    if vary not in ("n", "m"):
        raise TableError(f"vary must be 'n' or 'm', got {vary!r}")
    other = "m" if vary == "n" else "n"
    method = transfer_method(summary, method, source)
    rows = summary[summary["method"] == method]
    if rows.empty:
        raise TableError(f"{source}: no {method} rows")
    values = np.unique(rows[other].to_numpy(float))
    if fixed is None:
        fixed = float(values.max())
    elif not np.any(np.isclose(values, fixed)):
        raise TableError(
            f"{source}: no {method} rows at {other} = {fixed:g}; available {other}: "
            f"{', '.join(f'{v:g}' for v in values)}"
        )
    rows = rows[np.isclose(rows[other].to_numpy(float), fixed)].sort_values(vary).copy()
    rows["se"] = summary_standard_errors(rows)
    return float(fixed), rows
