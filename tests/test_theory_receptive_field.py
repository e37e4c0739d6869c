"""Receptive field (docs/theory/nonlocality.md): E_i depends on atom j iff j is within T + 1 hops.

A zigzag chain with bonds of 1.0 Å and second neighbours at ~1.93 Å; with r_c = 1.8 Å the cutoff graph is
a path, so the hop count is |i - j| and the receptive field (T + 1) r_c contains exactly T + 1 hops.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import randomised

import reann_driver
from reann_driver.model import build_graph

N_ATOMS = 12


def zigzag_chain(n: int, seed: int = 0) -> np.ndarray:
    angle = np.deg2rad(150.0)
    positions = np.array([[k * np.sin(angle / 2), (k % 2) * np.cos(angle / 2), 0.0] for k in range(n)])
    return positions + np.random.default_rng(seed).normal(0.0, 0.02, (n, 3))


@pytest.mark.parametrize("iterations", [0, 1, 2, 3])
def test_atomic_energy_depends_on_atoms_within_t_plus_one_hops(iterations: int) -> None:
    torch.manual_seed(iterations)
    model = reann_driver.REANN(
        ["H", "C"], cutoff=1.8, n_radial=4, l_max=1, iterations=iterations, hidden=(16,), dtype=torch.float64
    )
    randomised(model, iterations, scale=1.0)  # zero-initialised layers would make REANN equal EANN
    positions = zigzag_chain(N_ATOMS)
    distances = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    hops = np.abs(np.arange(N_ATOMS)[:, None] - np.arange(N_ATOMS)[None])
    assert np.array_equal(distances < 1.8, hops <= 1)  # the cutoff graph is the path
    species = np.random.default_rng(1).integers(0, 2, N_ATOMS)
    graph = build_graph(
        species=[species], positions=[positions], cells=[np.zeros((3, 3))], pbcs=[[False] * 3],
        cutoff=model.cutoff, dtype=torch.float64,
    )  # fmt: skip
    position = graph.positions.clone().requires_grad_(True)
    atomic = model.atomic_energy(graph, position, graph.cell)
    dependence = np.zeros((N_ATOMS, N_ATOMS))
    for i in range(N_ATOMS):
        (gradient,) = torch.autograd.grad(atomic[i], position, retain_graph=True)
        dependence[i] = gradient.norm(dim=1).numpy()
    inside = hops <= iterations + 1
    assert np.all(dependence[~inside] == 0.0)  # exactly: no path through the cutoff graph
    assert dependence[inside].min() > 1e-10 * dependence.max()  # generic weights: every atom in range counts
