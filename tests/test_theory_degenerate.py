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
import torch
from scipy.optimize import brentq

import reann_driver
from reann_driver.model import build_graph

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


def carbon_densities(model: reann_driver.REANN, positions: np.ndarray) -> tuple[list[np.ndarray], float]:
    """rho_C^t for t = 0..T (captured from the model's own density module) and the carbon atomic energy."""
    captured: list[np.ndarray] = []
    hook = model.density.register_forward_hook(lambda _m, _a, out: captured.append(out[0].detach().numpy()))
    graph = build_graph(
        species=[np.array([1, 0, 0, 0, 0])], positions=[positions], cells=[np.zeros((3, 3))],
        pbcs=[[False, False, False]], cutoff=model.cutoff, dtype=model.dtype,
    )  # fmt: skip
    try:
        with torch.no_grad():
            energy = float(model(graph, forces=False)["atomic_energies"][0])
    finally:
        hook.remove()
    return captured, energy


def random_model(iterations: int, cutoff: float, seed: int) -> reann_driver.REANN:
    torch.manual_seed(seed)
    model = reann_driver.REANN(
        ["H", "C"], cutoff=cutoff, n_radial=4, l_max=2, iterations=iterations, hidden=(16,),
        dtype=torch.float64,
    )  # fmt: skip
    for update in model.coefficient_updates:  # the zero-initialised last layers: randomise them
        for network in update.networks:
            torch.nn.init.normal_(network.output.weight, std=0.5)
            torch.nn.init.normal_(network.output.bias, std=0.5)
    return model.eval()


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(a).max())


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


@pytest.mark.parametrize("seed", [0, 1])
def test_eann_cannot_separate_reann_can(seed: int) -> None:
    """T = 0: carbon densities equal to ~1e-15; T = 1, 2 (H-H inside r_c): densities and energies differ."""
    first, second = degenerate_pair()
    for iterations in range(3):
        model = random_model(iterations, cutoff=4.0, seed=seed)
        (rho_1, energy_1), (rho_2, energy_2) = carbon_densities(model, first), carbon_densities(model, second)
        assert relative_difference(rho_1[0], rho_2[0]) < 1e-10  # rho^0: three-body, degenerate
        if iterations == 0:
            assert abs(energy_1 - energy_2) < 1e-10 * max(1.0, abs(energy_1))
        else:
            assert relative_difference(rho_1[-1], rho_2[-1]) > 1e-3
            assert abs(energy_1 - energy_2) > 1e-6


def test_bond_graph_never_separates() -> None:
    """r_c between C-H and H-H: every rho_C^t stays a function of the carbon three-body data (limits.md)."""
    first, second = degenerate_pair()
    model = random_model(3, cutoff=1.5, seed=0)
    (rho_1, energy_1), (rho_2, energy_2) = carbon_densities(model, first), carbon_densities(model, second)
    for t in range(4):
        assert relative_difference(rho_1[t], rho_2[t]) < 1e-10
    assert abs(energy_1 - energy_2) < 1e-10 * max(1.0, abs(energy_1))
