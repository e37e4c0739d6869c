"""Numerical check of the body-order theorem (docs/theory/body-order.md, docs/theory/verification.md).

The n-body components of a model's energy are obtained exactly by inclusion-exclusion (a Möbius transform
over the lattice of subsets): for a cluster of N atoms we evaluate the model on all 2^N sub-clusters in a
few batched graphs, then E_S = sum_{U subset of S} (-1)^{|S|-|U|} E(U) for every subset S. With polynomial
networks (activation="identity", or a square activation patched in) the largest order with a non-zero
component must equal the theorem's bound B; with a smooth non-polynomial activation it is unbounded.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reann_driver
from reann_driver.model import Graph

RELATIVE_ZERO = 1e-12  # components below this fraction of max |E(U)| count as zero (float64 noise ~1e-15)


def subset_energies(
    model: reann_driver.REANN, species: np.ndarray, positions: np.ndarray, centre: int | None = None
) -> np.ndarray:
    """E(U) for all 2^N subsets U of a molecule (bit a of the index says whether atom a is present).

    With ``centre`` the table holds the atomic energy E_centre(U) (0 when the centre is absent), else the
    total energy. Every pair of present atoms is an edge: the clusters used here lie inside one cutoff
    sphere or the cutoff function removes the pair anyway (f_c = 0 beyond r_c).
    """
    n = len(species)
    species_t = torch.as_tensor(species, dtype=torch.long)
    positions_t = torch.as_tensor(positions, dtype=model.dtype)
    not_self = ~torch.eye(n, dtype=torch.bool)
    bits = 1 << np.arange(n)
    table = np.zeros(2**n)
    chunk = 4096
    for start in range(0, 2**n, chunk):
        codes = np.arange(start, min(start + chunk, 2**n))
        present = torch.as_tensor((codes[:, None] & bits[None, :]) != 0)
        n_sub = present.shape[0]
        index = torch.full((n_sub, n), -1, dtype=torch.long)
        index[present] = torch.arange(int(present.sum()))
        structure, atom = torch.nonzero(present, as_tuple=True)
        pairs = present[:, :, None] & present[:, None, :] & not_self
        pair_s, pair_a, pair_b = torch.nonzero(pairs, as_tuple=True)
        edge_index = torch.stack([index[pair_s, pair_a], index[pair_s, pair_b]])
        graph = Graph(
            positions=positions_t[atom],
            cell=torch.zeros(n_sub, 3, 3, dtype=model.dtype),
            pbc=torch.zeros(n_sub, 3, dtype=torch.bool),
            species=species_t[atom],
            batch=structure,
            edge_index=edge_index,
            shifts=torch.zeros(edge_index.shape[1], 3, dtype=model.dtype),
        )
        with torch.no_grad():
            atomic = model.atomic_energy(graph, graph.positions, graph.cell)
        energies = atomic.new_zeros(n_sub)
        if centre is None:
            energies = energies.index_add(0, structure, atomic)
        else:
            is_centre = atom == centre
            energies[structure[is_centre]] = atomic[is_centre]
        table[codes] = energies.numpy()
    return table


def mobius(table: np.ndarray) -> np.ndarray:
    """n-body components E_S = sum_{U subset of S} (-1)^{|S|-|U|} E(U) for all S (fast, O(N 2^N))."""
    n = int(np.log2(table.size))
    components = table.copy()
    for b in range(n):
        view = components.reshape(-1, 2, 2**b)
        view[:, 1, :] -= view[:, 0, :]
    return components


def order_profile(table: np.ndarray) -> np.ndarray:
    """max_{|S| = n} |E_S| / max_U |E(U)| for n = 0..N."""
    n = int(np.log2(table.size))
    components = np.abs(mobius(table))
    order = np.array([bin(code).count("1") for code in range(2**n)])
    return np.array([components[order == k].max() for k in range(n + 1)]) / np.abs(table).max()


def highest_order(profile: np.ndarray) -> int:
    return int(np.nonzero(profile > RELATIVE_ZERO)[0].max())


class Square(torch.nn.Module):
    """x -> x^2: makes a one-hidden-layer network a polynomial of degree 2 in its input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x


def square_activations(networks: torch.nn.Module) -> None:
    for network in networks.networks:  # type: ignore[union-attr]
        for k, layer in enumerate(network.body):
            if isinstance(layer, torch.nn.Identity):
                network.body[k] = Square()


def polynomial_model(iterations: int, cutoff: float = 5.0, seed: int = 0, activation: str = "identity"):
    """A tiny float64 model with random weights everywhere, including the zero-initialised last layers of
    the coefficient updates (otherwise c^t = c^0 and REANN reduces to EANN)."""
    torch.manual_seed(seed)
    model = reann_driver.REANN(
        ["H", "C"], cutoff=cutoff, n_radial=2, l_max=1, iterations=iterations, hidden=(4,),
        n_orbitals=3, activation=activation, network_layout="pre_norm", layer_norm=False,
        dtype=torch.float64,
    )  # fmt: skip
    for update in model.coefficient_updates:
        for network in update.networks:
            torch.nn.init.normal_(network.output.weight)
            torch.nn.init.normal_(network.output.bias)
    return model.eval()


def random_cluster(n: int, seed: int, radius: float = 2.4, min_distance: float = 0.7) -> np.ndarray:
    """n points in a ball of the given radius (Å), pairwise farther apart than min_distance."""
    rng = np.random.default_rng(seed)
    points: list[np.ndarray] = []
    while len(points) < n:
        p = rng.uniform(-radius, radius, 3)
        if np.linalg.norm(p) < radius and all(np.linalg.norm(p - q) > min_distance for q in points):
            points.append(p)
    return np.array(points)


def body_order_bound(iterations: int, coefficient_degree: int = 1, energy_degree: int = 1) -> int:
    """Theorem 2: B(0) = 3, B(t) = 3 + 2 d (B(t-1) - 1); energy networks of degree p give 1 + p (B(T) - 1)."""
    bound = 3
    for _ in range(iterations):
        bound = 3 + 2 * coefficient_degree * (bound - 1)
    return 1 + energy_degree * (bound - 1)


def test_bound_closed_form() -> None:
    assert [body_order_bound(t) for t in range(4)] == [3, 7, 15, 31] == [2 ** (t + 2) - 1 for t in range(4)]
    assert [body_order_bound(t, coefficient_degree=2) for t in range(3)] == [3, 11, 43]


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
def test_highest_nonzero_order_equals_bound(
    iterations: int, coefficient_degree: int, energy_degree: int, n_atoms: int
) -> None:
    model = polynomial_model(iterations, seed=iterations + 10 * coefficient_degree + 100 * energy_degree)
    if coefficient_degree == 2:
        for update in model.coefficient_updates:
            square_activations(update)
    if energy_degree == 2:
        square_activations(model.energy_networks)
    bound = body_order_bound(iterations, coefficient_degree, energy_degree)
    assert n_atoms > bound  # the cluster is large enough to expose an order above the bound
    species = np.random.default_rng(n_atoms).integers(0, 2, n_atoms)
    profile = order_profile(subset_energies(model, species, random_cluster(n_atoms, seed=n_atoms)))
    assert highest_order(profile) == bound, profile
    assert profile[bound] > 1e3 * profile[bound + 1 :].max()  # clean gap above float64 noise


def test_spherical_basis_has_the_same_bound() -> None:
    """The spherical-harmonic angular basis (addition theorem instead of Lemma 1): B(1) = 7 as well."""
    torch.manual_seed(5)
    model = reann_driver.REANN(
        ["H"], cutoff=5.0, n_radial=2, l_max=1, iterations=1, hidden=(4,), n_orbitals=3,
        angular="spherical", activation="identity", network_layout="pre_norm", layer_norm=False,
        dtype=torch.float64,
    )  # fmt: skip
    for network in model.coefficient_updates[0].networks:
        torch.nn.init.normal_(network.output.weight)
        torch.nn.init.normal_(network.output.bias)
    profile = order_profile(subset_energies(model.eval(), np.zeros(9, dtype=int), random_cluster(9, seed=3)))
    assert highest_order(profile) == body_order_bound(1)
    assert profile[7] > 1e3 * profile[8:].max()


def test_nonpolynomial_activation_has_no_bound() -> None:
    """With silu the formal body order is limited only by the number of atoms: 9-body terms at T = 1."""
    model = polynomial_model(1, activation="silu")
    profile = order_profile(subset_energies(model, np.zeros(9, dtype=int), random_cluster(9, seed=9)))
    assert highest_order(profile) == 9


TETRAHEDRON = np.array([[1, 1, 1], [-1, -1, 1], [-1, 1, -1], [1, -1, -1]]) * 1.09 / np.sqrt(3)  # C-H 1.09 Å


def methane(seed: int = 0) -> np.ndarray:
    jitter = np.random.default_rng(seed).normal(0.0, 0.01, (4, 3))  # break the symmetry, keep H-H ~1.78 Å
    return np.vstack([np.zeros(3), TETRAHEDRON + jitter])


@pytest.mark.parametrize(
    ("cutoff", "expected"),
    [
        (5.0, [3, 5, 5]),  # H-H inside r_c: T = 1 already couples all five atoms
        (1.65, [3, 3, 5]),  # H sees only C (bond graph, PRL Fig. 1b): the five-body term needs T = 2
    ],
)
def test_methane_carbon_energy_body_order(cutoff: float, expected: list[int]) -> None:
    """Highest order of the carbon atomic energy E_C of CH4 for T = 0, 1, 2 (docs/theory/paper.md)."""
    positions = methane()
    species = np.array([1, 0, 0, 0, 0])  # C, H, H, H, H with species ["H", "C"]
    distances = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    hh = distances[1:, 1:][np.triu_indices(4, 1)]
    assert (hh.min() > cutoff) == (cutoff < 5.0)
    found = []
    for iterations in range(3):
        model = polynomial_model(iterations, cutoff=cutoff, seed=iterations)
        found.append(highest_order(order_profile(subset_energies(model, species, positions, centre=0))))
    assert found == expected
