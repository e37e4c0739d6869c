"""Body order of REANN (docs/theory/body-order.md, docs/theory/paper.md, docs/theory/verification.md).

The n-body components of a model's energy are obtained exactly by inclusion-exclusion (a Möbius transform
over the lattice of subsets, tests/theory_tools.py). With polynomial networks (activation="identity", or a
square activation patched in) the components that are non-zero must be exactly those predicted by the term
trees of the theory: the bound B_d(T) of Theorem 2 on clusters pairwise within r_c, and on any cutoff graph
the supports of the trees over its atoms (Theorem 3). With a smooth non-polynomial activation there is no
bound.
"""

from __future__ import annotations

import numpy as np
import pytest
from theory_tools import (
    RELATIVE_ZERO,
    cutoff_graph,
    energy_supports,
    float64_model,
    grown_cluster,
    highest_order,
    largest_support,
    methane,
    mobius,
    order_profile,
    random_cluster,
    square_activations,
    subset_energies,
    term_supports,
    three_body_functions,
)


def body_order_bound(iterations: int, coefficient_degree: int = 1, energy_degree: int = 1) -> int:
    """Theorem 2: B(0) = 3, B(t) = 3 + 2 d (B(t-1) - 1); energy networks of degree p give 1 + p (B(T) - 1)."""
    bound = 3
    for _ in range(iterations):
        bound = 3 + 2 * coefficient_degree * (bound - 1)
    return 1 + energy_degree * (bound - 1)


@pytest.mark.parametrize(
    ("iterations", "coefficient_degree", "energy_degree", "n_atoms"),
    [
        (0, 1, 1, 5),  # EANN: three-body
        (1, 1, 1, 9),  # B(1) = 7
        (2, 1, 1, 16),  # B(2) = 15: 2^16 sub-clusters
        (1, 2, 1, 12),  # quadratic coefficient networks: 3 + 4 (3 - 1) = 11
        (0, 1, 2, 6),  # quadratic energy network: 1 + 2 (3 - 1) = 5
        (1, 1, 2, 14),  # 1 + 2 (7 - 1) = 13
    ],
)
def test_every_order_up_to_the_bound_and_none_above(
    iterations: int, coefficient_degree: int, energy_degree: int, n_atoms: int
) -> None:
    """Theorems 2 and 3 on a cluster pairwise within r_c: orders 1..B non-zero, every order above B zero."""
    seed = iterations + 10 * coefficient_degree + 100 * energy_degree
    model = float64_model(["H", "C"], 5.0, iterations, seed=seed)
    if coefficient_degree == 2:
        square_activations(model, "coefficients")
    if energy_degree == 2:
        square_activations(model, "energy")
    bound = body_order_bound(iterations, coefficient_degree, energy_degree)
    assert n_atoms > bound  # the cluster is large enough to expose an order above the bound
    species = np.random.default_rng(n_atoms).integers(0, 2, n_atoms)
    profile = order_profile(subset_energies(model, species, random_cluster(n_atoms, seed=n_atoms)))
    assert highest_order(profile) == bound, profile
    assert profile[1 : bound + 1].min() > 1e3 * profile[bound + 1 :].max(), profile  # clean gap


@pytest.mark.parametrize(("network_layout", "shared_mixing"), [("reference", False), ("pre_norm", True)])
def test_bound_holds_for_either_layout_and_mixing(network_layout: str, shared_mixing: bool) -> None:
    """Theorem 2 does not depend on the residual layout (identity activations, no LayerNorm: affine either
    way) nor on whether the orbital mixing matrices are shared by the iterations: B(1) = 7."""
    model = float64_model(["H", "C"], 5.0, 1, network_layout=network_layout, shared_mixing=shared_mixing)
    species = np.random.default_rng(9).integers(0, 2, 9)
    profile = order_profile(subset_energies(model, species, random_cluster(9, seed=9)))
    assert highest_order(profile) == 7
    assert profile[1:8].min() > 1e3 * profile[8:].max()


def test_spherical_basis_has_the_same_bound() -> None:
    """The spherical-harmonic angular basis (addition theorem instead of Lemma 1): B(1) = 7 as well."""
    model = float64_model(["H"], 5.0, 1, angular="spherical", seed=5)
    profile = order_profile(subset_energies(model, np.zeros(9, dtype=int), random_cluster(9, seed=3)))
    assert highest_order(profile) == body_order_bound(1)
    assert profile[1:8].min() > 1e3 * profile[8:].max()


def test_nonpolynomial_activation_has_no_bound() -> None:
    """With silu the formal body order is limited only by the number of atoms: 9-body terms at T = 1."""
    model = float64_model(["H", "C"], 5.0, 1, activation="silu")
    profile = order_profile(subset_energies(model, np.zeros(9, dtype=int), random_cluster(9, seed=9)))
    assert highest_order(profile) == 9


METHANE_SPECIES = np.array([1, 0, 0, 0, 0])  # C, H, H, H, H with species ["H", "C"]
BRANCHED = grown_cluster(9, seed=2, bond=1.1)  # 13 edges (rings), up to 4 hops: neither a clique nor a path


@pytest.mark.parametrize(
    ("positions", "species", "cutoff", "max_iterations"),
    [
        (methane(), METHANE_SPECIES, 5.0, 3),  # H-H inside r_c: the cutoff graph is complete
        (methane(), METHANE_SPECIES, 1.65, 3),  # bond graph: each H sees only C
        (BRANCHED, np.random.default_rng(2).integers(0, 2, 9), 2.0, 2),
    ],
    ids=["methane-complete", "methane-bond-graph", "branched-9"],
)
def test_term_trees_predict_every_nonzero_component(
    positions: np.ndarray, species: np.ndarray, cutoff: float, max_iterations: int
) -> None:
    """Theorem 3: (E_c)_S != 0 exactly for the supports S of the term trees over the atoms (Lemma 2).

    The trees are enumerated from the cutoff graph alone (theory_tools.term_supports); the components come
    from the model. Every predicted component is at least 10^6 times the largest of the others (round-off).
    """
    adjacency = cutoff_graph(positions, cutoff)
    centre = int(np.argmax(adjacency.sum(axis=1)))
    for iterations in range(max_iterations + 1):
        predicted = energy_supports(adjacency, centre, iterations)
        model = float64_model(["H", "C"], cutoff, iterations, seed=iterations)
        table = subset_energies(model, species, positions, centre=centre)
        components = np.abs(mobius(table)) / np.abs(table).max()
        assert np.array_equal(components > RELATIVE_ZERO, predicted), iterations
        assert components[predicted].min() > 1e6 * max(components[~predicted].max(), 1e-17), iterations


def test_branched_cluster_orders_are_below_the_clique_bound() -> None:
    """On a sparse cutoff graph the order is set by the trees, not by B(T): 3, 6, 8 here (B = 3, 7, 15)."""
    adjacency = cutoff_graph(BRANCHED, 2.0)
    centre = int(np.argmax(adjacency.sum(axis=1)))
    orders = [largest_support(energy_supports(adjacency, centre, t), 9) for t in range(3)]
    assert orders == [3, 6, 8]


@pytest.mark.parametrize("cutoff", [5.0, 1.65])
def test_methane_tree_nodes_per_convention(cutoff: float) -> None:
    """docs/theory/paper.md: distinct atoms reached by the terms of rho_C^(T), T = 0..3, counting all tree
    nodes (body order; the model agrees, test above) and counting only internal nodes (atoms that carry a
    density of their own, the centre or an updated coefficient: convention C)."""
    adjacency = cutoff_graph(methane(), cutoff)
    assert adjacency[1:, 1:].any() == (cutoff == 5.0)  # H-H inside r_c only for the realistic cutoff
    all_nodes = [largest_support(term_supports(adjacency, 0, t), 5) for t in range(4)]
    internal = [
        largest_support(term_supports(adjacency, 0, t, internal=True), 5, internal=True) for t in range(4)
    ]
    if cutoff == 5.0:
        assert all_nodes == [3, 5, 5, 5] and internal == [1, 3, 5, 5]  # convention C: T = 2
    else:
        assert all_nodes == [3, 3, 5, 5] and internal == [1, 3, 3, 5]  # bond graph, convention C: T = 3


def test_methane_three_body_functions() -> None:
    """The distinct three-body functions psi(a; b, c) (b != c neighbours of a) in the terms of rho_C^(T):
    6 at T = 0 and 6 + 4 x 6 = 30 from T = 1 on with H-H inside r_c; 6 for every T in the bond graph."""
    for cutoff, expected in ((5.0, [6, 30, 30, 30]), (1.65, [6, 6, 6, 6])):
        adjacency = cutoff_graph(methane(), cutoff)
        assert [len(three_body_functions(adjacency, 0, t)) for t in range(4)] == expected


@pytest.mark.parametrize(
    ("iterations", "sizes"),
    [(0, [2, 3, 4]), (1, [4, 6, 7, 8]), (2, [12])],
)
def test_corollary_2_on_cliques(iterations: int, sizes: list[int]) -> None:
    """Corollary 2: with the centre and its N neighbours pairwise within r_c, the (N+1)-body component of
    E_centre is non-zero iff N + 1 <= B(T) (sizes below B need trees with repeated atoms)."""
    bound = body_order_bound(iterations)
    for n_atoms in sizes:
        model = float64_model(["H", "C"], 5.0, iterations, seed=n_atoms)
        positions = random_cluster(n_atoms, seed=n_atoms, radius=2.0)
        species = np.random.default_rng(n_atoms).integers(0, 2, n_atoms)
        table = subset_energies(model, species, positions, centre=0)
        whole = abs(mobius(table)[-1]) / np.abs(table).max()
        if n_atoms <= bound:
            assert whole > 1e-9, (n_atoms, whole)
        else:
            assert whole < 1e-13, (n_atoms, whole)
