"""How to spend the cores: one job with T threads, or T one-thread jobs at once?

    python benchmarks/threads.py            # chunk size 100, 300 epochs, 3 repeats (~3-5 min on 2 cores)
    python benchmarks/threads.py --quick

Runs the same work, a chunk of C trials of the engine (polymer density shape, as engine_throughput.py),
in the two layouts side by side and reports total trials per second of each, for choosing the rules'
``threads`` (config ``resources: {transfer: {threads: N}}``) and Snakemake's ``--cores``:

* ``1 x T``: one process with ``torch.set_num_threads(T)`` trains the chunk;
* ``T x 1``: T processes with one thread each train one chunk each, at the same time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_name, load_average, median, write_json  # noqa: E402

WORKER = r"""
import sys, time, json, torch
torch.set_num_threads(int(sys.argv[1]))
from sim2real_scaling.training.ensemble import MLPSpec, OptimizerSettings, init_parameters, train_ensemble
C, epochs, rows, d = (int(a) for a in sys.argv[2:6])
g = torch.Generator().manual_seed(0)
X, y = torch.randn(rows, d, generator=g), torch.randn(rows, generator=g)
m = round(0.8 * rows)
idx = torch.stack([torch.randperm(rows, generator=g)[:m] for _ in range(C)])
init = init_parameters(MLPSpec(d, (64, 32)), list(range(C)))
train_ensemble([p[:2] for p in init], X, y, idx[:2], OptimizerSettings(epochs=3))
print("ready", flush=True)
sys.stdin.readline()
t = time.perf_counter()
train_ensemble(init, X, y, idx, OptimizerSettings(epochs=epochs))
print(json.dumps({"seconds": time.perf_counter() - t}), flush=True)
"""


def run_layout(processes: int, threads: int, args: argparse.Namespace) -> float:
    """Trials per second of ``processes`` workers with ``threads`` threads each, started together."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-c", WORKER, str(threads), str(args.chunk), str(args.epochs), str(args.rows),
           str(args.d_in)]
    procs = [subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(processes)]
    for p in procs:  # imports and warm-up done everywhere before the clock starts
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    start = time.perf_counter()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        out, _ = p.communicate()
        json.loads(out.strip().splitlines()[-1])
    return processes * args.chunk / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cores", type=int, default=os.cpu_count())
    ap.add_argument("--chunk", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--rows", type=int, default=223)
    ap.add_argument("--d-in", type=int, default=190)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="100 epochs, 2 repeats")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.quick:
        args.epochs, args.repeats = 100, 2
    T = args.cores
    print(f"cpu: {cpu_name()}, {os.cpu_count()} cores; load average {load_average()}")
    rows = []
    for r in range(args.repeats):
        one_by_t = run_layout(1, T, args)
        t_by_one = run_layout(T, 1, args)
        rows.append((one_by_t, t_by_one))
        print(f"  repeat {r + 1}: 1 x {T}: {one_by_t:.2f} trials/s, {T} x 1: {t_by_one:.2f} trials/s "
              f"(load {load_average()})", flush=True)
    a, b = median([x[0] for x in rows]), median([x[1] for x in rows])
    ratio = median([x[1] / x[0] for x in rows])
    print(f"\nchunk {args.chunk}, {args.epochs} epochs, medians of {args.repeats}: 1 job x {T} threads "
          f"{a:.2f} trials/s; {T} jobs x 1 thread {b:.2f} trials/s; ratio ({T} x 1) / (1 x {T}) = {ratio:.2f}")
    write_json({"cores": T, "args": vars(args), "load_average_end": load_average(), "one_by_T": a,
                "T_by_one": b, "ratio": ratio, "repeats": rows}, args.json)


if __name__ == "__main__":
    main()
