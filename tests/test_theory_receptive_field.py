"""Receptive field (docs/theory/nonlocality.md): E_i depends on atom j iff j is within T + 1 hops.

Two cutoff graphs: a zigzag chain (bonds 1.0 Å, second neighbours ~1.93 Å, r_c = 1.8 Å: the path, hop count
|i - j|) and a branched cluster with rings, where the hop distance is not an index difference and many atoms
are reached along several paths of different lengths. Also: the energy of a periodic cell smaller than the
receptive field is exactly extensive (nonlocality.md, "a cost of periodic simulations").
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from theory_tools import cutoff_graph, float64_model, grown_cluster, hop_distances

import reann_driver
from reann_driver.model import build_graph, graph_from_atoms


def zigzag_chain(n: int, seed: int = 0) -> np.ndarray:
    angle = np.deg2rad(150.0)
    positions = np.array([[k * np.sin(angle / 2), (k % 2) * np.cos(angle / 2), 0.0] for k in range(n)])
    return positions + np.random.default_rng(seed).normal(0.0, 0.02, (n, 3))


def dependence(model: reann_driver.REANN, species: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """|dE_i / dx_j| for every pair (i, j), by automatic differentiation of the model's atomic energies."""
    graph = build_graph(
        species=[species], positions=[positions], cells=[np.zeros((3, 3))], pbcs=[[False] * 3],
        cutoff=model.cutoff, dtype=torch.float64,
    )  # fmt: skip
    graph.positions.requires_grad_(True)
    atomic = model(graph, forces=False)["atomic_energies"]
    rows = [
        torch.autograd.grad(atomic[i], graph.positions, retain_graph=True)[0] for i in range(len(species))
    ]
    return torch.stack(rows).norm(dim=2).numpy()


CHAIN = zigzag_chain(12)
BRANCHED = grown_cluster(14, seed=4, bond=1.1)


@pytest.mark.parametrize("iterations", [0, 1, 2, 3])
@pytest.mark.parametrize(
    ("positions", "cutoff"), [(CHAIN, 1.8), (BRANCHED, 2.0)], ids=["path-12", "branched-14"]
)
def test_atomic_energy_depends_on_atoms_within_t_plus_one_hops(
    positions: np.ndarray, cutoff: float, iterations: int
) -> None:
    model = float64_model(  # the package's default networks: relu_like, LayerNorm, reference layout
        ["H", "C"], cutoff, iterations, n_radial=4, hidden=(16,), n_orbitals=6, activation="relu_like",
        layer_norm=True, network_layout="reference", seed=iterations,
    )  # fmt: skip
    adjacency = cutoff_graph(positions, cutoff)
    hops = hop_distances(adjacency)
    if positions is CHAIN:
        assert np.array_equal(hops, np.abs(np.subtract.outer(np.arange(12), np.arange(12))))  # the path
    else:
        assert adjacency.sum() // 2 > len(positions) and hops.max() > iterations + 1  # rings, long enough
    species = np.random.default_rng(1).integers(0, 2, len(positions))
    found = dependence(model, species, positions)
    inside = hops <= iterations + 1
    assert np.all(found[~inside] == 0.0)  # exactly: no path through the cutoff graph
    assert found[inside].min() > 1e-10 * found.max()  # generic weights: every atom in range counts


def test_small_periodic_cell_is_exactly_extensive() -> None:
    """A 2-atom cell of 2.0 Å edge, r_c = 3 Å, T = 2 (receptive field 9 Å): each atom sees its own images
    through the chains, yet the 2x2x2 supercell, the same infinite crystal, has exactly 8 times the energy."""
    model = float64_model(["H", "C"], 3.0, 2, n_radial=3, hidden=(8,), n_orbitals=4, activation="silu")
    cell = bulk("CH", "rocksalt", a=2.8, cubic=False)  # fcc primitive cell: 2 atoms, edge 1.98 Å
    cell.rattle(0.05, seed=1)
    with torch.no_grad():
        energies = [
            float(model(graph_from_atoms([a], model.species, model.cutoff), forces=False)["energy"][0])
            for a in (cell, cell.repeat((2, 2, 2)))
        ]
    assert min(np.linalg.norm(cell.cell, axis=1)) < model.cutoff  # the images are inside r_c
    assert abs(energies[1] - 8 * energies[0]) < 1e-10 * abs(energies[1])
