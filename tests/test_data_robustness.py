"""reann-data on real-world mistakes: energy-only data, empty splits, unit slips, the wrong --from or
recipe."""

from __future__ import annotations

import json

import numpy as np
from ase import Atoms
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from click.testing import CliRunner

from reann_driver.data.cli import main


def reann_data(*arguments: str):
    return CliRunner().invoke(main, list(arguments))


def qm9_like(n_frames: int) -> list[Atoms]:
    """Small molecules with an energy in info (key U0, as in QM9 extxyz files) and no forces."""
    rng = np.random.default_rng(0)
    frames = []
    for index in range(n_frames):
        atoms = molecule(["CH4", "H2O", "NH3"][index % 3])
        atoms.positions += rng.normal(0, 0.02, atoms.positions.shape)
        atoms.info["U0"] = -40.0 - 0.01 * index
        frames.append(atoms)
    return frames


def test_energy_only_data_splits(tmp_path):
    source = tmp_path / "qm9.xyz"
    write(source, qm9_like(20))
    out = tmp_path / "split"
    sizes = ["--seed", "1", "--test", "0.2", "--val", "0.2"]
    result = reann_data("split", str(source), *sizes, "--out", str(out), "--energy-key", "U0")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert [manifest["splits"][name]["count"] for name in ("train", "val", "test")] == [12, 4, 4]


def test_a_split_that_keeps_nothing_is_an_error(tmp_path):
    source = tmp_path / "qm9.xyz"
    write(source, qm9_like(20))
    out = tmp_path / "split"
    result = reann_data(
        "split", str(source), "--seed", "1", "--test", "0.2", "--val", "0.2", "--out", str(out)
    )
    assert result.exit_code == 1
    assert "would keep no frame" in result.output and "no energy" in result.output
    assert not out.exists()


def test_validate_flags_all_zero_forces(tmp_path):
    frames = qm9_like(6)
    for atoms in frames:
        atoms.calc = SinglePointCalculator(
            atoms, energy=atoms.info.pop("U0"), forces=np.zeros((len(atoms), 3))
        )
    write(tmp_path / "zero.extxyz", frames)
    result = reann_data("validate", str(tmp_path / "zero.extxyz"))
    assert result.exit_code == 0, result.output
    assert result.output.count("zero-forces") >= 6 and "energy-only" in result.output


def water_in_bohr(tmp_path):
    """Two water molecules written as n2p2 in atomic units (Bohr, Hartree, Hartree/Bohr)."""
    from reann_driver.data import formats
    from reann_driver.data.units import CODATA_2018

    frames = []
    for shift in (0.0, 0.05):
        atoms = molecule("H2O")
        atoms.positions[0, 0] += shift
        atoms.calc = SinglePointCalculator(atoms, energy=-2080.0, forces=np.full((3, 3), 0.5))
        frames.append(atoms)
    path = tmp_path / "water.input.data"
    formats.write_frames(path, frames, "n2p2")
    text = []  # rescale the eV/Å file to atomic units line by line
    for line in path.read_text().splitlines():
        words = line.split()
        if words and words[0] in ("atom", "lattice"):
            values = [float(v) / CODATA_2018["Bohr"] for v in words[1:4]]
            if words[0] == "atom":
                forces = [float(v) * CODATA_2018["Bohr"] / CODATA_2018["Hartree"] for v in words[7:10]]
                words = ["atom", *map(repr, values), *words[4:7], *map(repr, forces)]
            else:
                words = ["lattice", *map(repr, values)]
        elif words and words[0] == "energy":
            words = ["energy", repr(float(words[1]) / CODATA_2018["Hartree"])]
        text.append(" ".join(words))
    path.write_text("\n".join(text) + "\n")
    return path


def test_stats_warns_about_atomic_units_read_as_ev(tmp_path):
    path = water_in_bohr(tmp_path)
    result = CliRunner().invoke(main, ["stats", str(path)])
    assert result.exit_code == 0, result.output
    assert "are the positions in Bohr?" in result.output
    assert "warning" not in CliRunner().invoke(main, ["stats", str(path), "--units", "atomic"]).output


def test_half_converted_units_are_named_and_counted(tmp_path):
    path = water_in_bohr(tmp_path)
    result = reann_data("validate", str(path), "--length-unit", "bohr")
    assert "positions in bohr but energies in ev and forces in ev/angstrom" in result.output
    assert "2 frames checked: 0 errors, 1 warnings {'units': 1}" in result.output


def test_a_folder_read_as_a_file_format_names_the_right_one(tmp_path):
    from reann_driver.data import formats

    frames = qm9_like(3)
    for atoms in frames:
        atoms.calc = SinglePointCalculator(atoms, energy=-1.0, forces=np.zeros((len(atoms), 3)))
    frames = [frames[0], frames[0].copy()]
    frames[1].calc = SinglePointCalculator(frames[1], energy=-1.1, forces=np.zeros((5, 3)))
    formats.write_frames(tmp_path / "deepmd", frames, "deepmd")
    result = reann_data("stats", str(tmp_path / "deepmd"), "--from", "n2p2")
    assert result.exit_code == 1
    assert (
        "is a folder, but --from n2p2 reads a file (it looks like DeePMD data: --from deepmd)"
        in result.output
    )


def test_a_recipe_says_which_format_it_expects(tmp_path):
    path = water_in_bohr(tmp_path)
    result = reann_data("split", str(path), "--recipe", "water", "--out", str(tmp_path / "split"))
    assert result.exit_code == 1
    assert "recipe 'water' expects extxyz data (dataset_1593.xyz" in result.output
    assert "looks like n2p2" in result.output and not (tmp_path / "split").exists()
