"""Model selection inside every trial: the training length (and optionally learning rate and weight decay) of a
network chosen on validation rows taken from that trial's own training rows, never from its test rows.

The folds (or the hold-out) of every trial and every grid point are trained together as one wider ensemble,
each model validated on its own rows; the choice is then made per trial:

* ``cv``: trial e's models are its k folds x G grid points; the validation MAE curve (property units) is averaged
  over the folds, the (grid point, epoch) with the lowest mean is chosen, and the trial's network is refitted on
  all its training rows for exactly that many epochs with that setting (one more ensemble, each model kept at
  its own epoch);
* ``holdout``: one model per (trial, grid point) trains on the training rows minus a hold-out, keeps its
  parameters at its lowest hold-out MAE (early stopping), and the grid point with the lowest MAE is taken;
* ``fixed``: the optimiser's epochs, no validation.

Strategies describe their networks with a :class:`Learner` (how to train an ensemble and predict with it);
this module knows nothing about network architectures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from sim2real_scaling.data.transforms import PropertyTransform
from sim2real_scaling.training.ensemble import Checkpoints, OptimizerSettings
from sim2real_scaling.training.protocol import Protocol
from sim2real_scaling.training.settings import SelectionSettings


@dataclass
class Learner:
    """How a strategy trains E models at once and predicts with them.

    ``train(init_index, train_rows, optimizer, checkpoints, lr, weight_decay) -> (params, loss)``: train models
    started from initial models ``init_index (E,)`` (indices into the trials' own initial networks), model e on
    target rows ``train_rows (E, r)``, targets transformed by model e's chain of ``transform``.
    ``predict(params, rows) -> (E, v)``: transformed-scale predictions of target rows ``rows (E, v)``.
    """

    train: Callable[..., tuple[object, Tensor]]
    predict: Callable[[object, Tensor], Tensor]
    optimizer: OptimizerSettings


@dataclass
class Selected:
    """The networks of E trials after selection, and what was chosen."""

    params: object
    train_loss: np.ndarray  # (E,)
    val_mae: np.ndarray  # (E,) property units; NaN without validation
    epochs: np.ndarray  # (E,) chosen training length
    lr: np.ndarray  # (E,)
    weight_decay: np.ndarray  # (E,)
    selection: str  # cv5 | holdout | fixed


def _scorer(transform: PropertyTransform, values: np.ndarray, val_rows: np.ndarray,
            owner: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Validation MAE in the property's units of models ``models`` from transformed predictions ``(k, v)``.

    ``owner (M,)``: the trial (transform chain) of each model; ``val_rows (M, v)``: its validation rows.
    """

    def score(pred: np.ndarray, models: np.ndarray) -> np.ndarray:
        chains = transform.select(owner[models])
        with np.errstate(all="ignore"):
            err = np.abs(chains.inverse_batch(pred) - values[val_rows[models]])
        mae = err.mean(axis=1)
        return np.where(np.isfinite(mae), mae, np.inf)

    return score


def select_and_train(learner: Learner, protocol: Protocol, trials: Sequence[int], train_rows: np.ndarray,
                     transform: PropertyTransform, values: np.ndarray, settings: SelectionSettings) -> Selected:
    """Choose and train the networks of ``trials`` (E of them), trial e on target rows ``train_rows[e]`` (its m
    training rows), validated in the property's units (``values (N,)``; ``transform``: E chains)."""
    E, m = train_rows.shape
    scheme = settings.scheme_for(m)
    opt = learner.optimizer
    points = settings.grid_points
    G = len(points)
    lr_g = np.array([opt.lr if lr is None else lr for lr, _ in points])
    wd_g = np.array([opt.weight_decay if wd is None else wd for _, wd in points])
    if scheme == "fixed":
        params, loss = learner.train(np.arange(E), train_rows, opt, None, None, None)
        return Selected(params, loss.cpu().numpy(), np.full(E, np.nan), np.full(E, opt.epochs), np.full(E, opt.lr),
                        np.full(E, opt.weight_decay), "fixed")

    if scheme == "holdout":
        parts = [protocol.holdout(t, train_rows[e], settings.holdout_fraction) for e, t in enumerate(trials)]
        fit = np.stack([p[0] for p in parts])
        val = np.stack([p[1] for p in parts])
        # models ordered (trial, grid point)
        owner = np.repeat(np.arange(E), G)
        cp = Checkpoints(every=settings.every, mode="best", val_idx=torch.from_numpy(np.repeat(val, G, axis=0)),
                         score=_scorer(transform, values, np.repeat(val, G, axis=0), owner),
                         patience=settings.patience)
        params, loss = learner.train(owner, np.repeat(fit, G, axis=0), opt, cp, _tile(lr_g, E), _tile(wd_g, E))
        best = cp.best_score.reshape(E, G)
        g_star = np.argmin(best, axis=1)
        pick = np.arange(E) * G + g_star
        return Selected(_take(params, pick), loss.cpu().numpy()[pick], best[np.arange(E), g_star],
                        cp.best_epoch[pick], lr_g[g_star], wd_g[g_star], "holdout")

    # cross-validation: models ordered (trial, grid point, fold)
    k = settings.folds_for(m)
    folds = [protocol.folds(t, train_rows[e], k) for e, t in enumerate(trials)]
    fit = np.stack([np.stack([f[0] for f in fs]) for fs in folds])  # (E, k, m - m//k)
    val = np.stack([np.stack([f[1] for f in fs]) for fs in folds])  # (E, k, m//k)
    fit_m = np.repeat(fit[:, None], G, axis=1).reshape(E * G * k, -1)
    val_m = np.repeat(val[:, None], G, axis=1).reshape(E * G * k, -1)
    owner = np.repeat(np.arange(E), G * k)
    cp = Checkpoints(every=settings.every, mode="curve", val_idx=torch.from_numpy(val_m),
                     score=_scorer(transform, values, val_m, owner), patience=settings.patience)
    learner.train(owner, fit_m, opt, cp, np.repeat(_tile(lr_g, E).reshape(E, G), k, axis=1).ravel(),
                  np.repeat(_tile(wd_g, E).reshape(E, G), k, axis=1).ravel())
    curve = cp.curve.reshape(E, G, k, -1)
    with np.errstate(invalid="ignore"):
        mean = curve.mean(axis=2)  # NaN where a fold did not reach the check (its block stopped earlier)
    mean = np.where(np.isfinite(mean), mean, np.inf)
    flat = mean.reshape(E, -1)
    choice = np.argmin(flat, axis=1)  # first minimum: the shorter training on ties
    g_star, c_star = np.unravel_index(choice, (G, mean.shape[2]))
    epochs = cp.epochs[c_star]
    val_mae = flat[np.arange(E), choice]
    refit_opt = dataclasses.replace(opt, epochs=int(max(epochs.max(), 0)), min_steps=0)
    if epochs.max() == 0:  # every trial keeps its starting network
        params, loss = learner.train(np.arange(E), train_rows, dataclasses.replace(refit_opt, epochs=0), None,
                                     None, None)
    else:
        refit = Checkpoints(every=settings.every, mode="at", stop_at=epochs)
        params, loss = learner.train(np.arange(E), train_rows, refit_opt, refit, lr_g[g_star], wd_g[g_star])
    return Selected(params, loss.cpu().numpy(), val_mae, epochs, lr_g[g_star], wd_g[g_star], f"cv{k}")


def _tile(per_point: np.ndarray, E: int) -> np.ndarray:
    return np.tile(per_point, E)


def _take(params: object, index: np.ndarray) -> object:
    """Models ``index`` of stacked parameters (a list or dict of tensors with a leading model axis)."""
    idx = torch.as_tensor(index, dtype=torch.long)
    if isinstance(params, dict):
        return {key: value[idx.to(value.device)] for key, value in params.items()}
    return [p[idx.to(p.device)] for p in params]  # type: ignore[union-attr]
