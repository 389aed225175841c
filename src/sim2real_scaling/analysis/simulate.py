"""Simulated studies drawn from a known law with the design's three noise sources (for calibration checks).

A simulated trial table follows the output contract (``trials.csv``). The mean MAE at (n, m) is the surface
``(A n^-alpha + B) m^-beta + eps`` (with one m this is the 1-D law ``D n^-alpha + C``,
``D = A m^-beta``, ``C = B m^-beta + eps``). Trial t adds

* a split effect ``split_sd * z_t``, shared by every n, m and method of the trial (the paired design);
* a pretraining effect ``pretrain_sd * z_{r, n}`` of its replicate ``r = t mod replicates`` at n, shared by every
  trial of that replicate and every m (transfer rows only);
* fine-tuning noise ``noise_sd * z_{t, n, m}``.

Direct learning (n = 0) has mean ``direct_factor`` times the transfer mean at the smallest n. An MAE cannot be
negative: the rare draw below zero is set to 1e-9 (choose the noise well below the floor to keep it rare).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["SimulatedLaw", "simulate_trials", "true_rate"]


@dataclass(frozen=True)
class SimulatedLaw:
    """The true surface and noise of a simulated study (MAE units)."""

    A: float = 0.3
    alpha: float = 0.3
    B: float = 0.0
    beta: float = 0.0
    eps: float = 0.05
    split_sd: float = 0.02
    pretrain_sd: float = 0.002
    noise_sd: float = 0.003
    direct_factor: float = 1.3

    def mean(self, n: np.ndarray | float, m: np.ndarray | float) -> np.ndarray:
        n, m = np.asarray(n, float), np.asarray(m, float)
        return (self.A * n ** (-self.alpha) + self.B) * m ** (-self.beta) + self.eps

    def law_at_m(self, m: float) -> tuple[float, float, float]:
        """``(D, alpha, C)`` of the 1-D law at m."""
        mb = m ** (-self.beta)
        return self.A * mb, self.alpha, self.B * mb + self.eps


def true_rate(law: SimulatedLaw, n: float, m: float) -> float:
    """Simulations worth one experiment, ``(dR/dm) / (dR/dn)``, of the true surface at (n, m)."""
    gn = -law.alpha * law.A * n ** (-law.alpha - 1.0) * m ** (-law.beta)
    gm = -law.beta * (law.A * n ** (-law.alpha) + law.B) * m ** (-law.beta - 1.0)
    return float(gm / gn)


def simulate_trials(law: SimulatedLaw, n_values: Sequence[float], m_values: Sequence[float], trials: int,
                    replicates: int | None, seed: int, property: str = "p") -> pd.DataFrame:
    """A ``trials.csv`` table (contract columns) of one simulated study.

    Args:
        law: the truth.
        n_values, m_values: the grid.
        trials: trials per point.
        replicates: pretraining draws (``None``: one per trial).
        seed: random seed of the study.
    """
    rng = np.random.default_rng(seed)
    R = trials if replicates is None else int(replicates)
    n_arr = np.asarray(n_values, float)
    m_arr = np.asarray(m_values, float)
    t = np.arange(trials)
    rep = t % R
    split = rng.normal(0.0, law.split_sd, trials)
    pre = rng.normal(0.0, law.pretrain_sd, (R, n_arr.size))
    rows = []
    for j, n in enumerate(n_arr):
        for m in m_arr:
            mae = np.maximum(law.mean(n, m) + split + pre[rep, j] + rng.normal(0.0, law.noise_sd, trials), 1e-9)
            rows.append(pd.DataFrame({"method": "finetune", "n": int(n), "m": int(m), "trial": t, "replicate": rep,
                                      "mae": mae}))
    for m in m_arr:
        mae = np.maximum(law.direct_factor * law.mean(n_arr.min(), m) + split + rng.normal(0.0, law.noise_sd, trials),
                         1e-9)
        rows.append(pd.DataFrame({"method": "direct", "n": 0, "m": int(m), "trial": t, "replicate": rep,
                                  "mae": mae}))
    table = pd.concat(rows, ignore_index=True)
    table.insert(0, "property", property)
    table["mae_sim_rows"] = np.nan
    table["sim_rows"] = 0
    table["train_loss"] = np.nan
    table["val_mae"] = np.nan
    table["epochs"] = np.nan
    table["lr"] = np.nan
    table["weight_decay"] = np.nan
    table["selection"] = "none"
    table["status"] = "ok"
    return table
