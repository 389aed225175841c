"""The case studies' public data: each raw file downloaded from its original repository, pinned to a commit and
checked against its sha256, and the tidy tables the study configs read derived from it with this package's
code (the rules ``fetch_*`` of workflow/rules/fetch.smk).

Sources, commits and checksums are those of the data's provenance notes (PROVENANCE.md of each data folder):

- chi (polymer-solvent Flory-Huggins chi, multitask study): yoshida-lab/MTL_ChiParameter ``sample_data/``
  (Aoki et al., Macromolecules 2023) -> ``chi/chi_experimental.csv``, ``chi/chi_cosmors.csv``;
- starrydata (thermal and electrical conductivity at 300 K, Real2Real study): starrydata/starrydata_datasets
  2019-07-11 interpolated curves -> ``starrydata/{thermal,electrical}_conductivity_300K.csv``;
- polymer (RadonPy MD, the simulated side of the polymer study): RadonPy/RadonPy ``data/PI1070.csv``
  (Hayashi et al., npj Comput. Mater. 2022) -> ``polymer/sim_radonpy_pi1070_<property>.csv``.

The polymer study's experimental tables (``polymer/exp_merged_*.csv``) merge a scrape of the CROW database whose
raw copy is not public in a pinned form here (and whose curation has hand-made fixes); they cannot be fetched,
only read from a local data folder (config ``data.dir``).

Every table is written atomically (no half-written file), and a download whose checksum differs is refused
with a message naming the file, its URL and the expected sha256, and not kept.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sim2real_scaling.data.tables import DataError, read_table
from sim2real_scaling.io import write_csv

log = logging.getLogger(__name__)

GITHUB_RAW = "https://raw.githubusercontent.com"


class FetchError(DataError):
    """A download failed or did not match its checksum; the message names the file and what was expected."""


@dataclass(frozen=True)
class RawFile:
    """One public raw file, pinned: ``<dataset>/raw/<name>`` in the data folder."""

    dataset: str
    name: str
    repository: str  # owner/name on GitHub
    commit: str
    path: str  # inside the repository
    sha256: str

    @property
    def relative(self) -> str:
        return f"{self.dataset}/raw/{self.name}"

    def url(self, mirror: str | None = None) -> str:
        """Where it is downloaded from: GitHub's raw file server, or a mirror with the same layout."""
        return f"{(mirror or GITHUB_RAW).rstrip('/')}/{self.repository}/{self.commit}/{self.path}"


RAW_FILES: dict[str, RawFile] = {raw.relative: raw for raw in (
    RawFile("chi", "data_Chi.csv", "yoshida-lab/MTL_ChiParameter", "7d9a4d872af19e0025898a09118fb1847ae4171c",
            "sample_data/data_Chi.csv", "cc8fbf4a100d3a5b2379c5bff5d495a68f61ffb4d04ce41d1f66650b1c80573d"),
    RawFile("chi", "data_COSMO.csv", "yoshida-lab/MTL_ChiParameter", "7d9a4d872af19e0025898a09118fb1847ae4171c",
            "sample_data/data_COSMO.csv", "6c303495159a3a15d342ef2b775b1e0312574a2a5dfc6ed1de55cb3cca629528"),
    RawFile("starrydata", "20190711_preprocessing_interpolated_data.csv", "starrydata/starrydata_datasets",
            "b126c596c2ded204adeee2d217a194c098a7a96b",
            "datasets/20190711/20190711_preprocessing_interpolated_data.csv",
            "6a4bb037bf9111edd4bbcf1223eb244c5e374a2c45a22b7282b52285a41ba4ab"),
    RawFile("polymer", "radonpy_PI1070.csv", "RadonPy/RadonPy", "648c9a492808339c9bb7ad2c1137e5a7b07614ca",
            "data/PI1070.csv", "4ee41d526db3d03eb5b83010672b4e63a4d51a114871a2187ca7fd57d30556a4"),
)}

# The tidy tables each dataset's derivation writes (relative to the data folder).
FETCHABLE: dict[str, list[str]] = {
    "chi": ["chi/chi_experimental.csv", "chi/chi_cosmors.csv"],
    "starrydata": ["starrydata/thermal_conductivity_300K.csv", "starrydata/electrical_conductivity_300K.csv"],
    "radonpy": [f"polymer/sim_radonpy_pi1070_{p}.csv" for p in ("density", "refractive_index", "cp",
                                                                "thermal_conductivity")],
}


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(raw: RawFile, target: str | Path, mirror: str | None = None, timeout: float = 120) -> None:
    """Download ``raw`` to ``target`` if its sha256 is the pinned one; otherwise raise :class:`FetchError` and
    leave nothing at ``target`` (the bytes go to a temporary file beside it first)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    url = raw.url(mirror)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as sink, urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
                for block in iter(lambda: response.read(1 << 20), b""):
                    digest.update(block)
                    sink.write(block)
        except (urllib.error.URLError, OSError) as exc:
            raise FetchError(f"{raw.relative}: download from {url} failed ({exc}); nothing was written. Without a "
                             "network, set data.dir to a folder that holds the tidy tables") from None
        if digest.hexdigest() != raw.sha256:
            raise FetchError(f"{raw.relative}: the download from {url} has sha256 {digest.hexdigest()}, expected "
                             f"{raw.sha256} (pinned: {raw.repository} at commit {raw.commit}, {raw.path}); the file "
                             "was not kept")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    log.info("%s: %s (sha256 %s)", raw.relative, url, raw.sha256)


def raw_file_of(path: str | Path) -> RawFile:
    """The pinned raw file a path holds (matched by its ``<dataset>/raw/<name>`` end)."""
    for relative, raw in RAW_FILES.items():
        if Path(path).as_posix().endswith("/" + relative) or Path(path).as_posix() == relative:
            return raw
    raise FetchError(f"{path}: not one of the pinned raw files ({', '.join(RAW_FILES)})")


def check_raw(path: str | Path) -> None:
    """A raw file already on disk must still be the pinned one."""
    raw = raw_file_of(path)
    actual = sha256_of(path)
    if actual != raw.sha256:
        raise FetchError(f"{raw.relative}: {path} has sha256 {actual}, expected {raw.sha256}; delete it to download "
                         "it again")


NOT_FETCHABLE = (
    "{path}: the polymer study's experimental tables cannot be fetched (they merge a scrape of the CROW database, "
    "with hand-made fixes, that has no pinned public copy; see the data's PROVENANCE.md). Set data.dir to a folder "
    "that holds them, e.g. --config data='{{dir: ../shared/data}}'"
)


def _read(path: str | Path, required: list[str]) -> pd.DataFrame:
    return read_table(path, what=str(path), required=required)


def _numbers(column: pd.Series) -> pd.Series:
    """Text cells as floats, exactly as Python reads them (blank: NaN)."""
    return column.map(lambda s: float(s) if str(s).strip() else math.nan)


# ---- chi (Aoki et al. 2023) ---------------------------------------------------------------------------------
def derive_chi(data_chi: str | Path, data_cosmo: str | Path, outputs: Mapping[str, str | Path]) -> None:
    """``chi_experimental.csv`` and ``chi_cosmors.csv`` from the repository's data_Chi.csv and data_COSMO.csv.

    Each ``ps_pair`` (cyclic-oligomer polymer SMILES ``_`` solvent SMILES) is split; the polymer's repeat unit
    (``*`` end points) comes from data_Chi.csv's ``ps_pair_nonCyclic`` (one-to-one with the cyclic form; the
    COSMO-RS file's own column is mostly empty), as does its class (data_COSMO.csv's class column is
    inconsistent); temperatures are in degrees Celsius; pairs, polymers and solvents get integer ids shared by
    both files (sorted by SMILES over both). No row is dropped or averaged.
    """
    exp = _read(data_chi, ["ps_pair", "ps_pair_nonCyclic", "temp", "chi", "polymer_class"])
    sim = _read(data_cosmo, ["ps_pair", "temp", "chi"])
    for frame in (exp, sim):
        frame["record_id"] = frame[frame.columns[0]].astype(int)
        parts = frame["ps_pair"].str.split("_", n=1, expand=True)
        frame["polymer_smiles_cyclic_oligomer"], frame["solvent_smiles"] = parts[0], parts[1]
        frame["temperature_C"] = _numbers(frame["temp"])
        frame["chi"] = _numbers(frame["chi"])
    exp["polymer_smiles"] = exp["ps_pair_nonCyclic"].str.split("_", n=1).str[0]
    repeat_unit = exp.groupby("polymer_smiles_cyclic_oligomer")["polymer_smiles"].agg(set)
    if (repeat_unit.map(len) > 1).any():
        raise DataError(f"{data_chi}: a cyclic polymer SMILES maps to several repeat units")
    repeat_unit = repeat_unit.map(lambda s: next(iter(s)))
    missing = sorted(set(sim["polymer_smiles_cyclic_oligomer"]) - set(repeat_unit.index))
    if missing:
        raise DataError(f"{data_cosmo}: {len(missing)} polymers have no repeat unit in {data_chi}, e.g. {missing[0]}")
    sim["polymer_smiles"] = sim["polymer_smiles_cyclic_oligomer"].map(repeat_unit)
    polymer_class = exp.groupby("polymer_smiles")["polymer_class"].first()
    sim["polymer_class"] = sim["polymer_smiles"].map(polymer_class)

    both = pd.concat([exp, sim])
    pairs = sorted(set(zip(both["polymer_smiles"], both["solvent_smiles"], strict=True)))
    pair_id = {pair: i for i, pair in enumerate(pairs)}
    polymer_id = {s: i for i, s in enumerate(sorted(set(both["polymer_smiles"])))}
    solvent_id = {s: i for i, s in enumerate(sorted(set(both["solvent_smiles"])))}
    for frame in (exp, sim):
        frame["pair_id"] = [pair_id[p] for p in zip(frame["polymer_smiles"], frame["solvent_smiles"], strict=True)]
        frame["polymer_id"] = frame["polymer_smiles"].map(polymer_id)
        frame["solvent_id"] = frame["solvent_smiles"].map(solvent_id)
        frame["temperature_K"] = (frame["temperature_C"] + 273.15).round(10)
    measured = set(zip(exp["pair_id"], exp["temperature_C"], strict=True))
    sim["exp_record_at_same_pair_and_T"] = [int(k in measured) for k in zip(sim["pair_id"], sim["temperature_C"],
                                                                             strict=True)]
    columns = ["record_id", "pair_id", "polymer_id", "solvent_id", "polymer_smiles", "solvent_smiles",
               "polymer_smiles_cyclic_oligomer", "temperature_C", "temperature_K", "chi", "polymer_class"]
    write_csv(exp[columns].reset_index(drop=True), outputs["experimental"])
    write_csv(sim[columns + ["exp_record_at_same_pair_and_T"]].reset_index(drop=True), outputs["cosmors"])
    log.info("chi: %d experimental and %d COSMO-RS rows, %d pairs", len(exp), len(sim), len(pairs))


# ---- Starrydata at 300 K ------------------------------------------------------------------------------------
_ELEMENTS = frozenset(
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr Rb Sr Y Zr "
    "Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir "
    "Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm Md No Lr".split())
# a token: an element symbol, an amount (directly after its element or group: no space between), a bracket
_TOKEN = re.compile(r"(\s*)(?:([A-Z][a-z]?)|(\d+\.?\d*|\.\d+)|([(\[])|([)\]]))")
PROPERTIES_300K = {"thermal": ("Thermal conductivity", "W m^-1 K^-1"),
                   "electrical": ("Electrical conductivity", "S m^-1")}


def parse_formula(text: str) -> list[tuple[str, float]] | None:
    """Elements and amounts of a composition string, groups ``()``/``[]`` with multipliers expanded, repeated
    elements summed in order of first appearance, zero amounts dropped; None where any other character (or an
    unknown element symbol) makes the string unreadable."""
    tokens, pos, text = [], 0, text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            return None
        space, *token = match.groups()
        if space and token[1]:  # "Bi 2": an amount apart from its element
            return None
        tokens.append(tuple(token))
        pos = match.end()

    def group(i: int, closing: str | None) -> tuple[list[tuple[str, float]], int]:
        items: list[tuple[str, float]] = []
        while i < len(tokens):
            element, number, opening, close = tokens[i]
            if close:
                if closing is None or close != closing:
                    raise ValueError
                return items, i + 1
            if element:
                if element not in _ELEMENTS:
                    raise ValueError
                amount, i = 1.0, i + 1
                if i < len(tokens) and tokens[i][1]:
                    amount, i = float(tokens[i][1]), i + 1
                items.append((element, amount))
            elif opening:
                inner, i = group(i + 1, ")" if opening == "(" else "]")
                factor = 1.0
                if i < len(tokens) and tokens[i][1]:
                    factor, i = float(tokens[i][1]), i + 1
                items += [(e, a * factor) for e, a in inner]
            else:  # a number where an element or a group should be
                raise ValueError
        if closing is not None:
            raise ValueError
        return items, i

    try:
        items, _ = group(0, None)
    except ValueError:
        return None
    merged: dict[str, float] = {}
    for element, amount in items:
        merged[element] = merged.get(element, 0.0) + amount
    merged = {e: a for e, a in merged.items() if a != 0}
    return list(merged.items()) or None


def _amount(value: float) -> str:
    return format(value, ".6g")


def formula_columns(composition: str) -> dict[str, object]:
    """formula_parsed, formula_normalized (elements sorted, atomic fractions to 4 decimals), n_elements, parse_ok."""
    parsed = parse_formula(composition)
    if parsed is None:
        return {"formula_parsed": "", "formula_normalized": "", "n_elements": "", "parse_ok": 0}
    total = sum(a for _, a in parsed)
    return {"formula_parsed": "".join(e + ("" if a == 1 else _amount(a)) for e, a in parsed),
            "formula_normalized": "".join(f"{e}{format(round(a / total, 4), 'g')}" for e, a in sorted(parsed)),
            "n_elements": len(parsed), "parse_ok": 1}


def value_at_300k(grid: Mapping[float, float]) -> tuple[float, str, str] | None:
    """(value, value_origin, grid temperatures used) at 300 K from a sample's curve on the 50 K grid, by the
    documented rules; None where none applies."""
    temps = sorted(grid)
    if 300 in grid:
        return grid[300], "grid_300K", "300"
    if temps[0] > 300 and temps[0] == 350 and 400 in grid:
        return 10 ** (2 * math.log10(grid[350]) - math.log10(grid[400])), "extrap_down_log_linear", "350;400"
    if temps[-1] == 250 and 200 in grid:
        return 10 ** (2 * math.log10(grid[250]) - math.log10(grid[200])), "extrap_up_log_linear", "200;250"
    return None


def derive_starrydata(raw: str | Path, outputs: Mapping[str, str | Path]) -> None:
    """Thermal and electrical conductivity at 300 K per sample, from the 2019-07-11 interpolated curves: the
    curve's own 300 K point, else a log-linear extrapolation from 350/400 K (curves starting at 350 K) or from
    250/200 K (curves ending at 250 K); grid temperatures that a sample repeats are discarded first. Values with
    6 significant digits; every other sample is left out."""
    frame = _read(raw, ["sampleid", "composition", "Temperature", *(c for c, _ in PROPERTIES_300K.values())])
    frame["sample_id"] = frame["sampleid"].astype(int)
    frame["T"] = _numbers(frame["Temperature"])
    repeated = frame.duplicated(["sample_id", "T"], keep=False)
    frame = frame[~repeated]
    for kind, (column, unit) in PROPERTIES_300K.items():
        rows = []
        for sample, curve in frame.groupby("sample_id", sort=True):
            grid = dict(zip(curve["T"], _numbers(curve[column]), strict=True))
            found = value_at_300k(grid)
            if found is None:
                continue
            value, origin, used = found
            composition = curve["composition"].iloc[0]
            rows.append({"sample_id": sample, "composition": composition, **formula_columns(composition),
                         "temperature_K": 300, "value": float(format(value, ".6g")), "unit": unit,
                         "value_origin": origin, "grid_T_used_K": used,
                         "grid_Tmin_K": int(min(grid)), "grid_Tmax_K": int(max(grid))})
        table = pd.DataFrame(rows)
        write_csv(table, outputs[kind])
        log.info("starrydata %s conductivity at 300 K: %d samples (%s)", kind, len(table),
                 ", ".join(f"{k} {v}" for k, v in table["value_origin"].value_counts().items()))


# ---- RadonPy PI1070 (the polymer study's simulations) ----------------------------------------------------
# RadonPy's PoLyInfo class codes (radonpy/core/poly.py, polyinfo_classifier) of the classes PI1070 holds
POLYINFO_CLASSES = {1: "PHYC", 2: "PSTR", 3: "PVNL", 4: "PACR", 5: "PHAL", 6: "PDIE", 7: "POXI", 8: "PSUL",
                    9: "PEST", 10: "PAMD", 11: "PURT", 12: "PURA", 13: "PIMD", 14: "PANH", 15: "PCBN", 16: "PIMN",
                    18: "PPHS", 19: "PKTN", 20: "PSFO", 21: "PPNL"}
RADONPY_PROPERTIES = {"density": ("density", "g/cm3"), "refractive_index": ("refractive_index", "1"),
                      "cp": ("Cp", "J/(kg K)"), "thermal_conductivity": ("thermal_conductivity", "W/(m K)")}


def _digits(values: pd.Series, digits: int) -> pd.Series:
    """Values rounded to ``digits`` significant digits."""
    return values.map(lambda v: float(format(v, f".{digits}g")) if v == v else v)


def derive_radonpy(raw: str | Path, outputs: Mapping[str, str | Path]) -> None:
    """One table per property from PI1070.csv (MD at 300 K, 1 atm): the repeat unit (``[*]`` written ``*``), the
    mean over runs (``value``, 8 significant digits) with its SD, min and max (6 digits) and run count, RadonPy's
    PoLyInfo class code; rows without a value are left out."""
    columns = [c for source, _ in RADONPY_PROPERTIES.values()
               for c in (source, f"{source}_std", f"{source}_count", f"{source}_min", f"{source}_max")]
    frame = _read(raw, ["monomer_ID", "smiles", "temp", "tacticity", "polymer_class", *columns])
    class_id = frame["polymer_class"].astype(int)
    unknown = sorted(set(class_id) - set(POLYINFO_CLASSES))
    if unknown:
        raise DataError(f"{raw}: polymer_class codes {unknown} are not RadonPy's PoLyInfo classes")
    for name, (source, unit) in RADONPY_PROPERTIES.items():
        value = _numbers(frame[source])
        keep = value.notna()
        table = pd.DataFrame({
            "smiles": frame["smiles"].str.replace("[*]", "*", regex=False),
            "value": _digits(value, 8), "unit": unit,
            "std": _digits(_numbers(frame[f"{source}_std"]), 6),
            "n_runs": _numbers(frame[f"{source}_count"]).astype("Int64"),
            "min": _digits(_numbers(frame[f"{source}_min"]), 6), "max": _digits(_numbers(frame[f"{source}_max"]), 6),
            "monomer_ID": frame["monomer_ID"], "polymer_class_id": class_id,
            "polymer_class": class_id.map(POLYINFO_CLASSES), "tacticity": frame["tacticity"],
            "temp_K": _numbers(frame["temp"]).astype(int),
        })[keep.to_numpy()]
        write_csv(table.reset_index(drop=True), outputs[name])
        log.info("RadonPy PI1070 %s: %d polymers", name, len(table))


__all__ = ["FETCHABLE", "FetchError", "NOT_FETCHABLE", "RADONPY_PROPERTIES", "RAW_FILES", "RawFile", "check_raw",
           "derive_chi", "derive_radonpy", "derive_starrydata", "download", "formula_columns", "parse_formula",
           "raw_file_of", "sha256_of", "value_at_300k"]
