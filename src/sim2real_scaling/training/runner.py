"""The trial engine: pretraining on n source rows, then fine-tuning (or direct learning) on trials.

A *trial* is one random split of the target set into a training part and a test part. Trial t draws its
split, its m-subsets (nested: the first m rows of the shuffled training part) and, for direct learning,
its initial weights from seeds that depend only on (study seed, property, trial), never on the chunk it
is trained in. A chunk of trials is trained at once as a vectorised ensemble (:mod:`.ensemble`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from sim2real_scaling.training.ensemble import MLPSpec, OptimizerSettings, init_parameters, predict, resolve_device, train_ensemble
from sim2real_scaling.data.features import DescriptorStore, design_matrix
from sim2real_scaling.io import read_json
from sim2real_scaling.seeding import rng, torch_seed
from sim2real_scaling.data.transforms import PropertyTransform

log = logging.getLogger(__name__)

TRIAL_COLUMNS = ["property", "method", "n", "m", "trial", "mae", "train_loss", "status"]
GROUP_COLUMNS = ["property", "method", "n", "m", "trial", "group_by", "group", "mae", "count"]
MATERIAL_COLUMNS = ["property", "method", "n", "m", "material", "abs_error_sum", "count"]


@dataclass
class PropertyData:
    """Everything a training job needs for one property, loaded once per job."""

    name: str
    X_source: np.ndarray  # (Ns, d) float32, standardized descriptors
    y_source: np.ndarray  # (Ns,) float32, transformed source values
    X_target: np.ndarray  # (Nt, d) float32
    y_target: np.ndarray  # (Nt,) float32, transformed target values
    value_target: np.ndarray  # (Nt,) float64, target values in the property's own units
    target_keys: list[str]
    groups: dict[str, np.ndarray]  # group column -> (Nt,) labels
    transform_target: PropertyTransform
    grid: dict[str, Any]
    feature_names: list[str] = field(default_factory=list)


def load_property_data(config: Mapping[str, Any], name: str, prepared_dir: str | Path,
                       descriptors: str | Path) -> PropertyData:
    prepared = Path(prepared_dir)
    src = pd.read_csv(prepared / "source.csv", keep_default_na=False, na_values=[""])
    tgt = pd.read_csv(prepared / "target.csv", keep_default_na=False, na_values=[""])
    store = DescriptorStore.load(descriptors)
    grid = read_json(prepared / "grid.json")
    src, tgt, grid = _drop_unfeaturized(name, src, tgt, store, grid)
    keys = src["key"].astype(str).tolist() + tgt["key"].astype(str).tolist()
    dm = design_matrix(store.rows(keys), store.names.tolist(), config["descriptor"]["drop_zero_variance"])
    ns = len(src)
    transforms = read_json(prepared / "transform.json")
    groups = {c: tgt[c].astype(str).to_numpy() for c in config["protocol"]["group_columns"] if c in tgt.columns}
    material = tgt["id"].astype(str) if "id" in tgt.columns else tgt["key"].astype(str)
    groups_material = material.to_numpy()
    data = PropertyData(
        name=name, X_source=dm.X[:ns], y_source=src["y"].to_numpy(np.float32), X_target=dm.X[ns:],
        y_target=tgt["y"].to_numpy(np.float32), value_target=tgt["value"].to_numpy(np.float64),
        target_keys=groups_material.tolist(), groups=groups,
        transform_target=PropertyTransform.from_dict(transforms["target"]), grid=grid,
        feature_names=dm.names,
    )
    return data


def _drop_unfeaturized(name: str, src: pd.DataFrame, tgt: pd.DataFrame, store: DescriptorStore,
                       grid: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Leave out molecules the descriptor could not handle (listed in features/failed.csv).

    The n and m grids shrink to what is left, so the sizes recorded in trials.csv are the sizes used.
    """
    keep_src, keep_tgt = store.has(src["key"].astype(str)), store.has(tgt["key"].astype(str))
    if keep_src.all() and keep_tgt.all():
        return src, tgt, grid
    log.warning("%s: %d source and %d target molecules have no descriptors and are left out (see the "
                "featurize log)", name, int((~keep_src).sum()), int((~keep_tgt).sum()))
    src, tgt = src[keep_src].reset_index(drop=True), tgt[keep_tgt].reset_index(drop=True)
    grid = dict(grid)
    grid["n"] = [min(int(n), len(src)) for n in grid["n"]]
    grid["n_train"] = len(tgt) - int(grid["n_test"])
    grid["m"] = sorted({min(int(m), grid["n_train"]) for m in grid["m"]})
    return src, tgt, grid


def model_spec(config: Mapping[str, Any], d_in: int) -> MLPSpec:
    return MLPSpec(d_in=d_in, hidden=tuple(config["model"]["hidden"]), activation=config["model"]["activation"])


def trial_split(seed: int, prop: str, trial: int, n_target: int, n_test: int) -> tuple[np.ndarray, np.ndarray]:
    """(training rows in shuffled order, test rows) of one trial; the first m training rows form its m-subset."""
    perm = rng(seed, "split", prop, trial).permutation(n_target)
    return perm[n_test:], perm[:n_test]


def _progress(prefix: str):  # noqa: ANN202
    start, cpu_start = time.perf_counter(), time.process_time()

    def report(epoch: int, epochs: int, loss: float) -> None:
        # wall and CPU seconds since the start of training (benchmarks/study_walltime.py reads both)
        log.info("%s epoch %d/%d  mean train loss %.4g  (%.1f s, %.1f s CPU)", prefix, epoch, epochs, loss,
                 time.perf_counter() - start, time.process_time() - cpu_start)

    return report


def pretrain(config: Mapping[str, Any], data: PropertyData, n_index: int, device: torch.device | None = None) -> dict[str, Any]:
    """Pretrain ``pretrain_replicates`` networks on n source rows (n = grid n[n_index]).

    Replicate r uses the first n rows of its own seeded permutation of the source table, so the
    samples are nested along the n grid. Returns a plain dict of CPU tensors and metadata.
    """
    device = device or resolve_device(config["device"])
    seed, prop = config["seed"], data.name
    n = int(data.grid["n"][n_index])
    replicates = config["protocol"]["pretrain_replicates"]
    rows = np.stack([rng(seed, "pretrain_sample", prop, r).permutation(len(data.y_source))[:n]
                     for r in range(replicates)])
    spec = model_spec(config, data.X_source.shape[1])
    init = init_parameters(spec, [torch_seed(seed, "pretrain_init", prop, n_index, r) for r in range(replicates)])
    settings = OptimizerSettings.from_config(config["model"]["pretrain"])
    X = torch.from_numpy(data.X_source).to(device)
    y = torch.from_numpy(data.y_source).to(device)
    params, loss = train_ensemble(
        init, X, y, torch.from_numpy(rows).to(device), settings, activation=spec.activation,
        shuffle_seeds=[torch_seed(seed, "pretrain_shuffle", prop, n_index, r) for r in range(replicates)],
        progress=_progress(f"[pretrain {prop} n={n}]"),
    )
    return {"params": [p.cpu() for p in params], "n": n, "n_index": n_index, "final_loss": loss.cpu().tolist(),
            "d_in": spec.d_in, "hidden": list(spec.hidden), "activation": spec.activation}


@dataclass
class ChunkResult:
    trials: pd.DataFrame
    groups: pd.DataFrame
    materials: pd.DataFrame


def run_trials(config: Mapping[str, Any], data: PropertyData, trials: Sequence[int], *,
               pretrained: Mapping[str, Any] | None = None, device: torch.device | None = None) -> ChunkResult:
    """Train the given trials at every m of the grid, as one ensemble per m; return their test errors.

    ``pretrained`` given: fine-tuning from the pretrained replicate ``trial mod replicates``
    (method ``transfer``); None: direct learning from each trial's own random initialisation.
    """
    device = device or resolve_device(config["device"])
    seed, prop = config["seed"], data.name
    method = "direct" if pretrained is None else "transfer"
    n = 0 if pretrained is None else int(pretrained["n"])
    spec = model_spec(config, data.X_target.shape[1])
    settings = OptimizerSettings.from_config(config["model"]["direct" if pretrained is None else "finetune"])
    n_test = int(data.grid["n_test"])
    splits = [trial_split(seed, prop, t, len(data.y_target), n_test) for t in trials]
    test_rows = np.stack([s[1] for s in splits])
    X = torch.from_numpy(data.X_target).to(device)
    y = torch.from_numpy(data.y_target).to(device)
    if pretrained is not None:
        if pretrained["d_in"] != spec.d_in:
            raise ValueError(f"pretrained network has {pretrained['d_in']} inputs, the target data {spec.d_in}")
        replicates = pretrained["params"][0].shape[0]
        pick = torch.tensor([t % replicates for t in trials])
        init = [p[pick] for p in pretrained["params"]]
    else:
        init = init_parameters(spec, [torch_seed(seed, "direct_init", prop, t) for t in trials])
    stream = "direct_shuffle" if pretrained is None else "finetune_shuffle"
    rows_out, group_out, material_out = [], [], []
    for m in data.grid["m"]:
        train_idx = torch.from_numpy(np.stack([s[0][:m] for s in splits])).to(device)
        params, loss = train_ensemble(
            init, X, y, train_idx, settings, activation=spec.activation,
            shuffle_seeds=[torch_seed(seed, stream, prop, n, m, t) for t in trials],
            progress=_progress(f"[{method} {prop} n={n} m={m} trials {trials[0]}-{trials[-1]}]"),
        )
        pred_t = predict(params, X, torch.from_numpy(test_rows).to(device), spec.activation).cpu().numpy()
        with np.errstate(over="ignore", invalid="ignore"):
            pred = data.transform_target.inverse_transform(pred_t.astype(np.float64))
        abs_err = np.abs(pred - data.value_target[test_rows])  # (E, n_test)
        mae = abs_err.mean(axis=1)
        final_loss = loss.cpu().numpy()
        for e, t in enumerate(trials):
            ok = bool(np.isfinite(mae[e]) and np.isfinite(final_loss[e]))
            rows_out.append((prop, method, n, m, t, float(mae[e]) if ok else float("nan"), float(final_loss[e]),
                             "ok" if ok else "diverged"))
        for column, labels in data.groups.items():
            test_labels = labels[test_rows]
            for group in np.unique(test_labels):
                mask = test_labels == group
                counts = mask.sum(axis=1)
                sums = np.where(mask, abs_err, 0.0).sum(axis=1)
                for e, t in enumerate(trials):
                    if counts[e]:
                        group_out.append((prop, method, n, m, t, column, group, sums[e] / counts[e], int(counts[e])))
        if config["protocol"]["per_material"]:
            flat_rows, flat_err = test_rows.ravel(), abs_err.ravel()
            finite = np.isfinite(flat_err)
            sums = np.bincount(flat_rows[finite], weights=flat_err[finite], minlength=len(data.y_target))
            counts = np.bincount(flat_rows[finite], minlength=len(data.y_target))
            for i in np.flatnonzero(counts):
                material_out.append((prop, method, n, m, data.target_keys[i], float(sums[i]), int(counts[i])))
        n_bad = int((~np.isfinite(mae)).sum())
        log.info("[%s %s n=%d m=%d] %d trials: mean test MAE %.5g%s", method, prop, n, m, len(trials),
                 float(np.nanmean(mae)) if n_bad < len(mae) else float("nan"),
                 f", {n_bad} diverged" if n_bad else "")
    return ChunkResult(
        trials=pd.DataFrame(rows_out, columns=TRIAL_COLUMNS),
        groups=pd.DataFrame(group_out, columns=GROUP_COLUMNS),
        materials=pd.DataFrame(material_out, columns=MATERIAL_COLUMNS),
    )
