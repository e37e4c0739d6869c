"""The energy of atom i depends on atom j iff j is within T + 1 neighbour hops of i."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from conftest import tiny_model

from reann_driver.model import graph_from_atoms


@pytest.mark.parametrize("iterations", [0, 1, 2])
def test_dependence_reaches_exactly_t_plus_one_hops(iterations: int) -> None:
    cutoff, spacing, n_atoms = 3.0, 2.1, 9  # only nearest neighbours are within r_c (2 x 2.1 > 3.0)
    model = tiny_model(species=("H",), iterations=iterations, cutoff=cutoff)
    rng = np.random.default_rng(0)
    positions = np.array([[spacing * k, 0.0, 0.0] for k in range(n_atoms)]) + 0.1 * rng.normal(
        size=(n_atoms, 3)
    )
    atoms = Atoms("H" * n_atoms, positions=positions)
    graph = graph_from_atoms([atoms], model.species, model.cutoff)
    assert graph.edge_index.shape[1] == 2 * (n_atoms - 1)  # a chain: each bond seen from both ends
    positions_tensor = graph.positions.clone().requires_grad_(True)
    atomic = model.atomic_energy(graph, positions_tensor, graph.cell)
    for i in range(n_atoms):
        (gradient,) = torch.autograd.grad(atomic[i], positions_tensor, retain_graph=True)
        depends = gradient.abs().sum(dim=1) > 1e-12
        expected = np.abs(np.arange(n_atoms) - i) <= iterations + 1
        assert depends.numpy().tolist() == expected.tolist(), f"atom {i}"
