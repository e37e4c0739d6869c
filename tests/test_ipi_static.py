"""The i-PI evaluator's kept neighbour slots (skin, fixed capacity) give the results of a fresh neighbour
list every call, rebuild only when needed, and survive capacity overflows and batch-size changes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import random_cluster, random_crystal, tiny_model

from reann_driver.ipi.evaluator import ANGSTROM_PER_BOHR, BatchEvaluator
from reann_driver.model import Committee


def trajectory(atoms, n_steps: int, step: float, seed: int) -> list[np.ndarray]:
    """Positions in Bohr of a random walk: small moves, then one large jump (forces a rebuild)."""
    rng = np.random.default_rng(seed)
    positions = [atoms.get_positions() / ANGSTROM_PER_BOHR]
    for k in range(n_steps):
        scale = step if k != n_steps // 2 else 10 * step
        positions.append(
            positions[-1] + rng.normal(scale=scale / ANGSTROM_PER_BOHR, size=positions[-1].shape)
        )
    return positions


@pytest.mark.parametrize("periodic", [True, False], ids=["crystal", "cluster"])
def test_kept_slots_equal_fresh_neighbour_lists(periodic: bool) -> None:
    model = tiny_model(iterations=2)
    atoms = random_crystal(8, seed=5) if periodic else random_cluster(8, seed=5)
    symbols = atoms.get_chemical_symbols()
    kept = BatchEvaluator(model, symbols, periodic=periodic, skin=0.6)
    fresh = BatchEvaluator(model, symbols, periodic=periodic, skin=None)
    cell = np.asarray(atoms.get_cell()).T / ANGSTROM_PER_BOHR  # i-PI h: lattice vectors as columns
    walks = [trajectory(atoms, 12, 0.03, seed) for seed in range(3)]
    for step in range(13):
        positions = np.stack([walk[step] for walk in walks])
        cells = np.stack([cell] * 3)
        expected, got = fresh.evaluate(cells, positions), kept.evaluate(cells, positions)
        np.testing.assert_allclose(got.energies, expected.energies, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got.forces, expected.forces, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got.virials, expected.virials, rtol=1e-12, atol=1e-12)
    assert kept.neighbours is not None
    assert 2 <= kept.neighbours[0].n_builds < 13  # reused between small moves, rebuilt after the jump
    assert np.abs(expected.forces).max() > 1e-4


def test_batch_size_change_and_capacity_overflow_rebuild() -> None:
    model = tiny_model()
    atoms = random_crystal(6, seed=2)
    symbols = atoms.get_chemical_symbols()
    kept = BatchEvaluator(model, symbols, periodic=True, skin=0.4)
    fresh = BatchEvaluator(model, symbols, periodic=True, skin=None)
    cell = np.asarray(atoms.get_cell()).T / ANGSTROM_PER_BOHR
    positions = atoms.get_positions() / ANGSTROM_PER_BOHR
    squeezed = positions.mean(axis=0) + 0.5 * (positions - positions.mean(axis=0))  # more neighbours
    for batch in ([positions], [positions, squeezed], [squeezed] * 3):
        cells, stacked = np.stack([cell] * len(batch)), np.stack(batch)
        np.testing.assert_allclose(
            kept.evaluate(cells, stacked).forces, fresh.evaluate(cells, stacked).forces, rtol=0, atol=1e-12
        )
    assert kept.neighbours is not None and kept.neighbours[0].n_builds == 3


def test_negative_skin_is_refused() -> None:
    with pytest.raises(ValueError, match="skin"):
        BatchEvaluator(tiny_model(), ["H", "O"], skin=-1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_replays_equal_the_cpu_path() -> None:
    model = tiny_model(iterations=2)
    atoms = random_crystal(8, seed=7)
    symbols = atoms.get_chemical_symbols()
    replayed = BatchEvaluator(model, symbols, periodic=True, device="cuda", skin=0.6, cuda_graphs=True)
    reference = BatchEvaluator(model, symbols, periodic=True, skin=None)
    cell = np.asarray(atoms.get_cell()).T / ANGSTROM_PER_BOHR
    walks = [trajectory(atoms, 8, 0.03, seed) for seed in range(4)]
    for step in range(9):
        positions, cells = np.stack([walk[step] for walk in walks]), np.stack([cell] * 4)
        got, expected = replayed.evaluate(cells, positions), reference.evaluate(cells, positions)
        np.testing.assert_allclose(got.energies, expected.energies, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(got.forces, expected.forces, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(got.virials, expected.virials, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("skin", [0.4, None], ids=["kept", "fresh"])
def test_blocks_of_structures_equal_one_pass(skin: float | None) -> None:
    """On the CPU a request goes through the model in blocks of whole structures (``pass_atoms``):
    the same results as one pass over all, through rebuilds and changes of the batch size."""
    model = tiny_model(iterations=2)
    atoms = random_crystal(6, seed=3)
    symbols = atoms.get_chemical_symbols()
    blocked = BatchEvaluator(model, symbols, skin=skin, pass_atoms=13)  # two structures per block
    whole = BatchEvaluator(model, symbols, skin=skin, pass_atoms=0)
    assert blocked.blocks(5) == [(0, 2), (2, 3), (3, 5)] and whole.blocks(5) == [(0, 5)]
    cell = np.asarray(atoms.get_cell()).T / ANGSTROM_PER_BOHR
    walks = [trajectory(atoms, 6, 0.03, seed) for seed in range(5)]
    for step, n_structures in enumerate((5, 5, 5, 2, 5, 1, 5)):
        positions = np.stack([walk[step] for walk in walks[:n_structures]])
        cells = np.stack([cell] * n_structures)
        expected, got = whole.evaluate(cells, positions), blocked.evaluate(cells, positions)
        np.testing.assert_allclose(got.energies, expected.energies, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got.forces, expected.forces, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got.virials, expected.virials, rtol=1e-12, atol=1e-12)
        assert blocked.neighbours is None or len(blocked.neighbours) == len(blocked.blocks(n_structures))
    assert np.abs(expected.forces).max() > 1e-4 and np.ptp(expected.energies) > 0


def test_default_blocks_and_refused_pass_sizes() -> None:
    model = tiny_model()
    symbols = random_crystal(4, seed=1).get_chemical_symbols()
    assert BatchEvaluator(model, symbols).pass_atoms == 1000  # CPU_PASS_ATOMS for a single CPU model
    assert BatchEvaluator(Committee([model, tiny_model(seed=1)]), symbols).pass_atoms == 0  # one pass
    with pytest.raises(ValueError, match="pass_atoms"):
        BatchEvaluator(model, symbols, pass_atoms=-1)
    with pytest.raises(ValueError, match="single model"):
        BatchEvaluator(Committee([model, tiny_model(seed=1)]), symbols, pass_atoms=100)
