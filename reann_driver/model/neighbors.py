"""Neighbour lists (vesin, O(N)) and the flat batched graph that the model consumes.

A batch of structures is one graph: atoms of all structures are concatenated, ``batch`` says which
structure each atom belongs to, and each edge (i, j, S) means neighbour j seen from centre i through
the integer cell shift S, so that r_ij = x_j - x_i + S . H (H: cell, lattice vectors as rows, Å).
Distances are computed later, inside the model, so that they stay differentiable with respect to
positions and cell.
"""

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
import vesin
from ase import Atoms

from ..geometry import neighbour_list_problem


class Graph(NamedTuple):
    """A batch of structures as one flat graph (all lengths in Å); a NamedTuple, so that TorchScript
    accepts it as the model's input."""

    positions: torch.Tensor  # [n_atoms, 3]
    cell: torch.Tensor  # [n_structures, 3, 3], lattice vectors as rows (zeros for molecules)
    pbc: torch.Tensor  # [n_structures, 3] bool
    species: torch.Tensor  # [n_atoms] long, index into the model's species list
    batch: torch.Tensor  # [n_atoms] long, structure index of each atom
    edge_index: torch.Tensor  # [2, n_edges] long, (centre i, neighbour j)
    shifts: torch.Tensor  # [n_edges, 3] integer cell shifts, stored in the positions' dtype

    @property
    def n_structures(self) -> int:
        return int(self.cell.shape[0])

    @property
    def n_atoms(self) -> int:
        return int(self.positions.shape[0])

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "Graph":
        """The same graph on another device and/or floating-point dtype."""
        return self._replace(
            positions=self.positions.to(device=device, dtype=dtype),
            cell=self.cell.to(device=device, dtype=dtype),
            shifts=self.shifts.to(device=device, dtype=dtype),
            pbc=self.pbc.to(device=device),
            species=self.species.to(device=device),
            batch=self.batch.to(device=device),
            edge_index=self.edge_index.to(device=device),
        )


def neighbor_pairs(
    positions: np.ndarray, cell: np.ndarray, pbc: Sequence[bool] | np.ndarray, cutoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All ordered pairs (i, j, S) with |x_j - x_i + S.H| < cutoff, i != j or S != 0 (full list).

    Args:
        positions: [n_atoms, 3] in Å (need not be wrapped into the cell).
        cell: [3, 3] lattice vectors as rows in Å; ignored in non-periodic directions.
        pbc: periodicity along each lattice vector.
        cutoff: in Å.
    Returns:
        i [n_pairs], j [n_pairs] (int64) and S [n_pairs, 3] (int64).
    """
    pbc_array = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    box = np.array(cell, dtype=np.float64).reshape(3, 3)
    problem = neighbour_list_problem(positions, box, pbc_array, cutoff)
    if problem is not None:
        raise ValueError(problem[1])
    if pbc_array.any():
        box = _complete_cell(box, pbc_array, positions, cutoff)
    else:
        box = np.zeros((3, 3))
    calculator = vesin.NeighborList(cutoff=float(cutoff), full_list=True)
    i, j, shifts = calculator.compute(positions, box, pbc_array.tolist(), "ijS")
    return i.astype(np.int64), j.astype(np.int64), shifts.astype(np.int64)


def _complete_cell(box: np.ndarray, pbc: np.ndarray, positions: np.ndarray, cutoff: float) -> np.ndarray:
    """Replace zero lattice vectors along non-periodic directions by long orthogonal ones (vesin needs a
    non-singular box); check that periodic directions have a usable lattice vector."""
    lengths = np.linalg.norm(box, axis=1)
    for axis in np.flatnonzero(pbc):
        if lengths[axis] == 0.0:
            raise ValueError(f"periodic direction {axis} has a zero lattice vector")
    missing = np.flatnonzero((lengths == 0.0) & ~pbc)
    if missing.size:
        extent = float(np.ptp(positions, axis=0).max()) if len(positions) else 0.0
        span = 2.0 * (extent + cutoff) + 1.0
        for axis in missing:
            others = [box[k] for k in range(3) if k != axis and lengths[k] > 0.0]
            candidates = np.eye(3)
            if len(others) == 2:
                direction = np.cross(others[0], others[1])
            elif len(others) == 1:
                direction = np.cross(others[0], candidates[np.argmin(np.abs(others[0]))])
            else:
                direction = candidates[axis]
            box[axis] = span * direction / np.linalg.norm(direction)
            lengths[axis] = span
    if abs(np.linalg.det(box)) < 1e-12:
        raise ValueError("cell is singular along its periodic directions")
    return box


def build_graph(
    species: Sequence[Sequence[int] | np.ndarray],
    positions: Sequence[np.ndarray],
    cells: Sequence[np.ndarray],
    pbcs: Sequence[Sequence[bool] | np.ndarray],
    cutoff: float,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> Graph:
    """A flat graph from per-structure arrays.

    Args:
        species: per structure, species index of each atom (index into the model's species list).
        positions: per structure, [n_atoms, 3] in Å.
        cells: per structure, [3, 3] lattice vectors as rows in Å (any value for molecules).
        pbcs: per structure, three booleans.
        cutoff: neighbour cutoff in Å.
    """
    if not (len(species) == len(positions) == len(cells) == len(pbcs)):
        raise ValueError("species, positions, cells and pbcs must have one entry per structure")
    graphs = [
        _structure_graph(np.asarray(z), np.asarray(pos, dtype=np.float64), cell, pbc, cutoff)
        for z, pos, cell, pbc in zip(species, positions, cells, pbcs)
    ]
    return concatenate_graphs(graphs).to(device=device, dtype=dtype)


def _structure_graph(
    species: np.ndarray,
    positions: np.ndarray,
    cell: np.ndarray,
    pbc: Sequence[bool] | np.ndarray,
    cutoff: float,
) -> Graph:
    """The graph of one structure, float64 on the CPU."""
    i, j, shifts = neighbor_pairs(positions, cell, pbc, cutoff)
    cell_array = np.asarray(cell, dtype=np.float64).reshape(3, 3).copy()
    pbc_array = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    cell_array[~pbc_array] = 0.0  # lattice vectors of non-periodic directions never enter a distance
    return Graph(
        positions=torch.from_numpy(positions.reshape(-1, 3).copy()),
        cell=torch.from_numpy(cell_array).unsqueeze(0),
        pbc=torch.from_numpy(pbc_array.copy()).unsqueeze(0),
        species=torch.from_numpy(species.astype(np.int64)),
        batch=torch.zeros(len(positions), dtype=torch.long),
        edge_index=torch.from_numpy(np.stack([i, j])),
        shifts=torch.from_numpy(shifts.astype(np.float64)),
    )


def concatenate_graphs(graphs: Sequence[Graph]) -> Graph:
    """One graph holding every structure of ``graphs`` (atom and structure indices renumbered).

    Used to batch structures whose neighbour lists are already known, without recomputing them.
    """
    if not graphs:
        raise ValueError("cannot concatenate an empty list of graphs")
    atom_counts = torch.tensor([g.n_atoms for g in graphs])
    structure_counts = torch.tensor([g.n_structures for g in graphs])
    atom_offsets = (torch.cumsum(atom_counts, 0) - atom_counts).tolist()
    structure_offsets = (torch.cumsum(structure_counts, 0) - structure_counts).tolist()
    return Graph(
        positions=torch.cat([g.positions for g in graphs]),
        cell=torch.cat([g.cell for g in graphs]),
        pbc=torch.cat([g.pbc for g in graphs]),
        species=torch.cat([g.species for g in graphs]),
        batch=torch.cat([g.batch + offset for g, offset in zip(graphs, structure_offsets)]),
        edge_index=torch.cat([g.edge_index + offset for g, offset in zip(graphs, atom_offsets)], dim=1),
        shifts=torch.cat([g.shifts for g in graphs]),
    )


def species_indices(symbols: Sequence[str], species: Sequence[str]) -> np.ndarray:
    """Index of each chemical symbol in the model's species list; a clear error for unknown elements."""
    lookup = {symbol: index for index, symbol in enumerate(species)}
    unknown = sorted(set(symbols) - lookup.keys())
    if unknown:
        raise ValueError(f"element(s) {', '.join(unknown)} not in the model's species {list(species)}")
    return np.fromiter((lookup[s] for s in symbols), dtype=np.int64, count=len(symbols))


def graph_from_atoms(
    structures: Sequence[Atoms],
    species: Sequence[str],
    cutoff: float,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> Graph:
    """A flat graph from ASE ``Atoms`` objects (positions and cell in Å)."""
    return build_graph(
        species=[species_indices(a.get_chemical_symbols(), species) for a in structures],
        positions=[a.get_positions() for a in structures],
        cells=[np.asarray(a.get_cell()) for a in structures],
        pbcs=[a.get_pbc() for a in structures],
        cutoff=cutoff,
        dtype=dtype,
        device=device,
    )
