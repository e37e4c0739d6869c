"""The embedded density of REANN: squared linear combinations of Gaussian-type orbitals of the neighbours."""

from __future__ import annotations

import torch
from torch import nn


class EmbeddedDensity(nn.Module):
    """rho_i[m] = sum_L sum_{a in L} ( sum_k W_L[k, m] S_i[a, k] )^2 with
    S_i[a, k] = sum_j c_j[k] f_c(r_ij) g_k(r_ij) Y_a(r_ij)   (PRL 127, 156002, Eqs. (2)-(4)).

    Geometry (``orbitals`` = f_c g_k Y_a per edge) is fixed across iterations; only the coefficients c_j
    change, so the model computes the orbitals once and calls this module T + 1 times.
    """

    def __init__(self, degree: list[int], n_radial: int, n_orbitals: int) -> None:
        super().__init__()
        n_l = max(degree) + 1
        self.register_buffer("degree", torch.tensor(degree, dtype=torch.long), persistent=False)
        self.mixing = nn.Parameter(torch.randn(n_l, n_radial, n_orbitals) / n_radial**0.5)  # W_L [L, k, m]

    def forward(
        self,
        radial: torch.Tensor,
        angular: torch.Tensor,
        coefficients: torch.Tensor,
        centre: torch.Tensor,
        neighbour: torch.Tensor,
        n_atoms: int,
    ) -> torch.Tensor:
        """Args:
            radial: f_c(r_ij) g_k(r_ij) per edge, [n_edges, n_radial].
            angular: Y_a(r_ij) per edge, [n_edges, n_angular].
            coefficients: c_j per atom, [n_atoms, n_radial].
            centre, neighbour: atom indices i and j of each edge, [n_edges].
        Returns:
            rho [n_atoms, n_orbitals].
        """
        weighted = radial * coefficients.index_select(0, neighbour)  # [n_edges, n_radial]
        per_edge = angular.unsqueeze(2) * weighted.unsqueeze(1)  # [n_edges, n_angular, n_radial]
        sums = per_edge.new_zeros((n_atoms, *per_edge.shape[1:])).index_add(0, centre, per_edge)
        mixed = torch.einsum("nak,akm->nam", sums, self.mixing[self.degree])  # [n_atoms, n_angular, n_orbitals]
        return (mixed * mixed).sum(dim=1)
