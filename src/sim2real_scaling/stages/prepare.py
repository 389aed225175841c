"""Stages of the data layer: synthetic tables, cleaned tables, descriptors (rules synthesize, prepare, featurize)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from sim2real_scaling.data.features import cache_file, featurize
from sim2real_scaling.data.prepare import PreparedTables, prepare_property, prepare_tables, write_prepared
from sim2real_scaling.data.tables import read_prepared
from sim2real_scaling.io import write_csv, write_json

if TYPE_CHECKING:
    from sim2real_scaling.data.prepare import Annotate

log = logging.getLogger(__name__)


def stage_synthesize(config: Mapping[str, Any]) -> None:
    from sim2real_scaling.data.synthetic import generate_benchmark

    synth = config["synthetic"]
    sizes = generate_benchmark(seed=config["seed"], n_source=synth["n_source"], n_target=synth["n_target"],
                               noise_source=synth["noise_source"], noise_target=synth["noise_target"],
                               hidden_strength=synth["hidden_strength"], source_path=synth["source_path"],
                               target_path=synth["target_path"])
    log.info("synthetic benchmark written: %s", sizes)


def class_hook(config: Mapping[str, Any]) -> Annotate | None:
    """The case study's class annotation of the prepared tables, if the config asks for one."""
    if config.get("wiedemann_franz"):  # case study 3: WF class per compound (a group column), from raw values
        from sim2real_scaling.studies.wiedemann_franz import wf_annotator

        return wf_annotator(config["wiedemann_franz"])
    return None


def stage_prepare(config: Mapping[str, Any], property_name: str, out_dir: str | Path,
                  rejected_log: str | Path | None = None) -> None:
    """Clean, check and transform one property's tables; write them with checks.json and grid.json.

    ``rejected_log``: a second copy of rejected.csv that survives a failed job (Snakemake deletes the outputs
    of a failed job, and prepare fails on purpose when too many rows are rejected).
    """
    if config["input_kind"] == "smiles_pair" or config.get("transfer") == "multitask":
        prepared = prepare_tables(config, property_name, annotate=class_hook(config), out_dir=out_dir,
                                  rejected_log=rejected_log)
        grid = _pair_grid(config, prepared)
        write_prepared(prepared, out_dir, rejected_log)
        write_json(grid, Path(out_dir) / "grid.json")
        return
    prepare_property(config, property_name, out_dir, annotate=class_hook(config), rejected_log=rejected_log)


def _pair_grid(config: Mapping[str, Any], prepared: PreparedTables) -> dict[str, Any]:
    """grid.json of a pair property: the n grid ends at the fewest simulated rows any trial may train on
    (all of them, unless ``multitask.exclude_test_pairs_from_source`` withholds the test pairs' rows)."""
    from sim2real_scaling.config import resolve_m_grid, resolve_n_grid
    from sim2real_scaling.data.clean import DataError
    from sim2real_scaling.data.pairs import PAIR_KEY, pair_codes

    name, src, tgt, sizes = prepared.name, prepared.source, prepared.target, prepared.sizes
    pool = len(src)
    if config.get("multitask", {}).get("exclude_test_pairs_from_source"):
        try:  # the trials' splits are the training layer's; without them the design step resolves the grid
            from sim2real_scaling.training.multitask import trial_rows
        except ImportError:
            trial_rows = None
        if trial_rows is not None:
            vocabulary = sorted(set(src[PAIR_KEY]) | set(tgt[PAIR_KEY]))
            tgt_codes, src_codes = pair_codes(tgt[PAIR_KEY], vocabulary), pair_codes(src[PAIR_KEY], vocabulary)
            pool = min(len(trial_rows(config, name, t, tgt_codes, src_codes, sizes["n_test"])[2])
                       for t in range(config["protocol"]["trials"]))
    if pool < 1:
        raise DataError(f"properties.{name}.source: every simulated row belongs to a test pair of some trial")
    n_values = resolve_n_grid(config, pool, name)
    m_values = resolve_m_grid(config, sizes["n_train"], name)
    log.info("%s: %d source rows (%d pairs; at least %d usable in every trial), %d target rows (%d pairs); "
             "n grid %s; m grid %s", name, len(src), src[PAIR_KEY].nunique(), pool, len(tgt), tgt[PAIR_KEY].nunique(),
             n_values, m_values)
    return {"n": n_values, "m": m_values, "n_source": sizes["n_source"], "n_source_pool": pool,
            "n_target": sizes["n_target"], "n_train": sizes["n_train"], "n_test": sizes["n_test"],
            "target_pairs": int(tgt[PAIR_KEY].nunique()), "source_pairs": int(src[PAIR_KEY].nunique()),
            "rejected_source": sizes["rejected_source"], "rejected_target": sizes["rejected_target"]}


def stage_featurize(config: Mapping[str, Any], prepared_tables: Sequence[str | Path], output: str | Path,
                    study_cache: str | Path, failed_output: str | Path | None = None) -> None:
    """Descriptors of every distinct molecule; molecules the descriptor cannot handle go to ``failed_output``."""
    keys: set[str] = set()
    for path in prepared_tables:
        # molecule keys: "key" (one molecule per row), or both molecules of a polymer-solvent pair
        table = read_prepared(path)
        for column in [c for c in ("key", "polymer_key", "solvent_key") if c in table.columns]:
            keys.update(table[column].astype(str))
    descriptor = config["descriptor"]
    cache = cache_file(descriptor["cache_dir"], descriptor) if descriptor["cache_dir"] else Path(study_cache)
    store = featurize(sorted(keys), descriptor, cache=cache)
    store.save(output)
    if failed_output is not None:
        write_csv(pd.DataFrame(sorted(store.failed.items()), columns=["key", "reason"]), failed_output)
    log.info("%d molecules x %d descriptors written to %s (%d failed)", len(store.keys), len(store.names), output,
             len(store.failed))
