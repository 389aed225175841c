"""One function per workflow stage: what each Snakemake rule calls (through ``scripts/``).

Each stage takes the validated config and plain paths, reads files, calls the package and writes its
outputs atomically. Nothing here knows about Snakemake, so stages are unit-testable and usable from a
notebook.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sim2real_scaling.config import chunk_trials
from sim2real_scaling.data.features import cache_file, featurize
from sim2real_scaling.data.clean import DataError
from sim2real_scaling.io import atomic_path, read_json, write_csv, write_json, write_torch
from sim2real_scaling.data.prepare import prepare_property
from sim2real_scaling.report.content import study_problems

if TYPE_CHECKING:
    import torch

    from sim2real_scaling.training.runner import ChunkResult, PropertyData

# torch (engine, ensemble) and scipy.stats (statistics) are imported by the stages that use them: a rule
# that needs neither (prepare, featurize, fit, report, check_study) starts a second or two faster

log = logging.getLogger(__name__)


def set_threads(threads: int) -> None:
    """Torch's CPU threads; before torch is imported, through the variables it reads when it starts."""
    n = str(max(1, int(threads)))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(n))
    else:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = n


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


def _concat(paths: Sequence[str | Path], columns: list[str], unique: Sequence[str] | None = None) -> pd.DataFrame:
    """The tables one under the other; with ``unique``, a key found in two files is a :class:`DataError`
    naming them (e.g. chunk tables of an earlier layout of chunks or blocks left beside the new ones)."""
    frames = [pd.read_csv(p, keep_default_na=False, na_values=["", "nan", "NaN"]) for p in paths]
    if unique is not None:  # which file each row came from, for the message below
        frames = [f.assign(_file=str(p)) for f, p in zip(frames, paths, strict=True)]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=columns)
    table = pd.concat(frames, ignore_index=True)
    if unique is not None:
        repeated = table[table.duplicated(list(unique), keep=False)]
        if not repeated.empty:
            first = repeated.iloc[0]
            files = sorted(set(repeated["_file"]))
            raise DataError(
                f"{len(repeated)} trial rows appear in more than one chunk table, e.g. "
                + ", ".join(f"{k}={first[k]}" for k in unique)
                + f", in {', '.join(files[:4])}{' ...' if len(files) > 4 else ''}: tables of an earlier run with "
                "another chunk_size or ensembles_per_job are mixed with new ones; delete the study's trials/ folder "
                "(or run with --forcerun transfer direct) and run again"
            )
    return table[columns]


def stage_aggregate(config: Mapping[str, Any], trial_files: Sequence[str | Path], group_files: Sequence[str | Path],
                    material_files: Sequence[str | Path], outputs: Mapping[str, str | Path]) -> None:
    from sim2real_scaling.training.runner import GROUP_COLUMNS, MATERIAL_COLUMNS, TRIAL_COLUMNS
    from sim2real_scaling.analysis.summary import summarize

    keys = ["property", "method", "n", "m", "trial"]
    trials = _concat(trial_files, TRIAL_COLUMNS, unique=keys).sort_values(keys)
    analysis = config["analysis"]
    summary = summarize(trials, confidence=analysis["confidence"], n_resamples=analysis["bootstrap_resamples"],
                        seed=config["seed"])
    groups = _concat(group_files, GROUP_COLUMNS).sort_values(["property", "group_by", "group", "method", "n", "m", "trial"])
    materials = _concat(material_files, MATERIAL_COLUMNS)
    if not materials.empty:
        materials = (materials.groupby(["property", "method", "n", "m", "material"], as_index=False)
                     [["abs_error_sum", "count"]].sum())
    # the same columns with or without rows (collect joins the properties' tables under one header)
    materials["mean_abs_error"] = materials["abs_error_sum"] / materials["count"]
    write_csv(trials, outputs["trials"])
    write_csv(summary, outputs["summary"])
    write_csv(groups, outputs["groups"])
    write_csv(materials, outputs["materials"])
    failed = int((trials["status"] != "ok").sum())
    log.info("%d trials aggregated into %d summary rows (%d diverged)", len(trials), len(summary), failed)


def environment_record() -> dict[str, Any]:
    """Library versions and machine facts recorded next to the results."""
    packages = ["sim2real-scaling", "numpy", "scipy", "pandas", "torch", "rdkit", "lmfit", "matplotlib",
                "scikit-learn", "pymatgen", "snakemake"]
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    import torch

    return {"python": sys.version.split()[0], "platform": platform.platform(), "packages": versions,
            "cuda_available": torch.cuda.is_available(), "cpu_count": os.cpu_count()}


def stage_record_run(config: Mapping[str, Any], output_config: str | Path, output_env: str | Path) -> None:
    import yaml

    from sim2real_scaling.io import write_text

    write_text(yaml.safe_dump(dict(config), sort_keys=False), output_config)
    write_json(environment_record(), output_env)


def read_grids(prepared_dirs: Mapping[str, str | Path]) -> dict[str, dict[str, Any]]:
    return {name: read_json(Path(d) / "grid.json") for name, d in prepared_dirs.items()}



def stage_analyse(config: Mapping[str, Any], inputs: Mapping[str, str | Path], fits_path: str | Path,
                  figures_dir: str | Path, properties: Sequence[str] | None = None) -> None:
    """Fit every law of the study, or of the given ``properties`` only (fits.json), and draw the figures
    (PNG + SVG)."""
    from sim2real_scaling.report import figures as plots
    from sim2real_scaling.analysis.study import analyse_study

    if properties is not None:
        config = {**config, "properties": {name: config["properties"][name] for name in properties}}

    trials = pd.read_csv(inputs["trials"])
    summary = pd.read_csv(inputs["summary"])
    groups = pd.read_csv(inputs["groups"], keep_default_na=False, na_values=["", "nan", "NaN"])
    record, results = analyse_study(config, trials, summary, groups)
    figures = Path(figures_dir)
    figures.mkdir(parents=True, exist_ok=True)
    drawn: dict[str, list[str]] = {}
    for name, result in results.items():
        unit = config["properties"][name]["unit"] or None
        source = config["source_label"]
        paths = plots.plot_scaling_curve(summary, result.law_n, name, result.record["law_n"]["m"],
                                         out=figures / f"{name}_scaling", unit=unit, source=source)
        drawn[f"{name}_scaling"] = [str(p) for p in paths]
        if result.surface is not None:
            paths = plots.plot_surface_curves(summary, result.surface if result.surface.ok else None, name,
                                              out=figures / f"{name}_surface", unit=unit, source=source)
            drawn[f"{name}_surface"] = [str(p) for p in paths]
            if result.surface.ok:
                paths = plots.plot_indifference_curves(result.surface, out=figures / f"{name}_indifference",
                                                       plan=result.plan, unit=unit, source=source)
                drawn[f"{name}_indifference"] = [str(p) for p in paths]
        for group_by, scaling in result.groups.items():
            paths = plots.plot_group_panels(scaling, out=figures / f"{name}_groups_{group_by}", unit=unit,
                                            source=source)
            drawn[f"{name}_groups_{group_by}"] = [str(p) for p in paths]
    record["figures"] = {k: [Path(p).name for p in v] for k, v in drawn.items()}
    write_json(record, fits_path)
    failed = [n for n, r in results.items() if not r.law_n.ok]
    if failed:
        log.warning("scaling-law fit failed for %s (reported in fits.json)", failed)


def _concat_csv_text(paths: Sequence[str | Path], output: str | Path) -> None:
    """Concatenate CSV files with the same header as text (one header), written atomically."""
    header: str | None = None
    with atomic_path(output) as tmp, tmp.open("w", encoding="utf-8", newline="") as sink:
        for path in paths:
            with open(path, encoding="utf-8", newline="") as source:
                first = source.readline()
                if header is None:
                    header = first
                    sink.write(first)
                elif first != header:
                    raise ValueError(f"{path}: columns {first.strip()!r} differ from {header.strip()!r}")
                shutil.copyfileobj(source, sink)


def stage_collect(config: Mapping[str, Any], per_property: Mapping[str, Mapping[str, str | Path]],
                  outputs: Mapping[str, str | Path]) -> None:
    """The study's tables, fits.json and figures/ from those of its properties (analysed one by one).

    ``per_property``: property -> {"trials", "summary", "groups", "materials", "fits", "figures"}. Each
    property's tables are sorted with the property first, so concatenating them in name order gives the
    tables a study-wide aggregation would write.
    """
    names = sorted(per_property)
    for table in ("trials", "summary", "groups", "materials"):
        _concat_csv_text([per_property[name][table] for name in names], outputs[table])
    record: dict[str, Any] = {}
    for name in config["properties"]:  # fits.json lists the properties in the config's order
        part = read_json(per_property[name]["fits"])
        if not record:
            record = {**part, "properties": {}, "figures": {}}
        record["properties"].update(part["properties"])
        record["figures"].update(part.get("figures", {}))
    figures = Path(outputs["figures"])
    figures.mkdir(parents=True, exist_ok=True)
    for name in names:
        for path in sorted(Path(per_property[name]["figures"]).iterdir()):
            shutil.copy2(path, figures / path.name)
    write_json(record, outputs["fits"])
    log.info("study %s: %d properties collected", config["study"], len(names))


def stage_report(config: Mapping[str, Any], inputs: Mapping[str, str | Path], outputs: Mapping[str, str | Path]) -> None:
    from sim2real_scaling.report.content import write_report

    write_report(config, inputs, outputs)


class StudyIncomplete(RuntimeError):
    """The study ran to the end but is not complete (diverged trials, failed fits); the message says what."""


# fit statuses that make a study incomplete; "too_few_points" (a grid of fewer than 3 n or m values) is the
# study's design, not a failure, and is only noted
def stage_check_study(config: Mapping[str, Any], inputs: Mapping[str, str | Path], output: str | Path) -> None:
    """Write ``output`` (complete.json) if the study is complete; raise :class:`StudyIncomplete` otherwise.

    The report is written before this runs, so an incomplete study still has its report; this stage only
    makes the workflow's exit status say so (the last line of its log names every problem).
    """
    trials = pd.read_csv(inputs["trials"])
    fits = read_json(inputs["fits"])
    problems, notes = study_problems(trials, fits)
    for note in notes:
        log.warning("note: %s", note)
    if problems:
        raise StudyIncomplete(
            f"study {config['study']} is incomplete: {'; '.join(problems)}. Everything else finished; "
            f"the report {inputs.get('report', 'report.html')} shows the results"
        )
    write_json({"study": config["study"], "complete": True, "trials": int(len(trials)), "notes": notes}, output)
    log.info("study %s is complete: %d trials, every fit ok%s", config["study"], len(trials),
             f" ({len(notes)} notes)" if notes else "")
