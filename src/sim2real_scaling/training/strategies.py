"""Strategies: how the networks of a method start and train. Everything else is the runner's.

A strategy gets the protocol (splits, validation rows, draws, seeds) and the model selection from the runner and
says only what is particular to its method:

* ``direct``: a fully connected network from each trial's own random initialisation, on the target rows alone
  (the baseline);
* ``finetune``: the same network pretrained on n source rows (one pretraining draw per replicate), every weight
  then trained on the target rows (the paper's transfer);
* ``simulation``: no network: the simulated value of the test material, linearly recalibrated on the trial's
  training rows (where the material also has a simulated value), as the paper compares COSMO-RS with experiment;
* ``multitask`` (:mod:`.multitask`): one joint model on the source and target rows (the chi study).

A new transfer method (feature extraction, affine model transfer) is a new subclass registered in
:data:`STRATEGIES`; it writes the same tables through the same runner.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sim2real_scaling.data.transforms import (
    PropertyTransform,
    target_transform_for_trials,
)
from sim2real_scaling.training.ensemble import (
    Checkpoints,
    MLPSpec,
    OptimizerSettings,
    init_parameters,
    predict,
    train_ensemble,
)
from sim2real_scaling.training.protocol import Protocol
from sim2real_scaling.training.selection import Learner, select_and_train
from sim2real_scaling.training.settings import TrainingSettings

log = logging.getLogger(__name__)


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


class Strategy:
    """Base class: ``fit_predict`` trains (or computes) E trials at one (n, m) and predicts their test rows."""

    method = ""
    uses_source = False

    def __init__(self, settings: TrainingSettings, data: Any, protocol: Protocol, device: torch.device) -> None:
        self.settings, self.data, self.protocol, self.device = settings, data, protocol, device
        self.pretrained: dict[int, dict[str, Any]] = {}

    def prepare_source(self, n_index: int, trials: Sequence[int], state: dict[str, Any] | None) -> dict[str, Any] | None:
        """Whatever the method learns from the source at grid n[n_index] before the trials (pretraining)."""
        return None

    def fit_predict(self, n_index: int | None, m: int, trials: Sequence[int]) -> tuple[np.ndarray, TrialPredictions]:
        raise NotImplementedError

    # -- shared by the strategies -------------------------------------------------------------------------
    def split(self, trials: Sequence[int], m: int) -> tuple[np.ndarray, np.ndarray]:
        """(training rows ``(E, m)``: each trial's first m, test rows ``(E, n_test)``)."""
        orders, test = self.protocol.splits(trials)
        return np.stack([o[:m] for o in orders]), test

    def target_transform(self, train_rows: np.ndarray) -> PropertyTransform:
        s = self.settings
        return target_transform_for_trials(s.transform_steps, s.transform_fit_on, self.data.source_transform,
                                           self.data.target_values, train_rows,
                                           f"properties.{s.property}.target values")


class _MLPStrategy(Strategy):
    """A fully connected network trained on the target rows with model selection (direct and fine-tuning)."""

    stream = ""

    def __init__(self, settings: TrainingSettings, data: Any, protocol: Protocol, device: torch.device) -> None:
        super().__init__(settings, data, protocol, device)
        model = settings.model
        self.spec = MLPSpec(d_in=data.X_target.shape[1], hidden=model.hidden, activation=model.activation)
        self.X = torch.from_numpy(np.ascontiguousarray(data.X_target)).to(device)

    def _train(self, init: list[torch.Tensor], trials: Sequence[int], m: int, optimizer: OptimizerSettings,
               label: str) -> tuple[np.ndarray, TrialPredictions]:
        train_rows, test_rows = self.split(trials, m)
        transform = self.target_transform(train_rows)
        y = torch.from_numpy(transform.transform_batch(self.data.target_values).astype(np.float32)).to(self.device)
        trial_ids = np.asarray(trials)
        activation = self.spec.activation
        progress = progress_logger(label)

        def train(init_index: np.ndarray, rows: np.ndarray, opt: OptimizerSettings, cp: Checkpoints | None,
                  lr: np.ndarray | None, wd: np.ndarray | None) -> tuple[list[torch.Tensor], torch.Tensor]:
            owner = np.asarray(init_index)
            slot = np.arange(len(owner)) - np.searchsorted(owner, owner) if np.all(np.diff(owner) >= 0) else np.zeros(len(owner), int)
            seeds = [self.protocol.init_seed(self.stream, int(trial_ids[o]), m, int(s)) for o, s in zip(owner, slot)]
            idx = torch.as_tensor(owner, device=self.device)
            return train_ensemble(
                [p[idx] for p in init], self.X, y[idx], torch.from_numpy(np.ascontiguousarray(rows)).to(self.device),
                opt, activation=activation, shuffle_seeds=seeds, progress=progress, checkpoints=cp,
                lr=None if lr is None else torch.as_tensor(lr, dtype=torch.float32),
                weight_decay=None if wd is None else torch.as_tensor(wd, dtype=torch.float32))

        def predict_rows(params: Any, rows: torch.Tensor) -> torch.Tensor:
            return predict(params, self.X, rows, activation)

        learner = Learner(train=train, predict=predict_rows, optimizer=optimizer)
        chosen = select_and_train(learner, self.protocol, trials, train_rows, transform, self.data.target_values,
                                  self.settings.model.selection)
        pred_t = predict(chosen.params, self.X, torch.from_numpy(test_rows).to(self.device), activation)
        pred = transform.inverse_batch(pred_t.cpu().numpy().astype(np.float64))
        return test_rows, TrialPredictions(pred=pred, train_loss=chosen.train_loss, val_mae=chosen.val_mae,
                                           epochs=chosen.epochs, lr=chosen.lr, weight_decay=chosen.weight_decay,
                                           selection=chosen.selection)


class Direct(_MLPStrategy):
    """Learning from the experiments alone: each trial's network starts from its own random weights."""

    method = "direct"
    stream = "direct_shuffle"

    def fit_predict(self, n_index: int | None, m: int, trials: Sequence[int]) -> tuple[np.ndarray, TrialPredictions]:
        init = init_parameters(self.spec, [self.protocol.init_seed("direct_init", t) for t in trials])
        init = [p.to(self.device) for p in init]
        label = f"[direct {self.data.name} m={m} trials {trials[0]}-{trials[-1]}]"
        return self._train(init, trials, m, self.settings.model.direct, label)


def transformed_scorer(y: np.ndarray, val_rows: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Hold-out MAE of models ``models`` on the transformed scale: predictions ``(k, v)`` against ``y`` (the
    transformed values) at each model's rows ``val_rows (M, v)``."""

    def score(pred: np.ndarray, models: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            mae = np.abs(pred - y[val_rows[models]]).mean(axis=1)
        return np.where(np.isfinite(mae), mae, np.inf)

    return score


def pretrain_networks(settings: TrainingSettings, data: Any, protocol: Protocol, n_index: int,
                      replicates: Sequence[int], device: torch.device) -> dict[str, Any]:
    """Pretrain one network per draw in ``replicates`` on n = design n[n_index] source rows.

    Draw r uses the first n rows of its own order of the source rows (nested in n); ``validation_fraction`` of
    them are held out for early stopping: the epoch with the lowest hold-out MAE on the scale the network learns
    (the source's transformed values) is kept. Not in the source's units: under a log transform those are
    dominated by the few largest values (a conductivity in S/m spans 11 decades), which stopped pretraining
    after 10-60 epochs on Starrydata. Returns a plain dict of CPU tensors and what was chosen.
    """
    n = int(data.design.n_at(n_index))
    pre = settings.model.pretrain
    spec = MLPSpec(d_in=data.X_source.shape[1], hidden=settings.model.hidden, activation=settings.model.activation)
    reps = [int(r) for r in replicates]
    orders = [protocol.source_order(r, len(data.source_values))[:n] for r in reps]
    holdouts = [protocol.pretrain_holdout(r, n_index, n, pre.validation_fraction) for r in reps]
    fit = np.stack([o[h[0]] for o, h in zip(orders, holdouts, strict=True)])
    val = np.stack([o[h[1]] for o, h in zip(orders, holdouts, strict=True)])
    init = init_parameters(spec, [protocol.init_seed("pretrain_init", n_index, r) for r in reps])
    X = torch.from_numpy(np.ascontiguousarray(data.X_source)).to(device)
    y_np = data.source_transform.transform(data.source_values).astype(np.float32)
    y = torch.from_numpy(y_np).to(device)
    cp = None
    if val.shape[1] > 0:
        cp = Checkpoints(every=pre.every, mode="best", val_idx=torch.from_numpy(val),
                         score=transformed_scorer(y_np, val), patience=pre.patience)
    params, loss = train_ensemble(
        init, X, y, torch.from_numpy(fit).to(device), pre.optimizer, activation=spec.activation,
        shuffle_seeds=[protocol.init_seed("pretrain_shuffle", n_index, r) for r in reps],
        progress=progress_logger(f"[pretrain {data.name} n={n} draws {reps[0]}-{reps[-1]}]"), checkpoints=cp)
    epochs = cp.best_epoch.tolist() if cp is not None else [pre.optimizer.epochs] * len(reps)
    val_mae = cp.best_score.tolist() if cp is not None else [float("nan")] * len(reps)
    log.info("[pretrain %s n=%d] %d draws: hold-out MAE %.4g on the transformed scale (median), best epoch %s "
             "(median)", data.name, n, len(reps),
             float(np.nanmedian(val_mae)), f"{np.median(epochs):.0f}")
    return {"params": [p.cpu() for p in params], "replicates": reps, "n": n, "n_index": int(n_index),
            "final_loss": loss.cpu().tolist(), "val_mae": val_mae, "epochs": epochs, "d_in": spec.d_in,
            "hidden": list(spec.hidden), "activation": spec.activation}


class Finetune(_MLPStrategy):
    """The paper's transfer: pretrain on n source rows, then train every weight on the target rows."""

    method = "finetune"
    uses_source = True
    stream = "finetune_shuffle"

    def prepare_source(self, n_index: int, trials: Sequence[int], state: dict[str, Any] | None) -> dict[str, Any]:
        needed = sorted({self.protocol.replicate_of(t) for t in trials})
        if state is not None:
            if int(state["n_index"]) != n_index or not set(needed) <= set(state["replicates"]):
                raise ValueError(f"the pretrained networks are for grid position {state['n_index']} and draws "
                                 f"{state['replicates'][:5]}..., this job needs position {n_index}, draws {needed[:5]}...")
            if int(state["d_in"]) != self.spec.d_in:
                raise ValueError(f"the pretrained networks have {state['d_in']} inputs, the target data {self.spec.d_in}")
        else:
            state = pretrain_networks(self.settings, self.data, self.protocol, n_index, needed, self.device)
        self.pretrained[n_index] = state
        return state

    def fit_predict(self, n_index: int | None, m: int, trials: Sequence[int]) -> tuple[np.ndarray, TrialPredictions]:
        state = self.pretrained[int(n_index)]  # type: ignore[arg-type]
        where = {r: i for i, r in enumerate(state["replicates"])}
        pick = torch.tensor([where[self.protocol.replicate_of(t)] for t in trials])
        init = [p[pick].to(self.device) for p in state["params"]]
        label = f"[finetune {self.data.name} n={state['n']} m={m} trials {trials[0]}-{trials[-1]}]"
        return self._train(init, trials, m, self.settings.model.finetune, label)


class Simulation(Strategy):
    """The simulated value itself as the prediction, recalibrated per trial by a straight line in the property's
    units, a + b x simulated, fitted by least squares on the trial's training rows that have a simulated value."""

    method = "simulation"

    def fit_predict(self, n_index: int | None, m: int, trials: Sequence[int]) -> tuple[np.ndarray, TrialPredictions]:
        train_rows, test_rows = self.split(trials, m)
        sim, values = self.data.sim_values, self.data.target_values
        has = np.isfinite(sim)
        pred = np.full(test_rows.shape, np.nan)
        covered = has[test_rows]
        fitted = np.zeros(len(trials), dtype=bool)
        for e in range(len(trials)):
            rows = train_rows[e][has[train_rows[e]]]
            if len(rows) < 3 or np.ptp(sim[rows]) == 0 or not covered[e].any():
                continue
            slope, intercept = np.polyfit(sim[rows], values[rows], 1)
            pred[e, covered[e]] = intercept + slope * sim[test_rows[e][covered[e]]]
            fitted[e] = True
        covered &= fitted[:, None]
        return test_rows, TrialPredictions(pred=pred, covered=covered, selection="none")


STRATEGIES: dict[str, type[Strategy]] = {"direct": Direct, "finetune": Finetune, "simulation": Simulation}
