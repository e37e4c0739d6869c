"""Bookkeeping of a flat batch of structures: strained geometries, cell volumes, energies summed per
structure and the atoms of each species."""

from __future__ import annotations

import torch

from .neighbors import Graph


def apply_strain(
    graph: Graph, positions: torch.Tensor, cell: torch.Tensor, strain: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions [n_atoms, 3] and cells [n_structures, 3, 3] deformed by the symmetric part of
    ``strain`` [n_structures, 3, 3]; the derivative of the energy with respect to ``strain`` at zero is
    minus the virial."""
    symmetric = 0.5 * (strain + strain.transpose(1, 2))
    positions = positions + torch.einsum("na,nab->nb", positions, symmetric[graph.batch])
    return positions, cell + torch.bmm(cell, symmetric)


def cell_volumes(graph: Graph) -> torch.Tensor:
    """|det H| per structure in Å^3, NaN for structures not periodic in all three directions."""
    a, b, c = graph.cell[:, 0], graph.cell[:, 1], graph.cell[:, 2]
    volume = (a * torch.linalg.cross(b, c)).sum(dim=1).abs()  # the triple product: no LU, graph-capturable
    return torch.where(graph.pbc.all(dim=1), volume, torch.full_like(volume, float("nan")))


def structure_energies(atomic: torch.Tensor, batch: torch.Tensor, n_structures: int) -> torch.Tensor:
    """Energy of every structure in eV, [..., n_structures], from the atomic energies [..., n_atoms] and the
    structure of every atom ``batch`` [n_atoms]. The sum is taken in float64 whatever the model's dtype,
    so that a float32 model's rounding stays that of one atomic energy instead of growing with the number
    of atoms (a 6,000-atom float32 sum of -400 eV terms would lose about 0.1 eV)."""
    size = list(atomic.shape[:-1])
    size.append(n_structures)
    return atomic.new_zeros(size, dtype=torch.float64).index_add(-1, batch, atomic.to(torch.float64))


def species_groups(species: torch.Tensor, n_species: int) -> list[torch.Tensor]:
    """The indices of the atoms of each species, [n_species] tensors (``nonzero``: a host sync)."""
    return [torch.nonzero(species == s).flatten() for s in range(n_species)]
