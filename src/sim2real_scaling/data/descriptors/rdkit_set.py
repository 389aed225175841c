"""RDKit 2-D descriptors of molecules and polymer repeat units.

Polymer repeat units carry ``*`` attachment points; they are capped with hydrogen before the
descriptors are computed (the usual monomer-level convention), so ``*CC*`` is described as ethane.
``rdkit`` = every descriptor in ``rdkit.Chem.Descriptors.descList`` except ``Ipc`` (whose values span
hundreds of orders of magnitude); ``rdkit_basic`` = a small, interpretable subset.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import DescriptorError

BASIC = (
    "MolWt", "HeavyAtomCount", "MolLogP", "MolMR", "TPSA", "LabuteASA", "NumHDonors", "NumHAcceptors",
    "NumRotatableBonds", "RingCount", "NumAromaticRings", "FractionCSP3", "NHOHCount", "NOCount",
    "NumHeteroatoms",
)
EXCLUDED = ("Ipc",)


def _capped_mol(smiles: str, position: int):  # noqa: ANN202
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise DescriptorError(f"invalid SMILES at position {position}: {smiles!r}")
    if any(a.GetAtomicNum() == 0 for a in mol.GetAtoms()):
        rw = Chem.RWMol(mol)
        for atom in rw.GetAtoms():
            if atom.GetAtomicNum() == 0:
                atom.SetAtomicNum(1)
                atom.SetIsotope(0)
        mol = Chem.RemoveHs(rw.GetMol(), sanitize=False)
        try:
            Chem.SanitizeMol(mol)
        except Exception as exc:  # RDKit raises several exception types
            raise DescriptorError(f"cannot cap SMILES at position {position}: {smiles!r} ({exc})") from exc
    return mol


def descriptor_names(basic: bool = False) -> list[str]:
    from rdkit.Chem import Descriptors

    if basic:
        return list(BASIC)
    return [name for name, _ in Descriptors.descList if name not in EXCLUDED]


def rdkit_descriptors(smiles: Sequence[str], *, basic: bool = False) -> tuple[np.ndarray, list[str]]:
    """RDKit descriptors; values float64 ``(len(smiles), d)``; non-finite results become NaN."""
    from rdkit.Chem import Descriptors

    names = descriptor_names(basic)
    functions = dict(Descriptors.descList)
    values = np.full((len(smiles), len(names)), np.nan)
    for i, s in enumerate(smiles):
        mol = _capped_mol(s, i)
        for j, name in enumerate(names):
            try:
                values[i, j] = float(functions[name](mol))
            except (ValueError, ZeroDivisionError, RuntimeError, OverflowError):
                values[i, j] = np.nan
    values[~np.isfinite(values)] = np.nan
    return values, names


def rdkit_basic_descriptors(smiles: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    return rdkit_descriptors(smiles, basic=True)
