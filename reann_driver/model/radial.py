"""Radial Gaussians with parameters per neighbour element (Eq. (2) of the EANN/REANN papers)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .cutoff import cosine_cutoff, cosine_cutoff_and_derivative
from .lean import keeps_only_inputs

RADIAL_INITS = ("graded", "wide", "reference", "narrow")


class GaussianRadial(nn.Module):
    """g_k(r) = exp(-alpha_{Z_j,k} (r - r_{s,Z_j,k})^2), k = 1..n_radial, trainable per neighbour element.

    Initialisation (``init``):

    * ``"graded"`` (the default of ``reann train``): centres evenly spaced on [0, r_c), widths alpha
      evenly spread over [0.2, 1.2] Å^-2 from the narrowest (1.2 at r = 0) to the widest (0.2 at the last
      centre): the range the original REANN code draws from at random (``inta = -(rand + 0.2)``), without
      its dependence on the seed, and with the finest radial resolution at short range, where the
      energy changes fastest (measured against ``wide`` and ``reference`` in docs/training.md).
    * ``"wide"`` (default of this class): the same centres and range of widths in the opposite order,
      the widest (0.2 Å^-2) at r = 0.
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
        elif init in ("graded", "wide", "narrow"):
            centres = (torch.arange(n_radial, dtype=torch.get_default_dtype()) * spacing).repeat(n_species, 1)
            if init == "graded":
                alpha = torch.linspace(1.2, 0.2, n_radial).repeat(n_species, 1)
            elif init == "wide":
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
        return gaussians(distances, self.centres[neighbour_species], self.alpha[neighbour_species])

    def with_cutoff(
        self, distances: torch.Tensor, neighbour_species: torch.Tensor, cutoff: float
    ) -> torch.Tensor:
        """f_c(r) g_k(r), [n_edges, n_radial] (``cutoff.cosine_cutoff``); for many edges keeping only the
        distances and species for the backward pass (``CutGaussians``, ``lean.py``)."""
        if torch.jit.is_scripting() or not keeps_only_inputs(distances.shape[0]):
            return cut_gaussians(distances, neighbour_species, self.centres, self.alpha, cutoff)
        return _cut_gaussians(distances, neighbour_species, self.centres, self.alpha, cutoff)

    def values_and_slopes(
        self, distances: torch.Tensor, neighbour_species: torch.Tensor, cutoff: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """f_c(r) g_k(r) and its derivative d(f_c g_k)/dr = f_c' g_k - 2 alpha (r - r_s) f_c g_k in Å^-1,
        both [n_edges, n_radial], without autograd (for ``REANN.adjoint_pass``)."""
        shifted = distances[:, None] - self.centres.detach().index_select(0, neighbour_species)
        alpha = self.alpha.detach().index_select(0, neighbour_species)
        values = shifted.square().mul_(alpha).neg_().exp_()  # g_k; in place: fewer [n_edges, k] tensors
        cut, cut_slope = cosine_cutoff_and_derivative(distances, cutoff)
        slopes = values * cut_slope[:, None]
        values.mul_(cut[:, None])
        slopes.sub_(alpha.mul_(shifted).mul_(values).mul_(2.0))
        return values, slopes


def gaussians(distances: torch.Tensor, centres: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """exp(-alpha (r - r_s)^2) for distances [n] and per-edge centres and widths [n, n_radial]."""
    shifted = distances[:, None] - centres
    return torch.exp(-alpha * shifted * shifted)


def cut_gaussians(
    distances: torch.Tensor,
    neighbour_species: torch.Tensor,
    centres: torch.Tensor,
    alpha: torch.Tensor,
    cutoff: float,
) -> torch.Tensor:
    """f_c(r) g_k(r) per edge, [n_edges, n_radial], with the [n_species, n_radial] centres and widths of
    each edge's neighbour species (plain operations: autograd keeps its intermediates)."""
    gaussian = gaussians(distances, centres[neighbour_species], alpha[neighbour_species])
    return gaussian * cosine_cutoff(distances, cutoff)[:, None]


class CutGaussians(torch.autograd.Function):
    """f_c(r) g_k(r) per edge, [n_edges, n_radial], keeping only its inputs for the backward pass.

    Autograd would keep five [n_edges, n_radial] intermediates (the shifted distances, the gathered widths
    and centres, products and the Gaussians); the backward forms them again from the distances, the
    species and the [n_species, n_radial] parameters, with differentiable operations, so that a force loss
    can still be backpropagated (training).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(
        distances: torch.Tensor,
        neighbour_species: torch.Tensor,
        centres: torch.Tensor,
        alpha: torch.Tensor,
        cutoff: float,
    ) -> torch.Tensor:
        return cut_gaussians(distances, neighbour_species, centres, alpha, cutoff)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        distances, neighbour_species, centres, alpha, cutoff = inputs
        ctx.save_for_backward(distances, neighbour_species, centres, alpha)
        ctx.cutoff = cutoff

    @staticmethod
    def backward(ctx: Any, d_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        distances, neighbour_species, centres, alpha = ctx.saved_tensors
        per_edge_alpha = alpha[neighbour_species]
        shifted = distances[:, None] - centres[neighbour_species]
        gaussian = torch.exp(-per_edge_alpha * shifted * shifted)
        cut, d_cut = cosine_cutoff_and_derivative(distances, ctx.cutoff)
        weighted = d_output * gaussian  # dL/d(f_c g) g
        d_distances = d_centres = d_alpha = None
        if ctx.needs_input_grad[0]:  # d(f_c g)/dr = f_c' g - 2 alpha (r - r_s) f_c g
            d_distances = (weighted * (d_cut[:, None] - 2.0 * per_edge_alpha * shifted * cut[:, None])).sum(1)
        if ctx.needs_input_grad[2]:  # d/dr_s = 2 alpha (r - r_s) f_c g
            per_edge = weighted * (2.0 * per_edge_alpha * shifted * cut[:, None])
            d_centres = torch.zeros_like(centres).index_add(0, neighbour_species, per_edge)
        if ctx.needs_input_grad[3]:  # d/dalpha = -(r - r_s)^2 f_c g
            per_edge = -weighted * shifted * shifted * cut[:, None]
            d_alpha = torch.zeros_like(alpha).index_add(0, neighbour_species, per_edge)
        return d_distances, None, d_centres, d_alpha, None


@torch.jit.unused
def _cut_gaussians(
    distances: torch.Tensor,
    neighbour_species: torch.Tensor,
    centres: torch.Tensor,
    alpha: torch.Tensor,
    cutoff: float,
) -> torch.Tensor:
    """``CutGaussians.apply`` (TorchScript cannot call an autograd Function; a scripted model uses the
    plain operations)."""
    return CutGaussians.apply(distances, neighbour_species, centres, alpha, cutoff)  # type: ignore[no-any-return]
