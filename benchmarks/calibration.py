"""Calibration of the intervals, measured: how often does the 90% interval cover the truth?

Simulated studies are drawn from known laws with the design's three noise sources
(:mod:`sim2real_scaling.analysis.simulate`: a split effect shared by every n, m and method of a trial, a pretraining
effect per replicate and n, fine-tuning noise), written as trials.csv (with ``replicate``) and summary.csv, and
run through the command-line tool exactly as a user runs it:

    sim2real-scaling fit SUMMARY --trials TRIALS --json      (the 1-D law: alpha and C)
    sim2real-scaling rate SUMMARY --trials TRIALS --json     (a 2-D study: simulations worth one experiment)

For every setting it prints the coverage of the 90% intervals (fraction of studies whose interval contains the
true value), the mean interval width, and the width the estimates' own spread calls for (2 x 1.645 x their SD
across studies): a calibrated interval covers ~90% at a width ratio ~1. Settings vary the number of pretraining
replicates (1, 4, one per trial) so the default of ``protocol.pretrain_replicates`` can be chosen by measurement.

    python benchmarks/calibration.py                          # 1-D law and surface, 100 studies per setting
    python benchmarks/calibration.py --kind law --studies 200 --replicates 1 4 per_trial
    python benchmarks/calibration.py --json calibration.json  # also write the numbers

Run it with ``nice -n 10`` on a shared machine: each 1-D study takes ~0.3 s, each 2-D study ~1.5 s.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sim2real_scaling.analysis.simulate import SimulatedLaw, simulate_trials, true_rate
from sim2real_scaling.analysis.summary import summarize
from sim2real_scaling.cli import main

N_LAW = np.geomspace(100, 1e4, 10).round()
M_LAW = [100]
N_SURFACE = np.geomspace(100, 1e4, 6).round()
M_SURFACE = [20, 40, 80, 160]
LAW = SimulatedLaw(A=0.3, alpha=0.3, B=0.0, beta=0.0, eps=0.1, split_sd=0.02, pretrain_sd=0.002, noise_sd=0.003)
SURFACE = SimulatedLaw(A=0.5, alpha=0.3, B=0.3, beta=0.3, eps=0.1, split_sd=0.02, pretrain_sd=0.002, noise_sd=0.003)


def run_cli(*argv: str) -> dict:
    """One CLI call, its JSON answer (the exit status must be 0)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([*argv, "--json"])
    if rc != 0:
        raise RuntimeError(f"sim2real-scaling {' '.join(argv)} failed ({rc}): {err.getvalue()}")
    return json.loads(out.getvalue())


def _write_study(folder: Path, law: SimulatedLaw, n: np.ndarray, m: list[int], trials: int, replicates: int | None,
                 seed: int) -> tuple[Path, Path]:
    table = simulate_trials(law, n, m, trials, replicates, seed)
    paths = (folder / "summary.csv", folder / "trials.csv")
    summarize(table, seed=seed).to_csv(paths[0], index=False)
    table.to_csv(paths[1], index=False)
    return paths


def _tally(name: str, truth: float, estimates: list[float], intervals: list[tuple[float, float]]) -> dict:
    est = np.array(estimates, dtype=float)
    lo = np.array([i[0] for i in intervals], dtype=float)
    hi = np.array([i[1] for i in intervals], dtype=float)
    covered = (lo <= truth) & (truth <= hi)
    width = hi - lo
    needed = 2 * 1.6448536269514722 * float(np.nanstd(est, ddof=1))
    finite = np.isfinite(width)
    return {"quantity": name, "truth": truth, "studies": int(est.size), "coverage": float(np.mean(covered)),
            "mean_width": float(np.mean(width[finite])) if finite.any() else math.nan,
            "median_width": float(np.median(width[finite])) if finite.any() else math.nan,
            "needed_width": needed,
            "width_ratio": float(np.median(width[finite]) / needed) if finite.any() and needed > 0 else math.nan,
            "infinite_intervals": int((~finite).sum())}


def calibrate_law(studies: int, trials: int, replicates: int | None, seed0: int = 0,
                  law: SimulatedLaw = LAW) -> list[dict]:
    """Coverage of alpha and C of the 1-D law over simulated studies."""
    alpha, c, a_ci, c_ci = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for s in range(studies):
            summary, table = _write_study(folder, law, N_LAW, M_LAW, trials, replicates, seed0 + s)
            fit = run_cli("fit", str(summary), "--trials", str(table))["fit"]
            alpha.append(fit["alpha"])
            c.append(fit["C"])
            a_ci.append(tuple(v if v is not None else math.nan for v in fit["alpha_ci"]))
            c_ci.append(tuple(v if v is not None else math.nan for v in fit["C_ci"]))
    _, a, C = law.law_at_m(M_LAW[0])
    return [_tally("alpha", a, alpha, a_ci), _tally("C", C, c, c_ci)]


def calibrate_rate(studies: int, trials: int, replicates: int | None, seed0: int = 0,
                   law: SimulatedLaw = SURFACE) -> list[dict]:
    """Coverage of the marginal rate of substitution (simulations worth one experiment) at the largest (n, m)."""
    est, ci = [], []
    truth = true_rate(law, float(N_SURFACE.max()), float(max(M_SURFACE)))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for s in range(studies):
            summary, table = _write_study(folder, law, N_SURFACE, M_SURFACE, trials, replicates, seed0 + s)
            rate = run_cli("rate", str(summary), "--trials", str(table))["rate"]
            est.append(rate["sims_per_experiment"])
            ci.append(tuple(math.inf if v is None else v for v in rate["sims_per_experiment_ci"]))
    return [_tally("simulations per experiment", truth, est, ci)]


def _label(replicates: str) -> int | None:
    return None if replicates == "per_trial" else int(replicates)


def main_cli(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kind", choices=("law", "surface", "both"), default="both")
    p.add_argument("--studies", type=int, default=100, help="simulated studies per setting (default: 100)")
    p.add_argument("--trials", type=int, default=200, help="trials per study (default: 200)")
    p.add_argument("--surface-trials", type=int, default=None, help="trials per 2-D study (default: --trials)")
    p.add_argument("--replicates", nargs="+", default=["1", "4", "per_trial"],
                   help="pretraining replicates per study: integers or per_trial (default: 1 4 per_trial)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    results = []
    for reps in args.replicates:
        kinds = ["law", "surface"] if args.kind == "both" else [args.kind]
        for kind in kinds:
            start = time.perf_counter()
            if kind == "law":
                rows = calibrate_law(args.studies, args.trials, _label(reps))
            else:
                rows = calibrate_rate(args.studies, args.surface_trials or args.trials, _label(reps))
            elapsed = time.perf_counter() - start
            for r in rows:
                r.update(kind=kind, replicates=reps, trials=args.surface_trials or args.trials if kind == "surface"
                         else args.trials, seconds=round(elapsed, 1))
                results.append(r)
                print(f"{kind:7s} replicates={reps:9s} {r['quantity']:27s} coverage {r['coverage']:.0%} "
                      f"({r['studies']} studies)  width {r['median_width']:.4g} median / {r['needed_width']:.4g} "
                      f"needed = {r['width_ratio']:.2f}x", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main_cli())
