"""Cleaning source/target tables: keys, values and labels, with every dropped row named.

A table has a key column (SMILES, formula, or a polymer-solvent pair), a value column and optional id and
class columns (paths and names from the config). It is read by the one reader (:mod:`.tables`: every cell as
text, rows numbered as a spreadsheet shows them). Cleaning canonicalises keys (RDKit for SMILES, pymatgen for
formulas), parses values, rejects unusable rows with file, row, column and reason, keeps class and id labels
as text (blank labels are counted, never guessed), and resolves duplicate molecules by a policy (mean, first
or error). Inputs are never modified.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sim2real_scaling.data.tables import DataError, read_table

KEY = "key"
VALUE = "value"
REJECTED_COLUMNS = ["file", "row", "column", "value", "reason"]
# cells that mean "no value" (pandas' list): blank for values and labels alike
MISSING = frozenset(["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                     "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"])
UNIT_COLUMNS = ("unit", "units")

__all__ = ["KEY", "VALUE", "CleanTable", "DataError", "RejectedRowsError", "apply_row_filter", "canonical_formulas",
           "canonical_keys", "canonical_smiles", "clean_table", "parse_values"]


class RejectedRowsError(DataError):
    """Too many rows (or all) of a table were rejected; ``rejected`` holds them (file, row, column, value, reason)."""

    def __init__(self, message: str, rejected: pd.DataFrame | None = None) -> None:
        super().__init__(message)
        self.rejected = rejected if rejected is not None else pd.DataFrame(columns=REJECTED_COLUMNS)


@dataclass
class CleanTable:
    """A cleaned table: one row per canonical key, plus the rows that were rejected and why."""

    table: pd.DataFrame  # columns: key, value, source_row, [id], [class columns...]
    rejected: pd.DataFrame  # columns: file, row, column, value, reason
    path: str
    rows_read: int = 0  # data rows of the file after the table's filter
    rows_valid: int = 0  # rows left after rejections, before duplicates were merged
    columns: list[str] = field(default_factory=list)  # the file's header
    units: dict[str, list[int]] = field(default_factory=dict)  # value of a unit column -> its rows
    unit_column: str | None = None
    blank_labels: dict[str, list[int]] = field(default_factory=dict)  # label column -> rows with a blank label
    blank_ids: list[int] = field(default_factory=list)  # rows with a blank id (their key is used instead)
    notes: list[str] = field(default_factory=list)  # what the reader worked around


def _rejection(path: str, row: int, column: str, value: Any, reason: str) -> dict[str, Any]:
    """One rejected row; ``row`` is the row number as a spreadsheet shows it (header = row 1)."""
    return {"file": path, "row": int(row), "column": column, "value": value, "reason": reason}


def rejected_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=REJECTED_COLUMNS)


def read_spec(spec: Mapping[str, Any], what: str, required: Sequence[str],
              config_keys: Mapping[str, str] | None = None, notes: list[str] | None = None) -> pd.DataFrame:
    """Read the table of a config ``table`` entry with the one reader (its sheet and encoding keys)."""
    return read_table(spec["path"], what=what, required=required, config_keys=config_keys, sheet=spec.get("sheet"),
                      encoding=spec.get("encoding"), notes=notes)


def _matches(cells: pd.Series, allowed: Sequence[Any]) -> np.ndarray:
    """Cells (text) equal to one of ``allowed`` (from YAML: text, numbers or booleans)."""
    text = cells.str.strip()
    hit = np.array(text.isin([str(a) for a in allowed]), dtype=bool)
    numbers = [float(a) for a in allowed if isinstance(a, int | float) and not isinstance(a, bool)]
    if numbers:
        as_number = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
        hit |= np.isin(as_number, numbers)
    return hit


def apply_row_filter(frame: pd.DataFrame, spec: Mapping[str, Any], path: str, what: str) -> pd.DataFrame:
    """Keep the rows whose columns hold the values listed in the table's ``filter`` (config ``what``)."""
    for column, allowed in (spec.get("filter") or {}).items():
        if column not in frame.columns:
            raise DataError(f"{what}.filter: {path} has no column {column!r}; columns present: {list(frame.columns)}")
        allowed = allowed if isinstance(allowed, list) else [allowed]
        kept = frame[_matches(frame[column], allowed)]
        if kept.empty:
            seen = sorted(frame[column].str.strip().unique().tolist())[:8]
            raise DataError(f"{what}.filter: no row of {path} has {column} in {allowed} (values present: {seen})")
        frame = kept
    return frame


# ---- values -----------------------------------------------------------------------------------------

_DECIMAL_COMMA = re.compile(r"^[-+]?\d+,\d+([eE][-+]?\d+)?$")
_NUMBER_WITH_TEXT = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*[^\d\s.,eE+-].*$")


def parse_values(cells: pd.Series) -> tuple[np.ndarray, list[str | None]]:
    """Numbers of a value column (text cells); NaN and a reason where a cell is no finite number.

    Blank cells and NA words are ``missing value``; text is ``not a number ('abc' is not numeric)``, with a
    hint for a decimal comma or a unit in the cell; inf and overflow are ``not a finite number``. The Unicode
    minus sign is read as '-'.
    """
    text = cells.astype(str).str.strip().str.replace("\u2212", "-", regex=False)
    values = pd.to_numeric(text.where(~text.isin(MISSING), None), errors="coerce").to_numpy(dtype=float)
    reasons: list[str | None] = [None] * len(values)
    for i in np.flatnonzero(~np.isfinite(values)):
        raw = text.iloc[i]
        if raw in MISSING:
            reasons[i] = "missing value"
        elif np.isnan(values[i]):
            hint = ""
            if _DECIMAL_COMMA.match(raw):
                hint = (f"; a decimal comma? write {raw.replace(',', '.')}" if len(raw.split(",")[1]) != 3 else
                        f"; a decimal comma or a thousands separator? write {raw.replace(',', '.')} or "
                        f"{raw.replace(',', '')}")
            elif _NUMBER_WITH_TEXT.match(raw):
                hint = "; a unit or note in the cell? give the number alone (the unit goes in properties.<name>.unit)"
            reasons[i] = f"not a number ({raw!r} is not numeric{hint})"
        else:
            reasons[i] = f"not a finite number ({raw!r})"
    return values, reasons


def _blank(cells: pd.Series) -> np.ndarray:
    return cells.astype(str).str.strip().isin(MISSING).to_numpy()


# ---- keys -------------------------------------------------------------------------------------------

_FORMULA = re.compile(r"^(?:[A-Z][a-z]?(?:\d+(?:\.\d+)?)?|\((?:[A-Z][a-z]?(?:\d+(?:\.\d+)?)?)+\)\d*(?:\.\d+)?)+$")


_SMILES_LIKE = re.compile(r"[*=#@\[\]]|[cnos]\d|\)[A-Z]|^[a-z]")


def looks_like_formula(text: str) -> bool:
    """A chemical formula such as Bi2Te3, NaCl or Ca(OH)2 (a string RDKit rejected as SMILES)."""
    return bool(_FORMULA.match(text)) and (any(c.isdigit() for c in text) or any(c.islower() for c in text))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def canonical_smiles(smiles: Sequence[Any]) -> tuple[list[str | None], list[str | None]]:
    """RDKit canonical SMILES (isomeric) per input; None plus a reason where it does not parse.

    Each distinct string is parsed once (large tables repeat molecules).
    """
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    cache: dict[Any, tuple[str | None, str | None]] = {}
    out: list[str | None] = []
    reasons: list[str | None] = []
    for s in smiles:
        key = s if isinstance(s, str) else repr(s)
        if key not in cache:
            cache[key] = _canonical_one(s, Chem)
        canon, reason = cache[key]
        out.append(canon)
        reasons.append(reason)
    return out, reasons


def _canonical_one(s: Any, chem: Any) -> tuple[str | None, str | None]:
    if s is None or (not isinstance(s, str) and pd.isna(s)):
        return None, "empty SMILES"
    if not isinstance(s, str):
        return None, f"not a SMILES string ({s!r}; is key_column the right column?)"
    text = s.strip()
    if text in MISSING:
        return None, "empty SMILES"
    if _is_number(text):
        return None, f"not a SMILES string ({text!r} is a number; is key_column the right column?)"
    mol = chem.MolFromSmiles(text)
    if mol is None or mol.GetNumAtoms() == 0:
        if looks_like_formula(text):
            return None, ("invalid SMILES (RDKit cannot parse it; it looks like a chemical formula: for formulas "
                          "set input_kind: composition)")
        return None, "invalid SMILES (RDKit cannot parse it)"
    return chem.MolToSmiles(mol), None


def canonical_formulas(formulas: Sequence[Any]) -> tuple[list[str | None], list[str | None]]:
    """A canonical composition string (elements sorted, atomic fractions to 6 digits) per formula."""
    from sim2real_scaling.data.descriptors.composition import load_element_table, parse_formulas

    texts = [f.strip() if isinstance(f, str) and f.strip() not in MISSING else "" for f in formulas]
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
            if texts[i] and _is_number(texts[i]):
                reasons[i] = f"not a formula ({texts[i]!r} is a number; is key_column the right column?)"
            elif texts[i] and _SMILES_LIKE.search(texts[i]):
                reasons[i] = f"{reasons[i]} (it looks like a SMILES: for SMILES set input_kind: smiles)"
        else:
            out.append("".join(f"{el}{x:.6g}" for el, x in sorted(frac.items())))
    return out, reasons


def canonical_keys(keys: Sequence[Any], kind: str) -> tuple[list[str | None], list[str | None]]:
    if kind == "smiles":
        return canonical_smiles(keys)
    if kind == "composition":
        return canonical_formulas(keys)
    raise DataError(f"input kind {kind!r} has no single-key canonicaliser")


# ---- labels and units -------------------------------------------------------------------------------


def clean_labels(cells: pd.Series) -> tuple[pd.Series, list[int]]:
    """Class or id labels as stripped text; blank cells (and NA words) become None. Returns (labels, blank rows)."""
    text = cells.astype(str).str.strip()
    blank = text.isin(MISSING).to_numpy()
    labels = pd.Series(np.where(blank, None, text.to_numpy(dtype=object)), index=cells.index, dtype=object)
    return labels, [int(r) for r in cells.index[blank]]


def unit_cells(frame: pd.DataFrame) -> tuple[str | None, dict[str, list[int]]]:
    """The table's unit column (named unit/units, any case) and its distinct values -> their rows."""
    column = next((c for c in frame.columns if str(c).strip().lower() in UNIT_COLUMNS), None)
    if column is None:
        return None, {}
    units: dict[str, list[int]] = {}
    for row, cell in frame[column].str.strip().items():
        if cell not in MISSING and cell != str(column).strip():  # (a repeated header row says 'unit')
            units.setdefault(cell, []).append(int(row))
    return column, units


# ---- one table --------------------------------------------------------------------------------------


def clean_table(
    spec: Mapping[str, Any],
    *,
    kind: str,
    role: str,
    property_name: str,
    duplicates: str = "mean",
    extra_columns: Sequence[str] = (),
    optional_columns: Sequence[str] = (),
    raise_if_empty: bool = True,
) -> CleanTable:
    """Read and clean one source or target table described by a config ``table`` entry.

    Rows are rejected (and listed with a reason) for an empty/invalid key, a missing, non-numeric or
    non-finite value. Duplicate keys are averaged (``mean``), the first kept (``first``), or raise
    (``error``) when their values differ. ``extra_columns`` must be in the file, ``optional_columns``
    (class columns) are taken where they are; both are kept as text labels (blank = None, counted in
    ``blank_labels``). A blank id (``id_column``) is replaced by the row's canonical key (counted in
    ``blank_ids``). With ``raise_if_empty`` a table without a usable row raises :class:`RejectedRowsError`.
    """
    path = str(spec["path"])
    what = f"properties.{property_name}.{role}"
    key_col, value_col = spec["key_column"], spec["value_column"]
    id_col = spec.get("id_column") or None
    required = list(dict.fromkeys([key_col, value_col, *([id_col] if id_col else []), *[c for c in extra_columns if c]]))
    config_keys = {key_col: f"{what}.key_column", value_col: f"{what}.value_column"}
    if id_col:
        config_keys[id_col] = f"{what}.id_column"
    notes: list[str] = []
    frame = read_spec(spec, what, required, config_keys, notes)
    columns = [str(c) for c in frame.columns]
    frame = apply_row_filter(frame, spec, path, what)
    unit_column, units = unit_cells(frame)
    labels = list(dict.fromkeys([*[c for c in extra_columns if c], *[c for c in optional_columns if c in columns]]))

    keys, key_reasons = canonical_keys(frame[key_col].tolist(), kind)
    values, value_reasons = parse_values(frame[value_col])
    rejected: list[dict[str, Any]] = []
    keep = np.ones(len(frame), dtype=bool)
    rows = frame.index.to_numpy()
    repeated = ((frame[key_col].str.strip() == key_col) & (frame[value_col].str.strip() == value_col)).to_numpy()
    for i in np.flatnonzero(repeated):
        key_reasons[i] = "a repeated header row (tables pasted together?)"
    for i in range(len(frame)):
        if key_reasons[i] is not None:
            rejected.append(_rejection(path, rows[i], key_col, frame[key_col].iloc[i], key_reasons[i]))
        elif value_reasons[i] is not None:
            rejected.append(_rejection(path, rows[i], value_col, frame[value_col].iloc[i], value_reasons[i]))
        else:
            continue
        keep[i] = False

    table = pd.DataFrame({KEY: keys, VALUE: values, "source_row": rows})
    blank_ids: list[int] = []
    if id_col:
        ids, _ = clean_labels(frame[id_col])
        ids = ids.to_numpy()
        missing = np.array([v is None for v in ids]) & keep
        blank_ids = [int(r) for r in rows[missing]]
        table["id"] = np.where(missing, np.array(keys, dtype=object), ids)
    blank_labels: dict[str, list[int]] = {}
    for column in labels:
        text, _ = clean_labels(frame[column])
        table[column] = text.to_numpy()
        blank = [int(r) for r, k, v in zip(rows, keep, text, strict=True) if k and v is None]
        if blank:
            blank_labels[column] = blank
    table = table[keep].reset_index(drop=True)
    rows_valid = len(table)
    table = _resolve_duplicates(table, duplicates, path, what)
    rejected_rows = rejected_frame(rejected)
    if table.empty and raise_if_empty:
        raise RejectedRowsError(no_usable_rows_message(what, path, rejected_rows, key_col, kind), rejected_rows)
    return CleanTable(table=table, rejected=rejected_rows, path=path, rows_read=len(frame), rows_valid=rows_valid,
                      columns=columns, units=units, unit_column=unit_column, blank_labels=blank_labels,
                      blank_ids=blank_ids, notes=notes)


def reason_summary(rejected: pd.DataFrame, limit: int = 3) -> str:
    """'45 value: not a number (e.g. row 2: ...); 2 smiles: invalid SMILES (row 7)': the commonest reasons."""
    if rejected.empty:
        return ""
    kinds = rejected.assign(kind=rejected["column"].astype(str) + ": " +
                            rejected["reason"].astype(str).str.split(" (", n=1, regex=False).str[0])
    parts = []
    for kind, rows in sorted(kinds.groupby("kind", sort=False), key=lambda kv: -len(kv[1]))[:limit]:
        first = rows.iloc[0]
        parts.append(f"{len(rows)} x {kind} (e.g. row {first['row']}: {first['reason']})")
    return "; ".join(parts)


def no_usable_rows_message(what: str, path: str, rejected: pd.DataFrame, key_col: str, kind: str) -> str:
    examples = "; ".join(f"row {r['row']} {r['column']}: {r['reason']}" for _, r in rejected.head(3).iterrows())
    message = f"{what}: no usable rows left in {path} ({len(rejected)} rejected, e.g. {examples})"
    if len(rejected) and (rejected["column"] == key_col).all() and \
            rejected["reason"].str.contains("is key_column the right column|looks like a chemical formula|looks like a SMILES").any():
        message += f"; check {what}.key_column and input_kind ({kind})"
    return message


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
    merged = table.groupby(KEY, sort=False, as_index=False, dropna=False).agg({VALUE: "mean", **other})
    return merged[table.columns].reset_index(drop=True)
