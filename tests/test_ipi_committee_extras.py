"""Committee extras for i-PI's <ffcommittee>: per-member values in atomic units and i-PI's layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from conftest import random_crystal, tiny_model

from reann_driver import Committee
from reann_driver.ipi.cli import EXIT_ERROR, main
from reann_driver.ipi.evaluator import ANGSTROM_PER_BOHR, BatchEvaluator
from reann_driver.ipi.plugin import REANNDriver, model_files
from reann_driver.model import save_committee


def ipi_inputs(n_structures: int = 2) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Symbols, i-PI cells (Bohr, lattice vectors as columns) and positions (Bohr) of one crystal in
    ``n_structures`` rattled and strained versions."""
    base = random_crystal(6, seed=0)
    structures = [base.copy() for _ in range(n_structures)]
    for k, structure in enumerate(structures):
        structure.set_cell(base.cell.array * (1.0 + 0.02 * k), scale_atoms=True)
        structure.rattle(0.05, seed=k)
    cells = np.stack([s.cell.array.T for s in structures]) / ANGSTROM_PER_BOHR
    positions = np.stack([s.positions for s in structures]) / ANGSTROM_PER_BOHR
    return base.get_chemical_symbols(), cells, positions


def test_extras_hold_every_member_as_its_own_evaluator_would() -> None:
    models = [tiny_model(seed=seed) for seed in range(3)]
    symbols, cells, positions = ipi_inputs()
    results = BatchEvaluator(Committee(models), symbols, extras=True).evaluate(cells, positions)
    own = [BatchEvaluator(model, symbols).evaluate(cells, positions) for model in models]
    for structure, text in enumerate(results.extras):
        extras = json.loads(text)
        assert len(extras["atomic_energies"]) == len(symbols)
        pots = np.array(extras["committee_pot"])
        forces = np.array(extras["committee_force"])
        virials = np.array(extras["committee_virial"])
        assert pots.shape == (3,) and forces.shape == (3, 3 * len(symbols)) and virials.shape == (3, 9)
        for k, member in enumerate(own):
            np.testing.assert_allclose(pots[k], member.energies[structure], rtol=1e-12)
            np.testing.assert_allclose(forces[k], member.forces[structure].ravel(), rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(virials[k], member.virials[structure].ravel(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(results.energies[structure], pots.mean(), rtol=1e-12)
        np.testing.assert_allclose(results.forces[structure].ravel(), forces.mean(0), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(results.virials[structure].ravel(), virials.mean(0), rtol=1e-9, atol=1e-12)
    assert np.std([json.loads(t)["committee_pot"] for t in results.extras], axis=1, ddof=1).min() > 0


def test_non_periodic_committee_sends_zero_virials() -> None:
    symbols, cells, positions = ipi_inputs(1)
    results = BatchEvaluator(Committee([tiny_model(seed=0), tiny_model(seed=1)]), symbols, periodic=False)
    extras = json.loads(results.evaluate(cells, positions).extras[0])
    assert np.array(extras["committee_virial"]).shape == (2, 9) and not np.any(extras["committee_virial"])
    assert "atomic_energies" not in extras


def test_plugin_takes_a_committee_file_or_several_models(tmp_path: Path) -> None:
    models = [tiny_model(seed=seed) for seed in range(2)]
    for k, model in enumerate(models):
        model.save(str(tmp_path / f"m{k}.pt"))
    save_committee(Committee(models), tmp_path / "committee file.pt")
    random_crystal(6).write(tmp_path / "init.xyz")
    assert model_files(str(tmp_path / "committee file.pt")) == [str(tmp_path / "committee file.pt")]
    assert model_files(f"{tmp_path}/m0.pt {tmp_path}/m1.pt") == [f"{tmp_path}/m0.pt", f"{tmp_path}/m1.pt"]
    _, cells, positions = ipi_inputs(1)
    answers = []
    for model in (str(tmp_path / "committee file.pt"), f"{tmp_path}/m0.pt {tmp_path}/m1.pt"):
        driver = REANNDriver(model, str(tmp_path / "init.xyz"))
        answers.append(driver.compute(cells[0], positions[0]))
    assert answers[0][0] == answers[1][0] and answers[0][3] == answers[1][3]
    assert len(json.loads(answers[0][3])["committee_pot"]) == 2


def test_driver_refuses_members_of_different_systems(tmp_path: Path) -> None:
    tiny_model().save(str(tmp_path / "a.pt"))
    tiny_model(cutoff=3.0).save(str(tmp_path / "b.pt"))
    random_crystal(6).write(tmp_path / "init.xyz")
    arguments = ["--model", str(tmp_path / "a.pt"), "--model", str(tmp_path / "b.pt")]
    result = CliRunner().invoke(main, [*arguments, "--template", str(tmp_path / "init.xyz"), "--unix", "x"])
    assert result.exit_code == EXIT_ERROR
    assert "same species" in result.output and "b.pt" in result.output
