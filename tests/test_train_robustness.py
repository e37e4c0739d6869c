"""reann train from the command line: a refused --resume loses nothing; energy-only data trains."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from click.testing import CliRunner
from test_train_loop import rattled_alloys, write_split

from reann_driver.cli.main import main

TINY = [
    "model.n_radial=4",
    "model.l_max=1",
    "model.hidden=[8]",
    "model.iterations=1",
    "model.cutoff=4.0",
    "train.device=cpu",
    "train.batch_size=4",
    "output.progress=false",
    "output.tensorboard=false",
]


def alloys(n_frames: int, seed: int, forces: bool = True) -> list:
    """Rattled Cu/Al cells labelled with EMT (eV, eV/Å); ``forces=False`` keeps the energy only."""
    frames = rattled_alloys(n_frames, seed)
    if not forces:
        for atoms in frames:
            atoms.calc = SinglePointCalculator(atoms, energy=atoms.get_potential_energy())
    return frames


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory):
    return write_split(tmp_path_factory.mktemp("split"), alloys(12, seed=3), 8, 4)


def reann(*arguments: str):
    return CliRunner().invoke(main, list(arguments))


def overrides(*pairs: str) -> list[str]:
    return [item for pair in pairs for item in ("--set", pair)]


def test_refused_resume_names_the_key_and_writes_nothing(split_dir, tmp_path):
    run = tmp_path / "run"
    base = [f"data.split_dir={split_dir}", f"output.dir={run}", "train.epochs=1", *TINY]
    result = reann("train", *overrides(*base))
    assert result.exit_code == 0, result.output
    before = {name: (run / name).read_bytes() for name in ("config.yaml", "train.log", "metrics.csv")}

    result = reann("train", *overrides(*base, "model.hidden=[4]"), "--resume")
    assert result.exit_code == 1
    assert "model.hidden: [8] in the checkpoint, [4] now" in result.output
    assert "model.n_radial" not in result.output  # only the differing key is named
    assert {name: (run / name).read_bytes() for name in before} == before

    result = reann("train", str(run / "config.yaml"), "--set", "train.epochs=2", "--resume")
    assert result.exit_code == 0, result.output
    assert "resumed" in (run / "train.log").read_text()


def test_energy_only_data_trains_with_a_note(tmp_path):
    folder = tmp_path / "split"
    folder.mkdir()
    frames = alloys(12, seed=4, forces=False)
    write(folder / "train.extxyz", frames[:8])
    write(folder / "val.extxyz", frames[8:10])
    write(folder / "test.extxyz", frames[10:])
    run = tmp_path / "run"
    result = reann(
        "train", *overrides(f"data.split_dir={folder}", f"output.dir={run}", "train.epochs=2", *TINY)
    )
    assert result.exit_code == 0, result.output
    assert "fitting energies only, force weight 0" in result.output
    assert "forces  none in the data (energy-only)" in result.output  # the test-set table
    result = reann("eval", str(run), str(folder / "test.extxyz"), "--plot", str(tmp_path / "parity.png"))
    assert result.exit_code == 0, result.output
    assert "energy-only" in result.output and (tmp_path / "parity.png").stat().st_size > 0


def test_zero_forces_are_energy_only_and_a_mix_is_an_error():
    from reann_driver.train.data import DataError, energy_only, prepare

    frames = alloys(3, seed=5)
    labelled = prepare(frames, ["Al", "Cu"], 4.0)
    assert not energy_only(labelled)
    zeros = [a.copy() for a in frames]
    for atoms in zeros:
        atoms.calc = SinglePointCalculator(atoms, energy=-1.0, forces=np.zeros((len(atoms), 3)))
    assert energy_only(prepare(zeros, ["Al", "Cu"], 4.0))  # n2p2 writes zeros for energy-only data
    mixed = prepare(frames[:2] + alloys(1, seed=6, forces=False), ["Al", "Cu"], 4.0)
    with pytest.raises(DataError, match="1 of 3 structures have no forces"):
        energy_only(mixed)


def test_missing_tensorboard_is_said_in_the_log(split_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    run = tmp_path / "run"
    settings = [f"data.split_dir={split_dir}", f"output.dir={run}", "train.epochs=1", *TINY]
    result = reann("train", *overrides(*settings, "output.tensorboard=true"))
    assert result.exit_code == 0, result.output
    assert "pip install 'reann-driver[tensorboard]'" in (run / "train.log").read_text()
