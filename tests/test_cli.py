"""Tests of the ``sim2real-scaling`` command line: every subcommand, JSON output and bad tables."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim2real_scaling.cli import main
from sim2real_scaling.analysis.tables import TableError, read_summary, read_trials

NS = np.geomspace(100, 7e4, 8).round()
MS = [50, 100, 200, 400, 601]


def _density(n: float, m: float) -> float:
    return (0.338 * n**-0.265 + 0.0192) * m**-0.239 + 0.0535


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """summary.csv / trials.csv with two properties (density: a true surface; chi: not one) and
    group_trials.csv."""
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    props = {
        "density": (_density, 0.01),
        "chi": (lambda n, m: 0.5 * n ** -(0.02 + 0.5 * m / 600) * m**-0.2 + 0.02, 0.005),
    }
    summary, trials = [], []
    for prop, (f, sd) in props.items():
        for m in MS:
            for n in [*NS, 0.0]:
                method = "direct" if n == 0 else "transfer"
                mu = f(n, m) if n > 0 else 1.3 * f(100.0, m)
                t = mu + rng.normal(0, sd, 40)
                trials += [dict(property=prop, method=method, n=n, m=m, trial=k, mae=v)
                           for k, v in enumerate(t)]
                se = t.std(ddof=1) / np.sqrt(t.size)
                summary.append(dict(property=prop, method=method, n=n, m=m, mae_mean=t.mean(),
                                    mae_ci_low=t.mean() - 1.645 * se, mae_ci_high=t.mean() + 1.645 * se,
                                    trials=t.size))
    groups = []
    for g, (D, a, C) in {"A": (0.5, 0.3, 0.02), "B": (0.3, 0.1, 0.05), "C": (0.4, 0.2, 0.01)}.items():
        for n in [*NS, 0.0]:
            mu = D * n**-a + C if n > 0 else D * 100**-a + C + 0.05
            for k in range(30):
                groups.append(dict(property="chi", method="direct" if n == 0 else "transfer", n=n,
                                   m=601, trial=k, group_by="class", group=g,
                                   mae=mu + rng.normal(0, 0.01), count=3))
    paths = {"summary": d / "summary.csv", "trials": d / "trials.csv", "groups": d / "group_trials.csv"}
    pd.DataFrame(summary).to_csv(paths["summary"], index=False)
    pd.DataFrame(trials).to_csv(paths["trials"], index=False)
    pd.DataFrame(groups).to_csv(paths["groups"], index=False)
    paths["dir"] = d
    return paths


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    rc, out, err = _run(capsys, *argv, "--json")
    assert rc == 0, err
    return json.loads(out)


# ---------------------------------------------------------------------------------------------
# subcommands
# ---------------------------------------------------------------------------------------------


def test_fit_in_n_table_and_json(tables: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run(capsys, "fit", tables["summary"], "--property", "density", "--n-boot", "30")
    assert rc == 0, err
    assert "alpha" in out and "preferred by BIC" in out and "MAE = " in out
    data = _json(capsys, "fit", tables["summary"], "--property", "density", "--n-boot", "30")
    assert data["kind"] == "law" and data["vary"] == "n" and data["m"] == 601
    fit = data["fit"]
    assert fit["status"] == "ok" and fit["bootstrap"] == "parametric"
    assert fit["alpha_ci"][0] <= fit["alpha"] <= fit["alpha_ci"][1]
    assert fit["preferred"] in ("floor", "no_floor")


def test_fit_with_trials_and_seed(tables: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    args = ("fit", tables["summary"], "--trials", tables["trials"], "--property", "density",
            "--n-boot", "20", "--seed", "4")
    a = _json(capsys, *args)
    b = _json(capsys, *args)
    assert a["fit"]["bootstrap"] == "replicates, then trials"  # the paired design, by default
    assert a == b
    assert a["settings"]["seed"] == 4 and a["settings"]["n_resamples"] == 2000
    d = _json(capsys, "fit", tables["summary"], "--trials", tables["trials"], "--property",
              "density", "--surface", "--n-boot", "5")
    assert d["fit"]["bootstrap"] == "replicates, then trials" and d["fit"]["n_boot"] == 5


def test_fit_in_m_and_direct(tables: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    data = _json(capsys, "fit", tables["summary"], "--property", "density", "--in", "m",
                 "--n-boot", "10")
    assert data["vary"] == "m" and data["n"] == NS.max() and data["fit"]["n_points"] == len(MS)
    data = _json(capsys, "fit", tables["summary"], "--property", "density", "--in", "m",
                 "--method", "direct", "--n-boot", "10")
    assert data["method"] == "direct" and data["n"] == 0


def test_fit_surface(tables: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run(capsys, "fit", tables["summary"], "--property", "density", "--surface",
                        "--n-boot", "10")
    assert rc == 0, err
    assert "holds: yes" in out and "eps" in out
    data = _json(capsys, "fit", tables["summary"], "--property", "chi", "--surface", "--n-boot", "0")
    assert data["kind"] == "surface" and data["fit"]["holds"] is False


def test_rate_surface_and_fallback(tables: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    data = _json(capsys, "rate", tables["summary"], "--property", "density", "--n-boot", "20")
    assert data["rate"]["source"] == "surface"
    assert data["rate"]["n"] == NS.max() and data["rate"]["m"] == 601
    assert data["rate"]["sims_per_experiment"] > 0
    rc, out, err = _run(capsys, "rate", tables["summary"], "--property", "chi", "--n-boot", "10")
    assert rc == 0, err
    assert "gradients from: 1d" in out and "surface rejected" in out
    data = _json(capsys, "rate", tables["summary"], "--property", "chi", "--from", "1d",
                 "--n", "5000", "--m", "400", "--n-boot", "10")
    assert data["rate"]["source"] == "1d" and data["law_n"]["m"] == 400


def test_required_n(tables: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    data = _json(capsys, "required-n", tables["summary"], "--property", "density", "--target",
                 "0.07", "--n-boot", "20")
    res = data["required_n"]
    assert res["reachable"] and res["ci_low"] <= res["value"] <= res["ci_high"]
    data = _json(capsys, "required-n", tables["summary"], "--property", "density", "--target",
                 "0.001", "--surface", "--m", "300", "--n-boot", "10")
    assert data["required_n"]["reachable"] is False and data["required_n"]["value"] is None
    assert data["m"] == 300


def test_plan(tables: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    data = _json(capsys, "plan", tables["summary"], "--property", "density", "--cost-sim", "1",
                 "--cost-exp", "200", "--target", "0.07", "--n-boot", "10")
    plan = data["plan"]
    assert plan["feasible"] and abs(plan["tangency"] - 1) < 1e-3
    assert plan["mae"] == pytest.approx(0.07)
    budget = _json(capsys, "plan", tables["summary"], "--property", "density", "--cost-sim", "1",
                   "--cost-exp", "200", "--budget", str(plan["cost"]), "--n-boot", "10")
    assert budget["plan"]["mae"] == pytest.approx(0.07, rel=1e-6)
    rc, out, _ = _run(capsys, "plan", tables["summary"], "--property", "density", "--cost-sim", "1",
                      "--cost-exp", "200", "--target", "0.001", "--n-boot", "0")
    assert rc == 1 and "unreachable" in out


def test_groups(tables: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    data = _json(capsys, "groups", tables["groups"], "--n-boot", "20")
    assert [g["group"] for g in data["groups"]] == ["A", "C", "B"]
    rc, out, err = _run(capsys, "groups", tables["groups"], "--n-boot", "10", "--top", "2")
    assert rc == 0, err
    assert "polyester" not in out and out.count("\n") >= 5


def test_plots_from_cli(tables: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    stem = tables["dir"] / "figs" / "density"
    rc, _, err = _run(capsys, "fit", tables["summary"], "--property", "density", "--n-boot", "10",
                      "--plot", stem, "--unit", "g/cm^3")
    assert rc == 0, err
    assert stem.with_suffix(".png").stat().st_size > 0
    assert stem.with_suffix(".svg").stat().st_size > 0


def test_plot_names_the_source(tables: dict[str, Path], capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    import sim2real_scaling.report.figures as plots

    seen: dict[str, object] = {}
    monkeypatch.setattr(plots, "plot_scaling_curve", lambda *a, **kw: seen.update(kw) or [])
    rc, _, err = _run(capsys, "fit", tables["summary"], "--property", "density", "--n-boot", "5",
                      "--plot", tables["dir"] / "x", "--source-label", "thermal-conductivity samples")
    assert rc == 0, err
    assert seen["source"] == "thermal-conductivity samples"
    _run(capsys, "fit", tables["summary"], "--property", "density", "--n-boot", "5", "--plot", tables["dir"] / "y")
    assert seen["source"] == "simulated samples"


# ---------------------------------------------------------------------------------------------
# bad input: one-line error, exit status 2, no traceback
# ---------------------------------------------------------------------------------------------


def _error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    rc, out, err = _run(capsys, *argv)
    assert rc == 2, (out, err)
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1, err
    assert lines[0].startswith("sim2real-scaling: error: ")
    return lines[0]


def test_missing_columns(tables: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    bad = tables["dir"] / "nocols.csv"
    pd.read_csv(tables["summary"]).drop(columns=["mae_ci_high", "trials"]).to_csv(bad, index=False)
    msg = _error(capsys, "fit", bad)
    assert str(bad) in msg and "'mae_ci_high'" in msg and "'trials'" in msg


def test_nan_means_are_named(tables: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """A point where every trial diverged has no mean: it is left out (as in every table of the workflow) and
    its lines are named."""
    bad = tables["dir"] / "nan.csv"
    df = pd.read_csv(tables["summary"])
    df.loc[[3, 7], "mae_mean"] = np.nan
    df.to_csv(bad, index=False)
    rc, out, err = _run(capsys, "fit", bad, "--property", "density", "--json")
    assert rc == 0 and "line(s) 5, 9 have no mean" in err and str(bad) in err
    assert json.loads(out)["fit"]["status"] == "ok"
    kept = read_summary(bad, drop_nan_mean=True)
    assert len(kept) == len(df) - 2 and kept.attrs["dropped_lines"] == [5, 9]
    with pytest.raises(TableError, match="5, 9"):
        read_summary(bad)


def test_single_n_value(tables: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    bad = tables["dir"] / "single.csv"
    df = pd.read_csv(tables["summary"])
    df[(df["n"] == NS[0]) | (df["n"] == 0)].to_csv(bad, index=False)
    msg = _error(capsys, "fit", bad, "--property", "density")
    assert "single n value" in msg
    msg = _error(capsys, "fit", bad, "--property", "density", "--surface")
    assert "1 distinct n" in msg


def test_property_selection_errors(tables: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    msg = _error(capsys, "fit", tables["summary"])
    assert "2 properties" in msg and "--property" in msg
    msg = _error(capsys, "fit", tables["summary"], "--property", "viscosity")
    assert "unknown property 'viscosity'" in msg and "density" in msg


def test_other_bad_inputs(tables: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    d = tables["dir"]
    assert "not found" in _error(capsys, "fit", d / "nope.csv")
    empty = d / "empty.csv"
    empty.write_text("")
    assert "empty" in _error(capsys, "fit", empty)
    text = d / "text.csv"
    df = pd.read_csv(tables["summary"])
    df["n"] = df["n"].astype(object)
    df.loc[2, "n"] = "many"
    df.to_csv(text, index=False)
    assert "'n' is not numeric" in _error(capsys, "fit", text)
    method = d / "method.csv"
    df = pd.read_csv(tables["summary"])
    df.loc[0, "method"] = "pretrained"
    df.to_csv(method, index=False)
    assert "'method'" in _error(capsys, "fit", method, "--property", "density")
    assert "no finetune rows at m = 7" in _error(capsys, "fit", tables["summary"], "--property",
                                                   "density", "--m", "7")
    assert "direct has no n" in _error(capsys, "fit", tables["summary"], "--property", "density", "--method",
                                       "direct")
    # one transfer method per study: several present and none chosen is named
    several = d / "several.csv"
    df = pd.read_csv(tables["summary"])
    extra = df[(df["method"] == "transfer") & (df["property"] == "density")].assign(method="affine")
    pd.concat([df, extra]).to_csv(several, index=False)
    assert "several transfer methods (finetune, affine); choose one with --method" in _error(
        capsys, "fit", several, "--property", "density")
    # argparse errors are exit status 2 too
    rc, _, err = _run(capsys, "plan", tables["summary"], "--cost-sim", "-1", "--cost-exp", "1",
                      "--target", "0.1")
    assert rc == 2 and "must be a positive number" in err
    rc, _, _ = _run(capsys)
    assert rc == 2


def test_trials_table_validation(tables: dict[str, Path]) -> None:
    d = tables["dir"]
    df = pd.read_csv(tables["trials"])
    df.loc[5, "mae"] = np.nan
    df.to_csv(d / "trials_nan.csv", index=False)
    kept = read_trials(d / "trials_nan.csv")  # a diverged trial stays (it is part of the design), without a value
    assert len(kept) == len(df) and kept.attrs["dropped_lines"] == [7] and np.isnan(kept.loc[5, "mae"])
    with pytest.raises(TableError, match="line"):
        read_trials(d / "trials_nan.csv", drop_nan_mae=False)


def test_help_documents_options(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _run(capsys, "--help")
    assert rc == 0
    for cmd in ("fit", "rate", "required-n", "plan", "groups"):
        assert cmd in out
    rc, out, _ = _run(capsys, "plan", "--help")
    assert rc == 0
    for opt in ("--cost-sim", "--cost-exp", "--target", "--budget", "--n-max", "--m-max", "--seed",
                "--n-boot", "--json", "--property", "--trials"):
        assert opt in out
    flat = " ".join(out.split())  # help text is wrapped to the terminal width
    assert "currency" in flat and "property's units" in flat and "else 200" in flat
    assert "results folder" in flat


def test_console_script_subprocess(tables: dict[str, Path]) -> None:
    script = Path(sys.executable).parent / "sim2real-scaling"
    assert script.exists(), "console script not installed: the README's install command (pip install -e .) makes it"
    proc = subprocess.run(
        [str(script), "fit", str(tables["summary"]), "--property", "density", "--n-boot", "5",
         "--json"], capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["fit"]["status"] == "ok"
    proc = subprocess.run([str(script), "fit", str(tables["summary"])], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("sim2real-scaling: error:") and "Traceback" not in proc.stderr
