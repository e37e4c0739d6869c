"""Per-element neural networks for atomic energies and orbital-coefficient updates.

Two layouts share one interface (``ResidualMLP``):

* ``"reference"`` (default), the block of the original REANN code (``reann/src/MODEL.py``):
  Linear(in, h) -> x + [(act -> LayerNorm -> Linear) ... (act -> LayerNorm -> Linear_0)](x) -> act
  -> Linear_0(h, out), Xavier-initialised hidden layers, the last layer of the residual branch and the
  output layer zero, so that the network starts as the constant 0 and the residual branch as the identity.
* ``"pre_norm"`` (reann-driver 0.1): Linear(in, h0) -> act -> [x + act(Linear(norm(x)))] ...
  -> Linear(h, out).

Every layer also has ``forward_saving(x, tape)`` and ``vjp(d_out, tape)``: the same output, with what its
vector-Jacobian product needs pushed on ``tape``, and the gradient with respect to its input, popped back
in reverse order. ``REANN.adjoint_pass`` differentiates the networks this way, without autograd (and
without its per-node bookkeeping, the larger part of the networks' cost for a few hundred atoms).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn


class Linear(nn.Linear):
    """``nn.Linear`` with its input gradient: dL/dx = dL/d(out) W."""

    @torch.jit.export
    def forward_saving(self, x: torch.Tensor, tape: list[torch.Tensor]) -> torch.Tensor:
        return nn.functional.linear(x, self.weight, self.bias)

    @torch.jit.export
    def vjp(self, d_out: torch.Tensor, tape: list[torch.Tensor]) -> torch.Tensor:
        return d_out @ self.weight


class LayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` keeping its input, mean and 1/std for ATen's layer-norm backward."""

    @torch.jit.export
    def forward_saving(self, x: torch.Tensor, tape: list[torch.Tensor]) -> torch.Tensor:
        out, mean, rstd = torch.ops.aten.native_layer_norm(x, [x.shape[-1]], self.weight, self.bias, self.eps)
        tape.extend([x, mean, rstd])
        return out

    @torch.jit.export
    def vjp(self, d_out: torch.Tensor, tape: list[torch.Tensor]) -> torch.Tensor:
        rstd, mean, x = tape.pop(), tape.pop(), tape.pop()
        gradients = torch.ops.aten.native_layer_norm_backward(
            d_out, x, [x.shape[-1]], mean, rstd, self.weight, self.bias, [True, False, False]
        )
        return gradients[0]


class SiLU(nn.SiLU):
    @torch.jit.export
    def forward_saving(self, x: torch.Tensor, tape: list[torch.Tensor]) -> torch.Tensor:
        tape.append(x)
        return nn.functional.silu(x)

    @torch.jit.export
    def vjp(self, d_out: torch.Tensor, tape: list[torch.Tensor]) -> torch.Tensor:
        return torch.ops.aten.silu_backward(d_out, tape.pop())


class Tanh(nn.Tanh):
    @torch.jit.export
    def forward_saving(self, x: torch.Tensor, tape: list[torch.Tensor]) -> torch.Tensor:
        out = torch.tanh(x)
        tape.append(out)
        return out

    @torch.jit.export
    def vjp(self, d_out: torch.Tensor, tape: list[torch.Tensor]) -> torch.Tensor:
        return torch.ops.aten.tanh_backward(d_out, tape.pop())


class GELU(nn.GELU):
    @torch.jit.export
    def forward_saving(self, x: torch.Tensor, tape: list[torch.Tensor]) -> torch.Tensor:
        tape.append(x)
        return nn.functional.gelu(x, approximate=self.approximate)

    @torch.jit.export
    def vjp(self, d_out: torch.Tensor, tape: list[torch.Tensor]) -> torch.Tensor:
        return torch.ops.aten.gelu_backward(d_out, tape.pop(), approximate=self.approximate)


class Softplus(nn.Softplus):
    @torch.jit.export
    def forward_saving(self, x: torch.Tensor, tape: list[torch.Tensor]) -> torch.Tensor:
        tape.append(x)
        return nn.functional.softplus(x, self.beta, self.threshold)

    @torch.jit.export
    def vjp(self, d_out: torch.Tensor, tape: list[torch.Tensor]) -> torch.Tensor:
        return torch.ops.aten.softplus_backward(d_out, tape.pop(), self.beta, self.threshold)


class Identity(nn.Identity):
    @torch.jit.export
    def forward_saving(self, x: torch.Tensor, tape: list[torch.Tensor]) -> torch.Tensor:
        return x

    @torch.jit.export
    def vjp(self, d_out: torch.Tensor, tape: list[torch.Tensor]) -> torch.Tensor:
        return d_out


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "silu": SiLU,
    "tanh": Tanh,
    "gelu": GELU,
    "softplus": Softplus,
    "identity": Identity,
}
ACTIVATION_NAMES = (*ACTIVATIONS, "relu_like")
LAYOUTS = ("reference", "pre_norm")


class ReluLike(nn.Module):
    """alpha * silu(beta * x) with trainable per-neuron alpha (init 1) and beta (init 1/n_in): the
    ``Relu_like`` activation of the original REANN code. The small initial beta keeps silu near its linear
    regime at the start of training whatever the scale of the inputs."""

    def __init__(self, n_in: int, width: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(width))
        self.beta = nn.Parameter(torch.full((width,), 1.0 / n_in))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.alpha * nn.functional.silu(self.beta * x)

    @torch.jit.export
    def forward_saving(self, x: torch.Tensor, tape: list[torch.Tensor]) -> torch.Tensor:
        scaled = self.beta * x
        tape.append(scaled)
        return self.alpha * nn.functional.silu(scaled)

    @torch.jit.export
    def vjp(self, d_out: torch.Tensor, tape: list[torch.Tensor]) -> torch.Tensor:
        return torch.ops.aten.silu_backward(d_out, tape.pop()) * (self.alpha * self.beta)


def make_activation(name: str, n_in: int = 1, width: int = 1) -> nn.Module:
    """An activation by name (``ACTIVATION_NAMES``); ``relu_like`` needs the layer's fan-in and width."""
    if name == "relu_like":
        return ReluLike(n_in, width)
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"activation must be one of {sorted(ACTIVATION_NAMES)}, got {name!r}") from None


def _xavier(linear: Linear) -> Linear:
    nn.init.xavier_uniform_(linear.weight)
    nn.init.zeros_(linear.bias)
    return linear


def _zero(linear: Linear) -> Linear:
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)
    return linear


class PreNormBlock(nn.Module):
    """x + act(Linear(norm(x))): a pre-norm residual layer of constant width (layout ``pre_norm``)."""

    def __init__(self, width: int, activation: str, layer_norm: bool) -> None:
        super().__init__()
        self.norm = LayerNorm(width) if layer_norm else Identity()
        self.linear = Linear(width, width)
        self.activation = make_activation(activation, width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.activation(self.linear(self.norm(x)))

    @torch.jit.export
    def forward_saving(self, x: torch.Tensor, tape: list[torch.Tensor]) -> torch.Tensor:
        branch = self.norm.forward_saving(x, tape)
        branch = self.linear.forward_saving(branch, tape)
        return x + self.activation.forward_saving(branch, tape)  # type: ignore[operator]

    @torch.jit.export
    def vjp(self, d_out: torch.Tensor, tape: list[torch.Tensor]) -> torch.Tensor:
        d_branch = self.activation.vjp(d_out, tape)  # type: ignore[operator]
        d_branch = self.linear.vjp(d_branch, tape)
        return d_out + self.norm.vjp(d_branch, tape)


class ReferenceBlock(nn.Module):
    """x + branch(x), branch = (act -> LayerNorm -> Linear) per hidden layer, widths h0 -> h1 ... -> h0, the
    last Linear zero (layout ``reference``; the residual block of the original REANN code)."""

    def __init__(self, hidden: Sequence[int], n_in: int, activation: str, layer_norm: bool) -> None:
        super().__init__()
        widths = [*hidden, hidden[0]]
        layers: list[nn.Module] = []
        fan_in = n_in
        for index, (width, following) in enumerate(pairwise(widths)):
            layers.append(make_activation(activation, fan_in, width))
            if layer_norm:
                layers.append(LayerNorm(width))
            last = index == len(widths) - 2
            layers.append(_zero(Linear(width, following)) if last else _xavier(Linear(width, following)))
            fan_in = width
        self.branch = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.branch(x)

    @torch.jit.export
    def forward_saving(self, x: torch.Tensor, tape: list[torch.Tensor]) -> torch.Tensor:
        branch = x
        for layer in self.branch:
            branch = layer.forward_saving(branch, tape)  # type: ignore[operator]
        return x + branch

    @torch.jit.export
    def vjp(self, d_out: torch.Tensor, tape: list[torch.Tensor]) -> torch.Tensor:
        d_branch = d_out
        for layer in self.branch[::-1]:  # type: ignore[attr-defined]
            d_branch = layer.vjp(d_branch, tape)
        return d_out + d_branch


class ResidualMLP(nn.Module):
    """A residual network from ``n_in`` features to ``n_out`` outputs (see the module docstring).

    The ``reference`` layout starts as the constant 0 (zero output layer); in the ``pre_norm`` layout
    ``zero_last`` does the same, otherwise the output layer has PyTorch's default initialisation.
    """

    def __init__(
        self,
        n_in: int,
        hidden: Sequence[int],
        n_out: int,
        activation: str = "relu_like",
        layer_norm: bool = True,
        zero_last: bool = False,
        layout: str = "reference",
    ) -> None:
        super().__init__()
        if not hidden:
            raise ValueError("hidden must list at least one layer width")
        if layout not in LAYOUTS:
            raise ValueError(f"network layout must be one of {LAYOUTS}, got {layout!r}")
        if layout == "reference":
            layers: list[nn.Module] = [
                _xavier(Linear(n_in, hidden[0])),
                ReferenceBlock(hidden, n_in, activation, layer_norm),
                make_activation(activation, hidden[0], hidden[0]),
            ]
            self.body = nn.Sequential(*layers)
            self.output = _zero(Linear(hidden[0], n_out))
        else:
            layers = [Linear(n_in, hidden[0]), make_activation(activation, n_in, hidden[0])]
            for previous, width in pairwise(hidden):
                if previous == width:
                    layers.append(PreNormBlock(width, activation, layer_norm))
                else:
                    layers += [Linear(previous, width), make_activation(activation, previous, width)]
            self.body = nn.Sequential(*layers)
            self.output = Linear(hidden[-1], n_out)
        if zero_last:
            _zero(self.output)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.body(x))

    @torch.jit.export
    def forward_saving(self, x: torch.Tensor, tape: list[torch.Tensor]) -> torch.Tensor:
        for layer in self.body:
            x = layer.forward_saving(x, tape)  # type: ignore[operator]
        return self.output.forward_saving(x, tape)

    @torch.jit.export
    def vjp(self, d_out: torch.Tensor, tape: list[torch.Tensor]) -> torch.Tensor:
        d_x = self.output.vjp(d_out, tape)
        for layer in self.body[::-1]:  # type: ignore[attr-defined]
            d_x = layer.vjp(d_x, tape)
        return d_x


class ElementNetworks(nn.Module):
    """One ``ResidualMLP`` per chemical element; atom a is sent through the network of its element."""

    def __init__(
        self, n_species: int, n_in: int, hidden: Sequence[int], n_out: int, **kwargs: object
    ) -> None:
        super().__init__()
        self.n_in = n_in
        self.n_out = n_out
        self.networks = nn.ModuleList(
            ResidualMLP(n_in, hidden, n_out, **kwargs)  # type: ignore[arg-type]
            for _ in range(n_species)
        )

    def forward(self, x: torch.Tensor, groups: list[torch.Tensor]) -> torch.Tensor:
        """x [n_atoms, n_in]; groups[s]: indices of the atoms of species s. Returns [n_atoms, n_out]."""
        out = x.new_zeros(x.shape[0], self.n_out)
        for s, network in enumerate(self.networks):
            index = groups[s]
            if index.numel() > 0:
                out = out.index_copy(0, index, network(x.index_select(0, index)))
        return out

    @torch.jit.export
    def forward_saving(
        self, x: torch.Tensor, groups: list[torch.Tensor], tapes: list[list[torch.Tensor]]
    ) -> torch.Tensor:
        """``forward``, appending one tape per species to ``tapes`` for ``vjp`` (no autograd graph)."""
        out = x.new_zeros(x.shape[0], self.n_out)
        for s, network in enumerate(self.networks):
            tape: list[torch.Tensor] = []
            index = groups[s]
            if index.numel() > 0:
                out.index_copy_(0, index, network.forward_saving(x.index_select(0, index), tape))  # type: ignore[operator]
            tapes.append(tape)
        return out

    @torch.jit.export
    def vjp(
        self, d_out: torch.Tensor, groups: list[torch.Tensor], tapes: list[list[torch.Tensor]]
    ) -> torch.Tensor:
        """dL/dx [n_atoms, n_in] from dL/d(out) [n_atoms, n_out] and the tapes of ``forward_saving``
        (emptied)."""
        d_x = d_out.new_zeros(d_out.shape[0], self.n_in)
        for s, network in enumerate(self.networks):
            index = groups[s]
            if index.numel() > 0:
                d_x.index_copy_(0, index, network.vjp(d_out.index_select(0, index), tapes[s]))  # type: ignore[operator]
        return d_x
