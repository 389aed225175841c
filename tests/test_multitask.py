"""Tests of the multitask (chi) path: model shapes and symmetry, pair-grouped splits, loss weighting,
vectorised = one-by-one training, pair-table cleaning, and a small real run on ../shared/data/chi."""

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
from sim2real_scaling.training.runner import GROUP_COLUMNS, MATERIAL_COLUMNS, TRIAL_COLUMNS
from sim2real_scaling.data.features import DescriptorStore
from sim2real_scaling.data.clean import DataError
from sim2real_scaling.training.multitask import (
    Batch,
    MultitaskSettings,
    MultitaskSpec,
    build_pair_data,
    check_multitask_config,
    clean_pair_table,
    encode,
    forward_pairs,
    head,
    init_multitask,
    pair_distance,
    pair_split,
    run_multitask_trials,
    source_rows,
    train_multitask,
    trial_rows,
)
from sim2real_scaling.data.transforms import PropertyTransform

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
        frame["y"] = (frame["value"] - frame["value"].mean()) / frame["value"].std()
        return frame

    src, tgt = table(200, 0.1, 0.02), table(90, 0.0, 0.05)
    keys = np.array(sorted(desc))
    store = DescriptorStore(keys=keys, names=np.array([f"d{i}" for i in range(8)]),
                            values=np.stack([desc[k] for k in keys]))
    return src, tgt, store


def _config(**multitask) -> dict:
    cfg = {
        "study": "t", "input_kind": "smiles_pair", "transfer": "multitask",
        "properties": {"chi": {"source": {"path": "s.csv"}, "target": {"path": "t.csv"}}},
        "grid": {"n": [20, 60], "m": [0.5, 1.0]},
        "protocol": {"trials": 6, "chunk_size": 6, "group_columns": ["polymer_class"]},
        "multitask": {"encoder_hidden": [16, 16, 16], "latent_dim": 8, "head_hidden": [8], "epochs": 40,
                      "lr": 0.01, **multitask},
        "device": "cpu",
    }
    return validate_config(cfg)


def _data(config: dict, seed: int = 0):  # noqa: ANN202
    src, tgt, store = _synthetic_tables(seed)
    transform = PropertyTransform(["standardize"]).fit(tgt["value"].to_numpy())
    tgt["y"] = transform.transform(tgt["value"].to_numpy())
    n_train = len(tgt) - round(0.2 * len(tgt))
    grid = {"n": [20, 60], "m": [n_train // 2, n_train], "n_test": round(0.2 * len(tgt)), "n_train": n_train}
    return build_pair_data(config, "chi", src, tgt, store, transform, grid)


def _batch(data, E: int, n: int, m: int, seed: int = 0) -> Batch:  # noqa: ANN001
    rng = np.random.default_rng(seed)
    s = rng.integers(0, len(data.y_source), (E, n))
    t = rng.integers(0, len(data.y_target), (E, m))
    return Batch(X_mol=torch.from_numpy(data.X_mol), combo_mol=torch.from_numpy(data.combo_mol),
                 combo_extra=torch.from_numpy(data.combo_extra),
                 sim_polymer=torch.from_numpy(data.source_polymer[s]),
                 sim_solvent=torch.from_numpy(data.source_solvent[s]),
                 y_sim=torch.from_numpy(data.y_source[s]),
                 exp_polymer=torch.from_numpy(data.target_polymer[t]),
                 exp_solvent=torch.from_numpy(data.target_solvent[t]),
                 y_exp=torch.from_numpy(data.y_target[t]))


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
    config = _config()
    data = _data(config)
    spec = MultitaskSpec.from_config(config, data.X_mol.shape[1])
    init = init_multitask(spec, [3, 4])
    batch = _batch(data, 2, 50, 40)
    params, _ = train_multitask(init, spec, batch, MultitaskSettings(epochs=15, lr=0.01, lam=1.0))
    for k in init:
        if k.startswith("exp"):
            torch.testing.assert_close(params[k], init[k], rtol=0, atol=0)
    assert not torch.equal(params["sim0.W"], init["sim0.W"])
    # and the experimental labels have no influence at all
    scrambled = Batch(**{**batch.__dict__, "y_exp": batch.y_exp[:, torch.randperm(batch.y_exp.shape[1])] + 5.0})
    params2, _ = train_multitask(init, spec, scrambled, MultitaskSettings(epochs=15, lr=0.01, lam=1.0))
    for k in params:
        torch.testing.assert_close(params[k], params2[k], rtol=0, atol=0)


def test_lambda_zero_ignores_the_simulated_head_and_weights_mix() -> None:
    config = _config()
    data = _data(config)
    spec = MultitaskSpec.from_config(config, data.X_mol.shape[1])
    init = init_multitask(spec, [5])
    batch = _batch(data, 1, 50, 40)
    params, loss0 = train_multitask(init, spec, batch, MultitaskSettings(epochs=5, lr=0.01, lam=0.0))
    for k in init:
        if k.startswith("sim"):
            torch.testing.assert_close(params[k], init[k], rtol=0, atol=0)
    # one step's loss is exactly lambda * MSE_sim + (1 - lambda) * MSE_exp
    _, loss = train_multitask(init, spec, batch, MultitaskSettings(epochs=1, lr=1e-12, lam=0.3))
    with torch.no_grad():
        latent = encode(init, spec, batch.X_mol, batch.combo_mol, batch.combo_extra)
        pred_s = head(init, spec, "sim", pair_distance(latent, batch.sim_polymer, batch.sim_solvent))
        pred_e = head(init, spec, "exp", pair_distance(latent, batch.exp_polymer, batch.exp_solvent))
        mse_s, mse_e = ((pred_s - batch.y_sim) ** 2).mean(), ((pred_e - batch.y_exp) ** 2).mean()
    torch.testing.assert_close(loss[0], 0.3 * mse_s + 0.7 * mse_e)


def test_vectorised_training_equals_training_each_model_alone() -> None:
    config = _config()
    data = _data(config)
    spec = MultitaskSpec.from_config(config, data.X_mol.shape[1])
    init = init_multitask(spec, [10, 11, 12])
    batch = _batch(data, 3, 30, 25)
    settings = MultitaskSettings(epochs=20, lr=0.01, lam=0.5)
    together, loss = train_multitask(init, spec, batch, settings)
    for e in range(3):
        one = {k: v[e:e + 1] for k, v in init.items()}
        per_model = ("sim_", "y_", "exp_")
        sub = Batch(**{k: (v[e:e + 1] if k.startswith(per_model) else v) for k, v in batch.__dict__.items()})
        alone, loss_e = train_multitask(one, spec, sub, settings)
        for k in alone:
            torch.testing.assert_close(alone[k][0], together[k][e], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(loss_e[0], loss[e], rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------------------------------
# splits


def test_pair_split_never_puts_a_pair_on_both_sides() -> None:
    rng = np.random.default_rng(1)
    sizes = rng.choice([1, 1, 1, 2, 3, 5, 14], size=300)
    pairs = np.repeat(np.arange(300), sizes)
    rng.shuffle(pairs)
    n_test = round(0.2 * len(pairs))
    seen_test = set()
    for trial in range(30):
        train, test = pair_split(123, "chi", trial, pairs, n_test)
        assert len(test) == n_test  # exact, so every trial has the same test and training sizes
        assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(pairs)))
        assert not set(pairs[train]) & set(pairs[test])
        seen_test.update(pairs[test].tolist())
    assert len(seen_test) > 250  # different trials test different pairs
    # a trial's split depends on (seed, property, trial) only
    a = pair_split(123, "chi", 7, pairs, n_test)
    b = pair_split(123, "chi", 7, pairs, n_test)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], pair_split(124, "chi", 7, pairs, n_test)[1])


def test_source_rows_exclude_test_pairs_and_are_nested() -> None:
    config = _config(exclude_test_pairs_from_source=True)
    data = _data(config)
    n_test = data.grid["n_test"]
    for t in range(5):
        train, test, src = trial_rows(config, "chi", t, data.target_pairs, data.source_pairs, n_test)
        assert not set(data.source_pairs[src]) & set(data.target_pairs[test])
        assert len(set(src.tolist())) == len(src)
        everything = source_rows(config["seed"], "chi", t, data.source_pairs, None)
        assert np.array_equal(everything[np.isin(everything, src)], src)  # same order: nested along n
    keep = _config()  # the default: the test pairs' simulated rows may be trained on
    _, _, src_all = trial_rows(keep, "chi", 0, data.target_pairs, data.source_pairs, n_test)
    assert len(src_all) == len(data.source_pairs)


def test_chunking_does_not_change_results() -> None:
    config = _config()
    data = _data(config)
    whole = run_multitask_trials(config, data, [0, 1, 2, 3], n_index=1, device=torch.device("cpu")).trials
    part = run_multitask_trials(config, data, [2, 3], n_index=1, device=torch.device("cpu")).trials
    merged = whole[whole.trial.isin([2, 3])].reset_index(drop=True)
    np.testing.assert_allclose(merged["mae"], part["mae"], rtol=1e-4)
    assert list(whole.columns) == TRIAL_COLUMNS
    assert set(whole["method"]) == {"transfer"} and set(whole["n"]) == {60}
    direct = run_multitask_trials(config, data, [0, 1], n_index=None, device=torch.device("cpu")).trials
    assert set(direct["method"]) == {"direct"} and set(direct["n"]) == {0}
    assert sorted(direct["m"].unique().tolist()) == sorted(data.grid["m"])


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
    from sim2real_scaling.stages import stage_aggregate, stage_featurize, stage_multitask, stage_prepare

    config = validate_config(_tiny_chi_config(tmp_path / "results"))
    prepared = tmp_path / "prepared"
    stage_prepare(config, "chi", prepared)
    grid = yaml.safe_load((prepared / "grid.json").read_text())
    assert grid["n_target"] == 1190 and grid["n_source"] == 1206 and grid["target_pairs"] == 766
    assert grid["n_test"] == 238 and grid["n_train"] == 952 and grid["m"] == [476, 952]
    assert grid["n"][0] == 100 and grid["n"][-1] == grid["n_source_pool"] < 1206  # test pairs withheld
    target = pd.read_csv(prepared / "target.csv", keep_default_na=False)
    assert (target["polymer_class"] == "unknown").sum() == 134  # the 5 unclassified polymers
    features = tmp_path / "descriptors.npz"
    stage_featurize(config, [prepared / "source.csv", prepared / "target.csv"], features, tmp_path / "cache.npz")
    assert len(DescriptorStore.load(features).keys) == 186  # 46 polymers + 140 solvents
    outputs = {}
    for name, n_index, chunk in [("transfer_n1_c0", 1, 0), ("transfer_n1_c1", 1, 1), ("direct_c0", None, 0),
                                 ("direct_c1", None, 1)]:
        outputs[name] = {k: tmp_path / "trials" / f"{name}.{k}.csv" for k in ("trials", "groups", "materials")}
        stage_multitask(config, "chi", chunk, n_index, prepared, features, outputs[name])
    agg = {k: tmp_path / f"{k}.csv" for k in ("trials", "summary", "groups", "materials")}
    stage_aggregate(config, [o["trials"] for o in outputs.values()], [o["groups"] for o in outputs.values()],
                    [o["materials"] for o in outputs.values()], agg)
    trials = pd.read_csv(agg["trials"])
    assert list(trials.columns) == TRIAL_COLUMNS
    assert len(trials) == 2 * 4 * 2 and set(trials["status"]) == {"ok"}
    assert set(trials.loc[trials.method == "transfer", "n"]) == {grid["n"][1]}
    assert trials["mae"].between(0.05, 0.6).all(), trials  # chi's SD is 0.69; a trained model does far better
    groups = pd.read_csv(agg["groups"], keep_default_na=False)
    assert list(groups.columns) == GROUP_COLUMNS and set(groups["group_by"]) == {"polymer_class"}
    assert groups.groupby(["method", "m", "trial"])["count"].sum().eq(238).all()
    assert list(pd.read_csv(outputs["direct_c0"]["materials"]).columns) == MATERIAL_COLUMNS


def test_workflow_plans_multitask_jobs_without_pretraining(tmp_path: Path, shared_data: Path) -> None:
    config = _tiny_chi_config(tmp_path / "results")
    path = tmp_path / "chi_tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    snakemake = str(Path(sys.executable).parent / "snakemake")
    out = subprocess.run([snakemake, "-n", "--cores", "1", "--configfile", str(path), "--quiet", "rules"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr + out.stdout
    text = out.stdout + out.stderr
    assert "multitask " in text and "multitask_direct" in text
    assert "pretrain" not in text
