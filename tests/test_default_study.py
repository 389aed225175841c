"""The embedded default study, run whole as a user runs it: with model selection inside every trial and one
pretraining draw per trial, transfer learning beats direct learning at every n (paired 90% intervals below 0),
the law decays, and every trial records how its networks were chosen."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from conftest import ROOT, run_snakemake


def test_transfer_beats_direct_at_every_n_on_the_synthetic_default(tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "config" / "default.yaml").read_text())
    config["results_dir"] = str(tmp_path / "results")
    for key in ("source_path", "target_path"):
        config["synthetic"][key] = str(tmp_path / "input" / Path(config["synthetic"][key]).name)
    for side, key in (("source", "source_path"), ("target", "target_path")):
        config["properties"]["density"][side]["path"] = config["synthetic"][key]
    path = tmp_path / "default.yaml"
    path.write_text(yaml.safe_dump(config))
    run_snakemake("--cores", "2", "--configfile", str(path), "--nolock", "--quiet", "rules", timeout=1500)
    study = tmp_path / "results" / "default"
    fits = json.loads((study / "fits.json").read_text())["properties"]["density"]
    comparison = [c for c in fits["transfer_vs_direct"] if c.get("m") == fits["law_n"]["m"]]
    assert len(comparison) == 7
    for c in comparison:
        assert c["difference"]["transfer_better"], c
        assert c["difference"]["ci_high"] < 0
    assert fits["law_n"]["alpha"] > 0.05
    trials = pd.read_csv(study / "trials.csv")
    learned = trials[trials["method"].isin(["finetune", "direct"])]
    assert (learned["status"] == "ok").all() and set(learned["selection"]) == {"cv5"}
    assert learned["epochs"].between(0, 300).all() and learned["val_mae"].notna().all()
    finetune = learned[learned["method"] == "finetune"]
    assert (finetune["replicate"] == finetune["trial"]).all()  # one pretraining draw per trial
    # the synthetic target polymers were never simulated: the simulation reference says so, it does not fail
    assert set(trials.loc[trials["method"] == "simulation", "status"]) == {"no_reference"}
    assert json.loads((study / "complete.json").read_text())["complete"]
    summary = pd.read_csv(study / "summary.csv")
    assert set(summary["method"]) >= {"finetune", "direct"}
