"""The i-PI evaluator with ``compile=True`` (torch.compile of the model over kept neighbour slots) gives the
plain evaluator's energies, forces and virials, through slot rebuilds; clear errors where it cannot work."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_crystal, tiny_model
from test_ipi_static import trajectory

from reann_driver.ipi.evaluator import ANGSTROM_PER_BOHR, BatchEvaluator
from reann_driver.model import Committee
from reann_driver.model.runtime import CompileError


@pytest.mark.slow
def test_compiled_evaluator_equals_plain() -> None:
    model = tiny_model(iterations=2)
    atoms = random_crystal(8, seed=5)
    symbols = atoms.get_chemical_symbols()
    plain = BatchEvaluator(model, symbols, skin=0.6)
    compiled = BatchEvaluator(model, symbols, skin=0.6, compile=True)
    cells = np.stack([np.asarray(atoms.get_cell()).T / ANGSTROM_PER_BOHR] * 2)
    walks = [trajectory(atoms, 6, 0.03, seed) for seed in range(2)]  # step 3 jumps: a rebuild
    for step in range(7):
        positions = np.stack([walk[step] for walk in walks])
        expected, got = plain.evaluate(cells, positions), compiled.evaluate(cells, positions)
        np.testing.assert_allclose(got.energies, expected.energies, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got.forces, expected.forces, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got.virials, expected.virials, rtol=1e-10, atol=1e-12)
    assert compiled.neighbours is not None and compiled.neighbours[0].n_builds >= 2  # the jump rebuilt
    assert np.abs(expected.forces).max() > 1e-3  # not a comparison of zeros


def test_compile_refuses_committees_and_fresh_lists() -> None:
    model = tiny_model(iterations=1)
    symbols = random_crystal(4, seed=1).get_chemical_symbols()
    with pytest.raises(CompileError, match="single model"):
        BatchEvaluator(Committee([model, tiny_model(iterations=1)]), symbols, compile=True)
    with pytest.raises(CompileError, match="kept neighbour slots"):
        BatchEvaluator(model, symbols, skin=None, compile=True)


def test_compile_without_a_cpp_compiler_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("reann_driver.model.runtime.shutil.which", lambda name: None)
    symbols = random_crystal(4, seed=1).get_chemical_symbols()
    with pytest.raises(CompileError, match="C\\+\\+ compiler"):
        BatchEvaluator(tiny_model(iterations=1), symbols, compile=True)
