"""Stages of the training layer: pretraining and trial chunks (rules pretrain, transfer, direct, multitask)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from sim2real_scaling.config import chunk_trials
from sim2real_scaling.io import write_csv, write_torch

if TYPE_CHECKING:
    import torch

    from sim2real_scaling.training.runner import ChunkResult, PropertyData

log = logging.getLogger(__name__)


def stage_pretrain(config: Mapping[str, Any], property_name: str, n_indices: Sequence[int], prepared_dir: str | Path,
                   descriptors: str | Path, output: str | Path) -> None:
    """Pretrain the network(s) of one property at each grid n[i] of ``n_indices`` (one training job's n)."""
    from sim2real_scaling.training.runner import load_property_data
    from sim2real_scaling.training.ensemble import resolve_device

    data = load_property_data(config, property_name, prepared_dir, descriptors)
    _pretrain_block(config, data, n_indices, resolve_device(config["device"]), output)


def _pretrain_block(config: Mapping[str, Any], data: PropertyData, n_indices: Sequence[int], device: torch.device,
                    output: str | Path) -> list[dict[str, Any]]:
    """The pretrained networks at each grid n[i] of ``n_indices``, saved to ``output`` (the pretrain file)."""
    from sim2real_scaling.training.runner import pretrain

    networks = [pretrain(config, data, i, device) for i in n_indices]
    write_torch({"networks": networks}, output)
    return networks


def stage_trials(config: Mapping[str, Any], property_name: str, chunk: int, prepared_dir: str | Path,
                 descriptors: str | Path, outputs: Mapping[str, str | Path], n_indices: Sequence[int] | None = None,
                 pretrained: str | Path | None = None, pretrain_output: str | Path | None = None) -> None:
    """Train one chunk of trials, at each grid n[i] of ``n_indices`` in turn (transfer) or without
    pretraining (``n_indices`` None: direct learning). Transfer starts from the networks in the file
    ``pretrained`` (written by :func:`stage_pretrain`), or from networks pretrained here and saved to
    ``pretrain_output`` in the same form."""
    import torch

    from sim2real_scaling.training.runner import load_property_data, run_trials
    from sim2real_scaling.training.ensemble import resolve_device

    device = resolve_device(config["device"])
    data = load_property_data(config, property_name, prepared_dir, descriptors)
    trials = chunk_trials(config, chunk)
    if n_indices is None:
        results = [run_trials(config, data, trials, device=device)]
    else:
        if pretrain_output is not None:
            networks = _pretrain_block(config, data, n_indices, device, pretrain_output)
        else:
            networks = torch.load(pretrained, map_location="cpu", weights_only=True)["networks"]
        got = [int(state["n_index"]) for state in networks]
        if got != list(n_indices):
            raise ValueError(f"{pretrained}: networks for grid indices {got}, this job trains {list(n_indices)}")
        results = [run_trials(config, data, trials, pretrained=state, device=device) for state in networks]
    _write_chunk_tables(results, outputs)


def _write_chunk_tables(results: Sequence[ChunkResult], outputs: Mapping[str, str | Path]) -> None:
    """A training job's trial, group and material tables (its results one under the other)."""
    for key in ("trials", "groups", "materials"):
        write_csv(pd.concat([getattr(r, key) for r in results], ignore_index=True), outputs[key])


def stage_multitask(config: Mapping[str, Any], property_name: str, chunk: int, n_index: int | None,
                    prepared_dir: str | Path, descriptors: str | Path, outputs: Mapping[str, str | Path]) -> None:
    """Train one chunk of trials of the multitask model (transfer at grid n[n_index], or direct when None)."""
    from sim2real_scaling.training.ensemble import resolve_device
    from sim2real_scaling.training.multitask import load_pair_data, run_multitask_trials

    data = load_pair_data(config, property_name, prepared_dir, descriptors)
    result = run_multitask_trials(config, data, chunk_trials(config, chunk), n_index=n_index,
                                  device=resolve_device(config["device"]))
    _write_chunk_tables([result], outputs)
