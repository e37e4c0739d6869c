"""Per-element neural networks: residual MLPs for atomic energies and orbital-coefficient updates."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "softplus": nn.Softplus,
    "identity": nn.Identity,
}


def make_activation(name: str) -> nn.Module:
    """A smooth activation by name (one of ``ACTIVATIONS``)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}") from None


class ResidualBlock(nn.Module):
    """x + act(Linear(norm(x))): a pre-norm residual layer of constant width."""

    def __init__(self, width: int, activation: str, layer_norm: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width) if layer_norm else nn.Identity()
        self.linear = nn.Linear(width, width)
        self.activation = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.activation(self.linear(self.norm(x)))


class ResidualMLP(nn.Module):
    """Linear(in, h0) -> act -> [residual block or width change] ... -> Linear(h_last, out).

    Layers of equal width are residual blocks. ``zero_last`` initialises the output layer to zero, so the
    network starts as the constant function 0 (used for the coefficient updates, so that training starts
    from EANN).
    """

    def __init__(
        self,
        n_in: int,
        hidden: Sequence[int],
        n_out: int,
        activation: str = "silu",
        layer_norm: bool = False,
        zero_last: bool = False,
    ) -> None:
        super().__init__()
        if not hidden:
            raise ValueError("hidden must list at least one layer width")
        layers: list[nn.Module] = [nn.Linear(n_in, hidden[0]), make_activation(activation)]
        for previous, width in pairwise(hidden):
            if previous == width:
                layers.append(ResidualBlock(width, activation, layer_norm))
            else:
                layers += [nn.Linear(previous, width), make_activation(activation)]
        self.body = nn.Sequential(*layers)
        self.output = nn.Linear(hidden[-1], n_out)
        if zero_last:
            nn.init.zeros_(self.output.weight)
            nn.init.zeros_(self.output.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.body(x))


class ElementNetworks(nn.Module):
    """One ``ResidualMLP`` per chemical element; atom a is sent through the network of its element."""

    def __init__(
        self, n_species: int, n_in: int, hidden: Sequence[int], n_out: int, **kwargs: object
    ) -> None:
        super().__init__()
        self.n_out = n_out
        self.networks = nn.ModuleList(
            ResidualMLP(n_in, hidden, n_out, **kwargs)  # type: ignore[arg-type]
            for _ in range(n_species)
        )

    def forward(self, x: torch.Tensor, groups: Sequence[torch.Tensor]) -> torch.Tensor:
        """x [n_atoms, n_in]; groups[s]: indices of the atoms of species s. Returns [n_atoms, n_out]."""
        out = x.new_zeros(x.shape[0], self.n_out)
        for network, index in zip(self.networks, groups):
            if index.numel():
                out = out.index_copy(0, index, network(x.index_select(0, index)))
        return out
