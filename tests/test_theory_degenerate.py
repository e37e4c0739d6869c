"""CH4-like environments with identical three-body (EANN) carbon densities (docs/theory/limits.md).

Construction (docs/theory/verification.md): two hydrogens at r_A, two at r_B, the same cosine gamma inside
each like pair, cross dot products p, q, s, t. Configuration 1 puts (p, q / s, t) on (A1B1, A1B2 / A2B1,
A2B2), configuration 2 swaps q and s. Both Gram matrices share the multiset of entries, hence every
three-body sum; det G1 - det G2 = -2 (p - t)(q - s)(g r_B^2 - h r_A^2), so both are realisable in 3D when
det G1(gamma) = 0. For distinct p, q, s, t the two are not related by any rotation, reflection or
permutation of the hydrogens.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import brentq
from theory_tools import atomic_energies, float64_model

import reann_driver

R_A, R_B = 1.09, 1.22  # Å
CROSS_COSINES = (-0.57, -0.22, -0.50, -0.15)  # p, q, s, t in units of r_A r_B


def gram_matrices(gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """Gram matrices (H order A1, A2, B1, B2) of the two configurations for like-pair cosine gamma."""
    p, q, s, t = (R_A * R_B * c for c in CROSS_COSINES)
    g, h = gamma * R_A**2, gamma * R_B**2
    first = np.array([[R_A**2, g, p, q], [g, R_A**2, s, t], [p, s, R_B**2, h], [q, t, h, R_B**2]])
    second = np.array([[R_A**2, g, p, s], [g, R_A**2, q, t], [p, q, R_B**2, h], [s, t, h, R_B**2]])
    return first, second


def vectors_from_gram(gram: np.ndarray) -> np.ndarray:
    """Four vectors in R^3 with the given rank-3 Gram matrix (rows), up to an orthogonal transformation."""
    values, vectors = np.linalg.eigh(gram)
    assert values[0] > -1e-12 and values[1] > 0.1
    return vectors[:, 1:] * np.sqrt(values[1:])


def degenerate_pair() -> tuple[np.ndarray, np.ndarray]:
    """Positions (C first, then 4 H, Å) of the two CH4-like environments."""
    gamma = brentq(lambda x: np.linalg.det(gram_matrices(x)[0]), -0.4, -0.1, xtol=1e-16, rtol=1e-15)
    return tuple(np.vstack([np.zeros(3), vectors_from_gram(g)]) for g in gram_matrices(gamma))  # type: ignore[return-value]


METHANE_SPECIES = np.array([1, 0, 0, 0, 0])  # C, then 4 H, with species ["H", "C"]
DEGENERATE = 1e-12  # relative |E_C(1) - E_C(2)| at or below round-off (observed <= 1.1e-15 over 20 seeds)
SEPARATED = 1e-7  # relative difference of a separating model (observed >= 1.5e-4 over 20 seeds, T = 1..3)


def random_model(iterations: int, cutoff: float, seed: int) -> reann_driver.REANN:
    """A silu REANN with random weights everywhere (zero-initialised layers randomised, std 0.5)."""
    return float64_model(
        ["H", "C"], cutoff, iterations, n_radial=4, l_max=2, hidden=(16,), n_orbitals=8, activation="silu",
        seed=seed, scale=0.5,
    )  # fmt: skip


def carbon_energy_difference(model: reann_driver.REANN, first: np.ndarray, second: np.ndarray) -> float:
    """|E_C(first) - E_C(second)| / |E_C(first)| for two CH4-like structures (C first)."""
    e_1, e_2 = (atomic_energies(model, METHANE_SPECIES, p)[0] for p in (first, second))
    return float(abs(e_1 - e_2) / abs(e_1))


def test_pair_is_three_body_degenerate_but_not_equivalent() -> None:
    first, second = degenerate_pair()
    vectors = [first[1:], second[1:]]
    grams = [v @ v.T for v in vectors]
    # same multiset of radii and of (r_j, r_k, r_j . r_k) over pairs: identical three-body correlations
    for k in range(2):
        assert np.allclose(np.sort(np.diag(grams[k])), [R_A**2, R_A**2, R_B**2, R_B**2], atol=1e-12)
    triples = [
        sorted(
            (round(g[j, j], 10), round(g[k, k], 10), round(g[j, k], 10))
            for j, k in itertools.product(range(4), repeat=2)
        )
        for g in grams
    ]
    assert triples[0] == triples[1]
    # no permutation of the hydrogens maps one Gram matrix onto the other: not related by O(3) x S_4
    mismatch = min(
        np.abs(grams[0][np.ix_(perm, perm)] - grams[1]).max() for perm in itertools.permutations(range(4))
    )
    assert mismatch > 0.1
    # CH4-like: all H-H distances above 1.6 Å
    for v in vectors:
        hh = np.linalg.norm(v[:, None] - v[None], axis=-1)[np.triu_indices(4, 1)]
        assert hh.min() > 1.6


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eann_cannot_separate_reann_can(seed: int) -> None:
    """Carbon atomic energies of the pair, H-H inside r_c: equal to round-off at T = 0 (EANN, Corollary 1),
    different at T = 1, 2, 3 (the hydrogens' own environments differ)."""
    first, second = degenerate_pair()
    for iterations in range(4):
        difference = carbon_energy_difference(random_model(iterations, 4.0, seed), first, second)
        if iterations == 0:
            assert difference < DEGENERATE
        else:
            assert difference > SEPARATED, (iterations, difference)


def test_bond_graph_never_separates() -> None:
    """r_c between C-H and H-H: E_C stays a function of the carbon three-body data for every T (paper.md,
    Proposition 3)."""
    first, second = degenerate_pair()
    for iterations in range(4):
        for seed in range(2):
            assert carbon_energy_difference(random_model(iterations, 1.5, seed), first, second) < DEGENERATE


# ---------------------------------------------------------------------------------------------------------
# Four-body correlations (docs/theory/limits.md, Proposition 6): no CH4-like pair is four-body degenerate.
#
# Colour the four hydrogens by their radius and the six edges j-k by the dot product r_j . r_k (equal values,
# equal colours). The four-body correlation is the multiset, over the four triples {j, k, l}, of the 3x3 Gram
# matrices up to a simultaneous permutation: a multiset of coloured triangles. Every pair of environments with
# equal four-body correlations gives two colourings with equal triangle multisets, so it suffices to check
# that, for every colouring, the triangle multiset fixes the colouring up to a permutation of the vertices.
# ---------------------------------------------------------------------------------------------------------

EDGES = list(itertools.combinations(range(4), 2))
EDGE_INDEX = {pair: index for index, (a, b) in enumerate(EDGES) for pair in ((a, b), (b, a))}
# vertex colourings up to renaming colours and permuting vertices (4 radii: all equal ... all distinct)
VERTEX_PATTERNS = ((0, 0, 0, 0), (0, 0, 0, 1), (0, 0, 1, 1), (0, 0, 1, 2), (0, 1, 2, 3))


def encode(columns: list[np.ndarray]) -> np.ndarray:
    """Injective integer code of rows of colours (each < 6)."""
    code = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        code = code * 6 + column
    return code


def correlation_classes(vertex_colours: tuple[int, ...], order: int) -> tuple[int, int]:
    """(isomorphism classes, correlation classes) of all 6^6 edge colourings of K4 with these vertex colours.

    Isomorphism: a permutation of the vertices. Correlation: order 3, the multiset over ordered pairs (j, k)
    of (colour j, colour k, colour jk); order 4, the multiset over triples of coloured triangles up to S3.
    The correlation is complete for these vertex colours iff both numbers are equal.
    """
    vertex = np.asarray(vertex_colours, dtype=np.int64)
    edge = np.array(list(itertools.product(range(6), repeat=6)), dtype=np.int64)
    count = len(edge)

    def vertices(*indices: int) -> list[np.ndarray]:
        return [np.full(count, vertex[i]) for i in indices]

    canonical = np.full(count, np.iinfo(np.int64).max)
    for perm in itertools.permutations(range(4)):
        moved = np.empty_like(edge)
        for index, (a, b) in enumerate(EDGES):
            moved[:, EDGE_INDEX[perm[a], perm[b]]] = edge[:, index]
        moved_vertices = [np.full(count, vertex[perm.index(i)]) for i in range(4)]
        canonical = np.minimum(canonical, encode(moved_vertices + list(moved.T)))
    if order == 3:
        parts = [
            encode([*vertices(a, b), edge[:, EDGE_INDEX[a, b]]])
            for a, b in itertools.permutations(range(4), 2)
        ]
    else:
        parts = [
            np.min(
                [
                    encode(
                        [
                            *vertices(a, b, c),
                            edge[:, EDGE_INDEX[a, b]],
                            edge[:, EDGE_INDEX[a, c]],
                            edge[:, EDGE_INDEX[b, c]],
                        ]
                    )
                    for a, b, c in itertools.permutations(triple)
                ],
                axis=0,
            )
            for triple in itertools.combinations(range(4), 3)
        ]
    _, correlation = np.unique(np.sort(np.stack(parts, axis=1), axis=1), axis=0, return_inverse=True)
    isomorphism_classes = len(np.unique(canonical))
    return isomorphism_classes, len(np.unique(correlation))


def test_four_body_correlation_determines_every_ch4_environment() -> None:
    """Exhaustive: equal four-body correlations imply equal colourings up to S4, for every colouring."""
    for pattern in VERTEX_PATTERNS:
        isomorphism_classes, four_body_classes = correlation_classes(pattern, order=4)
        assert four_body_classes == isomorphism_classes, pattern
        # the same count detects three-body degeneracy (so the check can fail): with repeated radii many
        # colourings share their three-body correlation; with four distinct radii none (Proposition 5a)
        _, three_body_classes = correlation_classes(pattern, order=3)
        assert (three_body_classes < isomorphism_classes) == (pattern != (0, 1, 2, 3)), pattern


def test_three_body_degenerate_pair_differs_in_four_body_correlation() -> None:
    """The explicit pair above: equal pair data, different multisets of triple Gram matrices."""

    def triangles(vectors: np.ndarray) -> list[tuple[float, ...]]:
        gram = vectors @ vectors.T
        return sorted(
            min(
                tuple(np.round(gram[np.ix_(p, p)][np.triu_indices(3)], 8))
                for p in itertools.permutations(triple)
            )
            for triple in itertools.combinations(range(4), 3)
        )

    first, second = degenerate_pair()
    assert triangles(first[1:]) != triangles(second[1:])
    assert triangles(first[1:]) == triangles(first[1:][[2, 0, 3, 1]] @ np.diag([1.0, -1.0, 1.0]))


def test_mirror_images_are_never_separated() -> None:
    """Consistency check (it holds by construction: the model sees only r_ij . r_ik): a chiral CH4 and its
    mirror image, not related by a rotation and a permutation, have equal energies for every T.

    The completeness statements on these pages are therefore up to rotation *and reflection*.
    """
    rng = np.random.default_rng(3)
    tetrahedron = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3.0)
    hydrogens = (tetrahedron + 0.15 * rng.normal(size=(4, 3))) * np.array([[1.02], [1.09], [1.15], [1.22]])
    mirror = hydrogens * np.array([1.0, 1.0, -1.0])

    def signed_volumes(vectors: np.ndarray) -> np.ndarray:  # triples ordered by radius: SO(3) x S4 invariant
        ordered = vectors[np.argsort(np.linalg.norm(vectors, axis=1))]
        return np.array([np.linalg.det(ordered[list(t)]) for t in itertools.combinations(range(4), 3)])

    assert np.abs(signed_volumes(hydrogens) + signed_volumes(mirror)).max() < 1e-12
    assert np.abs(signed_volumes(hydrogens)).min() > 1e-2  # chiral: the mirror image is not a rotated copy
    for iterations in range(3):
        model = random_model(iterations, cutoff=4.0, seed=0)
        structures = [np.vstack([np.zeros(3), h]) for h in (hydrogens, mirror)]
        energies = [atomic_energies(model, METHANE_SPECIES, p) for p in structures]
        assert np.abs(energies[0] - energies[1]).max() < 1e-12 * np.abs(energies[0]).max()
