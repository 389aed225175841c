"""The fast ensemble engine against the standard path (torch.nn layers, autograd and torch.optim.Adam, one model at
a time): full batch and mini-batch, every activation, weight decay, cache blocks, the non-fused Adam fallback,
rates of each model's own, and the checkpoints that model selection keeps."""

import numpy as np
import pytest
import torch

from sim2real_scaling.training import ensemble
from sim2real_scaling.training.ensemble import (Checkpoints, MLPSpec, OptimizerSettings, as_module, init_parameters,
                                                predict, resolve_device, train_ensemble, train_single)


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


def test_cuda_request_falls_back_to_cpu_without_gpu():
    device = resolve_device("cuda")
    assert device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu").type == "cpu"


def _plain_minibatch(params_e, X, y, rows, settings, seed, activation="relu", lr=None, wd=None):  # noqa: ANN001
    """The standard path for one model: its own shuffled mini-batches (the same generator draws as the engine)."""
    model = as_module(params_e, activation)
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr if lr is None else lr,
                           weight_decay=settings.weight_decay if wd is None else wd)
    g = torch.Generator().manual_seed(int(seed))
    m, bs = len(rows), settings.batch_size or len(rows)
    steps = 1 if bs >= m else -(-m // bs)
    for _ in range(max(settings.epochs, -(-settings.min_steps // steps))):
        order = rows[torch.randperm(m, generator=g)]
        for i in range(0, m, bs):
            r = order[i:i + bs]
            opt.zero_grad(set_to_none=True)
            loss = ((model(X[r]).squeeze(-1) - y[r]) ** 2).mean()
            loss.backward()
            opt.step()
    return model


def _data(n=90, d=10, seed=0):  # noqa: ANN202
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randn(n, generator=g)


@pytest.mark.parametrize("fallback", [False, True])
def test_minibatch_pretraining_matches_the_standard_path(monkeypatch, fallback):
    """Mini-batches (the last one short) with each model's own shuffles, min_steps, and the non-fused Adam
    fallback of machines whose torch lacks the fused kernel: the same models as nn layers + torch.optim.Adam."""
    if fallback:
        def no_kernel(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            raise RuntimeError("no fused Adam here")

        monkeypatch.setattr(torch, "_fused_adam_", no_kernel)
    spec = MLPSpec(d_in=10, hidden=(12, 6))
    X, y = _data()
    seeds = [11, 12, 13]
    rows = torch.stack([torch.randperm(90, generator=torch.Generator().manual_seed(s))[:70] for s in seeds])
    settings = OptimizerSettings(epochs=4, lr=2e-3, weight_decay=1e-4, batch_size=16, min_steps=20)
    init = init_parameters(spec, seeds)
    params, _ = train_ensemble(init, X, y, rows, settings, shuffle_seeds=[101, 102, 103])
    batched = predict(params, X, torch.arange(90).expand(3, 90))
    for e in range(3):
        model = _plain_minibatch([p[e] for p in init], X, y, rows[e], settings, 101 + e)
        with torch.no_grad():
            torch.testing.assert_close(batched[e], model(X).squeeze(-1), rtol=1e-4, atol=1e-5)


def test_rates_of_each_model_own_match_the_standard_path():
    """A grid of learning rates and weight decays in one ensemble: each model as torch.optim.Adam with its own."""
    spec = MLPSpec(d_in=10, hidden=(8,))
    X, y = _data()
    seeds = [1, 2, 3, 4]
    rows = torch.stack([torch.randperm(90, generator=torch.Generator().manual_seed(s))[:60] for s in seeds])
    lr = torch.tensor([1e-3, 3e-3, 1e-2, 3e-3])
    wd = torch.tensor([0.0, 1e-3, 0.0, 1e-2])
    settings = OptimizerSettings(epochs=50)
    init = init_parameters(spec, seeds)
    params, _ = train_ensemble(init, X, y, rows, settings, lr=lr, weight_decay=wd)
    batched = predict(params, X, torch.arange(90).expand(4, 90))
    for e in range(4):
        model = _plain_minibatch([p[e] for p in init], X, y, rows[e], settings, 0, lr=float(lr[e]), wd=float(wd[e]))
        with torch.no_grad():
            torch.testing.assert_close(batched[e], model(X).squeeze(-1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("block_bytes", "batch_size"), [(None, None), (1, None), (None, 16)],
                         ids=["one_block", "cache_blocks", "mini_batch"])
def test_checkpoints_keep_the_parameters_of_the_epoch_they_name(monkeypatch, block_bytes, batch_size):
    """Early stopping keeps each model's parameters at its best check, and a refit stops each model at its own
    epoch: the kept parameters equal a model trained alone for exactly that many epochs (in cache blocks too, with
    mini-batches too, and after models that are done have left the ensemble)."""
    if block_bytes:
        monkeypatch.setattr(ensemble, "CPU_BLOCK_BYTES", block_bytes)
    spec = MLPSpec(d_in=10, hidden=(8,))
    X, y = _data(n=120)
    E = 24
    seeds = list(range(20, 20 + E))
    perms = [torch.randperm(120, generator=torch.Generator().manual_seed(s)) for s in seeds]
    rows, val = torch.stack([p[:60] for p in perms]), torch.stack([p[60:80] for p in perms])
    settings = OptimizerSettings(epochs=60, lr=1e-2, batch_size=batch_size)
    shuffles = [s + 1000 for s in seeds]
    init = init_parameters(spec, seeds)
    compactions = []
    original = ensemble._Ensemble.subset

    def spy(self, keep, s):  # noqa: ANN001, ANN202
        compactions.append(len(keep))
        return original(self, keep, s)

    monkeypatch.setattr(ensemble._Ensemble, "subset", spy)

    def score(pred: np.ndarray, models: np.ndarray) -> np.ndarray:
        return np.abs(pred - y.numpy()[val.numpy()[models]]).mean(axis=1)

    best = Checkpoints(every=5, mode="best", val_idx=val, score=score, patience=3)
    kept, _ = train_ensemble(init, X, y, rows, settings, checkpoints=best, shuffle_seeds=shuffles)
    stop_at = np.array([0, 5, 10, 20, 25, 30, 40, 45, 50, 60] * 2 + [5, 5, 10, 60])
    at = Checkpoints(every=5, mode="at", stop_at=stop_at)
    refit, _ = train_ensemble(init, X, y, rows, settings, checkpoints=at, shuffle_seeds=shuffles)
    assert compactions or block_bytes  # models that were done left the ensemble (blocks of 8 stay whole)
    for e in range(E):
        for params, epochs in ((kept, int(best.best_epoch[e])), (refit, int(stop_at[e]))):
            alone, _ = train_ensemble([p[e:e + 1] for p in init], X, y, rows[e:e + 1],
                                      OptimizerSettings(epochs=epochs, lr=1e-2, batch_size=batch_size),
                                      shuffle_seeds=shuffles[e:e + 1])
            for a, b in zip(alone, params, strict=True):
                torch.testing.assert_close(a[0], b[e], rtol=1e-4, atol=1e-6)
    # the validation curve is each model's MAE at each check, and the best epoch its first minimum
    curve = best.curve
    assert curve.shape == (E, len(best.epochs)) and np.isfinite(curve[:, 0]).all()
    for e in range(E):
        reached = np.isfinite(curve[e])
        assert best.best_epoch[e] == best.epochs[np.nanargmin(np.where(reached, curve[e], np.nan))]
