"""Reproducibility: every trial draws its split and initial weights from its own seed.

The same config and seed give bit-identical trial MAEs on the CPU across runs (in this process and in a fresh
one) and across thread counts (what ``--cores`` changes for rules that ask for several threads); the same
MAEs to floating-point reduction order (1e-6 relative) across chunk sizes; and a different seed gives
different ones. (Across real Snakemake runs with ``--cores 2`` and ``--cores 1``, interrupted or not:
tests/test_interrupt.py compares the final files byte for byte.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from sim2real_scaling.config import validate_config
from sim2real_scaling.data.synthetic import generate_benchmark
from sim2real_scaling.stages import environment_record, set_threads, stage_record_run
from sim2real_scaling.stages.train import chunk_trials, load_training_data
from sim2real_scaling.training.runner import make_protocol, run_job
from sim2real_scaling.training.strategies import pretrain_networks

from conftest import prepare_property

CPU = torch.device("cpu")
TRIALS = list(range(6))


def make_config(folder: Path, seed: int = 3) -> dict:
    return validate_config({
        "study": "repro", "seed": seed, "device": "cpu", "results_dir": str(folder / "results"),
        "descriptor": {"set": "rdkit_basic"},
        "properties": {"density": {"source": {"path": str(folder / "simulated.csv")},
                                   "target": {"path": str(folder / "experimental.csv")},
                                   "transform": ["standardize"], "transform_fit_on": "source"}},
        "grid": {"n": [40, 120], "m": [12, 1.0]},
        "protocol": {"trials": len(TRIALS), "chunk_size": 3, "group_columns": ["polymer_class"], "per_material": True},
        "model": {"hidden": [16, 8], "pretrain": {"epochs": 8, "batch_size": 32},
                  "finetune": {"epochs": 25, "batch_size": 8}, "direct": {"epochs": 25},
                  "selection": {"scheme": "auto", "folds": 3, "every": 5, "patience": 2}},
    })


def load(folder: Path, config: dict):  # noqa: ANN201
    """(settings, data) of the study's one property, as a training job loads them."""
    prepared = folder / "prepared"
    inputs = {"source": prepared / "source.csv", "target": prepared / "target.csv",
              "descriptors": folder / "descriptors.npz", "design": prepared / "design.json"}
    return load_training_data(config, "density", inputs)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Prepared tables and descriptors of a small synthetic study; returns (folder, config, data)."""
    folder = tmp_path_factory.mktemp("repro")
    generate_benchmark(seed=9, n_source=120, n_target=40, noise_source=0.01, noise_target=0.015, hidden_strength=0.2,
                       source_path=folder / "simulated.csv", target_path=folder / "experimental.csv")
    config = make_config(folder)
    prepare_property(config, "density", folder / "prepared", folder / "descriptors.npz")
    return folder, config, load(folder, config)


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as the workflow's rules run by default (several threads on a busy machine cost
    seconds per sweep in barrier waits); the thread test switches to two itself."""
    before = torch.get_num_threads()
    set_threads(1)
    yield
    torch.set_num_threads(before)


def sweep(loaded, chunks: list[list[int]]) -> dict[str, np.ndarray]:
    """Trial MAEs and chosen epochs (fine-tuning at the largest n, and direct), trials sorted, at every m."""
    settings, data = loaded
    out = {}
    for method, n in (("finetune", [1]), ("direct", None)):
        frames = [run_job(settings, data, method, c, n, device=CPU)[0].trials for c in chunks]
        table = pd.concat(frames).sort_values(["m", "trial"])
        assert (table["status"] == "ok").all()
        out[method] = table["mae"].to_numpy()
        out[f"{method}_epochs"] = table["epochs"].to_numpy()
    return out


def assert_bit_identical(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    for method in a:
        assert a[method].tobytes() == b[method].tobytes(), (method, a[method] - b[method])


def test_same_seed_gives_bit_identical_maes_in_one_process(study):
    _, _, loaded = study
    assert_bit_identical(sweep(loaded, [TRIALS]), sweep(loaded, [TRIALS]))


def test_same_seed_gives_bit_identical_maes_across_processes(study, tmp_path):
    folder, config, loaded = study
    here = sweep(loaded, [TRIALS])
    code = (
        "import json, sys, torch\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from test_reproducibility import make_config, load, sweep, TRIALS\n"
        "from pathlib import Path\n"
        "folder = Path(sys.argv[2])\n"
        "loaded = load(folder, make_config(folder))\n"
        "torch.set_num_threads(1)\n"
        "print(json.dumps({k: v.hex() for k, v in ((k, v.tobytes()) for k, v in sweep(loaded, [TRIALS]).items())}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), str(folder)],
                          capture_output=True, text=True, timeout=300, check=True)
    there = {k: np.frombuffer(bytes.fromhex(v), dtype=here[k].dtype) for k, v in
             json.loads(proc.stdout.splitlines()[-1]).items()}
    assert_bit_identical(here, there)


def test_thread_count_does_not_change_any_bit(study):
    folder, config, _ = study
    light = {**config, "model": {**config["model"], **{stage: {**config["model"][stage], "epochs": 4}
                                                       for stage in ("pretrain", "finetune", "direct")}}}
    loaded = load(folder, light)
    one = sweep(loaded, [TRIALS])
    set_threads(2)
    two = sweep(loaded, [TRIALS])
    assert_bit_identical(one, two)


@pytest.mark.parametrize("chunks", [[[0, 1, 2], [3, 4, 5]], [[t] for t in TRIALS], [[5, 4], [1, 3, 0, 2]]],
                         ids=["two_chunks", "one_per_trial", "shuffled"])
def test_chunking_changes_maes_only_by_reduction_order(study, chunks):
    _, _, loaded = study
    whole = sweep(loaded, [TRIALS])
    chunked = sweep(loaded, chunks)
    for method in whole:
        np.testing.assert_allclose(chunked[method], whole[method], rtol=1e-6, atol=0)


def test_a_trial_draws_its_split_from_its_own_seed(study):
    _, config, (settings, data) = study
    protocol = make_protocol(settings, data)
    n_test = data.design.n_test
    splits = {t: protocol.split(t) for t in TRIALS}
    again = {t: protocol.split(t) for t in reversed(TRIALS)}
    for t in TRIALS:
        assert np.array_equal(splits[t][0], again[t][0]) and np.array_equal(splits[t][1], again[t][1])
        assert set(splits[t][0]).isdisjoint(splits[t][1]) and len(splits[t][1]) == n_test
    assert len({tuple(sorted(s[1])) for s in splits.values()}) == len(TRIALS)
    # chunks cover every trial once whatever the chunk size
    for size in (1, 4, 6):
        cfg = {**config, "protocol": {**config["protocol"], "chunk_size": size}}
        chunks = [chunk_trials(cfg, c) for c in range(-(-len(TRIALS) // size))]
        assert sum(chunks, []) == TRIALS


def test_changing_the_seed_changes_splits_weights_and_maes(study):
    folder, config, loaded = study
    other = load(folder, make_config(folder, seed=4))
    settings, data = loaded
    p3, p4 = make_protocol(settings, data), make_protocol(other[0], other[1])
    assert not np.array_equal(p3.split(0)[1], p4.split(0)[1])
    a = pretrain_networks(settings, data, p3, 0, [0], CPU)
    b = pretrain_networks(other[0], other[1], p4, 0, [0], CPU)
    assert not torch.equal(a["params"][0], b["params"][0])
    first, second = sweep(loaded, [TRIALS]), sweep(other, [TRIALS])
    for method in ("finetune", "direct"):
        assert not np.allclose(first[method], second[method], rtol=1e-3)


def test_run_folder_records_resolved_config_and_versions(study, tmp_path):
    _, config, _ = study
    stage_record_run(config, tmp_path / "run" / "config.resolved.yaml", tmp_path / "run" / "environment.json")
    assert yaml.safe_load((tmp_path / "run" / "config.resolved.yaml").read_text()) == config
    env = json.loads((tmp_path / "run" / "environment.json").read_text())
    assert env == json.loads(json.dumps(environment_record()))
    for package in ("torch", "numpy", "scipy", "pandas", "rdkit", "snakemake", "sim2real-scaling"):
        assert env["packages"][package]
    assert env["packages"]["torch"] == torch.__version__.split("+")[0] or env["packages"]["torch"] == torch.__version__


def test_pretraining_stops_on_the_transformed_scale(study):
    """Pretraining keeps the epoch with the lowest hold-out MAE on the scale the network learns (the source's
    transformed values), not in the source's units, where a log-transformed property's largest values would
    decide alone. The recorded hold-out MAE is that of the network returned, on its own held-out rows."""
    from sim2real_scaling.training.ensemble import predict

    _, _, (settings, data) = study
    protocol = make_protocol(settings, data)
    draws = [0, 1, 2]
    state = pretrain_networks(settings, data, protocol, 1, draws, CPU)
    n = int(data.design.n_at(1))
    y = data.source_transform.transform(data.source_values)
    X = torch.from_numpy(np.ascontiguousarray(data.X_source))
    for i, r in enumerate(draws):
        order = protocol.source_order(r, len(data.source_values))[:n]
        held_out = order[protocol.pretrain_holdout(r, 1, n, settings.model.pretrain.validation_fraction)[1]]
        params = [p[i:i + 1] for p in state["params"]]
        pred = predict(params, X, torch.from_numpy(held_out[None, :]), state["activation"]).numpy()[0]
        assert state["val_mae"][i] == pytest.approx(float(np.abs(pred - y[held_out]).mean()), rel=1e-5)
        in_units = float(np.abs(data.source_transform.inverse_transform(pred) - data.source_values[held_out]).mean())
        assert state["val_mae"][i] != pytest.approx(in_units, rel=1e-3)  # the source's units differ here
