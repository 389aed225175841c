"""The trial runner: one protocol, several strategies, the same trial tables.

A training job trains one chunk of trials of one property with one strategy (a *method* of the output contract:
``finetune``, ``multitask``, ``direct``, ``simulation``, ...), at every n of its block and every m of the design.
The protocol (:mod:`.protocol`: splits, m-subsets, validation rows, pretraining draws, seeds) and the model
selection (:mod:`.selection`) are the same for every strategy; a strategy only says how its networks start and
train (:mod:`.strategies`). The runner then turns each trial's test predictions into the rows of trials.csv,
group_trials.csv and material_errors.csv (:mod:`sim2real_scaling.contract`). A chunk of trials trains as one
vectorised ensemble; there is no Python loop over trials in training.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from sim2real_scaling.contract import GROUP_COLUMNS, MATERIAL_COLUMNS, TRIAL_COLUMNS
from sim2real_scaling.data.features import DescriptorStore, DescriptorTransform
from sim2real_scaling.data.transforms import PropertyTransform
from sim2real_scaling.training.design import Design
from sim2real_scaling.training.ensemble import resolve_device
from sim2real_scaling.training.protocol import Protocol
from sim2real_scaling.training.settings import TrainingSettings

log = logging.getLogger(__name__)


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
    missing = [k for k in src["key"].astype(str).tolist() + tgt["key"].astype(str).tolist() if not store.has([k])[0]]
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


def progress_logger(prefix: str):  # noqa: ANN201
    """A progress callback logging epochs, the mean training loss, wall and CPU seconds."""
    start, cpu_start = time.perf_counter(), time.process_time()

    def report(epoch: int, epochs: int, loss: float) -> None:
        # wall and CPU seconds since the start of training (benchmarks/study_walltime.py reads both)
        log.info("%s epoch %d/%d  mean train loss %.4g  (%.1f s, %.1f s CPU)", prefix, epoch, epochs, loss,
                 time.perf_counter() - start, time.process_time() - cpu_start)

    return report


@dataclass
class TrialPredictions:
    """What a strategy returns for E trials at one (n, m): test predictions and the chosen settings."""

    pred: np.ndarray  # (E, n_test) property units (NaN where a reference has no prediction, or diverged)
    covered: np.ndarray | None = None  # (E, n_test) rows a reference predicts (simulation); None = all
    train_loss: np.ndarray | None = None
    val_mae: np.ndarray | None = None
    epochs: np.ndarray | None = None
    lr: np.ndarray | None = None
    weight_decay: np.ndarray | None = None
    selection: str = "none"


@dataclass
class ChunkResult:
    trials: pd.DataFrame
    groups: pd.DataFrame
    materials: pd.DataFrame

    @classmethod
    def empty(cls) -> ChunkResult:
        return cls(pd.DataFrame(columns=list(TRIAL_COLUMNS)), pd.DataFrame(columns=list(GROUP_COLUMNS)),
                   pd.DataFrame(columns=list(MATERIAL_COLUMNS)))

    @classmethod
    def concat(cls, parts: Sequence[ChunkResult]) -> ChunkResult:
        parts = [p for p in parts if p is not None]
        if not parts:
            return cls.empty()
        return cls(*(pd.concat([getattr(p, k) for p in parts], ignore_index=True) if any(
            len(getattr(p, k)) for p in parts) else getattr(parts[0], k) for k in ("trials", "groups", "materials")))


def _opt(values: np.ndarray | None, E: int, fill: float = np.nan) -> np.ndarray:
    return np.full(E, fill) if values is None else np.asarray(values, dtype=float)


def tabulate(data: Any, settings: TrainingSettings, method: str, n: int, m: int, trials: Sequence[int],
             test_rows: np.ndarray, result: TrialPredictions) -> ChunkResult:
    """The rows of the three tables for E trials at one (n, m)."""
    prop = data.name
    E = len(trials)
    values = data.target_values
    abs_err = np.abs(result.pred - values[test_rows])  # (E, n_test)
    covered = np.ones_like(abs_err, dtype=bool) if result.covered is None else result.covered
    with np.errstate(invalid="ignore"):
        counted = np.where(covered, abs_err, 0.0).sum(axis=1)
        n_counted = covered.sum(axis=1)
        mae = np.where(n_counted > 0, counted / np.maximum(n_counted, 1), np.nan)
        sim_rows = np.isfinite(data.sim_values[test_rows]) & covered
        n_sim = sim_rows.sum(axis=1)
        mae_sim = np.where(n_sim > 0, np.where(sim_rows, abs_err, 0.0).sum(axis=1) / np.maximum(n_sim, 1), np.nan)
    loss = _opt(result.train_loss, E)
    epochs = _opt(result.epochs, E)
    # a diverged network has a NaN loss or MAE; a network kept at epoch 0 (the pretrained one as it was) has no loss
    ok = np.isfinite(mae) & (np.isfinite(loss) | (result.train_loss is None) | (epochs == 0))
    replicate = np.array([settings.protocol.replicate_of(t) for t in trials])
    trial_table = pd.DataFrame({
        "property": prop, "method": method, "n": n, "m": m, "trial": list(trials), "replicate": replicate,
        "mae": np.where(ok, mae, np.nan), "mae_sim_rows": np.where(ok, mae_sim, np.nan), "sim_rows": n_sim,
        "train_loss": loss, "val_mae": _opt(result.val_mae, E), "epochs": epochs,
        "lr": _opt(result.lr, E), "weight_decay": _opt(result.weight_decay, E), "selection": result.selection,
        "status": np.where(ok, "ok", np.where(n_counted == 0, "no_reference", "diverged")
                           if result.covered is not None else "diverged"),
    }, columns=list(TRIAL_COLUMNS))
    group_rows = []
    for column, labels in data.groups.items():
        test_labels = labels[test_rows]
        for group in np.unique(test_labels):
            mask = (test_labels == group) & covered
            counts = mask.sum(axis=1)
            sums = np.where(mask, abs_err, 0.0).sum(axis=1)
            for e in np.flatnonzero(counts):
                if ok[e]:
                    group_rows.append((prop, method, n, m, trials[e], replicate[e], column, group, sums[e] / counts[e],
                                       int(counts[e])))
    material_rows = []
    if settings.protocol.per_material:
        flat_rows = test_rows[ok].ravel()
        flat_err = abs_err[ok].ravel()
        use = np.isfinite(flat_err) & covered[ok].ravel()
        sums = np.bincount(flat_rows[use], weights=flat_err[use], minlength=len(values))
        counts = np.bincount(flat_rows[use], minlength=len(values))
        material_rows = [(prop, method, n, m, data.target_keys[i], float(sums[i]), int(counts[i]))
                         for i in np.flatnonzero(counts)]
    n_bad = int((~ok).sum())
    log.info("[%s %s n=%d m=%d] %d trials: mean test MAE %.5g%s (selection %s%s)", method, prop, n, m, E,
             float(np.nanmean(np.where(ok, mae, np.nan))) if n_bad < E else float("nan"),
             f", {n_bad} diverged" if n_bad else "", result.selection,
             f", median {np.nanmedian(result.epochs):.0f} epochs" if result.epochs is not None and E else "")
    return ChunkResult(trial_table, pd.DataFrame(group_rows, columns=list(GROUP_COLUMNS)),
                       pd.DataFrame(material_rows, columns=list(MATERIAL_COLUMNS)))


def make_protocol(settings: TrainingSettings, data: Any) -> Protocol:
    return Protocol(settings.protocol, data.name, len(data.target_values), int(data.design.n_test),
                    split_groups=data.split_groups)


def run_job(settings: TrainingSettings, data: Any, method: str, trials: Sequence[int],
            n_indices: Sequence[int] | None = None, *, pretrained: Mapping[int, Mapping[str, Any]] | None = None,
            device: torch.device | None = None) -> tuple[ChunkResult, dict[int, dict[str, Any]]]:
    """Train ``trials`` of one property with strategy ``method`` at each grid n of ``n_indices`` (a transfer
    method) or once (a reference, ``n_indices`` None), at every m of the design.

    ``pretrained``: n index -> pretrained networks (from a pretrain job); a transfer method missing them
    pretrains them here. Returns the tables and the pretrained networks it used (to save them).
    """
    from sim2real_scaling.training.strategies import get_strategy

    device = device or resolve_device(settings.device)
    strategy = get_strategy(method, settings.input_kind)(settings, data, make_protocol(settings, data), device)
    trials = list(trials)
    parts: list[ChunkResult] = []
    used: dict[int, dict[str, Any]] = {}
    if not strategy.uses_source:
        for m in data.design.m:
            test_rows, result = strategy.fit_predict(None, int(m), trials)
            parts.append(tabulate(data, settings, method, 0, int(m), trials, test_rows, result))
        return ChunkResult.concat(parts), used
    for n_index in n_indices or []:
        n = data.design.n_at(n_index)
        if n is None:
            log.info("%s: grid position %d was dropped (see design.json notes): nothing to train", data.name, n_index)
            continue
        state = (pretrained or {}).get(n_index)
        state = strategy.prepare_source(n_index, trials, state)
        if state is not None:
            used[n_index] = state
        for m in data.design.m:
            test_rows, result = strategy.fit_predict(n_index, int(m), trials)
            parts.append(tabulate(data, settings, method, int(n), int(m), trials, test_rows, result))
    return ChunkResult.concat(parts), used
