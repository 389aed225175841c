"""Measure training choices on a study's real data: model selection scheme, descriptor transform, epochs...

Runs one property of a study config in this process (prepare, featurize, design, then direct learning and the
study's transfer method at a few n, for a few trials) once per *variant* (a config override), on the same
trials: every variant sees the same splits, so differences between variants are paired by trial. Prints and
writes (JSON) the mean test MAE of each (variant, method, n) with its standard error over trials, the paired
difference transfer - direct, and the median chosen training length.

    python benchmarks/training_defaults.py --config config/polymer.yaml --property refractive_index \\
        --trials 20 --n-points 3 --variants selection
    python benchmarks/training_defaults.py --config config/config.yaml --property density --variants descriptor

Variant sets (``--variants``): ``selection`` (fixed epochs as before, k-fold CV + refit, hold-out early
stopping), ``descriptor`` (standardize, yeo-johnson, quantile, each with and without clipping at 5), ``cv_folds``
(3, 5, 10 folds), or a path to a YAML file mapping variant names to config overrides.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sim2real_scaling.config import deep_merge, load_config  # noqa: E402

VARIANTS = {
    "selection": {
        "fixed": {"model": {"selection": {"scheme": "fixed"}}},
        "cv": {"model": {"selection": {"scheme": "cv"}}},
        "holdout": {"model": {"selection": {"scheme": "holdout"}}},
    },
    "descriptor": {
        f"{method}{'' if clip is None else f'_clip{clip}'}": {"descriptor": {"transform": {"method": method, "clip": clip}}}
        for method in ("standardize", "yeo-johnson", "quantile") for clip in (None, 5)
    },
    "cv_folds": {f"cv{k}": {"model": {"selection": {"scheme": "cv", "folds": k}}} for k in (3, 5, 10)},
}


def _prepare(config: dict, prop: str, work: Path) -> dict:
    from sim2real_scaling.stages.prepare import stage_featurize, stage_prepare, stage_synthesize

    if "synthetic" in config:  # the embedded default: its tables are made, not read
        synth = {**config["synthetic"], "source_path": str(work / "input" / "source.csv"),
                 "target_path": str(work / "input" / "target.csv")}
        config["synthetic"] = synth
        for side in ("source", "target"):
            config["properties"][prop][side]["path"] = synth[f"{side}_path"]
        if not Path(synth["target_path"]).exists():
            stage_synthesize(config)
    prepared = work / "prepared" / prop
    if not (prepared / "target.csv").exists():
        stage_prepare(config, prop, prepared)
    features = work / "descriptors.npz"
    if not features.exists():
        stage_featurize(config, [prepared / "source.csv", prepared / "target.csv"], features, work / "cache.npz")
    return {"source": prepared / "source.csv", "target": prepared / "target.csv", "descriptors": features}


def run_variant(config: dict, prop: str, inputs: dict, work: Path, name: str, methods: list[str]) -> pd.DataFrame:
    from sim2real_scaling.stages.train import stage_design, stage_train

    out = work / name
    out.mkdir(parents=True, exist_ok=True)
    design = {"design": out / "design.json", "qc": out / "qc.csv"}
    stage_design(config, prop, inputs, design)
    inputs = {**inputs, "design": design["design"]}
    n_points = len(json.loads(design["design"].read_text())["n"])
    frames = []
    for method in methods:
        files = {k: out / f"{method}.{k}.csv" for k in ("trials", "groups", "materials")}
        n_indices = None if method in ("direct", "simulation") else list(range(n_points))
        start = time.perf_counter()
        stage_train(config, prop, method, 0, n_indices, inputs, files)
        logging.getLogger("bench").warning("%s %s: %.0f s", name, method, time.perf_counter() - start)
        frames.append(pd.read_csv(files["trials"]).assign(variant=name))
    return pd.concat(frames, ignore_index=True)


def summarise(trials: pd.DataFrame) -> pd.DataFrame:
    rows = []
    ok = trials[trials["status"] == "ok"]
    for (variant, method, n, m), g in ok.groupby(["variant", "method", "n", "m"]):
        row = {"variant": variant, "method": method, "n": int(n), "m": int(m), "trials": len(g),
               "mae": g["mae"].mean(), "se": g["mae"].std(ddof=1) / np.sqrt(len(g)),
               "epochs_median": g["epochs"].median()}
        direct = ok[(ok.variant == variant) & (ok.method == "direct") & (ok.m == m)].set_index("trial")["mae"]
        if method != "direct" and len(direct):
            d = (g.set_index("trial")["mae"] - direct).dropna()
            row.update(vs_direct=d.mean(), vs_direct_se=d.std(ddof=1) / np.sqrt(len(d)),
                       vs_direct_pct=100 * d.mean() / direct.mean())
        rows.append(row)
    return pd.DataFrame(rows)


def paired(trials: pd.DataFrame, base: str) -> pd.DataFrame:
    """Each variant against ``base`` on the same trials: mean MAE difference, its SE and in percent of ``base``."""
    ok = trials[trials["status"] == "ok"]
    rows = []
    for (method, n, m), g in ok.groupby(["method", "n", "m"]):
        if method == "simulation":
            continue
        wide = g.pivot_table(index="trial", columns="variant", values="mae")
        if base not in wide:
            continue
        for variant in wide.columns:
            if variant == base:
                continue
            d = (wide[variant] - wide[base]).dropna()
            rows.append({"method": method, "n": int(n), "m": int(m), "variant": variant, "base_mae": wide[base].mean(),
                         "mae": wide[variant].mean(), "diff": d.mean(), "diff_se": d.std(ddof=1) / np.sqrt(len(d)),
                         "diff_pct": 100 * d.mean() / wide[base].mean(), "trials": len(d)})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config")
    parser.add_argument("--property")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--n-points", type=int, default=3)
    parser.add_argument("--m", type=float, nargs="*", default=None, help="m grid (fractions or sizes); default the config's")
    parser.add_argument("--variants", default="selection")
    parser.add_argument("--only", nargs="*", default=None, help="run only these variants of the set")
    parser.add_argument("--set", default=None, help="a YAML mapping merged into every variant's config")
    parser.add_argument("--methods", nargs="*", default=None, help="default: direct, the transfer method, simulation")
    parser.add_argument("--work", default="benchmarks/out/training_defaults")
    parser.add_argument("--out", default=None, help="JSON file for the table (default: <work>/<study>_<property>_<variants>.json)")
    parser.add_argument("--base", default=None, help="print every variant against this one, paired by trial")
    parser.add_argument("--table", default=None, help="only print the tables of a finished run (its .trials.csv)")
    args = parser.parse_args(argv)
    if args.table:
        trials = pd.read_csv(args.table)
        print(summarise(trials).to_string(index=False, float_format=lambda v: f"{v:.5g}"))
        if args.base:
            print(paired(trials, args.base).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    variants = VARIANTS.get(args.variants) or yaml.safe_load(Path(args.variants).read_text())
    if args.only:
        variants = {k: v for k, v in variants.items() if k in args.only}
    base_override = {"protocol": {"trials": args.trials, "chunk_size": args.trials},
                     "grid": {"n": "auto", "n_points": args.n_points}}
    if args.m is not None:
        base_override["grid"]["m"] = args.m or None
    if args.set:
        base_override = deep_merge(base_override, yaml.safe_load(args.set))
    base = load_config(args.config, base_override)
    base = {**base, "properties": {args.property: copy.deepcopy(base["properties"][args.property])}}
    work = Path(args.work) / f"{base['study']}_{args.property}"
    work.mkdir(parents=True, exist_ok=True)
    inputs = _prepare(base, args.property, work)
    transfer = "multitask" if base["transfer"] == "multitask" else "finetune"
    methods = args.methods or ["direct", transfer, "simulation"]
    frames = []
    for name, override in variants.items():
        config = deep_merge(copy.deepcopy(base), override)
        frames.append(run_variant(config, args.property, inputs, work, name, methods))
    trials = pd.concat(frames, ignore_index=True)
    table = summarise(trials)
    pd.set_option("display.width", 200)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.5g}"))
    if args.base:
        print(paired(trials, args.base).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    out = Path(args.out) if args.out else work / f"{args.variants if args.variants in VARIANTS else Path(args.variants).stem}.json"
    out.write_text(json.dumps({"config": args.config, "property": args.property, "trials": args.trials,
                               "variants": variants, "table": table.to_dict(orient="records")}, indent=1, default=str))
    trials.to_csv(out.with_suffix(".trials.csv"), index=False)
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
