"""Collect the numbers and figures of docs/results/starrydata.md from the two finished studies.

    .venv/bin/python docs/results/starrydata/collect.py [results_dir]   # default: results

Reads results/starrydata/ (thermal -> electrical) and results/starrydata_reverse/ (electrical ->
thermal), copies the figures the page shows into docs/results/starrydata/ and prints the Markdown
tables of the page (MAE per n, fitted laws, WF subsets, per-compound scaling). Nothing is computed
here that the workflow did not write; the tables are only formatted.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
STUDIES = {"starrydata": "thermal -> electrical (paper's text)",
           "starrydata_reverse": "electrical -> thermal (paper's Fig. 6c caption)"}
FIGURES = {  # (folder under the study, file stem) -> name in docs/results/starrydata/
    ("figures", "{p}_scaling"): "{s}_scaling.png",
    ("figures", "{p}_groups_wf_class"): "{s}_groups_wf_class.png",
    ("wiedemann_franz/figures", "{p}_wf_parity"): "{s}_wf_parity.png",
    ("wiedemann_franz/figures", "{p}_wf_subsets"): "{s}_wf_subsets.png",
    ("wiedemann_franz/figures", "{p}_per_compound"): "{s}_per_compound.png",
}


def g(v: float, digits: int = 3) -> str:
    return "-" if v is None or v != v else f"{v:.{digits}g}"


def study_tables(root: Path, study: str) -> None:
    base = root / study
    fits = json.loads((base / "fits.json").read_text())
    (prop, rec), = fits["properties"].items()
    unit = rec["unit"]
    summary = pd.read_csv(base / "summary.csv")
    trials = pd.read_csv(base / "trials.csv")
    wf = json.loads((base / "wiedemann_franz" / "summary.json").read_text())["properties"][prop]
    law = rec["law_n"]
    print(f"\n### {study}: {STUDIES[study]} ({prop}, MAE in {unit})\n")
    print(f"trials per point: {int(trials.groupby(['method', 'n'])['trial'].nunique().min())}, "
          f"status ok: {(trials['status'] == 'ok').mean():.0%}\n")
    print("| n | transfer MAE [90% CI] | direct MAE | transfer - direct [90% CI] | transfer better |")
    print("|---:|---|---|---|---|")
    direct = summary[summary["method"] == "direct"].iloc[0]
    for c in rec["transfer_vs_direct"]:
        row = summary[(summary["method"] == rec["method"]) & (summary["n"] == c["n"])].iloc[0]
        d = c["difference"]
        print(f"| {int(c['n'])} | {row['mae_mean']:.4f} [{row['mae_ci_low']:.4f}, {row['mae_ci_high']:.4f}] | "
              f"{direct['mae_mean']:.4f} | {d['mean']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}] | "
              f"{'yes' if d['transfer_better'] else ('no (direct better)' if d.get('direct_better') else 'not resolved')} |")
    print(f"\nfitted law ({law['status']}): MAE = {g(law['D'])} n^-{g(law['alpha'])} + {g(law['C'])}; "
          f"alpha 90% CI [{g(law['alpha_ci'][0] if 'alpha_ci' in law else law.get('alpha_ci_low'))}, "
          f"{g(law['alpha_ci'][1] if 'alpha_ci' in law else law.get('alpha_ci_high'))}]; "
          f"C CI [{g(law['C_ci'][0] if 'C_ci' in law else law.get('C_ci_low'))}, "
          f"{g(law['C_ci'][1] if 'C_ci' in law else law.get('C_ci_high'))}]; preferred model: {law.get('preferred')}")
    print(f"transfer beats direct at every n: {rec.get('transfer_beats_direct_at_every_n')}\n")
    print("| WF class | compounds | alpha [90% CI] | C | MAE at n=100 | MAE at max n | direct MAE |")
    print("|---|---:|---|---|---:|---:|---:|")
    first = {(c["group"]): c for c in wf["class_transfer_vs_direct"] if c["n"] == min(x["n"] for x in wf["class_transfer_vs_direct"])}
    for r in wf["class_laws"]:
        f = first.get(r["group"], {})
        print(f"| {r['group']} | {wf['classes'].get(r['group'], '-')} | {g(r['alpha'])} [{g(r['alpha_ci_low'])}, "
              f"{g(r['alpha_ci_high'])}] | {g(r['C'])} | {g(f.get('transfer_mae'), 4)} | {g(r['mae_at_max_n'], 4)} | "
              f"{g(r['mae_direct'], 4)} |")
    print("\n| WF class | n | transfer - direct [90% CI] |")
    print("|---|---:|---|")
    for c in wf["class_transfer_vs_direct"]:
        if c["group"] in ("WF", "non-WF"):
            print(f"| {c['group']} | {int(c['n'])} | {c['difference']:+.4f} [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] |")
    pc = wf["per_compound"]
    print("\n| per-compound | compounds | median alpha_i | alpha_i q10..q90 | share alpha_i > 0 | scales | flat | worsens |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for k, b in pc.items():
        print(f"| {k} | {b['compounds']} | {g(b['alpha_median'])} | {g(b['alpha_q10'])}..{g(b['alpha_q90'])} | "
              f"{g(b['share_alpha_positive'])} | {b['scales']} | {b['flat']} | {b['worsens']} |")
    print(f"\nWF thresholds |d| (decades): {wf['thresholds_abs_log10']}")


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("results")
    for study in STUDIES:
        base = root / study
        if not (base / "fits.json").is_file():
            print(f"{base}: not finished, skipped")
            continue
        (prop,) = json.loads((base / "fits.json").read_text())["properties"]
        for (folder, stem), name in FIGURES.items():
            if "parity" in stem and study != "starrydata":
                continue  # the same compounds and classes in both directions: one parity plot is enough
            src = base / folder / (stem.format(p=prop) + ".png")
            if src.is_file():
                shutil.copyfile(src, HERE / name.format(s=study))
        study_tables(root, study)


if __name__ == "__main__":
    main()
