"""Active learning: reading i-PI's files, uncertainty + farthest-point selection, appending to a split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.io import write
from click.testing import CliRunner
from conftest import label_with_emt, tiny_model

from reann_driver import Committee
from reann_driver.data.cli import main
from reann_driver.data.errors import DataError
from reann_driver.data.labelers import EMTLabeler
from reann_driver.data.recipes import Recipe, SplitRule
from reann_driver.data.split import append_to_split, sha256_of, split_dataset, verify_split
from reann_driver.data.trajectory import read_candidates
from reann_driver.ipi.evaluator import ANGSTROM_PER_BOHR, HARTREE_PER_EV
from reann_driver.model import graph_from_atoms, save_committee
from reann_driver.train.active import Scores, label_frames, score_candidates, select

METHANE = molecule("CH4")


def rattled_methanes(n: int, seed: int, scale: float = 0.1) -> list[Atoms]:
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        atoms = METHANE.copy()
        atoms.positions += rng.normal(0.0, scale, atoms.positions.shape)
        frames.append(atoms)
    return frames


def committee(n_members: int = 3) -> Committee:
    return Committee([tiny_model(species=("H", "C"), seed=seed) for seed in range(n_members)])


def active_output(frames: list[Atoms], uncertainties: list[float]) -> str:
    """What i-PI 3.3's FFCommittee writes: JSON records back to back, atomic units, h with columns."""
    records = []
    for atoms, uncertainty in zip(frames, uncertainties):
        h = np.eye(3) * 20.0 / ANGSTROM_PER_BOHR
        record = {
            "position": list((atoms.positions / ANGSTROM_PER_BOHR).ravel()),
            "cell": list(h.flatten()),
            "uncertainty": uncertainty,
        }
        records.append(json.dumps(record))
    return "".join(records)


def test_ipi_active_output_is_read_in_angstrom(tmp_path: Path) -> None:
    frames = rattled_methanes(3, seed=1)
    (tmp_path / "active").write_text(active_output(frames, [0.01, 0.02, 0.03]))
    symbols = METHANE.get_chemical_symbols()
    read = read_candidates(tmp_path / "active", symbols, periodic=False)
    assert len(read) == 3
    for original, atoms in zip(frames, read):
        np.testing.assert_allclose(atoms.positions, original.positions, rtol=1e-12, atol=1e-12)
        assert not atoms.pbc.any()
    assert read[2].info["ipi_uncertainty_eV"] == pytest.approx(0.03 / HARTREE_PER_EV)
    periodic = read_candidates(tmp_path / "active", symbols, periodic=True)
    np.testing.assert_allclose(periodic[0].cell.array, np.eye(3) * 20.0, atol=1e-12)
    with pytest.raises(DataError, match="--template"):
        read_candidates(tmp_path / "active")
    with pytest.raises(DataError, match="another system"):
        read_candidates(tmp_path / "active", molecule("H2O").get_chemical_symbols())


def test_ipi_xyz_units_and_other_files(tmp_path: Path) -> None:
    atoms = rattled_methanes(1, seed=2)[0]
    rows = [
        f"{s} {x:.12f} {y:.12f} {z:.12f}"
        for s, (x, y, z) in zip(atoms.symbols, atoms.positions / ANGSTROM_PER_BOHR)
    ]
    comment = "# CELL(abcABC): 37.8 37.8 37.8 90.0 90.0 90.0 Step: 4 Bead: 0 "
    comment += "positions{atomic_unit} cell{atomic_unit}"
    (tmp_path / "traj.xyz").write_text("\n".join(["5", comment, *rows]) + "\n")
    read = read_candidates(tmp_path / "traj.xyz", periodic=False)
    np.testing.assert_allclose(read[0].positions, atoms.positions, atol=1e-10)
    write(tmp_path / "frames.extxyz", rattled_methanes(4, seed=3))
    assert len(read_candidates(tmp_path / "frames.extxyz", METHANE.get_chemical_symbols())) == 4
    write(tmp_path / "water.extxyz", [molecule("H2O")])
    with pytest.raises(DataError, match="another system"):
        read_candidates(tmp_path / "water.extxyz", METHANE.get_chemical_symbols())


def test_scores_are_the_committee_spread_and_foreign_elements_fail() -> None:
    model = committee()
    frames = rattled_methanes(5, seed=4)
    scores = score_candidates(model, frames, batch_size=2)
    graph = graph_from_atoms(frames, model.species, model.cutoff)
    np.testing.assert_allclose(scores.spread, model(graph, forces=False)["energy_uncertainty"].numpy())
    assert scores.descriptors.shape == (5, 2 * model.member(0).config["n_orbitals"])
    assert len({row.tobytes() for row in scores.descriptors}) == 5
    with pytest.raises(DataError, match="another system"):
        score_candidates(model, [molecule("H2O")])


def test_selection_prefers_uncertain_and_skips_duplicates() -> None:
    descriptors = np.array([[0.0, 0.0], [0.0, 0.0], [3.0, 3.0], [1.0, 1.0], [2.9, 3.0]])
    spread = np.array([0.5, 0.4, 0.3, 0.2, 0.1])
    scores = Scores(spread, descriptors)
    assert select(scores, 2) == [0, 2]  # 1 duplicates 0
    assert select(scores, 3) == [0, 2, 3]
    assert select(scores, 5, threshold=0.25) == [0, 2]  # then only duplicates are left
    assert select(scores, 1, pool_factor=1) == [0]
    assert select(scores, 3, threshold=1.0) == []


def make_split(tmp_path: Path) -> Path:
    frames = rattled_methanes(12, seed=5)
    for atoms in frames:
        label_with_emt(atoms)
    write(tmp_path / "source.extxyz", frames)
    recipe = Recipe(name="test", seed=1, split=SplitRule(test=2, val=2))
    split_dataset(tmp_path / "source.extxyz", recipe, tmp_path / "split", echo=lambda _: None)
    return tmp_path / "split"


def test_append_writes_a_new_verified_split(tmp_path: Path) -> None:
    split = make_split(tmp_path)
    before = {file.name: sha256_of(file) for file in split.iterdir()}
    labelled = label_frames(read_candidates_from(rattled_methanes(3, seed=6)), EMTLabeler())
    manifest = append_to_split(split, labelled, tmp_path / "round1", provenance={"note": "test"})
    assert {file.name: sha256_of(file) for file in split.iterdir()} == before  # input untouched
    assert manifest["splits"]["train"]["count"] == 8 + 3
    assert manifest["active_learning"] == [{"round": 1, "split": "train", "count": 3, "note": "test"}]
    assert verify_split(tmp_path / "round1") == []
    assert verify_split(tmp_path / "round1", tmp_path / "source.extxyz") == []
    with pytest.raises(DataError, match="exists"):
        append_to_split(split, labelled, tmp_path / "round1")
    with pytest.raises(DataError, match="input split"):
        append_to_split(split, labelled, split)
    water = molecule("H2O")
    label_with_emt(water)
    with pytest.raises(DataError, match="another system"):
        append_to_split(split, [water], tmp_path / "water")
    assert not (tmp_path / "water").exists()


def read_candidates_from(frames: list[Atoms]) -> list[Atoms]:
    for index, atoms in enumerate(frames):
        atoms.info["candidate_index"] = index
    return frames


def test_select_command_end_to_end(tmp_path: Path) -> None:
    split = make_split(tmp_path)
    save_committee(committee(), tmp_path / "committee.pt")
    METHANE.write(tmp_path / "init.xyz")
    frames = rattled_methanes(20, seed=7, scale=0.15)
    (tmp_path / "active").write_text(active_output(frames, [0.1] * 20))
    arguments = ["select", str(tmp_path / "active"), "--template", str(tmp_path / "init.xyz")]
    arguments += ["--non-periodic", "--committee", str(tmp_path / "committee.pt"), "--n", "4"]
    arguments += ["--labeler", "emt", "--split", str(split), "--out", str(tmp_path / "round1")]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    assert "20 candidates" in result.output and "selected 4" in result.output
    manifest = json.loads((tmp_path / "round1" / "manifest.json").read_text())
    entry = manifest["active_learning"][0]
    assert entry["count"] == 4 and len(set(entry["candidate_indices"])) == 4
    assert entry["spread_eV"][0] == max(entry["spread_eV"])
    assert entry["labeler"]["labeler"] == "emt"
    again = CliRunner().invoke(main, arguments)
    assert again.exit_code != 0 and "exists" in again.output
    single = tmp_path / "single.pt"
    tiny_model(species=("H", "C")).save(str(single))
    arguments[arguments.index(str(tmp_path / "committee.pt"))] = str(single)
    arguments[-1] = str(tmp_path / "round1b")
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code != 0 and "needs a committee" in result.output
