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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from sim2real_scaling.contract import GROUP_COLUMNS, MATERIAL_COLUMNS, TRIAL_COLUMNS
from sim2real_scaling.training.ensemble import resolve_device
from sim2real_scaling.training.multitask import PAIR_STRATEGIES
from sim2real_scaling.training.protocol import Protocol
from sim2real_scaling.training.settings import TrainingSettings
from sim2real_scaling.training.strategies import STRATEGIES, Strategy, TrialPredictions

log = logging.getLogger(__name__)


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
    status = trial_table["status"]
    problems = ", ".join(f"{int((status == s).sum())} {s.replace('_', ' ')}" for s in ("diverged", "no_reference")
                         if (status == s).any())
    log.info("[%s %s n=%d m=%d] %d trials: mean test MAE %.5g%s (selection %s%s)", method, prop, n, m, E,
             float(np.nanmean(np.where(ok, mae, np.nan))) if n_bad < E else float("nan"),
             f", {problems}" if problems else "", result.selection,
             f", median {np.nanmedian(result.epochs):.0f} epochs" if result.epochs is not None and E else "")
    return ChunkResult(trial_table, pd.DataFrame(group_rows, columns=list(GROUP_COLUMNS)),
                       pd.DataFrame(material_rows, columns=list(MATERIAL_COLUMNS)))


def get_strategy(method: str, input_kind: str = "smiles") -> type[Strategy]:
    """The strategy class of ``method`` for a study's input kind (pair studies train the pair model)."""
    if input_kind == "smiles_pair":
        if method in PAIR_STRATEGIES:
            return PAIR_STRATEGIES[method]
        if method != "simulation":
            raise ValueError(f"method {method!r} does not apply to polymer-solvent pairs; use multitask")
    if method not in STRATEGIES:
        raise ValueError(f"unknown method {method!r}; known: {sorted(STRATEGIES)}")
    return STRATEGIES[method]


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
