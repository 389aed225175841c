"""The force-field kernel-mean descriptor of a polymer repeat unit or a small molecule (190 dims).

This is RadonPy's ``radonpy.ff.descriptor.FF_descriptor(GAFF2_mod(), polar=True).ff_kernel_mean``
as computed by its ``ffkm_mp`` driver with ``cyclic=10`` and Gasteiger charges (Hayashi et al.,
npj Comput. Mater. 8, 222 (2022); used as the 190-dim polymer descriptor by Minami et al., npj
Comput. Mater. 11, 146 (2025)), re-implemented here without RadonPy. RadonPy (BSD-3-Clause) is not
a dependency: its PyPI release ``radonpy-pypi`` 0.2.11 pulls mdtraj/matplotlib/psutil, has no
solvent path (its driver cyclizes every SMILES), spends 0.1-1 s per polymer in O(n^2) angle and
dihedral bookkeeping, and with the RDKit used here hangs (hours in ``Chem.Kekulize``, minutes in
aromaticity perception) or raises MemoryError on cyclic oligomers whose backbone runs through
rings (naphthalene polyesters, polyimides with alicyclic or bicyclic units, Kapton), because it
perceives the rings of the 10-unit macrocycle with RDKit's (symmetrized) SSSR. The typing rules
below are a port of ``radonpy-pypi`` 0.2.11 (``radonpy/ff/gaff.py`` 0.2.9, ``gaff2_mod.py`` 0.2.0,
``core/poly.py`` 0.2.9: ``make_linearpolymer`` / ``make_cyclicpolymer``); the parameters are
RadonPy's ``ff_dat/gaff2_mod.json`` (subset in ``sim2real_scaling/data/gaff2_mod_params.json``,
origin noted there).

Definition
----------
1. Structure. A repeat unit with two ``*`` (e.g. ``*CC(*)c1ccccc1``) is turned into a cyclic
   oligomer of ``cyclic`` (10) units joined head to tail, the ring closed between the two atoms that
   carried the ``*`` (RadonPy's ``make_cyclicpolymer``), with explicit hydrogens; a SMILES with no
   ``*`` (a solvent) is used as it is, with explicit hydrogens (RadonPy >= 0.3 behaviour). The ring
   removes end groups: every unit of the oligomer is in the same environment, so the descriptor
   describes the infinite chain. Atom typing uses the MDL aromaticity model after kekulization.
2. Force field. GAFF2_mod atom types (GAFF2 plus ``c3f``, sp3 carbon bonded to F), bond, angle and
   dihedral types with GAFF's alternate-type fallbacks and empirical angle parameters; atomic
   charges are RDKit Gasteiger charges (``charge="gasteiger"``; ``"zero"`` gives all zeros). 3-D
   coordinates are never needed.
3. Samples. For every atom: mass (amu; RDKit's ``GetMass``, so an isotope label such as ``[2H]``
   counts), charge q (e), LJ epsilon (kcal/mol), LJ sigma (Angstrom).
   For every bond: k (kcal/mol/A^2), r0 (A) and polarity |q_i - q_j| (e). For every angle: k
   (kcal/mol/rad^2), theta0 (deg). For every proper dihedral: the largest Fourier amplitude k
   (kcal/mol) of its type. Hydrogens are included.
4. Scaling. Each parameter is min-max scaled to [0, 1] with fixed ranges: masses over the ten
   elements H, C, N, O, F, P, S, Cl, Br, I; charge over [-1, 1]; polarity over [0, 2]; epsilon and
   sigma over all GAFF2_mod particle types except hw, n4, nx, ny, nz, n+; bond k and r0 over the
   bond types with k >= 20, angle k and theta0 over the angle types with k >= 20; dihedral k over
   all dihedral types (per type its largest amplitude). Values outside the range are not clipped.
5. Kernel mean. For a parameter with scaled samples x_1..x_m (all atoms, bonds, angles or dihedrals
   of the molecule, equal weights) and centres mu_k::

       phi_k = (1/m) sum_i exp(-(x_i - mu_k)^2 / (2 s^2))

   Mass: the 10 centres are the scaled masses of H, C, N, O, F, P, S, Cl, Br, I with s = 0.05
   (columns ``mass_H`` .. ``mass_I``). The other nine parameters (charge, epsilon, sigma, k_bond,
   r0, polar, k_angle, theta0, k_dih) use ``nk`` (20) equally spaced centres
   mu_k = (2k + 1) / (2 nk), k = 0..nk-1 (the midpoints of nk equal bins of [0, 1]) and the width
   s = ``kernel_width`` (columns ``charge_0`` .. ``k_dih_19``). Total 10 + 9 nk = 190 columns,
   in RadonPy's order and with RadonPy's names; each block is a mixture of Gaussian bumps with
   weights summing to 1, so values lie in [0, 1] per column.

Kernel width. ``kernel_width=None`` means ``1 / (nk * sqrt(2))`` (0.0354 for nk = 20), the default
of RadonPy >= 0.3 (``radonpy/ff/descriptor.py`` 0.3.0b3 on GitHub), the version whose default
configuration (``polar=True``) is the 190-dim descriptor of the paper; ``radonpy-pypi`` 0.2.x
defaults to ``polar=False`` (170 dims) and ``s = 1 / (2 nk)`` (0.025). With s = h / sqrt(2) for the
centre spacing h = 1/nk every scaled value is seen by its nearest centre with weight >=
exp(-1/4) = 0.78, the same rule as KmdPlus' ``sigma="auto"`` used for the compositional descriptor.
Pass ``kernel_width=0.025`` to reproduce ``radonpy-pypi`` 0.2.x called with ``polar=True``.

Properties. Deterministic (no randomness, no 3-D embedding); invariant to how the repeat unit is
written (atom order, starting atom, direction: ``*OCC*`` == ``*CCO*``, up to rounding); intensive
(``*CC*`` == ``*CCCC*``: doubling the repeat unit doubles every count, the normalized
distributions are unchanged). Ring-closure effects make it depend on ``cyclic`` only for very short
backbones (a macrocycle of <= 14 atoms changes the typing).
It does not see tacticity or cis/trans isomerism (stereo flags do not enter the GAFF2 typing).
A molecule without a proper dihedral (water, CCl4, CHCl3) has an all-zero ``k_dih`` block.
Elements outside H, C, N, O, F, P, S, Cl, Br, I (Si, B, metals...) and charged/odd valences that
GAFF2_mod cannot type raise :class:`DescriptorError`.

Differences from ``radonpy-pypi`` 0.2.11 run as ``FF_descriptor(GAFF2_mod(), polar=True, s=...)``
(identical to 1e-15 elsewhere: the tests compare with values it computed):

- Rings of the cyclic oligomer: RadonPy lets RDKit find them (symmetrized SSSR of the closed ring);
  here they are the small rings of the open oligomer plus the shortest macrocycle, the latter only
  if it has <= 24 atoms or shares no bond with a small ring (see :func:`_cyclic_oligomer`). Same
  typing, without the hangs, except where RDKit flags a large macrocycle fused to backbone rings
  as Hueckel-aromatic (a fully conjugated backbone whose macrocycle holds 4n + 2 pi electrons):
  RadonPy's procedure then types the whole backbone aromatic (benzoxazole C=N as ca/nb), an
  artefact of the finite ring; here the backbone keeps the typing of the chain (cc/nd...). This
  concerns 3 of the 1,116 repeat units of the shared PI1070 + chi data (one polybenzoxazole, two
  polyquinoxalines; largest column difference 0.10), on which RadonPy does not finish here.
- SMILES without ``*`` are described as molecules (RadonPy >= 0.3 does the same; 0.2.11 fails).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np

from . import DescriptorError

ELEMENTS = ("H", "C", "N", "O", "F", "P", "S", "Cl", "Br", "I")
ELEMENT_MASSES = (1.008, 12.011, 14.007, 15.999, 18.998, 30.974, 32.067, 35.453, 79.904, 126.904)
KERNEL_PARAMETERS = ("charge", "epsilon", "sigma", "k_bond", "r0", "polar", "k_angle", "theta0", "k_dih")
MASS_KERNEL_WIDTH = 0.05
CHARGE_RANGE = (-1.0, 1.0)
POLAR_RANGE = (0.0, 2.0)
CHARGE_MODELS = ("gasteiger", "zero")
MAX_RING_SIZE = 14  # GAFF: an atom in a ring of <= 14 atoms is a ring atom (cc/nc/pc vs ce/ne/pe)
_IGNORED_LJ_TYPES = frozenset({"hw", "n4", "nx", "ny", "nz", "n+"})
_MIN_SCALE_FORCE_CONSTANT = 20.0

# GAFF alternate types (tried when a bonded term has no parameters), GAFF2 and GAFF2_mod additions.
_ALT_PTYPE = {
    "cc": "c2", "cd": "c2", "ce": "c2", "cf": "c2", "cg": "c1", "ch": "c1",
    "cp": "ca", "cq": "ca", "cu": "c2", "cv": "c2", "cx": "c3", "cy": "c3",
    "h1": "hc", "h2": "hc", "h3": "hc", "h4": "ha", "h5": "ha",
    "nb": "nc", "nc": "n2", "nd": "n2", "ne": "n2", "nf": "n2",
    "pb": "pc", "pc": "p2", "pd": "p2", "pe": "p2", "pf": "p2",
    "p4": "px", "px": "p4", "p5": "py", "py": "p5",
    "s4": "sx", "sx": "s4", "s6": "sy", "sy": "s6",
    "hx": "hc", "cs": "c",
    "ns": "n", "nt": "n", "nu": "nh", "nv": "nh", "n7": "n3", "n8": "n3", "n9": "n3",
    "nx": "n4", "ny": "n4", "nz": "n4", "n+": "n4",
    "c3f": "c3",
}
_CONJ_CHAIN = frozenset({"c", "c1", "c2", "ca", "cc", "cd", "ce", "cf", "cg", "ch", "cp", "cq", "cu", "cv",
                         "n1", "n2", "na", "nb", "nc", "nd", "ne", "nf",
                         "p2", "pb", "pc", "pd", "pe", "pf", "px", "py", "sx", "sy"})
_CONJ_RING = _CONJ_CHAIN | {"os", "ss"}
_REPLACE = {"ce": "cf", "cg": "ch", "ne": "nf", "pe": "pf", "cc": "cd", "nc": "nd", "pc": "pd"}
_TARGET_CHAIN = frozenset({"ce", "cg", "ne", "pe"})
_TARGET_RING = frozenset({"cc", "nc", "pc"})
_ELECTRON_WITHDRAWING = frozenset({"N", "O", "F", "Cl", "Br", "I"})
_EMPIRICAL_C = {"H": 0.000, "C": 1.339, "N": 1.300, "O": 1.249, "F": 0.000, "Cl": 0.000, "Br": 0.000,
                "I": 0.000, "P": 0.906, "S": 1.448}
_EMPIRICAL_Z = {"H": 0.784, "C": 1.183, "N": 1.212, "O": 1.219, "F": 1.166, "Cl": 1.272, "Br": 1.378,
                "I": 1.398, "P": 1.620, "S": 1.280}


def default_kernel_width(nk: int) -> float:
    """The default Gaussian width for the nine non-mass blocks: ``1 / (nk * sqrt(2))`` (RadonPy >= 0.3)."""
    return 1.0 / (nk * math.sqrt(2.0))


def descriptor_names(nk: int = 20) -> list[str]:
    """Column names: ``mass_H`` .. ``mass_I`` (10), then ``{parameter}_{k}`` for k < nk per parameter."""
    return [f"mass_{e}" for e in ELEMENTS] + [f"{p}_{k}" for p in KERNEL_PARAMETERS for k in range(nk)]


class _TypingError(Exception):
    """A molecule GAFF2_mod cannot type; the message says where."""


@dataclass(frozen=True)
class _ForceField:
    pt: dict[str, tuple[float, float]]  # type -> (epsilon, sigma)
    bt: dict[str, tuple[float, float]]  # "a,b" -> (k, r0)
    at: dict[str, tuple[float, float]]  # "a,b,c" -> (k, theta0)
    dt: dict[str, float]  # "a,b,c,d" -> largest Fourier amplitude
    ranges: dict[str, tuple[float, float]]  # parameter -> (min, max) for min-max scaling


@functools.lru_cache(maxsize=1)
def _force_field() -> _ForceField:
    text = resources.files("sim2real_scaling").joinpath("data/gaff2_mod_params.json").read_text()
    raw = json.loads(text)
    pt = {name: (float(v[0]), float(v[1])) for name, v in raw["particle_types"].items()}
    bt: dict[str, tuple[float, float]] = {}
    for name, rname, k, r0 in raw["bond_types"]:
        bt[name] = bt[rname] = (float(k), float(r0))
    at: dict[str, tuple[float, float]] = {}
    for name, rname, k, theta0 in raw["angle_types"]:
        at[name] = at[rname] = (float(k), float(theta0))
    dt: dict[str, float] = {}
    for name, rname, kmax in raw["dihedral_types"]:
        dt[name] = dt[rname] = float(kmax)

    lj = [v for name, v in pt.items() if name not in _IGNORED_LJ_TYPES]
    bonds = [v for v in bt.values() if v[0] >= _MIN_SCALE_FORCE_CONSTANT]
    angles = [v for v in at.values() if v[0] >= _MIN_SCALE_FORCE_CONSTANT]

    def span(values: Sequence[float]) -> tuple[float, float]:
        return float(min(values)), float(max(values))

    ranges = {
        "mass": span(ELEMENT_MASSES),
        "charge": (CHARGE_RANGE[0], CHARGE_RANGE[1]),
        "epsilon": span([v[0] for v in lj]),
        "sigma": span([v[1] for v in lj]),
        "k_bond": span([v[0] for v in bonds]),
        "r0": span([v[1] for v in bonds]),
        "polar": (POLAR_RANGE[0], POLAR_RANGE[1]),
        "k_angle": span([v[0] for v in angles]),
        "theta0": span([v[1] for v in angles]),
        "k_dih": span(list(dt.values())),
    }
    return _ForceField(pt=pt, bt=bt, at=at, dt=dt, ranges=ranges)


# ----------------------------------------------------------------------------------------------
# Structure: cyclic oligomer (port of RadonPy core/poly.py make_linearpolymer / make_cyclicpolymer)
# ----------------------------------------------------------------------------------------------

def _linear_oligomer_smiles(smiles: str, n: int) -> str:
    """RadonPy ``make_linearpolymer(smiles, n, terminal='*')``: n units, ``*`` at both ends.

    RadonPy sanitizes after every added unit; sanitizing once at the end gives the same canonical
    SMILES (checked on all repeat units of the shared PI1070 and chi data) in half the time."""
    from rdkit import Chem

    smiles = smiles.replace("[*]", "*").replace("[3H]", "*")
    smiles = smiles.replace("\\", "\\\\")  # as RadonPy (RDKit reads a doubled backslash as one)
    mol_head = Chem.MolFromSmiles(re.sub(r"\*", "[Nh]", smiles, count=1))
    mol_tail = Chem.MolFromSmiles(re.sub(r"\*", "[Og]", smiles, count=1))
    if mol_head is None or mol_tail is None:
        raise _TypingError("cannot build the linear oligomer")
    og = Chem.MolFromSmarts("[#118]")
    dummy = Chem.MolFromSmiles("[*]")
    con_point = mol_tail.GetAtomWithIdx(mol_tail.GetSubstructMatch(og)[0]).GetNeighbors()[0].GetIdx()
    chain = Chem.RWMol(mol_head)
    for _ in range(n - 1):
        chain = Chem.RWMol(Chem.ReplaceSubstructs(chain, dummy, mol_tail, replacementConnectionPoint=con_point)[0])
        chain.RemoveAtom(chain.GetSubstructMatch(og)[0])
    Chem.SanitizeMol(chain)
    mol = Chem.ReplaceSubstructs(chain.GetMol(), dummy, Chem.MolFromSmiles("*"), replacementConnectionPoint=0)[0]
    return Chem.MolToSmiles(mol).replace("[Nh]", "*")


def _cyclic_oligomer(smiles: str, n: int):  # noqa: ANN202  (rdkit Mol)
    """RadonPy ``make_cyclicpolymer(smiles, n)`` + the first steps of ``GAFF.ff_assign``.

    Same atoms in the same order as RadonPy, explicit H, flags as RadonPy has them when it types:
    sanitized (RDKit default aromaticity -> hybridization, conjugation), then kekulized and
    re-aromatized with the MDL model.

    Ring perception is not left to RDKit: on the closed ring, RDKit's aromaticity perception
    treats the macrocycle and every ring it passes through as one fused system and enumerates
    ring combinations (minutes to hours, or MemoryError, for a backbone through several rings per
    unit), and ``Chem.SanitizeMol`` / ``Chem.Kekulize`` would recompute the ring set. The ring set
    is therefore the SSSR of the open linear oligomer (the same small rings; they decide every
    ring-size rule of the typing, <= 14 atoms) plus the shortest macrocycle when it has <= 24 atoms
    (RDKit's largest fused-aromaticity candidate) or shares no bond with a small ring; the
    oligomer is kekulized while still open and the remaining sanitization steps are run one by
    one. Over the 1,116 shared PI1070 + chi repeat units this reproduces, bit for bit, the same
    procedure with RDKit's own ring perception (plain SSSR of the closed ring) on 1,111 of the
    1,114 it completes on (the 3 others: see module doc); it never hangs.
    """
    from rdkit import Chem

    heavy = Chem.MolFromSmiles(_linear_oligomer_smiles(smiles, n))
    if heavy is None:
        raise _TypingError("cannot parse the linear oligomer")
    rings = [list(r) for r in heavy.GetRingInfo().AtomRings()]
    linkers = sorted(m[0] for m in heavy.GetSubstructMatches(Chem.MolFromSmarts("[#0]")))
    if len(linkers) < 2:
        raise _TypingError("the oligomer lost its end points")
    head, tail = linkers[0], linkers[-1]
    head_ne = heavy.GetAtomWithIdx(head).GetNeighbors()[0].GetIdx()
    tail_ne = heavy.GetAtomWithIdx(tail).GetNeighbors()[0].GetIdx()
    orders = (heavy.GetBondBetweenAtoms(head, head_ne).GetBondTypeAsDouble(),
              heavy.GetBondBetweenAtoms(tail, tail_ne).GetBondTypeAsDouble())
    if 2.0 in orders:
        order = Chem.BondType.DOUBLE
    elif 3.0 in orders:
        order = Chem.BondType.TRIPLE
    else:
        order = Chem.BondType.SINGLE
    macro = list(Chem.GetShortestPath(heavy, head_ne, tail_ne)) if head_ne != tail_ne else [head_ne]
    Chem.Kekulize(heavy, clearAromaticFlags=True)

    def new(i: int) -> int:  # index after removing the two linker atoms (H are appended after them)
        return i - (i > head) - (i > tail)

    rw = Chem.RWMol(Chem.AddHs(heavy))
    rw.RemoveAtom(max(head, tail))
    rw.RemoveAtom(min(head, tail))
    if len(macro) < 2 or rw.GetBondBetweenAtoms(new(tail_ne), new(head_ne)) is not None:
        raise _TypingError(f"cyclic={n} does not give a ring for this repeat unit")
    rw.AddBond(new(tail_ne), new(head_ne), order=order)
    mol = rw.GetMol()
    ring_bonds = {frozenset((r[k], r[k - 1])) for r in rings for k in range(len(r))}
    fused = any(frozenset((macro[k], macro[k - 1])) in ring_bonds for k in range(1, len(macro)))
    if len(macro) <= 24 or not fused:
        rings.append(macro)
    info = mol.GetRingInfo()
    for ring in rings:
        atoms = [new(i) for i in ring]
        bonds = [mol.GetBondBetweenAtoms(atoms[k - 1], atoms[k]).GetIdx() for k in range(len(atoms))]
        info.AddRing(atoms, bonds)
    bonds = [mol.GetBondWithIdx(i) for i in range(mol.GetNumBonds())]
    kekule = [b.GetBondType() for b in bonds]
    mol.UpdatePropertyCache(strict=True)  # = Chem.SanitizeMol after the kekulization step
    Chem.AssignRadicals(mol)
    Chem.SetAromaticity(mol)
    Chem.SetConjugation(mol)
    Chem.SetHybridization(mol)
    for bond, bond_type in zip(bonds, kekule):  # = Chem.Kekulize(mol, clearAromaticFlags=True)
        if bond.GetIsAromatic():
            bond.SetBondType(bond_type)
            bond.SetIsAromatic(False)
    for i in range(mol.GetNumAtoms()):
        mol.GetAtomWithIdx(i).SetIsAromatic(False)
    Chem.SetAromaticity(mol, Chem.AromaticityModel.AROMATICITY_MDL)
    return mol


def _prepare_mol(smiles: str, cyclic: int):  # noqa: ANN202  (rdkit Mol)
    from rdkit import Chem

    if Chem.MolFromSmiles(smiles) is None:
        raise _TypingError("invalid SMILES")
    n_star = smiles.replace("[*]", "*").replace("[3H]", "*").count("*")
    if n_star == 2:
        return _cyclic_oligomer(smiles, cyclic)
    if n_star != 0:
        raise _TypingError(f"a repeat unit needs exactly two '*' attachment points, found {n_star}")
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    Chem.Kekulize(mol, clearAromaticFlags=True)
    Chem.SetAromaticity(mol, Chem.AromaticityModel.AROMATICITY_MDL)
    return mol


# ----------------------------------------------------------------------------------------------
# GAFF2_mod typing (port of RadonPy ff/gaff2_mod.py assign_ptypes and ff/gaff.py)
# ----------------------------------------------------------------------------------------------

@dataclass
class _Graph:
    sym: list[str]
    hyb: list[str]
    deg: list[int]
    nhs: list[int]
    arom: list[bool]
    nbrs: list[list[int]]
    abonds: list[list[tuple[int, float]]]  # per atom: (other atom, bond order) in atom.GetBonds() order
    bonds: list[tuple[int, int, float]]  # (begin, end, order) in mol.GetBonds() order
    ring3: list[bool]
    ring4: list[bool]
    in_ring: list[bool]  # in a ring of 3..MAX_RING_SIZE atoms

    def order(self, i: int, j: int) -> float:
        for other, order in self.abonds[i]:
            if other == j:
                return order
        return 0.0


def _graph(mol) -> _Graph:  # noqa: ANN001
    """Plain-Python copy of what the typing rules read (RDKit's per-atom Python API is slow)."""
    sym, hyb, deg, nhs, arom = [], [], [], [], []
    for a in (mol.GetAtomWithIdx(i) for i in range(mol.GetNumAtoms())):
        sym.append(a.GetSymbol())
        hyb.append(str(a.GetHybridization()))
        deg.append(a.GetTotalDegree())
        nhs.append(a.GetTotalNumHs(includeNeighbors=True))
        arom.append(a.GetIsAromatic())
    n = len(sym)
    bonds = [(b.GetBeginAtomIdx(), b.GetEndAtomIdx(), b.GetBondTypeAsDouble())
             for b in (mol.GetBondWithIdx(i) for i in range(mol.GetNumBonds()))]
    abonds: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for i, j, order in bonds:  # bond-index order == the order of atom.GetBonds() / GetNeighbors()
        abonds[i].append((j, order))
        abonds[j].append((i, order))
    sizes: list[set[int]] = [set() for _ in range(n)]
    for ring in mol.GetRingInfo().AtomRings():
        for i in ring:
            sizes[i].add(len(ring))
    return _Graph(
        sym=sym, hyb=hyb, deg=deg, nhs=nhs, arom=arom,
        nbrs=[[j for j, _ in ab] for ab in abonds],
        abonds=abonds,
        bonds=bonds,
        ring3=[3 in s for s in sizes],
        ring4=[4 in s for s in sizes],
        in_ring=[any(3 <= k <= MAX_RING_SIZE for k in s) for s in sizes],
    )


def _fail(g: _Graph, i: int) -> _TypingError:
    return _TypingError(f"no GAFF2_mod type for atom {i} ({g.sym[i]}, {g.deg[i]} bonds, {g.hyb[i]})")


def _conjugated_neighbour_bond(g: _Graph, i: int) -> bool:
    """A bond of order >= 1.5 between a neighbour of atom i and an atom other than i."""
    return any(o >= 1.5 and other != i for nb in g.nbrs[i] for other, o in g.abonds[nb])


def _atom_type(g: _Graph, i: int) -> str:
    sym, deg, hyb, nhs = g.sym[i], g.deg[i], g.hyb[i], g.nhs[i]
    if sym == "H":
        if not g.nbrs[i]:
            raise _fail(g, i)
        first = g.sym[g.nbrs[i][0]]
        if first == "O":
            water = any(g.sym[nb] == "O" and g.nhs[nb] == 2 for nb in g.nbrs[i])
            return "hw" if water else "ho"
        if first in ("N", "P", "S"):
            return {"N": "hn", "P": "hp", "S": "hs"}[first]
        if first == "C":
            ptype = None
            for nb in g.nbrs[i]:
                if g.sym[nb] != "C":
                    continue
                ewd = sum(1 for x in g.nbrs[nb] if g.sym[x] in _ELECTRON_WITHDRAWING)
                cation = any(g.sym[x] in ("N", "P") and g.deg[x] == 4 for x in g.nbrs[nb])
                d = g.deg[nb]
                if cation:
                    ptype = "hx"
                elif ewd == 0:
                    ptype = "ha" if g.hyb[nb] in ("SP2", "SP") else "hc"
                elif d == 4 and ewd in (1, 2, 3):
                    ptype = f"h{ewd}"
                elif d == 3 and ewd in (1, 2):
                    ptype = f"h{ewd + 3}"
                else:
                    raise _fail(g, i)
            if ptype is None:
                raise _fail(g, i)
            return ptype
        raise _fail(g, i)
    if sym == "C":
        if hyb == "SP3":
            return "c3f" if any(g.sym[nb] == "F" for nb in g.nbrs[i]) else "c3"
        if hyb == "SP2":
            carbonyl = any(g.sym[nb] == "O" and o == 2 and g.deg[nb] == 1 for nb, o in g.abonds[i])
            thio = any(g.sym[nb] == "S" and o == 2 and g.deg[nb] == 1 for nb, o in g.abonds[i])
            if carbonyl:
                return "c"
            if thio:
                return "cs"
            return "ca" if g.arom[i] else "c2"
        if hyb == "SP":
            return "c1"
        raise _fail(g, i)
    if sym == "N":
        if hyb == "SP":
            return "n1"
        if deg == 2:
            if g.arom[i]:
                return "nb"
            if any(o == 2 for _, o in g.abonds[i]):
                return "n2"
            raise _fail(g, i)
        if deg == 3:
            amide = aromatic_ring = False
            no2 = sp2 = 0
            for nb in g.nbrs[i]:
                if g.sym[nb] == "C":
                    aromatic_ring = aromatic_ring or g.arom[nb]
                    amide = amide or any(g.sym[x] in ("O", "S") and o == 2 for x, o in g.abonds[nb])
                elif g.sym[nb] == "O":
                    no2 += 1
                if g.hyb[nb] in ("SP2", "SP"):
                    sp2 += 1
            if no2 >= 2:
                return "no"
            if amide:
                return {1: "ns", 2: "nt"}.get(nhs, "n")
            if g.arom[i] or sp2 >= 2:
                return "na"
            if aromatic_ring:
                return {1: "nu", 2: "nv"}.get(nhs, "nh")
            return {1: "n7", 2: "n8", 3: "n9"}.get(nhs, "n3")
        if deg == 4:
            return {1: "nx", 2: "ny", 3: "nz", 4: "n+"}.get(nhs, "n4")
        raise _fail(g, i)
    if sym == "O":
        if deg == 1:
            return "o"
        return {2: "ow", 1: "oh"}.get(nhs, "os")
    if sym in ("F", "Cl", "Br", "I"):
        return sym.lower()
    if sym == "P":
        if g.arom[i]:
            return "pb"
        if deg == 2:
            return "p2"
        if deg == 3:
            if any(o == 2 for _, o in g.abonds[i]):
                return "px" if _conjugated_neighbour_bond(g, i) else "p4"
            return "p3"
        if deg == 4:
            return "py" if _conjugated_neighbour_bond(g, i) else "p5"
        if deg in (5, 6):
            return "p5"
        raise _fail(g, i)
    if sym == "S":
        if deg == 1:
            return "s"
        if deg == 2:
            if g.arom[i]:
                return "ss"
            if nhs == 1:
                return "sh"
            return "s2" if any(o == 2 for _, o in g.abonds[i]) else "ss"
        if deg == 3:
            return "sx" if _conjugated_neighbour_bond(g, i) else "s4"
        if deg == 4:
            return "sy" if _conjugated_neighbour_bond(g, i) else "s6"
        if deg in (5, 6):
            return "s6"
        raise _fail(g, i)
    raise _fail(g, i)


def _special_types(g: _Graph, t: list[str]) -> None:
    """GAFF.assign_special_ptype: small rings, conjugated chains/rings (ce/cf...), biphenyl cp/cq.

    In-place and in atom order, exactly as RadonPy (the passes are order dependent)."""
    n = len(t)
    for i in range(n):
        if t[i] == "c2" and g.ring3[i]:
            t[i] = "cu"
        elif t[i] == "c2" and g.ring4[i]:
            t[i] = "cv"
        elif t[i] == "c3" and g.ring3[i]:
            t[i] = "cx"
        elif t[i] == "c3" and g.ring4[i]:
            t[i] = "cy"
    for i in range(n):
        if not g.in_ring[i]:
            if sum(1 for nb in g.nbrs[i] if t[nb] in _CONJ_CHAIN) >= 2:
                t[i] = {"c2": "ce", "c1": "cg", "n2": "ne", "p2": "pe"}.get(t[i], t[i])
        elif sum(1 for nb in g.nbrs[i] if t[nb] in _CONJ_RING) >= 2:
            t[i] = {"c2": "cc", "n2": "nc", "p2": "pc"}.get(t[i], t[i])
    for i in range(n):
        if t[i] in _TARGET_CHAIN:
            targets, multiple = _TARGET_CHAIN, (2.0, 3.0)
        elif t[i] in _TARGET_RING:
            targets, multiple = _TARGET_RING, (2.0,)
        else:
            continue
        for j, o in g.abonds[i]:
            if o in multiple and t[j] in targets:
                t[j] = _REPLACE[t[j]]
                for k, o2 in g.abonds[j]:
                    if o2 == 1 and t[k] in targets:
                        t[k] = _REPLACE[t[k]]
    for i in range(n):
        if t[i] == "ca":
            for j, o in g.abonds[i]:
                if o == 1 and t[j] in ("ca", "nb", "pb"):
                    t[i] = "cp"
                    if t[j] == "ca":
                        t[j] = "cp"
    for i in range(n):
        if t[i] == "cp":
            for j, o in g.abonds[i]:
                if o == 1.5 and t[j] == "cp":
                    t[j] = "cq"
                    for k, o2 in g.abonds[j]:
                        if o2 == 1 and t[k] == "cp":
                            t[k] = "cq"


def _bond_params(ff: _ForceField, a: str, b: str) -> tuple[float, float]:
    key = f"{a},{b}"
    if key in ff.bt:
        return ff.bt[key]
    alt1, alt2 = _ALT_PTYPE.get(a), _ALT_PTYPE.get(b)
    candidates = []
    if alt1:
        candidates.append(f"{alt1},{b}")
    if alt2:
        candidates.append(f"{a},{alt2}")
    if alt1 and alt2:
        candidates.append(f"{alt1},{alt2}")
    for key in candidates:
        if key in ff.bt:
            return ff.bt[key]
    raise _TypingError(f"no GAFF2_mod bond parameters for {a},{b}")


def _empirical_angle(ff: _ForceField, g: _Graph, t: list[str], a: int, b: int, c: int) -> tuple[float, float] | None:
    """GAFF.empirical_angle_param: theta0 from the symmetric angles, k from Wang et al.'s formula."""
    pt1, pt, pt2 = t[a], t[b], t[c]
    at1, at2 = f"{pt1},{pt},{pt1}", f"{pt2},{pt},{pt2}"
    bt1, bt2 = f"{pt1},{pt}", f"{pt},{pt2}"
    if g.sym[b] in ("H", "F", "Cl", "Br", "I"):
        return None
    if at1 not in ff.at or at2 not in ff.at or bt1 not in ff.bt or bt2 not in ff.bt:
        alt1, alt2, alt3 = _ALT_PTYPE.get(pt1), _ALT_PTYPE.get(pt), _ALT_PTYPE.get(pt2)
        if alt1 is None and alt2 is None and alt3 is None:
            return None

        def known(key: str, table: dict, options: list[tuple[bool, str]]) -> str | None:
            """``key`` if the table has it, else the first applicable alternate-type key it has."""
            return key if key in table else next((k for ok, k in options if ok and k in table), None)

        at1 = known(at1, ff.at, [(bool(alt1), f"{alt1},{pt},{alt1}"), (bool(alt2), f"{pt1},{alt2},{pt1}"),
                                 (bool(alt1 and alt2), f"{alt1},{alt2},{alt1}")])
        at2 = known(at2, ff.at, [(bool(alt3), f"{alt3},{pt},{alt3}"), (bool(alt2), f"{pt2},{alt2},{pt2}"),
                                 (bool(alt3 and alt2), f"{alt3},{alt2},{alt3}")])
        bt1 = known(bt1, ff.bt, [(bool(alt1), f"{alt1},{pt}"), (bool(alt2), f"{pt1},{alt2}"),
                                 (bool(alt1 and alt2), f"{alt1},{alt2}")])
        bt2 = known(bt2, ff.bt, [(bool(alt2), f"{alt2},{pt2}"), (bool(alt3), f"{pt},{alt3}"),
                                 (bool(alt2 and alt3), f"{alt2},{alt3}")])
        if at1 is None or at2 is None or bt1 is None or bt2 is None:
            return None
    theta = (ff.at[at1][1] + ff.at[at2][1]) / 2
    r1, r2 = ff.bt[bt1][1], ff.bt[bt2][1]
    k = (143.9 * _EMPIRICAL_Z[g.sym[a]] * _EMPIRICAL_C[g.sym[b]] * _EMPIRICAL_Z[g.sym[c]]
         / (r1 + r2) / math.sqrt(theta * math.pi / 180) * math.exp(-2 * (r1 - r2) ** 2 / (r1 + r2) ** 2))
    return k, theta


def _angle_params(ff: _ForceField, g: _Graph, t: list[str], a: int, b: int, c: int) -> tuple[float, float]:
    pt1, pt, pt2 = t[a], t[b], t[c]
    key = f"{pt1},{pt},{pt2}"
    if key in ff.at:
        return ff.at[key]
    alt1, alt2, alt3 = _ALT_PTYPE.get(pt1), _ALT_PTYPE.get(pt), _ALT_PTYPE.get(pt2)
    if alt1 or alt2 or alt3:
        options = [(alt1, f"{alt1},{pt},{pt2}"), (alt2, f"{pt1},{alt2},{pt2}"), (alt3, f"{pt1},{pt},{alt3}"),
                   (alt1 and alt2, f"{alt1},{alt2},{pt2}"), (alt1 and alt3, f"{alt1},{pt},{alt3}"),
                   (alt2 and alt3, f"{pt1},{alt2},{alt3}"), (alt1 and alt2 and alt3, f"{alt1},{alt2},{alt3}")]
        for ok, key in options:
            if ok and key in ff.at:
                return ff.at[key]
    emp = _empirical_angle(ff, g, t, a, b, c)
    if emp is None:
        raise _TypingError(f"no GAFF2_mod angle parameters for {pt1},{pt},{pt2}")
    return emp


def _dihedral_lookup(ff: _ForceField, a: str, b: str, c: str, d: str) -> float | None:
    for key in (f"{a},{b},{c},{d}", f"X,{b},{c},X", f"X,{b},{c},{d}", f"{a},{b},{c},X"):
        if key in ff.dt:
            return ff.dt[key]
    return None


def _dihedral_k(ff: _ForceField, a: str, b: str, c: str, d: str) -> float:
    k = _dihedral_lookup(ff, a, b, c, d)
    if k is not None:
        return k
    alt1, alt2 = _ALT_PTYPE.get(b), _ALT_PTYPE.get(c)
    candidates = []
    if alt1:
        candidates.append((alt1, c))
    if alt2:
        candidates.append((b, alt2))
    if alt1 and alt2:
        candidates.append((alt1, alt2))
    for bb, cc in candidates:
        k = _dihedral_lookup(ff, a, bb, cc, d)
        if k is not None:
            return k
    raise _TypingError(f"no GAFF2_mod dihedral parameters for {a},{b},{c},{d}")


def _ff_samples(smiles: str, cyclic: int, charge: str) -> dict[str, np.ndarray]:
    """Raw force-field parameter samples of one molecule: parameter name -> 1-D array (units above)."""
    from rdkit.Chem import rdPartialCharges

    ff = _force_field()
    mol = _prepare_mol(smiles, cyclic)
    g = _graph(mol)
    n = len(g.sym)
    t = [_atom_type(g, i) for i in range(n)]
    _special_types(g, t)

    lj = np.array([ff.pt[x] for x in t], dtype=np.float64).reshape(n, 2)
    bond = np.array([_bond_params(ff, t[i], t[j]) for i, j, _ in g.bonds], dtype=np.float64).reshape(-1, 2)
    angle = np.array([_angle_params(ff, g, t, nb[x], b, nb[y])
                      for b, nb in enumerate(g.nbrs) for x in range(len(nb)) for y in range(x + 1, len(nb))],
                     dtype=np.float64).reshape(-1, 2)
    dih = np.array([_dihedral_k(ff, t[a], t[i], t[j], t[d])
                    for i, j, _ in g.bonds for a in g.nbrs[i] for d in g.nbrs[j]
                    if a != j and d != i and a != d], dtype=np.float64)

    if charge == "gasteiger":
        rdPartialCharges.ComputeGasteigerCharges(mol)
        q = np.array([mol.GetAtomWithIdx(i).GetDoubleProp("_GasteigerCharge") for i in range(n)], dtype=np.float64)
        if not np.all(np.isfinite(q)):
            raise _TypingError("RDKit has no Gasteiger parameters for an atom")
    else:
        q = np.zeros(n)
    bi = np.array([(i, j) for i, j, _ in g.bonds], dtype=np.int64).reshape(-1, 2)
    return {
        "mass": np.array([mol.GetAtomWithIdx(i).GetMass() for i in range(n)], dtype=np.float64),
        "charge": q,
        "epsilon": lj[:, 0],
        "sigma": lj[:, 1],
        "k_bond": bond[:, 0],
        "r0": bond[:, 1],
        "polar": np.abs(q[bi[:, 0]] - q[bi[:, 1]]),
        "k_angle": angle[:, 0],
        "theta0": angle[:, 1],
        "k_dih": dih,
    }


def _kernel_mean(values: np.ndarray, centres: np.ndarray, width: float) -> np.ndarray:
    if values.size == 0:  # no dihedral (water, CCl4): an all-zero block, as RadonPy's weighted sum
        return np.zeros(centres.size)
    diff = values[None, :] - centres[:, None]
    return np.exp(-(diff**2) / (2.0 * width**2)).mean(axis=1)


def ff_kernel_mean_descriptor(smiles: Sequence[str], *, nk: int = 20, kernel_width: float | None = None,
                              cyclic: int = 10, charge: str = "gasteiger") -> tuple[np.ndarray, list[str]]:
    """The force-field kernel-mean descriptor (definition in the module docstring).

    Args:
        smiles: repeat units with two ``*`` (e.g. ``*CC(*)c1ccccc1``) and/or molecules without ``*``.
        nk: kernel centres per non-mass parameter (20 gives 10 + 9 * 20 = 190 columns).
        kernel_width: Gaussian width s on the [0, 1]-scaled parameters for the nine non-mass blocks;
            None means :func:`default_kernel_width` = ``1 / (nk * sqrt(2))`` = 0.0354 for nk = 20
            (RadonPy >= 0.3 default; ``radonpy-pypi`` 0.2.x used 0.025). The mass block always uses 0.05.
        cyclic: units in the cyclic oligomer built from a repeat unit (>= 2; RadonPy's ``cyclic``).
        charge: ``"gasteiger"`` (RDKit Gasteiger charges) or ``"zero"``.

    Returns:
        ``(values, names)``: float64 array of shape ``(len(smiles), 10 + 9 * nk)`` with values in
        [0, 1], and the column names (``mass_H`` .. ``mass_I``, ``charge_0`` .. ``k_dih_{nk-1}``).

    Raises:
        DescriptorError: a SMILES that RDKit cannot parse, that has a number of ``*`` other than 0
            or 2, or that GAFF2_mod cannot type; the message gives its position and the SMILES.
        ValueError: invalid ``nk``, ``kernel_width``, ``cyclic`` or ``charge``.
    """
    from rdkit import rdBase

    if not isinstance(nk, (int, np.integer)) or nk < 1:
        raise ValueError(f"nk must be a positive integer, got {nk!r}")
    width = default_kernel_width(int(nk)) if kernel_width is None else float(kernel_width)
    if not math.isfinite(width) or width <= 0:
        raise ValueError(f"kernel_width must be a positive number, got {kernel_width!r}")
    if not isinstance(cyclic, (int, np.integer)) or cyclic < 2:
        raise ValueError(f"cyclic must be an integer >= 2, got {cyclic!r}")
    if charge not in CHARGE_MODELS:
        raise ValueError(f"charge must be one of {CHARGE_MODELS} (QM charges need Psi4), got {charge!r}")

    ff = _force_field()
    centres = (2.0 * np.arange(nk) + 1.0) / (2.0 * nk)
    lo, hi = ff.ranges["mass"]
    mass_centres = (np.asarray(ELEMENT_MASSES) - lo) / (hi - lo)
    names = descriptor_names(int(nk))
    values = np.empty((len(smiles), len(names)), dtype=np.float64)
    done: dict[str, np.ndarray] = {}
    with rdBase.BlockLogs():
        for row, smi in enumerate(smiles):
            if not isinstance(smi, str) or not smi.strip():
                raise DescriptorError(f"invalid SMILES at position {row}: {smi!r}")
            if smi not in done:
                try:
                    samples = _ff_samples(smi, int(cyclic), charge)
                except _TypingError as exc:
                    raise DescriptorError(f"force-field descriptor failed at position {row}: {smi!r} ({exc})") from None
                except Exception as exc:  # RDKit raises several exception types on odd input
                    raise DescriptorError(
                        f"force-field descriptor failed at position {row}: {smi!r} ({type(exc).__name__}: {exc})"
                    ) from exc
                blocks = []
                for param in ("mass",) + KERNEL_PARAMETERS:
                    lo, hi = ff.ranges[param]
                    scaled = (samples[param] - lo) / (hi - lo)
                    if param == "mass":
                        blocks.append(_kernel_mean(scaled, mass_centres, MASS_KERNEL_WIDTH))
                    else:
                        blocks.append(_kernel_mean(scaled, centres, width))
                done[smi] = np.concatenate(blocks)
            values[row] = done[smi]
    return values, names
