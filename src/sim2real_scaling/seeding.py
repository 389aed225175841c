"""Seeds for every random choice, derived from the study seed and the choice's identity.

Each trial draws its split and initial weights from its own seed, so results do not depend on how
trials are chunked into jobs, on the number of cores, or on the order jobs run in.
"""

from __future__ import annotations

import zlib

import numpy as np

# one code per kind of random choice, so two kinds never share a stream
STREAMS = {
    "split": 1,
    "pretrain_sample": 2,
    "pretrain_init": 3,
    "pretrain_shuffle": 4,
    "direct_init": 5,
    "finetune_shuffle": 6,
    "direct_shuffle": 7,
    "bootstrap": 8,
    "synthetic": 9,
    "folds": 10,  # a trial's cross-validation folds of its training rows
    "holdout": 11,  # a trial's hold-out validation rows
    "pretrain_holdout": 12,  # the validation rows of a pretraining draw
    "finetune_init": 13,  # a new head's weights (feature extraction)
}


def _name_code(name: str) -> int:
    return zlib.crc32(name.encode())


def seed_sequence(seed: int, stream: str, *keys: int | str) -> np.random.SeedSequence:
    """A SeedSequence for one random choice: (study seed, stream, property/trial/... keys)."""
    codes = [STREAMS[stream]] + [k if isinstance(k, int) else _name_code(k) for k in keys]
    return np.random.SeedSequence(entropy=seed, spawn_key=tuple(codes))


def rng(seed: int, stream: str, *keys: int | str) -> np.random.Generator:
    return np.random.default_rng(seed_sequence(seed, stream, *keys))


def torch_seed(seed: int, stream: str, *keys: int | str) -> int:
    """A 63-bit integer seed for ``torch.Generator().manual_seed``."""
    state = seed_sequence(seed, stream, *keys).generate_state(1, dtype=np.uint64)[0]
    return int(state) & ((1 << 63) - 1)
