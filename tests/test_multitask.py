"""The multitask model of the chi study: the pair encoder and its two heads, its training inside the trial runner
(pair-grouped splits and folds, model selection), and a small real run on the public chi data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from sim2real_scaling.config import ConfigError, validate_config
from sim2real_scaling.contract import GROUP_COLUMNS, MATERIAL_COLUMNS, TRIAL_COLUMNS
from sim2real_scaling.data.clean import DataError
from sim2real_scaling.data.features import DescriptorStore
from sim2real_scaling.data.pairs import check_multitask_config, clean_pair_table
from sim2real_scaling.training.design import Design
from sim2real_scaling.training.ensemble import OptimizerSettings
from sim2real_scaling.training.multitask import (Batch, MultitaskSpec, encode, forward_pairs, head, init_multitask,
                                                 load_pair_data, pair_distance, train_multitask)
from sim2real_scaling.training.runner import run_job
from sim2real_scaling.training.settings import TrainingSettings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _one_torch_thread():  # noqa: ANN202
    """These models are tiny: one thread is fastest, and spares a busy machine OpenMP's spin-waits."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

CHI_DATA = (ROOT / ".." / "shared" / "data" / "chi").resolve()

# ----------------------------------------------------------------------------------------------------
# a small synthetic pair data set: 6 polymers, 10 solvents, chi from a hidden 2-D "solubility parameter"


def _synthetic_tables(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, DescriptorStore]:
    rng = np.random.default_rng(seed)
    polymers = [f"P{i}" for i in range(6)]
    solvents = [f"S{i}" for i in range(10)]
    delta = {k: rng.normal(size=2) for k in polymers + solvents}
    desc = {k: np.concatenate([delta[k], rng.normal(size=6)]) for k in delta}

    def table(n_rows: int, bias: float, noise: float) -> pd.DataFrame:
        rows = []
        for _ in range(n_rows):
            p, s = rng.choice(polymers), rng.choice(solvents)
            T = float(rng.choice([298.15, 323.15, 348.15]))
            chi = 0.3 + 300.0 / T * float(np.sum((delta[p] - delta[s]) ** 2)) * 0.2 + bias + rng.normal(0, noise)
            rows.append({"pair_key": f"{p}|{s}", "polymer_key": p, "solvent_key": s, "temperature_K": T,
                         "value": chi, "polymer_class": "A" if p in polymers[:3] else "B"})
        frame = pd.DataFrame(rows).drop_duplicates(["pair_key", "temperature_K"]).reset_index(drop=True)
        frame["source_row"] = np.arange(len(frame)) + 2
        return frame

    src, tgt = table(200, 0.1, 0.02), table(90, 0.0, 0.05)
    keys = np.array(sorted(desc))
    store = DescriptorStore(keys=keys, names=np.array([f"d{i}" for i in range(8)]),
                            values=np.stack([desc[k] for k in keys]))
    return src, tgt, store


def _slices(**multitask) -> dict:
    config = validate_config({
        "study": "t", "input_kind": "smiles_pair", "transfer": "multitask", "seed": 5,
        "properties": {"chi": {"source": {"path": "s.csv"}, "target": {"path": "t.csv"},
                               "transform": ["standardize"], "transform_fit_on": "each"}},
        "grid": {"n": [20, 60], "m": [0.5, 1.0]},
        "protocol": {"trials": 6, "chunk_size": 6, "group_columns": ["polymer_class"]},
        "model": {"selection": {"scheme": "holdout", "every": 2, "patience": 5}},
        "multitask": {"encoder_hidden": [16, 16, 16], "latent_dim": 8, "head_hidden": [8], "epochs": 40,
                      "lr": 0.01, **multitask},
        "device": "cpu",
    })
    return {**config, "property": config["properties"]["chi"]}


def _data(slices: dict, seed: int = 0):  # noqa: ANN202
    src, tgt, store = _synthetic_tables(seed)
    n_test = round(0.2 * len(tgt))
    n_train = len(tgt) - n_test
    design = Design(property="chi", n=[20, 60], m=[n_train // 2, n_train], n_test=n_test, n_train=n_train,
                    n_source=len(src), n_target=len(tgt))
    return load_pair_data(TrainingSettings.from_slices("chi", slices), src, tgt, store, design)


def _batch(data, E: int, n: int, m: int, seed: int = 0) -> Batch:  # noqa: ANN001
    rng = np.random.default_rng(seed)
    s = rng.integers(0, len(data.source_values), (E, n))
    t = rng.integers(0, len(data.target_values), (E, m))
    y_s = data.source_transform.transform(data.source_values).astype(np.float32)
    y_t = ((data.target_values - data.target_values.mean()) / data.target_values.std()).astype(np.float32)
    return Batch(X_mol=torch.from_numpy(data.X_mol), combo_mol=torch.from_numpy(data.combo_mol),
                 combo_extra=torch.from_numpy(data.combo_extra),
                 sim_polymer=torch.from_numpy(data.source_polymer[s]),
                 sim_solvent=torch.from_numpy(data.source_solvent[s]),
                 y_sim=torch.from_numpy(y_s[s]),
                 exp_polymer=torch.from_numpy(data.target_polymer[t]),
                 exp_solvent=torch.from_numpy(data.target_solvent[t]),
                 y_exp=torch.from_numpy(y_t[t]))


def _spec(slices: dict, data) -> MultitaskSpec:  # noqa: ANN001
    return MultitaskSpec.from_settings(TrainingSettings.from_slices("chi", slices).multitask, data.X_mol.shape[1])


# ----------------------------------------------------------------------------------------------------
# the model


def test_shapes_and_parameter_count() -> None:
    spec = MultitaskSpec(d_mol=8, encoder_hidden=(16, 12, 10), latent_dim=5, head_hidden=(7,))
    params = init_multitask(spec, [1, 2, 3])
    assert params["enc0.W"].shape == (3, 8 + 3, 16)  # descriptor + flag, T, 1/T
    assert params["enc3.W"].shape == (3, 10, 5)  # 3 hidden layers, then the latent map
    assert params["sim0.W"].shape == params["exp0.W"].shape == (3, 5, 7)
    assert params["exp1.b"].shape == (3, 1, 1)
    assert sum(p[0].numel() for p in params.values()) == spec.n_parameters()
    X = torch.randn(4, 8)
    combo_mol = torch.tensor([0, 1, 2, 3, 0])
    extra = torch.randn(5, 3)
    latent = encode(params, spec, X, combo_mol, extra)
    assert latent.shape == (3, 5, 5)
    pred = forward_pairs(params, spec, X, combo_mol, extra, torch.tensor([0, 4]), torch.tensor([1, 2]), "exp")
    assert pred.shape == (3, 2)
    per_model = forward_pairs(params, spec, X, combo_mol, extra, torch.tensor([[0, 4]] * 3),
                              torch.tensor([[1, 2]] * 3), "exp")
    torch.testing.assert_close(pred, per_model)


def test_same_seed_same_model_and_models_independent() -> None:
    spec = MultitaskSpec(d_mol=4, encoder_hidden=(8, 8, 8), latent_dim=4, head_hidden=(4,))
    a, b = init_multitask(spec, [7, 8]), init_multitask(spec, [8])
    for k in a:
        torch.testing.assert_close(a[k][1], b[k][0], rtol=0, atol=0)


def test_prediction_does_not_depend_on_encoding_order() -> None:
    """(z_p - z_s)^2 is symmetric: swapping which molecule is encoded first gives the same chi. The
    polymer/solvent flag travels with each molecule, so the roles themselves are not interchangeable."""
    torch.manual_seed(0)
    spec = MultitaskSpec(d_mol=6, encoder_hidden=(10, 10, 10), latent_dim=4, head_hidden=(5,))
    params = init_multitask(spec, [0, 1])
    X = torch.randn(3, 6)
    combo_mol = torch.tensor([0, 1, 2, 0])
    extra = torch.tensor([[1.0, 0.2, -0.2], [0.0, 0.2, -0.2], [0.0, -1.0, 1.1], [0.0, 0.2, -0.2]])
    poly, solv = torch.tensor([0, 0]), torch.tensor([1, 2])
    for which in ("sim", "exp"):
        ab = forward_pairs(params, spec, X, combo_mol, extra, poly, solv, which)
        ba = forward_pairs(params, spec, X, combo_mol, extra, solv, poly, which)
        torch.testing.assert_close(ab, ba, rtol=0, atol=0)
    # the flag matters: molecule 0 encoded as a solvent (combo 3) is another point in latent space
    latent = encode(params, spec, X, combo_mol, extra)
    assert not torch.allclose(latent[:, 0], latent[:, 3])
    d = pair_distance(latent, poly, solv)
    assert d.shape == (2, 2, 4) and bool((d >= 0).all())


def test_lambda_one_ignores_the_experimental_head() -> None:
    slices = _slices()
    data = _data(slices)
    spec = _spec(slices, data)
    init = init_multitask(spec, [3, 4])
    batch = _batch(data, 2, 50, 40)
    params, _ = train_multitask(init, spec, batch, OptimizerSettings(epochs=15, lr=0.01), 1.0)
    for k in init:
        if k.startswith("exp"):
            torch.testing.assert_close(params[k], init[k], rtol=0, atol=0)
    assert not torch.equal(params["sim0.W"], init["sim0.W"])
    # and the experimental labels have no influence at all
    scrambled = Batch(**{**batch.__dict__, "y_exp": batch.y_exp[:, torch.randperm(batch.y_exp.shape[1])] + 5.0})
    params2, _ = train_multitask(init, spec, scrambled, OptimizerSettings(epochs=15, lr=0.01), 1.0)
    for k in params:
        torch.testing.assert_close(params[k], params2[k], rtol=0, atol=0)


def test_lambda_zero_ignores_the_simulated_head_and_weights_mix() -> None:
    slices = _slices()
    data = _data(slices)
    spec = _spec(slices, data)
    init = init_multitask(spec, [5])
    batch = _batch(data, 1, 50, 40)
    params, loss0 = train_multitask(init, spec, batch, OptimizerSettings(epochs=5, lr=0.01), 0.0)
    for k in init:
        if k.startswith("sim"):
            torch.testing.assert_close(params[k], init[k], rtol=0, atol=0)
    # one step's loss is exactly lambda * MSE_sim + (1 - lambda) * MSE_exp
    _, loss = train_multitask(init, spec, batch, OptimizerSettings(epochs=1, lr=1e-12), 0.3)
    with torch.no_grad():
        latent = encode(init, spec, batch.X_mol, batch.combo_mol, batch.combo_extra)
        pred_s = head(init, spec, "sim", pair_distance(latent, batch.sim_polymer, batch.sim_solvent))
        pred_e = head(init, spec, "exp", pair_distance(latent, batch.exp_polymer, batch.exp_solvent))
        mse_s, mse_e = ((pred_s - batch.y_sim) ** 2).mean(), ((pred_e - batch.y_exp) ** 2).mean()
    torch.testing.assert_close(loss[0], 0.3 * mse_s + 0.7 * mse_e)


def test_vectorised_training_equals_training_each_model_alone() -> None:
    slices = _slices()
    data = _data(slices)
    spec = _spec(slices, data)
    init = init_multitask(spec, [10, 11, 12])
    batch = _batch(data, 3, 30, 25)
    settings = OptimizerSettings(epochs=20, lr=0.01)
    together, loss = train_multitask(init, spec, batch, settings, 0.5)
    for e in range(3):
        one = {k: v[e:e + 1] for k, v in init.items()}
        per_model = ("sim_", "y_", "exp_")
        sub = Batch(**{k: (v[e:e + 1] if k.startswith(per_model) else v) for k, v in batch.__dict__.items()})
        alone, loss_e = train_multitask(one, spec, sub, settings, 0.5)
        for k in alone:
            torch.testing.assert_close(alone[k][0], together[k][e], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(loss_e[0], loss[e], rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------------------------------
# trials of the runner: pair-grouped splits, the draw of simulated rows, chunking


def test_a_trial_never_tests_a_pair_it_trains_on_and_chunking_changes_nothing() -> None:
    slices = _slices()
    data = _data(slices)
    settings = TrainingSettings.from_slices("chi", slices)
    cpu = torch.device("cpu")
    whole, _ = run_job(settings, data, "multitask", [0, 1, 2, 3], [1], device=cpu)
    part, _ = run_job(settings, data, "multitask", [2, 3], [1], device=cpu)
    w = whole.trials[whole.trials.trial.isin([2, 3])].reset_index(drop=True)
    np.testing.assert_allclose(w["mae"], part.trials["mae"], rtol=1e-4)
    np.testing.assert_array_equal(w["epochs"], part.trials["epochs"])
    assert list(whole.trials.columns) == list(TRIAL_COLUMNS)
    assert set(whole.trials["method"]) == {"multitask"} and set(whole.trials["n"]) == {60}
    assert set(whole.trials["selection"]) == {"holdout"} and whole.trials["val_mae"].notna().all()
    direct, _ = run_job(settings, data, "direct", [0, 1], None, device=cpu)
    assert set(direct.trials["method"]) == {"direct"} and set(direct.trials["n"]) == {0}
    assert sorted(direct.trials["m"].unique().tolist()) == sorted(data.design.m)
    from sim2real_scaling.training.runner import make_protocol

    protocol = make_protocol(settings, data)
    for trial in range(6):
        train, test = protocol.split(trial)
        assert not set(data.split_groups[train]) & set(data.split_groups[test])


def test_withheld_test_pairs_never_reach_a_trial_and_draws_are_nested() -> None:
    from sim2real_scaling.training.multitask import Multitask
    from sim2real_scaling.training.runner import make_protocol

    slices = _slices(exclude_test_pairs_from_source=True)
    data = _data(slices)
    settings = TrainingSettings.from_slices("chi", slices)
    strategy = Multitask(settings, data, make_protocol(settings, data), torch.device("cpu"))
    everything = strategy.protocol.source_order(strategy.protocol.replicate_of(0), len(data.source_values))
    for trial in range(5):
        _, test = strategy.protocol.split(trial)
        rows = strategy.source_rows(trial, test)
        assert not set(data.source_pairs[rows]) & set(data.split_groups[test])
        if strategy.protocol.replicate_of(trial) == strategy.protocol.replicate_of(0):
            assert np.array_equal(everything[np.isin(everything, rows)], rows)  # same order: nested along n


# ----------------------------------------------------------------------------------------------------
# input tables and config


def test_clean_pair_table_rejects_with_reasons_and_merges_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    pd.DataFrame({
        "poly": ["*CC*", "*CC(*)c1ccccc1", "not a smiles", "*CC*", "*CC*", "*CC*", "C(*)C*"],
        "solv": ["CCO", "c1ccccc1", "CCO", "C1CC1(", "CCO", "CCO", "OCC"],
        "T": [300.0, 300.0, 300.0, 300.0, -5.0, 300.0, 300.0],
        "chi": [0.5, 0.4, 0.3, 0.2, 0.1, np.nan, 0.7],
    }).to_csv(path, index=False)
    spec = {"path": str(path), "key_column": "poly", "solvent_column": "solv", "temperature_column": "T",
            "value_column": "chi", "id_column": None, "filter": {}}
    clean = clean_pair_table(spec, role="target", property_name="chi", duplicates="mean")
    reasons = dict(zip(clean.rejected["row"], clean.rejected["reason"], strict=True))
    assert set(reasons) == {4, 5, 6, 7}
    assert reasons[4].startswith("polymer: invalid SMILES")
    assert reasons[5].startswith("solvent: invalid SMILES")
    assert "kelvin" in reasons[6]
    assert reasons[7] == "missing value"
    table = clean.table
    # '*CC*' and 'C(*)C*' are the same repeat unit, 'CCO' and 'OCC' the same solvent: one pair, averaged
    assert len(table) == 2
    merged = table[table["solvent_key"] == "CCO"]
    assert merged["value"].item() == pytest.approx(0.6)
    assert merged["pair_key"].item() == f"{merged['polymer_key'].item()}|CCO"
    with pytest.raises(DataError, match="conflicting values"):
        clean_pair_table(spec, role="target", property_name="chi", duplicates="error")


def test_config_requires_pairs_with_multitask() -> None:
    config = validate_config({"study": "x", "transfer": "multitask",
                              "properties": {"p": {"source": {"path": "a"}, "target": {"path": "b"}}}})
    with pytest.raises(ConfigError, match="smiles_pair"):
        check_multitask_config(config)
    assert validate_config({"study": "x", "properties": {"p": {"source": {"path": "a"}, "target": {"path": "b"}}}}
                           )["multitask"]["lambda"] == 0.5
    with pytest.raises(ConfigError):
        validate_config({"study": "x", "multitask": {"lambda": 1.5},
                         "properties": {"p": {"source": {"path": "a"}, "target": {"path": "b"}}}})


# ----------------------------------------------------------------------------------------------------
# a small real run on the public chi data (prepare -> featurize -> multitask/direct -> aggregate)


def _tiny_chi_config(results: Path) -> dict:
    table = {"key_column": "polymer_smiles", "solvent_column": "solvent_smiles",
             "temperature_column": "temperature_K", "value_column": "chi", "id_column": "pair_id"}
    return {
        "study": "chi_tiny", "seed": 7, "device": "cpu", "results_dir": str(results),
        "input_kind": "smiles_pair", "transfer": "multitask",
        "descriptor": {"set": "rdkit_basic"},
        "properties": {"chi": {"source": {"path": str(CHI_DATA / "chi_cosmors.csv"), **table},
                               "target": {"path": str(CHI_DATA / "chi_experimental.csv"), **table},
                               "transform": ["standardize"], "transform_fit_on": "each"}},
        "grid": {"n": "auto", "n_points": 2, "n_min": 100, "m": [0.5, 1.0]},
        "protocol": {"trials": 4, "chunk_size": 2, "group_columns": ["polymer_class"], "per_material": True},
        "multitask": {"encoder_hidden": [16, 16, 16], "latent_dim": 8, "head_hidden": [8], "epochs": 60, "lr": 0.01,
                      "exclude_test_pairs_from_source": True},
        "analysis": {"bootstrap_resamples": 100, "fit_bootstrap": 0},
    }


def test_small_real_chi_run(tmp_path: Path, shared_data: Path) -> None:
    from conftest import prepare_property
    from sim2real_scaling.stages import stage_train
    from sim2real_scaling.training.design import Design

    config = validate_config(_tiny_chi_config(tmp_path / "results"))
    prepared = tmp_path / "prepared"
    features = tmp_path / "descriptors.npz"
    inputs = prepare_property(config, "chi", prepared, features)
    assert len(DescriptorStore.load(features).keys) == 186  # 46 polymers + 140 solvents
    design = Design.from_dict(yaml.safe_load((prepared / "design.json").read_text()))
    # QC drops one isolated COSMO-RS value (chi 4.6 for trans-polybutadiene in methanol, 14 robust SDs out)
    qc = pd.read_csv(prepared / "qc.csv")
    assert list(qc.columns) == ["table", "file", "row", "key", "value", "check", "score", "reason", "action"]
    assert list(qc["action"]) == ["dropped"]
    assert qc[["table", "row", "key"]].values.tolist() == [["source", 108, "*C/C=C/C*|CO"]]
    assert design.n_target == 1190 and design.n_source == 1205 and design.n_test == 238
    assert design.qc == {"action": "drop", "flagged": 1, "dropped": 1}
    assert design.n_train == 952 and design.m == [476, 952]
    assert design.n[0] == 100 and design.n[-1] < 1205  # test pairs withheld: the pool is what every trial keeps
    target = pd.read_csv(prepared / "target.csv", keep_default_na=False)
    assert (target["polymer_class"] == "unknown").sum() == 134  # the 5 unclassified polymers
    inputs["design"] = prepared / "design.json"
    tables = []
    for method, n_indices, chunk in [("multitask", [1], 0), ("multitask", [1], 1), ("direct", None, 0),
                                     ("simulation", None, 0)]:
        out = {k: tmp_path / "trials" / f"{method}_{chunk}.{k}.csv" for k in ("trials", "groups", "materials")}
        stage_train(config, "chi", method, chunk, n_indices, inputs, out)
        tables.append({k: pd.read_csv(v, keep_default_na=False, na_values=[""]) for k, v in out.items()})
    trials = pd.concat([t["trials"] for t in tables], ignore_index=True)
    assert list(trials.columns) == list(TRIAL_COLUMNS)
    learned = trials[trials.method != "simulation"]
    assert len(learned) == 2 * 2 * 2 + 2 * 2 and set(learned["status"]) == {"ok"}
    assert set(trials.loc[trials.method == "multitask", "n"]) == {design.n[1]}
    assert learned["mae"].between(0.05, 0.6).all(), learned  # chi's SD is 0.69; a trained model does far better
    sim = trials[trials.method == "simulation"]
    assert (sim["sim_rows"] > 0).all() and (sim["mae"] == sim["mae_sim_rows"]).all()
    groups = tables[2]["groups"]
    assert list(groups.columns) == list(GROUP_COLUMNS) and set(groups["group_by"]) == {"polymer_class"}
    assert groups.groupby(["method", "m", "trial"])["count"].sum().eq(238).all()
    assert list(tables[2]["materials"].columns) == list(MATERIAL_COLUMNS)


def test_workflow_plans_multitask_jobs_without_pretraining(tmp_path: Path, shared_data: Path) -> None:
    config = _tiny_chi_config(tmp_path / "results")
    path = tmp_path / "chi_tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    snakemake = str(Path(sys.executable).parent / "snakemake")
    out = subprocess.run([snakemake, "-n", "--cores", "1", "--configfile", str(path), "--quiet", "rules"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr + out.stdout
    text = out.stdout + out.stderr
    assert "transfer " in text and "direct " in text and "simulation " in text and "design " in text
    assert "pretrain" not in text
