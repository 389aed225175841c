"""Stages of the data layer: synthetic tables, cleaned tables, descriptors (rules synthesize, prepare, featurize)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from sim2real_scaling.data.features import cache_file, featurize
from sim2real_scaling.io import write_csv
from sim2real_scaling.data.prepare import prepare_property

if TYPE_CHECKING:

    pass

log = logging.getLogger(__name__)


def stage_synthesize(config: Mapping[str, Any]) -> None:
    from sim2real_scaling.data.synthetic import generate_benchmark

    synth = config["synthetic"]
    sizes = generate_benchmark(seed=config["seed"], n_source=synth["n_source"], n_target=synth["n_target"],
                               noise_source=synth["noise_source"], noise_target=synth["noise_target"],
                               hidden_strength=synth["hidden_strength"], source_path=synth["source_path"],
                               target_path=synth["target_path"])
    log.info("synthetic benchmark written: %s", sizes)


def stage_prepare(config: Mapping[str, Any], property_name: str, out_dir: str | Path) -> None:
    prepare_property(config, property_name, out_dir)


def stage_featurize(config: Mapping[str, Any], prepared_tables: Sequence[str | Path], output: str | Path,
                    study_cache: str | Path, failed_output: str | Path | None = None) -> None:
    """Descriptors of every distinct molecule; molecules the descriptor cannot handle go to ``failed_output``."""
    keys: set[str] = set()
    for path in prepared_tables:
        # molecule keys: "key" (one molecule per row), or both molecules of a polymer-solvent pair
        columns = [c for c in ("key", "polymer_key", "solvent_key") if c in pd.read_csv(path, nrows=0).columns]
        table = pd.read_csv(path, usecols=columns, keep_default_na=False)
        for column in columns:
            keys.update(table[column].astype(str))
    descriptor = config["descriptor"]
    cache = cache_file(descriptor["cache_dir"], descriptor) if descriptor["cache_dir"] else Path(study_cache)
    store = featurize(sorted(keys), descriptor, cache=cache)
    store.save(output)
    if failed_output is not None:
        write_csv(pd.DataFrame(sorted(store.failed.items()), columns=["key", "reason"]), failed_output)
    log.info("%d molecules x %d descriptors written to %s (%d failed)", len(store.keys), len(store.names), output,
             len(store.failed))
