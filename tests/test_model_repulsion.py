"""The ZBL pair repulsion (``model.pair_repulsion: zbl``): its formula, its switch-off at the sum of the
covalent radii, forces and stress against finite differences, invariances and scripting."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from ase.data import covalent_radii
from conftest import random_crystal, tiny_model
from e3nn import o3

from reann_driver import REANNCalculator
from reann_driver.model.neighbors import graph_from_atoms


def zbl_reference(z1: int, z2: int, r: float) -> float:
    """ZBL energy of one pair (eV) written out independently, times the DimeNet envelope (p = 6)."""
    a = 0.46850 / (z1**0.23 + z2**0.23)
    x = r / a
    phi = sum(c * np.exp(-d * x) for c, d in
              [(0.18175, 3.19980), (0.50986, 0.94229), (0.28022, 0.40290), (0.02817, 0.20162)])  # fmt: skip
    u = r / (covalent_radii[z1] + covalent_radii[z2])
    envelope = 1 - 28 * u**6 + 48 * u**7 - 21 * u**8 if u < 1 else 0.0
    return 14.399645 * z1 * z2 / r * phi * envelope


def dimer_energy(model, symbols: str, r: float) -> float:
    atoms = Atoms(symbols, positions=[[0, 0, 0], [r, 0, 0]])
    atoms.calc = REANNCalculator(model)
    return atoms.get_potential_energy()


@pytest.mark.parametrize(("symbols", "numbers"), [("CH", (6, 1)), ("HH", (1, 1))])
def test_dimer_energy_is_the_zbl_formula(symbols: str, numbers: tuple[int, int]) -> None:
    with_zbl = tiny_model(("H", "C"), pair_repulsion="zbl")
    without = tiny_model(("H", "C"), pair_repulsion="none")
    for r in (0.3, 0.5, 0.8, 1.0):
        difference = dimer_energy(with_zbl, symbols, r) - dimer_energy(without, symbols, r)
        assert difference == pytest.approx(zbl_reference(*numbers, r), rel=1e-10, abs=1e-12)
    assert zbl_reference(6, 1, 0.5) > 20.0  # the wall is really there: 23.6 eV at C-H 0.5 Å


def test_zbl_heavy_leaves_out_only_hydrogen_pairs() -> None:
    """``zbl_heavy``: the ZBL term of every pair but H-H, and nothing at all on H-H."""
    heavy = tiny_model(("H", "C"), pair_repulsion="zbl_heavy")
    without = tiny_model(("H", "C"), pair_repulsion="none")
    for r in (0.3, 0.5, 0.6):
        assert dimer_energy(heavy, "HH", r) == dimer_energy(without, "HH", r)
        difference = dimer_energy(heavy, "CH", r) - dimer_energy(without, "CH", r)
        assert difference == pytest.approx(zbl_reference(6, 1, r), rel=1e-10)
        difference = dimer_energy(heavy, "CC", r) - dimer_energy(without, "CC", r)
        assert difference == pytest.approx(zbl_reference(6, 6, r), rel=1e-10)


def test_switched_off_smoothly_at_the_sum_of_covalent_radii() -> None:
    """Nothing beyond r_max = r_cov(C) + r_cov(H); energy and force continuous there."""
    with_zbl = tiny_model(("H", "C"), pair_repulsion="zbl")
    without = tiny_model(("H", "C"), pair_repulsion="none")
    r_max = covalent_radii[6] + covalent_radii[1]
    for r in (r_max, r_max + 0.01, 2.0, 3.0):
        assert dimer_energy(with_zbl, "CH", r) == dimer_energy(without, "CH", r)

    def inside(step: float) -> float:
        return dimer_energy(with_zbl, "CH", r_max - step) - dimer_energy(without, "CH", r_max - step)

    assert 0 < inside(1e-3) < 1e-6
    assert inside(2e-3) / inside(1e-3) == pytest.approx(8.0, rel=0.02)  # vanishes like step^3 (C^2)


def compressed_ch4(seed: int) -> Atoms:
    rng = np.random.default_rng(seed)
    positions = [[0.0, 0.0, 0.0], [0.55, 0.1, 0.0], *rng.uniform(-1.2, 1.2, (3, 3))]
    return Atoms("CH4", positions=positions)


@pytest.mark.parametrize("repulsion", ["zbl", "zbl_heavy"])
@pytest.mark.parametrize("seed", [0, 1])
def test_forces_match_finite_differences(seed: int, repulsion: str) -> None:
    atoms = compressed_ch4(seed)
    atoms.calc = REANNCalculator(tiny_model(("H", "C"), pair_repulsion=repulsion, seed=seed))
    analytic = atoms.get_forces()
    assert np.abs(analytic).max() > 10.0  # the repulsion dominates: C-H at about 0.56 Å
    numeric = calculate_numerical_forces(atoms, eps=1e-6)
    assert np.abs(analytic - numeric).max() < 1e-5 * np.abs(analytic).max()


def test_stress_matches_finite_differences() -> None:
    atoms = random_crystal(4, "HC", seed=5, scale=2.2)
    atoms.calc = REANNCalculator(tiny_model(("H", "C"), pair_repulsion="zbl", cutoff=2.5))
    analytic = atoms.get_stress(voigt=False)
    numeric = calculate_numerical_stress(atoms, eps=1e-6, voigt=False)
    assert np.abs(analytic - numeric).max() < 1e-6 * max(1.0, np.abs(analytic).max())


def test_rotation_permutation_and_scripting() -> None:
    model = tiny_model(("H", "C"), pair_repulsion="zbl")
    atoms = compressed_ch4(3)
    torch.manual_seed(0)
    rotation = o3.rand_matrix(dtype=torch.float64).numpy()
    turned = atoms.copy()
    turned.positions = atoms.positions @ rotation.T
    permuted = atoms[[0, 3, 1, 4, 2]]
    energies = []
    for structure in (atoms, turned, permuted):
        structure.calc = REANNCalculator(model)
        energies.append(structure.get_potential_energy())
    assert energies[1] == pytest.approx(energies[0], abs=1e-10)
    assert energies[2] == pytest.approx(energies[0], abs=1e-10)
    graph = graph_from_atoms([atoms], model.species, model.cutoff)
    eager = model(graph)["energy"]
    scripted = torch.jit.script(model)(graph)["energy"]
    torch.testing.assert_close(scripted, eager, rtol=0, atol=1e-12)


def test_unknown_pair_repulsion_is_refused() -> None:
    with pytest.raises(ValueError, match="pair_repulsion"):
        tiny_model(("H", "C"), pair_repulsion="lj")
