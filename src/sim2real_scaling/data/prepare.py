"""The prepare step of one property: clean its source and target tables, check them, fit its transform.

Writes (under ``results/<study>/prepared/<property>/``): ``source.csv`` and ``target.csv`` (columns
``key, value, y, source_row`` plus id/class columns; ``y`` is the transformed value; pair tables have their
pair columns), ``rejected.csv`` (every row that was dropped, with file, row, column and reason),
``transform.json``, ``checks.json`` (the warnings and notes of :mod:`.checks`) and, for single-key tables,
``grid.json`` (the n and m values this property is studied at; pair tables get theirs from the stage).

Everything that can be checked on the tables is checked here, before any training: a failure raises one
:class:`~.tables.DataError` line and leaves no output behind, except ``rejected.csv`` when rejected rows are
the reason (it is written first, so the rows can be looked at). Class annotations of a case study (the
Wiedemann-Franz classes) come in through the ``annotate`` hook; this module knows no case study.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim2real_scaling.config import ConfigError, resolve_m_grid, resolve_n_grid
from sim2real_scaling.data import checks as chk
from sim2real_scaling.data.clean import (KEY, VALUE, CleanTable, DataError, RejectedRowsError, clean_table,
                                         no_usable_rows_message)
from sim2real_scaling.data.pairs import (PAIR_KEY, POLYMER_KEY, TEMPERATURE, UNLABELLED, check_multitask_config,
                                         clean_pair_table)
from sim2real_scaling.data.transforms import TransformError, fit_source_target
from sim2real_scaling.io import write_csv, write_json

log = logging.getLogger(__name__)

DEFAULT_MAX_REJECTED_SHARE = 0.5
ROLES = ("source", "target")

# a case study's class annotation: (source, target, cleaned source, cleaned target) -> (source, target)
Annotate = Callable[[pd.DataFrame, pd.DataFrame, CleanTable, CleanTable], tuple[pd.DataFrame, pd.DataFrame]]


def split_sizes(n_target: int, test_fraction: float) -> tuple[int, int]:
    """(training part, test part) sizes of one trial's split of ``n_target`` target rows."""
    n_test = max(1, int(round(test_fraction * n_target)))
    return n_target - n_test, n_test


@dataclass
class PreparedTables:
    """One property's cleaned, checked and transformed tables (what the prepare stage writes)."""

    name: str
    source: pd.DataFrame
    target: pd.DataFrame
    rejected: pd.DataFrame
    transform: dict[str, Any]
    checks: chk.Checks
    sizes: dict[str, int] = field(default_factory=dict)
    paths: tuple[str, str] = ("", "")


def _rejected_of(tables: Mapping[str, CleanTable]) -> pd.DataFrame:
    frames = [t.rejected.assign(table=role) for role, t in tables.items()]
    return pd.concat(frames, ignore_index=True)


def _write_rejected(rejected: pd.DataFrame, out_dir: str | Path | None, rejected_log: str | Path | None) -> None:
    for path in (Path(out_dir) / "rejected.csv" if out_dir is not None else None, rejected_log):
        if path is not None:
            write_csv(rejected, path)


# columns of the prepared tables; a class column of the same name would overwrite one
RESERVED = frozenset([KEY, VALUE, "y", "source_row", "id", PAIR_KEY, POLYMER_KEY, "solvent_key", TEMPERATURE])


def _check_group_columns(columns: list[str]) -> None:
    clash = [c for c in columns if c in RESERVED]
    if clash:
        raise ConfigError(f"config key protocol.group_columns: {clash} would overwrite the prepared tables' own "
                          f"column(s) ({', '.join(sorted(RESERVED))}); rename the class column in the table")


def _check_columns_config(prop: Mapping[str, Any], where: str) -> None:
    """Two roles given the same column of a table (a copy-paste slip in the config)."""
    for role in ROLES:
        spec = prop[role]
        named = {k: spec.get(k) for k in ("key_column", "value_column", "solvent_column", "temperature_column")
                 if spec.get(k)}
        seen: dict[str, str] = {}
        for key, column in named.items():
            if column in seen:
                raise ConfigError(f"config key {where}.{role}: {seen[column]} and {key} are both {column!r}; each "
                                  "names its own column of the table")
            seen[column] = key


def _carry_classes(source: pd.DataFrame, target: pd.DataFrame, columns: list[str], paths: tuple[str, str],
                   by: str, checks: chk.Checks | None = None, what: str = "") -> pd.DataFrame:
    """Fill group columns the target lacks from the source table, matched by ``by`` (the molecule key)."""
    for column in columns:
        if column in target.columns:
            continue
        if column not in source.columns:
            where = f" ({paths[1]} nor {paths[0]})" if all(paths) else ""
            raise DataError(f"protocol.group_columns: column {column!r} is in neither the target nor the source "
                            f"table{where}; add it to a table or remove it from protocol.group_columns")
        mapping = source.dropna(subset=[column]).drop_duplicates(by).set_index(by)[column]
        target[column] = target[by].map(mapping)
        unmatched = target.loc[target[column].isna(), "source_row"].tolist()
        if unmatched and checks is not None:
            checks.add("warning", "labels_not_in_source",
                       f"{what}: {len(unmatched)} of the {len(target)} target molecules of {paths[1]} have no "
                       f"{column!r} in the source table {paths[0]} (the target has no such column; "
                       f"{chk._rows(unmatched)}): grouped as {UNLABELLED!r} in the per-group results")
    return target


def _fill_labels(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    for column in columns:
        if column in table.columns:
            table[column] = table[column].astype(object).where(table[column].notna(), UNLABELLED).astype(str)
    return table


def _check_positive(table: pd.DataFrame, path: str, what: str, value_column: str, step: str, name: str) -> None:
    """A '``log``'/'``log10``' first transform step needs values > 0: name the offending file rows."""
    bad = table[~(table[VALUE] > 0)]
    if bad.empty:
        return
    shown = ", ".join(f"row {r} = {v:g}" for r, v in zip(bad["source_row"][:5], bad[VALUE][:5], strict=True))
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    raise DataError(
        f"{what}: {path} column {value_column!r} has {len(bad)} value(s) <= 0 ({shown}{more}), but "
        f"properties.{name}.transform starts with '{step}', which needs positive values (remove those rows, "
        f"or set properties.{name}.scale: log10, which drops them, or choose another transform)"
    )


def _log10_scale(table: pd.DataFrame, clean: CleanTable, value_column: str, name: str) -> pd.DataFrame:
    """``properties.<name>.scale: log10``: values -> log10(values); rows <= 0 go to ``clean.rejected``."""
    bad = ~(table[VALUE] > 0)
    if bad.any():
        extra = pd.DataFrame({"file": clean.path, "row": table.loc[bad, "source_row"].to_numpy(), "column": value_column,
                              "value": table.loc[bad, VALUE].to_numpy(),
                              "reason": f"not positive: properties.{name}.scale is log10"})
        clean.rejected = pd.concat([clean.rejected, extra], ignore_index=True)
    table = table[~bad].reset_index(drop=True)
    table[VALUE] = np.log10(table[VALUE].to_numpy(dtype=float))
    return table


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def prepare_tables(config: Mapping[str, Any], name: str, *, annotate: Annotate | None = None,
                   out_dir: str | Path | None = None, rejected_log: str | Path | None = None) -> PreparedTables:
    """Clean, check and transform the tables of property ``name`` (single keys or polymer-solvent pairs).

    Raises :class:`~.tables.DataError` (or :class:`ConfigError`) with one line; when rejected rows are the
    reason, they are written first to ``out_dir/rejected.csv`` and ``rejected_log``.
    """
    prop = config["properties"][name]
    protocol = config["protocol"]
    kind = config["input_kind"]
    pairs = kind == "smiles_pair" or config.get("transfer") == "multitask"
    if pairs:
        check_multitask_config(config)
    group_columns = list(protocol["group_columns"])
    _check_group_columns(group_columns)
    where = f"properties.{name}"
    _check_columns_config(prop, where)
    descriptor = config.get("descriptor", {}).get("set", "")
    if descriptor == "composition_kmd" and kind != "composition":
        raise ConfigError(f"config key descriptor.set: 'composition_kmd' describes chemical formulas, but input_kind is "
                          f"{kind!r} (set input_kind: composition for formulas, or a molecular descriptor for SMILES)")
    checks = chk.Checks(name)
    tables: dict[str, CleanTable] = {}
    for role in ROLES:
        spec = prop[role]
        if pairs:
            tables[role] = clean_pair_table(spec, role=role, property_name=name, duplicates=protocol["duplicates"],
                                            optional_columns=group_columns, raise_if_empty=False)
        else:
            tables[role] = clean_table(spec, kind=kind, role=role, property_name=name,
                                       duplicates=protocol["duplicates"], optional_columns=group_columns,
                                       raise_if_empty=False)
        for note in tables[role].notes:
            checks.add("note", "reader", note)
        chk.check_key_kind(tables[role], f"{where}.{role}", spec["key_column"], checks)
        chk.check_units(tables[role], f"{where}.{role}")
    source, target = tables["source"], tables["target"]
    paths = (source.path, target.path)
    max_share = float(protocol.get("max_rejected_share", DEFAULT_MAX_REJECTED_SHARE))
    rejected_path = rejected_log or (Path(out_dir) / "rejected.csv" if out_dir is not None else None)

    def check_rejections(current: Mapping[str, pd.DataFrame]) -> None:
        for role in ROLES:
            clean = tables[role]
            try:
                if current[role].empty:
                    raise RejectedRowsError(no_usable_rows_message(f"{where}.{role}", clean.path, clean.rejected,
                                                                   prop[role]["key_column"], kind), clean.rejected)
                chk.check_rejected_share(clean, f"{where}.{role}", max_share, rejected_path)
            except RejectedRowsError:
                _write_rejected(_rejected_of(tables), out_dir, rejected_log)
                raise

    src, tgt = source.table, target.table
    check_rejections({"source": src, "target": tgt})
    if annotate is not None:  # a case study's classes (e.g. Wiedemann-Franz), from the cleaned raw values
        src, tgt = annotate(src, tgt, source, target)
    if prop.get("scale", "linear") == "log10":
        if any(step in ("log", "log10") for step in prop["transform"]):
            raise ConfigError(f"config key {where}.transform: scale is log10 already; drop log/log10")
        src = _log10_scale(src, source, prop["source"]["value_column"], name)
        tgt = _log10_scale(tgt, target, prop["target"]["value_column"], name)
        check_rejections({"source": src, "target": tgt})

    by = POLYMER_KEY if pairs else KEY
    tgt = _carry_classes(src, tgt, group_columns, paths, by, checks, f"{where}.target")
    for role, clean in tables.items():
        chk.check_labels(clean, f"{where}.{role}", checks, UNLABELLED)
    chk.check_label_spelling(tgt, group_columns, f"{where}.target", target.path, checks)
    src, tgt = _fill_labels(src, group_columns), _fill_labels(tgt, group_columns)
    if not pairs:  # pairs share an id across temperatures by design
        chk.check_ids(tgt, f"{where}.target", target.path, checks, bool(protocol.get("per_material")))

    transform = prop["transform"]
    if transform and transform[0] in ("log", "log10"):  # name the file rows, not array positions
        for role, table in (("source", src), ("target", tgt)):
            _check_positive(table, tables[role].path, f"{where}.{role}", prop[role]["value_column"], transform[0], name)
    for role, table in (("source", src), ("target", tgt)):
        chk.check_variance(table[VALUE].to_numpy(), f"{where}.{role}", tables[role].path, role)
    keys = [PAIR_KEY, TEMPERATURE] if pairs else [KEY]
    chk.check_shared_values(src, tgt, keys, where, paths, bool(prop.get("allow_shared_values", False)), checks,
                            _same_file(*paths))
    for role, table in (("source", src), ("target", tgt)):
        chk.check_polymer_keys(table, by, f"{where}.{role}", tables[role].path, descriptor, checks)
    chk.check_unit_columns(source, target, where, prop["transform_fit_on"], checks)
    if pairs:
        for role, table in (("source", src), ("target", tgt)):
            chk.check_temperatures(table, f"{where}.{role}", tables[role].path, prop[role]["temperature_column"],
                                   checks)

    try:
        t_src, t_tgt = fit_source_target(transform, prop["transform_fit_on"], src[VALUE].to_numpy(),
                                         tgt[VALUE].to_numpy(), f"{where}.source ({source.path})",
                                         f"{where}.target ({target.path})")
        src["y"] = t_src.transform(src[VALUE].to_numpy(), f"{where}.source ({source.path})")
        tgt["y"] = t_tgt.transform(tgt[VALUE].to_numpy(), f"{where}.target ({target.path})")
    except TransformError as exc:
        raise DataError(f"{exc} (drop those rows or choose another {where}.transform)") from exc

    n_train, n_test = split_sizes(len(tgt), protocol["test_fraction"])
    if n_train < 2:
        raise ConfigError(
            f"{where}.target: {len(tgt)} usable rows of {target.path} leave {n_train} for training at "
            f"protocol.test_fraction={protocol['test_fraction']}; at least 2 are needed"
        )
    chk.check_sizes(len(tgt), n_train, n_test, f"{where}.target", target.path, protocol["test_fraction"], checks)
    if len(src) < len(tgt):
        checks.add("warning", "source_smaller_than_target",
                   f"{where}: the source {source.path} has {len(src)} usable rows, the target {target.path} "
                   f"{len(tgt)}: the source is meant to be the large (simulated) table; are source and target "
                   "swapped?")
    unit = "pair-temperature row" if pairs else ("composition" if kind == "composition" else "molecule")
    for role, clean in tables.items():
        chk.check_duplicates_merged(clean, f"{where}.{role}", protocol["duplicates"], checks, unit)
    sizes = {"n_source": len(src), "n_target": len(tgt), "n_train": n_train, "n_test": n_test,
             "rejected_source": len(source.rejected), "rejected_target": len(target.rejected)}
    return PreparedTables(name=name, source=src, target=tgt, rejected=_rejected_of(tables),
                          transform={"source": t_src.to_dict(), "target": t_tgt.to_dict()}, checks=checks,
                          sizes=sizes, paths=paths)


def write_prepared(prepared: PreparedTables, out_dir: str | Path, rejected_log: str | Path | None = None) -> None:
    """source.csv, target.csv, rejected.csv, transform.json and checks.json of one property."""
    out = Path(out_dir)
    write_csv(prepared.source, out / "source.csv")
    write_csv(prepared.target, out / "target.csv")
    _write_rejected(prepared.rejected, out, rejected_log)
    write_json(prepared.transform, out / "transform.json")
    prepared.checks.write(out / "checks.json")
    rejected = prepared.rejected
    for role in ROLES:
        rows = rejected[rejected["table"] == role]
        if len(rows):
            log.warning("%s %s: %d rows rejected (see %s), e.g. row %s: %s", prepared.name, role, len(rows),
                        out / "rejected.csv", rows["row"].iloc[0], rows["reason"].iloc[0])


def prepare_property(config: Mapping[str, Any], name: str, out_dir: str | Path, *, annotate: Annotate | None = None,
                     rejected_log: str | Path | None = None) -> dict[str, Any]:
    """Prepare one property of single-key tables (SMILES or formulas) and fix its n and m grids.

    Writes the files of :func:`write_prepared` and ``grid.json``; returns the grid (with the table sizes).
    """
    prepared = prepare_tables(config, name, annotate=annotate, out_dir=out_dir, rejected_log=rejected_log)
    n_values = resolve_n_grid(config, prepared.sizes["n_source"], name)
    m_values = resolve_m_grid(config, prepared.sizes["n_train"], name)
    grid = {"n": n_values, "m": m_values, **prepared.sizes}
    write_prepared(prepared, out_dir, rejected_log)
    write_json(grid, Path(out_dir) / "grid.json")
    log.info("%s: %d source rows, %d target rows; n grid %s; m grid %s", name, prepared.sizes["n_source"],
             prepared.sizes["n_target"], n_values, m_values)
    return grid

