"""Stages of the run itself: threads, and the record of the resolved config and library versions."""

from __future__ import annotations

import logging
import os
import platform
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any


from sim2real_scaling.io import write_json

if TYPE_CHECKING:

    pass

log = logging.getLogger(__name__)


def set_threads(threads: int) -> None:
    """Torch's CPU threads; before torch is imported, through the variables it reads when it starts."""
    n = str(max(1, int(threads)))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(n))
    else:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = n


def environment_record() -> dict[str, Any]:
    """Library versions and machine facts recorded next to the results."""
    packages = ["sim2real-scaling", "numpy", "scipy", "pandas", "torch", "rdkit", "lmfit", "matplotlib",
                "scikit-learn", "pymatgen", "snakemake"]
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    import torch

    return {"python": sys.version.split()[0], "platform": platform.platform(), "packages": versions,
            "cuda_available": torch.cuda.is_available(), "cpu_count": os.cpu_count()}


def stage_record_run(config: Mapping[str, Any], output_config: str | Path, output_env: str | Path) -> None:
    import yaml

    from sim2real_scaling.io import write_text

    write_text(yaml.safe_dump(dict(config), sort_keys=False), output_config)
    write_json(environment_record(), output_env)
