"""Formula parsing and the 580-dim compositional kernel mean descriptor."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim2real_scaling.data.descriptors import DescriptorError
from sim2real_scaling.data.descriptors.composition import (
    composition_kmd_descriptor,
    element_feature_names,
    load_element_table,
    parse_formulas,
)
from sim2real_scaling.data.descriptors.element_table import FEATURE_NAMES, FEATURES, impute_missing

G = 10
S_DEFAULT = 1.0 / ((G - 1) * math.sqrt(2.0))  # KmdPlus sigma="auto": exp(-(f-g)^2 / h^2), h = 1/9
STARRY = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "starrydata"


def kmd(formulas, **kw):
    values, names = composition_kmd_descriptor(formulas, **kw)
    return values, names


def scaled_value(symbol: str, feature: str) -> float:
    col = load_element_table()[feature]
    return float((col[symbol] - col.min()) / (col.max() - col.min()))


# --- element table --------------------------------------------------------------------------------


def test_element_table_shape_and_completeness():
    table = load_element_table()
    assert table.shape == (94, 58)
    assert table.index[0] == "H" and table.index[-1] == "Pu"
    assert list(table.columns) == list(FEATURE_NAMES) == element_feature_names()
    assert np.isfinite(table.to_numpy()).all()
    assert (table.max() > table.min()).all()  # every feature varies, so min-max scaling is defined


def test_element_table_spot_values():
    t = load_element_table()
    assert t.at["Cu", "atomic_number"] == 29 and t.at["Pu", "atomic_number"] == 94
    assert t.at["Te", "period"] == 5
    assert t.at["Cu", "atomic_weight"] == pytest.approx(63.546)
    assert t.at["Bi", "num_f_valence"] == 14 and t.at["Bi", "num_p_valence"] == 3
    assert t.at["Cu", "melting_point"] == pytest.approx(1357.77)
    # gases take the condensed-phase molar volume, not ~2.4e4 cm^3/mol
    assert t["atomic_volume"].max() < 200


def test_csv_header_documents_every_feature():
    from importlib import resources

    text = resources.files("sim2real_scaling").joinpath("data/element_features.csv").read_text()
    header = [line for line in text.splitlines() if line.startswith("#")]
    for spec in FEATURES:
        assert any(
            line.startswith(f"# {spec.name} | {spec.source} | ") and f"| {spec.unit} |" in line
            for line in header
        )
    assert any("mendeleev" in line and "pymatgen" in line and "matminer" in line for line in header)


def test_impute_missing_uses_period_block_then_block_then_all():
    meta = pd.DataFrame(
        {"symbol": ["A", "B", "C", "D", "E"], "period": [2, 2, 3, 3, 4], "block": ["s", "s", "s", "p", "d"]},
        index=[1, 2, 3, 4, 5],
    )
    raw = pd.DataFrame({"f": [1.0, np.nan, 5.0, np.nan, np.nan]}, index=meta.index)
    filled, log = impute_missing(raw, meta)
    assert filled["f"].tolist() == [1.0, 1.0, 5.0, 3.0, 3.0]  # B: period 2 s; D: no p values -> all; E: all
    assert log == {"f": ["B", "D", "E"]}


# --- descriptor: shape, names, definition ---------------------------------------------------------


def test_dimension_and_names():
    values, names = kmd(["Cu", "Bi2Te3", "In0.01Ag0.01Sn0.98Te1"])
    assert values.shape == (3, 580) and values.dtype == np.float64
    assert len(names) == 580 and len(set(names)) == 580
    assert names[0] == "atomic_number_k0" and names[9] == "atomic_number_k9" and names[10] == "period_k0"
    assert names[-1] == "num_s_valence_k9"
    assert names == [f"{f}_k{k}" for f in FEATURE_NAMES for k in range(10)]


def test_pure_copper_by_hand():
    values, names = kmd(["Cu"])
    phi = values[0]
    # atomic number block, by hand: Z scaled over H..Pu is (29 - 1) / (94 - 1); grid k/9;
    # s = 1/(9 sqrt 2), so exp(-(f - g)^2 / (2 s^2)) = exp(-81 (f - k/9)^2)
    f = 28.0 / 93.0
    expected = [math.exp(-81.0 * (f - k / 9.0) ** 2) for k in range(10)]
    np.testing.assert_allclose(phi[:10], expected, rtol=1e-12)
    assert expected[3] == pytest.approx(math.exp(-81.0 * (28 / 93 - 1 / 3) ** 2))  # peak near g_3 = 0.333
    assert int(np.argmax(phi[:10])) == 3
    # every block is one Gaussian bump at Cu's scaled value of that feature
    for j, feat in enumerate(FEATURE_NAMES):
        fj = scaled_value("Cu", feat)
        grid = np.linspace(0, 1, 10)
        np.testing.assert_allclose(
            phi[10 * j : 10 * (j + 1)],
            np.exp(-((fj - grid) ** 2) / (2 * S_DEFAULT**2)),
            rtol=1e-12,
            atol=1e-300,
        )
    assert names[10 * FEATURE_NAMES.index("melting_point")] == "melting_point_k0"


def test_binary_is_fraction_weighted_sum_of_elements():
    (na, cl, nacl), _ = kmd(["Na", "Cl", "NaCl"])
    np.testing.assert_allclose(nacl, 0.5 * na + 0.5 * cl, rtol=1e-12, atol=1e-15)
    (bi, te, bt), _ = kmd(["Bi", "Te", "Bi2Te3"])
    np.testing.assert_allclose(bt, 0.4 * bi + 0.6 * te, rtol=1e-12, atol=1e-15)
    assert not np.allclose(bt, bi) and not np.allclose(bt, te)


def test_invariant_to_formula_scaling_and_writing():
    values, _ = kmd(["Bi2Te3", "Bi4Te6", "(Bi2Te3)2", "Te3Bi2", "Bi0.4Te0.6", "Bi2 Te3"])
    for row in values[1:]:
        np.testing.assert_allclose(row, values[0], rtol=1e-12, atol=1e-15)


def test_kernel_width_and_grid_points():
    f = scaled_value("Cu", "atomic_number")
    values, names = kmd(["Cu"], grid_points=5, kernel_width=0.2)
    assert values.shape == (1, 290) and names[4] == "atomic_number_k4" and names[5] == "period_k0"
    np.testing.assert_allclose(
        values[0, :5], np.exp(-((f - np.linspace(0, 1, 5)) ** 2) / (2 * 0.2**2)), rtol=1e-12
    )
    # default width equals the explicit KmdPlus value
    np.testing.assert_array_equal(kmd(["Cu"])[0], kmd(["Cu"], kernel_width=S_DEFAULT)[0])
    for bad in ({"grid_points": 1}, {"kernel_width": 0.0}, {"kernel_width": -1.0}, {"statistic": "median"}):
        with pytest.raises(ValueError):
            kmd(["Cu"], **bad)


def test_summary_statistic():
    values, names = kmd(["Bi2Te3", "Cu"], statistic="summary")
    assert (
        values.shape == (2, 4 * 58) and names[0] == "atomic_number_mean" and names[-1] == "num_s_valence_min"
    )
    fbi, fte = scaled_value("Bi", "atomic_number"), scaled_value("Te", "atomic_number")
    mean = 0.4 * fbi + 0.6 * fte
    got = dict(zip(names, values[0]))
    assert got["atomic_number_mean"] == pytest.approx(mean)
    assert got["atomic_number_var"] == pytest.approx(0.4 * (fbi - mean) ** 2 + 0.6 * (fte - mean) ** 2)
    assert got["atomic_number_max"] == pytest.approx(fbi) and got["atomic_number_min"] == pytest.approx(fte)
    assert dict(zip(names, values[1]))["atomic_number_var"] == pytest.approx(0.0, abs=1e-15)


def test_deterministic_and_batch_independent():
    formulas = ["In0.01Ag0.01Sn0.98Te1", "Bi2Te3", "Pb1Te0.9988I0.0012", "Mg2Si0.4Sn0.6"]
    a, _ = kmd(formulas)
    b, _ = kmd(formulas)
    np.testing.assert_array_equal(a, b)
    singles = np.vstack([kmd([f])[0] for f in formulas])
    np.testing.assert_allclose(a, singles, rtol=1e-13, atol=1e-15)
    empty, names = kmd([])
    assert empty.shape == (0, 580) and len(names) == 580


# --- parsing and errors ----------------------------------------------------------------------------


def test_parse_formulas_fractions():
    fractions, reasons = parse_formulas(["Bi2Te3", "PbTe1Se0", "(PbTe)0.7(PbS)0.3", "In0.01Ag0.01Sn0.98Te1"])
    assert reasons == [None] * 4
    assert fractions[0] == pytest.approx({"Bi": 0.4, "Te": 0.6})
    assert fractions[1] == pytest.approx({"Pb": 0.5, "Te": 0.5})  # zero amounts are dropped
    assert fractions[2] == pytest.approx({"Pb": 0.5, "Te": 0.35, "S": 0.15})
    for frac in fractions:
        assert sum(frac.values()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("formula", "pattern"),
    [
        ("Xx2O3", r"unknown element 'Xx'"),
        ("Ca0.1Mm0.1Co4Sb12", r"unknown element 'Mm'"),
        ("", r"empty"),
        ("Bi2Te-3", r"negative"),
        ("abc", r"cannot parse.*abc"),
        ("Sr14.5ga30.2Ge55.3", r"cannot parse"),
        ("CoSb3/WO3", r"cannot parse"),
        ("O0", r"no element with a positive amount"),
        ("DD0.86Fe4Sb12", r"'D' or 'T'"),
        ("TI0.1In0.2Co4Sb12", r"'D' or 'T'"),
        (None, r"not a string"),
    ],
)
def test_bad_formulas_have_reasons(formula, pattern):
    fractions, reasons = parse_formulas([formula])
    assert fractions == [None]
    assert reasons[0] is not None and re.search(pattern, reasons[0])


def test_descriptor_error_names_formula_and_row():
    for bad in ["Xx2O3", "", "Bi2Te-3", "abc"]:
        with pytest.raises(DescriptorError) as err:
            kmd(["Cu", "Bi2Te3", bad])
        assert repr(bad) in str(err.value) and "row 2" in str(err.value)
    with pytest.raises(DescriptorError, match=r"'abc' at row 1: .*\(and 1 more bad formulas\)"):
        kmd(["Cu", "abc", "Bi2Te3", "Xx2O3"])
    with pytest.raises(DescriptorError, match=r"'Am2O3' at row 0: element\(s\) Am outside"):
        kmd(["Am2O3"])
    assert issubclass(DescriptorError, ValueError)


def test_starrydata_compositions_parse_like_provenance(shared_data: Path) -> None:
    for name in ("thermal_conductivity_300K.csv", "electrical_conductivity_300K.csv"):
        data = pd.read_csv(STARRY / name, keep_default_na=False)
        fractions, reasons = parse_formulas(data["composition"].tolist())
        ok = np.array([r is None for r in reasons])
        prov_ok = data["parse_ok"].astype(int).to_numpy() == 1
        assert not (prov_ok & ~ok).any()  # everything the provenance parse accepts, we accept
        assert (ok & ~prov_ok).sum() <= 1  # '(Bi 2Te3)9.02(Bi2Se3)0.98': spaces ignored here
        for frac, norm in zip(
            np.array(fractions, dtype=object)[prov_ok], data["formula_normalized"][prov_ok]
        ):
            ref = {m[1]: float(m[2]) for m in re.finditer(r"([A-Z][a-z]?)([0-9.]+)", norm)}
            assert set(ref) == set(frac) and all(abs(ref[k] - frac[k]) < 6e-5 for k in ref), norm
        values, _ = kmd([c for c, good in zip(data["composition"], ok) if good])
        assert values.shape == (int(ok.sum()), 580) and np.isfinite(values).all()
