"""Per-property transforms applied before training and undone on predictions.

A :class:`PropertyTransform` is a fitted chain of steps (``log``, ``log10``, ``standardize``,
``yeo-johnson``, ``min-max``). It is fitted on a 1-D array of property values, serialises to JSON and
inverts exactly, so MAEs are always reported in the property's own units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STEPS = ("log", "log10", "standardize", "yeo-johnson", "min-max")


class TransformError(ValueError):
    """Values cannot be transformed (e.g. non-positive under a log); the message says which."""


def _yeo_johnson_inverse(y: np.ndarray, lmbda: float) -> np.ndarray:
    x = np.empty_like(y, dtype=float)
    pos = y >= 0
    if abs(lmbda) < 1e-12:
        x[pos] = np.expm1(y[pos])
    else:
        x[pos] = np.power(y[pos] * lmbda + 1.0, 1.0 / lmbda) - 1.0
    if abs(lmbda - 2.0) < 1e-12:
        x[~pos] = -np.expm1(-y[~pos])
    else:
        x[~pos] = 1.0 - np.power(-(2.0 - lmbda) * y[~pos] + 1.0, 1.0 / (2.0 - lmbda))
    return x


@dataclass
class PropertyTransform:
    """A fitted chain of transforms; ``params`` holds one dict of fitted numbers per step."""

    steps: list[str]
    params: list[dict[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        unknown = [s for s in self.steps if s not in STEPS]
        if unknown:
            raise TransformError(f"unknown transform step(s) {unknown}; choose from {list(STEPS)}")

    def fit(self, values: np.ndarray, what: str = "values") -> PropertyTransform:
        x = np.asarray(values, dtype=float)
        self.params = []
        for k, step in enumerate(self.steps):
            if step in ("log", "log10"):
                bad = np.flatnonzero(~(x > 0))
                if bad.size:
                    after = (f" after {' -> '.join(self.steps[:k])} (which makes values <= 0: put '{step}' first)"
                             if k else "")
                    raise TransformError(
                        f"{what}: '{step}' transform needs positive values, but {bad.size} are <= 0{after} "
                        f"(first at position {bad[0]}: {float(x[bad[0]]):g})"
                    )
                self.params.append({})
            elif step == "standardize":
                sd = float(np.std(x))
                self.params.append({"mean": float(np.mean(x)), "std": sd if sd > 0 else 1.0})
            elif step == "min-max":
                lo, hi = float(np.min(x)), float(np.max(x))
                self.params.append({"min": lo, "max": hi if hi > lo else lo + 1.0})
            elif step == "yeo-johnson":
                from scipy import stats  # here, not at the top: importing scipy.stats takes a second

                _, lmbda = stats.yeojohnson(x)
                self.params.append({"lambda": float(lmbda)})
            x = self._apply(step, self.params[-1], x, what)
        return self

    @staticmethod
    def _apply(step: str, p: dict[str, float], x: np.ndarray, what: str = "values") -> np.ndarray:
        if step in ("log", "log10"):
            if np.any(~(x > 0)):
                bad = np.flatnonzero(~(x > 0))
                raise TransformError(
                    f"{what}: '{step}' transform needs positive values; position {bad[0]} is {float(x[bad[0]]):g}"
                )
            return np.log(x) if step == "log" else np.log10(x)
        if step == "standardize":
            return (x - p["mean"]) / p["std"]
        if step == "min-max":
            return (x - p["min"]) / (p["max"] - p["min"])
        from scipy import stats

        return stats.yeojohnson(x, lmbda=p["lambda"])

    @staticmethod
    def _invert(step: str, p: dict[str, float], y: np.ndarray) -> np.ndarray:
        if step == "log":
            return np.exp(y)
        if step == "log10":
            return np.power(10.0, y)
        if step == "standardize":
            return y * p["std"] + p["mean"]
        if step == "min-max":
            return y * (p["max"] - p["min"]) + p["min"]
        return _yeo_johnson_inverse(y, p["lambda"])

    def transform(self, values: np.ndarray, what: str = "values") -> np.ndarray:
        if len(self.params) != len(self.steps):
            raise TransformError("transform used before it was fitted")
        x = np.asarray(values, dtype=float)
        for step, p in zip(self.steps, self.params, strict=True):
            x = self._apply(step, p, x, what)
        return x

    def inverse_transform(self, values: np.ndarray) -> np.ndarray:
        y = np.asarray(values, dtype=float)
        for step, p in zip(reversed(self.steps), reversed(self.params), strict=True):
            y = self._invert(step, p, y)
        return y

    def to_dict(self) -> dict[str, Any]:
        return {"steps": list(self.steps), "params": [dict(p) for p in self.params]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PropertyTransform:
        return cls(steps=list(data["steps"]), params=[dict(p) for p in data["params"]])


def fit_source_target(steps: Sequence[str], fit_on: str, source: np.ndarray, target: np.ndarray,
                      source_name: str, target_name: str) -> tuple[PropertyTransform, PropertyTransform]:
    """The fitted transforms of a property's source and target values.

    ``fit_on``: ``each`` (one transform per table, e.g. two heads on their own scales), ``source`` or
    ``target`` (one transform fitted on that table, used for both). The names label errors.
    """
    if fit_on == "each":
        return (PropertyTransform(list(steps)).fit(source, source_name),
                PropertyTransform(list(steps)).fit(target, target_name))
    shared = PropertyTransform(list(steps)).fit(*((source, source_name) if fit_on == "source" else (target, target_name)))
    return shared, shared
