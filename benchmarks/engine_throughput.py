"""Target 1 and 2: trial throughput of the vectorised engine, and its FLOP/s against a dense matmul.

    python benchmarks/engine_throughput.py                 # CPU, chunk sizes 1 10 100 500 (~7 min; --repeats 5: ~12 min)
    python benchmarks/engine_throughput.py --quick         # ~1-2 min
    python benchmarks/engine_throughput.py --device cuda   # on a GPU (prints the device name)

One *trial* = one network trained on its own random 80 % of the target rows for EPOCHS full-batch Adam
steps, then evaluated on the other 20 % (the polymer density shape by default: 223 target rows, 190
descriptors, hidden 64-32). Measured side by side, in one run, repeated (medians reported):

* engine(C):  ``sim2real_scaling.training.ensemble.train_ensemble`` training C trials at once (chunk size C);
* (a) plain:  ``ensemble.train_single`` one model at a time in this process: same data, same initial
  weights, same epochs, full batch (the engine's predictions are checked against it);
* (b) process-per-trial: a fresh ``python benchmarks/_one_trial.py`` per trial (start-up, imports, data
  loading included) training with a shuffling mini-batch ``DataLoader`` (batch 32) for the same epochs;
  one at a time by default (``--parallel-b``), with the same threads as the others;
* matmul: FLOP/s of a large dense float32 matrix product on the same device, measured before and after
  each repeat; the engine's training FLOP/s (forward + backward, counted as in ``_common.mlp_train_flops``)
  is reported as a fraction of it.

``--anchors`` compares the engine instead with the strongest standard ways to train the same ensemble
(``_anchors.py``): stacked parameters with autograd and fused ``torch.optim.Adam`` with the loss under
``torch.compile``, and ``torch.func.stack_module_state`` + ``vmap(functional_call)``; all three train with
model selection on (a validation check every 5 epochs, each model's best parameters kept), 100 models x 300
epochs by default, in turn within each repeat (the order rotates), and must give the same models:

    python benchmarks/engine_throughput.py --anchors --repeats 5 --json docs/performance/anchors_cpu.json
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (device_name, load_average, machine_record, matmul_flops, median,  # noqa: E402
                      mlp_train_flops, sync, write_json)

from sim2real_scaling.training.ensemble import (MLPSpec, OptimizerSettings, init_parameters, predict,  # noqa: E402
                                       resolve_device, train_ensemble, train_single)

HERE = Path(__file__).resolve().parent


def make_data(rows: int, d_in: int, n_trials: int, train_fraction: float, seed: int = 0):
    g = np.random.default_rng(seed)
    X = g.normal(size=(rows, d_in)).astype(np.float32)
    w = g.normal(size=d_in) / np.sqrt(d_in)
    y = (np.tanh(X @ w) + 0.1 * g.normal(size=rows)).astype(np.float32)
    m = int(round(train_fraction * rows))
    perms = np.stack([np.random.default_rng([seed, t]).permutation(rows) for t in range(n_trials)])
    return X, y, perms[:, :m].copy(), perms[:, m:].copy()


def anchors(args: argparse.Namespace) -> None:
    """Engine vs compiled autograd vs vmap, model selection on in all three (see the module docstring)."""
    from _anchors import train_compiled, train_vmap

    from sim2real_scaling.training.ensemble import Checkpoints

    device = resolve_device(args.device)
    torch.set_num_threads(max(1, args.threads))
    hidden = tuple(int(h) for h in args.hidden.split(","))
    spec = MLPSpec(d_in=args.d_in, hidden=hidden)
    E = args.models
    X_np, y_np, train_np, test_np = make_data(args.rows, args.d_in, E, 0.8)
    # validation: the first fifth of each model's training rows (as a hold-out does), trained on the rest
    v = train_np.shape[1] // 5
    val_np, fit_np = train_np[:, :v].copy(), train_np[:, v:].copy()
    X, y = torch.from_numpy(X_np).to(device), torch.from_numpy(y_np).to(device)
    fit, val, test = (torch.from_numpy(a).to(device) for a in (fit_np, val_np, test_np))
    init = [p.to(device) for p in init_parameters(spec, list(range(E)))]
    every = 5

    def engine() -> list[torch.Tensor]:
        def score(pred: np.ndarray, models: np.ndarray) -> np.ndarray:
            return np.abs(pred - y_np[val_np[models]]).mean(axis=1)

        cp = Checkpoints(every=every, mode="best", val_idx=val, score=score)
        params, _ = train_ensemble(init, X, y, fit, OptimizerSettings(epochs=args.epochs, lr=args.lr), checkpoints=cp)
        return params

    compiled_cache: dict = {}
    methods = {
        "engine": engine,
        "compiled": lambda: train_compiled(init, X, y, fit, val, args.epochs, args.lr, every, compiled_cache),
        "vmap": lambda: train_vmap(init, X, y, fit, val, args.epochs, args.lr, every),
    }
    print(f"device: {device_name(device)}; torch {torch.__version__}, {args.threads} threads; {E} models x "
          f"{args.epochs} epochs, {args.rows} rows ({fit.shape[1]} fit / {v} validation / {test.shape[1]} test), "
          f"d_in {args.d_in}, hidden {hidden}; validation every {every} epochs, best kept; load {load_average()}")
    # warm-up: torch.compile compiles here (not timed), lazy initialisation everywhere
    t0 = time.perf_counter()
    preds = {name: predict(fn(), X, test) for name, fn in methods.items()}
    print(f"warm-up (includes torch.compile): {time.perf_counter() - t0:.1f} s")
    agreement = {name: float((preds[name] - preds["engine"]).abs().max()) for name in ("compiled", "vmap")}
    names = list(methods)
    rows = []
    for r in range(args.repeats):
        rec = {}
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotate the order
            sync(device)
            t0 = time.perf_counter()
            methods[name]()
            sync(device)
            rec[name] = E / (time.perf_counter() - t0)
        rows.append(rec)
        print(f"  repeat {r + 1}/{args.repeats}: " + ", ".join(f"{k} {v:.2f} trials/s" for k, v in rec.items())
              + f"  (load {load_average()})", flush=True)
    table = {name: median([r[name] for r in rows]) for name in names}
    ratio = {name: median([r["engine"] / r[name] for r in rows]) for name in ("compiled", "vmap")}
    print(f"\nmedians of {args.repeats} repeats: " + ", ".join(f"{k} {v:.2f} trials/s" for k, v in table.items()))
    print("engine / compiled autograd: {compiled:.2f}x, engine / vmap: {vmap:.2f}x (per repeat, median)".format(**ratio))
    print("same models: max |prediction difference| vs the engine: "
          + ", ".join(f"{k} {v:.1e}" for k, v in agreement.items()))
    write_json({"machine": machine_record(device, args.threads), "args": vars(args), "repeats": rows,
                "trials_per_s": table, "engine_over": ratio, "max_abs_prediction_difference": agreement}, args.json)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads of every method (default 1: what each workflow job uses; a 2-core "
                         "machine runs 2 such jobs at once, see threads.py)")
    ap.add_argument("--chunks", default="1,10,100,500", help="chunk sizes to time (comma separated)")
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--rows", type=int, default=223, help="target rows (80 %% train, 20 %% test per trial)")
    ap.add_argument("--d-in", type=int, default=190, help="descriptor width")
    ap.add_argument("--hidden", default="64,32")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--min-trials", type=int, default=10,
                    help="trials timed per repeat for small chunk sizes and for baseline (a)")
    ap.add_argument("--process-trials", type=int, default=None,
                    help="trials timed per repeat for baseline (b) (default 3)")
    ap.add_argument("--batch-size", type=int, default=32, help="baseline (b)'s DataLoader batch size")
    ap.add_argument("--parallel-b", type=int, default=1,
                    help="baseline (b) processes run at once (default 1; the engine and (a) use one process)")
    ap.add_argument("--quick", action="store_true", help="100 epochs, chunk sizes 1 10 100, 2 repeats")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--anchors", action="store_true",
                    help="compare with compiled autograd and vmap (model selection on) instead")
    ap.add_argument("--models", type=int, default=100, help="--anchors: models trained together")
    args = ap.parse_args()
    if args.anchors:
        anchors(args)
        return
    if args.quick:
        args.epochs, args.repeats, args.min_trials = 100, 2, 5
        if args.chunks == "1,10,100,500":
            args.chunks = "1,10,100"
    device = resolve_device(args.device)
    threads = max(1, args.threads)
    torch.set_num_threads(threads)
    chunks = [int(c) for c in args.chunks.split(",")]
    hidden = tuple(int(h) for h in args.hidden.split(","))
    spec = MLPSpec(d_in=args.d_in, hidden=hidden)
    n_trials = max(chunks + [args.min_trials])
    X_np, y_np, train_np, test_np = make_data(args.rows, args.d_in, n_trials, 0.8)
    m = train_np.shape[1]
    X, y = torch.from_numpy(X_np).to(device), torch.from_numpy(y_np).to(device)
    train_all, test_all = torch.from_numpy(train_np).to(device), torch.from_numpy(test_np).to(device)
    init_all = init_parameters(spec, list(range(n_trials)))
    settings = OptimizerSettings(epochs=args.epochs, lr=args.lr)
    flops_required, flops_convention = mlp_train_flops(spec.widths, m, args.epochs)  # per trial
    k_a = args.min_trials
    parallel_b = max(1, args.parallel_b)
    k_b = args.process_trials or max(3, parallel_b)

    print(f"device: {device_name(device)}; torch {torch.__version__}, {threads} threads; load average "
          f"{load_average()}")
    print(f"trial: {args.rows} rows ({m} train / {args.rows - m} test), d_in {args.d_in}, hidden {hidden}, "
          f"{args.epochs} full-batch epochs; {flops_required / 1e9:.3f} GFLOP per trial (required; "
          f"{flops_convention / 1e9:.3f} by the 3 x forward convention)")

    def engine(C: int) -> tuple[dict[str, float], torch.Tensor]:
        """Seconds per trial (wall, CPU; evaluation included), training FLOP/s (wall, CPU), predictions."""
        calls = max(1, -(-k_a // C))
        wall = cpu = train_wall = train_cpu = 0.0
        first_pred = None
        for call in range(calls):
            sel = torch.arange(call * C, call * C + C) % n_trials
            init = [p[sel] for p in init_all]
            sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            params, _ = train_ensemble(init, X, y, train_all[sel.to(device)], settings)
            sync(device)
            t1, c1 = time.perf_counter(), time.process_time()
            pred = predict(params, X, test_all[sel.to(device)])
            _ = (pred - y[test_all[sel.to(device)]]).abs().mean(dim=1).cpu()
            sync(device)
            wall += time.perf_counter() - t0
            cpu += time.process_time() - c0
            train_wall += t1 - t0
            train_cpu += c1 - c0
            if first_pred is None:
                first_pred = pred[:k_a].cpu()
        n = calls * C
        return ({"wall": wall / n, "cpu": cpu / n, "flops": flops_required * n / train_wall,
                 "flops_cpu": flops_required * n / max(train_cpu, 1e-9)}, first_pred)

    def plain() -> tuple[dict[str, float], torch.Tensor]:
        preds = []
        sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        for t in range(k_a):
            model = train_single([p[t] for p in init_all], X, y, train_all[t], settings)
            with torch.no_grad():
                preds.append(model(X[test_all[t]]).squeeze(-1))
        sync(device)
        return ({"wall": (time.perf_counter() - t0) / k_a, "cpu": (time.process_time() - c0) / k_a},
                torch.stack(preds).cpu())

    tmp = tempfile.TemporaryDirectory()
    data_file = Path(tmp.name) / "data.npz"
    np.savez(data_file, X=X_np, y=y_np, train=train_np, test=test_np)

    def children_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def per_process() -> dict[str, float]:
        cmd = [sys.executable, str(HERE / "_one_trial.py"), str(data_file), "", str(args.epochs), str(args.lr),
               str(args.batch_size), args.hidden, str(threads), device.type]
        env = {**os.environ, "OMP_NUM_THREADS": cmd[7], "MKL_NUM_THREADS": cmd[7]}
        start, c0 = time.perf_counter(), children_cpu()
        for first in range(0, k_b, parallel_b):
            procs = []
            for t in range(first, min(first + parallel_b, k_b)):
                c = list(cmd)
                c[3] = str(t)
                procs.append(subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env))
            for p in procs:
                _, err = p.communicate()
                if p.returncode:
                    raise RuntimeError(f"baseline (b) failed: {err.decode()[-2000:]}")
        return {"wall": (time.perf_counter() - start) / k_b, "cpu": (children_cpu() - c0) / k_b}

    def reference() -> tuple[float, float]:
        return matmul_flops(device)

    # warm-up (first calls pay for lazy initialisation)
    train_ensemble([p[:2] for p in init_all], X, y, train_all[:2], OptimizerSettings(epochs=3))
    rows = []
    agreement = None
    for r in range(args.repeats):
        rec: dict[str, float] = {}
        mm = [reference()]
        res_a, pred_a = plain()
        res_b = per_process()
        rec.update({"a_wall": res_a["wall"], "a_cpu": res_a["cpu"], "b_wall": res_b["wall"], "b_cpu": res_b["cpu"]})
        for C in chunks:
            res_e, pred_e = engine(C)
            rec.update({f"e{C}_{k}": v for k, v in res_e.items()})
            if C == max(chunks) and agreement is None:
                k = min(k_a, pred_e.shape[0])
                mae_a = (pred_a[:k] - y[test_all[:k]].cpu()).abs().mean(dim=1)
                mae_e = (pred_e[:k] - y[test_all[:k]].cpu()).abs().mean(dim=1)
                agreement = (float((pred_a[:k] - pred_e[:k]).abs().max()),
                             float(((mae_a - mae_e).abs() / mae_a).max()))
        mm.append(reference())
        rec["mm"] = (mm[0][0] + mm[1][0]) / 2
        rec["mm_cpu"] = (mm[0][1] + mm[1][1]) / 2
        rows.append(rec)
        print(f"  repeat {r + 1}/{args.repeats}: (a) {1 / rec['a_wall']:.2f}/s, (b) {1 / rec['b_wall']:.2f}/s, "
              + ", ".join(f"C={C} {1 / rec[f'e{C}_wall']:.2f}/s" for C in chunks)
              + f", matmul {rec['mm'] / 1e9:.1f} GFLOP/s  (load {load_average()})", flush=True)

    results: dict[str, object] = {"machine": machine_record(device, threads), "args": vars(args),
                                  "flops_per_trial_required": flops_required,
                                  "flops_per_trial_convention": flops_convention, "repeats": rows}
    conv = flops_convention / flops_required
    print()
    print(f"device: {device_name(device)}, {threads} threads, {args.repeats} repeats (medians), "
          f"load average at end {load_average()}")
    print(f"(a) plain loop:     {median([1 / r['a_wall'] for r in rows]):8.2f} trials/s")
    print(f"(b) process/trial:  {median([1 / r['b_wall'] for r in rows]):8.2f} trials/s "
          f"({parallel_b} at a time, DataLoader batch {args.batch_size}, start-up included)")
    print(f"matmul reference:   {median([r['mm'] for r in rows]) / 1e9:8.1f} GFLOP/s")
    cpu_cols = device.type == "cpu"
    print("\nwall clock (what a user waits for):" + ("  [CPU-time columns: the same per CPU-second of this "
                                                   "process, less sensitive to other load]" if cpu_cols else ""))
    head = (f"{'chunk':>6} {'trials/s':>9} {'vs (a)':>7} {'vs (b)':>7} {'GFLOP/s':>8} {'frac':>5} {'range':>9} "
            f"{'frac3x':>6}")
    print(head + (f" | {'vs (a)':>7} {'vs (b)':>7} {'frac':>5} {'frac3x':>6}" if cpu_cols else ""))
    table = []
    for C in chunks:
        rate = median([1 / r[f"e{C}_wall"] for r in rows])
        va = median([r["a_wall"] / r[f"e{C}_wall"] for r in rows])
        vb = median([r["b_wall"] / r[f"e{C}_wall"] for r in rows])
        gf = median([r[f"e{C}_flops"] for r in rows])
        per_repeat = [r[f"e{C}_flops"] / r["mm"] for r in rows]
        frac = median(per_repeat)
        row = {"chunk": C, "trials_per_s": rate, "speedup_vs_plain": va, "speedup_vs_process": vb,
               "train_flops": gf, "fraction_of_matmul": frac, "fraction_of_matmul_per_repeat": per_repeat,
               "fraction_of_matmul_3x_convention": frac * conv}
        spread = f"{min(per_repeat):.2f}-{max(per_repeat):.2f}"
        line = (f"{C:>6} {rate:>9.2f} {va:>7.2f} {vb:>7.1f} {gf / 1e9:>8.2f} {frac:>5.2f} {spread:>9} "
                f"{frac * conv:>6.2f}")
        if cpu_cols:
            va_c = median([r["a_cpu"] / r[f"e{C}_cpu"] for r in rows])
            vb_c = median([r["b_cpu"] / r[f"e{C}_cpu"] for r in rows])
            frac_c = median([r[f"e{C}_flops_cpu"] / r["mm_cpu"] for r in rows])
            row.update({"cpu_speedup_vs_plain": va_c, "cpu_speedup_vs_process": vb_c, "cpu_fraction_of_matmul": frac_c})
            line += f" | {va_c:>7.2f} {vb_c:>7.1f} {frac_c:>5.2f} {frac_c * conv:>6.2f}"
        table.append(row)
        print(line)
    if agreement is not None:
        print(f"\nengine (chunk {max(chunks)}) vs plain loop, first {k_a} trials: max |prediction difference| "
              f"{agreement[0]:.2e}, max relative MAE difference {agreement[1]:.2e}")
    results["table"] = table
    results["agreement_max_abs_pred_diff"], results["agreement_max_rel_mae_diff"] = agreement or (None, None)
    write_json(results, args.json)
    tmp.cleanup()


if __name__ == "__main__":
    main()
