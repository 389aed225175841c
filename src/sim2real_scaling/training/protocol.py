"""The measurement protocol: every random choice of a property's trials, in one place.

A *trial* t fixes its split of the target rows into a test part and a training part (in a random order: its
first m rows are its m-subset, nested in m), its validation rows (cross-validation folds or a hold-out, taken
from its m training rows) and the initial weights of its direct-learning network. A *pretraining draw* r (which
n source rows, nested in n; which initial weights; which of them are held out for early stopping) is shared by
every trial that fine-tunes it: trial t uses draw ``replicate_of(t)``. Every choice comes from a seed of its
own, derived from (study seed, property, kind, trial or draw), never from the chunk a trial is trained in, so
the chunk size, the number of cores or the order of jobs change no number.

Splits respect groups (``split_groups``, e.g. polymer-solvent pairs): the rows of one group are never on both
sides of a split, nor of a fold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sim2real_scaling.seeding import rng, torch_seed
from sim2real_scaling.training.settings import ProtocolSettings


def split_sizes(n_target: int, test_fraction: float) -> tuple[int, int]:
    """(training part, test part) sizes of one trial's split of ``n_target`` target rows."""
    n_test = max(1, int(round(test_fraction * n_target)))
    return n_target - n_test, n_test


def _take_groups(g: np.random.Generator, groups: np.ndarray, size: int) -> np.ndarray:
    """Boolean mask of rows: whole groups in random order while they fit into ``size`` rows, until full.

    A group whose rows would overshoot is passed over, so the chosen part has exactly ``size`` rows unless no
    remaining group fits. With one row per group this is the first ``size`` rows of a random permutation.
    """
    codes, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    chosen = np.zeros(len(codes), dtype=bool)
    total = 0
    for p in g.permutation(len(codes)):
        if total + counts[p] <= size:
            chosen[p] = True
            total += counts[p]
            if total == size:
                break
    return chosen[inverse]


@dataclass
class Protocol:
    """The random choices of one property's trials.

    ``n_target`` target rows, ``n_test`` of them tested in every trial; ``split_groups (n_target,)``: rows that
    must stay together (None: every row on its own).
    """

    settings: ProtocolSettings
    property: str
    n_target: int
    n_test: int
    split_groups: np.ndarray | None = None

    @property
    def seed(self) -> int:
        return self.settings.seed

    def _groups(self) -> np.ndarray:
        return np.arange(self.n_target) if self.split_groups is None else np.asarray(self.split_groups)

    def split(self, trial: int) -> tuple[np.ndarray, np.ndarray]:
        """(training rows in the trial's random order, test rows)."""
        g = rng(self.seed, "split", self.property, trial)
        is_test = _take_groups(g, self._groups(), self.n_test)
        test = np.flatnonzero(is_test)
        train = np.flatnonzero(~is_test)
        return train[g.permutation(len(train))], test

    def splits(self, trials: Sequence[int]) -> tuple[list[np.ndarray], np.ndarray]:
        """Training orders (a list: their lengths may differ with groups) and test rows ``(T, n_test)``."""
        parts = [self.split(t) for t in trials]
        sizes = {len(p[1]) for p in parts}
        if len(sizes) != 1:  # groups that never add up to n_test: pad no trial, tell the caller
            raise ValueError(f"test sets of different sizes {sorted(sizes)}: groups too large for n_test={self.n_test}")
        return [p[0] for p in parts], np.stack([p[1] for p in parts])

    def replicate_of(self, trial: int) -> int:
        return self.settings.replicate_of(trial)

    # -- validation rows inside a trial ----------------------------------------------------------------
    def folds(self, trial: int, train_rows: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """k folds of a trial's training rows: (fit rows, validation rows) per fold, grouped like the split.

        Every fold validates on the same number of rows, ``len(train_rows) // k`` (rows left over are always
        fitted on), so the folds of many trials stack into one rectangular ensemble.
        """
        m = len(train_rows)
        size = m // k
        groups = self._groups()[train_rows]
        g = rng(self.seed, "folds", self.property, trial, m)
        remaining = np.ones(m, dtype=bool)
        out = []
        for _ in range(k):
            take = np.zeros(m, dtype=bool)
            take[remaining] = _take_groups(g, groups[remaining], size)
            if take.sum() != size:  # groups too large to fill the fold exactly: fill with single rows of other groups
                extra = np.flatnonzero(remaining & ~take)
                take[g.permutation(extra)[: size - int(take.sum())]] = True
            remaining &= ~take
            out.append((train_rows[~take], train_rows[take]))
        return out

    def holdout(self, trial: int, train_rows: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """(fit rows, validation rows) of a trial's hold-out: ``round(fraction * m)`` rows, grouped like the split."""
        m = len(train_rows)
        size = max(1, int(round(fraction * m)))
        g = rng(self.seed, "holdout", self.property, trial, m)
        take = _take_groups(g, self._groups()[train_rows], size)
        if take.sum() != size:
            extra = np.flatnonzero(~take)
            take[g.permutation(extra)[: size - int(take.sum())]] = True
        return train_rows[~take], train_rows[take]

    # -- pretraining draws ------------------------------------------------------------------------------
    def source_order(self, replicate: int, n_source: int) -> np.ndarray:
        """Draw ``replicate``'s order of the source rows: its first n rows are its n rows (nested in n)."""
        return rng(self.seed, "pretrain_sample", self.property, replicate).permutation(n_source)

    def pretrain_holdout(self, replicate: int, n_index: int, n: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """Positions (into the draw's first n rows) fitted on and held out for early stopping."""
        if fraction <= 0 or n < 2:
            return np.arange(n), np.zeros(0, dtype=int)
        size = min(n - 1, max(1, int(round(fraction * n))))
        perm = rng(self.seed, "pretrain_holdout", self.property, n_index, replicate).permutation(n)
        return np.sort(perm[size:]), np.sort(perm[:size])

    # -- seeds of initial weights and shuffles ----------------------------------------------------------
    def init_seed(self, kind: str, *keys: int | str) -> int:
        return torch_seed(self.seed, kind, self.property, *keys)
