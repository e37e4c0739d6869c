"""The hand-written force pass (``REANN.adjoint_pass``, taken in evaluation mode) equals autograd's pass
(``adjoint_forces = False``, the training path) for every model option, molecules and crystals, float32
and float64; the reverse-slot table it sums through is right, and lists without reverses fall back to a
scatter. Its forces and stress against finite differences are in ``test_model_derivatives.py`` (the
calculator takes this pass)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import random_cluster, random_crystal, tiny_model

from reann_driver.ipi.static import StaticNeighbours
from reann_driver.model import graph_from_atoms
from reann_driver.model.density import NeighbourSlots, neighbour_slots, sum_over_reverse
from reann_driver.model.networks import ElementNetworks
from reann_driver.model.runtime import CompileError, compiled

OPTIONS = {
    "eann": {"iterations": 0},
    "reann": {"iterations": 2},
    "deep_zbl": {"iterations": 3, "pair_repulsion": "zbl"},
    "spherical_shared": {"iterations": 2, "angular": "spherical", "shared_mixing": True},
    # every activation's and layout's hand-written vector-Jacobian product (``networks.py``), L_max 3
    "pre_norm_tanh": {"iterations": 1, "network_layout": "pre_norm", "activation": "tanh", "l_max": 3},
    "pre_norm_gelu_no_norm": {
        "iterations": 1,
        "network_layout": "pre_norm",
        "activation": "gelu",
        "layer_norm": False,
    },
    "softplus_widths": {
        "iterations": 1,
        "activation": "softplus",
        "hidden": (12, 8),
        "coefficient_hidden": (6,),
    },
    "silu_identity": {"iterations": 2, "activation": "silu", "l_max": 1, "coefficient_hidden": (8, 8, 8)},
    "identity_eann": {"iterations": 0, "activation": "identity", "l_max": 0},
}


def both_passes(model, graph, slots=None) -> tuple[dict, dict]:
    adjoint = model(graph, forces=True, stress=True, slots=slots)
    model.adjoint_forces = False
    try:
        reference = model(graph, forces=True, stress=True, slots=slots)
    finally:
        model.adjoint_forces = True
    return adjoint, reference


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_adjoint_pass_equals_autograd(name: str) -> None:
    model = tiny_model(species=("H", "C", "O"), **OPTIONS[name])  # type: ignore[arg-type]
    structures = [random_crystal(7, "HCO", seed=1), random_cluster(6, "HCO", seed=2)]
    structures.append(random_crystal(3, "HO", seed=5, scale=2.4))  # a cell below the cutoff: images
    graph = graph_from_atoms(structures, model.species, model.cutoff)
    adjoint, reference = both_passes(model, graph)
    assert adjoint.keys() == reference.keys()
    for key in reference:
        # equal_nan: the molecule's stress is NaN both ways (no volume); its virial is -sum r (x) dE/dr
        torch.testing.assert_close(adjoint[key], reference[key], rtol=1e-11, atol=1e-11, equal_nan=True)
    assert reference["forces"].abs().max() > 1e-3  # a model that really acts
    assert bool(reference["stress"][1].isnan().all()) and bool(reference["stress"][0].isfinite().all())


def test_blocks_of_mixing_products_change_nothing() -> None:
    """The density's mixed orbitals are formed ``block`` atoms at a time: three atoms per block (and the
    remainder) give the densities, forces and stress of one block, in both passes."""
    model = tiny_model(iterations=2)
    graph = graph_from_atoms([random_crystal(8, "HO", seed=4)], model.species, model.cutoff)
    whole = both_passes(model, graph)
    model.density.block = 3
    blocks = both_passes(model, graph)
    for one, other in zip(whole, blocks):
        for key in one:
            torch.testing.assert_close(other[key], one[key], rtol=1e-12, atol=1e-12)


def test_density_forms_agree() -> None:
    """The Gram form (autograd recording) and the mixed orbitals in blocks (no autograd) give one rho."""
    model = tiny_model(iterations=1, l_max=3)
    sums = torch.randn(11, model.angular.size, 4, dtype=torch.float64)
    model.density.block = 4
    for iteration in (0, 1):
        gram = model.density.from_sums(sums, iteration)
        with torch.no_grad():
            mixed = model.density.from_sums(sums, iteration)
        assert gram.requires_grad and not mixed.requires_grad
        torch.testing.assert_close(mixed, gram.detach(), rtol=1e-13, atol=1e-13)


def test_adjoint_pass_in_float32() -> None:
    model = tiny_model(iterations=2, dtype=torch.float32)
    graph = graph_from_atoms(
        [random_crystal(6, "HO", seed=3)], model.species, model.cutoff, dtype=torch.float32
    )
    adjoint, reference = both_passes(model, graph)
    assert adjoint["forces"].dtype == torch.float32
    for key in reference:
        torch.testing.assert_close(adjoint[key], reference[key], rtol=2e-4, atol=2e-5)


def test_adjoint_pass_with_padded_slots_and_a_skin() -> None:
    """Extra empty columns and neighbours beyond the cutoff (the static evaluator's skin) change nothing."""
    model = tiny_model(iterations=2)
    atoms = random_crystal(6, "HO", seed=4)
    graph = graph_from_atoms([atoms], model.species, model.cutoff)
    skinned = graph_from_atoms([atoms], model.species, model.cutoff + 0.7)
    n_atoms = len(atoms)
    tight = neighbour_slots(skinned.edge_index, skinned.shifts, n_atoms)
    roomy = neighbour_slots(
        skinned.edge_index, skinned.shifts, n_atoms, capacity=tight.neighbour.shape[1] + 3
    )
    plain = model(graph, forces=True, stress=True)
    padded = model(skinned, forces=True, stress=True, slots=roomy)
    for key in plain:
        torch.testing.assert_close(padded[key], plain[key], rtol=1e-12, atol=1e-12)


def test_outputs_are_detached_in_evaluation_and_differentiable_in_training() -> None:
    model = tiny_model(iterations=1)
    graph = graph_from_atoms([random_cluster(5, seed=6)], model.species, model.cutoff)
    evaluated = model(graph, forces=True)
    assert not evaluated["energy"].requires_grad and not evaluated["forces"].requires_grad
    model.train()
    trained = model(graph, forces=True)  # a force loss needs the graph: autograd's pass, create_graph
    assert trained["forces"].requires_grad
    torch.testing.assert_close(trained["forces"].detach(), evaluated["forces"], rtol=1e-11, atol=1e-11)


def test_reverse_slots_point_at_the_reverse_edge() -> None:
    model = tiny_model()
    graph = graph_from_atoms([random_crystal(5, "HO", seed=7, scale=2.6)], model.species, model.cutoff)
    n_atoms = graph.positions.shape[0]
    slots = neighbour_slots(graph.edge_index, graph.shifts, n_atoms)
    capacity = slots.neighbour.shape[1]
    reverse = slots.reverse.view(-1)
    centres = torch.arange(n_atoms).repeat_interleave(capacity)
    mask, neighbour, shifts = slots.mask.view(-1), slots.neighbour.view(-1), slots.shifts.view(-1, 3)
    assert bool(mask.any())
    assert torch.equal(neighbour[reverse][mask], centres[mask])  # (i, j, S) -> (j, i, -S)
    assert torch.equal(centres[reverse][mask], neighbour[mask])
    torch.testing.assert_close(shifts[reverse][mask], -shifts[mask])
    assert torch.equal(reverse[reverse], torch.arange(reverse.numel()))  # an involution
    empty = torch.nonzero(~mask).view(-1)
    assert torch.equal(reverse[empty], empty)  # empty slots are their own reverse


def test_sum_over_reverse_equals_a_scatter_and_falls_back_without_reverses() -> None:
    model = tiny_model()
    graph = graph_from_atoms([random_crystal(6, "HO", seed=8)], model.species, model.cutoff)
    n_atoms = graph.positions.shape[0]
    slots = neighbour_slots(graph.edge_index, graph.shifts, n_atoms)
    values = torch.randn(*slots.neighbour.shape, 4, dtype=torch.float64) * slots.mask[:, :, None]
    scatter = torch.zeros(n_atoms, 4, dtype=torch.float64).index_add_(
        0, slots.neighbour.view(-1), values.view(-1, 4)
    )
    torch.testing.assert_close(sum_over_reverse(values, slots), scatter, rtol=1e-14, atol=1e-14)
    # a half list (i < j only) has no reverses: an empty table, and the sum is the scatter
    half = graph.edge_index[0] < graph.edge_index[1]
    one_way = neighbour_slots(graph.edge_index[:, half], graph.shifts[half], n_atoms)
    assert one_way.reverse.numel() == 0
    values = torch.randn(*one_way.neighbour.shape, 4, dtype=torch.float64) * one_way.mask[:, :, None]
    scatter = torch.zeros(n_atoms, 4, dtype=torch.float64).index_add_(
        0, one_way.neighbour.view(-1), values.view(-1, 4)
    )
    torch.testing.assert_close(sum_over_reverse(values, one_way), scatter, rtol=1e-14, atol=1e-14)


def test_adjoint_pass_on_a_list_without_reverses_uses_the_scatter() -> None:
    model = tiny_model(iterations=2)
    graph = graph_from_atoms([random_crystal(6, "HO", seed=9)], model.species, model.cutoff)
    slots = neighbour_slots(graph.edge_index, graph.shifts, graph.positions.shape[0])
    without = NeighbourSlots(slots.neighbour, slots.shifts, slots.mask, torch.empty(0, dtype=torch.long))
    with_reverse = model(graph, forces=True, stress=True, slots=slots)
    scattered = model(graph, forces=True, stress=True, slots=without)
    for key in with_reverse:
        torch.testing.assert_close(scattered[key], with_reverse[key], rtol=1e-12, atol=1e-12)


def test_static_evaluator_slots_carry_reverses() -> None:
    atoms = random_crystal(6, "HO", seed=10)
    model = tiny_model()
    species = np.array([model.species.index(symbol) for symbol in atoms.get_chemical_symbols()])
    evaluator = StaticNeighbours(species, 2, model.cutoff, 0.5, True, torch.device("cpu"), torch.float64)
    step = evaluator.update(atoms.positions[None], np.asarray(atoms.cell)[None])
    assert step.slots.reverse.numel() == step.slots.neighbour.numel()  # the gather, not the scatter
    plain = model(graph_from_atoms([atoms], model.species, model.cutoff), forces=True, stress=True)
    kept = model(step.graph, forces=True, stress=True, slots=step.slots, groups=step.groups)
    for key in plain:
        torch.testing.assert_close(kept[key], plain[key], rtol=1e-12, atol=1e-12)


def test_compiled_model_takes_autograd_pass_and_leaves_the_callers_model_alone() -> None:
    model = tiny_model(iterations=1)
    try:
        wrapper = compiled(model, torch.device("cpu"))  # compiles lazily, at the first call
    except CompileError:
        pytest.skip("no C++ compiler")
    traced = wrapper._orig_mod  # type: ignore[union-attr]
    assert traced.adjoint_forces is False and model.adjoint_forces is True
    assert traced.initial_coefficients is model.initial_coefficients  # the same parameters, not a copy


@pytest.mark.parametrize("layout", ["reference", "pre_norm"])
@pytest.mark.parametrize("activation", ["relu_like", "silu", "tanh", "gelu", "softplus", "identity"])
def test_network_vjp_equals_autograd(layout: str, activation: str) -> None:
    """``forward_saving`` gives ``forward``'s output, ``vjp`` autograd's input gradient; the tapes empty."""
    torch.manual_seed(3)
    networks = ElementNetworks(2, 5, (6, 6, 4), 3, activation=activation, layout=layout).double()
    for parameter in networks.parameters():  # away from the zero initialisation of the output layers
        torch.nn.init.normal_(parameter, std=0.5)
    x = torch.randn(7, 5, dtype=torch.float64, requires_grad=True)
    groups = [torch.tensor([0, 2, 3, 6]), torch.tensor([1, 4, 5])]
    d_out = torch.randn(7, 3, dtype=torch.float64)
    (expected,) = torch.autograd.grad(networks(x, groups), [x], [d_out])
    tapes: list[list[torch.Tensor]] = []
    with torch.no_grad():
        out = networks.forward_saving(x, groups, tapes)
        d_x = networks.vjp(d_out, groups, tapes)
    torch.testing.assert_close(out, networks(x, groups), rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(d_x, expected, rtol=1e-13, atol=1e-13)
    assert all(len(tape) == 0 for tape in tapes)
