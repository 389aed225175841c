"""The trial runner: one protocol (splits, m-subsets, validation rows, draws, seeds), model selection inside every
trial against the standard path, no leak of test rows, the simulation reference, and the design of a property."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from sim2real_scaling.config import ConfigError
from sim2real_scaling.data.qc import QCSettings
from sim2real_scaling.data.transforms import PropertyTransform, target_transform_for_trials
from sim2real_scaling.training.design import Design, check_design, design_spec, resolve_design
from sim2real_scaling.training.ensemble import MLPSpec, as_module, init_parameters
from sim2real_scaling.training.protocol import Protocol
from sim2real_scaling.training.inputs import PropertyData
from sim2real_scaling.training.runner import make_protocol, run_job
from sim2real_scaling.training.settings import ProtocolSettings, TrainingSettings
from sim2real_scaling.training.strategies import Direct, Finetune

CPU = torch.device("cpu")


def _data(seed: int = 0, ns: int = 240, nt: int = 60, d: int = 10, m: tuple[int, ...] = (24, 48)) -> PropertyData:
    g = np.random.default_rng(seed)
    w = g.normal(size=d)
    Xs, Xt = g.normal(size=(ns, d)).astype(np.float32), g.normal(size=(nt, d)).astype(np.float32)
    ys = np.exp(0.5 * np.tanh(Xs @ w / 3))
    yt = np.exp(0.45 * np.tanh(Xt @ w / 3) + 0.1 * Xt[:, 0] + g.normal(0, 0.02, nt))
    sim = np.where(np.arange(nt) % 3 == 0, np.nan, np.exp(0.5 * np.tanh(Xt @ w / 3)))
    design = Design(property="p", n=[60, ns], m=list(m), n_test=nt - max(m), n_train=max(m), n_source=ns, n_target=nt)
    return PropertyData(name="p", X_source=Xs, source_values=ys, X_target=Xt, target_values=yt,
                        target_keys=[f"m{i}" for i in range(nt)],
                        groups={"cls": np.array(["a", "b", "c"])[np.arange(nt) % 3]}, sim_values=sim,
                        source_transform=PropertyTransform(["log", "standardize"]).fit(ys), design=design)


def _settings(scheme: str = "cv", patience: int | None = None, fit_on: str = "each", replicates=2, **model):
    selection = {"scheme": scheme, "folds": 4, "every": 5, "patience": patience, "holdout_fraction": 0.25}
    return TrainingSettings.from_slices("p", {
        "seed": 7, "device": "cpu",
        "protocol": {"trials": 6, "chunk_size": 6, "test_fraction": 0.2, "pretrain_replicates": replicates,
                     "group_columns": ["cls"], "per_material": True},
        "model": {"hidden": [12, 6], "activation": "relu",
                  "pretrain": {"epochs": 30, "lr": 3e-3, "batch_size": 32, "validation_fraction": 0.1, "patience": 5},
                  "finetune": {"epochs": 40, "lr": 3e-3}, "direct": {"epochs": 40, "lr": 3e-3},
                  "selection": selection, **model},
        "property": {"transform": ["log", "standardize"], "transform_fit_on": fit_on}})


# -- the protocol ---------------------------------------------------------------------------------------------


def test_splits_folds_and_holdouts_partition_the_rows_and_respect_groups():
    settings = ProtocolSettings(seed=3, trials=20, chunk_size=20, test_fraction=0.2, replicates=4)
    groups = np.repeat(np.arange(40), [1, 2, 3, 1] * 10)  # 70 rows in groups of 1-3
    protocol = Protocol(settings, "p", len(groups), 14, split_groups=groups)
    for trial in range(20):
        train, test = protocol.split(trial)
        assert len(test) == 14 and sorted(np.concatenate([train, test])) == list(range(70))
        assert not set(groups[train]) & set(groups[test])
        m = 40
        folds = protocol.folds(trial, train[:m], 4)
        vals = np.concatenate([v for _, v in folds])
        assert len(vals) == 4 * (m // 4) and len(set(vals)) == len(vals) and set(vals) <= set(train[:m])
        for fit, val in folds:
            assert sorted(np.concatenate([fit, val])) == sorted(train[:m])
        fit, val = protocol.holdout(trial, train[:m], 0.25)
        assert len(val) == 10 and sorted(np.concatenate([fit, val])) == sorted(train[:m])
    # a trial's choices depend on (seed, property, trial) only, never on which other trials are around
    assert np.array_equal(protocol.split(5)[0], Protocol(settings, "p", 70, 14, split_groups=groups).split(5)[0])
    assert protocol.replicate_of(9) == 1
    assert ProtocolSettings(seed=3, trials=20, chunk_size=20, test_fraction=0.2, replicates=None).replicate_of(9) == 9


# -- model selection against the standard path -----------------------------------------------------------------


def _standard_train(init_e, X, y, rows, epochs, lr, checks=None, score=None):  # noqa: ANN001, ANN202
    """One model as torch.nn layers + torch.optim.Adam (full batch), validated at ``checks`` epochs if given."""
    model = as_module(init_e)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    curve, kept, best = [], None, np.inf
    for epoch in range(epochs + 1):
        if checks is not None and epoch in checks:
            with torch.no_grad():
                s = score(model)
            curve.append(s)
            if s < best:
                best, kept = s, [p.detach().clone() for p in model.parameters()]
        if epoch == epochs:
            break
        opt.zero_grad()
        ((model(X[rows]).squeeze(-1) - y[rows]) ** 2).mean().backward()
        opt.step()
    return model, np.array(curve), kept


@pytest.mark.parametrize("scheme", ["cv", "holdout"])
def test_selection_in_the_ensemble_equals_each_trial_selected_alone_on_the_standard_path(scheme):
    """The CV choice and refit, and early stopping on a hold-out, made for 6 trials at once in one ensemble give
    each trial the training length, validation MAE and test MAE that selecting it alone with nn layers and
    torch.optim.Adam gives (the same rule, folds, transform and seeds)."""
    data, settings = _data(), _settings(scheme)
    protocol = make_protocol(settings, data)
    trials, m = list(range(6)), 48
    result, _ = run_job(settings, data, "direct", trials, None, device=CPU)
    rows = result.trials[result.trials.m == m].set_index("trial")
    X = torch.from_numpy(data.X_target)
    spec = MLPSpec(d_in=10, hidden=(12, 6))
    for t in trials:
        train, test = protocol.split(t)
        train = train[:m]
        transform = target_transform_for_trials(["log", "standardize"], "each", data.source_transform,
                                                data.target_values, train[None, :])
        y = torch.from_numpy(transform.transform_batch(data.target_values)[0].astype(np.float32))
        init_e = [p[0] for p in init_parameters(spec, [protocol.init_seed("direct_init", t)])]
        checks = list(range(0, 41, 5))

        def mae_of(model, val):  # noqa: ANN001, ANN202
            pred = model(X[val]).squeeze(-1).detach().numpy().astype(np.float64)
            return float(np.abs(transform.inverse_transform(pred[None, :])[0] - data.target_values[val]).mean())

        if scheme == "cv":
            curves = []
            for fit, val in protocol.folds(t, train, 4):
                _, curve, _ = _standard_train(init_e, X, y, fit, 40, 3e-3, checks, lambda mdl, v=val: mae_of(mdl, v))
                curves.append(curve)
            mean = np.mean(curves, axis=0)
            epochs = checks[int(np.argmin(mean))]
            model, _, _ = _standard_train(init_e, X, y, train, epochs, 3e-3)
            val_mae = mean.min()
        else:
            fit, val = protocol.holdout(t, train, 0.25)
            model, curve, kept = _standard_train(init_e, X, y, fit, 40, 3e-3, checks, lambda mdl: mae_of(mdl, val))
            with torch.no_grad():
                for p, k in zip(model.parameters(), kept, strict=True):
                    p.copy_(k)
            epochs, val_mae = checks[int(np.argmin(curve))], curve.min()
        assert rows.loc[t, "epochs"] == epochs
        assert rows.loc[t, "val_mae"] == pytest.approx(val_mae, rel=1e-4)
        assert rows.loc[t, "mae"] == pytest.approx(mae_of(model, test), rel=1e-4)
        assert rows.loc[t, "selection"] == ("cv4" if scheme == "cv" else "holdout")


def test_chunking_and_patience_change_no_result():
    """Early stopping is per model: a trial's choice and MAE do not depend on which trials share its chunk."""
    data, settings = _data(seed=2), _settings("cv", patience=2)
    whole, _ = run_job(settings, data, "finetune", list(range(6)), [0], device=CPU)
    parts = [run_job(settings, data, "finetune", t, [0], device=CPU)[0] for t in ([0, 1], [2], [3, 4, 5])]
    merged = pd.concat([p.trials for p in parts]).sort_values(["m", "trial"]).reset_index(drop=True)
    whole = whole.trials.sort_values(["m", "trial"]).reset_index(drop=True)
    np.testing.assert_array_equal(merged["epochs"], whole["epochs"])
    np.testing.assert_allclose(merged["mae"], whole["mae"], rtol=1e-5)
    assert (whole["epochs"] < 40).any()  # patience did stop some


def test_test_rows_cannot_leak():
    """Changing the target values of a trial's test rows changes neither its trained network (its predictions),
    its chosen training length, its validation MAE, nor any transform statistic: for direct learning and
    fine-tuning, with cross-validation and with a hold-out."""
    for scheme in ("cv", "holdout"):
        settings = _settings(scheme)
        for cls in (Direct, Finetune):
            data = _data(seed=4)
            protocol = make_protocol(settings, data)
            strategy = cls(settings, data, protocol, CPU)
            n_index = 1 if cls is Finetune else None
            if cls is Finetune:
                strategy.prepare_source(1, [3], None)
            test_rows, before = strategy.fit_predict(n_index, 48, [3])
            train_rows = strategy.split([3], 48)[0]
            transform_before = strategy.target_transform(train_rows).to_dict()
            data.target_values[test_rows[0]] *= 1000.0  # a unit slip in every test row of trial 3
            _, after = strategy.fit_predict(n_index, 48, [3])
            assert strategy.target_transform(train_rows).to_dict() == transform_before
            np.testing.assert_array_equal(after.epochs, before.epochs)
            np.testing.assert_array_equal(after.val_mae, before.val_mae)
            np.testing.assert_array_equal(after.pred, before.pred)


def test_a_grid_of_learning_rates_is_searched_in_the_same_ensemble():
    data = _data(seed=5)
    grid = TrainingSettings.from_slices("p", {
        "seed": 7, "device": "cpu", "protocol": {"trials": 6, "chunk_size": 6, "test_fraction": 0.2},
        "model": {"hidden": [12, 6], "activation": "relu", "pretrain": {}, "finetune": {}, "direct": {"epochs": 40},
                  "selection": {"scheme": "holdout", "every": 5, "patience": None,
                                "grid": {"lr": [1e-4, 3e-3], "weight_decay": [0.0, 1e-3]}}},
        "property": {"transform": ["log", "standardize"], "transform_fit_on": "each"}})
    result, _ = run_job(grid, data, "direct", list(range(6)), None, device=CPU)
    t = result.trials
    assert set(t["lr"]) <= {1e-4, 3e-3} and set(t["weight_decay"]) <= {0.0, 1e-3}
    assert (t["lr"] == 3e-3).mean() > 0.5  # 40 epochs at 1e-4 barely move a network


# -- references --------------------------------------------------------------------------------------------------


def test_the_simulation_reference_recalibrates_on_training_rows_and_says_where_it_has_no_value():
    data = _data()
    has = np.isfinite(data.sim_values)
    data.target_values[has] = 0.8 * data.sim_values[has] + 0.3  # experiment = a line of the simulation
    settings = _settings(fit_on="source")
    result, _ = run_job(settings, data, "simulation", [0, 1, 2], None, device=CPU)
    t = result.trials
    assert set(t["method"]) == {"simulation"} and (t["n"] == 0).all() and (t["status"] == "ok").all()
    assert (t["mae"] < 1e-9).all() and (t["mae"] == t["mae_sim_rows"]).all()
    assert (t["sim_rows"] == [(has[make_protocol(settings, data).split(i)[1]]).sum() for i in t["trial"]]).all()
    data.sim_values[:] = np.nan
    none, _ = run_job(settings, data, "simulation", [0], None, device=CPU)
    assert set(none.trials["status"]) == {"no_reference"} and none.trials["mae"].isna().all()


def test_every_method_writes_the_contract_and_the_trial_draw():
    from sim2real_scaling.contract import GROUP_COLUMNS, MATERIAL_COLUMNS, TRIAL_COLUMNS

    data, settings = _data(), _settings("cv", patience=3)
    for method, n in (("direct", None), ("finetune", [0, 1]), ("simulation", None)):
        result, used = run_job(settings, data, method, [0, 1, 2, 3], n, device=CPU)
        assert list(result.trials.columns) == list(TRIAL_COLUMNS)
        assert list(result.groups.columns) == list(GROUP_COLUMNS)
        assert list(result.materials.columns) == list(MATERIAL_COLUMNS)
        assert (result.trials["replicate"] == result.trials["trial"] % 2).all()
        if method == "finetune":
            assert sorted(used) == [0, 1] and used[1]["replicates"] == [0, 1] and used[1]["n"] == 240
            assert set(result.trials["n"]) == {60, 240}


def test_diverged_trials_are_reported_not_fatal():
    data = _data()
    settings = TrainingSettings.from_slices("p", {
        "seed": 7, "protocol": {"trials": 2, "chunk_size": 2, "test_fraction": 0.2},
        "model": {"hidden": [8], "activation": "relu", "pretrain": {}, "finetune": {},
                  "direct": {"epochs": 20, "lr": 1e6}, "selection": {"scheme": "fixed"}},
        "property": {"transform": ["log"], "transform_fit_on": "each"}})
    t = run_job(settings, data, "direct", [0, 1], None, device=CPU)[0].trials
    assert (t["status"] == "diverged").all() and t["mae"].isna().all()


# -- the design --------------------------------------------------------------------------------------------------


def _tables(ns: int, nt: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    src = pd.DataFrame({"key": [f"s{i}" for i in range(ns)], "value": 1.0 + np.arange(ns) % 7,
                        "source_row": np.arange(ns) + 2})
    tgt = pd.DataFrame({"key": [f"t{i}" for i in range(nt)], "value": 1.0 + np.arange(nt) % 5,
                        "source_row": np.arange(nt) + 2})
    return src, tgt


def test_a_grid_that_collapses_after_featurisation_drops_the_repeat_and_says_so():
    src, tgt = _tables(1000, 50)
    usable = np.ones(1000, dtype=bool)
    usable[:10] = False  # ten molecules without descriptors
    protocol = ProtocolSettings(seed=1, trials=4, chunk_size=4, test_fraction=0.2, replicates=1)
    grid = {"n": [100, 995, 1000], "n_points": 10, "n_min": 100, "m": None}
    spec = design_spec(grid, None, protocol, QCSettings())
    design = resolve_design("p", src, tgt, usable_source=usable, usable_target=np.ones(50, dtype=bool), grid=grid,
                            grid_m=None, protocol=protocol, qc=QCSettings(), qc_table=pd.DataFrame(), spec=spec)
    assert design.n == [100, 990, None] and design.m == [40] and design.n_test == 10
    assert any("repeat" in note for note in design.notes) and any("990 usable" in note for note in design.notes)
    assert design.excluded_source == list(range(10))
    check_design(design, spec, [0, 2])
    other = design_spec({**grid, "n": [100, 500]}, None, protocol, QCSettings())
    with pytest.raises(ConfigError, match="other settings"):
        check_design(design, other, [0])
    with pytest.raises(ConfigError, match="grid positions"):
        check_design(design, spec, [3])


def test_design_json_round_trips():
    design = Design(property="p", n=[10, None], m=[5], n_test=2, n_train=8, n_source=10, n_target=10,
                    notes=["x"], spec={"a": 1}, qc={"action": "flag"})
    assert Design.from_dict(design.to_dict()) == design
