"""Theorem 1 (docs/theory/three-body.md): the EANN density is a sum over neighbour pairs.

rho_i[m] = sum_{j,k} sum_L u_{L,m}(j) u_{L,m}(k) A_L(r_ij, r_ik), with A_L = (r_ij . r_ik)^L for the Cartesian
basis (Lemma 1) and (2L+1) P_L(cos theta_jk) for e3nn's spherical harmonics ("component" normalisation), and
u_{L,m}(j) = f_c(r_ij) sum_k W_L[k, m] c_j[k] g_{Z_j,k}(r_ij). Evaluated here in NumPy, pair by pair, and
compared with the density the model computes (captured by a forward hook on its EmbeddedDensity module).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.polynomial import legendre

import reann_driver
from reann_driver.model import build_graph


def pair_sum_density(model: reann_driver.REANN, species: np.ndarray, positions: np.ndarray) -> np.ndarray:
    cutoff = model.cutoff
    centres = model.radial.centres.detach().numpy()
    alpha = model.radial.alpha.detach().numpy()
    mixing = model.density.mixing[0].detach().numpy()  # [L, k, m], the set of iteration 0
    coefficients = model.initial_coefficients.detach().numpy()[species]  # c^0 [n_atoms, k]
    n_atoms, n_l = len(species), mixing.shape[0]
    rho = np.zeros((n_atoms, mixing.shape[2]))
    for i in range(n_atoms):
        others = np.delete(np.arange(n_atoms), i)
        neighbours = others[np.linalg.norm(positions[others] - positions[i], axis=1) < cutoff]
        vectors = positions[neighbours] - positions[i]
        kinds = species[neighbours]
        r = np.linalg.norm(vectors, axis=1)
        f_c = (0.5 * np.cos(np.pi * r / cutoff) + 0.5) ** 2
        gaussians = np.exp(-alpha[kinds] * (r[:, None] - centres[kinds]) ** 2)  # [j, k]
        weighted = f_c[:, None] * coefficients[neighbours] * gaussians
        dots = vectors @ vectors.T
        cosines = dots / np.outer(r, r)
        for ell in range(n_l):
            u = weighted @ mixing[ell]  # [j, m]
            if model.config["angular"] == "cartesian":
                angular = dots**ell
            else:
                angular = (2 * ell + 1) * legendre.legval(cosines, [0] * ell + [1])
            rho[i] += np.einsum("jm,km,jk->m", u, u, angular)
    return rho


@pytest.mark.parametrize("angular", ["cartesian", "spherical"])
def test_eann_density_is_a_sum_over_neighbour_pairs(angular: str) -> None:
    torch.manual_seed(0)
    model = reann_driver.REANN(
        ["H", "C", "O"], cutoff=3.5, n_radial=3, l_max=3, iterations=0, hidden=(8,), angular=angular,
        dtype=torch.float64,
    )  # fmt: skip
    with torch.no_grad():
        model.initial_coefficients.normal_()
    rng = np.random.default_rng(1)
    positions = rng.uniform(0.0, 4.0, (10, 3))
    species = rng.integers(0, 3, 10)
    captured: list[torch.Tensor] = []
    hook = model.density.register_forward_hook(lambda _m, _a, out: captured.append(out.detach()))
    graph = build_graph(
        species=[species], positions=[positions], cells=[np.zeros((3, 3))], pbcs=[[False] * 3],
        cutoff=model.cutoff, dtype=torch.float64,
    )  # fmt: skip
    with torch.no_grad():
        model(graph, forces=False)
    hook.remove()
    expected = pair_sum_density(model, species, positions)
    assert np.allclose(captured[0].numpy(), expected, rtol=1e-12, atol=1e-14 * np.abs(expected).max())
