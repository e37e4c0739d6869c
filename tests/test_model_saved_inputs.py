"""The two autograd Functions that keep only their inputs for the backward pass (``density.OrbitalSums``,
``radial.CutGaussians``): first and second derivatives against finite differences (``gradcheck``,
``gradgradcheck``: a force loss is backpropagated through their backward), values equal to the plain
operations that a scripted model uses, and the model's force-loss gradients equal to those of the plain
operations."""

from __future__ import annotations

import torch
from conftest import random_crystal, tiny_model
from torch.autograd import gradcheck, gradgradcheck

from reann_driver.model import density, graph_from_atoms
from reann_driver.model.cutoff import cosine_cutoff
from reann_driver.model.density import OrbitalSums, orbital_sums
from reann_driver.model.lean import LEAN_SLOTS, keeps_only_inputs
from reann_driver.model.radial import CutGaussians, gaussians


def test_orbital_sums_derivatives() -> None:
    generator = torch.Generator().manual_seed(0)
    n_atoms, capacity, n_angular, n_radial = 5, 4, 10, 3
    radial = torch.randn(n_atoms, capacity, n_radial, dtype=torch.float64, generator=generator)
    angular = torch.randn(n_atoms, n_angular, capacity, dtype=torch.float64, generator=generator)
    coefficients = torch.randn(n_atoms, n_radial, dtype=torch.float64, generator=generator)
    neighbour = torch.randint(0, n_atoms, (n_atoms, capacity), generator=generator)
    inputs = tuple(x.requires_grad_(True) for x in (radial, angular, coefficients))

    def function(*args: torch.Tensor) -> torch.Tensor:
        return OrbitalSums.apply(*args, neighbour)

    assert gradcheck(function, inputs) and gradgradcheck(function, inputs)
    assert torch.equal(function(*inputs), orbital_sums(*inputs, neighbour))


def test_cut_gaussians_derivatives() -> None:
    generator = torch.Generator().manual_seed(1)
    distances = torch.rand(40, dtype=torch.float64, generator=generator) * 6.0  # inside and beyond r_c = 5
    species = torch.randint(0, 2, (40,), generator=generator)
    centres = torch.rand(2, 4, dtype=torch.float64, generator=generator) * 5.0
    alpha = torch.rand(2, 4, dtype=torch.float64, generator=generator) + 0.2
    inputs = tuple(x.requires_grad_(True) for x in (distances, centres, alpha))

    def function(r: torch.Tensor, c: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return CutGaussians.apply(r, species, c, a, 5.0)

    assert gradcheck(function, inputs) and gradgradcheck(function, inputs)
    plain = gaussians(distances, centres[species], alpha[species]) * cosine_cutoff(distances, 5.0)[:, None]
    assert torch.equal(function(*inputs), plain)
    assert bool((function(*inputs)[distances >= 5.0] == 0).all())


def test_lean_backward_from_many_slots_on() -> None:
    assert not keeps_only_inputs(LEAN_SLOTS - 1) and keeps_only_inputs(LEAN_SLOTS)


def test_force_loss_gradients_equal_the_plain_operations(monkeypatch) -> None:
    model = tiny_model(iterations=2).train()
    graph = graph_from_atoms([random_crystal(8, seed=4)], model.species, model.cutoff)

    def gradients() -> list[torch.Tensor]:
        model.zero_grad()
        output = model(graph, forces=True)
        loss = (output["forces"] ** 2).sum() + output["energy"].sum()
        loss.backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    monkeypatch.setattr("reann_driver.model.lean.LEAN_SLOTS", 0)  # the lean backward at any size
    calls = []
    original = density._orbital_sums_saving_inputs
    monkeypatch.setattr(density, "_orbital_sums_saving_inputs", lambda *a: calls.append(1) or original(*a))
    with_functions = gradients()
    assert len(calls) == 3  # T + 1 = 3 densities through the Function
    monkeypatch.setattr("reann_driver.model.lean.LEAN_SLOTS", 1 << 62)  # autograd's backward
    plain = gradients()
    assert len(calls) == 3
    assert len(with_functions) == len(plain) > 10
    for a, b in zip(with_functions, plain):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
