"""Stages of the training layer (rules design, pretrain and the training rules of every method).

Each stage receives the config slices its rule declares as params (``slices``: seed, device, protocol, model,
multitask, descriptor, input_kind, grid, qc and the property's own entry) and turns them into typed settings at
once; the training layer never sees the config itself.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from sim2real_scaling.config import ConfigError
from sim2real_scaling.data.qc import QC_FILE_COLUMNS, QCSettings
from sim2real_scaling.io import read_json, write_csv, write_json, write_torch

log = logging.getLogger(__name__)


def _settings(slices: Mapping[str, Any], property_name: str):  # noqa: ANN202
    from sim2real_scaling.training.settings import TrainingSettings

    return TrainingSettings.from_slices(property_name, slices)


def _property(slices: Mapping[str, Any], property_name: str) -> Mapping[str, Any]:
    return slices["property"] if "property" in slices else slices["properties"][property_name]


def _spec(slices: Mapping[str, Any], property_name: str) -> dict[str, Any]:
    from sim2real_scaling.training.design import design_spec
    from sim2real_scaling.training.settings import ProtocolSettings

    prop = _property(slices, property_name)
    multitask = slices.get("multitask") or {}
    return design_spec(slices["grid"], prop.get("grid_m"), ProtocolSettings.from_config(slices["seed"], slices["protocol"]),
                       QCSettings.from_config(slices.get("qc")),
                       {"transform": list(prop.get("transform", [])),
                        "exclude_test_pairs": bool(multitask.get("exclude_test_pairs_from_source", False))
                        if slices.get("input_kind") == "smiles_pair" else False})


def _read_prepared(path: str | Path) -> pd.DataFrame:
    try:
        from sim2real_scaling.data.tables import read_prepared
    except ImportError:  # pragma: no cover - until the one reader lands
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    return read_prepared(path)


def chunk_trials(slices: Mapping[str, Any], chunk: int) -> list[int]:
    """Trial indices of chunk ``chunk`` (0-based)."""
    protocol = slices["protocol"]
    size, trials = int(protocol["chunk_size"]), int(protocol["trials"])
    return list(range(chunk * size, min((chunk + 1) * size, trials)))


def stage_design(slices: Mapping[str, Any], property_name: str, inputs: Mapping[str, str | Path],
                 outputs: Mapping[str, str | Path]) -> None:
    """The design of one property (design.json: usable rows, n and m grids) and its QC flags (qc.csv)."""
    from sim2real_scaling.data.features import DescriptorStore
    from sim2real_scaling.training.design import pair_source_pool, qc_and_usable, resolve_design
    from sim2real_scaling.training.protocol import Protocol, split_sizes
    from sim2real_scaling.training.settings import ProtocolSettings

    prop = _property(slices, property_name)
    protocol = ProtocolSettings.from_config(slices["seed"], slices["protocol"])
    qc = QCSettings.from_config(slices.get("qc"))
    source, target = _read_prepared(inputs["source"]), _read_prepared(inputs["target"])
    store = DescriptorStore.load(inputs["descriptors"])
    pairs = slices.get("input_kind") == "smiles_pair"
    if pairs:
        from sim2real_scaling.data.pairs import PAIR_KEY, POLYMER_KEY, SOLVENT_KEY, TEMPERATURE, pair_codes

        feat_src = store.has(source[POLYMER_KEY].astype(str)) & store.has(source[SOLVENT_KEY].astype(str))
        feat_tgt = store.has(target[POLYMER_KEY].astype(str)) & store.has(target[SOLVENT_KEY].astype(str))
        for table in (source, target):  # QC: a row is a pair at a temperature
            table["key"] = table[PAIR_KEY].astype(str)
            table["match"] = table[PAIR_KEY].astype(str) + " @ " + table[TEMPERATURE].map("{:.6g} K".format)
        match = "match"
    else:
        feat_src, feat_tgt = store.has(source["key"].astype(str)), store.has(target["key"].astype(str))
        match = "key"
    flags, use_src, use_tgt = qc_and_usable(
        property_name, source, target, featurized_source=feat_src, featurized_target=feat_tgt,
        source_path=str(prop["source"]["path"]), target_path=str(prop["target"]["path"]),
        steps=prop.get("transform", []), qc=qc, match=match, log_scale=prop.get("scale") == "log10")
    pool = None
    split_groups = None
    if pairs:
        vocabulary = sorted(set(source.loc[use_src, PAIR_KEY]) | set(target.loc[use_tgt, PAIR_KEY]))
        split_groups = pair_codes(target.loc[use_tgt, PAIR_KEY], vocabulary)
        if (slices.get("multitask") or {}).get("exclude_test_pairs_from_source"):
            _, n_test = split_sizes(int(use_tgt.sum()), protocol.test_fraction)
            proto = Protocol(protocol, property_name, int(use_tgt.sum()), n_test, split_groups=split_groups)
            pool = pair_source_pool(proto, split_groups, pair_codes(source.loc[use_src, PAIR_KEY], vocabulary))
            if pool < 1:
                raise ConfigError(f"properties.{property_name}.source: every simulated row belongs to a test pair "
                                  "of some trial (multitask.exclude_test_pairs_from_source)")
    design = resolve_design(property_name, source, target, usable_source=use_src, usable_target=use_tgt,
                            grid=slices["grid"], grid_m=prop.get("grid_m"), protocol=protocol, qc=qc,
                            qc_table=flags, spec=_spec(slices, property_name), source_pool=pool,
                            split_groups=split_groups)
    for note in design.notes:
        log.warning("%s", note)
    flags = flags.assign(action="dropped" if qc.action == "drop" else "kept")
    write_csv(flags if not flags.empty else pd.DataFrame(columns=QC_FILE_COLUMNS), outputs["qc"])
    write_json(design.to_dict(), outputs["design"])
    log.info("%s: design n = %s, m = %s, %d test rows per trial, %d QC flags (%s)", property_name, design.n, design.m,
             design.n_test, len(flags), qc.action)


def load_training_data(slices: Mapping[str, Any], property_name: str, inputs: Mapping[str, str | Path],
                       n_indices: Sequence[int] = ()):  # noqa: ANN201
    """(settings, data) of a training job: the design checked against this job's settings, the usable rows."""
    from sim2real_scaling.data.features import DescriptorStore
    from sim2real_scaling.training.design import Design, check_design

    settings = _settings(slices, property_name)
    design = Design.from_dict(read_json(inputs["design"]))
    check_design(design, _spec(slices, property_name), n_indices, str(inputs["design"]))
    source, target = _read_prepared(inputs["source"]), _read_prepared(inputs["target"])
    store = DescriptorStore.load(inputs["descriptors"])
    if settings.input_kind == "smiles_pair":
        from sim2real_scaling.training.multitask import load_pair_data

        return settings, load_pair_data(settings, source, target, store, design)
    from sim2real_scaling.training.inputs import load_property_data

    data = load_property_data(settings, source, target, store, design)
    log.info("%s: %s", property_name, data.descriptor_note)
    return settings, data


def stage_pretrain(slices: Mapping[str, Any], property_name: str, n_indices: Sequence[int],
                   inputs: Mapping[str, str | Path], output: str | Path) -> None:
    """Pretrain the draws every trial of the study needs, at each grid n[i] of ``n_indices`` (one block)."""
    from sim2real_scaling.training.ensemble import resolve_device
    from sim2real_scaling.training.runner import make_protocol
    from sim2real_scaling.training.strategies import pretrain_networks

    settings, data = load_training_data(slices, property_name, inputs, n_indices)
    protocol = make_protocol(settings, data)
    device = resolve_device(settings.device)
    p = settings.protocol
    if p.replicates is None:
        raise ConfigError("protocol.pretrain_replicates: per_trial draws are pretrained in each training job, "
                          "not in a shared pretrain job")
    reps = list(range(p.replicates if not p.trials else min(p.replicates, p.trials)))
    networks = [pretrain_networks(settings, data, protocol, i, reps, device) for i in n_indices
                if data.design.n_at(i) is not None]
    write_torch({"networks": networks, "n_indices": list(n_indices)}, output)


def stage_train(slices: Mapping[str, Any], property_name: str, method: str, chunk: int,
                n_indices: Sequence[int] | None, inputs: Mapping[str, str | Path],
                outputs: Mapping[str, str | Path]) -> None:
    """Train one chunk of trials with ``method``: at each grid n[i] of ``n_indices`` (a transfer method), or once
    (a reference: ``n_indices`` None). Transfer starts from the networks in ``inputs["pretrained"]`` when given,
    else pretrains them here (and saves them to ``outputs["pretrained"]`` when asked)."""
    import torch

    from sim2real_scaling.training.ensemble import resolve_device
    from sim2real_scaling.training.runner import run_job

    settings, data = load_training_data(slices, property_name, inputs, n_indices or ())
    trials = [int(t) for t in slices["trials"]] if "trials" in slices else chunk_trials(slices, chunk)
    pretrained = None
    if inputs.get("pretrained"):
        saved = torch.load(inputs["pretrained"], map_location="cpu", weights_only=True)
        pretrained = {int(state["n_index"]): state for state in saved["networks"]}
        if n_indices is not None and list(saved.get("n_indices", sorted(pretrained))) != list(n_indices):
            raise ValueError(f"{inputs['pretrained']}: networks for grid positions {saved.get('n_indices')}, this job "
                             f"trains {list(n_indices)}")
    result, used = run_job(settings, data, method, trials, n_indices, pretrained=pretrained,
                           device=resolve_device(settings.device))
    if outputs.get("pretrained"):
        write_torch({"networks": [used[i] for i in sorted(used)], "n_indices": list(n_indices or [])},
                    outputs["pretrained"])
    for key in ("trials", "groups", "materials"):
        write_csv(getattr(result, key), outputs[key])
    bad = int((result.trials["status"] == "diverged").sum())
    if bad:
        log.warning("%s %s: %d of %d trial rows diverged (NaN loss or MAE)", property_name, method, bad,
                    len(result.trials))


def n_indices_of(block: str | None) -> list[int] | None:
    """Grid positions of a block name (``"3"``, ``"0-3"``)."""
    if block is None:
        return None
    first, _, last = str(block).partition("-")
    return list(range(int(first), int(last or first) + 1))


__all__ = ["chunk_trials", "load_training_data", "n_indices_of", "stage_design", "stage_pretrain", "stage_train"]
