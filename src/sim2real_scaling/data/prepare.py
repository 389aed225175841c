"""The prepare stage: clean the source and target tables of one property, fit its transform, fix its grid.

Writes (under ``results/<study>/prepared/<property>/``): ``source.csv`` and ``target.csv`` (columns
``key, value, y`` plus id/class columns; ``y`` is the transformed value), ``rejected.csv`` (every row
that was dropped, with file, row, column and reason), ``transform.json`` and ``grid.json`` (the n and m
values this property is studied at).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim2real_scaling.config import ConfigError, resolve_m_grid, resolve_n_grid
from sim2real_scaling.data.clean import KEY, VALUE, CleanTable, DataError, clean_table
from sim2real_scaling.io import write_csv, write_json
from sim2real_scaling.data.transforms import TransformError, fit_source_target

log = logging.getLogger(__name__)


def split_sizes(n_target: int, test_fraction: float) -> tuple[int, int]:
    """(training part, test part) sizes of one trial's split of ``n_target`` target rows."""
    n_test = max(1, int(round(test_fraction * n_target)))
    return n_target - n_test, n_test


def _carry_classes(source: pd.DataFrame, target: pd.DataFrame, columns: list[str],
                   paths: tuple[str, str] = ("", "")) -> pd.DataFrame:
    """Fill group columns the target lacks from the source table, matched by canonical key."""
    for column in columns:
        if column in target.columns:
            continue
        if column not in source.columns:
            where = f" ({paths[1]} nor {paths[0]})" if all(paths) else ""
            raise DataError(f"protocol.group_columns: column {column!r} is in neither the target nor the source "
                            f"table{where}; add it to a table or remove it from protocol.group_columns")
        mapping = source.drop_duplicates(KEY).set_index(KEY)[column]
        target[column] = target[KEY].map(mapping).fillna("unknown")
    return target


def prepare_property(config: Mapping[str, Any], name: str, out_dir: str | Path) -> dict[str, Any]:
    """Clean, transform and grid one property; write the prepared files; return a short summary."""
    if config["input_kind"] == "smiles_pair" or config["transfer"] == "multitask":
        from sim2real_scaling.training.multitask import prepare_pair_property  # polymer-solvent pairs (multitask chi study)

        return prepare_pair_property(config, name, out_dir)
    prop = config["properties"][name]
    protocol = config["protocol"]
    kind = config["input_kind"]
    group_columns = list(protocol["group_columns"])
    src_spec, tgt_spec = prop["source"], prop["target"]
    source = clean_table(src_spec, kind=kind, role="source", property_name=name, duplicates=protocol["duplicates"],
                         extra_columns=[c for c in group_columns if c in _columns_of(src_spec["path"])])
    target = clean_table(tgt_spec, kind=kind, role="target", property_name=name, duplicates=protocol["duplicates"],
                         extra_columns=[c for c in group_columns if c in _columns_of(tgt_spec["path"])])
    src, tgt = source.table, target.table
    if config.get("wiedemann_franz"):  # case study 3: WF class per compound (a group column), from raw values
        from sim2real_scaling.studies.wiedemann_franz import add_wf_columns

        src, tgt = add_wf_columns(src, tgt, config["wiedemann_franz"], paths=(source.path, target.path))
    if prop.get("scale", "linear") == "log10":
        if any(step in ("log", "log10") for step in prop["transform"]):
            raise ConfigError(f"config key properties.{name}.transform: scale is log10 already; drop log/log10")
        src = _log10_scale(src, source, src_spec["value_column"], name)
        tgt = _log10_scale(tgt, target, tgt_spec["value_column"], name)
    tgt = _carry_classes(src, tgt, group_columns, (source.path, target.path))

    where = f"properties.{name}"
    if prop["transform"] and prop["transform"][0] in ("log", "log10"):  # name the file rows, not array positions
        for role, table, clean, spec in (("source", src, source, src_spec), ("target", tgt, target, tgt_spec)):
            _check_positive(table, clean.path, f"{where}.{role}", spec["value_column"], prop["transform"][0], name)
    try:
        t_src, t_tgt = fit_source_target(prop["transform"], prop["transform_fit_on"], src[VALUE].to_numpy(),
                                         tgt[VALUE].to_numpy(), f"{where}.source ({source.path})",
                                         f"{where}.target ({target.path})")
        src["y"] = t_src.transform(src[VALUE].to_numpy(), f"{where}.source ({source.path})")
        tgt["y"] = t_tgt.transform(tgt[VALUE].to_numpy(), f"{where}.target ({target.path})")
    except TransformError as exc:
        raise DataError(f"{exc} (drop those rows or choose another properties.{name}.transform)") from exc

    n_train, n_test = split_sizes(len(tgt), protocol["test_fraction"])
    if n_train < 2:
        raise ConfigError(
            f"{where}.target: {len(tgt)} usable rows of {target.path} leave {n_train} for training at "
            f"protocol.test_fraction={protocol['test_fraction']}; at least 2 are needed"
        )
    n_values = resolve_n_grid(config, len(src), name)
    m_values = resolve_m_grid(config, n_train, name)

    out = Path(out_dir)
    write_csv(src, out / "source.csv")
    write_csv(tgt, out / "target.csv")
    rejected = pd.concat([source.rejected.assign(table="source"), target.rejected.assign(table="target")])
    write_csv(rejected, out / "rejected.csv")
    write_json({"source": t_src.to_dict(), "target": t_tgt.to_dict()}, out / "transform.json")
    grid = {"n": n_values, "m": m_values, "n_source": len(src), "n_target": len(tgt), "n_train": n_train,
            "n_test": n_test, "rejected_source": len(source.rejected), "rejected_target": len(target.rejected)}
    write_json(grid, out / "grid.json")
    for role, table in (("source", source), ("target", target)):
        if len(table.rejected):
            log.warning("%s %s: %d rows rejected (see %s), e.g. row %s: %s", name, role, len(table.rejected),
                        out / "rejected.csv", table.rejected["row"].iloc[0], table.rejected["reason"].iloc[0])
    log.info("%s: %d source rows, %d target rows; n grid %s; m grid %s", name, len(src), len(tgt), n_values, m_values)
    return grid


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


def _columns_of(path: str) -> list[str]:
    try:
        return list(pd.read_csv(path, nrows=0).columns)
    except (OSError, pd.errors.EmptyDataError):
        return []
