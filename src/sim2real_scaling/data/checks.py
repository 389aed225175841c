"""Checks of a property's cleaned tables before any training: what the data and the design can support.

Problems that would make every later number wrong stop the prepare stage with one line (a
:class:`~.tables.DataError`): a target (or source) whose values do not vary, source and target that are the
same data, a table whose rows were mostly rejected, several units in one unit column. What a user should know
but may have intended becomes a warning: few target rows or few test molecules per trial, duplicates merging
many rows into few molecules, SMILES that are not polymer repeat units where the descriptor expects them,
blank class labels or ids. Every finding is kept as ``{level, code, message}`` in
``prepared/<property>/checks.json`` (the report lists them) and logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim2real_scaling.data.clean import KEY, VALUE, CleanTable, RejectedRowsError, reason_summary
from sim2real_scaling.data.tables import DataError

log = logging.getLogger(__name__)

# below these a study still runs, with a warning in the log and the report
MIN_TARGET_ROWS = 30  # usable target rows (molecules after duplicates are merged)
MIN_TEST_ROWS = 10  # test molecules per trial: one trial's MAE averages over them
MERGED_SHARE_WARNING = 0.25  # share of a table's valid rows that duplicates merged away
SHARED_VALUES_SHARE = 0.5  # share of target molecules with (nearly) the source's value: the same data
POLYMER_DESCRIPTORS = ("force_field", "force_field+rdkit")
LEVELS = ("error", "warning", "note")


@dataclass(frozen=True)
class Check:
    level: str  # error | warning | note
    code: str  # a stable name, e.g. few_test_rows
    message: str  # one line: what, where (file, rows, config key), what to do


class Checks:
    """The findings of one property's prepare stage, in order; each is logged when added."""

    def __init__(self, property_name: str) -> None:
        self.property_name = property_name
        self.items: list[Check] = []

    def add(self, level: str, code: str, message: str) -> None:
        assert level in LEVELS, level
        message = " ".join(message.split())
        self.items.append(Check(level, code, message))
        logger = {"error": log.error, "warning": log.warning, "note": log.info}[level]
        logger("%s: %s", self.property_name, message)

    def __iter__(self) -> Iterator[Check]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def codes(self) -> list[str]:
        return [c.code for c in self.items]

    def to_list(self) -> list[dict[str, str]]:
        return [asdict(c) for c in self.items]

    def write(self, path: str | Path) -> None:
        from sim2real_scaling.io import write_json

        write_json(self.to_list(), path)


def read_checks(path: str | Path) -> list[dict[str, str]]:
    """The findings written by the prepare stage (a list of {level, code, message})."""
    return json.loads(Path(path).read_text())


def _rows(rows: Sequence[int], limit: int = 5) -> str:
    shown = ", ".join(str(r) for r in list(rows)[:limit])
    return f"{'row' if len(rows) == 1 else 'rows'} {shown}{f' and {len(rows) - limit} more' if len(rows) > limit else ''}"


# ---- errors -----------------------------------------------------------------------------------------


def check_rejected_share(clean: CleanTable, what: str, max_share: float, rejected_path: str | Path | None) -> None:
    """Refuse a table whose rejected rows exceed ``max_share`` of its rows (protocol.max_rejected_share)."""
    total = clean.rows_read
    n = len(clean.rejected)
    if total == 0 or n / total <= max_share:
        return
    where = f"; every rejected row with its reason is in {rejected_path}" if rejected_path else ""
    raise RejectedRowsError(
        f"{what}: {n} of {total} rows of {clean.path} ({100 * n / total:.0f}%) were rejected, more than "
        f"protocol.max_rejected_share = {max_share:g} allows, so the rows left would not represent the table: "
        f"{reason_summary(clean.rejected)}{where} (fix the table or key_column/value_column; raise "
        f"protocol.max_rejected_share only if the remaining {total - n} rows are what you mean to study)",
        clean.rejected)


def check_variance(values: np.ndarray, what: str, path: str, role: str) -> None:
    """Values that do not vary cannot be learned from (and standardizing them divides by zero)."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return
    spread = float(np.ptp(values))
    scale = max(float(np.max(np.abs(values))), 1e-300)
    if spread == 0 or spread / scale < 1e-12:
        raise DataError(
            f"{what}: every {role} value of {path} is {values[0]:g} ({len(values)} rows): a constant has no "
            f"error to learn or to compare (is value_column the right column?)")


def check_units(clean: CleanTable, what: str) -> None:
    """A unit column with several units means values on different scales: refuse, naming the rows."""
    if len(clean.units) <= 1:
        return
    parts = "; ".join(f"{unit!r}: {_rows(rows, 3)}" for unit, rows in sorted(clean.units.items(),
                                                                              key=lambda kv: -len(kv[1])))
    raise DataError(
        f"{what}: column {clean.unit_column!r} of {clean.path} holds {len(clean.units)} different units ({parts}): "
        f"convert the values to one unit, or keep one with {what}.filter: {{{clean.unit_column}: [...]}}")


def check_shared_values(src: pd.DataFrame, tgt: pd.DataFrame, keys: Sequence[str], what: str,
                        paths: tuple[str, str], allowed: bool, checks: Checks, same_file: bool) -> None:
    """Source and target that are the same data leak the test values into pretraining: refuse unless intended.

    Counted over target molecules (``keys``: the columns that identify one): those whose source row holds the
    same value (relative 1e-6), or, where most target molecules are in the source, values that are an exact
    linear function of the source's (the same data in other units).
    """
    merged = tgt[[*keys, VALUE]].merge(src[[*keys, VALUE]].drop_duplicates(list(keys)), on=list(keys),
                                       suffixes=("_t", "_s"))
    n_target = len(tgt)
    if n_target == 0:
        return
    equal = np.isclose(merged[f"{VALUE}_t"], merged[f"{VALUE}_s"], rtol=1e-6, atol=0)
    n_equal = int(equal.sum())
    linear = False
    if len(merged) >= max(3, SHARED_VALUES_SHARE * n_target) and n_equal < SHARED_VALUES_SHARE * n_target:
        a, b = merged[f"{VALUE}_s"].to_numpy(float), merged[f"{VALUE}_t"].to_numpy(float)
        if np.ptp(a) > 0 and np.ptp(b) > 0:
            linear = float(np.corrcoef(a, b)[0, 1]) > 1 - 1e-9
    same = n_equal >= SHARED_VALUES_SHARE * n_target or linear
    how = (f"{n_equal} of the {n_target} target molecules have the same value in the source table"
           if not linear else f"the values of the {len(merged)} molecules in both tables are an exact linear "
           f"function of each other (the same data in other units?)")
    file_note = " (source and target are the same file)" if same_file else ""
    if same and not allowed:
        raise DataError(
            f"{what}: source {paths[0]} and target {paths[1]} hold the same data{file_note}: {how}, so every "
            f"trial's test values would be in the pretraining data and transfer would look better than it is; "
            f"give a source of other (simulated) values, or set {what}.allow_shared_values: true if this is "
            "intended (e.g. a sanity check)")
    if same:
        checks.add("warning", "shared_values", f"{what}: source and target hold the same data{file_note}: {how} "
                   f"(allowed by {what}.allow_shared_values; test values are in the pretraining data)")
    elif n_equal > 0:
        checks.add("warning", "shared_values",
                   f"{what}: {n_equal} of the {n_target} target molecules have exactly their source value in "
                   f"{paths[0]} (copied values? their test errors favour transfer)")


# ---- warnings ---------------------------------------------------------------------------------------


def check_sizes(n_target: int, n_train: int, n_test: int, what: str, path: str, test_fraction: float,
                checks: Checks) -> None:
    if n_test < MIN_TEST_ROWS:
        checks.add("warning", "few_test_rows",
                   f"{what}: each trial tests on {n_test} target molecule{'s' if n_test != 1 else ''} "
                   f"({n_target} usable rows of {path} x protocol.test_fraction={test_fraction:g}): one trial's "
                   f"MAE averages over so few molecules that differences between methods are mostly noise; "
                   f"{MIN_TEST_ROWS} or more test molecules are advisable (more target rows, or a larger test_fraction)")
    if n_target < MIN_TARGET_ROWS:
        checks.add("warning", "few_target_rows",
                   f"{what}: {n_target} usable target rows in {path} (fewer than {MIN_TARGET_ROWS}): fine-tuning "
                   f"and direct learning see {n_train} rows per trial, and the scaling law measured on them says "
                   "little about a larger experimental set")


def check_duplicates_merged(clean: CleanTable, what: str, policy: str, checks: Checks, unit: str = "molecule") -> None:
    merged = clean.rows_valid - len(clean.table)
    if merged <= 0:
        return
    share = merged / clean.rows_valid
    level = "warning" if share > MERGED_SHARE_WARNING else "note"
    how = {"mean": "averaged", "first": "the first kept", "error": "identical values, kept once"}[policy]
    checks.add(level, "duplicates_merged",
               f"{what}: duplicates merge {clean.rows_valid} rows of {clean.path} into {len(clean.table)} "
               f"{unit}s ({how}; protocol.duplicates: {policy}): the study has {len(clean.table)} distinct "
               f"{unit}s, not {clean.rows_valid}")


def check_labels(clean: CleanTable, what: str, checks: Checks, unlabelled: str) -> None:
    for column, rows in clean.blank_labels.items():
        checks.add("warning", "blank_labels",
                   f"{what}: {len(rows)} row{'s' if len(rows) != 1 else ''} of {clean.path} have no "
                   f"{column!r} ({_rows(rows)}): grouped as {unlabelled!r} in the per-group results")
    if clean.blank_ids:
        checks.add("warning", "blank_ids",
                   f"{what}: {len(clean.blank_ids)} row{'s' if len(clean.blank_ids) != 1 else ''} of {clean.path} "
                   f"have no id ({_rows(clean.blank_ids)}): their canonical key is their id in the "
                   "per-material results")


def check_key_kind(clean: CleanTable, what: str, key_column: str, checks: Checks) -> None:
    """Rejected keys that look like the other kind (formulas in a SMILES column, SMILES in a formula column)."""
    rejected = clean.rejected
    if rejected.empty:
        return
    for phrase, kind, fix in (("looks like a chemical formula", "chemical formulas", "input_kind: composition"),
                              ("looks like a SMILES", "SMILES", "input_kind: smiles")):
        rows = rejected.loc[rejected["reason"].str.contains(phrase, regex=False), "row"].tolist()
        if rows:
            checks.add("warning", "wrong_key_kind",
                       f"{what}: column {key_column!r} of {clean.path} holds {len(rows)} {kind} ({_rows(rows)}), "
                       f"rejected; if the column is meant to hold them, set {fix}")


def check_label_spelling(table: pd.DataFrame, columns: Sequence[str], what: str, path: str, checks: Checks) -> None:
    """Class labels that differ only in case or spaces ('Vinyl', 'vinyl ') split one class into several groups."""
    for column in columns:
        if column not in table.columns:
            continue
        labels = pd.Series(table[column].dropna().astype(str).unique())
        folded = labels.str.casefold().str.split().str.join(" ")
        clashes = [sorted(labels[folded == f].tolist()) for f, n in folded.value_counts().items() if n > 1]
        if clashes:
            shown = "; ".join(" / ".join(repr(x) for x in c) for c in clashes[:3])
            checks.add("warning", "label_spelling",
                       f"{what}: class labels of {column!r} in {path} differ only in case or spaces ({shown}): they "
                       "are different groups in the per-group results; write each class one way")


def check_ids(table: pd.DataFrame, what: str, path: str, checks: Checks, per_material: bool) -> None:
    """One id naming several molecules merges them in the per-material results."""
    if "id" not in table.columns:
        return
    per_id = table.groupby("id", sort=False)[KEY].nunique()
    shared = per_id[per_id > 1]
    if shared.empty:
        return
    example = shared.index[0]
    rows = table.loc[table["id"] == example, "source_row"].tolist()
    message = (f"{what}: {len(shared)} id(s) of {path} name several different molecules (e.g. {example!r}: "
               f"{_rows(rows)}); the per-material results would merge them")
    if per_material:
        raise DataError(message + "; give every molecule its own id (or no id_column: the key is the id)")
    checks.add("warning", "shared_ids", message)


def check_polymer_keys(table: pd.DataFrame, key_column: str, what: str, path: str, descriptor: str,
                       checks: Checks) -> None:
    """The force-field descriptors expect polymer repeat units: two '*' end points, one fragment, no charges."""
    if descriptor not in POLYMER_DESCRIPTORS:
        return
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    found: dict[str, list[tuple[int, str]]] = {"no_star": [], "fragments": [], "charged": [], "stars": []}
    molecules = table.drop_duplicates(key_column)
    for key, row in zip(molecules[key_column], molecules["source_row"], strict=True):
        if not isinstance(key, str):
            continue
        stars = key.count("*")
        if "." in key:
            found["fragments"].append((row, key))
        elif stars == 0:
            found["no_star"].append((row, key))
        elif stars != 2:
            found["stars"].append((row, key))
        mol = Chem.MolFromSmiles(key)
        if mol is not None and Chem.GetFormalCharge(mol) != 0:  # a net charge (nitro groups are neutral)
            found["charged"].append((row, key))
    labels = {"no_star": "without '*' end points (a molecule, not a repeat unit)",
              "fragments": "of several fragments ('.': a salt or a mixture)",
              "stars": "with a number of '*' other than 2",
              "charged": "with a net charge (an ion)"}
    parts = [f"{len(v)} {labels[k]} (e.g. row {v[0][0]}: {v[0][1]!r})" for k, v in found.items() if v]
    if not parts:
        return
    n_bad = len({row for v in found.values() for row, _ in v})
    checks.add("warning", "not_polymer_repeat_units",
               f"{what}: {n_bad} of the {len(molecules)} molecules of {path} are not polymer repeat units, which "
               f"descriptor.set {descriptor} expects: {'; '.join(parts)}; their descriptors may mean little "
               "(write repeat units as *...*, or choose descriptor.set rdkit)")


def check_unit_columns(source: CleanTable, target: CleanTable, what: str, fit_on: str, checks: Checks) -> None:
    """Source and target unit columns that disagree while one transform is fitted for both."""
    if len(source.units) != 1 or len(target.units) != 1 or fit_on == "each":
        return
    (u_src,), (u_tgt,) = source.units, target.units
    if u_src.replace(" ", "").lower() != u_tgt.replace(" ", "").lower():
        checks.add("warning", "unit_mismatch",
                   f"{what}: the source {source.path} is in {u_src!r} and the target {target.path} in {u_tgt!r} "
                   f"(their unit columns), but properties.<name>.transform_fit_on is {fit_on!r}: one scale for "
                   "both; convert one table, or set transform_fit_on: each if they are different quantities")


def check_temperatures(table: pd.DataFrame, what: str, path: str, column: str, checks: Checks,
                       temperature: str = "temperature_K") -> None:
    """Pair tables take temperatures in kelvin: values that read like degrees Celsius are named."""
    kelvin = table[temperature].to_numpy(dtype=float)
    low = table.loc[kelvin < 150, "source_row"].tolist()
    if low:
        checks.add("warning", "temperature_celsius",
                   f"{what}: {len(low)} temperature(s) of {path} column {column!r} are below 150 K ({_rows(low)}, "
                   f"e.g. {kelvin[kelvin < 150][0]:g}): degrees Celsius? temperature_column must be in kelvin")


def summary_of(checks: Checks) -> Mapping[str, Any]:
    return {"warnings": sum(c.level == "warning" for c in checks), "notes": sum(c.level == "note" for c in checks)}
