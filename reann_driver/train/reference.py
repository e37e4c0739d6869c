"""Per-element reference energies from the compositions and energies of a training set."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms


@dataclass(frozen=True)
class ReferenceEnergies:
    """Reference energy per element (eV) and how they were obtained."""

    energies: dict[str, float]
    method: str  # "least squares", "mean energy per atom" or "given"
    note: str  # one sentence for the log


def per_element_fit(counts: np.ndarray, energies: np.ndarray) -> tuple[np.ndarray, bool]:
    """Per-element values eps with E_s ~ sum_e counts[s, e] eps_e: least squares when the composition
    matrix [n_structures, n_elements] has full column rank (returns True), else the mean energy per atom
    for every element (returns False)."""
    if np.linalg.matrix_rank(counts) == counts.shape[1]:
        solution, *_ = np.linalg.lstsq(counts, energies, rcond=None)
        return solution, True
    return np.full(counts.shape[1], energies.sum() / counts.sum()), False


def fit_reference_energies(frames: Sequence[Atoms], species: Sequence[str]) -> ReferenceEnergies:
    """Least-squares E ~ sum_e n_e eps_e over the frames when the composition matrix has full column rank;
    otherwise (e.g. fixed stoichiometry, where only one combination is determined) every element gets the
    mean energy per atom, and the note says so."""
    numbers = [Atoms(s).numbers[0] for s in species]
    counts = np.array([[np.count_nonzero(a.numbers == z) for z in numbers] for a in frames], dtype=np.float64)
    energies = np.array([atoms.get_potential_energy() for atoms in frames], dtype=np.float64)
    solution, identifiable = per_element_fit(counts, energies)
    values = {s: float(e) for s, e in zip(species, solution)}
    if identifiable:
        note = f"per-element reference energies by least squares on {len(frames)} training compositions: "
        return ReferenceEnergies(values, "least squares", note + _format(values))
    return ReferenceEnergies(
        values,
        "mean energy per atom",
        f"the composition matrix of the training set has rank {np.linalg.matrix_rank(counts)} < "
        f"{len(species)} elements (e.g. fixed stoichiometry), so per-element energies are not identifiable: "
        f"every element starts at the mean energy per atom, {solution[0]:.6f} eV",
    )


def given_reference_energies(values: dict[str, float], species: Sequence[str]) -> ReferenceEnergies:
    """User-given reference energies; every model element must be present."""
    missing = [s for s in species if s not in values]
    if missing:
        raise ValueError(f"data.reference_energies lacks element(s) {missing}")
    chosen = {s: float(values[s]) for s in species}
    return ReferenceEnergies(
        chosen, "given", "per-element reference energies from the configuration: " + _format(chosen)
    )


def _format(values: dict[str, float]) -> str:
    return ", ".join(f"{s} {e:.6f} eV" for s, e in values.items())
