"""End to end with a real i-PI: a committee served by one client inside ``<ffcommittee>`` with
``<parse_json>true</parse_json>``.

i-PI's potential of every bead must be the committee mean, and the uncertainty i-PI reports for it
(``committee_uncertainty``, alpha = 1) must equal the spread REANNCalculator computes for the bead
positions i-PI wrote, through the socket driver (several --model files, batched) and the plugin
(one committee file).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from conftest import randomised
from reann_driver.ipi.outputs import read_binary_trajectory, read_properties
from test_ipi_e2e import N_BEADS, N_STEPS, prepare_run

import reann_driver
from reann_driver.ipi.evaluator import ANGSTROM_PER_BOHR, HARTREE_PER_EV, read_template_symbols
from reann_driver.ipi.launch import run_ipi_with_driver, wrap_in_committee
from reann_driver.model import save_committee

pytestmark = pytest.mark.ipi


@pytest.fixture(scope="module")
def member_files(tmp_path_factory) -> list[Path]:
    """Three untrained tiny models, scaled down so that 20 PIMD steps stay gentle."""
    folder = tmp_path_factory.mktemp("committee")
    paths = []
    for seed in range(3):
        torch.manual_seed(seed)
        model = reann_driver.REANN(["H", "C"], n_radial=4, l_max=1, hidden=(16, 16), iterations=1)
        model = randomised(model, seed=seed)
        with torch.no_grad():
            for parameter in model.energy_networks.parameters():
                parameter.mul_(0.5)
        paths.append(folder / f"member{seed}.pt")
        model.save(str(paths[-1]))
    return paths


def read_uncertainties(path: Path) -> np.ndarray:
    """The values of an i-PI extras trajectory with one scalar per step (Hartree)."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return np.array([float(line) for line in lines if not line.lstrip().startswith("#")])


def check_committee(folder: Path, model_files: list[Path]) -> None:
    model = reann_driver.load_committee(model_files)
    calculator = reann_driver.REANNCalculator(model)
    potentials = read_properties(folder / "t.out")["bead_potentials{electronvolt}"]
    symbols = read_template_symbols(folder / "init.xyz")
    spreads = []
    for bead in range(N_BEADS):
        _, positions = read_binary_trajectory(folder / f"t.pos_{bead}.bin")
        uncertainty = read_uncertainties(folder / f"t.unc_{bead}")
        assert uncertainty.shape == (N_STEPS + 1,)
        for step in range(N_STEPS + 1):
            atoms = Atoms(symbols, positions=positions[step] * ANGSTROM_PER_BOHR, pbc=False)
            atoms.calc = calculator
            assert potentials[step, bead] == pytest.approx(atoms.get_potential_energy(), abs=1e-8)
            spread = calculator.results["energy_uncertainty"]
            assert uncertainty[step] / HARTREE_PER_EV == pytest.approx(spread, rel=1e-9, abs=1e-10)
            spreads.append(spread)
    assert min(spreads) > 1e-3 and np.ptp(spreads) > 1e-4  # a real, changing spread


def test_socket_driver_with_several_models(tmp_path, member_files):
    input_xml = prepare_run(tmp_path, N_BEADS)
    wrap_in_committee(input_xml)
    driver = ["--template", "init.xyz", "--non-periodic"]
    for path in member_files:
        driver += ["--model", str(path)]
    summary = run_ipi_with_driver(input_xml, tmp_path, driver, timeout=90)
    log = (tmp_path / "driver.log").read_text()
    assert summary.ok, log + (tmp_path / "ipi.log").read_text()[-3000:]
    assert "committee of 3" in log and f"batch size {N_BEADS}" in log
    check_committee(tmp_path, member_files)


def test_plugin_with_a_committee_file(tmp_path, member_files):
    committee = reann_driver.load_committee(member_files)
    assert isinstance(committee, reann_driver.Committee)
    save_committee(committee, tmp_path / "committee.pt")
    plugin = {"model": str(tmp_path / "committee.pt"), "template": "init.xyz", "non_periodic": "true"}
    input_xml = prepare_run(tmp_path, N_BEADS, plugin=plugin)
    wrap_in_committee(input_xml)
    summary = run_ipi_with_driver(input_xml, tmp_path, None, timeout=90)
    assert summary.ok, (tmp_path / "ipi.log").read_text()[-3000:]
    check_committee(tmp_path, [tmp_path / "committee.pt"])
