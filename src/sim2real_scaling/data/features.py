"""The descriptor store of a study and the design matrices built from it.

Descriptors are computed once per distinct molecule of a study (and, with ``descriptor.cache_dir``,
once per molecule across studies) and stored as ``keys (N,)``, ``names (d,)``, ``values (N, d)``.
"""

from __future__ import annotations

import logging
import time
import warnings
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


DESCRIPTOR_TRANSFORMS = ("standardize", "yeo-johnson", "quantile")


@dataclass(frozen=True)
class DescriptorTransformSettings:
    """How descriptors become network inputs (config ``descriptor.transform`` and ``drop_zero_variance``).

    ``method``: ``standardize`` (z-scores), ``yeo-johnson`` (z-scores, then scikit-learn's PowerTransformer:
    skewed columns made closer to normal) or ``quantile`` (QuantileTransformer to a normal distribution, robust
    to any outlier); ``clip``: inputs are then clipped to [-clip, clip] (None: not clipped), so that a molecule
    far outside the fitted range cannot saturate the network.
    """

    method: str = "standardize"
    clip: float | None = 5.0
    drop_zero_variance: bool = True

    @classmethod
    def from_config(cls, descriptor: Mapping[str, Any]) -> DescriptorTransformSettings:
        spec = descriptor.get("transform") or {}
        return cls(method=spec.get("method", "standardize"), clip=spec.get("clip", 5.0),
                   drop_zero_variance=bool(descriptor.get("drop_zero_variance", True)))


@dataclass
class DesignMatrix:
    """Network inputs of one property, and what the descriptor transform did."""

    X: np.ndarray  # (rows, d) float32
    names: list[str]
    fit_rows: int = 0  # rows the statistics were fitted on (the source molecules)
    clipped: float = 0.0  # share of input values clipped (all rows)
    max_abs: float = 0.0  # largest |input| before clipping (all rows)


class DescriptorTransform:
    """Imputation, dropping of constant columns, a scikit-learn transform and clipping, fitted on some rows.

    Fitted on the source molecules (the pretraining pool) and applied to every molecule, so its statistics never
    see a target row, least of all a test row.
    """

    def __init__(self, settings: DescriptorTransformSettings) -> None:
        if settings.method not in DESCRIPTOR_TRANSFORMS:
            raise ValueError(f"descriptor.transform.method must be one of {DESCRIPTOR_TRANSFORMS}, got {settings.method!r}")
        self.settings = settings

    def fit(self, raw: np.ndarray, names: Sequence[str]) -> DescriptorTransform:
        """Fit on ``raw (n, d)``: median imputation values, kept columns and the transform's statistics."""
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import PowerTransformer, QuantileTransformer, StandardScaler

        X = np.array(raw, dtype=np.float64)
        X[~np.isfinite(X)] = np.nan
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            median = np.nanmedian(X, axis=0)
        self.median = np.where(np.isfinite(median), median, 0.0)
        X = self._impute(X)
        sd = X.std(axis=0)
        self.keep = sd > 1e-12 if self.settings.drop_zero_variance else np.ones(X.shape[1], dtype=bool)
        self.names = [n for n, k in zip(names, self.keep, strict=True) if k]
        method = self.settings.method
        if method == "standardize":
            self.pipeline = StandardScaler()
        elif method == "yeo-johnson":  # z-scores first: yeo-johnson on raw magnitudes of 1e5 overflows
            self.pipeline = make_pipeline(StandardScaler(), PowerTransformer(method="yeo-johnson"))
        else:
            self.pipeline = QuantileTransformer(output_distribution="normal", n_quantiles=min(1000, len(X)),
                                                subsample=10**9, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn's overflow notes on extreme columns
            self.pipeline.fit(X[:, self.keep])
        self.fit_rows = int(len(X))
        return self

    def _impute(self, X: np.ndarray) -> np.ndarray:
        bad = ~np.isfinite(X)
        if bad.any():
            X = X.copy()
            X[bad] = np.take(self.median, np.nonzero(bad)[1])
        return X

    def apply(self, raw: np.ndarray) -> DesignMatrix:
        X = np.array(raw, dtype=np.float64)
        X[~np.isfinite(X)] = np.nan
        X = self._impute(X)[:, self.keep]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Z = self.pipeline.transform(X)
        Z = np.where(np.isfinite(Z), Z, 0.0)
        max_abs = float(np.abs(Z).max()) if Z.size else 0.0
        clipped = 0.0
        if self.settings.clip is not None:
            c = float(self.settings.clip)
            clipped = float(np.mean(np.abs(Z) > c)) if Z.size else 0.0
            Z = np.clip(Z, -c, c)
        return DesignMatrix(X=Z.astype(np.float32), names=list(self.names), fit_rows=self.fit_rows, clipped=clipped,
                            max_abs=max_abs)


def design_matrix(raw: np.ndarray, names: Sequence[str], drop_zero_variance: bool = True, *,
                  fit_rows: np.ndarray | slice | None = None,
                  settings: DescriptorTransformSettings | None = None) -> DesignMatrix:
    """Network inputs for the molecules ``raw (N, d)``, with statistics fitted on ``raw[fit_rows]`` only.

    ``fit_rows``: the source molecules (default: all rows, for callers without a source/target distinction).
    """
    settings = settings or DescriptorTransformSettings(drop_zero_variance=drop_zero_variance)
    rows = slice(None) if fit_rows is None else fit_rows
    transform = DescriptorTransform(settings).fit(np.asarray(raw)[rows], names)
    return transform.apply(raw)
