"""Target 3 and 5: wall time of a whole study, the share of it that is not training, peak memory per job.

    python benchmarks/study_walltime.py                                  # config/polymer.yaml, 2 cores
    python benchmarks/study_walltime.py --descriptor rdkit               # ... with RDKit descriptors
    python benchmarks/study_walltime.py --chunk-size 1 --trials 4        # chunk-size-1 subset (extrapolated)
    python benchmarks/study_walltime.py --configfile config/config.yaml --n-points 10 --trials 500 --quick

Runs ``snakemake --cores C`` on a copy of the study config (under its own study name, so nothing of the
real study is touched; descriptors come from a shared cache, computed once), watching every job process
(peak RSS, CPU seconds) and reading the engine's own timings from the job logs. Reports

* wall time of the whole run, and per rule: jobs, job-seconds, peak RSS;
* training seconds (the engine's ``train_ensemble`` calls, from the progress lines of the job logs) and the
  share of ``wall x cores`` that is *not* training: process start-up and imports, data loading, I/O,
  scheduling, the serial steps (prepare, featurize, aggregate, fit, report) and idle cores;
* with ``--trials T --chunk-size 1``: the per-trial cost of one-job-per-trial, extrapolated to the
  config's full number of trials.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import resource
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_name, load_average, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TRAIN_LINE = re.compile(r"\] epoch (\d+)/(\d+) .*\(([\d.]+) s(?:, ([\d.]+) s CPU)?\)")
STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
START = re.compile(r"^(?:local)?rule (\w+):$")
JOBID = re.compile(r"^\s+jobid: (\d+)$")
FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)")
STAGE_DONE = re.compile(r"INFO rule (\w+): stage done in ([\d.]+) s")
ANALYSIS_RULES = ("aggregate", "fit", "collect", "report", "check_study", "wiedemann_franz")


class Watcher(threading.Thread):
    """Samples the process tree under snakemake: peak RSS and CPU seconds of every job script."""

    def __init__(self, root_pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root_pid, interval
        self.jobs: dict[int, dict[str, float | str]] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            root = psutil.Process(self.root)
        except psutil.Error:
            return
        while not self.stop.is_set():
            try:
                children = root.children(recursive=True)
            except psutil.Error:
                break
            for p in children:
                try:
                    cmd = " ".join(p.cmdline())
                    match = re.search(r"\.snakemake/scripts/tmp\w+\.(\w+)\.py", cmd)
                    if not match:
                        continue
                    rss = p.memory_info().rss
                    cpu = sum(p.cpu_times()[:2])
                except psutil.Error:
                    continue
                rec = self.jobs.setdefault(p.pid, {"script": match.group(1), "rss": 0.0, "cpu": 0.0})
                rec["rss"] = max(float(rec["rss"]), rss)
                rec["cpu"] = max(float(rec["cpu"]), cpu)
            self.stop.wait(self.interval)


def parse_snakemake_log(text: str) -> list[dict[str, object]]:
    """Jobs with rule, start and end times (1 s resolution) from snakemake's own log."""
    jobs: dict[str, dict[str, object]] = {}
    stamp: datetime | None = None
    pending_rule: str | None = None
    for line in text.splitlines():
        if m := STAMP.match(line.strip()):
            stamp = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
            continue
        if m := START.match(line):
            pending_rule = m.group(1)
            continue
        if pending_rule and (m := JOBID.match(line)):
            jobs[m.group(1)] = {"rule": pending_rule, "start": stamp}
            pending_rule = None
            continue
        if m := FINISHED.match(line):
            if m.group(1) in jobs:
                jobs[m.group(1)]["end"] = stamp
    return [j for j in jobs.values() if "end" in j]


def training_seconds(log_dir: Path) -> tuple[float, float, int]:
    """Wall and CPU seconds summed over the engine's training calls (the last progress line of each)."""
    wall, cpu, calls = 0.0, 0.0, 0
    for path in log_dir.rglob("*.log"):
        for line in path.read_text(errors="replace").splitlines():
            m = TRAIN_LINE.search(line)
            if m and m.group(1) == m.group(2):
                wall += float(m.group(3))
                cpu += float(m.group(4) or m.group(3))
                calls += 1
    return wall, cpu, calls


def stage_seconds(log_dir: Path) -> dict[str, float]:
    """Per rule: seconds its jobs spent in their stage, after start-up and imports (the 'stage done' lines)."""
    out: dict[str, float] = defaultdict(float)
    for path in log_dir.rglob("*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if m := STAGE_DONE.search(line):
                out[m.group(1)] += float(m.group(2))
    return dict(out)


def derived_config(args: argparse.Namespace, study: str) -> Path:
    config = yaml.safe_load((ROOT / args.configfile).read_text())
    config = copy.deepcopy(config)
    config["study"] = study
    if args.descriptor:
        config["descriptor"] = {"set": args.descriptor}
    config.setdefault("descriptor", {})["cache_dir"] = str(ROOT / "results" / ".descriptor_cache")
    protocol = config.setdefault("protocol", {})
    if args.trials:
        protocol["trials"] = args.trials
    if args.chunk_size:
        protocol["chunk_size"] = args.chunk_size
    if args.n_points:
        config.setdefault("grid", {})["n_points"] = args.n_points
    if args.epochs_scale != 1.0:
        for section in ("pretrain", "finetune", "direct"):
            opt = config.setdefault("model", {}).setdefault(section, {})
            opt["epochs"] = max(1, int(opt.get("epochs", 300) * args.epochs_scale))
    if args.quick:
        config.setdefault("analysis", {}).update({"bootstrap_resamples": 200, "fit_bootstrap": 0})
    path = ROOT / "results" / f"{study}.config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configfile", default="config/polymer.yaml")
    ap.add_argument("--descriptor", default=None, help="replace the descriptor section by {set: THIS}")
    ap.add_argument("--cores", type=int, default=os.cpu_count())
    ap.add_argument("--trials", type=int, default=None)
    ap.add_argument("--chunk-size", type=int, default=None)
    ap.add_argument("--n-points", type=int, default=None)
    ap.add_argument("--epochs-scale", type=float, default=1.0, help="scale every epochs setting (for tests)")
    ap.add_argument("--study-name", default=None, help="default: perf_<config stem>_c<chunk size>")
    ap.add_argument("--targets", nargs="*", default=[], help="snakemake targets (default: the whole study)")
    ap.add_argument("--quick", action="store_true", help="fewer bootstrap resamples in the analysis")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    base = yaml.safe_load((ROOT / args.configfile).read_text())
    full_trials = int(base.get("protocol", {}).get("trials", 500))
    chunk = args.chunk_size or base.get("protocol", {}).get("chunk_size", 100)
    study = args.study_name or f"perf_{Path(args.configfile).stem}_c{chunk}"
    config_path = derived_config(args, study)
    for folder in (ROOT / "results" / study, ROOT / "logs" / study):
        if folder.exists():
            subprocess.run(["rm", "-rf", str(folder)], check=True)
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(args.cores), "--configfile", str(config_path),
           "--nolock", *args.targets]
    load_start = load_average()
    print(f"cpu: {cpu_name()}, {os.cpu_count()} cores; load average {load_start}")
    print("running:", " ".join(cmd), flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watcher = Watcher(proc.pid)
    watcher.start()
    out, _ = proc.communicate()
    wall = time.perf_counter() - start
    watcher.stop.set()
    watcher.join()
    load_end = load_average()
    (ROOT / "results" / study).mkdir(parents=True, exist_ok=True)
    (ROOT / "results" / study / "snakemake_output.log").write_text(out)
    if proc.returncode:
        print(out[-5000:])
        raise SystemExit(f"snakemake failed ({proc.returncode})")
    jobs = parse_snakemake_log(out)
    per_rule: dict[str, dict[str, float]] = defaultdict(lambda: {"jobs": 0, "job_seconds": 0.0})
    for j in jobs:
        r = per_rule[str(j["rule"])]
        r["jobs"] += 1
        r["job_seconds"] += (j["end"] - j["start"]).total_seconds()  # type: ignore[operator]
    script_rules = {"trials": ("transfer", "direct"), "pretrain": ("pretrain",), "multitask": ("multitask",)}
    by_script: dict[str, dict[str, float]] = defaultdict(lambda: {"peak_rss_mb": 0.0, "cpu_seconds": 0.0, "jobs": 0})
    for rec in watcher.jobs.values():
        s = by_script[str(rec["script"])]
        s["peak_rss_mb"] = max(s["peak_rss_mb"], float(rec["rss"]) / 2**20)
        s["cpu_seconds"] += float(rec["cpu"])
        s["jobs"] += 1
    train_s, train_cpu, calls = training_seconds(ROOT / "logs" / study)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # snakemake and every job it ran
    cpu_all = usage.ru_utime + usage.ru_stime
    capacity = wall * args.cores
    share = 1 - train_s / capacity
    job_seconds = sum(r["job_seconds"] for r in per_rule.values())
    print(f"\nstudy {study}: wall {wall:.1f} s ({wall / 60:.2f} min) on {args.cores} cores; load average at end "
          f"{load_end}")
    print(f"{'rule':<14}{'jobs':>6}{'job-s':>10}")
    for rule, r in sorted(per_rule.items(), key=lambda kv: -kv[1]["job_seconds"]):
        print(f"{rule:<14}{int(r['jobs']):>6}{r['job_seconds']:>10.0f}")
    print("\njob scripts watched (peak RSS of the largest process, CPU seconds summed):")
    for script, s_ in sorted(by_script.items()):
        print(f"  {script:<12} {int(s_['jobs']):>5} processes  peak RSS {s_['peak_rss_mb']:8.1f} MB  "
              f"CPU {s_['cpu_seconds']:8.1f} s")
    print(f"\ntraining (engine, {calls} training calls): {train_s:.1f} s wall, {train_cpu:.1f} s CPU; jobs in all: "
          f"{job_seconds:.0f} job-s; capacity wall x cores: {capacity:.0f} core-s; CPU of snakemake and all jobs: "
          f"{cpu_all:.0f} s")
    print(f"share of wall x cores that is not training: {share:.1%} "
          f"(in jobs but not training: {(job_seconds - train_s) / capacity:.1%}; no job running on a core: "
          f"{(capacity - job_seconds) / capacity:.1%})")
    print(f"share of CPU time that is not training (independent of other load): {1 - train_cpu / cpu_all:.1%}")
    stages = stage_seconds(ROOT / "logs" / study)
    analysis_s = sum(v for k, v in stages.items() if k in ANALYSIS_RULES)
    overhead = capacity - train_s - analysis_s
    print("stage seconds (in-process, after start-up and imports): "
          + ", ".join(f"{k} {v:.1f}" for k, v in sorted(stages.items())))
    print(f"  the analysis' own work (aggregate: bootstrap CIs; fit: law fits, bootstrap refits, figures; collect, "
          f"report, check): {analysis_s:.1f} s = {analysis_s / capacity:.1%} of wall x cores")
    print(f"  the rest (process start-up and imports of every job, preparation, loading, evaluation and writing in "
          f"the training jobs, scheduling, idle cores): {overhead:.0f} core-s = {overhead / capacity:.1%}")
    trials = args.trials or full_trials
    result = {"study": study, "config": str(config_path), "cores": args.cores, "wall_s": wall,
              "load_average_start_end": [load_start, load_end], "per_rule": per_rule, "scripts": by_script,
              "training_s": train_s, "training_cpu_s": train_cpu, "cpu_all_s": cpu_all, "train_calls": calls,
              "job_seconds": job_seconds, "non_training_share": share,
              "non_training_cpu_share": 1 - train_cpu / cpu_all, "trials": trials, "chunk_size": chunk,
              "stage_seconds": stages, "analysis_work_s": analysis_s, "analysis_work_share": analysis_s / capacity,
              "overhead_share": overhead / capacity}
    if trials < full_trials:
        # Trial jobs scale with the number of trials (chunk size fixed), the others do not. Two estimates:
        # from job durations (wall, as loaded as this run was) and from CPU seconds (what an idle machine
        # with these cores would need, scheduler overhead for the larger DAG not included).
        scale = full_trials / trials
        trial_rules = ("transfer", "direct", "multitask")
        per_trial = sum(r["job_seconds"] for k, r in per_rule.items() if k in trial_rules)
        fixed = job_seconds - per_trial
        est = (fixed + per_trial * scale) / args.cores
        trial_cpu = sum(v["cpu_seconds"] for k, v in by_script.items() if k in ("trials", "multitask"))
        est_cpu = (cpu_all - trial_cpu + trial_cpu * scale) / args.cores
        print(f"\nextrapolated to {full_trials} trials: trial jobs {per_trial:.0f} job-s x {scale:.0f} + other jobs "
              f"{fixed:.0f} job-s, on {args.cores} cores = {est:.0f} s ({est / 60:.1f} min, {est / 3600:.2f} h)")
        print(f"from CPU seconds: trial jobs {trial_cpu:.0f} s x {scale:.0f} + the rest {cpu_all - trial_cpu:.0f} s, "
              f"on {args.cores} idle cores = {est_cpu:.0f} s ({est_cpu / 60:.1f} min, {est_cpu / 3600:.2f} h)")
        result.update(extrapolated_wall_s=est, extrapolated_cpu_wall_s=est_cpu)
    # the same study on an idle machine: its CPU seconds spread over the cores (serial steps not spread)
    parallel_cpu = sum(v["cpu_seconds"] for k, v in by_script.items() if k in ("trials", "pretrain", "multitask"))
    serial_cpu = cpu_all - parallel_cpu  # snakemake itself and the one-off steps (counted as not spread)
    idle_est = serial_cpu + parallel_cpu / args.cores
    print(f"\nCPU seconds: {cpu_all:.0f} in all, of which training {train_cpu:.0f}, other parallel jobs "
          f"{parallel_cpu - train_cpu:.0f}, serial steps and snakemake {serial_cpu:.0f}; on {args.cores} idle cores "
          f"about {idle_est:.0f} s ({idle_est / 60:.1f} min)")
    result["idle_machine_estimate_s"] = idle_est
    write_json(result, args.json)


if __name__ == "__main__":
    main()
