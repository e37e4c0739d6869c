"""reann-data on real-world mistakes: energy-only data, empty splits, unit slips, the wrong --from or recipe."""

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
    result = reann_data("split", str(source), "--seed", "1", "--test", "0.2", "--val", "0.2", "--out", str(out),
                        "--energy-key", "U0")  # fmt: skip
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
