"""Reading and cleaning source/target tables.

A table is a CSV with a key column (SMILES, formula, or a polymer-solvent pair), a value column and
optional id/class columns (paths and names from the config). Cleaning canonicalises keys (RDKit for
SMILES, pymatgen for formulas), rejects unusable rows with a reason that names file, row and column,
and resolves duplicate molecules by a policy (mean, first or error). Inputs are never modified.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

KEY = "key"
VALUE = "value"


class DataError(ValueError):
    """A table cannot be used; the message names the file and the column or row."""


@dataclass
class CleanTable:
    """A cleaned table: one row per canonical key, plus the rows that were rejected and why."""

    table: pd.DataFrame  # columns: key, value, [id], [class columns...]
    rejected: pd.DataFrame  # columns: file, row, column, value, reason
    path: str


def _rejection(path: str, row: int, column: str, value: Any, reason: str) -> dict[str, Any]:
    # row numbers are 1-based data rows as a spreadsheet shows them below the header (header = row 1)
    return {"file": path, "row": int(row) + 2, "column": column, "value": value, "reason": reason}


def read_csv_checked(path: str | Path, required: Sequence[str], what: str,
                     config_keys: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Read a CSV and check it has ``required`` columns; errors name the file and the columns.

    ``config_keys`` (column -> the config key that names it) lets a missing-column error say which key to fix.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{what}: file not found: {p}")
    try:
        frame = pd.read_csv(p, comment=None, keep_default_na=True)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{what}: {p} is empty") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{what}: {p} is not a readable CSV file ({str(exc).strip()}); tables must be "
                        "comma-separated text with a header row (save spreadsheets as CSV)") from exc
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(
            f"{what}: {p} has no column(s) {missing}; columns present: {list(frame.columns)}"
            f"{_column_hint(missing, [str(c) for c in frame.columns], config_keys or {})}"
        )
    if frame.empty:
        raise DataError(f"{what}: {p} has a header but no rows")
    return frame


def _column_hint(missing: Sequence[str], present: Sequence[str], config_keys: Mapping[str, str]) -> str:
    """' (did you mean ...?)' for near-misses (case, spaces, typos) or a separator hint, else ''."""
    import difflib

    if len(present) == 1 and any(sep in present[0] for sep in (";", "\t", "|")):
        return " (the header is one column: is the file separated by ';' or tabs instead of commas?)"
    hints = []
    for name in missing:
        folded = {c.strip().lower(): c for c in present}
        close = [folded[name.strip().lower()]] if name.strip().lower() in folded else \
            difflib.get_close_matches(name, present, n=1, cutoff=0.6)
        if close:
            hints.append(f"{close[0]!r} for {name!r}")
    keys = [config_keys[m] for m in missing if m in config_keys]
    parts = ([f"did you mean {', '.join(hints)}?"] if hints else []) + \
        ([f"fix the file's header or the config key {' / '.join(keys)}"] if keys else [])
    return f" ({' '.join(parts)})" if parts else ""


def apply_row_filter(frame: pd.DataFrame, spec: Mapping[str, Any], path: str | Path, what: str) -> pd.DataFrame:
    """Keep the rows whose columns hold the values listed in the table's ``filter`` (config ``what``)."""
    for column, allowed in (spec.get("filter") or {}).items():
        if column not in frame.columns:
            raise DataError(f"{what}.filter: {path} has no column {column!r}")
        allowed = allowed if isinstance(allowed, list) else [allowed]
        frame = frame[frame[column].isin(allowed)]
        if frame.empty:
            raise DataError(f"{what}.filter: no row of {path} has {column} in {allowed}")
    return frame


def canonical_smiles(smiles: Sequence[Any]) -> tuple[list[str | None], list[str | None]]:
    """RDKit canonical SMILES (isomeric) per input; None plus a reason where it does not parse."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    out: list[str | None] = []
    reasons: list[str | None] = []
    for s in smiles:
        if not isinstance(s, str) or not s.strip():
            out.append(None)
            reasons.append("empty SMILES" if s is None or pd.isna(s) or not str(s).strip()
                           else f"not a SMILES string ({s!r}; is key_column the right column?)")
            continue
        mol = Chem.MolFromSmiles(s.strip())
        if mol is None or mol.GetNumAtoms() == 0:
            out.append(None)
            reasons.append("invalid SMILES (RDKit cannot parse it)")
            continue
        out.append(Chem.MolToSmiles(mol))
        reasons.append(None)
    return out, reasons


def canonical_formulas(formulas: Sequence[Any]) -> tuple[list[str | None], list[str | None]]:
    """A canonical composition string (elements sorted, atomic fractions to 6 digits) per formula."""
    from sim2real_scaling.data.descriptors.composition import load_element_table, parse_formulas

    texts = [f if isinstance(f, str) else "" for f in formulas]
    fractions, reasons = parse_formulas(texts)
    known = set(load_element_table().index)
    reasons = list(reasons)
    out: list[str | None] = []
    for i, frac in enumerate(fractions):
        outside = sorted(el for el in frac if el not in known) if frac is not None else []
        if outside:  # the compositional descriptor covers H..Pu only: reject here, not in featurize
            reasons[i] = f"element(s) {', '.join(outside)} outside the descriptor's element table (H..Pu)"
            frac = None
        if frac is None:
            out.append(None)
        else:
            out.append("".join(f"{el}{x:.6g}" for el, x in sorted(frac.items())))
    return out, reasons


def canonical_keys(keys: Sequence[Any], kind: str) -> tuple[list[str | None], list[str | None]]:
    if kind == "smiles":
        return canonical_smiles(keys)
    if kind == "composition":
        return canonical_formulas(keys)
    raise DataError(f"input kind {kind!r} has no single-key canonicaliser")


def clean_table(
    spec: Mapping[str, Any],
    *,
    kind: str,
    role: str,
    property_name: str,
    duplicates: str = "mean",
    extra_columns: Sequence[str] = (),
) -> CleanTable:
    """Read and clean one source or target table described by a config ``table`` entry.

    Rows are rejected (and listed with a reason) for an empty/invalid key, a missing, non-numeric or
    non-finite value. Duplicate keys are averaged (``mean``), the first kept (``first``), or raise
    (``error``) when their values differ.
    """
    path = str(spec["path"])
    what = f"properties.{property_name}.{role}"
    key_col, value_col = spec["key_column"], spec["value_column"]
    optional = [c for c in (spec.get("id_column"),) if c]
    required = [key_col, value_col, *optional, *[c for c in extra_columns if c]]
    config_keys = {key_col: f"{what}.key_column", value_col: f"{what}.value_column"}
    if spec.get("id_column"):
        config_keys[spec["id_column"]] = f"{what}.id_column"
    frame = read_csv_checked(path, required, what, config_keys)
    frame = apply_row_filter(frame, spec, path, what)

    rejected: list[dict[str, Any]] = []
    keys, reasons = canonical_keys(frame[key_col].tolist(), kind)
    values = pd.to_numeric(frame[value_col], errors="coerce").to_numpy(dtype=float)
    keep = np.ones(len(frame), dtype=bool)
    for i, (row, raw_key, reason) in enumerate(zip(frame.index, frame[key_col], reasons, strict=True)):
        if reason is not None:
            rejected.append(_rejection(path, row, key_col, raw_key, reason))
            keep[i] = False
            continue
        raw_value = frame[value_col].iloc[i]
        if not np.isfinite(values[i]):
            if pd.isna(raw_value):
                why = "missing value"
            elif np.isnan(values[i]):
                why = f"not a finite number ({raw_value!r} is not numeric)"
            else:
                why = f"not a finite number ({raw_value!r})"
            rejected.append(_rejection(path, row, value_col, raw_value, why))
            keep[i] = False

    table = pd.DataFrame({KEY: keys, VALUE: values, "source_row": frame.index.to_numpy() + 2})
    if spec.get("id_column"):
        table["id"] = frame[spec["id_column"]].to_numpy()
    for column in extra_columns:
        table[column] = frame[column].to_numpy()
    table = table[keep].reset_index(drop=True)
    table = _resolve_duplicates(table, duplicates, path, what)
    if table.empty:
        examples = "; ".join(f"row {r['row']} {r['column']}: {r['reason']}" for r in rejected[:3])
        raise DataError(f"{what}: no usable rows left in {path} ({len(rejected)} rejected, e.g. {examples})")
    rejected_frame = pd.DataFrame(rejected, columns=["file", "row", "column", "value", "reason"])
    return CleanTable(table=table, rejected=rejected_frame, path=path)


def _resolve_duplicates(table: pd.DataFrame, policy: str, path: str, what: str) -> pd.DataFrame:
    counts = table[KEY].value_counts()
    dup_keys = counts[counts > 1].index
    if len(dup_keys) == 0:
        return table
    if policy == "error":
        for k in dup_keys:
            rows = table.loc[table[KEY] == k]
            if rows[VALUE].nunique() > 1:
                raise DataError(
                    f"{what}: {path} rows {rows['source_row'].tolist()} are the same molecule ({k}) with "
                    f"conflicting values {rows[VALUE].tolist()} (set protocol.duplicates to mean or first)"
                )
        return table.drop_duplicates(KEY, keep="first").reset_index(drop=True)
    if policy == "first":
        return table.drop_duplicates(KEY, keep="first").reset_index(drop=True)
    other = {c: "first" for c in table.columns if c not in (KEY, VALUE)}
    merged = table.groupby(KEY, sort=False, as_index=False).agg({VALUE: "mean", **other})
    return merged[table.columns].reset_index(drop=True)
