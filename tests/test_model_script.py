"""TorchScript: the scripted model gives the eager model's energies, forces and stress; the dense
neighbour layout accepts a fixed capacity; the printed model names its hyper-parameters."""

from __future__ import annotations

import warnings

import pytest
import torch
from conftest import random_cluster, random_crystal, tiny_model

from reann_driver.model import graph_from_atoms
from reann_driver.model.density import neighbour_slots
from reann_driver.model.runtime import scripted_inference


def script(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.script is deprecated in favour of torch.export
        return torch.jit.script(model)


@pytest.mark.parametrize("angular", ["cartesian", "spherical"])
def test_scripted_model_equals_eager(angular: str) -> None:
    model = tiny_model(species=("H", "C", "O"), angular=angular, iterations=2)
    scripted = script(model)
    structures = [random_crystal(7, "HCO", seed=1), random_crystal(4, "HO", seed=2)]
    graph = graph_from_atoms(structures, model.species, model.cutoff)
    eager = model(graph, forces=True, stress=True)
    compiled = scripted(graph, True, True)
    assert eager.keys() == compiled.keys()
    for key in eager:
        torch.testing.assert_close(compiled[key], eager[key], rtol=1e-12, atol=1e-12)
    assert eager["forces"].abs().max() > 1e-3  # a model that really acts


def test_fixed_capacity_gives_the_same_energies() -> None:
    model = tiny_model()
    graph = graph_from_atoms([random_cluster(8, seed=4)], model.species, model.cutoff)
    n_atoms = graph.positions.shape[0]
    tight = neighbour_slots(graph.edge_index, graph.shifts, n_atoms)
    roomy = neighbour_slots(graph.edge_index, graph.shifts, n_atoms, capacity=tight.neighbour.shape[1] + 5)
    reference = model(graph, forces=True)
    padded = model(graph, forces=True, slots=roomy)
    torch.testing.assert_close(padded["energy"], reference["energy"], rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(padded["forces"], reference["forces"], rtol=1e-13, atol=1e-13)


def test_repr_names_the_hyper_parameters() -> None:
    text = repr(tiny_model(iterations=3))
    for fragment in ("species=['H', 'O']", "cutoff=3.5", "n_radial=4", "l_max=2", "iterations=3"):
        assert fragment in text


def test_scripted_inference_equals_eager_for_every_size() -> None:
    model = tiny_model(iterations=2).eval()
    call = scripted_inference(model)
    for n_cells in (1, 2):  # the script serves every size: no eager fallback for large systems any more
        atoms = random_crystal(6, "HO", seed=3).repeat((n_cells, 1, 1))
        graph = graph_from_atoms([atoms], model.species, model.cutoff)
        eager = model(graph, forces=True, stress=True)
        for _ in range(3):  # TorchScript's profiling runs, then its optimised graph
            scripted = call(graph, forces=True, stress=True)
            for key in ("energy", "forces", "stress", "atomic_energies"):
                torch.testing.assert_close(scripted[key], eager[key], rtol=1e-12, atol=1e-12)
