"""Atomic file writes: a file either holds its complete content or does not exist.

Everything is written to a temporary file in the same folder and moved into place with ``os.replace``,
so an interrupted job never leaves a half-written output that a rerun would take as done.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def _file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give: 0o666 less the process's umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds.

    The file gets the usual permissions (0o666 less the umask), not the owner-only mode of a temporary
    file, so that collaborators on a shared file system can read the results.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.fchmod(fd, _file_mode())
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _write_with(path: str | Path, writer: Callable[[Path], None]) -> None:
    with atomic_path(path) as tmp:
        writer(tmp)


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    _write_with(path, lambda tmp: frame.to_csv(tmp, index=False))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj)}")


def write_json(data: Any, path: str | Path) -> None:
    text = json.dumps(data, indent=2, default=_json_default, allow_nan=True)
    _write_with(path, lambda tmp: tmp.write_text(text + "\n"))


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def write_text(text: str, path: str | Path) -> None:
    _write_with(path, lambda tmp: tmp.write_text(text))


def write_npz(path: str | Path, **arrays: np.ndarray) -> None:
    def writer(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)

    _write_with(path, writer)


def write_torch(obj: Any, path: str | Path) -> None:
    import torch

    _write_with(path, lambda tmp: torch.save(obj, tmp))
