"""Forces and stress against central finite differences (float64), and smoothness at the cutoff."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from conftest import random_cluster, random_crystal, tiny_model

from reann_driver import REANNCalculator


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("angular", ["cartesian", "spherical"])
def test_forces_match_finite_differences(seed: int, angular: str) -> None:
    atoms = random_crystal(5, "HO", seed=seed) if seed else random_cluster(5, seed=seed)
    atoms.calc = REANNCalculator(tiny_model(angular=angular, seed=seed))
    analytic = atoms.get_forces()
    numeric = calculate_numerical_forces(atoms, eps=1e-5)
    assert np.abs(analytic).max() > 1e-4  # a vacuous comparison would pass with zero forces (tol. 1e-6)
    assert np.abs(analytic - numeric).max() < 1e-6


@pytest.mark.parametrize("seed", [2, 3])
def test_stress_matches_finite_differences(seed: int) -> None:
    atoms = random_crystal(5, "HO", seed=seed)
    atoms.calc = REANNCalculator(tiny_model(seed=seed))
    analytic = atoms.get_stress(voigt=False)
    numeric = calculate_numerical_stress(atoms, eps=1e-6, voigt=False)
    assert np.abs(analytic).max() > 1e-4
    assert np.abs(analytic - numeric).max() < 1e-6


def test_energy_and_forces_continuous_across_the_cutoff() -> None:
    model = tiny_model(cutoff=3.0)
    calculator = REANNCalculator(model)

    def at(distance: float) -> tuple[float, np.ndarray]:
        atoms = Atoms("OHH", positions=[[0, 0, 0], [0.96, 0, 0], [0.96 + distance, 0.3, 0.0]])
        atoms.calc = calculator
        return atoms.get_potential_energy(), atoms.get_forces()

    inside_energy, inside_forces = at(3.0 - 1e-4)
    outside_energy, outside_forces = at(3.0 + 1e-4)
    far_energy, _ = at(3.0 + 0.5)
    assert abs(inside_energy - outside_energy) < 1e-10
    assert np.abs(inside_forces - outside_forces).max() < 1e-8
    assert outside_energy == pytest.approx(far_energy, abs=1e-12)  # beyond r_c the third atom is invisible
    assert abs(at(3.0 - 0.3)[0] - far_energy) > 1e-6  # ... but inside it matters
