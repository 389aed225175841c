"""Tables of polymer-solvent pairs (``input_kind: smiles_pair``, the chi study): reading and cleaning.

A pair table has the polymer SMILES (``key_column``), the solvent SMILES (``solvent_column``), the
temperature in kelvin (``temperature_column``) and the value. Rows are keyed by the pair (both canonical
SMILES joined by ``|``) and the temperature.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from sim2real_scaling.config import ConfigError
from sim2real_scaling.data.clean import (VALUE, CleanTable, DataError, _rejection, apply_row_filter,
                                         canonical_smiles, read_csv_checked)

PAIR_KEY = "pair_key"
POLYMER_KEY = "polymer_key"
SOLVENT_KEY = "solvent_key"
TEMPERATURE = "temperature_K"
PAIR_SEPARATOR = "|"
UNLABELLED = "unknown"


# --------------------------------------------------------------------------------------------------
# Input tables


def pair_key(polymer: str, solvent: str) -> str:
    """The key of a polymer-solvent pair: both canonical SMILES joined by ``|``."""
    return f"{polymer}{PAIR_SEPARATOR}{solvent}"


def clean_pair_table(spec: Mapping[str, Any], *, role: str, property_name: str, duplicates: str = "mean",
                     extra_columns: Sequence[str] = ()) -> CleanTable:
    """Read and clean one table of polymer-solvent pairs (``input_kind: smiles_pair``).

    ``spec``: a config ``table`` entry; ``key_column`` holds the polymer SMILES (repeat unit, ``*`` end
    points allowed), ``solvent_column`` the solvent SMILES, ``temperature_column`` the temperature in
    kelvin. Rows are rejected, each with file, row, column and reason, for an empty or unparsable
    SMILES (either molecule), a missing or non-finite value, or a missing, non-finite or non-positive
    temperature. Rows of the same pair at the same temperature are averaged (``mean``), the first kept
    (``first``) or, if their values differ, refused (``error``).

    Returns a :class:`~.input_tables.CleanTable` whose table has the columns ``pair_key, polymer_key,
    solvent_key, temperature_K, value, source_row``, ``id`` (if ``id_column``) and ``extra_columns``.
    """
    path = str(spec["path"])
    what = f"properties.{property_name}.{role}"
    poly_col, solv_col = spec["key_column"], spec.get("solvent_column")
    temp_col, value_col = spec.get("temperature_column"), spec["value_column"]
    if not solv_col or not temp_col:
        raise ConfigError(f"config key {what}: input_kind 'smiles_pair' needs solvent_column and temperature_column")
    id_col = spec.get("id_column")
    required = [poly_col, solv_col, temp_col, value_col, *([id_col] if id_col else []), *extra_columns]
    frame = read_csv_checked(path, required, what)
    frame = apply_row_filter(frame, spec, path, what)

    polymers, poly_reasons = _canonical_unique(frame[poly_col].tolist())
    solvents, solv_reasons = _canonical_unique(frame[solv_col].tolist())
    values = pd.to_numeric(frame[value_col], errors="coerce").to_numpy(dtype=float)
    temps = pd.to_numeric(frame[temp_col], errors="coerce").to_numpy(dtype=float)
    rejected: list[dict[str, Any]] = []
    keep = np.ones(len(frame), dtype=bool)
    for i, row in enumerate(frame.index):
        problem = None
        if poly_reasons[i] is not None:
            problem = (poly_col, frame[poly_col].iloc[i], f"polymer: {poly_reasons[i]}")
        elif solv_reasons[i] is not None:
            problem = (solv_col, frame[solv_col].iloc[i], f"solvent: {solv_reasons[i]}")
        elif not np.isfinite(values[i]):
            raw = frame[value_col].iloc[i]
            problem = (value_col, raw, "missing value" if pd.isna(raw) else f"not a finite number ({raw!r})")
        elif not (np.isfinite(temps[i]) and temps[i] > 0):
            raw = frame[temp_col].iloc[i]
            problem = (temp_col, raw, "missing temperature" if pd.isna(raw)
                       else f"temperature must be a positive number in kelvin, got {raw!r}")
        if problem is not None:
            rejected.append(_rejection(path, row, *problem))
            keep[i] = False

    table = pd.DataFrame({
        PAIR_KEY: [pair_key(p, s) if p and s else None for p, s in zip(polymers, solvents, strict=True)],
        POLYMER_KEY: polymers, SOLVENT_KEY: solvents, TEMPERATURE: temps, VALUE: values,
        "source_row": frame.index.to_numpy() + 2,
    })
    if id_col:
        table["id"] = frame[id_col].to_numpy()
    for column in extra_columns:
        table[column] = frame[column].to_numpy()
    table = table[keep].reset_index(drop=True)
    table = _resolve_pair_duplicates(table, duplicates, path, what)
    if table.empty:
        raise DataError(f"{what}: no usable rows left in {path} ({len(rejected)} rejected)")
    rejected_frame = pd.DataFrame(rejected, columns=["file", "row", "column", "value", "reason"])
    return CleanTable(table=table, rejected=rejected_frame, path=path)


def _canonical_unique(smiles: Sequence[Any]) -> tuple[list[str | None], list[str | None]]:
    """:func:`~.input_tables.canonical_smiles`, parsing each distinct string once."""
    distinct = list(dict.fromkeys(s if isinstance(s, str) else None for s in smiles))
    canon, reasons = canonical_smiles(distinct)
    lookup = dict(zip(distinct, zip(canon, reasons, strict=True), strict=True))
    pairs = [lookup[s if isinstance(s, str) else None] for s in smiles]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _resolve_pair_duplicates(table: pd.DataFrame, policy: str, path: str, what: str) -> pd.DataFrame:
    keys = [PAIR_KEY, TEMPERATURE]
    dup = table.duplicated(keys, keep=False)
    if not dup.any():
        return table
    if policy == "error":
        for _, rows in table[dup].groupby(keys, sort=False):
            if rows[VALUE].nunique() > 1:
                raise DataError(
                    f"{what}: {path} rows {rows['source_row'].tolist()} are the same pair and temperature "
                    f"with conflicting values {rows[VALUE].tolist()} (set protocol.duplicates to mean or first)"
                )
        policy = "first"
    if policy == "first":
        return table.drop_duplicates(keys, keep="first").reset_index(drop=True)
    other = {c: "first" for c in table.columns if c not in (*keys, VALUE)}
    merged = table.groupby(keys, sort=False, as_index=False).agg({VALUE: "mean", **other})
    return merged[table.columns].reset_index(drop=True)


def check_multitask_config(config: Mapping[str, Any]) -> None:
    """``transfer: multitask`` and ``input_kind: smiles_pair`` go together."""
    if (config["transfer"] == "multitask") != (config["input_kind"] == "smiles_pair"):
        raise ConfigError(
            "config keys transfer / input_kind: multitask learning works on polymer-solvent pairs, so "
            "'transfer: multitask' needs 'input_kind: smiles_pair' and vice versa "
            f"(got transfer={config['transfer']!r}, input_kind={config['input_kind']!r})"
        )


def pair_codes(keys: Sequence[str], vocabulary: Sequence[str]) -> np.ndarray:
    """Integer code of each pair key in ``vocabulary``."""
    index = {k: i for i, k in enumerate(vocabulary)}
    return np.array([index[k] for k in keys], dtype=np.int64)
