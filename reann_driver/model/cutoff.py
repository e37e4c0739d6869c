"""Smooth cutoff function of the reference REANN code."""

from __future__ import annotations

import math

import torch


def cosine_cutoff(distances: torch.Tensor, cutoff: float) -> torch.Tensor:
    """f_c(r) = (0.5 cos(pi r / r_c) + 0.5)^2 for r < r_c, else 0.

    The function and its first derivative vanish at r_c, so energies and forces are continuous when an
    atom crosses the cutoff sphere.

    Args:
        distances: pair distances in Å, any shape.
        cutoff: r_c in Å.
    Returns:
        Tensor of the same shape as ``distances`` (dimensionless).
    """
    inside = distances < cutoff
    value = (0.5 * torch.cos(distances * (math.pi / cutoff)) + 0.5) ** 2
    return torch.where(inside, value, torch.zeros_like(value))


def cosine_cutoff_and_derivative(distances: torch.Tensor, cutoff: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``cosine_cutoff`` and its derivative df_c/dr = -(pi / r_c) (0.5 cos(pi r / r_c) + 0.5) sin(pi r / r_c)
    for r < r_c, else 0, in Å^-1, from one cosine (same shapes as ``distances``)."""
    phase = distances * (math.pi / cutoff)
    half = 0.5 * torch.cos(phase) + 0.5
    inside = distances < cutoff
    value = torch.where(inside, half * half, torch.zeros_like(half))
    slope = torch.where(inside, -(math.pi / cutoff) * half * torch.sin(phase), torch.zeros_like(half))
    return value, slope
