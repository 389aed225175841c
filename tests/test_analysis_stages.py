"""The analysis stages end to end on simulated trial tables of the output contract: aggregate checks what the job
list promised, the fits and the report say what their numbers mean, and the command-line tool on a results folder
gives the workflow's numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sim2real_scaling.analysis.simulate import SimulatedLaw, simulate_trials
from sim2real_scaling.cli import main
from sim2real_scaling.data.clean import DataError
from sim2real_scaling.report.content import write_report
from sim2real_scaling.stages.analyse import stage_aggregate, stage_analyse

N_GRID = [100, 300, 1000, 3000, 10000]
M_GRID = [20, 40, 80]
TRIALS = 40


def _settings(**properties: dict) -> dict:
    return {"study": "sim", "seed": 7, "source_label": "simulated samples", "transfer": "finetune",
            "analysis": {"confidence": 0.9, "bootstrap_resamples": 400, "fit_bootstrap": 60, "fit_space": "linear",
                         "plan": {"cost_simulation": 1.0, "cost_experiment": 100.0, "target_mae": None}},
            "protocol": {"trials": TRIALS, "test_fraction": 0.2, "direct_baseline": True, "pretrain_replicates": 4},
            "descriptor": {"set": "rdkit"}, "properties": properties}


def _with_simulation_and_groups(trials: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add the simulation reference (and every method's MAE on the rows with a simulated value) and a
    group table with two scaling classes and one that does not scale."""
    rng = np.random.default_rng(seed)
    t = trials.copy()
    t["mae_sim_rows"] = t["mae"] * 1.05
    t["sim_rows"] = 6
    base = t[t["method"] == "direct"].copy()
    sim = base.assign(method="simulation", mae=0.09 + rng.normal(0, 0.004, len(base)))
    sim["mae_sim_rows"] = sim["mae"]
    t = pd.concat([t, sim], ignore_index=True)
    groups = []
    for name, factor in (("steep", 1.3), ("mild", 0.8)):
        groups.append(t[t["method"].isin(["finetune", "direct"])].assign(
            group=name, mae=lambda d, f=factor: d["mae"] * f + rng.normal(0, 0.002, len(d))))
    flat = t[t["method"].isin(["finetune", "direct"])].assign(group="flat")
    flat["mae"] = 0.15 + rng.normal(0, 0.004, len(flat))
    groups.append(flat)
    g = pd.concat(groups, ignore_index=True).assign(group_by="polymer_class", count=3)
    g = g[["property", "method", "n", "m", "trial", "replicate", "group_by", "group", "mae", "count"]]
    return t, g


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two properties through aggregate and fit: ``one_m`` (one m, with groups, the simulation reference and a
    diverged trial) and ``grid`` (an m grid whose decay rate in n changes with m: the surface must be
    rejected)."""
    root = tmp_path_factory.mktemp("analysis_stages")
    out: dict[str, Path] = {"root": root}
    chunks = root / "chunks"
    chunks.mkdir()
    one = simulate_trials(SimulatedLaw(pretrain_sd=0.002), N_GRID, [60], TRIALS, 4, seed=1, property="one_m")
    one, groups = _with_simulation_and_groups(one, 1)
    one.loc[(one["trial"] == 5) & (one["n"] == 1000), ["mae", "mae_sim_rows"]] = np.nan
    one.loc[(one["trial"] == 5) & (one["n"] == 1000), "status"] = "diverged"
    groups.loc[(groups["trial"] == 5) & (groups["n"] == 1000), "mae"] = np.nan
    grid = simulate_trials(SimulatedLaw(A=0.5, beta=0.2, eps=0.02, B=0.0), N_GRID, M_GRID, TRIALS, 4, seed=2,
                           property="grid")
    # the decay rate in n grows with m: no product surface describes it
    slope = 0.1 + 0.4 * (grid["m"] - 20) / 60
    grid.loc[grid["method"] == "finetune", "mae"] = (
        0.6 * grid["n"] ** (-slope) * grid["m"] ** -0.2 + 0.02 + 0.002 * np.random.default_rng(3).normal(
            size=len(grid)))[grid["method"] == "finetune"]
    settings = _settings(one_m={"unit": "g/cm3"}, grid={"unit": "W m^-1 K^-1"})
    design = {"n": N_GRID, "m": [60]}
    for name, trials, extra in (("one_m", one, groups), ("grid", grid, None)):
        files = []
        for method, part in trials.groupby("method"):
            path = chunks / f"{name}_{method}.trials.csv"
            part.to_csv(path, index=False)
            files.append(path)
        gpath = chunks / f"{name}.groups.csv"
        (extra if extra is not None else pd.DataFrame(columns=groups.columns)).to_csv(gpath, index=False)
        folder = root / "analysis" / name
        outputs = {k: folder / f"{k}.csv" for k in ("trials", "summary", "groups", "materials")}
        (root / "prepared" / name).mkdir(parents=True)
        design_path = root / "prepared" / name / "design.json"
        design_path.write_text(json.dumps({**design, "m": [60] if name == "one_m" else M_GRID}))
        stage_aggregate(settings, files, [gpath], [], outputs, design=design_path)
        stage_analyse({**settings, "properties": {name: settings["properties"][name]}},
                      {"trials": outputs["trials"], "summary": outputs["summary"], "groups": outputs["groups"]},
                      folder / "fits.json", folder / "figures", properties=[name])
        (folder / "run").mkdir()
        (folder / "run" / "config.resolved.yaml").write_text(yaml.safe_dump(settings))
        out[name] = folder
    prep = root / "prepared" / "one_m"
    pd.DataFrame(columns=["file", "row", "reason"]).to_csv(prep / "rejected.csv", index=False)
    pd.DataFrame([{"file": "exp.csv", "row": 17, "key": "C=CC(=O)O", "value": 0.00121,
                   "reason": "robust z = 9.3 on the transformed scale (a unit slip?)"}]).to_csv(prep / "qc.csv",
                                                                                                 index=False)
    (prep / "checks.json").write_text(json.dumps([{"level": "warning", "code": "few_test_rows",
                                                   "message": "only 8 test molecules per trial"}]))
    pd.DataFrame(columns=["file", "row", "reason"]).to_csv(root / "prepared" / "grid" / "rejected.csv", index=False)
    return out


def _fits(folder: Path) -> dict:
    return json.loads((folder / "fits.json").read_text())


def test_aggregate_names_the_trials_the_job_list_promised(tmp_path: Path) -> None:
    trials = simulate_trials(SimulatedLaw(), N_GRID, [60], 6, None, seed=0)
    trials = trials[~((trials["method"] == "finetune") & (trials["n"] == 300) & (trials["trial"] == 3))]
    path = tmp_path / "t.csv"
    trials.to_csv(path, index=False)
    design = tmp_path / "design.json"
    design.write_text(json.dumps({"n": [100, 300, None, 1000, 3000, 10000], "m": [60]}))
    settings = {**_settings(), "protocol": {"trials": 6, "direct_baseline": True}}
    outputs = {k: tmp_path / f"{k}.csv" for k in ("trials", "summary", "groups", "materials")}
    with pytest.raises(DataError, match=r"finetune n=300 m=60: 1 of 6 trials missing \(3\)"):
        stage_aggregate(settings, [path], [], [], outputs, design=design)
    # tables written before the replicate column: each trial is its own replicate
    old = simulate_trials(SimulatedLaw(), N_GRID, [60], 6, None, seed=0).drop(columns=["replicate"])
    old.to_csv(path, index=False)
    stage_aggregate(settings, [path], [], [], outputs, design=design)
    written = pd.read_csv(outputs["trials"])
    assert (written["replicate"] == written["trial"]).all()
    assert set(pd.read_csv(outputs["summary"])["replicates"]) == {6}


def test_summary_intervals_and_one_trial(tmp_path: Path) -> None:
    from sim2real_scaling.analysis.summary import summarize

    trials = simulate_trials(SimulatedLaw(), N_GRID, [60], 30, 3, seed=4)
    s = summarize(trials, n_resamples=300)
    assert (s["mae_ci_low"] < s["mae_mean"]).all() and (s["mae_mean"] < s["mae_ci_high"]).all()
    assert set(s["replicates"]) == {3}
    single = summarize(trials[trials["trial"] == 0], n_resamples=300)
    assert single["mae_ci_low"].isna().all() and (single["trials"] == 1).all()
    # a diverged trial is a failure; a simulation reference with nothing to compare (no_reference) is not
    trials.loc[(trials["method"] == "direct") & (trials["trial"] == 2), ["mae", "status"]] = [np.nan, "diverged"]
    none = trials[trials["method"] == "direct"].assign(method="simulation", mae=np.nan, status="no_reference")
    s = summarize(pd.concat([trials, none]), n_resamples=300).set_index("method")
    assert s.loc["direct", "failed"] == 1 and s.loc["direct", "trials"] == 29
    assert s.loc["simulation", "failed"] == 0 and s.loc["simulation", "trials"] == 0


def test_fits_say_what_their_numbers_mean(study: dict[str, Path]) -> None:
    rec = _fits(study["one_m"])["properties"]["one_m"]
    assert rec["method"] == "finetune" and rec["replicates"] == 4
    assert rec["law_n"]["status"] == "ok" and rec["law_n"]["replicates"] == 4
    assert "rate_note" in rec and "grid_m" in rec["rate_note"]
    assert [t["held_out"] for t in rec["backtest"]] == [1]  # 5 n: holding out 2 would leave 3 points
    assert all(p["interval"][0] < p["interval"][1] for t in rec["backtest"] for p in t["points"])
    assert {"direct", "simulation"} <= set(rec["references"])
    groups = {r["group"]: r for r in rec["groups"]["polymer_class"]["table"]}
    # the diverged trial (5 at n = 1000) is left out of its point only: every class keeps its fit
    assert groups["steep"]["status"] == "ok" and groups["mild"]["status"] == "ok"
    assert groups["flat"]["status"] == "no_scaling"
    assert groups["flat"]["rank"] == 3
    grid = _fits(study["grid"])["properties"]["grid"]
    assert grid["surface"]["status"] == "ok" and not grid["surface"]["holds"]
    assert grid["plan"]["recommended"] is False and "does not describe" in grid["plan"]["message"]
    assert grid["marginal_rate"]["source"] == "1d"
    assert any(w["about"] == "plan" for w in grid["warnings"])


def test_report_lists_warnings_checks_and_references(study: dict[str, Path]) -> None:
    root = study["root"]
    fits = {"properties": {}, "figures": {}}
    for name in ("one_m", "grid"):
        part = _fits(study[name])
        fits["properties"].update(part["properties"])
        fits["figures"].update(part["figures"])
    (root / "fits.json").write_text(json.dumps(fits))
    trials = pd.concat([pd.read_csv(study[n] / "trials.csv") for n in ("one_m", "grid")])
    trials.to_csv(root / "trials.csv", index=False)
    (root / "environment.json").write_text(json.dumps({"python": "3.11", "packages": {}}))
    outputs = {"markdown": root / "report.md", "html": root / "report.html"}
    inputs = {"fits": root / "fits.json", "trials": root / "trials.csv", "environment": root / "environment.json",
              "figures": study["one_m"] / "figures",
              "rejected": [str(root / "prepared" / n / "rejected.csv") for n in ("one_m", "grid")]}
    write_report(_settings(one_m={}, grid={}), inputs, outputs)
    md = (root / "report.md").read_text()
    assert "(g/cm³)" in md and "W m⁻¹ K⁻¹" in md
    assert "lmfit stderr" not in md and "the uncertainty to quote" in md
    assert "Extrapolation check (backtest)" in md
    assert "Against the simulation itself" in md and "| transfer (fine-tuning) | 100 | 60 |" in md
    assert "no rate of substitution" in md and "grid_m" in md
    assert "no scaling detected" in md
    assert "**rejected**" in md and "not a recommendation" not in md.split("rejected**")[0]
    assert "Budget plan for" not in md.split("Property: grid")[1]
    assert "> **Warning:** no plan: the surface does not describe the data" in md
    assert "only 8 test molecules per trial" in md and "C=CC(=O)O" in md and "a unit slip?" in md
    assert "> **Warning:** one" not in md  # no single-trial warnings: 40 trials
    page = (root / "report.html").read_text()
    assert "<p class=\"warning\">" in page
    assert 'src="data:image/png;base64,' in page  # self-contained: the figures are embedded


def test_cli_on_a_results_folder_gives_the_workflows_numbers(study: dict[str, Path],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    law = _fits(study["one_m"])["properties"]["one_m"]["law_n"]
    assert main(["fit", str(study["one_m"]), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["settings"]["seed"] == 7 and out["settings"]["n_boot"] == 60
    assert out["fit"]["alpha"] == law["alpha"] and out["fit"]["alpha_ci"] == law["alpha_ci"]
    assert out["fit"]["C_ci"] == law["C_ci"]
    assert main(["backtest", str(study["one_m"]), "--json"]) == 0
    bt = json.loads(capsys.readouterr().out)["backtest"]
    assert bt == json.loads(json.dumps(_fits(study["one_m"])["properties"]["one_m"]["backtest"]))
    # a rejected surface gives no plan
    assert main(["plan", str(study["grid"]), "--cost-sim", "1", "--cost-exp", "100", "--target", "0.05"]) == 2
    assert "no plan: the surface does not describe the data" in capsys.readouterr().err
    # one m: the rate says why there is none and how to get one
    assert main(["rate", str(study["one_m"])]) == 2
    assert "grid_m" in capsys.readouterr().err


def test_cli_prints_no_library_warnings(study: dict[str, Path]) -> None:
    proc = subprocess.run([sys.executable, "-W", "default", "-m", "sim2real_scaling.cli", "required-n",
                           str(study["grid"]), "--target", "0.001", "--n-boot", "20"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Warning:" not in proc.stderr and "RuntimeWarning" not in proc.stderr
    assert "unreachable" in proc.stdout


def test_a_property_page_for_the_native_report(study: dict[str, Path], tmp_path: Path) -> None:
    from sim2real_scaling.report.content import write_property_page

    folder = study["one_m"]
    outputs = {"markdown": tmp_path / "one_m.md", "html": folder / "page.html"}
    write_property_page("one_m", _fits(folder), outputs, prepared_dir=study["root"] / "prepared" / "one_m")
    md = outputs["markdown"].read_text()
    assert md.startswith("# Property: one_m (g/cm³)")
    assert "only 8 test molecules per trial" in md and "Extrapolation check" in md
    assert 'src="data:image/png;base64,' in outputs["html"].read_text()
