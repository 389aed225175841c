"""Why the engine's FLOP fraction is what it is: its dominant kernel alone, against the dense-matmul limit.

    python benchmarks/layer1_kernel.py            # ~1 min
    python benchmarks/layer1_kernel.py --models 100 --rows 223 --d-in 190 --hidden 64

Layer 1 holds about 80 % of a trial's training FLOPs (190 x 64 of the 190-64-32-1 network). Timed side by
side on one thread, repeated (medians), as FLOP/s per FLOP the training needs:

* ``bmm``: the engine's batched product, model e's own m train rows (m x kp) @ (kp x h), for E models;
* ``bmm-grad``: the weight-gradient product (kp x m) @ (m x h) per model;
* ``one GEMM``: the alternative of one large product over all N rows and all models at once,
  X (N x kp) @ [W_1 ... W_E] (kp x E h), counted per needed FLOP (its N - m extra rows per model are waste);
* ``matmul``: the 2048 x 2048 reference of engine_throughput.py.

Then the share of the engine's own time per operator (``torch.profiler``, one chunk of ``--models`` trials
of the 190-64-32-1 network, 100 full-batch epochs): how much is products, the Adam update, the rest.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import device_name, load_average, matmul_flops, median, write_json  # noqa: E402

from sim2real_scaling.training.ensemble import padded_width  # noqa: E402


def rate(fn, flop: float, repeats: int = 20) -> float:  # noqa: ANN001
    fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return flop * repeats / (time.perf_counter() - t0)


def engine_profile(E: int, N: int, d_in: int, h: int) -> dict[str, float]:
    """Share of self CPU time per torch operator while the engine trains E models (top 8, the rest pooled)."""
    from torch.profiler import ProfilerActivity, profile

    from sim2real_scaling.training.ensemble import MLPSpec, OptimizerSettings, init_parameters, train_ensemble

    g = torch.Generator().manual_seed(1)
    X, y = torch.randn(N, d_in, generator=g), torch.randn(N, generator=g)
    m = int(round(0.8 * N))
    rows = torch.stack([torch.randperm(N, generator=g)[:m] for _ in range(E)])
    init = init_parameters(MLPSpec(d_in=d_in, hidden=(h, h // 2)), list(range(E)))
    train_ensemble(init, X, y, rows, OptimizerSettings(epochs=5))  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train_ensemble(init, X, y, rows, OptimizerSettings(epochs=100))
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    shares = {e.key: e.self_cpu_time_total / total for e in events[:8]}
    shares["(all other operators)"] = 1.0 - sum(shares.values())
    return shares


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=int, default=100)
    ap.add_argument("--rows", type=int, default=223, help="target rows N (80 %% of them train: m)")
    ap.add_argument("--d-in", type=int, default=190)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    E, N, h = args.models, args.rows, args.hidden
    m, kp = int(round(0.8 * N)), padded_width(args.d_in)
    g = torch.Generator().manual_seed(0)
    x, W, out = torch.randn(E, m, kp, generator=g), torch.randn(E, kp, h, generator=g), torch.empty(E, m, h)
    G, gW = torch.randn(E, m, h, generator=g), torch.empty(E, kp, h)
    X, Wcat, big = torch.randn(N, kp, generator=g), torch.randn(kp, E * h, generator=g), torch.empty(N, E * h)
    needed = 2.0 * E * m * args.d_in * h
    xt = x.transpose(1, 2)
    kernels = {
        "bmm": lambda: torch.bmm(x, W, out=out),
        "bmm-grad": lambda: torch.bmm(xt, G, out=gW),
        "one GEMM": lambda: torch.mm(X, Wcat, out=big),
    }
    print(f"device: {device_name(torch.device('cpu'))}, 1 thread; load average {load_average()}")
    print(f"{E} models, m = {m} of N = {N} rows, layer 1 {args.d_in} (+bias, padded {kp}) x {h}")
    results: dict[str, list[float]] = {k: [] for k in [*kernels, "matmul"]}
    for r in range(args.repeats):
        for name, fn in kernels.items():
            results[name].append(rate(fn, needed))
        results["matmul"].append(matmul_flops(torch.device("cpu"))[0])
        print(f"  repeat {r + 1}/{args.repeats}: " + ", ".join(f"{k} {v[-1] / 1e9:.1f}" for k, v in results.items())
              + " GFLOP/s", flush=True)
    ref = median(results["matmul"])
    print(f"\n{'kernel':>10}  GFLOP/s (per needed FLOP)  fraction of matmul")
    summary = {}
    for name, values in results.items():
        summary[name] = {"gflops": median(values) / 1e9, "fraction": median(values) / ref}
        print(f"{name:>10}  {median(values) / 1e9:24.1f}  {median(values) / ref:18.2f}")
    shares = engine_profile(E, N, args.d_in, h)
    print("\nengine, self CPU time per operator:")
    for name, share in shares.items():
        print(f"  {name:28s} {100 * share:5.1f} %")
    write_json({"engine_profile_share": shares, "models": E, "rows": N, "m": m, "d_in": args.d_in, "kp": kp, "hidden": h,
                "load_average_end": load_average(), "results": summary,
                "raw": {k: [v / 1e9 for v in vals] for k, vals in results.items()}}, args.json)


if __name__ == "__main__":
    main()
