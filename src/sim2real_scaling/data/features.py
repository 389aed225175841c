"""The descriptor store of a study and the design matrices built from it.

Descriptors are computed once per distinct molecule of a study (and, with ``descriptor.cache_dir``,
once per molecule across studies) and stored as ``keys (N,)``, ``names (d,)``, ``values (N, d)``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim2real_scaling.config import settings_digest
from sim2real_scaling.data.descriptors import DescriptorError
from sim2real_scaling.data.descriptors.registry import compute_descriptors
from sim2real_scaling.io import write_npz

log = logging.getLogger(__name__)


@dataclass
class DescriptorStore:
    keys: np.ndarray  # (N,) str
    names: np.ndarray  # (d,) str
    values: np.ndarray  # (N, d) float64
    failed: dict[str, str] = field(default_factory=dict)  # key -> why it has no descriptors

    def has(self, keys: Sequence[str]) -> np.ndarray:
        """Boolean mask: which of ``keys`` have descriptors."""
        return np.isin(np.asarray(keys, dtype=str), self.keys.astype(str))

    def rows(self, keys: Sequence[str]) -> np.ndarray:
        index = {k: i for i, k in enumerate(self.keys.tolist())}
        missing = [k for k in keys if k not in index]
        if missing:
            raise KeyError(f"{len(missing)} molecules have no descriptors, e.g. {missing[:3]}")
        return self.values[[index[k] for k in keys]]

    def save(self, path: str | Path) -> None:
        write_npz(path, keys=self.keys.astype(str), names=self.names.astype(str), values=self.values)

    @classmethod
    def load(cls, path: str | Path) -> DescriptorStore:
        with np.load(path, allow_pickle=False) as data:
            return cls(keys=data["keys"], names=data["names"], values=data["values"])


def cache_file(cache_dir: str | Path, descriptor: Mapping[str, Any]) -> Path:
    digest = settings_digest({"set": descriptor["set"], "params": descriptor.get("params", {})})
    return Path(cache_dir) / f"{descriptor['set'].replace('+', '_')}-{digest}.npz"


def featurize(keys: Sequence[str], descriptor: Mapping[str, Any], cache: str | Path | None = None,
              batch: int = 200) -> DescriptorStore:
    """Descriptors for the distinct ``keys``, reusing and extending an optional cache file."""
    wanted = sorted(set(keys))
    cached: DescriptorStore | None = None
    if cache is not None and Path(cache).is_file():
        cached = DescriptorStore.load(cache)
    have = set(cached.keys.tolist()) if cached is not None else set()
    todo = [k for k in wanted if k not in have]
    log.info("descriptors '%s': %d molecules, %d cached, %d to compute", descriptor["set"], len(wanted),
             len(wanted) - len(todo), len(todo))
    blocks, names = [], None
    failed: dict[str, str] = {}
    computed: list[str] = []
    start = time.perf_counter()
    for i in range(0, len(todo), batch):
        chunk = todo[i:i + batch]
        try:
            values, names = compute_descriptors(descriptor["set"], chunk, descriptor.get("params"))
            blocks.append(values)
            computed.extend(chunk)
        except DescriptorError:
            # one bad molecule must not sink the batch: featurize one by one, set the failures aside
            for key in chunk:
                try:
                    values, names = compute_descriptors(descriptor["set"], [key], descriptor.get("params"))
                except DescriptorError as exc:
                    failed[key] = str(exc)
                    log.warning("no descriptors for %s: %s", key, exc)
                    continue
                blocks.append(values)
                computed.append(key)
        done = min(i + batch, len(todo))
        log.info("  %d/%d molecules featurized (%.1f s)", done, len(todo), time.perf_counter() - start)
    todo = computed
    if cached is not None and todo:
        if names is not None and list(cached.names) != list(names):
            differ = sorted(set(map(str, cached.names)) ^ set(map(str, names)))[:3]
            raise DescriptorError(
                f"descriptor cache {cache} was made with other descriptor columns ({len(cached.names)} there, "
                f"{len(names)} now{', e.g. ' + ', '.join(differ) if differ else ', in another order'}): it is only a "
                "cache of computed descriptors, delete it and run again")
    if cached is not None:
        all_keys = np.concatenate([cached.keys.astype(str), np.array(todo, dtype=str)])
        all_values = np.vstack([cached.values, *blocks]) if blocks else cached.values
        names_arr = cached.names.astype(str)
    else:
        if names is None:  # nothing computed and no cache
            raise DescriptorError(f"no molecule could be featurized with '{descriptor['set']}'"
                                  + (f", e.g. {next(iter(failed.items()))}" if failed else ""))
        all_keys, all_values, names_arr = np.array(todo, dtype=str), np.vstack(blocks), np.array(names, dtype=str)
    store = DescriptorStore(keys=all_keys, names=names_arr, values=all_values)
    if cache is not None and todo:
        store.save(cache)
    keep = np.isin(store.keys, np.array(wanted, dtype=str))
    return DescriptorStore(keys=store.keys[keep], names=store.names, values=store.values[keep], failed=failed)


@dataclass
class DesignMatrix:
    """Network inputs of one property: standardized, imputed, zero-variance columns dropped."""

    X: np.ndarray  # (rows, d) float32
    names: list[str]


def design_matrix(raw: np.ndarray, names: Sequence[str], drop_zero_variance: bool = True) -> DesignMatrix:
    """Median-impute NaNs per column, drop constant columns, standardize (statistics over all rows given).

    The rows are all molecules of one property (source and target): only descriptors, never labels,
    enter these statistics.
    """
    X = np.array(raw, dtype=np.float64)
    median = np.nanmedian(np.where(np.isfinite(X), X, np.nan), axis=0)
    median = np.where(np.isfinite(median), median, 0.0)
    bad = ~np.isfinite(X)
    X[bad] = np.take(median, np.nonzero(bad)[1])
    sd = X.std(axis=0)
    keep = sd > 1e-12 if drop_zero_variance else np.ones(X.shape[1], dtype=bool)
    X = (X[:, keep] - X[:, keep].mean(axis=0)) / np.where(sd[keep] > 1e-12, sd[keep], 1.0)
    return DesignMatrix(X=X.astype(np.float32), names=[n for n, k in zip(names, keep, strict=True) if k])
