"""Target 4: size of the DAG of a paper-scale study and the time of ``snakemake -n`` on it.

    python benchmarks/dag_scale.py                  # chunk sizes 500, 100 and 1 (one job per trial)
    python benchmarks/dag_scale.py --chunks 500 100 --repeats 3

The paper-scale study: config/polymer.yaml with a 4th property (thermal conductivity; for the dry-run it
points at existing tables, nothing is trained), 10 n values, 500 trials, transfer and direct, and the 2-D
grid (4 values of m) on every property. The m values are looped inside each training job (one ensemble per
m), so the 2-D grid adds no job. For each chunk size: the number of jobs per rule, the jobs per
(property, n) group, and the median wall time of ``snakemake -n`` (DAG building included; nothing runs).
"""

from __future__ import annotations

import argparse
import copy
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_name, load_average, median, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def paper_config(chunk: int, trials: int) -> Path:
    config = yaml.safe_load((ROOT / "config/polymer.yaml").read_text())
    config = copy.deepcopy(config)
    config["study"] = f"perf_dag_c{chunk}"
    props = config["properties"]
    if "thermal_conductivity" not in props:
        template = next(iter(props.values()))
        props["thermal_conductivity"] = {**copy.deepcopy(template), "unit": "W/(m K)"}
    for prop in props.values():
        prop["grid_m"] = [0.125, 0.25, 0.5, 1.0]
    config["grid"].update({"n": "auto", "n_points": 10})
    config["protocol"].update({"trials": trials, "chunk_size": chunk})
    path = ROOT / "results" / f"perf_dag_c{chunk}.config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def job_stats(output: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    block = output.split("Job stats:")[-1]
    for line in block.splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, nargs="+", default=[500, 100, 1])
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    print(f"cpu: {cpu_name()}; load average {load_average()}")
    results = []
    for chunk in args.chunks:
        path = paper_config(chunk, args.trials)
        cmd = [sys.executable, "-m", "snakemake", "-n", "--nolock", "--configfile", str(path)]
        times, cpu, out = [], [], ""
        for _ in range(args.repeats if chunk > 1 else 1):
            start, cpu0 = time.perf_counter(), children_cpu()
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            times.append(time.perf_counter() - start)
            cpu.append(children_cpu() - cpu0)
            out = proc.stdout + proc.stderr
            if proc.returncode:
                print(out[-3000:])
                raise SystemExit(f"snakemake -n failed for chunk size {chunk}")
        stats = job_stats(out)
        config = yaml.safe_load(path.read_text())
        groups = len(config["properties"]) * config["grid"]["n_points"]
        per_group = stats.get("transfer", 0) / groups
        rec = {"chunk_size": chunk, "dry_run_s": median(times), "dry_run_all_s": times,
               "dry_run_cpu_s": median(cpu), "jobs": stats,
               "transfer_jobs_per_property_n": per_group, "load_average": load_average()}
        results.append(rec)
        print(f"chunk {chunk:>4}: {stats.get('total', 0):>6} jobs ({', '.join(f'{k} {v}' for k, v in stats.items() if k != 'total')}); "
              f"transfer jobs per (property, n): {per_group:g}; snakemake -n {median(times):.1f} s wall, "
              f"{median(cpu):.1f} s CPU (median of {len(times)}; load {rec['load_average']})", flush=True)
    write_json({"trials": args.trials, "results": results}, args.json)


if __name__ == "__main__":
    main()
