"""The chunked force pass of large systems (``model/chunked.py``): energies, forces and stress equal the
plain autograd pass to rounding, whatever the chunk boundaries, and finite differences (float64); the
model takes it in evaluation mode from ``CHUNKED_SLOTS`` neighbour slots on and never in training; it
leaves no autograd graph behind."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from conftest import random_cluster, random_crystal, tiny_model

from reann_driver import REANNCalculator
from reann_driver.model import chunked, graph_from_atoms


def both_passes(model, graph, monkeypatch, stress: bool = True) -> tuple[dict, dict]:
    plain = model(graph, forces=True, stress=stress)
    monkeypatch.setattr(chunked, "CHUNKED_SLOTS", 0)
    monkeypatch.setattr(chunked, "CHUNK_SLOTS", 70)  # several chunks, boundaries inside structures
    return plain, model(graph, forces=True, stress=stress)


@pytest.mark.parametrize(
    "options",
    [
        {"iterations": 0},
        {"iterations": 2},
        {"iterations": 3, "pair_repulsion": "zbl"},
        {"iterations": 1, "angular": "spherical", "shared_mixing": True},
    ],
)
def test_chunked_pass_equals_the_plain_pass(options: dict, monkeypatch) -> None:
    model = tiny_model(**options)
    structures = [random_crystal(7, "HO", seed=1), random_crystal(5, "OH", seed=2), random_crystal(6, seed=3)]
    graph = graph_from_atoms(structures, model.species, model.cutoff)
    plain, pieces = both_passes(model, graph, monkeypatch)
    assert plain.keys() == pieces.keys()
    for key in plain:
        scale = float(plain[key].detach().abs().max())
        torch.testing.assert_close(pieces[key], plain[key].detach(), rtol=1e-12, atol=1e-12 * scale)
    assert float(plain["forces"].detach().abs().max()) > 1e-2  # a model that really acts
    assert not any(value.requires_grad for value in pieces.values())  # no graph kept


def test_chunked_pass_of_molecules_and_float32(monkeypatch) -> None:
    model = tiny_model(iterations=2)
    graph = graph_from_atoms(
        [random_cluster(9, seed=5), random_cluster(4, seed=6)], model.species, model.cutoff
    )
    plain, pieces = both_passes(model, graph, monkeypatch, stress=False)
    for key in ("energy", "atomic_energies", "forces"):
        torch.testing.assert_close(pieces[key], plain[key].detach(), rtol=1e-12, atol=1e-11)
    single = tiny_model(iterations=2, dtype=torch.float32)
    graph32 = graph.to(dtype=torch.float32)
    monkeypatch.undo()
    plain, pieces = both_passes(single, graph32, monkeypatch, stress=False)
    torch.testing.assert_close(pieces["forces"], plain["forces"].detach(), rtol=1e-4, atol=1e-4)


def test_the_model_goes_in_chunks_only_for_many_slots_in_evaluation(monkeypatch) -> None:
    model = tiny_model(iterations=1)
    graph = graph_from_atoms([random_crystal(6, seed=4)], model.species, model.cutoff)
    calls: list[int] = []
    original = chunked.chunked_forward
    monkeypatch.setattr(chunked, "chunked_forward", lambda *a: calls.append(1) or original(*a))
    monkeypatch.setattr("reann_driver.model.reann.chunked_forward", chunked.chunked_forward)
    model(graph, forces=True)
    assert calls == []  # below CHUNKED_SLOTS
    monkeypatch.setattr(chunked, "CHUNKED_SLOTS", graph.edge_index.shape[1])
    model(graph, forces=True)
    model(graph, forces=False)  # energies only: the plain pass
    assert calls == [1]
    model.train()
    output = model(graph, forces=True)  # training: a force loss needs autograd's graph
    assert calls == [1] and output["forces"].requires_grad


def test_chunked_forces_and_stress_match_finite_differences(monkeypatch) -> None:
    monkeypatch.setattr(chunked, "CHUNKED_SLOTS", 0)
    monkeypatch.setattr(chunked, "CHUNK_SLOTS", 40)
    atoms = random_crystal(5, "HO", seed=7)
    atoms.calc = REANNCalculator(tiny_model(iterations=2, seed=7, pair_repulsion="zbl"))
    forces, stress = atoms.get_forces(), atoms.get_stress(voigt=False)
    assert np.abs(forces).max() > 1e-4 and np.abs(stress).max() > 1e-4
    assert np.abs(forces - calculate_numerical_forces(atoms, eps=1e-5)).max() < 1e-6
    assert np.abs(stress - calculate_numerical_stress(atoms, eps=1e-6, voigt=False)).max() < 1e-6


def test_no_chunks_while_compiling(monkeypatch) -> None:
    monkeypatch.setattr(chunked, "CHUNKED_SLOTS", 0)
    model = tiny_model()
    graph = graph_from_atoms([random_crystal(5, seed=8)], model.species, model.cutoff)
    assert chunked.goes_in_chunks(graph, None)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)  # torch.compile traces the model
    assert not chunked.goes_in_chunks(graph, None)
