from pathlib import Path

import pytest
import yaml

from sim2real_scaling.config import (ConfigError, chunk_trials, deep_merge, load_config, n_blocks, n_chunks, resolve_m_grid,
                                     resolve_n_grid, validate_config)

ROOT = Path(__file__).resolve().parents[1]


def minimal(**extra):
    config = {"study": "x", "properties": {"p": {"source": {"path": "s.csv"}, "target": {"path": "t.csv"}}}}
    config.update(extra)
    return config


def test_defaults_are_filled_in_nested_sections():
    config = validate_config(minimal())
    assert config["protocol"]["trials"] == 500
    assert config["model"]["finetune"]["epochs"] == 300
    assert config["properties"]["p"]["source"]["key_column"] == "smiles"
    assert config["grid"]["n"] == "auto"


def test_unknown_key_is_named_with_its_path():
    with pytest.raises(ConfigError, match=r"protocol\.trails"):
        validate_config(minimal(protocol={"trails": 5}))


def test_wrong_type_is_named_with_its_path():
    with pytest.raises(ConfigError, match=r"model\.finetune\.lr"):
        validate_config(minimal(model={"finetune": {"lr": "fast"}}))


def test_typo_in_property_table_is_named():
    config = minimal()
    config["properties"]["p"]["target"]["value_colum"] = "y"
    with pytest.raises(ConfigError, match=r"properties\.p\.target\.value_colum"):
        validate_config(config)


def test_load_config_names_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(minimal(seed=-1)))
    with pytest.raises(ConfigError, match=r"c\.yaml.*seed"):
        load_config(path)


def test_auto_n_grid_is_log_spaced_and_ends_at_source_size():
    config = validate_config(minimal())
    grid = resolve_n_grid(config, 1070, "p")
    assert len(grid) == 10 and grid[0] == 100 and grid[-1] == 1070
    ratios = [b / a for a, b in zip(grid, grid[1:])]
    assert max(ratios) / min(ratios) < 1.05


def test_explicit_n_grid_larger_than_source_is_an_error():
    config = validate_config(minimal(grid={"n": [10, 5000]}))
    with pytest.raises(ConfigError, match=r"grid\.n.*5000.*1070"):
        resolve_n_grid(config, 1070, "p")


def test_m_grid_fractions_and_sizes():
    config = validate_config(minimal(grid={"m": [0.25, 0.5, 1.0, 30]}))
    assert resolve_m_grid(config, 100, "p") == [25, 30, 50, 100]
    with pytest.raises(ConfigError, match=r"grid\.m"):
        resolve_m_grid(config, 20, "p")


def test_chunks_cover_every_trial_once():
    config = validate_config(minimal(protocol={"trials": 23, "chunk_size": 10}))
    assert n_chunks(config) == 3
    assert sum((chunk_trials(config, c) for c in range(3)), []) == list(range(23))


BASE = ROOT / "config" / "config.yaml"  # the settings every study starts from (the Snakefile's configfile)


@pytest.mark.parametrize("path", sorted(p for p in (ROOT / "config").glob("*.yaml") if p != BASE),
                         ids=lambda p: p.name)
def test_every_shipped_study_validates_alone_and_laid_over_the_base(path):
    load_config(path)
    base, study = (yaml.safe_load(p.read_text()) for p in (BASE, path))
    merged = validate_config(deep_merge(base, study))  # what Snakemake's --configfile gives the workflow
    assert set(merged["properties"]) == set(study["properties"])
    assert ("synthetic" in merged) == ("synthetic" in study)


def test_strings_from_the_command_line_are_read_as_the_schema_types():
    config = validate_config(minimal(protocol={"trials": "8", "chunk_size": "4", "direct_baseline": "false"},
                                     model={"finetune": {"lr": "1e-3"}}, grid={"n": ["100", "200"]}))
    assert config["protocol"]["trials"] == 8 and config["protocol"]["direct_baseline"] is False
    assert config["model"]["finetune"]["lr"] == 1e-3
    with pytest.raises(ConfigError, match=r"protocol\.trials"):
        validate_config(minimal(protocol={"trials": "eight"}))


@pytest.mark.parametrize("per_job, m, expected", [
    (4, None, [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]),     # one m value: 4 n per job, as equal as can be
    (4, [0.5, 1.0], [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]),
    (4, [0.1, 0.2, 0.5, 1.0], [[i] for i in range(10)]),
    (4, [0.1, 0.2, 0.3, 0.5, 1.0], [[i] for i in range(10)]),  # more m values than ensembles: still 1 n
    (1, None, [[i] for i in range(10)]),
    (20, None, [list(range(10))]),
])
def test_training_jobs_cover_every_n_once_in_blocks_of_about_ensembles_per_job(per_job, m, expected):
    config = validate_config(minimal(grid={"n": "auto", "n_points": 10, "m": m},
                                     protocol={"ensembles_per_job": per_job}))
    assert n_blocks(config, "p") == expected


def test_a_property_own_m_grid_sets_its_blocks():
    config = minimal(grid={"n": [10, 20, 30, 40]})
    config["properties"]["q"] = {**config["properties"]["p"], "grid_m": [0.5, 1.0]}
    config = validate_config(config)
    assert n_blocks(config, "p") == [[0, 1, 2, 3]] and n_blocks(config, "q") == [[0, 1], [2, 3]]
