"""Bad input gets a clear, specific error, never a bare traceback (the corpus under tests/bad_inputs/).

Every case of ``tests/bad_inputs/cases.yaml`` is run through the package stage the workflow calls (fast);
the error cases also through ``workflow_script.run`` (what a rule's script does: one line in the rule's log,
exit status 1, no traceback), and a few through real Snakemake runs (parse-time config errors, a failing
``prepare`` job whose log ends with the message).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from conftest import ROOT, run_snakemake
from sim2real_scaling.config import ConfigError, deep_merge, load_config, validate_config
from sim2real_scaling.data.descriptors import DescriptorError
from sim2real_scaling.data.clean import DataError
from sim2real_scaling.stages import stage_prepare
from sim2real_scaling.data.tables import read_prepared
from sim2real_scaling.data.transforms import TransformError
from sim2real_scaling.workflow_script import run

CORPUS = ROOT / "tests" / "bad_inputs"
TABLES = CORPUS / "tables"
CASES = yaml.safe_load((CORPUS / "cases.yaml").read_text())
ERRORS = {"ConfigError": ConfigError, "DataError": DataError, "TransformError": TransformError,
          "DescriptorError": DescriptorError}
TABLE_CASES = CASES["tables"]
CONFIG_CASES = CASES["configs"]
ERROR_CASES = [c for c in TABLE_CASES if c["expect"] in ERRORS]


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [c["id"] for c in cases]


def table_config(case: dict[str, Any], results: Path) -> dict[str, Any]:
    """The validated config of a table case: the base, the case's overrides, its tables from the corpus."""
    config = deep_merge(CASES["base"], case.get("config", {}))
    config["results_dir"] = str(results)
    prop = config["properties"]["density"]
    for role in ("source", "target"):
        prop[role]["path"] = str(TABLES / case.get("tables", {}).get(role, prop[role]["path"]))
    return validate_config(config)


def digest(paths: list[Path]) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.is_file()}


def assert_message(message: str, patterns: list[str]) -> None:
    missing = [p for p in patterns if not re.search(p, message)]
    assert not missing, f"the message\n  {message}\ndoes not match {missing}"
    assert "Traceback" not in message


@pytest.fixture
def restore_logging():
    """workflow_script.run reconfigures the root logger (as in a rule's own process): undo it afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


# ---- the corpus itself ------------------------------------------------------------------------------


def test_every_corpus_file_is_used_by_a_case():
    used = {"good_source.csv", "good_target.csv"}
    for case in TABLE_CASES:
        used.update(case.get("tables", {}).values())
    files = {p.name for p in TABLES.iterdir()}  # a folder too: the case of a folder given as a table
    assert files - used == set(), f"corpus tables no case uses: {sorted(files - used)}"
    assert {p.name for p in (CORPUS / "configs").iterdir()} == {c["file"] for c in CONFIG_CASES}
    ids = _ids(TABLE_CASES) + _ids(CONFIG_CASES)
    assert len(ids) == len(set(ids)), "case ids must be unique"


# ---- tables: the prepare stage --------------------------------------------------------------------


@pytest.mark.parametrize("case", TABLE_CASES, ids=_ids(TABLE_CASES))
def test_table_case(case, tmp_path, caplog):
    config = table_config(case, tmp_path / "results")
    inputs = [Path(config["properties"]["density"][role]["path"]) for role in ("source", "target")]
    before = digest(inputs)
    out = tmp_path / "prepared"
    caplog.set_level(logging.WARNING)
    if case["expect"] in ERRORS:
        with pytest.raises(ERRORS[case["expect"]]) as info:
            stage_prepare(config, "density", out)
        assert_message(str(info.value), case["message"])
        left = sorted(p.name for p in out.iterdir()) if out.exists() else []
        assert left == case.get("writes", []), f"a failed prepare left {left} behind"
        if "rejected.csv" in left:  # rejected rows are why it failed: they are there to look at
            assert len(pd.read_csv(out / "rejected.csv")) > 0
    else:
        stage_prepare(config, "density", out)
        rejected = pd.read_csv(out / "rejected.csv")
        expected = case.get("rejected", [])
        assert sorted(rejected["row"]) == sorted(r["row"] for r in expected), rejected.to_string()
        by_row = rejected.set_index("row")
        for r in expected:
            got = by_row.loc[r["row"]]
            assert got["column"] == r["column"] and re.search(r["reason"], got["reason"]), (r, got.to_dict())
            assert Path(got["file"]) in inputs and Path(got["file"]).name in case["tables"].values()
            assert got["table"] in ("source", "target")
        if expected:  # the log says that rows were dropped and where to look
            assert any("rejected" in rec.getMessage() and "rejected.csv" in rec.getMessage() for rec in caplog.records)
        if "check" in case:
            check_target(out, case["check"])
        findings = json.loads((out / "checks.json").read_text())
        assert all(set(f) == {"level", "code", "message"} for f in findings)
        for expected in case.get("findings", []):
            hits = [f for f in findings if f["code"] == expected["code"] and f["level"] == expected["level"]
                    and re.search(expected.get("message", ""), f["message"])]
            assert hits, f"no finding {expected} in {findings}"
            assert any(rec.getMessage().endswith(hits[0]["message"]) for rec in caplog.records) or \
                expected["level"] == "note", "a finding is logged too"
    assert digest(inputs) == before, "an input table was modified"


def check_target(out: Path, check: dict[str, Any]) -> None:
    """The prepared target row of a file row (``row``) or key (``key``) holds the listed values (labels as text)."""
    target = read_prepared(out / "target.csv")
    row = target[target["key"] == check["key"]] if "key" in check else target[target["source_row"] == check["row"]]
    assert len(row) == 1, target.head().to_string()
    for column, expected in check.items():
        if column in ("key", "row"):
            continue
        got = row.iloc[0][column]
        if isinstance(expected, float | int) and not isinstance(expected, bool):
            assert got == pytest.approx(expected), (column, got)
        else:
            assert got == expected, (column, got)


@pytest.mark.parametrize("case", ERROR_CASES, ids=_ids(ERROR_CASES))
def test_rule_script_logs_one_clear_line_and_exits_1(case, tmp_path, restore_logging, capsys):
    """What a rule's script does with a bad input: the log's last line is the message, no traceback."""
    config = table_config(case, tmp_path / "results")
    log_file = tmp_path / "prepare.log"

    class FakeSnakemake:  # the attributes workflow_script.run reads
        log = [str(log_file)]
        threads = 1
        rule = "prepare"

    FakeSnakemake.config = config
    with pytest.raises(SystemExit) as info:
        run(FakeSnakemake, lambda cfg: stage_prepare(cfg, "density", tmp_path / "prepared"))
    assert info.value.code == 1
    text = log_file.read_text()
    assert "Traceback" not in text and "Traceback" not in capsys.readouterr().err
    last = text.strip().splitlines()[-1]
    assert " ERROR " in last
    assert_message(last, case["message"])


# ---- configs: schema validation with the key's path -----------------------------------------------


@pytest.mark.parametrize("case", CONFIG_CASES, ids=_ids(CONFIG_CASES))
def test_config_case(case):
    path = CORPUS / "configs" / case["file"]
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert_message(message, case["message"])


# ---- the same through Snakemake ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["misspelled_table_key.yaml", "wrong_type_lr.yaml"])
def test_invalid_config_stops_snakemake_at_parse_time_naming_the_key(name, tmp_path):
    case = next(c for c in CONFIG_CASES if c["file"] == name)
    proc = run_snakemake("-n", "--configfile", str(CORPUS / "configs" / name), "--directory", str(tmp_path),
                         check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "invalid config: " in out, out[-3000:]
    line = next(x for x in out.splitlines() if "invalid config: " in x)
    assert_message(line, case["message"])
    assert "Traceback" not in out


def _study_config(tmp_path: Path, target: str, **extra: Any) -> Path:
    config = {"study": "bad_table", "results_dir": str(tmp_path / "results"), "descriptor": {"set": "rdkit_basic"},
              "properties": {"density": {"source": {"path": str(TABLES / "good_source.csv")},
                                         "target": {"path": str(TABLES / target)}}},
              "grid": {"n": [20, 80]}, "protocol": {"trials": 2, "chunk_size": 2}, **extra}
    path = tmp_path / "bad_table.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_failed_prepare_job_names_its_log_whose_last_line_is_the_message(tmp_path):
    config = _study_config(tmp_path, "misspelled_value_column.csv")
    target = tmp_path / "results" / "bad_table" / "prepared" / "density" / "grid.json"
    proc = run_snakemake("--cores", "1", "--configfile", str(config), "--directory", str(tmp_path / "wd"),
                         str(target), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Error in rule prepare" in out and "logs/bad_table/prepare/density.log" in out, out[-3000:]
    log_text = (tmp_path / "wd" / "logs" / "bad_table" / "prepare" / "density.log").read_text()
    assert "Traceback" not in log_text
    case = next(c for c in TABLE_CASES if c["id"] == "misspelled_value_column")
    assert_message(log_text.strip().splitlines()[-1], case["message"])
    assert not target.exists()


E2E_CASES = ["latin1_header", "folder_as_path", "decimal_commas_unquoted", "mostly_rejected"]


@pytest.mark.parametrize("case_id", E2E_CASES)
def test_bad_table_through_snakemake_is_one_line_once(case_id, tmp_path):
    """As a user runs it (group_columns set, as in the shipped configs): the failed prepare job's log ends with the
    message, the message reaches the screen once, no traceback anywhere, nothing blames .snakemake."""
    case = next(c for c in TABLE_CASES if c["id"] == case_id)
    config = deep_merge(CASES["base"], case.get("config", {}))
    config.update(study="bad_table", results_dir=str(tmp_path / "results"))
    for role in ("source", "target"):
        spec = config["properties"]["density"][role]
        spec["path"] = str(TABLES / case.get("tables", {}).get(role, spec["path"]))
    assert config["protocol"]["group_columns"] == ["polymer_class"]
    (tmp_path / "bad_table.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    grid = tmp_path / "results" / "bad_table" / "prepared" / "density" / "grid.json"
    proc = run_snakemake("--cores", "1", "--configfile", str(tmp_path / "bad_table.yaml"), "--directory",
                         str(tmp_path / "wd"), str(grid), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Error in rule prepare" in out, out[-3000:]
    assert "Traceback" not in out and "write permission" not in out, out[-3000:]
    log_dir = tmp_path / "wd" / "logs" / "bad_table" / "prepare"
    log_text = (log_dir / "density.log").read_text()
    assert "Traceback" not in log_text
    last = log_text.strip().splitlines()[-1]
    assert_message(last, case["message"])
    message = last.split(" ERROR ", 1)[1]
    assert out.count(message) == 1, out[-3000:]
    assert not grid.exists()
    if "rejected.csv" in case.get("writes", []):  # the rows are kept where a failed job's files survive
        rejected = pd.read_csv(log_dir / "density.rejected.csv")
        assert len(rejected) > 0 and "logs/bad_table/prepare/density.rejected.csv" in message


def test_blank_and_numeric_labels_and_blank_ids_reach_the_end_of_a_study(tmp_path):
    """The whole workflow on a workbook target with blank class labels, a class '7', ids such as '001' and blank
    ids (per_material): labels are checked before training and stay text to the last table."""
    target = pd.read_csv(TABLES / "blank_group_labels.csv", dtype=str, keep_default_na=False)
    target["sample_id"] = [f"{i:03d}" for i in range(len(target))]
    target.loc[[3, 8], "sample_id"] = ""
    target.loc[5, "polymer_class"] = "7"
    target.to_excel(tmp_path / "target.xlsx", index=False)
    config = {"study": "labels", "results_dir": str(tmp_path / "results"), "descriptor": {"set": "rdkit_basic"},
              "properties": {"density": {"unit": "g/cm3", "source": {"path": str(TABLES / "good_source.csv")},
                                         "target": {"path": str(tmp_path / "target.xlsx"), "id_column": "sample_id"}}},
              "grid": {"n": [20, 80]}, "protocol": {"trials": 3, "chunk_size": 3, "group_columns": ["polymer_class"],
                                                    "per_material": True, "test_fraction": 0.5},
              "model": {"hidden": [8], "pretrain": {"epochs": 10}, "finetune": {"epochs": 10},
                        "direct": {"epochs": 10}},
              "analysis": {"bootstrap_resamples": 100, "fit_bootstrap": 0}}
    (tmp_path / "labels.yaml").write_text(yaml.safe_dump(config))
    run_snakemake("--cores", "2", "--configfile", str(tmp_path / "labels.yaml"), "--directory", str(tmp_path / "wd"))
    study = tmp_path / "results" / "labels"
    assert (study / "complete.json").exists()
    groups = pd.read_csv(study / "group_trials.csv", dtype=str, keep_default_na=False)
    assert {"unknown", "7"} <= set(groups["group"]) <= {"unknown", "7", "methacrylic_copolymer", "vinyl_copolymer",
                                                         "polyamide", "polyester", "polyether"}
    materials = set(pd.read_csv(study / "material_errors.csv", dtype=str)["material"])
    prepared = read_prepared(study / "prepared" / "density" / "target.csv")
    # the test materials by their ids as written ('001', not 1), blank ids by their key
    assert materials <= set(prepared["id"]) and len(materials) >= 10 and any(m.startswith("0") for m in materials)
    codes = {f["code"] for f in json.loads((study / "prepared" / "density" / "checks.json").read_text())}
    assert {"blank_labels", "blank_ids"} <= codes


def test_unexpected_error_in_a_rule_is_one_line_and_the_traceback_only_on_request(tmp_path, restore_logging,
                                                                                  capsys, monkeypatch):
    """A bug (not a bad input): one line naming the rule and the error, exit status 1; SIM2REAL_DEBUG=1 adds the
    traceback."""
    class FakeSnakemake:
        log = [str(tmp_path / "prepare.log")]
        threads = 1
        rule = "prepare"
        config = {}

    def broken(settings):
        raise KeyError("polymer_class")

    for debug in ("", "1"):
        monkeypatch.setenv("SIM2REAL_DEBUG", debug)
        with pytest.raises(SystemExit) as info:
            run(FakeSnakemake, broken)
        assert info.value.code == 1
        text = (tmp_path / "prepare.log").read_text()
        err = capsys.readouterr().err
        assert "unexpected error in rule prepare" in text and "KeyError" in text
        assert ("Traceback" in text) == bool(debug)
        assert "unexpected error" not in err  # the log only: Snakemake prints a failed job's log, once
        if not debug:
            assert len(text.strip().splitlines()) == 1 and "SIM2REAL_DEBUG=1" in text


def test_missing_input_file_is_named_before_any_job_runs(tmp_path):
    config = _study_config(tmp_path, "does_not_exist.csv")
    proc = run_snakemake("-n", "--configfile", str(config), "--directory", str(tmp_path / "wd"), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Missing input files for rule prepare" in out and "does_not_exist.csv" in out, out[-3000:]
