"""The vectorised trial engine against the plain one-model-at-a-time loop, and its seeding."""

import copy

import numpy as np
import pytest
import torch

from sim2real_scaling.training import ensemble
from sim2real_scaling.config import validate_config
from sim2real_scaling.training.runner import PropertyData, pretrain, run_trials, trial_split
from sim2real_scaling.training.ensemble import (MLPSpec, OptimizerSettings, init_parameters, predict, resolve_device,
                                       train_ensemble, train_single)
from sim2real_scaling.data.transforms import PropertyTransform


def synthetic_property(seed=0, ns=300, nt=60, d=12) -> PropertyData:
    g = np.random.default_rng(seed)
    w = g.normal(size=d)
    Xs, Xt = g.normal(size=(ns, d)).astype(np.float32), g.normal(size=(nt, d)).astype(np.float32)
    ys = np.tanh(Xs @ w / 3).astype(np.float32)
    yt_raw = 1.0 + 0.5 * (np.tanh(Xt @ w / 3) + 0.2 * Xt[:, 0]) + g.normal(0, 0.02, nt)
    t = PropertyTransform(["standardize"]).fit(yt_raw)
    return PropertyData(name="p", X_source=Xs, y_source=ys, X_target=Xt, y_target=t.transform(yt_raw).astype(np.float32),
                        value_target=yt_raw, target_keys=[f"m{i}" for i in range(nt)],
                        groups={"cls": np.array(["a", "b", "c"])[np.arange(nt) % 3]}, transform_target=t,
                        grid={"n": [50, 300], "m": [20, 48], "n_test": 12, "n_train": 48})


def config(**protocol):
    base = {"study": "t", "seed": 11, "device": "cpu",
            "properties": {"p": {"source": {"path": "s"}, "target": {"path": "t"}}},
            "protocol": {"trials": 8, "chunk_size": 8, "group_columns": ["cls"], "per_material": True, **protocol},
            "model": {"hidden": [16, 8], "pretrain": {"epochs": 40, "batch_size": 32},
                      "finetune": {"epochs": 60, "lr": 0.003}, "direct": {"epochs": 60, "lr": 0.003}}}
    return validate_config(base)


@pytest.mark.parametrize(("activation", "weight_decay", "block_bytes"),
                         [("relu", 0.0, None), ("tanh", 1e-3, None), ("silu", 0.0, None), ("relu", 1e-3, 1)])
def test_vectorised_ensemble_matches_plain_loop(monkeypatch, activation, weight_decay, block_bytes):
    """Every model gets the update torch.optim.Adam gives it alone, over 100 steps (Adam's bias correction
    included), with each activation, with weight decay, and when a large ensemble is trained in blocks."""
    torch.manual_seed(0)
    spec = MLPSpec(d_in=10, hidden=(16, 8), activation=activation)
    X, y = torch.randn(80, 10), torch.randn(80)
    seeds = list(range(3, 3 + (20 if block_bytes else 4)))
    if block_bytes:  # blocks of MIN_BLOCK models: 20 models in 3 blocks
        monkeypatch.setattr(ensemble, "CPU_BLOCK_BYTES", block_bytes)
        assert ensemble.block_size(len(seeds), 40, 10, spec.widths, torch.device("cpu")) < len(seeds)
    rows = torch.stack([torch.randperm(80, generator=torch.Generator().manual_seed(s))[:40] for s in seeds])
    test = torch.stack([torch.randperm(80, generator=torch.Generator().manual_seed(s))[40:] for s in seeds])
    settings = OptimizerSettings(epochs=100, lr=3e-3, weight_decay=weight_decay)
    init = init_parameters(spec, seeds)
    params, _ = train_ensemble(init, X, y, rows, settings, activation=activation)
    batched = predict(params, X, test, activation=activation)
    for e in range(len(seeds)):
        model = train_single([p[e] for p in init], X, y, rows[e], settings, activation=activation)
        with torch.no_grad():
            single = model(X[test[e]]).squeeze(-1)
        torch.testing.assert_close(batched[e], single, rtol=1e-4, atol=1e-5)


def test_each_model_initialisation_depends_only_on_its_seed():
    spec = MLPSpec(d_in=5, hidden=(4,))
    a = init_parameters(spec, [1, 2, 3])
    b = init_parameters(spec, [3])
    for pa, pb in zip(a, b):
        assert torch.equal(pa[2], pb[0])
    assert not torch.equal(a[0][0], a[0][1])


def test_chunk_size_does_not_change_trial_maes():
    data = synthetic_property()
    cfg = config()
    state = pretrain(cfg, data, 0)
    whole = run_trials(cfg, data, list(range(8)), pretrained=state).trials
    parts = [run_trials(cfg, data, t, pretrained=state).trials for t in ([0, 1, 2], [3], [4, 5, 6, 7])]
    merged = __import__("pandas").concat(parts).sort_values(["m", "trial"]).reset_index(drop=True)
    whole = whole.sort_values(["m", "trial"]).reset_index(drop=True)
    np.testing.assert_allclose(merged["mae"], whole["mae"], rtol=1e-5)


def test_same_seed_same_numbers_other_seed_other_numbers():
    data = synthetic_property()
    a = run_trials(config(), data, [0, 1, 2]).trials["mae"].to_numpy()
    b = run_trials(config(), data, [0, 1, 2]).trials["mae"].to_numpy()
    other = copy.deepcopy(config())
    other["seed"] = 12
    c = run_trials(other, data, [0, 1, 2]).trials["mae"].to_numpy()
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_trial_outputs_follow_the_contract():
    data = synthetic_property()
    cfg = config()
    result = run_trials(cfg, data, [0, 1, 2, 3], pretrained=pretrain(cfg, data, 1))
    t = result.trials
    assert set(t["method"]) == {"transfer"} and set(t["n"]) == {300} and set(t["m"]) == {20, 48}
    assert len(t) == 8 and (t["status"] == "ok").all() and (t["mae"] > 0).all()
    assert set(result.groups["group"]) <= {"a", "b", "c"} and set(result.groups["group_by"]) == {"cls"}
    # per-material errors: every test appearance counted once per m
    assert result.materials.groupby("m")["count"].sum().tolist() == [4 * 12, 4 * 12]


def test_split_is_shared_across_n_and_nested_in_m():
    train, test = trial_split(5, "p", 3, 60, 12)
    assert len(set(train) | set(test)) == 60 and not set(train) & set(test)
    train2, test2 = trial_split(5, "p", 3, 60, 12)
    assert np.array_equal(train, train2) and np.array_equal(test, test2)


def test_diverged_trials_are_reported_not_fatal():
    data = synthetic_property()
    cfg = config()
    cfg["model"]["direct"]["lr"] = 1e6  # blows up
    data.transform_target = PropertyTransform(["log"]).fit(np.exp(np.ones(3)))
    t = run_trials(cfg, data, [0, 1]).trials
    assert (t["status"] == "diverged").all() and t["mae"].isna().all()


def test_cuda_request_falls_back_to_cpu_without_gpu():
    device = resolve_device("cuda")
    assert device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu").type == "cpu"
