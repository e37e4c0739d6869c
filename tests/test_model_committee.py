"""Committees: the vectorised evaluation equals each member's own, files round-trip, bad members fail."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import molecule
from conftest import random_cluster, random_crystal, tiny_model

import reann_driver
from reann_driver import Committee, ModelFileError, REANNCalculator, load_committee, load_model
from reann_driver.model import graph_from_atoms, save_committee


def members() -> list[reann_driver.REANN]:
    """Three members of one architecture and one of another (two vectorised groups); the third differs
    from the first two only in initial values, which do not make another architecture."""
    same = [tiny_model(seed=seed, layer_norm=True) for seed in range(2)]
    same.append(
        tiny_model(
            seed=2, layer_norm=True, initial_coefficient=0.2, radial_init="reference", mixing_init="normal"
        )
    )
    return [*same, tiny_model(seed=7, iterations=1, hidden=(8,), angular="spherical")]


def batch(model: reann_driver.REANN | Committee):
    structures = [random_crystal(5, seed=1), random_crystal(7, seed=2), random_cluster(4, seed=3)]
    return graph_from_atoms(structures, model.species, model.cutoff, dtype=torch.float64)


@pytest.mark.parametrize("stress", [False, True])
def test_members_match_their_own_evaluation(stress: bool) -> None:
    models = members()
    committee = Committee(models)
    assert committee.groups == [[0, 1, 2], [3]]
    graph = batch(committee)
    output = committee(graph, forces=True, stress=stress)
    keys = ["energy", "forces"] + (["virial", "stress"] if stress else [])
    for k, model in enumerate(models):
        own = model(graph, forces=True, stress=stress)
        for key in keys:
            torch.testing.assert_close(
                output[f"committee_{key}"][k], own[key], rtol=1e-12, atol=1e-12, equal_nan=True
            )
    for key in keys:
        torch.testing.assert_close(output[key], output[f"committee_{key}"].mean(0), equal_nan=True)
    energies = output["committee_energy"].numpy()
    np.testing.assert_allclose(output["energy_uncertainty"].numpy(), energies.std(axis=0, ddof=1))
    if stress:
        assert torch.isnan(output["stress"][2]).all()  # the molecule has no volume


def test_energy_only_and_no_gradients_left_behind() -> None:
    committee = Committee(members()[:2])
    graph = batch(committee)
    output = committee(graph, forces=False)
    assert set(output) == {"energy", "atomic_energies", "committee_energy", "energy_uncertainty"}
    assert not output["energy"].requires_grad
    assert all(p.grad is None for p in committee.parameters())


def test_weights_changed_in_place_are_seen() -> None:
    committee = Committee(members()[:2])
    graph = batch(committee)
    before = committee(graph)["committee_energy"][1].clone()
    with torch.no_grad():
        committee.member(1).atomic_energies.add_(1.0)
    after = committee(graph)["committee_energy"][1]
    torch.testing.assert_close(after - before, torch.full_like(before, 1.0) * graph_sizes(graph))


def graph_sizes(graph) -> torch.Tensor:
    return torch.bincount(graph.batch).to(torch.float64)


@pytest.mark.parametrize(
    ("other", "message"),
    [
        (lambda: tiny_model(species=("O", "H")), "same species"),
        (lambda: tiny_model(species=("H", "O", "C")), "same species"),
        (lambda: tiny_model(cutoff=4.0), "cutoff"),
    ],
)
def test_members_must_share_species_and_cutoff(other, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Committee([tiny_model(), other()])


def test_members_must_share_dtype() -> None:
    with pytest.raises(ValueError, match="dtype"):
        Committee([tiny_model(), tiny_model(dtype=torch.float32)])


def test_needs_two_members_and_is_never_trained() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        Committee([tiny_model()])
    committee = Committee(members()[:2])
    assert not committee.training
    with pytest.raises(RuntimeError, match="inference"):
        committee.train()


def test_committee_file_round_trip(tmp_path: Path) -> None:
    models = members()
    models[0].metadata = {"seed": 0}
    committee = Committee(models)
    save_committee(committee, tmp_path / "committee.pt", metadata={"purpose": "test"})
    raw = torch.load(tmp_path / "committee.pt", weights_only=True)  # plain tensors and containers
    assert raw["format"] == "reann-driver/committee"
    loaded = load_model(tmp_path / "committee.pt")
    assert isinstance(loaded, Committee)
    assert loaded.metadata == {"purpose": "test"}
    assert loaded.member(0).metadata == {"seed": 0}
    graph = batch(committee)
    for key, value in committee(graph, stress=True).items():
        assert torch.equal(loaded(graph, stress=True)[key].nan_to_num(), value.nan_to_num()), key
    as_float32 = load_model(tmp_path / "committee.pt", dtype="float32")
    assert as_float32.dtype == torch.float32
    single = as_float32(graph.to(dtype=torch.float32))["energy"]
    assert single.dtype == torch.float64  # float32 arithmetic, energies summed in float64
    torch.testing.assert_close(single.double(), committee(graph)["energy"], rtol=1e-4, atol=1e-4)
    back = as_float32.to(torch.float64)(graph)["committee_energy"]  # weights restacked after .to()
    torch.testing.assert_close(back, committee(graph)["committee_energy"], rtol=1e-5, atol=1e-5)


def test_several_model_files_make_one_committee(tmp_path: Path) -> None:
    paths = []
    for seed in range(3):
        paths.append(tmp_path / f"m{seed}.pt")
        tiny_model(seed=seed).save(str(paths[-1]))
    committee = load_committee(paths)
    assert isinstance(committee, Committee) and len(committee) == 3
    assert isinstance(load_committee(paths[:1]), reann_driver.REANN)
    tiny_model(cutoff=3.0).save(str(tmp_path / "other.pt"))
    with pytest.raises(ModelFileError, match=r"other\.pt.*r_c 3\.0"):
        load_committee([paths[0], tmp_path / "other.pt"])
    save_committee(committee, tmp_path / "c.pt")
    with pytest.raises(ModelFileError, match="committee file"):
        load_committee([paths[0], tmp_path / "c.pt"])


def test_bad_committee_files(tmp_path: Path) -> None:
    save_committee(Committee(members()[:2]), tmp_path / "c.pt")
    data = (tmp_path / "c.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated"):
        load_model(tmp_path / "truncated.pt")
    payload = torch.load(tmp_path / "c.pt", weights_only=True)
    for members_section in ([], "nonsense", [{"config": {}}]):
        torch.save({**payload, "members": members_section}, tmp_path / "bad.pt")
        with pytest.raises(ModelFileError, match="lacks"):
            load_model(tmp_path / "bad.pt")
    mixed = [payload["members"][0], {**payload["members"][1], "config": {**payload["members"][1]["config"]}}]
    mixed[1]["config"]["cutoff"] = 9.0
    torch.save({**payload, "members": mixed}, tmp_path / "mixed.pt")
    with pytest.raises(ModelFileError, match="cutoff"):
        load_model(tmp_path / "mixed.pt")


def test_calculator_reports_mean_members_and_spread(tmp_path: Path) -> None:
    models = members()
    save_committee(Committee(models), tmp_path / "c.pt")
    atoms = random_crystal(6, seed=4)
    atoms.calc = REANNCalculator(tmp_path / "c.pt")
    energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    own = []
    for model in models:
        single = atoms.copy()
        single.calc = REANNCalculator(model)
        own.append((single.get_potential_energy(), single.get_forces(), single.get_stress()))
    energies = np.array([e for e, _, _ in own])
    member_forces = np.array([f for _, f, _ in own])
    results = atoms.calc.results
    np.testing.assert_allclose(results["committee_energy"], energies, rtol=1e-12)
    np.testing.assert_allclose(results["committee_forces"], member_forces, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(results["committee_stress"], [s for _, _, s in own], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(energy, energies.mean(), rtol=1e-12)
    np.testing.assert_allclose(forces, member_forces.mean(0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(stress, np.mean([s for _, _, s in own], axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(results["energy_uncertainty"], energies.std(ddof=1), rtol=1e-10)
    spread = np.sqrt(member_forces.var(axis=0, ddof=1).sum(axis=1))
    np.testing.assert_allclose(results["forces_uncertainty"], spread, rtol=1e-10)


def test_calculator_on_a_molecule_has_no_stress() -> None:
    atoms = molecule("H2O")
    atoms.calc = REANNCalculator(Committee(members()[:2]))
    atoms.get_forces()
    assert "committee_stress" not in atoms.calc.results
    assert atoms.calc.results["committee_forces"].shape == (2, 3, 3)
