"""Extrapolation audit: refit the law without its largest x and see whether it predicts the held-out means.

For k = 1 and 2, the 1-D law is refitted on all but the k largest x (by the one fit path, with the property's
resamples) and predicts the mean MAE at each held-out x. The interval for the *observed* mean combines the
refit's uncertainty and the held-out mean's own noise with their pairing (both come from the same resamples:
``e_b = (Y_b(x) - y(x)) - (R_b(x) - R(x))``, plus the refit's extra scatter at that point); the verdict says
whether the observed mean falls inside. This tells how far "required n" may be trusted beyond the largest n
measured: a law that already misses one step beyond its data should not be extrapolated ten.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sim2real_scaling.analysis.bootstrap import TrialResamples, percentile_interval
from sim2real_scaling.analysis.laws import DEFAULT_ALPHA_MAX, fit_power_law_trials

__all__ = ["backtest"]


def backtest(x: np.ndarray, values: np.ndarray, resamples: TrialResamples, *, n_boot: int = 200, ci: float = 0.90,
             space: str = "linear", holdouts: tuple[int, ...] = (1, 2), n_of_point: np.ndarray | None = None,
             generator: np.random.Generator | None = None,
             alpha_max: float = DEFAULT_ALPHA_MAX) -> list[dict[str, Any]]:
    """Hold out the largest 1 and 2 x and check the refitted law's predictions.

    Args:
        x: (N,) sorted sample sizes. values: (T, N) trial MAEs (NaN = missing). resamples: the property's.
        n_boot, ci, space, alpha_max: as for the law. holdouts: how many of the largest x to hold out.
        n_of_point: (N,) n of each point (default ``x``).
        generator: draws of the extra scatter.

    Returns:
        One record per holdout: ``held_out`` (k), ``fitted_x_max``, ``law`` (equation), ``status`` and per held-out
        x a ``points`` list of ``{x, observed, predicted, interval, inside, ratio}`` (ratio = predicted /
        observed); ``all_inside``. Holdouts that leave fewer than 4 points are skipped (three
        parameters pass through any three points).
    """
    xa = np.asarray(x, dtype=float)
    order = np.argsort(xa)
    xa, v = xa[order], np.asarray(values, dtype=float)[:, order]
    n_pt = xa if n_of_point is None else np.asarray(n_of_point, dtype=float)[order]
    gen = generator if generator is not None else np.random.default_rng(0)
    out: list[dict[str, Any]] = []
    all_means = resamples.means(v, n_pt)[:n_boot] if resamples.n_boot else None
    for k in holdouts:
        keep = xa.size - k
        if keep < 4:  # three parameters need a fourth point before the fit can be wrong
            continue
        fit = fit_power_law_trials(xa[:keep], v[:, :keep], resamples, n_boot=n_boot, ci=ci, space=space,
                                   n_of_point=n_pt[:keep], generator=gen, alpha_max=alpha_max)
        rec: dict[str, Any] = {"held_out": k, "fitted_x_max": float(xa[keep - 1]), "law": fit.equation(),
                               "status": fit.status, "points": []}
        if not fit.has_params:
            rec["message"] = fit.message
            out.append(rec)
            continue
        for j in range(keep, xa.size):
            col = v[:, j]
            observed = float(np.nanmean(col)) if np.isfinite(col).any() else math.nan
            predicted = float(fit.predict(xa[j]))
            point: dict[str, Any] = {"x": float(xa[j]), "observed": observed, "predicted": predicted,
                                     "interval": [math.nan, math.nan], "inside": None,
                                     "ratio": predicted / observed if observed > 0 else math.nan}
            s = fit.boot_samples
            if s.shape[0] >= 2 and all_means is not None:
                B = min(s.shape[0], all_means.shape[0])
                pred_b = s[:B, 0] * xa[j] ** (-s[:B, 1]) + s[:B, 2]
                e = (all_means[:B, j] - observed) - (pred_b - predicted)
                var_j = float(np.nanvar(all_means[:, j]))
                if fit.tau2 > 0 and var_j > 0:
                    e = e + gen.standard_normal(B) * math.sqrt(fit.tau2 * var_j)
                lo, hi = percentile_interval(e, ci)
                point["interval"] = [predicted + lo, predicted + hi]
                point["inside"] = bool(predicted + lo <= observed <= predicted + hi)
            rec["points"].append(point)
        verdicts = [p["inside"] for p in rec["points"]]
        rec["all_inside"] = None if any(v_ is None for v_ in verdicts) else all(verdicts)
        out.append(rec)
    return out
