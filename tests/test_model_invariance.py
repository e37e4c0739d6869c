"""Symmetries of the model: rotation, translation, permutation, periodic images, batching, precision."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from conftest import random_cluster, random_crystal, tiny_model
from e3nn.o3 import rand_matrix

from reann_driver.model import graph_from_atoms


def evaluate(model, structures: list[Atoms], stress: bool = False) -> dict[str, np.ndarray]:
    graph = graph_from_atoms(structures, model.species, model.cutoff, dtype=model.dtype)
    return {k: v.detach().double().numpy() for k, v in model(graph, forces=True, stress=stress).items()}


@pytest.mark.parametrize("angular", ["cartesian", "spherical"])
@pytest.mark.parametrize("periodic", [False, True])
def test_rotation_invariance(angular: str, periodic: bool) -> None:
    model = tiny_model(angular=angular)
    atoms = random_crystal(seed=1) if periodic else random_cluster(seed=1)
    reference = evaluate(model, [atoms], stress=periodic)
    torch.manual_seed(5)
    for _ in range(3):
        rotation = rand_matrix(dtype=torch.float64).numpy()
        rotated = atoms.copy()
        rotated.positions = atoms.positions @ rotation.T
        if periodic:
            rotated.cell = atoms.cell.array @ rotation.T
        result = evaluate(model, [rotated], stress=periodic)
        assert np.allclose(result["energy"], reference["energy"], rtol=0, atol=1e-10)
        assert np.allclose(result["atomic_energies"], reference["atomic_energies"], atol=1e-10)
        assert np.allclose(result["forces"], reference["forces"] @ rotation.T, atol=1e-9)
        if periodic:
            assert np.allclose(result["stress"][0], rotation @ reference["stress"][0] @ rotation.T, atol=1e-9)


def test_rotation_changes_nothing_but_does_change_unsymmetric_models() -> None:
    """Guard against a vacuous invariance test: a reflection of a chiral cluster keeps E, but moving one
    atom does change it."""
    model = tiny_model()
    atoms = random_cluster(seed=2)
    moved = atoms.copy()
    moved.positions[0] += [0.05, -0.02, 0.03]
    assert abs(evaluate(model, [moved])["energy"][0] - evaluate(model, [atoms])["energy"][0]) > 1e-6
    mirrored = atoms.copy()
    mirrored.positions[:, 0] *= -1.0
    assert np.allclose(evaluate(model, [mirrored])["energy"], evaluate(model, [atoms])["energy"], atol=1e-10)


@pytest.mark.parametrize("periodic", [False, True])
def test_translation_invariance(periodic: bool) -> None:
    model = tiny_model()
    atoms = random_crystal(seed=4) if periodic else random_cluster(seed=4)
    reference = evaluate(model, [atoms])
    shifted = atoms.copy()
    shifted.positions += np.array([1.7, -3.1, 0.45])
    result = evaluate(model, [shifted])
    assert np.allclose(result["energy"], reference["energy"], atol=1e-10)
    assert np.allclose(result["forces"], reference["forces"], atol=1e-10)


def test_permutation_of_like_atoms() -> None:
    model = tiny_model()
    atoms = random_crystal(7, "OHH", seed=6)
    reference = evaluate(model, [atoms], stress=True)
    permutation = np.random.default_rng(0).permutation(len(atoms))
    permuted = atoms[permutation]
    result = evaluate(model, [permuted], stress=True)
    assert np.allclose(result["energy"], reference["energy"], atol=1e-10)
    assert np.allclose(result["forces"], reference["forces"][permutation], atol=1e-10)
    assert np.allclose(result["atomic_energies"], reference["atomic_energies"][permutation], atol=1e-10)
    assert np.allclose(result["stress"], reference["stress"], atol=1e-10)


def test_wrapped_and_unwrapped_positions_agree() -> None:
    model = tiny_model()
    atoms = random_crystal(seed=7)
    unwrapped = atoms.copy()
    rng = np.random.default_rng(1)
    unwrapped.positions += rng.integers(-3, 4, (len(atoms), 3)) @ atoms.cell.array
    reference = evaluate(model, [atoms], stress=True)
    result = evaluate(model, [unwrapped], stress=True)
    for key in ("energy", "forces", "stress", "atomic_energies"):
        assert np.allclose(result[key], reference[key], atol=1e-10), key


def test_supercell_is_extensive() -> None:
    """E(2x2x2) = 8 E(cell), for a cell whose edges are shorter than the cutoff (many images)."""
    model = tiny_model(cutoff=4.0)
    atoms = random_crystal(4, "HO", seed=8, scale=2.6)
    single = evaluate(model, [atoms], stress=True)
    supercell = evaluate(model, [atoms.repeat((2, 2, 2))], stress=True)
    assert np.isclose(supercell["energy"][0], 8 * single["energy"][0], rtol=1e-12, atol=1e-9)
    assert np.allclose(supercell["forces"][: len(atoms)], single["forces"], atol=1e-9)
    assert np.allclose(supercell["stress"], single["stress"], atol=1e-10)


def test_results_identical_alone_or_in_a_batch() -> None:
    model = tiny_model()
    structures = [random_crystal(seed=9), random_cluster(seed=10), random_crystal(6, "OHH", seed=11)]
    batched = evaluate(model, structures, stress=True)
    start = 0
    for index, atoms in enumerate(structures):
        alone = evaluate(model, [atoms], stress=True)
        stop = start + len(atoms)
        # identical up to float64 summation order (padding changes the blocking of the matrix products)
        assert np.allclose(batched["energy"][index], alone["energy"][0], rtol=1e-13, atol=0)
        assert np.allclose(batched["forces"][start:stop], alone["forces"], rtol=1e-12, atol=1e-12)
        assert np.allclose(
            batched["stress"][index], alone["stress"][0], rtol=1e-12, atol=1e-12, equal_nan=True
        )
        start = stop


def test_float32_agrees_with_float64() -> None:
    model64 = tiny_model()
    model32 = tiny_model(dtype=torch.float32)
    atoms = random_crystal(seed=12)
    high = evaluate(model64, [atoms], stress=True)
    low = evaluate(model32, [atoms], stress=True)
    assert model32.dtype == torch.float32
    assert np.allclose(low["energy"], high["energy"], rtol=1e-5, atol=1e-4)
    assert np.allclose(low["forces"], high["forces"], rtol=1e-4, atol=1e-4)
    assert np.allclose(low["stress"], high["stress"], rtol=1e-4, atol=1e-5)


def test_float32_model_sums_structure_energies_in_float64() -> None:
    model = tiny_model(dtype=torch.float32)
    model.set_atomic_energies([-400.0, -2000.0])  # large per-atom energies, as in real data
    big = random_crystal(seed=12).repeat((6, 6, 6))  # 1728 atoms
    graph = graph_from_atoms([big, random_crystal(seed=3)], model.species, model.cutoff, dtype=torch.float32)
    output = model(graph, forces=True)
    atomic = output["atomic_energies"]
    assert atomic.dtype == torch.float32 and output["energy"].dtype == torch.float64
    exact = torch.zeros(2, dtype=torch.float64).index_add(0, graph.batch, atomic.double())
    assert torch.equal(output["energy"], exact)
    naive = torch.zeros(2, dtype=torch.float32).index_add(0, graph.batch, atomic)  # what float32 gives
    assert float((naive.double() - exact).abs()[0]) > 1e-3  # so the float64 sum is what matters here


def test_unknown_element_is_a_clear_error() -> None:
    model = tiny_model()
    with pytest.raises(ValueError, match="element\\(s\\) C not in the model's species"):
        evaluate(model, [Atoms("CH", positions=[[0, 0, 0], [0, 0, 1.1]])])
