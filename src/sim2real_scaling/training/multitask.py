"""Sim2Real multitask learning for polymer-solvent pairs (the chi case study).

The model (Minami et al. 2025, Fig. 3; after Aoki et al., Macromolecules 2023) predicts a property of a
polymer-solvent pair at temperature T, here the Flory-Huggins chi:

* one **shared encoder** maps a molecule to a latent vector ``z`` (``latent_dim``, 32 by default). Its
  input is the molecule's descriptor, a polymer/solvent flag (1 = polymer, 0 = solvent), T and 1/T
  (both standardized). The encoder has ``encoder_hidden`` activated hidden layers (three by default)
  followed by a linear map to the latent space.
* the pair's **latent distance** is the elementwise squared difference ``(z_p - z_s)**2`` (a vector;
  a linear head on it is a learned weighted squared Euclidean distance, the Hansen-solubility form
  chi ~ a + sum_k w_k (delta_pk - delta_sk)^2).
* **two heads** (MLPs with ``head_hidden`` widths) map the distance to the simulated and to the
  experimental chi.

Because ``(z_p - z_s)**2 == (z_s - z_p)**2`` a prediction does not depend on which molecule of the pair
is encoded first; the flag is carried by each molecule, so polymer and solvent roles stay distinct.

The loss of one trial is ``lambda * MSE_sim + (1 - lambda) * MSE_exp`` (each a mean over its own rows;
``lambda`` = ``multitask.lambda``, 0.5 by default). Its baseline, direct learning, is the same model trained
with ``lambda = 0`` and no simulated rows (method ``direct`` of a pair study).

It is a strategy of the trial runner (method ``multitask``): the protocol (pair-grouped splits, validation
folds, the draw of simulated rows, seeds) and the model selection (the training length chosen per trial on
validation pairs from its training pairs) are the runner's. Trials are vectorised like :mod:`.ensemble`: every
parameter carries a leading model axis ``E`` and the forward pass is a batched matrix product. The encoder runs once per distinct (molecule, role, temperature) *combo* of the study per step
(about 835 for the chi data, against up to ~4,000 molecule encodings of a full batch of rows), and the
first layer's descriptor product runs once per distinct molecule.

Splits respect pairs: a trial's experimental test set is a set of whole polymer-solvent pairs (so the
same pair at another temperature never sits on both sides). The simulated rows of the test pairs
may be trained on (a simulation can be run for any pair one wants to predict; no experimental value
of a test pair is ever seen); with ``multitask.exclude_test_pairs_from_source`` they are withheld too,
so the test pairs are unseen in every sense.
"""


from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from sim2real_scaling.data.features import DescriptorStore, DescriptorTransform
from sim2real_scaling.data.pairs import (
    PAIR_KEY,
    POLYMER_KEY,
    SOLVENT_KEY,
    TEMPERATURE,
    pair_codes,
)
from sim2real_scaling.data.transforms import PropertyTransform
from sim2real_scaling.training.design import Design
from sim2real_scaling.training.ensemble import (
    ACTIVATIONS,
    BlockMonitor,
    Checkpoints,
    OptimizerSettings,
    _Adam_PerModel,
    start_checkpoints,
)
from sim2real_scaling.training.selection import Learner, select_and_train
from sim2real_scaling.training.settings import MultitaskSettings, TrainingSettings
from sim2real_scaling.training.strategies import (
    Strategy,
    TrialPredictions,
    progress_logger,
)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# Data of one property


@dataclass
class PairData:
    """One pair property's usable rows, ready for training.

    Molecules are indexed 0..U-1 (``X_mol``); a *combo* is a distinct (molecule, role, temperature) the encoder
    sees; rows of both tables refer to the combos of their polymer and solvent. Values stay in the property's
    units; descriptor and temperature statistics are fitted on the source rows' molecules only.
    """

    name: str
    X_mol: np.ndarray  # (U, d) float32
    combo_mol: np.ndarray  # (C,) int64, molecule of each combo
    combo_extra: np.ndarray  # (C, 3) float32: flag (1 polymer, 0 solvent), standardized T, standardized 1/T
    source_polymer: np.ndarray  # (Ns,) combo index of the polymer of each simulated row
    source_solvent: np.ndarray  # (Ns,)
    source_values: np.ndarray  # (Ns,) property units
    source_pairs: np.ndarray  # (Ns,) pair codes
    target_polymer: np.ndarray  # (Nt,)
    target_solvent: np.ndarray  # (Nt,)
    target_values: np.ndarray  # (Nt,) property units
    split_groups: np.ndarray  # (Nt,) pair codes: a pair is never on both sides of a split
    target_keys: list[str]  # (Nt,) material label of each target row (id column or pair key)
    groups: dict[str, np.ndarray]
    sim_values: np.ndarray  # (Nt,) the simulated value of the same pair at the same temperature, NaN if none
    source_transform: PropertyTransform
    design: Design
    feature_names: list[str] = field(default_factory=list)
    descriptor_note: str = ""

    @property
    def X_target(self) -> np.ndarray:  # the runner's view of the input width
        return self.X_mol


def _standardizer(values: np.ndarray):  # noqa: ANN202
    mean, sd = float(values.mean()), float(values.std())
    sd = sd if sd > 0 else 1.0
    return lambda v: (v - mean) / sd


def load_pair_data(settings: TrainingSettings, source: pd.DataFrame, target: pd.DataFrame, store: DescriptorStore,
                   design: Design) -> PairData:
    """:class:`PairData` from the prepared pair tables, the study's descriptors and the property's design."""
    src = source.drop(index=design.excluded_source).reset_index(drop=True)
    tgt = target.drop(index=design.excluded_target).reset_index(drop=True)
    molecules = sorted(set(src[POLYMER_KEY]) | set(src[SOLVENT_KEY]) | set(tgt[POLYMER_KEY]) | set(tgt[SOLVENT_KEY]))
    mol_index = {k: i for i, k in enumerate(molecules)}
    source_molecules = sorted(set(src[POLYMER_KEY]) | set(src[SOLVENT_KEY]))
    transform = DescriptorTransform(settings.descriptor).fit(store.rows(source_molecules), store.names.tolist())
    dm = transform.apply(store.rows(molecules))
    both = pd.concat([src, tgt], ignore_index=True)
    temps = both[TEMPERATURE].to_numpy(dtype=float)
    src_t = src[TEMPERATURE].to_numpy(dtype=float)
    t_std, inv_std = _standardizer(src_t)(temps), _standardizer(1.0 / src_t)(1.0 / temps)
    rows = []
    for flag, column in ((1, POLYMER_KEY), (0, SOLVENT_KEY)):
        rows.append(pd.DataFrame({"mol": both[column].map(mol_index).to_numpy(), "flag": flag, "T": temps,
                                  "t_std": t_std, "inv_std": inv_std}))
    all_rows = pd.concat(rows, ignore_index=True)
    combos = all_rows.drop_duplicates(["mol", "flag", "T"]).reset_index(drop=True)
    combo_id = {(int(r.mol), int(r.flag), float(r.T)): i for i, r in enumerate(combos.itertuples(index=False))}
    ids = np.array([combo_id[(int(m), int(f), float(t))] for m, f, t in
                    zip(all_rows["mol"], all_rows["flag"], all_rows["T"], strict=True)], dtype=np.int64)
    n_both, ns = len(both), len(src)
    polymer_combo, solvent_combo = ids[:n_both], ids[n_both:]
    vocabulary = sorted(set(src[PAIR_KEY]) | set(tgt[PAIR_KEY]))
    groups = {c: tgt[c].astype(str).to_numpy() for c in settings.protocol.group_columns if c in tgt.columns}
    material = (tgt["id"] if "id" in tgt.columns else tgt[PAIR_KEY]).astype(str).tolist()
    at = lambda table: table[PAIR_KEY].astype(str) + "@" + table[TEMPERATURE].map("{:.6g}".format)  # noqa: E731
    sim = pd.Series(src["value"].to_numpy(dtype=float), index=at(src))
    sim = sim[~sim.index.duplicated()]
    source_values = src["value"].to_numpy(dtype=float)
    return PairData(
        name=settings.property, X_mol=np.ascontiguousarray(dm.X), combo_mol=combos["mol"].to_numpy(np.int64).copy(),
        combo_extra=combos[["flag", "t_std", "inv_std"]].to_numpy(np.float32).copy(),
        source_polymer=polymer_combo[:ns], source_solvent=solvent_combo[:ns], source_values=source_values,
        source_pairs=pair_codes(src[PAIR_KEY], vocabulary), target_polymer=polymer_combo[ns:],
        target_solvent=solvent_combo[ns:], target_values=tgt["value"].to_numpy(dtype=float),
        split_groups=pair_codes(tgt[PAIR_KEY], vocabulary), target_keys=material, groups=groups,
        sim_values=at(tgt).map(sim).to_numpy(dtype=float),
        source_transform=PropertyTransform(list(settings.transform_steps)).fit(
            source_values, f"properties.{settings.property}.source values"),
        design=design, feature_names=dm.names,
        descriptor_note=f"descriptors: {settings.descriptor.method} fitted on the {len(source_molecules)} molecules "
                        f"of the simulated pairs; largest |input| {dm.max_abs:.3g}")


# --------------------------------------------------------------------------------------------------
# The model


HEADS = ("sim", "exp")


@dataclass(frozen=True)
class MultitaskSpec:
    """Architecture: descriptor width ``d_mol``, encoder hidden widths, latent width, head hidden widths."""

    d_mol: int
    encoder_hidden: tuple[int, ...] = (64, 64, 64)
    latent_dim: int = 32
    head_hidden: tuple[int, ...] = (32,)
    activation: str = "relu"

    EXTRA_INPUTS = 3  # polymer/solvent flag, T, 1/T

    @classmethod
    def from_settings(cls, mt: MultitaskSettings, d_mol: int) -> MultitaskSpec:
        return cls(d_mol=d_mol, encoder_hidden=tuple(mt.encoder_hidden), latent_dim=mt.latent_dim,
                   head_hidden=tuple(mt.head_hidden), activation=mt.activation)

    def layer_shapes(self) -> dict[str, tuple[int, int]]:
        """(fan_in, fan_out) of every linear layer, by name, in a fixed order."""
        shapes: dict[str, tuple[int, int]] = {}
        widths = [self.d_mol + self.EXTRA_INPUTS, *self.encoder_hidden, self.latent_dim]
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            shapes[f"enc{i}"] = (a, b)
        for head in HEADS:
            hw = [self.latent_dim, *self.head_hidden, 1]
            for i, (a, b) in enumerate(zip(hw[:-1], hw[1:], strict=True)):
                shapes[f"{head}{i}"] = (a, b)
        return shapes

    def n_parameters(self) -> int:
        return sum(a * b + b for a, b in self.layer_shapes().values())


Params = dict[str, Tensor]


def init_multitask(spec: MultitaskSpec, seeds: Sequence[int]) -> Params:
    """Stacked parameters of ``len(seeds)`` models, model e drawn from ``seeds[e]`` alone.

    Like ``torch.nn.Linear``: weights and biases uniform in +-1/sqrt(fan_in), drawn on the CPU in
    float32. Names: ``enc{i}.W`` ``(E, fan_in, fan_out)``, ``enc{i}.b`` ``(E, 1, fan_out)``, the same
    for ``sim{i}`` and ``exp{i}`` (the two heads).
    """
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    params: Params = {}
    for layer, (fan_in, fan_out) in spec.layer_shapes().items():
        bound = 1.0 / math.sqrt(fan_in)
        params[f"{layer}.W"] = torch.stack([(torch.rand(fan_in, fan_out, generator=g) * 2 - 1) * bound for g in gens])
        params[f"{layer}.b"] = torch.stack([(torch.rand(1, fan_out, generator=g) * 2 - 1) * bound for g in gens])
    return params


def _linear(h: Tensor, W: Tensor, b: Tensor) -> Tensor:
    return torch.baddbmm(b, h, W)


def encode(params: Params, spec: MultitaskSpec, X_mol: Tensor, combo_mol: Tensor, combo_extra: Tensor) -> Tensor:
    """Latent vectors ``(E, C, latent_dim)`` of the C combos.

    ``X_mol``: ``(U, d_mol)`` descriptors; ``combo_mol``: ``(C,)`` molecule of each combo;
    ``combo_extra``: ``(C, 3)`` flag, T, 1/T. The first layer's descriptor product is computed once per
    molecule and gathered per combo.
    """
    act = ACTIVATIONS[spec.activation]
    W0, b0 = params["enc0.W"], params["enc0.b"]
    d = spec.d_mol
    per_mol = torch.matmul(X_mol, W0[:, :d, :])  # (E, U, h1)
    h = per_mol[:, combo_mol, :] + torch.matmul(combo_extra, W0[:, d:, :]) + b0
    n_layers = len(spec.encoder_hidden) + 1
    for i in range(1, n_layers):
        h = _linear(act(h), params[f"enc{i}.W"], params[f"enc{i}.b"])
    return h


def pair_distance(latent: Tensor, polymer: Tensor, solvent: Tensor) -> Tensor:
    """Elementwise squared latent distance ``(E, r, latent_dim)`` of pairs given by combo indices.

    ``polymer``/``solvent``: ``(r,)`` (the same rows for every model) or ``(E, r)`` (rows per model).
    Symmetric in its two arguments.
    """
    if polymer.dim() == 1:
        zp, zs = latent[:, polymer, :], latent[:, solvent, :]
    else:
        E, r = polymer.shape
        k = latent.shape[-1]
        zp = torch.gather(latent, 1, polymer.unsqueeze(-1).expand(E, r, k))
        zs = torch.gather(latent, 1, solvent.unsqueeze(-1).expand(E, r, k))
    return (zp - zs) ** 2


def head(params: Params, spec: MultitaskSpec, which: str, distance: Tensor) -> Tensor:
    """Predictions ``(E, r)`` of head ``which`` (``sim`` or ``exp``) from pair distances ``(E, r, k)``."""
    act = ACTIVATIONS[spec.activation]
    n_layers = len(spec.head_hidden) + 1
    h = distance
    for i in range(n_layers):
        h = _linear(h, params[f"{which}{i}.W"], params[f"{which}{i}.b"])
        if i < n_layers - 1:
            h = act(h)
    return h.squeeze(-1)


def forward_pairs(params: Params, spec: MultitaskSpec, X_mol: Tensor, combo_mol: Tensor, combo_extra: Tensor,
                  polymer: Tensor, solvent: Tensor, which: str) -> Tensor:
    """Predictions ``(E, r)`` of head ``which`` for pairs given by combo indices (see :func:`pair_distance`)."""
    latent = encode(params, spec, X_mol, combo_mol, combo_extra)
    return head(params, spec, which, pair_distance(latent, polymer, solvent))


@dataclass
class Batch:
    """Tensors of one training run, on the device: molecules, combos and per-model row indices."""

    X_mol: Tensor
    combo_mol: Tensor
    combo_extra: Tensor
    sim_polymer: Tensor | None  # (E, n) combo indices, None when no simulated rows are used
    sim_solvent: Tensor | None
    y_sim: Tensor | None  # (E, n)
    exp_polymer: Tensor  # (E, m)
    exp_solvent: Tensor
    y_exp: Tensor  # (E, m)


def train_multitask(init: Params, spec: MultitaskSpec, batch: Batch, optimizer: OptimizerSettings, lam: float,
                    progress: Any = None, checkpoints: Checkpoints | None = None,
                    val_rows: tuple[Tensor, Tensor] | None = None, lr: Tensor | None = None,
                    weight_decay: Tensor | None = None) -> tuple[Params, Tensor]:
    """Train E models full batch with Adam on ``lam * MSE_sim + (1 - lam) * MSE_exp`` each.

    The summed loss over models gives every model exactly its own gradient. A term whose weight is 0 (or that
    has no rows) is left out, so ``lam = 1`` never touches the experimental head and ``lam = 0`` never touches
    the simulated one. ``checkpoints`` (with ``val_rows``: the combo indices of each model's validation pairs,
    ``(E, v)`` polymer and solvent) validates the experimental head on the way (see
    :class:`~sim2real_scaling.training.ensemble.Checkpoints`); ``lr``/``weight_decay`` ``(E,)``: rates of each
    model's own. Returns the trained (or kept) parameters and each model's training loss ``(E,)``.
    """
    device = batch.X_mol.device
    names = list(init)
    params = {k: v.detach().to(device).clone().requires_grad_(True) for k, v in init.items()}
    use_sim = lam > 0 and batch.sim_polymer is not None and batch.sim_polymer.shape[1] > 0
    use_exp = lam < 1 and batch.exp_polymer.shape[1] > 0
    if not (use_sim or use_exp):
        raise ValueError("nothing to train on: both loss terms are empty or weighted 0")
    frozen = tuple(h for h, used in (("sim", use_sim), ("exp", use_exp)) if not used)  # heads without loss
    trainable = [p for k, p in params.items() if not k.startswith(frozen)]
    E = batch.exp_polymer.shape[0]
    if lr is not None and bool((lr == lr.reshape(-1)[0]).all()):  # one rate for all: torch's fused Adam
        optimizer, lr = dataclasses.replace(optimizer, lr=float(lr.reshape(-1)[0])), None
    if weight_decay is not None and bool((weight_decay == weight_decay.reshape(-1)[0]).all()):
        optimizer, weight_decay = dataclasses.replace(optimizer, weight_decay=float(weight_decay.reshape(-1)[0])), None
    if lr is not None or weight_decay is not None:
        rates = _Adam_PerModel(trainable, [torch.zeros_like(p) for p in trainable],
                               lr if lr is not None else torch.full((E,), optimizer.lr),
                               weight_decay if weight_decay is not None else torch.full((E,), optimizer.weight_decay))
        opt = None
    else:
        rates = None
        try:
            opt = torch.optim.Adam(trainable, lr=optimizer.lr, weight_decay=optimizer.weight_decay, fused=True)
        except (RuntimeError, TypeError):
            opt = torch.optim.Adam(trainable, lr=optimizer.lr, weight_decay=optimizer.weight_decay, foreach=True)
    epochs = optimizer.epochs
    loss = torch.full((E,), float("nan"), device=device)
    report_every = max(1, epochs // 10)
    monitor = None
    if checkpoints is not None:
        marks = start_checkpoints(checkpoints, E, epochs)

        def predict_val() -> Tensor:
            with torch.no_grad():
                return forward_pairs(params, spec, batch.X_mol, batch.combo_mol, batch.combo_extra, val_rows[0],
                                     val_rows[1], "exp")

        monitor = BlockMonitor(checkpoints, [params[k] for k in names], predict_val if val_rows is not None else None,
                               np.arange(E), marks)
        if monitor.check(0, loss):
            epochs = 0
    for epoch in range(epochs):
        if opt is not None:
            opt.zero_grad(set_to_none=True)
        else:
            for p in trainable:
                p.grad = None
        latent = encode(params, spec, batch.X_mol, batch.combo_mol, batch.combo_extra)
        loss = torch.zeros(E, device=device)
        if use_sim:
            pred = head(params, spec, "sim", pair_distance(latent, batch.sim_polymer, batch.sim_solvent))
            loss = loss + lam * ((pred - batch.y_sim) ** 2).mean(dim=1)
        if use_exp:
            pred = head(params, spec, "exp", pair_distance(latent, batch.exp_polymer, batch.exp_solvent))
            loss = loss + (1 - lam) * ((pred - batch.y_exp) ** 2).mean(dim=1)
        loss.sum().backward()
        if opt is not None:
            opt.step()
        else:
            with torch.no_grad():
                for g, p in zip(rates.grads, trainable, strict=True):  # type: ignore[union-attr]
                    g.copy_(p.grad)
                rates.step()  # type: ignore[union-attr]
        loss = loss.detach()
        if progress is not None and ((epoch + 1) % report_every == 0 or epoch + 1 == epochs):
            progress(epoch + 1, epochs, float(loss.mean()))
        if monitor is not None and monitor.is_mark(epoch + 1):
            with torch.no_grad():
                if monitor.check(epoch + 1, loss):
                    break
    if monitor is not None and checkpoints.mode in ("best", "at"):
        kept = dict(zip(names, monitor.kept, strict=True))  # type: ignore[arg-type]
        return {k: v.detach() for k, v in kept.items()}, torch.as_tensor(checkpoints.train_loss, dtype=torch.float32)
    return {k: v.detach() for k, v in params.items()}, loss.detach()


# --------------------------------------------------------------------------------------------------
# The strategy


class Multitask(Strategy):
    """One joint model per trial on its n simulated and m experimental pairs (``transfer: multitask``); with
    ``lam = 0`` and no simulated rows the same model is the direct baseline of a pair study."""

    method = "multitask"
    uses_source = True
    lam_override: float | None = None

    def __init__(self, settings: TrainingSettings, data: PairData, protocol: Any, device: torch.device) -> None:
        super().__init__(settings, data, protocol, device)
        mt = settings.multitask
        self.spec = MultitaskSpec.from_settings(mt, data.X_mol.shape[1])
        self.lam = mt.lam if self.lam_override is None else self.lam_override
        self.optimizer = OptimizerSettings(epochs=mt.epochs, lr=mt.lr, weight_decay=mt.weight_decay)
        self.base = {"X_mol": torch.from_numpy(data.X_mol).to(device),
                     "combo_mol": torch.from_numpy(data.combo_mol).to(device),
                     "combo_extra": torch.from_numpy(data.combo_extra).to(device)}
        self.y_source = data.source_transform.transform(data.source_values).astype(np.float32)

    def source_rows(self, trial: int, test_rows: np.ndarray) -> np.ndarray:
        """The trial's simulated rows in its draw's order, without its test pairs' rows when withheld."""
        d = self.data
        order = self.protocol.source_order(self.protocol.replicate_of(trial), len(d.source_values))
        if self.settings.multitask.exclude_test_pairs_from_source:
            order = order[~np.isin(d.source_pairs[order], np.unique(d.split_groups[test_rows]))]
        return order

    def fit_predict(self, n_index: int | None, m: int, trials: Sequence[int]) -> tuple[np.ndarray, TrialPredictions]:
        d, dev = self.data, self.device
        train_rows, test_rows = self.split(trials, m)
        transform = self.target_transform(train_rows)
        y_exp_all = torch.from_numpy(transform.transform_batch(d.target_values).astype(np.float32)).to(dev)  # (E, Nt)
        n = 0 if n_index is None else int(d.design.n_at(n_index))
        sim = None
        if n > 0:
            src = np.stack([self.source_rows(t, test_rows[e])[:n] for e, t in enumerate(trials)])
            if src.shape[1] < n:
                raise ValueError(f"trials have fewer than n={n} usable simulated rows (rerun the design rule)")
            sim = (torch.from_numpy(d.source_polymer[src]).to(dev), torch.from_numpy(d.source_solvent[src]).to(dev),
                   torch.from_numpy(self.y_source[src]).to(dev))
        init_all = init_multitask(self.spec, [self.protocol.init_seed("direct_init", "multitask", t) for t in trials])
        tp, ts = torch.from_numpy(d.target_polymer).to(dev), torch.from_numpy(d.target_solvent).to(dev)
        label = f"[{self.method} {d.name} n={n} m={m} trials {trials[0]}-{trials[-1]}]"
        progress = progress_logger(label)

        def train(init_index: np.ndarray, rows: np.ndarray, opt: OptimizerSettings, cp: Checkpoints | None,
                  lr: np.ndarray | None, wd: np.ndarray | None) -> tuple[Params, Tensor]:
            idx = torch.as_tensor(np.asarray(init_index), device=dev)
            rows_t = torch.from_numpy(np.ascontiguousarray(rows)).to(dev)
            batch = Batch(**self.base,
                          sim_polymer=sim[0][idx] if sim else None, sim_solvent=sim[1][idx] if sim else None,
                          y_sim=sim[2][idx] if sim else None, exp_polymer=tp[rows_t], exp_solvent=ts[rows_t],
                          y_exp=torch.gather(y_exp_all[idx], 1, rows_t))
            val = None
            if cp is not None and cp.val_idx is not None:
                v = cp.val_idx.to(dev)
                val = (tp[v], ts[v])
            init = {k: p[idx.cpu()] for k, p in init_all.items()}
            return train_multitask(init, self.spec, batch, opt, self.lam, progress, cp, val,
                                   None if lr is None else torch.as_tensor(lr, dtype=torch.float32, device=dev),
                                   None if wd is None else torch.as_tensor(wd, dtype=torch.float32, device=dev))

        def predict_rows(params: Params, rows: Tensor) -> Tensor:
            with torch.no_grad():
                return forward_pairs(params, self.spec, self.base["X_mol"], self.base["combo_mol"],
                                     self.base["combo_extra"], tp[rows], ts[rows], "exp")

        learner = Learner(train=train, predict=predict_rows, optimizer=self.optimizer)
        chosen = select_and_train(learner, self.protocol, trials, train_rows, transform, d.target_values,
                                  self.settings.model.selection)
        pred_t = predict_rows(chosen.params, torch.from_numpy(test_rows).to(dev)).cpu().numpy().astype(np.float64)
        pred = transform.inverse_batch(pred_t)
        return test_rows, TrialPredictions(pred=pred, train_loss=chosen.train_loss, val_mae=chosen.val_mae,
                                           epochs=chosen.epochs, lr=chosen.lr, weight_decay=chosen.weight_decay,
                                           selection=chosen.selection)


class MultitaskDirect(Multitask):
    """Direct learning in a pair study: the multitask model with ``lambda = 0`` and no simulated rows."""

    method = "direct"
    uses_source = False
    lam_override = 0.0


PAIR_STRATEGIES: dict[str, type[Strategy]] = {"multitask": Multitask, "direct": MultitaskDirect}
