"""Model files: bit-identical round trip, clear errors for bad files, and no code execution on load."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from conftest import random_crystal, tiny_model

import reann_driver
from reann_driver import ModelFileError, load_model
from reann_driver.model import graph_from_atoms


def energy(model, atoms) -> torch.Tensor:
    graph = graph_from_atoms([atoms], model.species, model.cutoff, dtype=model.dtype)
    output = model(graph, forces=True)
    return torch.cat([output["energy"], output["forces"].flatten()]).detach()


@pytest.mark.parametrize("angular", ["cartesian", "spherical"])
def test_round_trip_is_bit_identical(tmp_path: Path, angular: str) -> None:
    model = tiny_model(angular=angular, layer_norm=True, activation="tanh")
    model.set_atomic_energies({"H": -13.6, "O": -432.1})
    path = tmp_path / "model.pt"
    model.save(str(path), metadata={"trained_on": "nothing"})
    loaded = load_model(path)
    atoms = random_crystal(seed=3)
    assert torch.equal(energy(model, atoms), energy(loaded, atoms))
    assert loaded.config == model.config
    assert loaded.metadata == {"trained_on": "nothing"}
    assert not loaded.training


def test_public_api_from_the_issue(tmp_path: Path) -> None:
    model = reann_driver.REANN(
        species=["H", "O"],
        cutoff=5.0,
        n_radial=8,
        l_max=2,
        iterations=2,
        hidden=(64, 64),
        dtype=torch.float64,
    )
    model.save(str(tmp_path / "water.pt"))
    model = reann_driver.load_model(str(tmp_path / "water.pt"))
    atoms = random_crystal(6, "OHH", seed=1, scale=5.0)
    atoms.calc = reann_driver.REANNCalculator(model, device="cpu")
    assert atoms.get_forces().shape == (6, 3)
    assert atoms.get_stress().shape == (6,)
    atoms.calc = reann_driver.REANNCalculator(str(tmp_path / "water.pt"))
    assert isinstance(atoms.get_potential_energy(), float)


def test_load_as_float32(tmp_path: Path) -> None:
    tiny_model().save(str(tmp_path / "m.pt"))
    model = load_model(tmp_path / "m.pt", dtype="float32")
    assert model.dtype == torch.float32 and model.config["dtype"] == "float32"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "nope.pt")


def test_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    tiny_model().save(str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated, corrupt or foreign"):
        load_model(path)


@pytest.mark.parametrize(
    "payload",
    [{"weights": torch.zeros(3)}, [1, 2, 3], {"format": "reann-driver/model", "format_version": 99}],
)
def test_foreign_torch_files(tmp_path: Path, payload: object) -> None:
    path = tmp_path / "foreign.pt"
    torch.save(payload, path)
    with pytest.raises(ModelFileError):
        load_model(path)


def test_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a model\n")
    with pytest.raises(ModelFileError):
        load_model(path)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_loading_never_runs_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    with open(path, "wb") as stream:
        pickle.dump({"format": "reann-driver/model", "payload": _Exploit()}, stream)
    with pytest.raises(ModelFileError):
        load_model(path)
    assert not (tmp_path / "pwned").exists()


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "model.pt"
    tiny_model().save(str(path))
    tiny_model(seed=1).save(str(path))  # overwrite through a rename
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.pt"]
