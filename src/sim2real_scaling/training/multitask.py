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
``lambda`` = ``multitask.lambda``, 0.5 by default). *Direct* learning is the same model trained with
``lambda = 0`` and no simulated rows.

Trials are vectorised like :mod:`.ensemble`: every parameter carries a leading model axis ``E`` and the
forward pass is a batched matrix product. Trial t draws its split (test pairs), its simulated-row
order and its initial weights from seeds of its own (:mod:`.seeding`), so chunking never changes a
result. The encoder runs once per distinct (molecule, role, temperature) *combo* of the study per step
(about 835 for the chi data, against up to ~4,000 molecule encodings of a full batch of rows), and the
first layer's descriptor product runs once per distinct molecule.

Splits respect pairs: a trial's experimental test set is a set of whole polymer-solvent pairs (so the
same pair at another temperature never sits on both sides). The simulated rows of the test pairs
may be trained on (a simulation can be run for any pair one wants to predict; no experimental value
of a test pair is ever seen); with ``multitask.exclude_test_pairs_from_source`` they are withheld too,
so the test pairs are unseen in every sense.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from sim2real_scaling.config import ConfigError, resolve_m_grid, resolve_n_grid
from sim2real_scaling.training.runner import GROUP_COLUMNS, MATERIAL_COLUMNS, TRIAL_COLUMNS, ChunkResult
from sim2real_scaling.training.ensemble import ACTIVATIONS, resolve_device
from sim2real_scaling.data.features import DescriptorStore, design_matrix
from sim2real_scaling.data.clean import VALUE, DataError
from sim2real_scaling.data.pairs import (PAIR_KEY, POLYMER_KEY, SOLVENT_KEY, TEMPERATURE, UNLABELLED, check_multitask_config,
                                         clean_pair_table, pair_codes)
from sim2real_scaling.io import read_json, write_csv, write_json
from sim2real_scaling.seeding import rng, torch_seed
from sim2real_scaling.data.transforms import PropertyTransform, TransformError, fit_source_target

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# Splits




def pair_split(seed: int, prop: str, trial: int, target_pairs: np.ndarray, n_test: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """(training rows in shuffled order, test rows) of one trial, drawn by pair.

    ``target_pairs``: ``(Nt,)`` pair code of every target row. Pairs are taken in the trial's random
    order into the test set as long as they fit into ``n_test`` rows, until it holds exactly ``n_test``
    rows (a pair whose rows would overshoot is passed over and stays in training). So the same pair
    never sits on both sides, and the test and training sizes are the same in every trial. Only when
    no remaining pair fits does the test set end up smaller. The training rows are shuffled by the
    same stream; their first m rows form the trial's m-subset.
    """
    g = rng(seed, "split", prop, "pairs", trial)
    codes, inverse, counts = np.unique(target_pairs, return_inverse=True, return_counts=True)
    chosen = np.zeros(len(codes), dtype=bool)
    total = 0
    for p in g.permutation(len(codes)):
        if total + counts[p] <= n_test:
            chosen[p] = True
            total += counts[p]
            if total == n_test:
                break
    is_test = chosen[inverse]
    test = np.flatnonzero(is_test)
    train = np.flatnonzero(~is_test)
    return train[g.permutation(len(train))], test


def source_rows(seed: int, prop: str, trial: int, source_pairs: np.ndarray, excluded_pairs: np.ndarray | None
                ) -> np.ndarray:
    """The trial's simulated rows in its own random order, without rows of ``excluded_pairs``.

    The first n of them are the n simulated rows the trial trains on, so the samples are nested along
    the n grid.
    """
    order = rng(seed, "pretrain_sample", prop, "multitask", trial).permutation(len(source_pairs))
    if excluded_pairs is None or len(excluded_pairs) == 0:
        return order
    return order[~np.isin(source_pairs[order], excluded_pairs)]


def trial_rows(config: Mapping[str, Any], prop: str, trial: int, target_pairs: np.ndarray,
               source_pairs: np.ndarray, n_test: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(target training rows in order, target test rows, source rows in order) of one trial."""
    seed = config["seed"]
    train, test = pair_split(seed, prop, trial, target_pairs, n_test)
    excluded = np.unique(target_pairs[test]) if config["multitask"]["exclude_test_pairs_from_source"] else None
    return train, test, source_rows(seed, prop, trial, source_pairs, excluded)


# --------------------------------------------------------------------------------------------------
# Prepare stage


def prepare_pair_property(config: Mapping[str, Any], name: str, out_dir: str | Path) -> dict[str, Any]:
    """The prepare stage for ``input_kind: smiles_pair``: the pair-table analogue of
    :func:`~.prepare.prepare_property` (same files, same grid.json keys, plus ``n_source_pool``: the
    smallest number of simulated rows any trial may train on)."""
    from sim2real_scaling.data.prepare import _columns_of, split_sizes

    check_multitask_config(config)
    prop = config["properties"][name]
    protocol = config["protocol"]
    group_columns = list(protocol["group_columns"])
    tables = {}
    for role in ("source", "target"):
        spec = prop[role]
        present = _columns_of(spec["path"])
        tables[role] = clean_pair_table(spec, role=role, property_name=name, duplicates=protocol["duplicates"],
                                        extra_columns=[c for c in group_columns if c in present])
    src, tgt = tables["source"].table, tables["target"].table
    for column in group_columns:
        if column in tgt.columns:
            tgt[column] = tgt[column].where(tgt[column].notna() & (tgt[column].astype(str) != ""), UNLABELLED)
        elif column in src.columns:  # a polymer's class from the source table
            mapping = src.dropna(subset=[column]).drop_duplicates(POLYMER_KEY).set_index(POLYMER_KEY)[column]
            tgt[column] = tgt[POLYMER_KEY].map(mapping).fillna(UNLABELLED)
        else:
            raise DataError(f"protocol.group_columns: column {column!r} is in neither the target nor the source table")

    where = f"properties.{name}"
    try:
        t_src, t_tgt = fit_source_target(prop["transform"], prop["transform_fit_on"], src[VALUE].to_numpy(),
                                         tgt[VALUE].to_numpy(), f"{where}.source", f"{where}.target")
        src["y"] = t_src.transform(src[VALUE].to_numpy(), f"{where}.source")
        tgt["y"] = t_tgt.transform(tgt[VALUE].to_numpy(), f"{where}.target")
    except TransformError as exc:
        raise DataError(f"{exc} (drop those rows or choose another properties.{name}.transform)") from exc

    n_train, n_test = split_sizes(len(tgt), protocol["test_fraction"])
    if n_train < 2:
        raise ConfigError(f"{where}.target: {len(tgt)} usable rows leave {n_train} for training")
    vocabulary = sorted(set(src[PAIR_KEY]) | set(tgt[PAIR_KEY]))
    tgt_codes, src_codes = pair_codes(tgt[PAIR_KEY], vocabulary), pair_codes(src[PAIR_KEY], vocabulary)
    pool = min(len(trial_rows(config, name, t, tgt_codes, src_codes, n_test)[2]) for t in range(protocol["trials"]))
    if pool < 1:
        raise DataError(f"{where}.source: every simulated row belongs to a test pair of some trial")
    n_values = resolve_n_grid(config, pool, name)
    m_values = resolve_m_grid(config, n_train, name)

    out = Path(out_dir)
    write_csv(src, out / "source.csv")
    write_csv(tgt, out / "target.csv")
    rejected = pd.concat([tables["source"].rejected.assign(table="source"),
                          tables["target"].rejected.assign(table="target")])
    write_csv(rejected, out / "rejected.csv")
    write_json({"source": t_src.to_dict(), "target": t_tgt.to_dict()}, out / "transform.json")
    grid = {"n": n_values, "m": m_values, "n_source": len(src), "n_source_pool": pool, "n_target": len(tgt),
            "n_train": n_train, "n_test": n_test, "target_pairs": int(tgt[PAIR_KEY].nunique()),
            "source_pairs": int(src[PAIR_KEY].nunique()),
            "rejected_source": len(tables["source"].rejected), "rejected_target": len(tables["target"].rejected)}
    write_json(grid, out / "grid.json")
    for role, table in tables.items():
        if len(table.rejected):
            log.warning("%s %s: %d rows rejected (see %s), e.g. row %s: %s", name, role, len(table.rejected),
                        out / "rejected.csv", table.rejected["row"].iloc[0], table.rejected["reason"].iloc[0])
    log.info("%s: %d source rows (%d pairs; at least %d usable in every trial), %d target rows (%d pairs); "
             "n grid %s; m grid %s", name, len(src), grid["source_pairs"], pool, len(tgt), grid["target_pairs"],
             n_values, m_values)
    return grid


# --------------------------------------------------------------------------------------------------
# Data of one property


@dataclass
class PairData:
    """Everything a multitask job needs for one property.

    Molecules are indexed 0..U-1 (``X_mol``); a *combo* is a distinct (molecule, role, temperature)
    the encoder sees; rows of both tables refer to the combos of their polymer and solvent.
    """

    name: str
    X_mol: np.ndarray  # (U, d) float32, standardized descriptors of every molecule
    combo_mol: np.ndarray  # (C,) int64, molecule of each combo
    combo_extra: np.ndarray  # (C, 3) float32: flag (1 polymer, 0 solvent), standardized T, standardized 1/T
    source_polymer: np.ndarray  # (Ns,) combo index of the polymer of each simulated row
    source_solvent: np.ndarray  # (Ns,)
    y_source: np.ndarray  # (Ns,) float32, transformed simulated values
    source_pairs: np.ndarray  # (Ns,) pair codes
    target_polymer: np.ndarray  # (Nt,)
    target_solvent: np.ndarray  # (Nt,)
    y_target: np.ndarray  # (Nt,) float32, transformed experimental values
    value_target: np.ndarray  # (Nt,) float64, experimental values in the property's own units
    target_pairs: np.ndarray  # (Nt,) pair codes
    target_keys: list[str]  # (Nt,) material label of each target row (id column or pair key)
    groups: dict[str, np.ndarray]
    transform_target: PropertyTransform
    grid: dict[str, Any]
    feature_names: list[str] = field(default_factory=list)


def _standardize(values: np.ndarray) -> np.ndarray:
    sd = values.std()
    return (values - values.mean()) / (sd if sd > 0 else 1.0)


def build_pair_data(config: Mapping[str, Any], name: str, src: pd.DataFrame, tgt: pd.DataFrame,
                    store: DescriptorStore, transform_target: PropertyTransform, grid: Mapping[str, Any]) -> PairData:
    """Assemble :class:`PairData` from prepared tables (columns as written by the prepare stage)."""
    molecules = sorted(set(src[POLYMER_KEY]) | set(src[SOLVENT_KEY]) | set(tgt[POLYMER_KEY]) | set(tgt[SOLVENT_KEY]))
    mol_index = {k: i for i, k in enumerate(molecules)}
    dm = design_matrix(store.rows(molecules), store.names.tolist(), config["descriptor"]["drop_zero_variance"])
    both = pd.concat([src, tgt], ignore_index=True)
    temps = both[TEMPERATURE].to_numpy(dtype=float)
    t_std, inv_std = _standardize(temps), _standardize(1.0 / temps)
    # combos: one per distinct (molecule, role, temperature) over both tables
    rows = []
    for flag, column in ((1, POLYMER_KEY), (0, SOLVENT_KEY)):
        rows.append(pd.DataFrame({"mol": both[column].map(mol_index).to_numpy(), "flag": flag, "T": temps,
                                  "t_std": t_std, "inv_std": inv_std}))
    all_rows = pd.concat(rows, ignore_index=True)
    combos = all_rows.drop_duplicates(["mol", "flag", "T"]).reset_index(drop=True)
    combo_id = {(int(r.mol), int(r.flag), float(r.T)): i for i, r in enumerate(combos.itertuples(index=False))}
    ids = np.array([combo_id[(int(m), int(f), float(t))] for m, f, t in
                    zip(all_rows["mol"], all_rows["flag"], all_rows["T"], strict=True)], dtype=np.int64)
    n_both = len(both)
    polymer_combo, solvent_combo = ids[:n_both], ids[n_both:]
    ns = len(src)
    vocabulary = sorted(set(src[PAIR_KEY]) | set(tgt[PAIR_KEY]))
    groups = {c: tgt[c].astype(str).to_numpy() for c in config["protocol"]["group_columns"] if c in tgt.columns}
    material = (tgt["id"] if "id" in tgt.columns else tgt[PAIR_KEY]).astype(str).tolist()
    return PairData(
        name=name, X_mol=np.ascontiguousarray(dm.X), combo_mol=combos["mol"].to_numpy(np.int64).copy(),
        combo_extra=combos[["flag", "t_std", "inv_std"]].to_numpy(np.float32).copy(),
        source_polymer=polymer_combo[:ns], source_solvent=solvent_combo[:ns],
        y_source=src["y"].to_numpy(np.float32).copy(), source_pairs=pair_codes(src[PAIR_KEY], vocabulary),
        target_polymer=polymer_combo[ns:], target_solvent=solvent_combo[ns:],
        y_target=tgt["y"].to_numpy(np.float32).copy(), value_target=tgt[VALUE].to_numpy(np.float64).copy(),
        target_pairs=pair_codes(tgt[PAIR_KEY], vocabulary), target_keys=material, groups=groups,
        transform_target=transform_target, grid=dict(grid), feature_names=dm.names,
    )


def load_pair_data(config: Mapping[str, Any], name: str, prepared_dir: str | Path,
                   descriptors: str | Path) -> PairData:
    prepared = Path(prepared_dir)
    src = pd.read_csv(prepared / "source.csv", keep_default_na=False, na_values=[""])
    tgt = pd.read_csv(prepared / "target.csv", keep_default_na=False, na_values=[""])
    transforms = read_json(prepared / "transform.json")
    return build_pair_data(config, name, src, tgt, DescriptorStore.load(descriptors),
                           PropertyTransform.from_dict(transforms["target"]), read_json(prepared / "grid.json"))


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
    def from_config(cls, config: Mapping[str, Any], d_mol: int) -> MultitaskSpec:
        mt = config["multitask"]
        return cls(d_mol=d_mol, encoder_hidden=tuple(mt["encoder_hidden"]), latent_dim=mt["latent_dim"],
                   head_hidden=tuple(mt["head_hidden"]), activation=mt["activation"])

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


@dataclass(frozen=True)
class MultitaskSettings:
    epochs: int = 1000
    lr: float = 1e-3
    weight_decay: float = 0.0
    lam: float = 0.5

    @classmethod
    def from_config(cls, config: Mapping[str, Any], lam: float | None = None) -> MultitaskSettings:
        mt = config["multitask"]
        return cls(epochs=mt["epochs"], lr=mt["lr"], weight_decay=mt["weight_decay"],
                   lam=mt["lambda"] if lam is None else lam)


@dataclass
class Batch:
    """Tensors of one training job, on the device: molecules, combos and per-model row indices."""

    X_mol: Tensor
    combo_mol: Tensor
    combo_extra: Tensor
    sim_polymer: Tensor | None  # (E, n) combo indices, None when no simulated rows are used
    sim_solvent: Tensor | None
    y_sim: Tensor | None  # (E, n)
    exp_polymer: Tensor  # (E, m)
    exp_solvent: Tensor
    y_exp: Tensor  # (E, m)


def train_multitask(init: Params, spec: MultitaskSpec, batch: Batch, settings: MultitaskSettings,
                    progress: Any = None) -> tuple[Params, Tensor]:
    """Train E models full batch with Adam on ``lam * MSE_sim + (1 - lam) * MSE_exp`` each.

    The summed loss over models gives every model exactly its own gradient. A term whose weight is 0
    (or that has no rows) is left out, so ``lam = 1`` never touches the experimental head and
    ``lam = 0`` never touches the simulated one. Returns trained parameters and the final loss ``(E,)``.
    """
    device = batch.X_mol.device
    params = {k: v.detach().to(device).clone().requires_grad_(True) for k, v in init.items()}
    use_sim = settings.lam > 0 and batch.sim_polymer is not None and batch.sim_polymer.shape[1] > 0
    use_exp = settings.lam < 1 and batch.exp_polymer.shape[1] > 0
    if not (use_sim or use_exp):
        raise ValueError("nothing to train on: both loss terms are empty or weighted 0")
    frozen = tuple(h for h, used in (("sim", use_sim), ("exp", use_exp)) if not used)  # heads without loss
    trainable = [p for k, p in params.items() if not k.startswith(frozen)]
    try:
        optimizer = torch.optim.Adam(trainable, lr=settings.lr, weight_decay=settings.weight_decay, fused=True)
    except (RuntimeError, TypeError):
        optimizer = torch.optim.Adam(trainable, lr=settings.lr, weight_decay=settings.weight_decay, foreach=True)
    E = batch.exp_polymer.shape[0]
    loss = torch.full((E,), float("nan"), device=device)
    report_every = max(1, settings.epochs // 10)
    for epoch in range(settings.epochs):
        optimizer.zero_grad(set_to_none=True)
        latent = encode(params, spec, batch.X_mol, batch.combo_mol, batch.combo_extra)
        loss = torch.zeros(E, device=device)
        if use_sim:
            pred = head(params, spec, "sim", pair_distance(latent, batch.sim_polymer, batch.sim_solvent))
            loss = loss + settings.lam * ((pred - batch.y_sim) ** 2).mean(dim=1)
        if use_exp:
            pred = head(params, spec, "exp", pair_distance(latent, batch.exp_polymer, batch.exp_solvent))
            loss = loss + (1 - settings.lam) * ((pred - batch.y_exp) ** 2).mean(dim=1)
        loss.sum().backward()
        optimizer.step()
        if progress is not None and ((epoch + 1) % report_every == 0 or epoch + 1 == settings.epochs):
            progress(epoch + 1, settings.epochs, float(loss.detach().mean()))
    return {k: v.detach() for k, v in params.items()}, loss.detach()


@torch.no_grad()
def predict_target(params: Params, spec: MultitaskSpec, data: PairData, device: torch.device,
                   which: str = "exp") -> np.ndarray:
    """Predictions ``(E, Nt)`` (transformed scale) of every target row by every model."""
    t = _tensors(data, device)
    return forward_pairs(params, spec, t["X_mol"], t["combo_mol"], t["combo_extra"],
                         torch.from_numpy(data.target_polymer).to(device),
                         torch.from_numpy(data.target_solvent).to(device), which).cpu().numpy()


def _tensors(data: PairData, device: torch.device) -> dict[str, Tensor]:
    return {"X_mol": torch.from_numpy(data.X_mol).to(device),
            "combo_mol": torch.from_numpy(data.combo_mol).to(device),
            "combo_extra": torch.from_numpy(data.combo_extra).to(device)}


# --------------------------------------------------------------------------------------------------
# Trials


def _progress(prefix: str):  # noqa: ANN202
    start = time.perf_counter()

    def report(epoch: int, epochs: int, loss: float) -> None:
        log.info("%s epoch %d/%d  mean train loss %.4g  (%.1f s)", prefix, epoch, epochs, loss,
                 time.perf_counter() - start)

    return report


def run_multitask_trials(config: Mapping[str, Any], data: PairData, trials: Sequence[int], *,
                         n_index: int | None, device: torch.device | None = None) -> ChunkResult:
    """Train the given trials at every m of the grid and return their test errors.

    ``n_index`` given: multitask transfer on the first n = grid n[n_index] simulated rows of each trial
    plus its m experimental training rows (method ``transfer``); None: direct learning, the same model
    on the m experimental rows alone with ``lambda = 0`` (method ``direct``, n = 0).
    """
    device = device or resolve_device(config["device"])
    seed, prop = config["seed"], data.name
    method = "direct" if n_index is None else "transfer"
    n = 0 if n_index is None else int(data.grid["n"][n_index])
    spec = MultitaskSpec.from_config(config, data.X_mol.shape[1])
    settings = MultitaskSettings.from_config(config, lam=0.0 if n_index is None else None)
    n_test = int(data.grid["n_test"])
    splits = [trial_rows(config, prop, t, data.target_pairs, data.source_pairs, n_test) for t in trials]
    if n > 0:
        short = [t for t, s in zip(trials, splits, strict=True) if len(s[2]) < n]
        if short:
            raise DataError(f"trials {short[:5]} have fewer than n={n} usable simulated rows (re-run prepare)")
    # one initialisation per trial, shared by every n and by direct learning (common random numbers)
    init = init_multitask(spec, [torch_seed(seed, "direct_init", prop, "multitask", t) for t in trials])
    base = _tensors(data, device)
    sim = None
    if n > 0:
        src_rows = np.stack([s[2][:n] for s in splits])
        sim = (torch.from_numpy(data.source_polymer[src_rows]).to(device),
               torch.from_numpy(data.source_solvent[src_rows]).to(device),
               torch.from_numpy(data.y_source[src_rows]).to(device))
    rows_out, group_out, material_out = [], [], []
    for m in data.grid["m"]:
        train_rows = np.stack([s[0][:m] for s in splits])
        batch = Batch(**base, sim_polymer=sim[0] if sim else None, sim_solvent=sim[1] if sim else None,
                      y_sim=sim[2] if sim else None,
                      exp_polymer=torch.from_numpy(data.target_polymer[train_rows]).to(device),
                      exp_solvent=torch.from_numpy(data.target_solvent[train_rows]).to(device),
                      y_exp=torch.from_numpy(data.y_target[train_rows]).to(device))
        label = f"[{method} {prop} n={n} m={m} trials {trials[0]}-{trials[-1]}]"
        params, loss = train_multitask(init, spec, batch, settings, progress=_progress(label))
        pred_t = predict_target(params, spec, data, device)
        with np.errstate(over="ignore", invalid="ignore"):
            pred = data.transform_target.inverse_transform(pred_t.astype(np.float64))
        abs_err = np.abs(pred - data.value_target[None, :])  # (E, Nt)
        final_loss = loss.cpu().numpy()
        maes = []
        for e, t in enumerate(trials):
            test = splits[e][1]
            mae = float(abs_err[e, test].mean())
            ok = bool(np.isfinite(mae) and np.isfinite(final_loss[e]))
            maes.append(mae if ok else float("nan"))
            rows_out.append((prop, method, n, m, t, mae if ok else float("nan"), float(final_loss[e]),
                             "ok" if ok else "diverged"))
            for column, labels in data.groups.items():
                test_labels = labels[test]
                for group in np.unique(test_labels):
                    err = abs_err[e, test[test_labels == group]]
                    group_out.append((prop, method, n, m, t, column, group, float(err.mean()), int(err.size)))
        if config["protocol"]["per_material"]:
            sums: dict[str, float] = {}
            counts: dict[str, int] = {}
            for e in range(len(trials)):
                for i in splits[e][1]:
                    if np.isfinite(abs_err[e, i]):
                        key = data.target_keys[i]
                        sums[key] = sums.get(key, 0.0) + float(abs_err[e, i])
                        counts[key] = counts.get(key, 0) + 1
            material_out.extend((prop, method, n, m, k, sums[k], counts[k]) for k in sorted(sums))
        finite = np.isfinite(maes)
        log.info("[%s %s n=%d m=%d] %d trials: mean test MAE %.5g%s", method, prop, n, m, len(trials),
                 float(np.nanmean(maes)) if finite.any() else float("nan"),
                 f", {int((~finite).sum())} diverged" if not finite.all() else "")
    return ChunkResult(
        trials=pd.DataFrame(rows_out, columns=TRIAL_COLUMNS),
        groups=pd.DataFrame(group_out, columns=GROUP_COLUMNS),
        materials=pd.DataFrame(material_out, columns=MATERIAL_COLUMNS),
    )
