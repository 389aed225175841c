"""Target 5: peak RSS of one training job against its chunk size and the study's number of trials.

    python benchmarks/memory.py            # ~1 min
    python benchmarks/memory.py --chunks 10 100 500 1000 --rows 223 --d-in 190

Each measurement is a fresh process that imports the package, builds the target data of one property
(the polymer density shape by default: 223 rows, 190 descriptors, the 2-D grid's 4 values of m) and runs
``training.runner.run_job`` (fine-tuning with model selection: cross-validation folds and refit, as a
transfer job does) on one chunk of trials; its peak RSS is ``ru_maxrss``.
Compared: chunks of different sizes (memory follows the chunk) and the same chunk size at the start and
at the end of a large study (memory does not follow the number of trials). Epochs do not change memory,
so few are run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, write_json  # noqa: E402

WORKER = r"""
import json, resource, sys
import numpy as np, torch
torch.set_num_threads(1)
from sim2real_scaling.data.transforms import PropertyTransform
from sim2real_scaling.training.design import Design
from sim2real_scaling.training.inputs import PropertyData
from sim2real_scaling.training.runner import run_job
from sim2real_scaling.training.settings import TrainingSettings
rows, d, first, count, epochs = (int(a) for a in sys.argv[1:6])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
g = np.random.default_rng(0)
ns = 1077
Xs, Xt = g.normal(size=(ns, d)).astype(np.float32), g.normal(size=(rows, d)).astype(np.float32)
w = g.normal(size=d) / np.sqrt(d)
ys, raw = 1 + 0.1 * np.tanh(Xs @ w), 1 + 0.1 * np.tanh(Xt @ w) + g.normal(0, 0.01, rows)
n_test = rows - round(0.8 * rows)
m_all = rows - n_test
design = Design(property="p", n=[ns], m=sorted({round(f * m_all) for f in (0.125, 0.25, 0.5, 1.0)}), n_test=n_test,
                n_train=m_all, n_source=ns, n_target=rows)
data = PropertyData(name="p", X_source=Xs, source_values=ys, X_target=Xt, target_values=raw,
                    target_keys=[f"m{i}" for i in range(rows)], groups={"cls": np.array(list("abcdefg"))[np.arange(rows) % 7]},
                    sim_values=np.full(rows, np.nan), source_transform=PropertyTransform(["standardize"]).fit(ys),
                    design=design)
settings = TrainingSettings.from_slices("p", {
    "seed": 1, "device": "cpu", "protocol": {"trials": first + count, "chunk_size": count, "test_fraction": 0.2,
                                             "group_columns": ["cls"], "per_material": True},
    "model": {"hidden": [64, 32], "activation": "relu", "pretrain": {"epochs": 1, "batch_size": 64},
              "finetune": {"epochs": epochs}, "direct": {"epochs": epochs}},
    "property": {"transform": ["standardize"], "transform_fit_on": "each"}})
result, _ = run_job(settings, data, "finetune", list(range(first, first + count)), [0])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"imports_mb": base, "peak_mb": peak, "rows_out": len(result.trials)}))
"""


def measure(rows: int, d: int, first: int, count: int, epochs: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", WORKER, str(rows), str(d), str(first), str(count), str(epochs)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, nargs="+", default=[1, 10, 100, 500])
    ap.add_argument("--study-trials", type=int, default=5000,
                    help="a large study: its last chunk of 100 is compared with its first")
    ap.add_argument("--rows", type=int, default=223)
    ap.add_argument("--d-in", type=int, default=190)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    print(f"load average {load_average()}")
    results = []
    print(f"{'first trial':>12} {'chunk':>6} {'imports MB':>11} {'peak RSS MB':>12} {'training MB':>12}")
    cases = [(0, c) for c in args.chunks] + [(args.study_trials - 100, 100)]
    for first, count in cases:
        r = measure(args.rows, args.d_in, first, count, args.epochs)
        r.update(first_trial=first, chunk=count)
        results.append(r)
        print(f"{first:>12} {count:>6} {r['imports_mb']:>11.0f} {r['peak_mb']:>12.0f} "
              f"{r['peak_mb'] - r['imports_mb']:>12.0f}", flush=True)
    write_json({"args": vars(args), "results": results}, args.json)


if __name__ == "__main__":
    main()
