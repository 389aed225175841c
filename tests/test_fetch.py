"""The case studies' public data, fetched as a researcher without this repository's surroundings would: the
rules fetch_* download every raw file from its pinned origin (here a local HTTP server on 127.0.0.1 serving
copies of the raw files in the layout of GitHub's raw file server, config data.mirror), check its sha256 and
derive the tidy tables with the package's code; the tables equal the curated copies in ../shared/data. A
corrupted download fails with a message naming the file and the expected checksum and leaves no file behind.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, require_shared_data, run_snakemake
from sim2real_scaling.data import fetch

SNAKEFILE = str(ROOT / "workflow" / "Snakefile")
STUDY = str(ROOT / "config" / "chi.yaml")  # any study: the fetch rules do not depend on it

pytestmark = pytest.mark.slow


def _mirror(folder: Path, corrupt: str | None = None) -> Path:
    """Copies of the raw files under ``folder`` in the layout <owner>/<repository>/<commit>/<path>."""
    shared = require_shared_data()
    for relative, raw in fetch.RAW_FILES.items():
        target = folder / raw.repository / raw.commit / raw.path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared / relative, target)
        if relative == corrupt:  # one changed byte
            data = bytearray(target.read_bytes())
            data[100] = ord("9") if data[100] != ord("9") else ord("8")
            target.write_bytes(bytes(data))
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """A local HTTP server over a folder with a good mirror (/good/) and one with a corrupted file (/bad/)."""
    root = tmp_path_factory.mktemp("mirror")
    _mirror(root / "good")
    _mirror(root / "bad", corrupt="chi/raw/data_COSMO.csv")
    handler = functools.partial(QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # noqa: D401 - keep the test output clean
        pass


def _fetch(workdir: Path, mirror: str, *targets: str, check: bool = True):
    workdir.mkdir(parents=True, exist_ok=True)
    return run_snakemake(*targets, "--snakefile", SNAKEFILE, "--directory", str(workdir), "--configfile", STUDY,
                         "--cores", "2", "--config", f'data={{mirror: "{mirror}"}}', check=check)


@pytest.fixture(scope="module")
def fetched(server, tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("fetched")
    _fetch(workdir, f"{server}/good", "fetch_data")
    return workdir / "resources" / "data"


@pytest.mark.parametrize("table", [t for tables in fetch.FETCHABLE.values() for t in tables])
def test_every_fetched_table_equals_the_curated_copy(fetched, table):
    ours = pd.read_csv(fetched / table, keep_default_na=False)
    curated = pd.read_csv(require_shared_data() / table, keep_default_na=False)
    # the curated copies also carry two keys of their own (graph_key, cyclic_key: hashes made without RDKit)
    extra = set(curated.columns) - set(ours.columns)
    assert extra <= {"graph_key", "cyclic_key"} and not set(ours.columns) - set(curated.columns)
    pd.testing.assert_frame_equal(ours, curated[list(ours.columns)])


def test_the_raw_files_are_the_pinned_ones(fetched):
    for relative, raw in fetch.RAW_FILES.items():
        assert fetch.sha256_of(fetched / relative) == raw.sha256, relative


def test_fetched_data_are_up_to_date_for_a_study(fetched, server):
    workdir = fetched.parent.parent
    proc = run_snakemake("--snakefile", SNAKEFILE, "--directory", str(workdir), "--configfile", STUDY, "-n",
                         "--config", f'data={{mirror: "{server}/good"}}')
    assert "fetch_" not in proc.stdout, proc.stdout[-3000:]  # the study reads them without fetching again


def test_a_corrupted_download_names_the_file_and_its_checksum_and_leaves_nothing(server, tmp_path):
    proc = _fetch(tmp_path / "wd", f"{server}/bad", "resources/data/chi/chi_cosmors.csv", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    expected = fetch.RAW_FILES["chi/raw/data_COSMO.csv"].sha256
    assert f"chi/raw/data_COSMO.csv: the download from {server}/bad/" in out and f"expected {expected}" in out, out[-3000:]
    data = tmp_path / "wd" / "resources" / "data" / "chi"
    left = sorted(str(p.relative_to(data)) for p in data.rglob("*") if p.is_file()) if data.exists() else []
    assert "raw/data_COSMO.csv" not in left and "chi_cosmors.csv" not in left and "chi_experimental.csv" not in left
    assert not [name for name in left if name.endswith(".part")], left


def test_a_local_data_folder_needs_no_fetching():
    shared = require_shared_data()
    proc = run_snakemake("-n", "--nolock", "--configfile", STUDY, "--config", f"data={{dir: {shared}}}")
    assert "fetch_" not in proc.stdout and f"{shared}/chi/chi_experimental.csv" in proc.stdout


def test_the_polymer_experimental_tables_say_why_they_cannot_be_fetched(tmp_path):
    proc = _fetch(tmp_path / "wd", "http://127.0.0.1:9", "resources/data/polymer/exp_merged_density.csv", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "cannot be fetched" in out and "data.dir" in out, out[-3000:]


def test_formula_parsing_follows_the_documented_rules():
    assert fetch.formula_columns("In0.01Ag0.01Sn0.98Te1")["formula_parsed"] == "In0.01Ag0.01Sn0.98Te"
    assert fetch.formula_columns("Si0.8Ge0.2B0.016 (CrSi2)0.091")["formula_parsed"] == "Si0.982Ge0.2B0.016Cr0.091"
    assert fetch.formula_columns("(Bi2Te3)8(Bi2Se3)2")["formula_normalized"] == "Bi0.4Se0.12Te0.48"
    assert fetch.formula_columns("Ba24Ga4Ag0Ge96")["formula_parsed"] == "Ba24Ga4Ge96"  # zero amounts dropped
    for bad in ("Sr14.5ga30.2Ge55.3", "(Bi 2Te3)9.02(Bi2Se3)0.98", "Bi2(Te,Se)3", "Zn3.75In0.05Sb3,"):
        assert fetch.formula_columns(bad)["parse_ok"] == 0, bad


def test_the_300k_rules():
    assert fetch.value_at_300k({250: 1.0, 300: 2.0, 350: 3.0})[1:] == ("grid_300K", "300")
    value, origin, used = fetch.value_at_300k({350: 10.0, 400: 100.0})
    assert origin == "extrap_down_log_linear" and used == "350;400" and value == pytest.approx(1.0)
    value, origin, _ = fetch.value_at_300k({200: 1.0, 250: 10.0})
    assert origin == "extrap_up_log_linear" and value == pytest.approx(100.0)
    assert fetch.value_at_300k({400: 1.0, 450: 2.0}) is None  # starts above 350 K
