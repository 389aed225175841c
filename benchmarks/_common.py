"""Helpers shared by the benchmarks: machine facts, the dense-matmul reference, FLOP counts, timing."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:  # pragma: no cover - not on Linux
        return "n/a"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {cpu_name()} ({os.cpu_count()} logical cores)"


def machine_record(device: torch.device, threads: int) -> dict[str, Any]:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                check=False).stdout.strip()
    except OSError:
        commit = ""
    return {"date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), "device": device_name(device),
            "torch": torch.__version__, "torch_threads": threads, "cpu_count": os.cpu_count(),
            "load_average_1_5_15": load_average(), "git_commit": commit, "platform": platform.platform()}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def matmul_flops(device: torch.device, size: int | None = None, repeats: int = 5) -> tuple[float, float]:
    """FLOP/s of a large dense float32 matrix product on ``device`` (the machine's practical limit).

    Returns (FLOP per wall second: median of ``repeats`` products, FLOP per CPU second of this process over
    all of them; the latter is the wall figure again on a GPU).
    """
    size = size or (8192 if device.type == "cuda" else 2048)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=g).to(device)
    b = torch.randn(size, size, generator=g).to(device)
    c = torch.empty(size, size, device=device)
    torch.mm(a, b, out=c)  # warm-up
    cpu0 = time.process_time()
    times = [timed(lambda: torch.mm(a, b, out=c), device) for _ in range(repeats)]
    cpu = time.process_time() - cpu0
    flop = 2 * size**3
    wall = flop / statistics.median(times)
    return wall, (flop * repeats / cpu if device.type == "cpu" else wall)


def mlp_train_flops(widths: Sequence[int], rows: int, steps: int) -> tuple[float, float]:
    """FLOPs of ``steps`` training steps on ``rows`` samples for one MLP with layer widths ``widths``.

    Returns (required, convention): *required* counts the forward pass (2 per multiply-add), the weight
    gradients (the same again) and the input gradients of every layer but the first (the data need none);
    *convention* is the usual 3 x forward. Bias additions and activations are left out (< 1 %).
    """
    macs = [a * b for a, b in zip(widths[:-1], widths[1:], strict=True)]
    forward = 2 * sum(macs)
    required = forward + 2 * sum(macs) + 2 * sum(macs[1:])
    return float(required * rows * steps), float(3 * forward * rows * steps)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def write_json(record: dict[str, Any], path: str | Path | None) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {path}")
