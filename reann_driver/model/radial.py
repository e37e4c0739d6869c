"""Radial Gaussians with parameters per neighbour element (Eq. (2) of the EANN/REANN papers)."""

from __future__ import annotations

import math

import torch
from torch import nn

RADIAL_INITS = ("wide", "reference", "narrow")


class GaussianRadial(nn.Module):
    """g_k(r) = exp(-alpha_{Z_j,k} (r - r_{s,Z_j,k})^2), k = 1..n_radial, trainable per neighbour element.

    Initialisation (``init``):

    * ``"wide"`` (default): centres evenly spaced on [0, r_c), widths alpha evenly spread over
      [0.2, 1.2] Å^-2 from the widest (at r = 0) to the narrowest: the range the original REANN code
      draws from at random (``inta = -(rand + 0.2)``), without its dependence on the seed.
    * ``"reference"``: the original code's draw, centres uniform on [0, r_c) and alpha uniform on
      [0.2, 1.2] Å^-2 (from torch's global generator).
    * ``"narrow"`` (reann-driver 0.1): centres evenly spaced, neighbouring Gaussians overlapping at
      half height (alpha = 4 ln 2 / spacing^2; 7.1 Å^-2 for 8 Gaussians up to 5 Å).
    """

    def __init__(self, n_species: int, n_radial: int, cutoff: float, init: str = "wide") -> None:
        super().__init__()
        spacing = cutoff / n_radial
        if init == "reference":
            centres = torch.rand(n_species, n_radial) * cutoff
            alpha = torch.rand(n_species, n_radial) + 0.2
        elif init in ("wide", "narrow"):
            centres = (torch.arange(n_radial, dtype=torch.get_default_dtype()) * spacing).repeat(n_species, 1)
            if init == "wide":
                alpha = torch.linspace(0.2, 1.2, n_radial).repeat(n_species, 1)
            else:
                alpha = torch.full((n_species, n_radial), 4.0 * math.log(2.0) / spacing**2)
        else:
            raise ValueError(f"radial_init must be one of {RADIAL_INITS}, got {init!r}")
        self.centres = nn.Parameter(centres)  # [n_species, n_radial], Å
        self.alpha = nn.Parameter(alpha)  # [n_species, n_radial], Å^-2

    def forward(self, distances: torch.Tensor, neighbour_species: torch.Tensor) -> torch.Tensor:
        """Args: distances [n_edges] in Å, neighbour_species [n_edges] (species index of j).

        Returns: [n_edges, n_radial].
        """
        shifted = distances[:, None] - self.centres[neighbour_species]
        return torch.exp(-self.alpha[neighbour_species] * shifted * shifted)
