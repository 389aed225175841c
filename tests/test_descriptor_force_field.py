"""The 190-dim force-field kernel-mean descriptor (sim2real_scaling.data.descriptors.force_field)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import require_shared_data
from sim2real_scaling.data.descriptors import DescriptorError
from sim2real_scaling.data.descriptors.force_field import (
    ELEMENT_MASSES,
    ELEMENTS,
    default_kernel_width,
    descriptor_names,
    ff_kernel_mean_descriptor,
)

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = Path(__file__).parent / "data" / "force_field_radonpy_reference.json"
PARAMS = ROOT / "src" / "sim2real_scaling" / "data" / "gaff2_mod_params.json"
SHARED = ROOT.parent / "shared" / "data"
PI1070 = SHARED / "polymer" / "sim_radonpy_pi1070_density.csv"
CHI = SHARED / "chi" / "chi_experimental.csv"

PE, PS, PMMA = "*CC*", "*CC(*)c1ccccc1", "*CC(*)(C)C(=O)OC"


def _block(values: np.ndarray, names: list[str], prefix: str) -> np.ndarray:
    return values[..., [i for i, n in enumerate(names) if n.startswith(prefix)]]


def test_shape_names_and_range() -> None:
    values, names = ff_kernel_mean_descriptor([PE, PS, "Cc1ccccc1"])
    assert values.shape == (3, 190) and values.dtype == np.float64
    assert len(names) == 190 == len(set(names))
    assert names[:10] == [f"mass_{e}" for e in ("H", "C", "N", "O", "F", "P", "S", "Cl", "Br", "I")]
    assert names[10] == "charge_0" and names[29] == "charge_19" and names[-1] == "k_dih_19"
    for p in ("charge", "epsilon", "sigma", "k_bond", "r0", "polar", "k_angle", "theta0", "k_dih"):
        assert [n for n in names if n.rsplit("_", 1)[0] == p] == [f"{p}_{k}" for k in range(20)]
    assert names == descriptor_names()
    assert np.all(np.isfinite(values)) and values.min() >= 0 and values.max() <= 1
    small, small_names = ff_kernel_mean_descriptor([PE], nk=5)
    assert small.shape == (1, 55) and small_names == descriptor_names(5)


def test_deterministic_and_row_independent() -> None:
    batch = [PMMA, PE, PS, PE, "C1CCOC1"]
    a, _ = ff_kernel_mean_descriptor(batch)
    b, _ = ff_kernel_mean_descriptor(list(reversed(batch)))
    np.testing.assert_array_equal(a, b[::-1])
    np.testing.assert_array_equal(a[1], a[3])
    alone, _ = ff_kernel_mean_descriptor([PS])
    np.testing.assert_array_equal(alone[0], a[2])


@pytest.mark.parametrize(
    "variants",
    [
        ["*OCC*", "*CCO*", "*COC*", "O(*)CC*"],  # PEO: either direction, any starting atom
        [PS, "*C(C*)c1ccccc1", "c1ccc(cc1)C(*)C*"],  # polystyrene written three ways
        [PMMA, "COC(=O)C(C)(*)C*"],
        ["*C/C=C/C*", "*C/C=C\\C*", "*CC=CC*"],  # GAFF2 typing ignores cis/trans
        ["*CC(*)c1ccccc1", "*C[C@H](*)c1ccccc1"],  # ... and tacticity
    ],
)
def test_invariant_to_how_the_repeat_unit_is_written(variants: list[str]) -> None:
    values, _ = ff_kernel_mean_descriptor(variants)
    for row in values[1:]:
        np.testing.assert_allclose(row, values[0], rtol=0, atol=1e-12)


def test_intensive_in_the_repeat_unit() -> None:
    """A cyclic 10-mer of *CCCC* is a cyclic 20-mer of *CC*: same per-unit distributions."""
    values, _ = ff_kernel_mean_descriptor([PE, "*CCCC*", "*CCOCCO*", "*CCO*"])
    np.testing.assert_allclose(values[1], values[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(values[2], values[3], rtol=0, atol=1e-12)


def _mass_block(counts: dict[str, int]) -> np.ndarray:
    """Mass kernel means by hand: Gaussians of width 0.05 on min-max scaled element masses."""
    scaled = (np.asarray(ELEMENT_MASSES) - 1.008) / (126.904 - 1.008)
    total = sum(counts.values())
    block = np.zeros(len(ELEMENTS))
    for element, n in counts.items():
        block += n / total * np.exp(-((scaled[ELEMENTS.index(element)] - scaled) ** 2) / (2 * 0.05**2))
    return block


def test_mass_centres_are_rdkit_atomic_weights() -> None:
    """Atom masses come from RDKit; the kernel centres (RadonPy's table) must be the same numbers."""
    from rdkit import Chem

    table = Chem.GetPeriodicTable()
    assert tuple(table.GetAtomicWeight(e) for e in ELEMENTS) == pytest.approx(ELEMENT_MASSES, abs=1e-9)
    d8, _ = ff_kernel_mean_descriptor(["*C([2H])([2H])C(*)([2H])c1c([2H])c([2H])c([2H])c([2H])c1[2H]", PS])
    assert d8[0, 0] < d8[1, 0]  # deuterium (2.014 amu) sits off the H centre: a smaller mass_H
    np.testing.assert_allclose(d8[0, 10:], d8[1, 10:], rtol=0, atol=1e-12)  # ... and changes nothing else


def test_polyethylene_blocks_by_hand() -> None:
    """PE = (C2H4)_n: the mass block only sees C and H (1/3 and 2/3 of the atoms) and the bond
    block only c3-c3 (2 of the 6 bonds per unit, one of them to the next unit) and c3-hc (4 of 6),
    with the GAFF2_mod parameters of the packaged table."""
    values, names = ff_kernel_mean_descriptor([PE])
    np.testing.assert_allclose(_block(values[0], names, "mass_"), _mass_block({"C": 1, "H": 2}), rtol=0, atol=1e-14)
    c = (12.011 - 1.008) / (126.904 - 1.008)
    assert values[0, names.index("mass_H")] == pytest.approx(2 / 3 + math.exp(-(c**2) / 0.005) / 3)

    table = json.loads(PARAMS.read_text())
    bonds = {}
    for name, rname, k, r0 in table["bond_types"]:
        bonds[name] = bonds[rname] = (k, r0)
    k_all = [k for k, _ in bonds.values() if k >= 20]
    lo, hi = min(k_all), max(k_all)
    s = 1 / (20 * math.sqrt(2))
    centres = (2 * np.arange(20) + 1) / 40
    x_cc, x_ch = (bonds["c3,c3"][0] - lo) / (hi - lo), (bonds["c3,hc"][0] - lo) / (hi - lo)
    k_bond = (2 * np.exp(-((x_cc - centres) ** 2) / (2 * s**2)) + 4 * np.exp(-((x_ch - centres) ** 2) / (2 * s**2))) / 6
    np.testing.assert_allclose(_block(values[0], names, "k_bond_"), k_bond, rtol=0, atol=1e-14)
    # pinned values (RadonPy gives the same); a block of charges well inside [-1, 1] sums to
    # about s sqrt(2 pi) nk (Gaussians of width s on a grid of spacing 1/nk)
    assert values[0, names.index("mass_C")] == pytest.approx(0.4780278, abs=1e-7)
    assert values[0, names.index("mass_H")] == pytest.approx(0.7390139, abs=1e-7)
    assert _block(values[0], names, "charge_").sum() == pytest.approx(s * math.sqrt(2 * math.pi) * 20, abs=1e-3)


def _reference() -> dict:
    return json.loads(REFERENCE.read_text())["values"]


@pytest.mark.parametrize("smiles", list(json.loads(REFERENCE.read_text())["values"]))
@pytest.mark.parametrize("width", ["default", "0.025"])
def test_matches_radonpy(smiles: str, width: str) -> None:
    """radonpy-pypi 0.2.11 FF_descriptor(GAFF2_mod(), polar=True, s=...).ff_kernel_mean on the
    cyclic 10-mer (repeat units) or the molecule (solvents), precomputed in tests/data."""
    expected = np.asarray(_reference()[smiles][width])
    kernel_width = None if width == "default" else float(width)
    values, _ = ff_kernel_mean_descriptor([smiles], kernel_width=kernel_width)
    np.testing.assert_allclose(values[0], expected, rtol=0, atol=1e-12)


def test_default_kernel_width_is_explicit() -> None:
    assert default_kernel_width(20) == pytest.approx(0.0353553390593)
    a, _ = ff_kernel_mean_descriptor([PS])
    b, _ = ff_kernel_mean_descriptor([PS], kernel_width=1 / (20 * math.sqrt(2)))
    c, _ = ff_kernel_mean_descriptor([PS], kernel_width=0.025)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-2
    np.testing.assert_array_equal(a[:, :10], c[:, :10])  # the mass block has its own width, 0.05


def test_cyclic_and_charge_options() -> None:
    ten, _ = ff_kernel_mean_descriptor([PS])
    five, _ = ff_kernel_mean_descriptor([PS], cyclic=5)
    np.testing.assert_allclose(five, ten, rtol=0, atol=1e-12)  # long backbone: no ring-size effect
    zero, names = ff_kernel_mean_descriptor([PS], charge="zero")
    # q = 0 scales to 0.5, midway between centres 9 and 10 (0.475, 0.525): exp(-0.025^2 / (2 s^2)) = exp(-1/4)
    assert zero[0, names.index("charge_9")] == pytest.approx(math.exp(-0.25))
    assert zero[0, names.index("charge_10")] == pytest.approx(math.exp(-0.25))
    assert zero[0, names.index("polar_0")] == pytest.approx(math.exp(-0.25))  # |q_i - q_j| = 0 -> 0
    np.testing.assert_array_equal(zero[:, :10], ten[:, :10])
    for bad in ({"nk": 0}, {"kernel_width": 0.0}, {"kernel_width": float("nan")}, {"cyclic": 1}, {"charge": "resp"}):
        with pytest.raises(ValueError):
            ff_kernel_mean_descriptor([PE], **bad)


def test_solvents_without_star() -> None:
    values, names = ff_kernel_mean_descriptor(["Cc1ccccc1", "O", "ClC(Cl)(Cl)Cl", "CC(C)=O"])
    assert np.all(np.isfinite(values))
    np.testing.assert_allclose(_block(values[1], names, "mass_"), _mass_block({"O": 1, "H": 2}), rtol=0, atol=1e-14)
    np.testing.assert_allclose(_block(values[2], names, "mass_"), _mass_block({"C": 1, "Cl": 4}), rtol=0, atol=1e-14)
    for row in (1, 2):  # water and CCl4 have no proper dihedral: an all-zero k_dih block
        assert np.all(_block(values[row], names, "k_dih_") == 0)
    assert _block(values[0], names, "k_dih_").sum() > 0


@pytest.mark.parametrize(
    ("smiles", "reason"),
    [
        ("*[Si](C)(C)O*", "Si"),  # GAFF2_mod has no silicon types: siloxanes cannot be described
        ("*CC(*", "invalid SMILES"),
        ("C1CC", "invalid SMILES"),
        ("*CC(*)C*", "exactly two"),
        ("[Na+].[Cl-]", "Na"),
        ("", "invalid SMILES"),
    ],
)
def test_untypeable_or_invalid_raises_naming_it(smiles: str, reason: str) -> None:
    with pytest.raises(DescriptorError) as info:
        ff_kernel_mean_descriptor([PE, PS, smiles])
    message = str(info.value)
    assert "position 2" in message and repr(smiles) in message and reason in message


def test_registry_set() -> None:
    from sim2real_scaling.data.descriptors.registry import compute_descriptors

    values, names = compute_descriptors("force_field", [PE, "CCO"])
    assert values.shape == (2, 190) and names == descriptor_names()


def _shared_smiles() -> list[str]:
    import pandas as pd

    require_shared_data()
    chi = pd.read_csv(CHI)
    smiles = pd.read_csv(PI1070)["smiles"].tolist() + chi["polymer_smiles"].tolist() + chi["solvent_smiles"].tolist()
    return list(dict.fromkeys(smiles))


@pytest.mark.slow
def test_all_shared_smiles_featurize() -> None:
    """Every repeat unit of PI1070 and of the chi data and every chi solvent is typed (~1-2 min)."""
    smiles = _shared_smiles()
    values, _ = ff_kernel_mean_descriptor(smiles)
    assert values.shape == (len(smiles), 190) and np.all(np.isfinite(values))
