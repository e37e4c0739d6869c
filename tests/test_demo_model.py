"""The shipped CH4 demo model under ASE: a sensible minimum, and energy conservation in NVE dynamics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import units
from ase.build import molecule
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS

from reann_driver import REANNCalculator

DEMO_MODEL = Path(__file__).resolve().parents[1] / "examples" / "ch4_pimd" / "model.pt"


def test_demo_model_minimum_is_tetrahedral_methane() -> None:
    atoms = molecule("CH4")
    atoms.positions += np.random.default_rng(0).normal(0.0, 0.03, atoms.positions.shape)
    atoms.calc = REANNCalculator(DEMO_MODEL)
    BFGS(atoms, logfile=None).run(fmax=1e-4, steps=200)
    bonds = atoms.get_distances(0, [1, 2, 3, 4])
    assert np.allclose(bonds, bonds.mean(), atol=1e-3)
    assert 1.06 < bonds.mean() < 1.10  # GFN2-xTB, which the model was trained on: 1.082 Å


def test_nve_dynamics_conserves_energy() -> None:
    atoms = molecule("CH4")
    atoms.calc = REANNCalculator(DEMO_MODEL)
    MaxwellBoltzmannDistribution(atoms, temperature_K=600, rng=np.random.default_rng(1))
    Stationary(atoms)
    ZeroRotation(atoms)
    totals = []
    dynamics = VelocityVerlet(atoms, timestep=0.25 * units.fs)
    for _ in range(400):  # 100 fs: about three C-H stretch periods
        dynamics.run(1)
        totals.append(atoms.get_potential_energy() + atoms.get_kinetic_energy())
    kinetic_scale = 1.5 * len(atoms) * units.kB * 600
    assert np.ptp(totals) < 2e-3 * kinetic_scale  # Verlet's bounded error at this step, no drift
    assert abs(totals[-1] - totals[0]) < 1e-3 * kinetic_scale
