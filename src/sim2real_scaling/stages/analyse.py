"""Stages of the analysis and report layers (rules aggregate, fit, collect, report, check_study)."""

from __future__ import annotations

import logging
import shutil
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim2real_scaling.contract import canonical_method, is_transfer
from sim2real_scaling.data.clean import DataError
from sim2real_scaling.io import atomic_path, read_json, write_csv, write_json
from sim2real_scaling.report.content import study_problems

log = logging.getLogger(__name__)


def _read_chunks(paths: Sequence[str | Path]) -> list[pd.DataFrame]:
    frames = []
    for p in paths:
        frame = pd.read_csv(p, keep_default_na=False, na_values=["", "nan", "NaN"])
        frames.append(frame.assign(_file=str(p)))
    return frames


def _concat(paths: Sequence[str | Path], columns: Sequence[str], unique: Sequence[str] | None = None) -> pd.DataFrame:
    """The tables one under the other with the contract's ``columns`` (older tables without ``replicate``: each
    trial its own replicate; other missing columns empty); with ``unique``, a key found in two files is a
    :class:`DataError` naming them (e.g. chunk tables of an earlier layout of chunks or blocks left beside the new
    ones)."""
    frames = [f for f in _read_chunks(paths) if not f.empty]
    if not frames:
        return pd.DataFrame(columns=list(columns))
    table = pd.concat(frames, ignore_index=True)
    if "method" in table.columns:
        table["method"] = table["method"].astype(str).map(canonical_method)
    if "replicate" in columns and "replicate" not in table.columns and "trial" in table.columns:
        table["replicate"] = table["trial"]
    for col in columns:
        if col not in table.columns:
            table[col] = np.nan
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
    return table[list(columns)]


def missing_trials(trials: pd.DataFrame, design: Mapping[str, Any], n_trials: int,
                   methods: Sequence[str]) -> list[str]:
    """What the job list promised and the chunk tables lack: every trial 0..n_trials-1 of every (method, n, m),
    transfer methods at every n of ``design`` (non-null) and every m, references at n = 0. One line per
    (method, n, m) with missing trials, naming them."""
    n_grid = sorted({int(v) for v in design.get("n", []) if v is not None})
    m_grid = sorted({int(v) for v in design.get("m", [])})
    expected = set(range(n_trials))
    problems = []
    have = {(str(k[0]), float(k[1]), float(k[2])): set(int(t) for t in g["trial"])
            for k, g in trials.groupby(["method", "n", "m"])}
    for method in methods:
        for n in (n_grid if is_transfer(method) else [0]):
            for m in m_grid:
                missing = sorted(expected - have.get((method, float(n), float(m)), set()))
                if missing:
                    shown = ", ".join(str(t) for t in missing[:6]) + (" ..." if len(missing) > 6 else "")
                    problems.append(f"{method} n={n} m={m}: {len(missing)} of {n_trials} trials missing ({shown})")
    return problems


def stage_aggregate(config: Mapping[str, Any], trial_files: Sequence[str | Path], group_files: Sequence[str | Path],
                    material_files: Sequence[str | Path], outputs: Mapping[str, str | Path],
                    design: str | Path | None = None) -> None:
    """One property's chunk tables -> trials.csv, summary.csv (bootstrap CIs), group and material tables.

    With ``design`` (the property's design.json), every trial of every (method, n, m) the job list promises must
    be there (transfer method, direct when ``protocol.direct_baseline``, simulation when its tables are among the
    inputs); otherwise a :class:`DataError` names what is missing.
    """
    from sim2real_scaling.analysis.summary import summarize
    from sim2real_scaling.contract import GROUP_COLUMNS, MATERIAL_COLUMNS, TRIAL_COLUMNS

    keys = ["property", "method", "n", "m", "trial"]
    trials = _concat(trial_files, TRIAL_COLUMNS, unique=keys).sort_values(keys)
    if "status" in trials.columns:
        trials["status"] = trials["status"].fillna("ok")
    if design is not None:
        protocol = config.get("protocol", {})
        transfer = canonical_method(str(config.get("transfer", "finetune")))
        methods = [transfer] + (["direct"] if protocol.get("direct_baseline", True) else [])
        if "simulation" in set(trials["method"]) or any("simulation" in Path(p).name for p in trial_files):
            methods.append("simulation")
        problems = missing_trials(trials, read_json(design), int(protocol["trials"]), methods)
        if problems:
            raise DataError("aggregate: the chunk tables lack trials the job list promised: " + "; ".join(problems[:6])
                            + (f"; and {len(problems) - 6} more" if len(problems) > 6 else "")
                            + ". A training job failed or was interrupted: rerun the workflow (its jobs redo what "
                            "is missing)")
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
    failed = int((trials["status"] == "diverged").sum())
    log.info("%d trials aggregated into %d summary rows (%d diverged)", len(trials), len(summary), failed)


def read_grids(prepared_dirs: Mapping[str, str | Path]) -> dict[str, dict[str, Any]]:
    return {name: read_json(Path(d) / "grid.json") for name, d in prepared_dirs.items()}



def stage_analyse(config: Mapping[str, Any], inputs: Mapping[str, str | Path], fits_path: str | Path,
                  figures_dir: str | Path, properties: Sequence[str] | None = None) -> None:
    """Fit every law of the study, or of the given ``properties`` only (fits.json), and draw the figures
    (PNG + SVG)."""
    from sim2real_scaling.analysis.study import analyse_study
    from sim2real_scaling.report.content import draw_property_figures

    if properties is not None:
        config = {**config, "properties": {name: config["properties"][name] for name in properties}}

    trials = pd.read_csv(inputs["trials"], keep_default_na=False, na_values=["", "nan", "NaN"])
    summary = pd.read_csv(inputs["summary"])
    groups = pd.read_csv(inputs["groups"], keep_default_na=False, na_values=["", "nan", "NaN"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        record, results = analyse_study(config, trials, groups)
    figures = Path(figures_dir)
    figures.mkdir(parents=True, exist_ok=True)
    drawn: dict[str, list[str]] = {}
    for name, result in results.items():
        unit = config["properties"][name].get("unit") or None
        drawn.update(draw_property_figures(name, result, summary, figures, unit=unit,
                                           source=config.get("source_label", "simulated samples")))
    record["figures"] = {k: [Path(p).name for p in v] for k, v in drawn.items()}
    write_json(record, fits_path)
    failed = [n for n, r in results.items() if not r.law_n.has_params]
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
