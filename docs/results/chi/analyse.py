r"""Numbers and figures of docs/results/chi.md, from the three runs of the chi study.

    results/chi    the 1-D study R(n) at the full m:
                   snakemake --cores 2 --configfile config/chi.yaml --config grid='{m: null}'
    results/chi_m  R(m) at the largest n:
                   snakemake --cores 2 --configfile config/chi.yaml \
                       --config study=chi_m grid='{n: [1206], m: [0.125, 0.25, 0.5, 0.75, 1.0]}'
    results/chi_unseen_pairs  R(n) with the test pairs' COSMO-RS values withheld too:
                   snakemake --cores 2 --configfile config/chi.yaml --config study=chi_unseen_pairs \
                       grid='{m: null}' 'multitask={exclude_test_pairs_from_source: true}'

Run from the project root:  .venv/bin/python docs/results/chi/analyse.py
Writes docs/results/chi/numbers.json and the figures beside this file. The fits are the package's own
(paired-trial bootstrap, linear space, the same calls the fit rule makes); the marginal rate of
substitution combines R(n) of the first run with R(m) of the second (the paper's 1-D fallback).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sim2real_scaling.analysis.decisions import marginal_rate_1d  # noqa: E402
from sim2real_scaling.analysis.laws import fit_power_law_bootstrap  # noqa: E402
from sim2real_scaling.analysis.tables import curve, trial_ids_by_point, trials_by_point  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
RUN_N, RUN_M = ROOT / "results" / "chi", ROOT / "results" / "chi_m"
# the stricter protocol: the test pairs' simulated rows are withheld as well (same trials and splits)
RUN_V = ROOT / "results" / "chi_unseen_pairs"
DATA = ROOT.parent / "shared" / "data" / "chi"
N_BOOT, SEED, CI = 1000, 20250601, 0.9
PAPER = {"D": 0.239, "alpha": 0.0348, "C": 4.52e-10, "n": 9129, "m": 612, "dRdn": -6.63e-7,
         "Dm": 0.863, "beta": 0.240, "dRdm": -7.25e-5, "rate": 109}


def fit_curve(run: Path, vary: str, fixed: float):  # noqa: ANN201
    trials = pd.read_csv(run / "trials.csv")
    summary = pd.read_csv(run / "summary.csv")
    trials = trials[trials["status"] == "ok"]
    _, rows = curve(summary, vary=vary, fixed=fixed, method="transfer")
    fit = fit_power_law_bootstrap(rows[vary].to_numpy(float), trials_by_point(trials, rows), n_boot=N_BOOT,
                                  seed=SEED, ci=CI, space="linear", paired=True,
                                  trial_ids=trial_ids_by_point(trials, rows))
    return fit, rows, summary


def law_record(fit) -> dict:  # noqa: ANN001
    keys = ["D", "alpha", "C", "D_ci", "alpha_ci", "C_ci", "redchi", "dof", "preferred", "D_no_floor",
            "alpha_no_floor", "status", "message"]
    d = fit.to_dict()
    return {k: d[k] for k in keys if k in d}


def cosmo_vs_experiment() -> tuple[dict, pd.DataFrame]:
    """COSMO-RS chi against experimental chi on the rows with both (same pair, same temperature)."""
    exp = pd.read_csv(DATA / "chi_experimental.csv")
    sim = pd.read_csv(DATA / "chi_cosmors.csv")
    both = exp.merge(sim[["pair_id", "temperature_K", "chi"]], on=["pair_id", "temperature_K"],
                     suffixes=("_exp", "_sim"))
    both["polymer_class"] = both["polymer_class"].fillna("unknown")
    err = (both["chi_sim"] - both["chi_exp"]).abs()
    out = {"rows": int(len(both)), "mae": float(err.mean()),
           "pearson_r": float(np.corrcoef(both["chi_sim"], both["chi_exp"])[0, 1]),
           "mae_of_mean_predictor": float((exp["chi"] - exp["chi"].mean()).abs().mean()),
           "per_class": {c: {"rows": int(len(g)), "mae": float((g["chi_sim"] - g["chi_exp"]).abs().mean()),
                             "pearson_r": float(np.corrcoef(g["chi_sim"], g["chi_exp"])[0, 1]) if len(g) > 2 else None}
                         for c, g in both.groupby("polymer_class")}}
    return out, both


def main() -> None:
    if not (RUN_N / "trials.csv").is_file():
        sys.exit(f"{RUN_N}/trials.csv not found: run the chi study first (see this file's docstring)")
    numbers: dict = {"paper": PAPER}
    grid = json.loads((RUN_N / "prepared" / "chi" / "grid.json").read_text())
    numbers["grid"] = grid
    m_full = float(grid["n_train"])
    fit_n, rows_n, summary_n = fit_curve(RUN_N, "n", m_full)
    n_max = float(rows_n["n"].max())
    numbers["law_n"] = {"m": m_full, **law_record(fit_n)}
    direct = summary_n[(summary_n["method"] == "direct") & (summary_n["m"] == m_full)].iloc[0]
    numbers["per_n"] = [{"n": int(r.n), "transfer_mae": r.mae_mean, "ci": [r.mae_ci_low, r.mae_ci_high]}
                        for r in rows_n.itertuples()]
    numbers["direct"] = {"mae": float(direct["mae_mean"]),
                         "ci": [float(direct["mae_ci_low"]), float(direct["mae_ci_high"])]}
    fits_json = json.loads((RUN_N / "fits.json").read_text())["properties"]["chi"]
    numbers["transfer_vs_direct"] = fits_json.get("transfer_vs_direct")
    numbers["groups"] = fits_json.get("groups")
    # the paper's law evaluated on our n range, for a like-for-like look at the size of the effect
    p = PAPER
    numbers["paper_law_on_our_n"] = {str(int(n)): p["D"] * n ** -p["alpha"] + p["C"] for n in rows_n["n"]}
    numbers["gain_first_to_last_n"] = {
        "ours": float(rows_n["mae_mean"].iloc[0] - rows_n["mae_mean"].iloc[-1]),
        "paper_law_same_n": p["D"] * (rows_n["n"].iloc[0] ** -p["alpha"] - rows_n["n"].iloc[-1] ** -p["alpha"]),
    }

    if (RUN_M / "trials.csv").is_file():
        fit_m, rows_m, summary_m = fit_curve(RUN_M, "m", n_max)
        numbers["law_m"] = {"n": n_max, **law_record(fit_m)}
        numbers["per_m"] = [{"m": int(r.m), "transfer_mae": r.mae_mean, "ci": [r.mae_ci_low, r.mae_ci_high]}
                            for r in rows_m.itertuples()]
        dm = summary_m[summary_m["method"] == "direct"].sort_values("m")
        numbers["per_m_direct"] = [{"m": int(r.m), "direct_mae": r.mae_mean, "ci": [r.mae_ci_low, r.mae_ci_high]}
                                   for r in dm.itertuples()]
        # the same (n, m, trial) trained in both runs must give the same result (seeds per trial)
        a = pd.read_csv(RUN_N / "trials.csv")
        b = pd.read_csv(RUN_M / "trials.csv")
        keys = ["method", "n", "m", "trial"]
        shared = a.merge(b, on=keys, suffixes=("_a", "_b"))
        numbers["runs_agree"] = {"shared_trainings": int(len(shared)),
                                 "max_abs_mae_difference": float((shared["mae_a"] - shared["mae_b"]).abs().max())}
        rate = marginal_rate_1d(fit_n, fit_m, n_max, m_full, ci=CI)
        numbers["marginal_rate"] = rate.to_dict()
        rows_per_pair = grid["n_target"] / grid["target_pairs"]
        numbers["marginal_rate"]["rows_per_experimental_pair"] = rows_per_pair
        numbers["paper_rate_check"] = p["dRdm"] / p["dRdn"]
        draw_m_curve(rows_m, dm, fit_m, HERE / "chi_m_curve.png")

    if (RUN_V / "trials.csv").is_file():
        numbers["variant_unseen_pairs"] = variant()

    cosmo, both = cosmo_vs_experiment()
    numbers["cosmo_rs_vs_experiment"] = cosmo
    draw_parity(both, HERE / "chi_cosmo_parity.png")
    for name in ("chi_scaling.png", "chi_groups_polymer_class.png"):
        src = RUN_N / "figures" / name
        if src.is_file():
            shutil.copyfile(src, HERE / name)
    (HERE / "numbers.json").write_text(json.dumps(numbers, indent=1, default=float) + "\n")
    print(json.dumps({k: numbers[k] for k in ("law_n", "law_m", "marginal_rate", "direct") if k in numbers},
                     indent=1, default=float))


def variant() -> dict:
    """R(n) with the test pairs' simulated rows withheld: its own fit and transfer-vs-direct, and the
    paired difference to the main run (same trials, same splits and initial weights) at the n both share."""
    main = pd.read_csv(RUN_N / "trials.csv")
    var = pd.read_csv(RUN_V / "trials.csv")
    m_full = float(var["m"].max())
    fit, rows, summary = fit_curve(RUN_V, "n", m_full)
    fits_json = json.loads((RUN_V / "fits.json").read_text())["properties"]["chi"]
    direct = summary[(summary["method"] == "direct") & (summary["m"] == m_full)].iloc[0]
    out: dict = {"trials": int(var["trial"].nunique()), "grid_n": [int(n) for n in rows["n"]],
                 "law_n": law_record(fit), "direct": {"mae": float(direct["mae_mean"])},
                 "per_n": [{"n": int(r.n), "transfer_mae": r.mae_mean, "ci": [r.mae_ci_low, r.mae_ci_high]}
                           for r in rows.itertuples()],
                 "transfer_vs_direct": fits_json.get("transfer_vs_direct")}
    a = main[main["method"] == "direct"].set_index("trial")["mae"]
    b = var[var["method"] == "direct"].set_index("trial")["mae"]
    out["direct_runs_agree_max_abs_difference"] = float((a - b.reindex(a.index)).abs().max())
    return out


def draw_m_curve(rows: pd.DataFrame, direct: pd.DataFrame, fit, out: Path) -> None:  # noqa: ANN001
    fig, ax = plt.subplots(figsize=(4.8, 3.6))
    ax.fill_between(rows["m"], rows["mae_ci_low"], rows["mae_ci_high"], color="C0", alpha=0.25, lw=0)
    ax.plot(rows["m"], rows["mae_mean"], "o-", color="C0", label=f"multitask, n = {int(rows['n'].iloc[0])}")
    ax.fill_between(direct["m"], direct["mae_ci_low"], direct["mae_ci_high"], color="C3", alpha=0.2, lw=0)
    ax.plot(direct["m"], direct["mae_mean"], "s--", color="C3", label="direct (experiment only)")
    if fit.ok:
        x = np.geomspace(rows["m"].min(), rows["m"].max(), 100)
        ax.plot(x, fit.predict(x), "k:", label=f"{fit.D:.3g} m^-{fit.alpha:.3g} + {fit.C:.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(rows["m"].to_numpy(float), [str(int(m)) for m in rows["m"]])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("experimental training rows m")
    ax.set_ylabel("test MAE of chi (90% CI)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=150)
    plt.close(fig)


def draw_parity(both: pd.DataFrame, out: Path) -> None:
    classes = sorted(both["polymer_class"].unique())
    cols = 4
    rows = -(-len(classes) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.4 * rows), sharex=True, sharey=True)
    for ax, c in zip(axes.ravel(), classes, strict=False):
        g = both[both["polymer_class"] == c]
        ax.plot([-2.5, 4.7], [-2.5, 4.7], color="0.6", lw=0.8)
        ax.scatter(g["chi_sim"], g["chi_exp"], s=6, alpha=0.6)
        ax.set_title(f"{c} ({len(g)}); MAE {np.abs(g['chi_sim'] - g['chi_exp']).mean():.2f}", fontsize=7)
    for ax in axes.ravel()[len(classes):]:
        ax.axis("off")
    fig.supxlabel("COSMO-RS chi")
    fig.supylabel("experimental chi")
    fig.tight_layout()
    fig.savefig(out, dpi=130)
    plt.close(fig)


if __name__ == "__main__":
    main()
