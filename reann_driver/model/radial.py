"""Radial Gaussians with parameters per neighbour element (Eq. (2) of the EANN/REANN papers)."""

from __future__ import annotations

import math

import torch
from torch import nn


class GaussianRadial(nn.Module):
    """g_k(r) = exp(-alpha_{Z_j,k} (r - r_{s,Z_j,k})^2), k = 1..n_radial, trainable per neighbour element.

    Centres ``r_s`` start evenly spaced on [0, r_c); the widths ``alpha`` start so that neighbouring
    Gaussians overlap at half height.
    """

    def __init__(self, n_species: int, n_radial: int, cutoff: float) -> None:
        super().__init__()
        spacing = cutoff / n_radial
        centres = torch.arange(n_radial, dtype=torch.get_default_dtype()) * spacing
        self.centres = nn.Parameter(centres.repeat(n_species, 1))  # [n_species, n_radial], Å
        alpha = torch.full((n_species, n_radial), 4.0 * math.log(2.0) / spacing**2)
        self.alpha = nn.Parameter(alpha)  # [n_species, n_radial], Å^-2

    def forward(self, distances: torch.Tensor, neighbour_species: torch.Tensor) -> torch.Tensor:
        """Args: distances [n_edges] in Å, neighbour_species [n_edges] (species index of j).

        Returns: [n_edges, n_radial].
        """
        shifted = distances[:, None] - self.centres[neighbour_species]
        return torch.exp(-self.alpha[neighbour_species] * shifted * shifted)
