"""The shipped PIMD inputs: the water box has the density of the training data and sane geometry."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

from reann_driver.ipi.inputs import initial_structure, read_socket_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
AVOGADRO = 6.02214076e23


def read_ipi_xyz(path: Path) -> Atoms:
    """A structure as i-PI reads it (i-PI's own xyz reader, cell and positions converted to Å)."""
    from ipi.utils.io import read_file
    from ipi.utils.units import unit_to_user

    angstrom = unit_to_user("length", "angstrom", 1.0)
    with warnings.catch_warnings(), open(path) as stream:
        warnings.simplefilter("ignore")
        frame = read_file("xyz", stream)
    atoms = frame["atoms"]
    return Atoms(
        list(atoms.names),
        positions=atoms.q.reshape(-1, 3) * angstrom,
        cell=frame["cell"].h.T * angstrom,
        pbc=True,
    )


def test_water_box_density_and_geometry():
    folder = EXAMPLES / "water64_pimd"
    assert initial_structure(folder / "input.xml") == "water_64.xyz"
    water = read_ipi_xyz(folder / "water_64.xyz")
    assert water.get_chemical_formula() == "H128O64"
    density = water.get_masses().sum() / AVOGADRO / (water.cell.volume * 1e-24)  # g/cm³
    assert abs(density - 0.993) < 0.01  # the DeePMD-kit water frames: 0.993 g/cm³
    first, second, distances = neighbor_list("ijd", water, 3.0)
    oxygen = water.numbers == 8
    oo = distances[oxygen[first] & oxygen[second]]
    assert oo.min() > 2.4  # liquid water: the first O-O peak is at 2.8 Å
    bonded = (distances < 1.1) & oxygen[first] & ~oxygen[second]
    assert np.bincount(first[bonded], minlength=len(water))[oxygen].tolist() == [2] * 64  # intact H2O


def test_example_sockets_are_servable():
    for name in ("ch4_pimd", "water64_pimd"):
        assert read_socket_spec(EXAMPLES / name / "input.xml").mode == "unix"
