"""Per-property transforms applied before training and undone on predictions.

A :class:`PropertyTransform` is a fitted chain of steps (``log``, ``log10``, ``standardize``, ``yeo-johnson``,
``min-max``). It holds a *batch* of ``E`` fitted chains at once (every step's parameters are arrays of shape
``(E,)``): a trial fits its own target transform on its own training rows (never on its test rows), and the
trials of a training job are transformed and inverted together. ``E = 1`` is one ordinary transform.

Shapes: a transform of ``E`` chains maps values ``(N,)`` (the same rows for every chain) or ``(E, N)`` (rows of
its own for each chain) to ``(E, N)``; with ``E = 1`` a ``(N,)`` input gives a ``(N,)`` output. Inverses are
exact, so MAEs are always reported in the property's own units.

The arithmetic is numpy, vectorised over chains (one scikit-learn object per trial and chain would be
hundreds of objects per job, each inverted at every validation check); ``tests/test_transforms.py`` checks it
against scikit-learn's ``StandardScaler``, ``MinMaxScaler`` and ``PowerTransformer(method="yeo-johnson")``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STEPS = ("log", "log10", "standardize", "yeo-johnson", "min-max")


class TransformError(ValueError):
    """Values cannot be transformed (e.g. non-positive under a log); the message says which."""


def _yeo_johnson(x: np.ndarray, lmbda: np.ndarray) -> np.ndarray:
    """The Yeo-Johnson transform of ``x (E, N)`` with ``lmbda (E, 1)`` (scipy's formula, vectorised)."""
    out = np.empty_like(x, dtype=float)
    pos = x >= 0
    lam = np.broadcast_to(lmbda, x.shape)
    with np.errstate(all="ignore"):
        near0 = np.abs(lam) < 1e-12
        near2 = np.abs(lam - 2.0) < 1e-12
        p = np.where(near0, np.log1p(x), (np.power(x + 1.0, lam) - 1.0) / np.where(near0, 1.0, lam))
        q = np.where(near2, -np.log1p(-x), -(np.power(1.0 - x, 2.0 - lam) - 1.0) / np.where(near2, 1.0, 2.0 - lam))
    out[pos] = p[pos]
    out[~pos] = q[~pos]
    return out


def _yeo_johnson_inverse(y: np.ndarray, lmbda: np.ndarray) -> np.ndarray:
    x = np.empty_like(y, dtype=float)
    pos = y >= 0
    lam = np.broadcast_to(lmbda, y.shape)
    with np.errstate(all="ignore"):
        near0 = np.abs(lam) < 1e-12
        near2 = np.abs(lam - 2.0) < 1e-12
        p = np.where(near0, np.expm1(y), np.power(y * lam + 1.0, 1.0 / np.where(near0, 1.0, lam)) - 1.0)
        q = np.where(near2, -np.expm1(-y),
                     1.0 - np.power(-(2.0 - lam) * y + 1.0, 1.0 / np.where(near2, 1.0, 2.0 - lam)))
    x[pos] = p[pos]
    x[~pos] = q[~pos]
    return x


def _yeo_johnson_lambda(values: np.ndarray) -> float:
    from scipy import stats  # here, not at the top: importing scipy.stats takes a second

    return float(stats.yeojohnson_normmax(values))


@dataclass
class PropertyTransform:
    """A fitted chain of transforms for ``E`` chains; ``params`` holds one dict of ``(E,)`` arrays per step."""

    steps: list[str]
    params: list[dict[str, np.ndarray]] = field(default_factory=list)
    chains: int | None = None  # E, for chains of parameter-free steps (log) that hold no array to count

    def __post_init__(self) -> None:
        unknown = [s for s in self.steps if s not in STEPS]
        if unknown:
            raise TransformError(f"unknown transform step(s) {unknown}; choose from {list(STEPS)}")
        self.params = [{k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in p.items()} for p in self.params]

    @property
    def size(self) -> int:
        """Number of chains E (1 before fitting)."""
        for p in self.params:
            for v in p.values():
                return int(v.shape[0])
        return 1 if self.chains is None else int(self.chains)

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, values: np.ndarray, what: str = "values") -> PropertyTransform:
        """Fit one chain on a 1-D array of values."""
        return self.fit_batch(np.asarray(values, dtype=float)[None, :], what)

    def fit_batch(self, values: np.ndarray, what: str = "values") -> PropertyTransform:
        """Fit E chains, chain e on row e of ``values (E, m)``."""
        x = np.array(values, dtype=float, ndmin=2)
        self.params = []
        self.chains = int(x.shape[0])
        for k, step in enumerate(self.steps):
            if step in ("log", "log10"):
                bad = np.argwhere(~(x > 0))
                if bad.size:
                    after = (f" after {' -> '.join(self.steps[:k])} (which makes values <= 0: put '{step}' first)"
                             if k else "")
                    raise TransformError(
                        f"{what}: '{step}' transform needs positive values, but {len(bad)} are <= 0{after} "
                        f"(first at position {bad[0][-1]}: {float(x[tuple(bad[0])]):g})"
                    )
                p: dict[str, np.ndarray] = {}
            elif step == "standardize":
                sd = x.std(axis=1)
                p = {"mean": x.mean(axis=1), "std": np.where(sd > 0, sd, 1.0)}
            elif step == "min-max":
                lo, hi = x.min(axis=1), x.max(axis=1)
                p = {"min": lo, "max": np.where(hi > lo, hi, lo + 1.0)}
            else:  # yeo-johnson: one maximum-likelihood lambda per chain (scipy)
                p = {"lambda": np.array([_yeo_johnson_lambda(row) for row in x])}
            self.params.append(p)
            x = self._apply(step, p, x, what)
        return self

    # -- applying ----------------------------------------------------------------------------
    @staticmethod
    def _col(v: np.ndarray) -> np.ndarray:
        return v[:, None]

    @classmethod
    def _apply(cls, step: str, p: dict[str, np.ndarray], x: np.ndarray, what: str = "values") -> np.ndarray:
        if step in ("log", "log10"):
            if np.any(~(x > 0)):
                bad = np.argwhere(~(x > 0))[0]
                raise TransformError(
                    f"{what}: '{step}' transform needs positive values; position {bad[-1]} is {float(x[tuple(bad)]):g}"
                )
            return np.log(x) if step == "log" else np.log10(x)
        if step == "standardize":
            return (x - cls._col(p["mean"])) / cls._col(p["std"])
        if step == "min-max":
            return (x - cls._col(p["min"])) / (cls._col(p["max"]) - cls._col(p["min"]))
        return _yeo_johnson(x, cls._col(p["lambda"]))

    @classmethod
    def _invert(cls, step: str, p: dict[str, np.ndarray], y: np.ndarray) -> np.ndarray:
        if step == "log":
            return np.exp(y)
        if step == "log10":
            return np.power(10.0, y)
        if step == "standardize":
            return y * cls._col(p["std"]) + cls._col(p["mean"])
        if step == "min-max":
            return y * (cls._col(p["max"]) - cls._col(p["min"])) + cls._col(p["min"])
        return _yeo_johnson_inverse(y, cls._col(p["lambda"]))

    def _as_batch(self, values: np.ndarray) -> tuple[np.ndarray, bool]:
        x = np.asarray(values, dtype=float)
        single = x.ndim == 1 and self.size == 1
        if x.ndim == 1:
            x = np.broadcast_to(x, (self.size, x.shape[0]))
        if x.shape[0] != self.size:
            raise TransformError(f"{x.shape[0]} rows of values for {self.size} fitted transforms")
        return x, single

    def transform(self, values: np.ndarray, what: str = "values") -> np.ndarray:
        """Values ``(N,)`` or ``(E, N)`` -> transformed ``(E, N)`` (``(N,)`` for one chain and 1-D input)."""
        if len(self.params) != len(self.steps):
            raise TransformError("transform used before it was fitted")
        x, single = self._as_batch(values)
        for step, p in zip(self.steps, self.params, strict=True):
            x = self._apply(step, p, x, what)
        return x[0] if single else x

    def inverse_transform(self, values: np.ndarray) -> np.ndarray:
        """Transformed ``(N,)`` or ``(E, N)`` -> values in the property's units (same shape rule)."""
        y, single = self._as_batch(values)
        with np.errstate(over="ignore", invalid="ignore"):
            for step, p in zip(reversed(self.steps), reversed(self.params), strict=True):
                y = self._invert(step, p, y)
        return y[0] if single else y

    def transform_batch(self, values: np.ndarray, what: str = "values") -> np.ndarray:
        """Values ``(N,)`` or ``(E, N)`` -> ``(E, N)``, also for one chain."""
        return np.atleast_2d(self.transform(values, what)) if self.size == 1 else self.transform(values, what)

    def inverse_batch(self, values: np.ndarray) -> np.ndarray:
        """Transformed ``(N,)`` or ``(E, N)`` -> ``(E, N)`` in the property's units, also for one chain."""
        return np.atleast_2d(self.inverse_transform(values)) if self.size == 1 else self.inverse_transform(values)

    def repeat(self, times: int) -> PropertyTransform:
        """Each chain repeated ``times`` times in a row (chain e -> chains e*times ... e*times + times - 1)."""
        return PropertyTransform(list(self.steps), [{k: np.repeat(v, times) for k, v in p.items()} for p in self.params],
                                 chains=self.size * times)

    def select(self, index: Sequence[int] | np.ndarray) -> PropertyTransform:
        """The chains at ``index``."""
        idx = np.asarray(index, dtype=int)
        return PropertyTransform(list(self.steps), [{k: v[idx] for k, v in p.items()} for p in self.params],
                                 chains=len(idx))

    # -- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON form; one chain's parameters are plain numbers, a batch's are lists."""
        if self.size == 1:
            params = [{k: float(v[0]) for k, v in p.items()} for p in self.params]
        else:
            params = [{k: v.tolist() for k, v in p.items()} for p in self.params]
        return {"steps": list(self.steps), "params": params, "chains": self.size}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PropertyTransform:
        return cls(steps=list(data["steps"]), params=[dict(p) for p in data["params"]], chains=data.get("chains"))


def fit_source_target(steps: Sequence[str], fit_on: str, source: np.ndarray, target: np.ndarray,
                      source_name: str, target_name: str) -> tuple[PropertyTransform, PropertyTransform]:
    """Transforms of a property's source and target values, each fitted on a whole table.

    For descriptive uses (data QC, the prepared tables): training fits the target transform of every trial on
    that trial's training rows only (:func:`target_transform_for_trials`). ``fit_on``: ``each`` (one transform
    per table) or ``source`` (one transform fitted on the source table, used for both).
    """
    if fit_on == "each":
        return (PropertyTransform(list(steps)).fit(source, source_name),
                PropertyTransform(list(steps)).fit(target, target_name))
    shared = PropertyTransform(list(steps)).fit(source, source_name)
    return shared, shared


def target_transform_for_trials(steps: Sequence[str], fit_on: str, source_transform: PropertyTransform,
                                target_values: np.ndarray, train_rows: np.ndarray,
                                what: str = "target values") -> PropertyTransform:
    """The target transform of each of E trials, fitted without its test rows.

    ``fit_on = "source"``: the source table's transform (fitted on source values only) for every trial;
    ``"each"``: trial e's transform is fitted on ``target_values[train_rows[e]]``, its own training rows.
    ``train_rows``: ``(E, m)``. Returns a transform of E chains.
    """
    E = int(np.asarray(train_rows).shape[0])
    if fit_on == "source":
        return source_transform.repeat(E) if source_transform.size == 1 else source_transform
    return PropertyTransform(list(steps)).fit_batch(np.asarray(target_values, dtype=float)[np.asarray(train_rows)], what)
