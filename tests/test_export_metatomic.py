"""Metatomic export: the exported TorchScript model gives REANNCalculator's energies, forces and stress
through metatomic-ase (float64, 1e-10), and i-PI's own metatomic PES reproduces our bead energies."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import random_cluster, random_crystal, randomised, tiny_model

import reann_driver
from reann_driver.cli.main import main

metatomic_ase = pytest.importorskip("metatomic_ase", reason="needs the metatomic extra")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path]:
    """A model file and its metatomic export, written by ``reann export --format metatomic``."""
    folder = tmp_path_factory.mktemp("metatomic")
    tiny_model(species=("H", "C", "O"), iterations=2).save(str(folder / "model.pt"))
    arguments = ["export", str(folder / "model.pt"), str(folder / "model-mta.pt"), "--format", "metatomic"]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    return folder / "model.pt", folder / "model-mta.pt"


@pytest.mark.parametrize("periodic", [True, False], ids=["crystal", "cluster"])
def test_metatomic_ase_equals_reann_calculator(exported, periodic: bool) -> None:
    model_file, metatomic_file = exported
    ours = reann_driver.REANNCalculator(model_file)
    theirs = metatomic_ase.MetatomicCalculator(str(metatomic_file))
    for seed in range(3):
        atoms = random_crystal(9, "HCO", seed=seed) if periodic else random_cluster(7, "HCO", seed=seed)
        atoms.calc = ours
        energy, forces, energies = (
            atoms.get_potential_energy(),
            atoms.get_forces(),
            atoms.get_potential_energies(),
        )
        stress = atoms.get_stress() if periodic else None
        atoms.calc = theirs
        assert atoms.get_potential_energy() == pytest.approx(energy, abs=1e-10)
        np.testing.assert_allclose(atoms.get_forces(), forces, rtol=0, atol=1e-10)
        np.testing.assert_allclose(atoms.get_potential_energies(), energies, rtol=0, atol=1e-10)
        if stress is not None:
            np.testing.assert_allclose(atoms.get_stress(), stress, rtol=0, atol=1e-10)
        assert np.abs(forces).max() > 1e-3  # a model that really acts


def test_export_refuses_to_overwrite_and_unknown_formats(exported) -> None:
    model_file, metatomic_file = exported
    before = metatomic_file.read_bytes()
    result = CliRunner().invoke(
        main, ["export", str(model_file), str(metatomic_file), "--format", "metatomic"]
    )
    assert result.exit_code != 0 and "--force" in result.output
    assert metatomic_file.read_bytes() == before
    result = CliRunner().invoke(main, ["export", str(model_file), str(metatomic_file), "--format", "onnx"])
    assert result.exit_code != 0


@pytest.mark.ipi
def test_ipi_metatomic_pes_reproduces_bead_energies(tmp_path) -> None:
    """i-PI's <ffdirect> with pes=metatomic on the CH4 PIMD example (no reann-driver code in the loop
    but the exported file): its bead potentials equal REANNCalculator's energies of the beads."""
    from test_ipi_e2e import N_BEADS, check_bead_energies, prepare_run

    from reann_driver.ipi.launch import run_ipi_with_driver

    torch.manual_seed(3)  # the model of test_ipi_e2e: gentle enough for 20 PIMD steps
    model = randomised(reann_driver.REANN(["H", "C"], n_radial=4, l_max=1, hidden=(16, 16), iterations=1))
    with torch.no_grad():
        for parameter in model.energy_networks.parameters():
            parameter.mul_(0.5)
    model_file = tmp_path / "tiny.pt"
    model.save(str(model_file))
    metatomic_file = tmp_path / "tiny-mta.pt"
    result = CliRunner().invoke(
        main, ["export", str(model_file), str(metatomic_file), "--format", "metatomic"]
    )
    assert result.exit_code == 0, result.output
    input_xml = prepare_run(tmp_path, N_BEADS, plugin={"model": "unused"})
    tree = ET.parse(input_xml)
    for element in tree.getroot().iter("ffdirect"):
        element.remove(element.find("pes_path"))
        element.find("pes").text = "metatomic"
        element.find("parameters").text = f"{{template: init.xyz, model: {metatomic_file}}}"
    tree.write(input_xml)
    summary = run_ipi_with_driver(input_xml, tmp_path, None, timeout=90)
    assert summary.ok, (tmp_path / "ipi.log").read_text()[-3000:]
    check_bead_energies(tmp_path, model_file)
