"""The design of one property, fixed after the data are cleaned, featurised and checked: which rows are used,
the n and m grids, the test size, and the QC flags.

The Snakemake DAG is built from the config before any table is read (``n_points`` or the explicit n list fix the
number of n values); the design resolves those grid positions against the rows that are actually usable (rows
whose molecules have descriptors, rows QC does not drop). A grid position whose n would repeat another after
the source shrank is dropped (``None``) and said so in ``notes``; a training job for it writes empty tables.
Every training job checks that the design it reads was made for the grid and protocol it was asked for
(:func:`check_design`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sim2real_scaling.config import ConfigError, resolve_m_grid, resolve_n_grid
from sim2real_scaling.data.qc import QCSettings, qc_flags
from sim2real_scaling.training.protocol import Protocol, split_sizes
from sim2real_scaling.training.settings import ProtocolSettings

log = logging.getLogger(__name__)


@dataclass
class Design:
    """What a property's training jobs train on (``design.json``)."""

    property: str
    n: list[int | None]  # one entry per grid position of the config (None: dropped, see notes)
    m: list[int]
    n_test: int
    n_train: int
    n_source: int  # usable source rows
    n_target: int  # usable target rows
    excluded_source: list[int] = field(default_factory=list)  # positions in prepared/source.csv left out
    excluded_target: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    spec: dict[str, Any] = field(default_factory=dict)  # the grid and protocol it was made for
    qc: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Design:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def n_at(self, n_index: int) -> int | None:
        return self.n[n_index]


def design_spec(grid: Mapping[str, Any], grid_m: Any, protocol: ProtocolSettings, qc: QCSettings,
                extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What a design depends on (the config slices): compared by every training job with what it was asked."""
    spec = {"grid": {k: grid.get(k) for k in ("n", "n_points", "n_min", "m")}, "grid_m": grid_m,
            "test_fraction": protocol.test_fraction, "qc": asdict(qc), **(dict(extra) if extra else {})}
    if spec.get("exclude_test_pairs"):  # the pool of simulated rows depends on every trial's split
        spec.update(trials=protocol.trials, seed=protocol.seed)
    return spec


def check_design(design: Design, spec: Mapping[str, Any], n_indices: Sequence[int] = (), source: str = "") -> None:
    """Refuse a design made for another grid or protocol, or without the grid positions a job trains."""
    if design.spec != dict(spec):
        differ = sorted(k for k in set(design.spec) | set(spec) if design.spec.get(k) != spec.get(k))
        raise ConfigError(f"{source or 'design.json'} was made for other settings ({', '.join(differ)}) than this job's; "
                          "rerun the design rule (snakemake reruns it when the config changed)")
    bad = [i for i in n_indices if i >= len(design.n)]
    if bad:
        raise ConfigError(f"{source or 'design.json'} has {len(design.n)} n grid positions, this job trains {list(n_indices)}")


def _dedupe(values: list[int], usable: int, raw: int, name: str, explicit: bool) -> tuple[list[int | None], list[str]]:
    notes = []
    out: list[int | None] = []
    seen: set[int] = set()
    for i, v in enumerate(values):
        if explicit and v > usable:
            notes.append(f"{name}: grid.n[{i}] = {v} is more than the {usable} usable source rows ({raw - usable} of "
                         f"{raw} have no descriptors or were dropped by QC): trained at n = {usable}")
            v = usable
        if v in seen:
            notes.append(f"{name}: grid.n[{i}] would repeat n = {v}; that grid position is dropped")
            out.append(None)
            continue
        seen.add(v)
        out.append(v)
    return out, notes


def resolve_design(name: str, source: pd.DataFrame, target: pd.DataFrame, *, usable_source: np.ndarray,
                   usable_target: np.ndarray, grid: Mapping[str, Any], grid_m: Any, protocol: ProtocolSettings,
                   qc: QCSettings, qc_table: pd.DataFrame, spec: dict[str, Any],
                   source_pool: int | None = None, split_groups: np.ndarray | None = None) -> Design:
    """The design from the prepared tables and masks of usable rows.

    ``source_pool``: the fewest source rows any trial may draw from (pairs that withhold test pairs' simulated
    rows); default all usable source rows.
    """
    notes: list[str] = []
    n_src, n_tgt = int(usable_source.sum()), int(usable_target.sum())
    if n_tgt < 2:
        raise ConfigError(f"properties.{name}.target: {n_tgt} usable rows; at least 2 are needed")
    n_train, n_test = split_sizes(n_tgt, protocol.test_fraction)
    pool = n_src if source_pool is None else int(source_pool)
    mini = {"grid": dict(grid), "properties": {name: {"grid_m": grid_m}},
            "protocol": {"test_fraction": protocol.test_fraction}}
    explicit = isinstance(grid.get("n"), list)
    if explicit:
        too_big = [v for v in grid["n"] if v > len(source)]
        if too_big:
            raise ConfigError(f"config key grid.n: {too_big} larger than the {len(source)} valid source rows of "
                              f"properties.{name}")
        n_values, more = _dedupe([int(v) for v in grid["n"]], pool, len(source), name, True)
    else:
        n_values, more = _dedupe(resolve_n_grid(mini, pool, name), pool, len(source), name, False)
    notes += more
    m_values = resolve_m_grid(mini, n_train, name)
    lost_src, lost_tgt = len(source) - n_src, len(target) - n_tgt
    if lost_src or lost_tgt:
        notes.append(f"{name}: {lost_src} source and {lost_tgt} target rows left out (no descriptors, or dropped by QC)")
    flagged = int(len(qc_table))
    qc_record = {"action": qc.action, "flagged": flagged,
                 "dropped": int((~usable_target).sum() + (~usable_source).sum()) if qc.action == "drop" else 0}
    return Design(property=name, n=n_values, m=m_values, n_test=n_test, n_train=n_train, n_source=n_src,
                  n_target=n_tgt, excluded_source=np.flatnonzero(~usable_source).tolist(),
                  excluded_target=np.flatnonzero(~usable_target).tolist(), notes=notes, spec=spec, qc=qc_record)


def qc_and_usable(name: str, source: pd.DataFrame, target: pd.DataFrame, *, featurized_source: np.ndarray,
                  featurized_target: np.ndarray, source_path: str, target_path: str, steps: Sequence[str],
                  qc: QCSettings, match: str = "key", log_scale: bool = False) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The QC flags of a property's tables and the masks of usable rows (featurised; not dropped by QC)."""
    flags = qc_flags(source, target, source_path=source_path, target_path=target_path, steps=steps, settings=qc,
                     match=match, log_scale=log_scale)
    use_src, use_tgt = featurized_source.copy(), featurized_target.copy()
    if qc.action == "drop" and not flags.empty:
        for role, mask, table in (("source", use_src, source), ("target", use_tgt, target)):
            rows = set(flags.loc[flags["table"] == role, "row"].tolist())
            if rows:
                mask &= ~table["source_row"].isin(rows).to_numpy()
    for _, r in flags.iterrows():
        log.warning("%s: QC %s %s row %s (%s): %s", name, "dropped" if qc.action == "drop" else "flagged",
                    r["table"], r["row"], r["key"], r["reason"])
    return flags, use_src, use_tgt


def pair_source_pool(protocol: Protocol, target_pairs: np.ndarray, source_pairs: np.ndarray) -> int:
    """The fewest simulated rows any trial keeps when the simulated rows of its test pairs are withheld."""
    pool = len(source_pairs)
    for t in range(protocol.settings.trials):
        _, test = protocol.split(t)
        pool = min(pool, int((~np.isin(source_pairs, np.unique(target_pairs[test]))).sum()))
    return pool
