"""Shared test helpers: tiny models with every parameter random, and small random structures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

import reann_driver


def randomised(model: reann_driver.REANN, seed: int = 0, scale: float = 0.3) -> reann_driver.REANN:
    """Give every zero-initialised parameter (output layers, the last layer of each residual branch,
    biases) random values, so that every network and the recursion really act: at initialisation the
    energy networks are constants and REANN equals EANN by design."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if not bool(parameter.any()):
                noise = torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
                parameter.copy_(scale * noise)
        noise = torch.randn(model.initial_coefficients.shape, generator=generator, dtype=torch.float64)
        model.initial_coefficients.add_(0.2 * noise)
        # the orthogonal initialisation gives every L and iteration the same mixing matrix: make them differ
        noise = torch.randn(model.density.mixing.shape, generator=generator, dtype=torch.float64)
        model.density.mixing.add_(0.1 * noise)
    return model


def tiny_model(
    species: tuple[str, ...] = ("H", "O"),
    iterations: int = 2,
    cutoff: float = 3.5,
    angular: str = "cartesian",
    dtype: torch.dtype = torch.float64,
    seed: int = 0,
    **kwargs: object,
) -> reann_driver.REANN:
    """A small REANN with random weights everywhere (float64 by default)."""
    torch.manual_seed(seed)
    options: dict = {"n_radial": 4, "l_max": 2, "hidden": (16, 16), **kwargs}
    model = reann_driver.REANN(
        list(species), cutoff=cutoff, iterations=iterations, angular=angular, **options
    )
    return randomised(model.to(torch.float64), seed).to(dtype).eval()


def random_cluster(n_atoms: int = 6, symbols: str = "HO", seed: int = 0, box: float = 4.0) -> Atoms:
    """A molecule-like cluster with atoms at least 0.8 Å apart (no cell, no periodicity)."""
    rng = np.random.default_rng(seed)
    positions: list[np.ndarray] = []
    while len(positions) < n_atoms:
        trial = rng.uniform(0.0, box, 3)
        if all(np.linalg.norm(trial - p) > 0.8 for p in positions):
            positions.append(trial)
    return Atoms([symbols[k % len(symbols)] for k in range(n_atoms)], positions=positions)


def random_crystal(n_atoms: int = 5, symbols: str = "HO", seed: int = 0, scale: float = 3.2) -> Atoms:
    """A periodic structure in a random triclinic cell (edges ~``scale`` Å, possibly below the cutoff)."""
    rng = np.random.default_rng(seed)
    cell = scale * (np.eye(3) + 0.25 * rng.uniform(-1.0, 1.0, (3, 3)))
    for _ in range(1000):
        fractional = rng.uniform(0.0, 1.0, (n_atoms, 3))
        atoms = Atoms(
            [symbols[k % len(symbols)] for k in range(n_atoms)],
            scaled_positions=fractional,
            cell=cell,
            pbc=True,
        )
        distances = atoms.get_all_distances(mic=True)
        if distances[np.triu_indices(n_atoms, 1)].min() > 0.8:
            return atoms
    raise RuntimeError("could not place atoms")


def label_with_emt(atoms: Atoms) -> Atoms:
    """Store ASE EMT energy and forces as fixed labels (a SinglePointCalculator), as data files hold them."""
    atoms.calc = EMT()
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
    return atoms


@pytest.fixture
def water_like() -> Atoms:
    return random_crystal(6, "OHH", seed=3)


def pytest_terminal_summary(terminalreporter) -> None:
    """Counts of the fuzz suites (tests/fuzzing.py), when any ran."""
    import sys

    fuzzing = sys.modules.get("fuzzing")
    if fuzzing is not None and fuzzing.COUNTS:
        terminalreporter.section("fuzz outcomes")
        for line in fuzzing.summary_lines():
            terminalreporter.write_line(line)
