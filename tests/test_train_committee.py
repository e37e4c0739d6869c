"""Committee training (train.committee = K): K seeded members, one committee file, resume, bootstrap,
and ``reann eval`` of a committee with its calibration."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ase.io import read
from click.testing import CliRunner
from test_train_loop import TINY_MODEL, rattled_alloys, tiny_config, write_split

from reann_driver import Committee, load_model
from reann_driver.cli.main import main
from reann_driver.model import graph_from_atoms
from reann_driver.train import ConfigError, TrainingError, train_committee


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory):
    return write_split(tmp_path_factory.mktemp("split"), rattled_alloys(20, seed=5), 12, 4)


@pytest.fixture(scope="module")
def trained(split_dir, tmp_path_factory):
    """A committee of 3 trained for 3 epochs."""
    output = tmp_path_factory.mktemp("runs") / "committee"
    config = tiny_config(split_dir, output, "train.epochs=3", "train.committee=3", "train.seed=10")
    return config, train_committee(config)


def energies(model, frames) -> torch.Tensor:
    graph = graph_from_atoms(frames, model.species, model.cutoff, dtype=torch.float64)
    return model(graph, forces=False)["energy"].detach()


def test_members_are_seeded_trainings_bundled_in_one_file(trained, split_dir) -> None:
    _, result = trained
    output = result.output_dir
    assert result.model_file == output / "committee.pt"
    committee = load_model(result.model_file)
    assert isinstance(committee, Committee) and len(committee) == 3
    metadata = committee.metadata["committee"]
    assert metadata["seeds"] == [10, 11, 12] and metadata["bootstrap"] is False
    assert np.isfinite(metadata["validation_calibration"]["alpha"])
    frames = read(split_dir / "test.extxyz", ":")
    member_energies = []
    for k in range(3):
        run = output / f"member_{k}"
        assert (run / "model.pt").is_file() and (run / "train.log").is_file()
        assert load_model(run / "model.pt").metadata["training"]["train"]["seed"] == 10 + k
        own = energies(load_model(run / "model.pt"), frames)
        assert torch.equal(own, energies(committee.member(k), frames))
        member_energies.append(own)
    difference = (member_energies[0] - member_energies[1]).abs().max()
    assert difference > 1e-6  # different seeds, different models
    assert all(r is not None and r.epochs == 3 for r in result.members)
    tested = json.loads((output / "test_metrics.json").read_text())
    assert tested["structures"] == 4 and tested["calibration"]["members"] == 3
    assert result.test_metrics == tested


def test_resume_skips_finished_members_and_refuses_overwriting(trained) -> None:
    config, result = trained
    with pytest.raises(TrainingError, match="not empty"):
        train_committee(config)
    (result.output_dir / "member_1" / "model.pt").unlink()
    resumed = train_committee(config, resume=True)
    assert resumed.members[0] is None and resumed.members[2] is None
    assert resumed.members[1] is not None and resumed.members[1].epochs == 3  # continued, not restarted
    assert isinstance(load_model(resumed.model_file), Committee)


def test_bootstrap_members_train_on_resamples(split_dir, tmp_path) -> None:
    config = tiny_config(
        split_dir, tmp_path / "boot", "train.epochs=1", "train.committee=2", "train.bootstrap=true"
    )
    result = train_committee(config)
    train_positions = {a.positions.tobytes() for a in read(split_dir / "train.extxyz", ":")}
    for k in range(2):
        resample = read(tmp_path / "boot" / "bootstrap" / f"member_{k}.extxyz", ":")
        keys = [a.positions.tobytes() for a in resample]
        assert len(keys) == 12 and set(keys) <= train_positions and len(set(keys)) < 12
    assert load_model(result.model_file).metadata["committee"]["bootstrap"] is True


def test_committee_size_is_checked(split_dir, tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"train\.committee"):
        tiny_config(split_dir, tmp_path / "x", "train.committee=0")
    with pytest.raises(TrainingError, match="at least 2"):
        train_committee(tiny_config(split_dir, tmp_path / "y", "train.committee=1"))


def test_reann_eval_reports_calibration(trained, split_dir, tmp_path) -> None:
    _, result = trained
    outputs = ["--calibration", str(tmp_path / "c.png"), "--json", str(tmp_path / "e.json")]
    answer = CliRunner().invoke(
        main, ["eval", str(result.output_dir), str(split_dir / "test.extxyz"), *outputs]
    )
    assert answer.exit_code == 0, answer.output
    assert "committee of 3" in answer.output and "<alpha>" in answer.output
    assert (tmp_path / "c.png").stat().st_size > 1000
    table = json.loads((tmp_path / "e.json").read_text())
    alpha = table["calibration"]["alpha"]
    committee = load_model(result.model_file)
    frames = read(split_dir / "test.extxyz", ":")
    graph = graph_from_atoms(frames, committee.species, committee.cutoff, dtype=torch.float64)
    output = committee(graph, forces=False)
    error = output["energy"].numpy() - np.array([a.get_potential_energy() for a in frames])
    expected = np.sqrt(np.mean((error / output["energy_uncertainty"].numpy()) ** 2))
    assert alpha == pytest.approx(expected, rel=1e-9)
    single = CliRunner().invoke(
        main,
        ["eval", str(result.output_dir / "member_0" / "model.pt"), str(split_dir / "test.extxyz"),
         "--calibration", str(tmp_path / "d.png")],
    )  # fmt: skip
    assert single.exit_code != 0 and "needs a committee" in single.output


def test_reann_train_command_trains_a_committee(split_dir, tmp_path) -> None:
    settings = [f"data.split_dir={split_dir}", f"output.dir={tmp_path / 'cli'}", "train.device=cpu"]
    settings += ["train.epochs=1", "train.committee=2", "output.progress=false", *TINY_MODEL]
    answer = CliRunner().invoke(main, ["train", *[f"--set={s}" for s in settings]])
    assert answer.exit_code == 0, answer.output
    assert "committee.pt" in answer.output and "alpha" in answer.output
    info = CliRunner().invoke(main, ["info", str(tmp_path / "cli" / "committee.pt")])
    assert info.exit_code == 0 and len(json.loads(info.output)["committee"]) == 2
