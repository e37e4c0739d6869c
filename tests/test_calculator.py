"""The ASE calculator: properties, units, and consistency with the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.calculators.calculator import PropertyNotImplementedError
from conftest import random_cluster, random_crystal, tiny_model

from reann_driver import REANNCalculator


def test_properties_of_a_periodic_structure() -> None:
    atoms = random_crystal(6, "OHH", seed=2)
    atoms.calc = REANNCalculator(tiny_model())
    energy = atoms.get_potential_energy()
    assert atoms.get_potential_energy(force_consistent=True) == energy
    assert np.isclose(atoms.get_potential_energies().sum(), energy, atol=1e-10)
    assert atoms.get_forces().shape == (6, 3)
    assert np.abs(atoms.get_forces().sum(axis=0)).max() < 1e-10  # Newton's third law
    stress = atoms.get_stress()
    assert stress.shape == (6,)
    full = atoms.get_stress(voigt=False)
    assert np.allclose(full, full.T)


def test_molecule_has_no_stress() -> None:
    atoms = random_cluster(seed=3)
    atoms.calc = REANNCalculator(tiny_model())
    atoms.get_forces()
    with pytest.raises(PropertyNotImplementedError):
        atoms.get_stress()


def test_float64_inference_of_a_float32_model() -> None:
    calculator = REANNCalculator(tiny_model(dtype=torch.float32))
    assert calculator.model.dtype == torch.float64
    calculator32 = REANNCalculator(tiny_model(dtype=torch.float32), dtype="float32")
    assert calculator32.model.dtype == torch.float32


def test_cuda_request_without_gpu_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        REANNCalculator(tiny_model(), device="cuda")
    assert REANNCalculator(tiny_model(), device="auto").device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    atoms = random_crystal(6, "OHH", seed=4)
    atoms.calc = REANNCalculator(tiny_model(), device="cpu")
    cpu = atoms.get_potential_energy(), atoms.get_forces()
    atoms.calc = REANNCalculator(tiny_model(), device="cuda")
    assert np.isclose(atoms.get_potential_energy(), cpu[0], atol=1e-9)
    assert np.allclose(atoms.get_forces(), cpu[1], atol=1e-9)


@pytest.mark.slow
def test_compiled_model_matches_eager() -> None:
    atoms = random_crystal(6, "OHH", seed=5)
    atoms.calc = REANNCalculator(tiny_model(iterations=1))
    eager = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    atoms.calc = REANNCalculator(tiny_model(iterations=1), compile=True)
    assert np.isclose(atoms.get_potential_energy(), eager[0], rtol=1e-12, atol=1e-10)
    assert np.allclose(atoms.get_forces(), eager[1], rtol=1e-10, atol=1e-10)
    assert np.allclose(atoms.get_stress(), eager[2], rtol=1e-10, atol=1e-10)
    atoms.rattle(0.05, seed=1)  # a second geometry re-uses the compiled graph (dynamic shapes)
    compiled_energy = atoms.get_potential_energy()
    atoms.calc = REANNCalculator(tiny_model(iterations=1))
    assert np.isclose(compiled_energy, atoms.get_potential_energy(), rtol=1e-12, atol=1e-10)
