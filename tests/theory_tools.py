"""Shared tools of the theory tests and of docs/theory/scripts (docs/theory/verification.md).

* Models: built through the public constructor ``reann_driver.REANN(...)`` with explicit arguments. The
  parameters that start at zero (the last layers of the coefficient networks, so that an untrained REANN is
  EANN) are found by value and randomised; only ``square_activations`` names parts of the model.
* Many-body expansion: the model evaluated on every sub-cluster of a small cluster, and the exact Möbius
  transform E_S = sum_{U subset of S} (-1)^{|S|-|U|} E(U) (Definition 6 of docs/theory/definitions.md).
* Term trees: the supports of the terms of rho_i^(T) enumerated over the actual atoms of a cutoff graph
  (the Remark on trees of docs/theory/body-order.md), independently of the model code.

Sub-clusters and supports are bit masks: bit a of an index says whether atom a is present.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.sparse.csgraph import shortest_path

import reann_driver
from reann_driver.atomic import atomic_path
from reann_driver.model import Graph, build_graph

FIGURES = Path(__file__).resolve().parents[1] / "docs" / "theory" / "figures"
RELATIVE_ZERO = 1e-12  # components below this fraction of max |E(U)| count as zero (float64 noise ~1e-15)


# --------------------------------------------------------------------------------------------------------
# models


def randomise_zero_parameters(model: torch.nn.Module, seed: int, scale: float = 1.0) -> None:
    """Give every parameter that is identically zero random normal values (std ``scale``).

    At initialisation the coefficient networks output zero, so that REANN equals EANN; the theorems are
    about generic weights, so the tests randomise these layers (and any other zero-initialised ones).
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if not parameter.any():
                noise = torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
                parameter.copy_(scale * noise)


def float64_model(
    species: Sequence[str],
    cutoff: float,
    iterations: int,
    *,
    n_radial: int = 2,
    l_max: int = 1,
    hidden: Sequence[int] = (4,),
    n_orbitals: int = 3,
    activation: str = "identity",
    layer_norm: bool = False,
    network_layout: str = "pre_norm",
    shared_mixing: bool = False,
    angular: str = "cartesian",
    seed: int = 0,
    scale: float = 1.0,
) -> reann_driver.REANN:
    """A small float64 REANN with random weights everywhere.

    ``activation="identity"`` without LayerNorm makes every network affine, the degree-1 polynomial networks
    of the theorems, in either network layout; the ``pre_norm`` layout with one hidden layer is the one
    ``square_activations`` turns into degree 2. Radial functions: ``radial_init="narrow"``, c^0 = 1;
    mixing matrices ``normal`` (generic, independent per L and t, as the theorems assume).
    """
    torch.manual_seed(seed)
    model = reann_driver.REANN(
        species, cutoff=cutoff, n_radial=n_radial, l_max=l_max, iterations=iterations, hidden=hidden,
        coefficient_hidden=hidden, n_orbitals=n_orbitals, angular=angular, activation=activation,
        layer_norm=layer_norm, network_layout=network_layout, shared_mixing=shared_mixing,
        radial_init="narrow", mixing_init="normal", initial_coefficient=1.0, dtype=torch.float64,
    )  # fmt: skip
    randomise_zero_parameters(model, seed, scale)
    return model.eval()


class Square(torch.nn.Module):
    """x -> x^2: makes a one-hidden-layer network a polynomial of degree 2 in its input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x


def square_activations(model: reann_driver.REANN, part: str) -> None:
    """Replace the identity activations of the coefficient networks (``part="coefficients"``) or of the
    energy networks (``part="energy"``) by x -> x^2: polynomial networks of degree 2."""
    modules = model.coefficient_updates if part == "coefficients" else model.energy_networks
    for module in modules.modules():
        for name, child in module.named_children():
            if isinstance(child, torch.nn.Identity):
                setattr(module, name, Square())


def atomic_energies(model: reann_driver.REANN, species: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """E_i in eV of one molecule (positions in Å, no periodicity)."""
    graph = build_graph(
        species=[species], positions=[positions], cells=[np.zeros((3, 3))], pbcs=[[False] * 3],
        cutoff=model.cutoff, dtype=torch.float64,
    )  # fmt: skip
    with torch.no_grad():
        return model(graph, forces=False)["atomic_energies"].numpy()


# --------------------------------------------------------------------------------------------------------
# many-body expansion of the model


def subset_energies(
    model: reann_driver.REANN, species: np.ndarray, positions: np.ndarray, centre: int | None = None
) -> np.ndarray:
    """E(U) for all 2^N subsets U of a molecule.

    With ``centre`` the table holds the atomic energy E_centre(U) (0 when the centre is absent), else the
    total energy. Every pair of present atoms is an edge; the cutoff function removes pairs beyond r_c
    (f_c = 0 there), so the sub-cluster sees exactly its own cutoff graph.
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
            atomic = model(graph, forces=False)["atomic_energies"]
        energies = atomic.new_zeros(n_sub)
        if centre is None:
            energies = energies.index_add(0, structure, atomic)
        else:
            is_centre = atom == centre
            energies[structure[is_centre]] = atomic[is_centre]
        table[codes] = energies.numpy()
    return table


def mobius(table: np.ndarray) -> np.ndarray:
    """Components F_S = sum_{U subset of S} (-1)^{|S|-|U|} F(U) for all S (fast, O(N 2^N))."""
    components = np.array(table, dtype=np.float64)
    for b in range(int(np.log2(components.size))):
        view = components.reshape(-1, 2, 2**b)
        view[:, 1, :] -= view[:, 0, :]
    return components


def zeta(table: np.ndarray) -> np.ndarray:
    """Subset sums Z(S) = sum_{U subset of S} F(U) for all S (the inverse of ``mobius``)."""
    sums = np.array(table, dtype=np.float64)
    for b in range(int(np.log2(sums.size))):
        view = sums.reshape(-1, 2, 2**b)
        view[:, 1, :] += view[:, 0, :]
    return sums


def popcount(size: int) -> np.ndarray:
    """Number of atoms in each subset code 0..size-1."""
    codes = np.arange(size)
    return np.array([bin(int(c)).count("1") for c in codes])


def order_profile(table: np.ndarray) -> np.ndarray:
    """max_{|S| = n} |E_S| / max_U |E(U)| for n = 0..N."""
    components = np.abs(mobius(table))
    order = popcount(table.size)
    return np.array([components[order == k].max() for k in range(order.max() + 1)]) / np.abs(table).max()


def highest_order(profile: np.ndarray) -> int:
    return int(np.nonzero(profile > RELATIVE_ZERO)[0].max())


def nonzero_components(table: np.ndarray) -> np.ndarray:
    """Boolean mask of the subsets S with a component above RELATIVE_ZERO of max |E(U)|."""
    return np.abs(mobius(table)) > RELATIVE_ZERO * np.abs(table).max()


# --------------------------------------------------------------------------------------------------------
# term trees over the atoms of a cutoff graph


def cutoff_graph(positions: np.ndarray, cutoff: float) -> np.ndarray:
    """Adjacency matrix: j is a neighbour of i when 0 < r_ij < r_c."""
    distances = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    return (distances < cutoff) & ~np.eye(len(positions), dtype=bool)


def hop_distances(adjacency: np.ndarray) -> np.ndarray:
    """Graph distance h(i, j) in the cutoff graph (inf when disconnected)."""
    return shortest_path(adjacency.astype(float), unweighted=True)


def union_products(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The family {X | Y : X in first, Y in second} of two families of supports (boolean indicators)."""
    return mobius(zeta(first) * zeta(second)) > 0.5


def term_supports(
    adjacency: np.ndarray, centre: int, iterations: int, degree: int = 1, internal: bool = False
) -> np.ndarray:
    """Indicator of the supports of the terms of rho_centre^(T), enumerated as trees over the atoms.

    A term of rho_a^(t) picks two neighbours j, k of a (j = k allowed) and a term of c_j^(t) and of c_k^(t);
    a term of c_j^(t) is the constant c^0 (a leaf) or a product of e <= ``degree`` terms of rho_j^(t-1).
    With ``internal`` the index has 2N bits: the low N mark every atom of the term, the high N the atoms
    that carry a density of their own (the centre and every atom entering through an updated coefficient,
    the internal nodes of the tree).
    """
    n = len(adjacency)
    size = 1 << (2 * n if internal else n)

    def single(atom: int, is_internal: bool) -> np.ndarray:
        family = np.zeros(size, dtype=bool)
        family[(1 << atom) | ((1 << (n + atom)) if is_internal and internal else 0)] = True
        return family

    coefficients = [single(j, False) for j in range(n)]  # c^(0): constants
    densities: list[np.ndarray] = []
    for t in range(iterations + 1):
        densities = []
        for a in range(n):
            pool = np.zeros(size, dtype=bool)
            for j in np.flatnonzero(adjacency[a]):
                pool |= coefficients[j]
            densities.append(union_products(single(a, True), union_products(pool, pool)))
        if t < iterations:
            coefficients = [single(j, False) | polynomial_family(densities[j], degree) for j in range(n)]
    return densities[centre]


def polynomial_family(family: np.ndarray, degree: int) -> np.ndarray:
    """Supports of the non-constant monomials of degree <= ``degree`` in quantities with these supports."""
    power, result = family, family.copy()
    for _ in range(degree - 1):
        power = union_products(power, family)
        result |= power
    return result


def energy_supports(adjacency: np.ndarray, centre: int, iterations: int, degree: int = 1) -> np.ndarray:
    """Supports of the terms of E_centre = E(rho_centre^(T)) + e_Z with linear energy networks."""
    family = term_supports(adjacency, centre, iterations, degree)
    family[1 << centre] = True  # the constant of the energy network
    return family


def largest_support(family: np.ndarray, n: int, internal: bool = False) -> int:
    """Largest number of distinct atoms (with ``internal``: of internal nodes) of a support in the family."""
    codes = np.flatnonzero(family)
    if internal:
        codes = codes >> n
    return max(bin(int(c)).count("1") for c in codes)


def three_body_functions(adjacency: np.ndarray, centre: int, iterations: int) -> set[tuple[int, int, int]]:
    """The three-body functions psi(a; b, c) (b < c two neighbours of a) occurring in terms of rho_centre^(T).

    psi(a; b, c) occurs when a is an internal node of a term tree with children b and c; the children of an
    internal node can be any two of its neighbours (their own subtrees cut to leaves), so the set is every
    neighbour pair of every atom that is an internal node of some tree (linear networks, N <= 10 atoms).
    """
    n = len(adjacency)
    codes = np.flatnonzero(term_supports(adjacency, centre, iterations, internal=True)) >> n
    internal = [a for a in range(n) if any(int(c) >> a & 1 for c in codes)]
    return {
        (a, int(b), int(c))
        for a in internal
        for b in np.flatnonzero(adjacency[a])
        for c in np.flatnonzero(adjacency[a])
        if b < c
    }


# --------------------------------------------------------------------------------------------------------
# geometries

TETRAHEDRON = np.array([[1, 1, 1], [-1, -1, 1], [-1, 1, -1], [1, -1, -1]]) * 1.09 / np.sqrt(3)  # C-H 1.09 Å


def methane(seed: int = 0) -> np.ndarray:
    """C at the origin, then four H (Å), jittered by 0.01 Å so that no symmetry hides a component."""
    jitter = np.random.default_rng(seed).normal(0.0, 0.01, (4, 3))
    return np.vstack([np.zeros(3), TETRAHEDRON + jitter])


def random_cluster(n: int, seed: int, radius: float = 2.4, min_distance: float = 0.7) -> np.ndarray:
    """n points in a ball of the given radius (Å), pairwise farther apart than min_distance."""
    rng = np.random.default_rng(seed)
    points: list[np.ndarray] = []
    while len(points) < n:
        p = rng.uniform(-radius, radius, 3)
        if np.linalg.norm(p) < radius and all(np.linalg.norm(p - q) > min_distance for q in points):
            points.append(p)
    return np.array(points)


def grown_cluster(n: int, seed: int, cutoff: float = 2.0, bond: float = 1.2) -> np.ndarray:
    """A branched cluster with rings (Å): each new atom about ``bond`` from a random earlier one.

    No pair distance lies in [0.72 r_c, r_c + 0.2 Å] (so that no cutoff factor f_c is tiny and the cutoff
    graph is clear-cut) and none below 0.9 Å."""
    rng = np.random.default_rng(seed)
    points = [np.zeros(3)]
    for _ in range(100_000):
        if len(points) == n:
            return np.array(points)
        step = rng.normal(size=3)
        candidate = points[rng.integers(len(points))] + step * bond * rng.uniform(0.9, 1.15) / np.linalg.norm(
            step
        )
        distances = np.linalg.norm(np.array(points) - candidate, axis=1)
        if distances.min() > 0.9 and not ((distances > 0.72 * cutoff) & (distances < cutoff + 0.2)).any():
            points.append(candidate)
    raise RuntimeError(f"could not grow a cluster of {n} atoms (seed {seed})")


# --------------------------------------------------------------------------------------------------------
# figure scripts (docs/theory/scripts)


def figure_arguments(description: str, default: Path, argv: Sequence[str] | None) -> Path:
    """Parse ``--out PATH --force`` of a figure script; refuse to overwrite a file without --force."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=default, help=f"PNG to write (default {default.name})")
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.force:
        parser.error(f"{args.out} exists; pass --force to overwrite it")
    return args.out


def save_figure(figure: Any, path: Path) -> None:
    """Write a matplotlib figure as PNG atomically (a temporary file renamed into place)."""
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=120)
    print(f"wrote {path}")
