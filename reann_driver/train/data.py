"""Labelled structures for training: read the standard extxyz once, precompute neighbour lists, batch.

Each structure is turned into a single-structure graph (vesin neighbour list) when it is read; a
batch is the concatenation of its structures' graphs with atom indices shifted by the atoms before
them, so that no neighbour list is recomputed during training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.data import chemical_symbols
from ase.io import read

from ..data.errors import DataError
from ..model import Graph, concatenate_graphs, graph_from_atoms

__all__ = [
    "Batch",
    "DataError",
    "LabelledStructure",
    "batch_order",
    "collate",
    "energy_only",
    "epoch_batches",
    "frame_has_forces",
    "prepare",
    "read_structures",
    "species_of",
]


@dataclass(frozen=True)
class LabelledStructure:
    """One structure with its neighbour list and reference labels (eV, eV/Å, eV/Å^3)."""

    graph: Graph  # single-structure graph, float64 on CPU
    energy: float
    forces: torch.Tensor  # [n_atoms, 3] float64 (zeros when the frame has none, see has_forces)
    stress: torch.Tensor | None  # [3, 3] float64 (ASE sign) or None
    has_forces: bool = True

    @property
    def n_atoms(self) -> int:
        return self.graph.n_atoms


@dataclass(frozen=True)
class Batch:
    """Structures concatenated into one graph with their labels."""

    graph: Graph
    energy: torch.Tensor  # [n_structures]
    forces: torch.Tensor  # [n_atoms, 3]
    stress: torch.Tensor  # [n_structures, 3, 3], zeros where absent
    has_stress: torch.Tensor  # [n_structures] bool
    n_atoms: torch.Tensor  # [n_structures] atoms per structure (float, for per-atom normalisation)


def frame_has_forces(atoms: Atoms) -> bool:
    """True when the frame carries a force array (energy-only data such as QM9 has none)."""
    return atoms.calc is not None and "forces" in getattr(atoms.calc, "results", {})


def read_structures(path: str | Path) -> list[Atoms]:
    """All frames of a standard-form extxyz with an energy (forces optional); errors name the file and
    frame."""
    source = Path(path)
    if not source.is_file():
        raise DataError(f"data file {str(source)!r} does not exist")
    try:
        frames = read(source, index=":")
    except Exception as error:  # ase raises many types for malformed files
        raise DataError(f"cannot read {str(source)!r}: {error}") from error
    if not isinstance(frames, list):
        frames = [frames]
    if not frames:
        raise DataError(f"{str(source)!r} holds no frames")
    for index, atoms in enumerate(frames):
        try:
            atoms.get_potential_energy()
        except Exception as error:  # missing calculator or results
            raise DataError(f"{source}, frame {index}: no energy or forces ({error})") from error
    return frames


def _stress_of(atoms: Atoms) -> np.ndarray | None:
    calc = atoms.calc
    if calc is None or "stress" not in getattr(calc, "results", {}):
        return None
    return np.asarray(atoms.get_stress(voigt=False), dtype=np.float64)


def prepare(
    frames: Sequence[Atoms], species: Sequence[str], cutoff: float, source: str = "data"
) -> list[LabelledStructure]:
    """Precompute the neighbour list of every frame (float64, CPU)."""
    structures = []
    for index, atoms in enumerate(frames):
        energy = float(atoms.get_potential_energy())
        has_forces = frame_has_forces(atoms)
        forces = np.asarray(atoms.get_forces() if has_forces else np.zeros((len(atoms), 3)), dtype=np.float64)
        stress = _stress_of(atoms)
        if not np.isfinite(energy) or not np.all(np.isfinite(forces)):
            raise DataError(f"{source}, frame {index}: non-finite energy or forces")
        try:
            graph = graph_from_atoms([atoms], species, cutoff)
        except ValueError as error:  # unknown elements, bad cell, non-finite positions
            raise DataError(f"{source}, frame {index}: {error}") from error
        structures.append(
            LabelledStructure(
                graph=graph,
                energy=energy,
                forces=torch.from_numpy(forces),
                stress=None if stress is None else torch.from_numpy(stress),
                has_forces=has_forces,
            )
        )
    return structures


def collate(
    structures: Sequence[LabelledStructure],
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> Batch:
    """One batch graph from single-structure graphs (atom indices offset by the preceding atoms)."""
    if not structures:
        raise ValueError("cannot collate an empty list of structures")
    graph = concatenate_graphs([s.graph for s in structures]).to(device=device, dtype=dtype)
    sizes = torch.tensor([s.n_atoms for s in structures])
    zero_stress = torch.zeros(3, 3, dtype=torch.float64)
    return Batch(
        graph=graph,
        energy=torch.tensor([s.energy for s in structures], dtype=dtype, device=device),
        forces=torch.cat([s.forces for s in structures]).to(device=device, dtype=dtype),
        stress=torch.stack([zero_stress if s.stress is None else s.stress for s in structures]).to(
            device=device, dtype=dtype
        ),
        has_stress=torch.tensor([s.stress is not None for s in structures], device=device),
        n_atoms=sizes.to(device=device, dtype=dtype),
    )


def energy_only(structures: Sequence[LabelledStructure], source: str = "the training data") -> bool:
    """True when no structure has a non-zero force (forces absent, or all zero as n2p2 files write for
    energy-only data such as QM9): such data are fitted on energies alone. A mix of structures with and
    without forces is an error."""
    if not any(s.has_forces and bool(s.forces.any()) for s in structures):
        return True
    missing = [i for i, s in enumerate(structures) if not s.has_forces]
    if missing:
        raise DataError(
            f"{source}: {len(missing)} of {len(structures)} structures have no forces (first: "
            f"{missing[0]}) while the others have: drop them or split them into an energy-only set"
        )
    return False


def species_of(frames: Sequence[Atoms]) -> list[str]:
    """Elements present in the frames, ordered by atomic number."""
    numbers = sorted({int(z) for atoms in frames for z in atoms.numbers})
    return [chemical_symbols[z] for z in numbers]


def batch_order(n_structures: int, seed: int, epoch: int) -> torch.Tensor:
    """Shuffled structure indices of one epoch, a function of (seed, epoch) only (exact resume)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n_structures, generator=generator)


def epoch_batches(n_structures: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The global batches of one epoch: ``batch_order`` cut into chunks of ``batch_size`` indices."""
    order = batch_order(n_structures, seed, epoch).tolist()
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
