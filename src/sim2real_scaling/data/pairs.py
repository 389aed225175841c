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
from sim2real_scaling.data.clean import (VALUE, CleanTable, DataError, RejectedRowsError, _rejection,
                                         apply_row_filter, canonical_smiles, clean_labels, no_usable_rows_message,
                                         parse_values, read_spec, rejected_frame, unit_cells)

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
                     extra_columns: Sequence[str] = (), optional_columns: Sequence[str] = (),
                     raise_if_empty: bool = True) -> CleanTable:
    """Read and clean one table of polymer-solvent pairs (``input_kind: smiles_pair``).

    ``spec``: a config ``table`` entry; ``key_column`` holds the polymer SMILES (repeat unit, ``*`` end
    points allowed), ``solvent_column`` the solvent SMILES, ``temperature_column`` the temperature in
    kelvin. Rows are rejected, each with file, row, column and reason, for an empty or unparsable
    SMILES (either molecule), a missing or non-finite value, or a missing, non-finite or non-positive
    temperature. Rows of the same pair at the same temperature are averaged (``mean``), the first kept
    (``first``) or, if their values differ, refused (``error``). Class columns (``extra_columns``: required,
    ``optional_columns``: where present) are kept as text labels, as in :func:`~.clean.clean_table`.

    Returns a :class:`~.clean.CleanTable` whose table has the columns ``pair_key, polymer_key,
    solvent_key, temperature_K, value, source_row``, ``id`` (if ``id_column``) and the class columns.
    """
    path = str(spec["path"])
    what = f"properties.{property_name}.{role}"
    poly_col, solv_col = spec["key_column"], spec.get("solvent_column")
    temp_col, value_col = spec.get("temperature_column"), spec["value_column"]
    if not solv_col or not temp_col:
        raise ConfigError(f"config key {what}: input_kind 'smiles_pair' needs solvent_column and temperature_column")
    id_col = spec.get("id_column")
    required = list(dict.fromkeys([poly_col, solv_col, temp_col, value_col, *([id_col] if id_col else []),
                                   *extra_columns]))
    config_keys = {poly_col: f"{what}.key_column", solv_col: f"{what}.solvent_column",
                   temp_col: f"{what}.temperature_column", value_col: f"{what}.value_column"}
    if id_col:
        config_keys[id_col] = f"{what}.id_column"
    notes: list[str] = []
    frame = read_spec(spec, what, required, config_keys, notes)
    columns = [str(c) for c in frame.columns]
    frame = apply_row_filter(frame, spec, path, what)
    unit_column, units = unit_cells(frame)
    labels = list(dict.fromkeys([*extra_columns, *[c for c in optional_columns if c in columns]]))

    polymers, poly_reasons = canonical_smiles(frame[poly_col].tolist())
    solvents, solv_reasons = canonical_smiles(frame[solv_col].tolist())
    values, value_reasons = parse_values(frame[value_col])
    temps, temp_reasons = parse_values(frame[temp_col])
    rows = frame.index.to_numpy()
    rejected: list[dict[str, Any]] = []
    keep = np.ones(len(frame), dtype=bool)
    for i in range(len(frame)):
        problem = None
        if poly_reasons[i] is not None:
            problem = (poly_col, frame[poly_col].iloc[i], f"polymer: {poly_reasons[i]}")
        elif solv_reasons[i] is not None:
            problem = (solv_col, frame[solv_col].iloc[i], f"solvent: {solv_reasons[i]}")
        elif value_reasons[i] is not None:
            problem = (value_col, frame[value_col].iloc[i], value_reasons[i])
        elif temp_reasons[i] is not None or not temps[i] > 0:
            raw = frame[temp_col].iloc[i]
            problem = (temp_col, raw, "missing temperature" if temp_reasons[i] == "missing value"
                       else f"temperature must be a positive number in kelvin, got {raw!r}")
        if problem is not None:
            rejected.append(_rejection(path, rows[i], *problem))
            keep[i] = False

    table = pd.DataFrame({
        PAIR_KEY: [pair_key(p, s) if p and s else None for p, s in zip(polymers, solvents, strict=True)],
        POLYMER_KEY: polymers, SOLVENT_KEY: solvents, TEMPERATURE: temps, VALUE: values,
        "source_row": rows,
    })
    blank_ids: list[int] = []
    if id_col:
        ids = clean_labels(frame[id_col])[0].to_numpy()
        missing = np.array([v is None for v in ids]) & keep
        blank_ids = [int(r) for r in rows[missing]]
        table["id"] = np.where(missing, table[PAIR_KEY].to_numpy(dtype=object), ids)
    blank_labels: dict[str, list[int]] = {}
    for column in labels:
        text = clean_labels(frame[column])[0]
        table[column] = text.to_numpy()
        blank = [int(r) for r, k, v in zip(rows, keep, text, strict=True) if k and v is None]
        if blank:
            blank_labels[column] = blank
    table = table[keep].reset_index(drop=True)
    rows_valid = len(table)
    table = _resolve_pair_duplicates(table, duplicates, path, what)
    rejected_rows = rejected_frame(rejected)
    if table.empty and raise_if_empty:
        raise RejectedRowsError(no_usable_rows_message(what, path, rejected_rows, poly_col, "smiles_pair"),
                                rejected_rows)
    return CleanTable(table=table, rejected=rejected_rows, path=path, rows_read=len(frame), rows_valid=rows_valid,
                      columns=columns, units=units, unit_column=unit_column, blank_labels=blank_labels,
                      blank_ids=blank_ids, notes=notes)


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
