"""The inputs of a training job of a single-molecule property: its usable rows, descriptors and values.

Descriptors are transformed with statistics fitted on the source molecules only; property values stay in the
property's own units (every trial fits its own target transform on its own training rows). Pair studies load
their rows with :func:`sim2real_scaling.training.multitask.load_pair_data`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sim2real_scaling.data.features import DescriptorStore, DescriptorTransform
from sim2real_scaling.data.transforms import PropertyTransform
from sim2real_scaling.training.design import Design
from sim2real_scaling.training.settings import TrainingSettings


@dataclass
class PropertyData:
    """One property's usable rows, ready for training (single-molecule inputs).

    Descriptors are transformed with statistics fitted on the source molecules only; property values stay in
    the property's own units (every trial transforms its targets with its own fitted transform).
    """

    name: str
    X_source: np.ndarray  # (Ns, d) float32
    source_values: np.ndarray  # (Ns,) property units
    X_target: np.ndarray  # (Nt, d) float32
    target_values: np.ndarray  # (Nt,) property units
    target_keys: list[str]  # (Nt,) material label (id column, else canonical key)
    groups: dict[str, np.ndarray]  # group column -> (Nt,) labels
    sim_values: np.ndarray  # (Nt,) the source value of the same material, NaN where it has none
    source_transform: PropertyTransform  # fitted on every usable source value
    design: Design
    split_groups: np.ndarray | None = None
    feature_names: list[str] = field(default_factory=list)
    descriptor_note: str = ""


def _labels(column: pd.Series) -> np.ndarray:
    return column.astype(str).to_numpy()


def load_property_data(settings: TrainingSettings, source: pd.DataFrame, target: pd.DataFrame, store: DescriptorStore,
                       design: Design) -> PropertyData:
    """:class:`PropertyData` from the prepared tables (``key, value`` and id/group columns), the study's
    descriptors and the property's design (which rows are used)."""
    src = source.drop(index=design.excluded_source).reset_index(drop=True)
    tgt = target.drop(index=design.excluded_target).reset_index(drop=True)
    keys = np.array(src["key"].astype(str).tolist() + tgt["key"].astype(str).tolist())
    missing = keys[~store.has(keys)].tolist()
    if missing:
        raise ValueError(f"{len(missing)} molecules of the design have no descriptors, e.g. {missing[:3]}: the "
                         "design is older than the descriptors; rerun the design rule")
    names = store.names.tolist()
    transform = DescriptorTransform(settings.descriptor).fit(store.rows(src["key"].astype(str).tolist()), names)
    X_source = transform.apply(store.rows(src["key"].astype(str).tolist()))
    X_target = transform.apply(store.rows(tgt["key"].astype(str).tolist()))
    note = (f"descriptors: {settings.descriptor.method} fitted on {len(src)} source molecules, {len(X_target.names)} "
            f"columns; largest |input| of a target molecule {X_target.max_abs:.3g}"
            + (f", {X_target.clipped:.2%} of target inputs clipped at {settings.descriptor.clip:g}"
               if settings.descriptor.clip is not None else ""))
    sim = src.drop_duplicates("key").set_index("key")["value"]
    sim_values = tgt["key"].map(sim).to_numpy(dtype=float)
    material = (tgt["id"] if "id" in tgt.columns else tgt["key"]).astype(str).tolist()
    groups = {c: _labels(tgt[c]) for c in settings.protocol.group_columns if c in tgt.columns}
    source_values = src["value"].to_numpy(dtype=float)
    return PropertyData(
        name=settings.property, X_source=X_source.X, source_values=source_values, X_target=X_target.X,
        target_values=tgt["value"].to_numpy(dtype=float), target_keys=material, groups=groups, sim_values=sim_values,
        source_transform=PropertyTransform(list(settings.transform_steps)).fit(
            source_values, f"properties.{settings.property}.source values"),
        design=design, feature_names=X_source.names, descriptor_note=note)
