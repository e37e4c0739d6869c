"""The embedded density of REANN: squared linear combinations of Gaussian-type orbitals of the neighbours."""

from typing import NamedTuple

import torch
from torch import nn


class NeighbourSlots(NamedTuple):
    """Dense layout of a neighbour list: edge e of centre i goes to row i, column ``slot[e]``.

    Orbital sums then become one batched matrix product per iteration instead of a scatter of
    per-edge outer products, which is what makes the recursion cheap. ``neighbour`` has
    ``capacity`` columns, at least the largest number of neighbours of any atom.
    """

    centre: torch.Tensor  # [n_edges]
    slot: torch.Tensor  # [n_edges]
    neighbour: torch.Tensor  # [n_atoms, capacity] index of the neighbour in each slot (0 where empty)


def neighbour_slots(
    centre: torch.Tensor, neighbour: torch.Tensor, n_atoms: int, capacity: int = -1
) -> NeighbourSlots:
    """The slot layout of edges (centre i, neighbour j).

    ``capacity`` fixes the number of slots per atom; it must be at least the largest neighbour count
    (not checked here, so that no value is read back from the device). With the default -1 the
    largest count is used, which reads it back to the host.
    """
    counts = torch.bincount(centre, minlength=n_atoms)
    if capacity < 0:
        capacity = int(counts.max()) if centre.numel() > 0 else 0
    order = torch.argsort(centre, stable=True)
    first = torch.cumsum(counts, 0) - counts  # index of each centre's first edge in sorted order
    slot = torch.empty_like(centre)
    slot[order] = torch.arange(centre.numel(), device=centre.device) - first[centre[order]]
    table = torch.zeros(n_atoms, capacity, dtype=neighbour.dtype, device=neighbour.device)
    table[centre, slot] = neighbour
    return NeighbourSlots(centre, slot, table)


def scatter_to_slots(slots: NeighbourSlots, per_edge: torch.Tensor) -> torch.Tensor:
    """[n_edges, F] -> [n_atoms, capacity, F], zeros in empty slots (differentiable)."""
    dense = per_edge.new_zeros(slots.neighbour.shape[0], slots.neighbour.shape[1], per_edge.shape[1])
    return dense.index_put((slots.centre, slots.slot), per_edge)


class EmbeddedDensity(nn.Module):
    """rho_i[m] = sum_L sum_{a in L} ( sum_k W_L[k, m] S_i[a, k] )^2 with
    S_i[a, k] = sum_j c_j[k] f_c(r_ij) g_k(r_ij) Y_a(r_ij)   (PRL 127, 156002, Eqs. (2)-(4)).

    Geometry (f_c g_k and Y_a per neighbour slot) is fixed across iterations; only the coefficients c_j
    change, so the model computes the orbitals once and calls this module T + 1 times. Each call t uses
    its own mixing matrices W_L^t (``n_sets = T + 1``, as the original code's ``hyper[t]``), or all calls
    share one set (``n_sets = 1``).
    """

    degree: torch.Tensor

    def __init__(self, degree: list[int], n_radial: int, n_orbitals: int, n_sets: int = 1) -> None:
        super().__init__()
        n_l = max(degree) + 1
        self.register_buffer("degree", torch.tensor(degree, dtype=torch.long), persistent=False)
        # W_L^t [t, L, k, m]
        self.mixing = nn.Parameter(torch.randn(n_sets, n_l, n_radial, n_orbitals) / n_radial**0.5)

    def forward(
        self,
        radial: torch.Tensor,
        angular: torch.Tensor,
        coefficients: torch.Tensor,
        slots: NeighbourSlots,
        iteration: int = 0,
    ) -> torch.Tensor:
        """Args:
            radial: f_c(r_ij) g_k(r_ij) per neighbour slot, [n_atoms, n_max, n_radial] (0 in empty slots).
            angular: Y_a(r_ij) per neighbour slot transposed, [n_atoms, n_angular, n_max].
            coefficients: c_j per atom, [n_atoms, n_radial].
            slots: the dense neighbour layout.
            iteration: t, which set of mixing matrices to use (taken modulo the number of sets).
        Returns:
            rho [n_atoms, n_orbitals].
        """
        weighted = radial * coefficients[slots.neighbour]  # [n_atoms, n_max, n_radial]
        sums = torch.bmm(angular, weighted)  # S_i [n_atoms, n_angular, n_radial]
        mixed = torch.einsum(
            "nak,akm->nam", sums, self.mixing[iteration % self.mixing.shape[0]][self.degree]
        )  # [n_atoms, n_angular, n_orbitals]
        return (mixed * mixed).sum(dim=1)
