"""The embedded default: a synthetic, deterministic Sim2Real benchmark built from real chemistry.

SYNTHETIC DATA. The molecules are real polymer repeat units assembled from common monomer fragments
(vinyl and methacrylic homopolymers, alternating vinyl copolymers, polyesters, polyamides, polyethers);
the property values are made up. A "density" in g/cm3 is computed from RDKit descriptors of the
hydrogen-capped repeat unit:

    rho(x) = 0.335 * MolWt / MolMR * (1 + 0.04 * aromatic share) - 0.03 * flexibility + 0.02 * polarity
             + 0.08 * g(x)

where g (standardized) is a fixed random two-layer tanh function of 15 standardized RDKit descriptors: a
structure-property term, standing for packing effects, that takes many examples to learn.

The *simulated* value underestimates it by 4% and adds noise (``noise_source``). The *experimental* value is

    rho_exp = rho(x) + hidden_strength * sd(rho) * h(x) + noise_target

where h(x) (standardized) depends on hydrogen bonding and chain symmetry, which the simulated value does
not see. So a model pretrained on simulations learns most of rho, fine-tuning learns the bias and h,
and direct learning from a few hundred experiments must learn everything at once.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from sim2real_scaling.io import write_csv
from sim2real_scaling.seeding import rng

VINYL_SIDE_GROUPS = (
    "C", "CC", "CCC", "CCCC", "CC(C)C", "c1ccccc1", "c1ccc(C)cc1", "c1ccc(Cl)cc1", "c1ccc(OC)cc1", "Cl", "F",
    "C#N", "C(=O)OC", "C(=O)OCC", "C(=O)OCCCC", "C(=O)OC(C)(C)C", "OC(C)=O", "OC", "OCC", "OCCCC", "C(N)=O",
    "C(=O)NC(C)C", "N1CCCC1=O", "c1ccncc1", "O", "C(F)(F)F", "C(=O)O", "C(=O)OCCO", "Br", "c1ccc2ccccc2c1",
    "C(=O)OC1CCCCC1", "[Si](C)(C)C", "C(=O)OCC(F)(F)F", "n1ccnc1", "C(=O)N(C)C", "OC(=O)CC",
)
DIACIDS = ("CC", "CCCC", "CCCCCCCC", "c1ccc(cc1)", "c1cccc(c1)", "C=C", "c1ccc2cc(ccc2c1)", "CCCCCC")
DIOLS = ("CC", "CCC", "CCCC", "CCCCCC", "C1CCC(CC1)C", "c1ccc(cc1)", "CC(C)(C)C", "CCOCC")


def polymer_pool() -> pd.DataFrame:
    """All repeat units of the generator (SMILES with two '*'), with their polymer class."""
    rows: list[tuple[str, str]] = []
    for r in VINYL_SIDE_GROUPS:
        rows.append((f"*CC(*){r}", "vinyl"))
        rows.append((f"*CC(*)(C){r}", "methacrylic"))
    for r1, r2 in itertools.combinations(VINYL_SIDE_GROUPS, 2):
        rows.append((f"*CC({r1})CC(*){r2}", "vinyl_copolymer"))
        rows.append((f"*CC(C)({r1})CC(*){r2}", "methacrylic_copolymer"))
    for acid, diol in itertools.product(DIACIDS, DIOLS):
        rows.append((f"*OC(=O){acid}C(=O)O{diol}*", "polyester"))
        rows.append((f"*NC(=O){acid}C(=O)N{diol}*", "polyamide"))
    for diol in DIOLS:
        rows.append((f"*O{diol}*", "polyether"))
    return pd.DataFrame(rows, columns=["smiles", "polymer_class"])


def _descriptor_frame(smiles: list[str]) -> pd.DataFrame:
    from sim2real_scaling.data.descriptors.rdkit_set import rdkit_descriptors

    values, names = rdkit_descriptors(smiles, basic=True)
    frame = pd.DataFrame(values, columns=names)
    from rdkit import Chem

    sym, halogen = [], []
    for s in smiles:
        mol = Chem.MolFromSmiles(s.replace("*", "[H]"))
        ranks = list(Chem.CanonicalRankAtoms(mol, breakTies=False))
        sym.append(1.0 - len(set(ranks)) / max(len(ranks), 1))
        halogen.append(sum(a.GetSymbol() in ("F", "Cl", "Br") for a in mol.GetAtoms()) / mol.GetNumHeavyAtoms())
    frame["symmetry"] = sym
    frame["halogen_share"] = halogen
    return frame


def structure_term(d: pd.DataFrame) -> np.ndarray:
    """g(x): a fixed (seed-independent) random tanh network of the basic descriptors, standardized."""
    from sim2real_scaling.data.descriptors.rdkit_set import BASIC

    z = d[list(BASIC)].to_numpy(dtype=float)
    z = (z - z.mean(axis=0)) / np.where(z.std(axis=0) > 0, z.std(axis=0), 1.0)
    weights = np.random.default_rng(7).normal(0.0, 2.5 / np.sqrt(z.shape[1]), size=(z.shape[1], 32))
    offsets = np.random.default_rng(8).normal(0.0, 0.5, size=32)
    scales = np.random.default_rng(9).normal(0.0, 1.0, size=32)
    g = np.tanh(z @ weights + offsets) @ scales
    return (g - g.mean()) / (g.std() or 1.0)


def true_density(d: pd.DataFrame) -> np.ndarray:
    aromatic = d["NumAromaticRings"] * 6 / d["HeavyAtomCount"].clip(lower=1)
    flexibility = d["NumRotatableBonds"] / d["HeavyAtomCount"].clip(lower=1)
    polarity = d["TPSA"] / d["LabuteASA"].clip(lower=1)
    return (0.335 * d["MolWt"] / d["MolMR"] * (1 + 0.04 * aromatic) - 0.03 * flexibility
            + 0.02 * polarity).to_numpy() + 0.08 * structure_term(d)


def hidden_part(d: pd.DataFrame) -> np.ndarray:
    """The part of the experimental value the simulation does not see (standardized)."""
    h = np.tanh(d["NHOHCount"].to_numpy()) + 1.5 * d["symmetry"].to_numpy() - 0.8 * d["FractionCSP3"].to_numpy() ** 2
    return (h - h.mean()) / (h.std() or 1.0)


def generate_benchmark(*, seed: int, n_source: int, n_target: int, noise_source: float, noise_target: float,
                       hidden_strength: float, source_path: str | Path, target_path: str | Path) -> dict[str, int]:
    """Write the simulated (source) and experimental (target) tables; return their sizes.

    The target polymers are drawn first; the source is drawn from the rest of the pool (so the two tables
    are disjoint, as when experiments exist for polymers nobody has simulated yet) and, when the pool is
    too small, topped up with target polymers.
    """
    pool = polymer_pool()
    generator = rng(seed, "synthetic", "pool")
    order = generator.permutation(len(pool))
    target_rows = order[:n_target]
    rest = order[n_target:]
    source_rows = rest[:n_source] if len(rest) >= n_source else np.concatenate([rest, target_rows[: n_source - len(rest)]])
    chosen = np.unique(np.concatenate([source_rows, target_rows]))
    desc = _descriptor_frame(pool["smiles"].iloc[chosen].tolist())
    rho = pd.Series(true_density(desc), index=chosen)
    hidden = pd.Series(hidden_part(desc), index=chosen)
    sd = float(rho.std())
    sim = 0.96 * rho.loc[source_rows].to_numpy() + rng(seed, "synthetic", "source_noise").normal(0, noise_source, len(source_rows))
    exp = (rho.loc[target_rows].to_numpy() + hidden_strength * sd * hidden.loc[target_rows].to_numpy()
           + rng(seed, "synthetic", "target_noise").normal(0, noise_target, len(target_rows)))
    source = pool.iloc[source_rows].assign(value=np.round(sim, 5), unit="g/cm3")
    target = pool.iloc[target_rows].assign(value=np.round(exp, 5), unit="g/cm3")
    write_csv(source[["smiles", "value", "unit", "polymer_class"]], source_path)
    write_csv(target[["smiles", "value", "unit", "polymer_class"]], target_path)
    return {"pool": len(pool), "source": len(source), "target": len(target)}
