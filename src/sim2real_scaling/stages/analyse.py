"""Stages of the analysis and report layers (rules aggregate, fit, collect, report, check_study)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from sim2real_scaling.data.clean import DataError
from sim2real_scaling.io import atomic_path, read_json, write_csv, write_json
from sim2real_scaling.report.content import study_problems

if TYPE_CHECKING:

    pass

log = logging.getLogger(__name__)


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
