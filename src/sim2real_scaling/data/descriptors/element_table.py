"""Build the 58-feature element table behind the compositional kernel-mean descriptor.

The table mirrors XenonPy's ``elements_completed`` preset (58 element-level features of the 94
elements H..Pu, the table that Kusaba et al.'s kernel mean descriptor and Minami et al.'s 580-dim
inorganic descriptor use), rebuilt from maintained packages instead of XenonPy's run-time download:

* ``mendeleev`` (PyPI): its ``elements`` and ``ionizationenergies`` tables (radii, electronegativity
  scales, density, polarizability, C6, heats, first ionization energy...);
* ``pymatgen`` (``pymatgen.core.Element``): electronegativity ``X``, electron affinity, melting and
  boiling points, thermal conductivity, bulk modulus, speed of sound, molar volume, calculated atomic
  radius (where pymatgen is more complete than mendeleev);
* the Magpie element-property tables (Ward et al., npj Comput. Mater. 2, 16028 (2016)) as shipped in
  ``matminer`` (``matminer/utils/data_files/magpie_elementdata/*.table``): the OQMD ground-state
  features, ICSD volume, HHI indices, valence/unfilled orbital counts, CRC polarizability, fusion
  enthalpy and heat capacities. matminer is only read as data files (it is never imported), because
  it pins ``pandas<3``: install it apart, e.g. ``pip install --no-deps --target DIR matminer`` and
  put DIR on ``PYTHONPATH`` or pass ``--magpie-dir DIR/matminer/utils/data_files/magpie_elementdata``.

Where the table differs from XenonPy's (same role, other data): ``covalent_radius_slater`` is
replaced by ``atomic_radius_calculated`` (pymatgen, Clementi et al. 1967) because mendeleev >= 1.0 no
longer ships Slater's covalent radii; ``Polarizability`` is spelt ``polarizability``;
``atomic_volume`` is mendeleev's ``atomic_weight / density`` except for the 11 elements that are
gases at 295 K, whose gas-phase value (~2.4e4 cm^3/mol) is replaced by pymatgen's condensed-phase
molar volume; the values of the other features are those of the current package releases, not of
XenonPy's older snapshot. XenonPy filled its gaps by multiple imputation (MICE); here the heat of
formation of the noble gases is set to its known value 0, and any other missing value is filled by
the median of the feature over the elements of the same period and block, else of the same block,
else over all elements. 227 of the 94 x 58 = 5452 cells are filled so; the CSV header lists every one.

Only the generator needs these packages. The descriptor reads the generated CSV shipped in the
package (``sim2real_scaling/data/element_features.csv``); nothing is downloaded at run time. Run::

    python -m sim2real_scaling.data.descriptors.element_table --magpie-dir DIR [--out PATH]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

MAX_Z = 94  # H..Pu, as XenonPy's elements_completed
GAS_DENSITY = 0.01  # g/cm^3: mendeleev densities below this are of the gas at 295 K
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "element_features.csv"


@dataclass(frozen=True)
class FeatureSpec:
    """One element-level feature: where it comes from and in which unit."""

    name: str  # column name in the table (XenonPy's name where the quantity is the same)
    source: str  # "mendeleev", "pymatgen" or "magpie"
    attribute: str  # column / attribute / Magpie table name in that source
    unit: str
    description: str
    xenonpy_name: str  # the elements_completed column it stands in for


_M, _P, _G = "mendeleev", "pymatgen", "magpie"

# Order: XenonPy's feature documentation table (atomic_number first).
FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("atomic_number", _M, "elements.atomic_number", "-", "atomic number Z", "atomic_number"),
    FeatureSpec("period", _M, "elements.period", "-", "period in the periodic table", "period"),
    FeatureSpec(
        "mendeleev_number",
        _M,
        "elements.mendeleev_number",
        "-",
        "Mendeleev number (Pettifor/Villars)",
        "mendeleev_number",
    ),
    FeatureSpec(
        "atomic_radius", _M, "elements.atomic_radius", "pm", "atomic radius (Slater 1964)", "atomic_radius"
    ),
    FeatureSpec(
        "atomic_radius_rahm",
        _M,
        "elements.atomic_radius_rahm",
        "pm",
        "atomic radius (Rahm et al.)",
        "atomic_radius_rahm",
    ),
    FeatureSpec(
        "atomic_volume",
        _M,
        "Element.atomic_volume = atomic_weight/density; gases at 295 K: pymatgen Element.molar_volume",
        "cm^3/mol",
        "atomic volume of the condensed phase",
        "atomic_volume",
    ),
    FeatureSpec(
        "atomic_weight", _M, "elements.atomic_weight", "Da", "relative atomic weight", "atomic_weight"
    ),
    FeatureSpec(
        "icsd_volume", _G, "ICSDVolume", "A^3/atom", "volume per atom of the ICSD phase", "icsd_volume"
    ),
    FeatureSpec(
        "lattice_constant", _M, "elements.lattice_constant", "A", "lattice constant", "lattice_constant"
    ),
    FeatureSpec("vdw_radius", _M, "elements.vdw_radius", "pm", "van der Waals radius (CRC)", "vdw_radius"),
    FeatureSpec(
        "vdw_radius_alvarez",
        _M,
        "elements.vdw_radius_alvarez",
        "pm",
        "van der Waals radius (Alvarez)",
        "vdw_radius_alvarez",
    ),
    FeatureSpec(
        "vdw_radius_mm3",
        _M,
        "elements.vdw_radius_mm3",
        "pm",
        "van der Waals radius (MM3 force field)",
        "vdw_radius_mm3",
    ),
    FeatureSpec(
        "vdw_radius_uff", _M, "elements.vdw_radius_uff", "pm", "van der Waals radius (UFF)", "vdw_radius_uff"
    ),
    FeatureSpec(
        "covalent_radius_cordero",
        _M,
        "elements.covalent_radius_cordero",
        "pm",
        "covalent radius (Cordero et al.)",
        "covalent_radius_cordero",
    ),
    FeatureSpec(
        "covalent_radius_pyykko",
        _M,
        "elements.covalent_radius_pyykko",
        "pm",
        "single-bond covalent radius (Pyykko)",
        "covalent_radius_pyykko",
    ),
    FeatureSpec(
        "covalent_radius_pyykko_double",
        _M,
        "elements.covalent_radius_pyykko_double",
        "pm",
        "double-bond covalent radius (Pyykko)",
        "covalent_radius_pyykko_double",
    ),
    FeatureSpec(
        "covalent_radius_pyykko_triple",
        _M,
        "elements.covalent_radius_pyykko_triple",
        "pm",
        "triple-bond covalent radius (Pyykko)",
        "covalent_radius_pyykko_triple",
    ),
    FeatureSpec(
        "atomic_radius_calculated",
        _P,
        "Element.atomic_radius_calculated",
        "A",
        "calculated atomic radius (Clementi et al. 1967)",
        "covalent_radius_slater",
    ),
    FeatureSpec(
        "c6_gb", _M, "elements.c6_gb", "hartree bohr^6", "C6 dispersion coefficient (Gould & Bucko)", "c6_gb"
    ),
    FeatureSpec("density", _M, "elements.density", "g/cm^3", "density at 295 K", "density"),
    FeatureSpec(
        "dipole_polarizability",
        _M,
        "elements.dipole_polarizability",
        "bohr^3",
        "dipole polarizability (Schwerdtfeger)",
        "dipole_polarizability",
    ),
    FeatureSpec(
        "electron_affinity", _P, "Element.electron_affinity", "eV", "electron affinity", "electron_affinity"
    ),
    FeatureSpec(
        "electron_negativity",
        _P,
        "Element.X",
        "-",
        "Pauling electronegativity as tabulated by pymatgen",
        "electron_negativity",
    ),
    FeatureSpec("en_allen", _M, "elements.en_allen", "eV", "Allen electronegativity", "en_allen"),
    FeatureSpec("en_ghosh", _M, "elements.en_ghosh", "1/pm", "Ghosh electronegativity", "en_ghosh"),
    FeatureSpec(
        "en_pauling", _M, "elements.en_pauling", "-", "Pauling electronegativity (CRC)", "en_pauling"
    ),
    FeatureSpec(
        "gs_bandgap", _G, "GSbandgap", "eV", "DFT band gap of the T=0 K ground state (OQMD)", "gs_bandgap"
    ),
    FeatureSpec(
        "gs_energy",
        _G,
        "GSenergy_pa",
        "eV/atom",
        "DFT energy per atom of the ground state (OQMD)",
        "gs_energy",
    ),
    FeatureSpec(
        "gs_est_bcc_latcnt",
        _G,
        "GSestBCClatcnt",
        "A",
        "BCC lattice parameter from the DFT volume (OQMD)",
        "gs_est_bcc_latcnt",
    ),
    FeatureSpec(
        "gs_est_fcc_latcnt",
        _G,
        "GSestFCClatcnt",
        "A",
        "FCC lattice parameter from the DFT volume (OQMD)",
        "gs_est_fcc_latcnt",
    ),
    FeatureSpec(
        "gs_mag_moment",
        _G,
        "GSmagmom",
        "mu_B/atom",
        "DFT magnetic moment of the ground state (OQMD)",
        "gs_mag_moment",
    ),
    FeatureSpec(
        "gs_volume_per",
        _G,
        "GSvolume_pa",
        "A^3/atom",
        "DFT volume per atom of the ground state (OQMD)",
        "gs_volume_per",
    ),
    FeatureSpec("hhi_p", _G, "HHIp", "-", "Herfindahl-Hirschman index, production", "hhi_p"),
    FeatureSpec("hhi_r", _G, "HHIr", "-", "Herfindahl-Hirschman index, reserves", "hhi_r"),
    FeatureSpec(
        "specific_heat",
        _M,
        "elements.specific_heat_capacity",
        "J/(g K)",
        "specific heat capacity at 25 C (CRC)",
        "specific_heat",
    ),
    FeatureSpec(
        "first_ion_en",
        _M,
        "ionizationenergies.ionization_energy (ion_charge=0)",
        "eV",
        "first ionization energy (NIST)",
        "first_ion_en",
    ),
    FeatureSpec("fusion_enthalpy", _G, "FusionEnthalpy", "kJ/mol", "enthalpy of fusion", "fusion_enthalpy"),
    FeatureSpec(
        "heat_of_formation",
        _M,
        "elements.heat_of_formation",
        "kJ/mol",
        "heat of formation (of the gaseous atom, CRC)",
        "heat_of_formation",
    ),
    FeatureSpec(
        "heat_capacity_mass",
        _G,
        "HeatCapacityMass",
        "J/(g K)",
        "specific heat capacity at STP (CRC)",
        "heat_capacity_mass",
    ),
    FeatureSpec(
        "heat_capacity_molar",
        _G,
        "HeatCapacityMolar",
        "J/(mol K)",
        "molar heat capacity at STP (CRC)",
        "heat_capacity_molar",
    ),
    FeatureSpec(
        "evaporation_heat",
        _M,
        "elements.evaporation_heat",
        "kJ/mol",
        "heat of evaporation",
        "evaporation_heat",
    ),
    FeatureSpec("boiling_point", _P, "Element.boiling_point", "K", "boiling point", "boiling_point"),
    FeatureSpec("bulk_modulus", _P, "Element.bulk_modulus", "GPa", "bulk modulus", "bulk_modulus"),
    FeatureSpec("melting_point", _P, "Element.melting_point", "K", "melting point", "melting_point"),
    FeatureSpec(
        "thermal_conductivity",
        _P,
        "Element.thermal_conductivity",
        "W/(m K)",
        "thermal conductivity",
        "thermal_conductivity",
    ),
    FeatureSpec("sound_velocity", _P, "Element.velocity_of_sound", "m/s", "speed of sound", "sound_velocity"),
    FeatureSpec(
        "polarizability", _G, "Polarizability", "A^3", "static dipole polarizability (CRC)", "Polarizability"
    ),
    FeatureSpec("molar_volume", _P, "Element.molar_volume", "cm^3/mol", "molar volume", "molar_volume"),
    FeatureSpec(
        "num_unfilled",
        _G,
        "NUnfilled",
        "-",
        "unfilled valence orbitals (electrons missing to fill them)",
        "num_unfilled",
    ),
    FeatureSpec("num_valance", _G, "NValence", "-", "valence electrons", "num_valance"),
    FeatureSpec("num_d_unfilled", _G, "NdUnfilled", "-", "unfilled d valence states", "num_d_unfilled"),
    FeatureSpec("num_d_valence", _G, "NdValence", "-", "d valence electrons", "num_d_valence"),
    FeatureSpec("num_f_unfilled", _G, "NfUnfilled", "-", "unfilled f valence states", "num_f_unfilled"),
    FeatureSpec("num_f_valence", _G, "NfValence", "-", "f valence electrons", "num_f_valence"),
    FeatureSpec("num_p_unfilled", _G, "NpUnfilled", "-", "unfilled p valence states", "num_p_unfilled"),
    FeatureSpec("num_p_valence", _G, "NpValence", "-", "p valence electrons", "num_p_valence"),
    FeatureSpec("num_s_unfilled", _G, "NsUnfilled", "-", "unfilled s valence states", "num_s_unfilled"),
    FeatureSpec("num_s_valence", _G, "NsValence", "-", "s valence electrons", "num_s_valence"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
assert len(FEATURES) == 58 and len(set(FEATURE_NAMES)) == 58


def default_magpie_dir() -> Path | None:
    """The Magpie tables of an installed (importable, not imported) matminer, else None."""
    spec = importlib.util.find_spec("matminer")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "utils" / "data_files" / "magpie_elementdata"
    return path if path.is_dir() else None


def _read_magpie(magpie_dir: Path, table: str, max_z: int) -> np.ndarray:
    """One Magpie ``.table`` file: line Z holds element Z's value; ``Missing`` becomes NaN."""
    lines = (magpie_dir / f"{table}.table").read_text().splitlines()
    if len(lines) < max_z:
        raise ValueError(f"Magpie table {table} has {len(lines)} lines, fewer than {max_z}")
    out = np.full(max_z, np.nan)
    for z in range(max_z):
        token = lines[z].strip()
        if token and token.lower() != "missing":
            out[z] = float(token)
    return out


def _mendeleev_columns(max_z: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mendeleev's element table (index Z) and the element symbols/blocks."""
    from mendeleev.fetch import fetch_table

    el = fetch_table("elements")
    el = el[el["atomic_number"] <= max_z].set_index("atomic_number", drop=False).sort_index()
    cols = pd.DataFrame(index=el.index)
    for f in FEATURES:
        if f.source == _M and f.attribute.startswith("elements."):
            cols[f.name] = el[f.attribute.split(".", 1)[1]].astype(float)
    # == mendeleev's Element.atomic_volume. Where mendeleev's density is that of the gas at 295 K
    # (below GAS_DENSITY g/cm^3: H, He, N, O, F, Ne, Cl, Ar, Kr, Xe, Rn) this is a gas molar volume
    # (~2.4e4 cm^3/mol), 1000x any solid's; those are replaced in build_element_table by pymatgen's
    # condensed-phase molar volume so that min-max scaling does not squash all solids onto 0.
    cols["atomic_volume"] = el["atomic_weight"] / el["density"]
    cols["_gas"] = el["density"] < GAS_DENSITY

    ie = fetch_table("ionizationenergies")
    ie = ie[ie["ion_charge"] == 0].drop_duplicates("atomic_number").set_index("atomic_number")
    cols["first_ion_en"] = ie["ionization_energy"].reindex(cols.index).astype(float)
    meta = el[["symbol", "block"]].copy()
    meta["period"] = el["period"].astype(int)
    return cols, meta


def _pymatgen_columns(symbols: list[str]) -> pd.DataFrame:
    from pymatgen.core import Element

    def num(value: object) -> float:
        return float("nan") if value is None else float(value)  # FloatWithUnit -> float in its unit

    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns for every missing property
        for s in symbols:
            e = Element(s)
            rows.append(
                {
                    "atomic_radius_calculated": num(e.atomic_radius_calculated),
                    "electron_negativity": num(e.X),
                    "bulk_modulus": num(e.bulk_modulus),
                    "sound_velocity": num(e.velocity_of_sound),
                    "molar_volume": num(e.molar_volume),
                    "electron_affinity": num(e.electron_affinity),
                    "melting_point": num(e.melting_point),
                    "boiling_point": num(e.boiling_point),
                    "thermal_conductivity": num(e.thermal_conductivity),
                }
            )
    return pd.DataFrame(rows)


def impute_missing(raw: pd.DataFrame, meta: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Fill each missing value by the feature's median over the elements of the same period and block,
    else of the same block, else over all elements. Returns the filled table and, per feature, the
    symbols whose value was filled."""
    filled = raw.copy()
    log: dict[str, list[str]] = {}
    for name in raw.columns:
        col = raw[name]
        missing = col.index[col.isna()]
        if len(missing) == 0:
            continue
        if col.notna().sum() == 0:
            raise ValueError(f"feature {name} has no values at all")
        for z in missing:
            same_pb = (meta["period"] == meta.at[z, "period"]) & (meta["block"] == meta.at[z, "block"])
            same_b = meta["block"] == meta.at[z, "block"]
            for mask in (same_pb, same_b, pd.Series(True, index=meta.index)):
                vals = col[mask].dropna()
                if len(vals):
                    filled.at[z, name] = float(vals.median())
                    break
        log[name] = [meta.at[z, "symbol"] for z in missing]
    return filled, log


def build_element_table(
    magpie_dir: Path | str | None = None, max_z: int = MAX_Z
) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """The element table: index ``symbol`` (H..Pu), columns :data:`FEATURE_NAMES` in the units of
    :data:`FEATURES`, gaps filled by :func:`impute_missing`; plus the per-feature list of filled symbols."""
    mdir = Path(magpie_dir) if magpie_dir is not None else default_magpie_dir()
    if mdir is None or not mdir.is_dir():
        raise FileNotFoundError(
            "Magpie element tables not found: install matminer apart (pip install --no-deps --target DIR "
            "matminer) and pass --magpie-dir DIR/matminer/utils/data_files/magpie_elementdata"
        )
    cols, meta = _mendeleev_columns(max_z)
    symbols = meta["symbol"].tolist()
    pmg = _pymatgen_columns(symbols)
    pmg.index = cols.index
    for name in pmg.columns:
        cols[name] = pmg[name]
    cols.loc[cols["_gas"], "atomic_volume"] = cols.loc[cols["_gas"], "molar_volume"]
    for f in FEATURES:
        if f.source == _G:
            cols[f.name] = _read_magpie(mdir, f.attribute, max_z)
    raw = cols[list(FEATURE_NAMES)].copy()
    # Known values rather than imputed ones: the monatomic noble gases are their own standard state,
    # so the heat of formation of the gaseous atom is 0 (mendeleev leaves it empty).
    noble = meta["symbol"].isin(["He", "Ne", "Ar", "Kr", "Xe", "Rn"])
    raw.loc[noble & raw["heat_of_formation"].isna(), "heat_of_formation"] = 0.0
    filled, log = impute_missing(raw, meta)
    filled.index = pd.Index(symbols, name="symbol")
    filled.insert(0, "Z", cols.index.astype(int))
    return filled, log


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("mendeleev", "pymatgen", "matminer"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def write_element_table(
    out: Path | str = DEFAULT_OUT, magpie_dir: Path | str | None = None, matminer_version: str | None = None
) -> Path:
    """Build the table and write it as CSV with a ``#`` header naming every feature's source,
    package version, attribute and unit, and every imputed cell."""
    table, log = build_element_table(magpie_dir)
    versions = _versions()
    if matminer_version:
        versions["matminer"] = matminer_version
    lines = [
        "# Element features for the compositional kernel-mean descriptor (58 features, elements H..Pu).",
        "# Generated by: python -m sim2real_scaling.data.descriptors.element_table (do not edit by hand).",
        f"# Packages: mendeleev {versions['mendeleev']}, pymatgen {versions['pymatgen']}, "
        f"matminer {versions['matminer']} (Magpie tables, Ward et al. 2016, read as data files).",
        "# Mirrors XenonPy's elements_completed; values are raw (unscaled), in the units below.",
        "# Missing values were filled by the median of the feature over the same period and block,",
        "# else the same block, else all elements; the filled cells are listed after the features.",
        "# feature | source | attribute | unit | XenonPy column | description",
    ]
    for f in FEATURES:
        lines.append(
            f"# {f.name} | {f.source} | {f.attribute} | {f.unit} | {f.xenonpy_name} | {f.description}"
        )
    lines.append(
        f"# imputed cells: {sum(len(v) for v in log.values())} of {table.shape[0] * len(FEATURE_NAMES)}"
    )
    for name in FEATURE_NAMES:
        if name in log:
            lines.append(f"# imputed {name}: {' '.join(log[name])}")
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        fh.write("\n".join(lines) + "\n")
        table.to_csv(fh, float_format="%.10g", lineterminator="\n")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="CSV to write (default: the packaged table)")
    ap.add_argument("--magpie-dir", default=None, help="matminer's magpie_elementdata folder")
    ap.add_argument(
        "--matminer-version", default=None, help="version of that matminer, if not installed here"
    )
    args = ap.parse_args(argv)
    path = write_element_table(args.out, args.magpie_dir, args.matminer_version)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
