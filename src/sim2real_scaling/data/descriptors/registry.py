"""The descriptor sets a config can name (``descriptor.set``), mapped to their functions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

DescriptorFunction = Callable[..., tuple[np.ndarray, list[str]]]


def _rdkit(keys: Sequence[str], **params: Any) -> tuple[np.ndarray, list[str]]:
    from .rdkit_set import rdkit_descriptors

    return rdkit_descriptors(keys, **params)


def _rdkit_basic(keys: Sequence[str], **params: Any) -> tuple[np.ndarray, list[str]]:
    from .rdkit_set import rdkit_descriptors

    return rdkit_descriptors(keys, basic=True, **params)


def _force_field(keys: Sequence[str], **params: Any) -> tuple[np.ndarray, list[str]]:
    from .force_field import ff_kernel_mean_descriptor

    return ff_kernel_mean_descriptor(keys, **params)


def _force_field_rdkit(keys: Sequence[str], **params: Any) -> tuple[np.ndarray, list[str]]:
    ff_values, ff_names = _force_field(keys, **params)
    rd_values, rd_names = _rdkit(keys)
    return np.hstack([ff_values, rd_values]), ff_names + [f"rdkit_{n}" for n in rd_names]


def _composition(keys: Sequence[str], **params: Any) -> tuple[np.ndarray, list[str]]:
    from .composition import composition_kmd_descriptor

    return composition_kmd_descriptor(keys, **params)


DESCRIPTOR_SETS: dict[str, DescriptorFunction] = {
    "rdkit": _rdkit,
    "rdkit_basic": _rdkit_basic,
    "force_field": _force_field,
    "force_field+rdkit": _force_field_rdkit,
    "composition_kmd": _composition,
}


def compute_descriptors(set_name: str, keys: Sequence[str], params: dict[str, Any] | None = None) -> tuple[np.ndarray, list[str]]:
    """Descriptors of ``keys`` (canonical SMILES or formulas): ``(values (N, d), names)``."""
    try:
        function = DESCRIPTOR_SETS[set_name]
    except KeyError:
        raise ValueError(f"unknown descriptor set {set_name!r}; choose from {sorted(DESCRIPTOR_SETS)}") from None
    return function(list(keys), **(params or {}))
