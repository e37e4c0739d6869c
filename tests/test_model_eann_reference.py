"""iterations=0 equals an independent NumPy implementation of the EANN density."""

from __future__ import annotations

import itertools
from math import factorial

import numpy as np
import pytest
import torch
from conftest import random_cluster, random_crystal, tiny_model

from reann_driver.model import graph_from_atoms


def numpy_eann_density(atoms, model) -> np.ndarray:
    """rho_i[m] = sum_L sum_{lx+ly+lz=L} L!/(lx!ly!lz!) (sum_k W_L[k,m] S_i[lx,ly,lz,k])^2, brute force over
    periodic images, straight from the formula (no code shared with the package)."""
    species = [model.species.index(s) for s in atoms.get_chemical_symbols()]
    alpha = model.radial.alpha.detach().numpy()
    centres = model.radial.centres.detach().numpy()
    c0 = model.initial_coefficients.detach().numpy()
    mixing = model.density.mixing[0].detach().numpy()  # [L, k, m], the set of iteration 0
    l_max, cutoff = model.config["l_max"], model.cutoff
    images = [np.zeros(3)]
    if atoms.pbc.any():
        reach = [int(np.ceil(cutoff / h)) + 1 for h in 1.0 / np.linalg.norm(atoms.cell.reciprocal(), axis=1)]
        images = [
            np.array(s) @ atoms.cell.array for s in itertools.product(*(range(-n, n + 1) for n in reach))
        ]
    positions = atoms.positions
    rho = np.zeros((len(atoms), mixing.shape[2]))
    for i in range(len(atoms)):
        orbital_sums: dict[tuple[int, int, int], np.ndarray] = {}
        for j in range(len(atoms)):
            for image in images:
                vector = positions[j] + image - positions[i]
                r = np.linalg.norm(vector)
                if r < 1e-9 or r >= cutoff:
                    continue
                fc = (0.5 * np.cos(np.pi * r / cutoff) + 0.5) ** 2
                sj = species[j]
                radial = c0[sj] * fc * np.exp(-alpha[sj] * (r - centres[sj]) ** 2)
                for lx, ly, lz in itertools.product(range(l_max + 1), repeat=3):
                    if lx + ly + lz <= l_max:
                        monomial = vector[0] ** lx * vector[1] ** ly * vector[2] ** lz
                        key = (lx, ly, lz)
                        orbital_sums[key] = orbital_sums.get(key, 0.0) + monomial * radial
        for (lx, ly, lz), sums in orbital_sums.items():
            total = lx + ly + lz
            weight = factorial(total) / (factorial(lx) * factorial(ly) * factorial(lz))
            rho[i] += weight * (sums @ mixing[total]) ** 2
    return rho


@pytest.mark.parametrize("periodic", [False, True])
def test_eann_density_matches_numpy(periodic: bool) -> None:
    model = tiny_model(iterations=0, cutoff=3.2)
    atoms = random_crystal(4, "HO", seed=13, scale=2.8) if periodic else random_cluster(6, seed=13)
    captured: list[torch.Tensor] = []
    hook = model.energy_networks.register_forward_pre_hook(lambda module, args: captured.append(args[0]))
    graph = graph_from_atoms([atoms], model.species, model.cutoff)
    energies = model(graph, forces=False)["atomic_energies"].detach().numpy()
    hook.remove()
    expected = numpy_eann_density(atoms, model)
    assert np.abs(expected).max() > 1e-3
    assert np.allclose(captured[0].detach().numpy(), expected, rtol=1e-12, atol=1e-12)
    # and the energy is the element network applied to that density, plus the element's bias
    groups = [torch.nonzero(graph.species == s).flatten() for s in range(len(model.species))]
    from_numpy = (
        model.energy_networks(torch.from_numpy(expected), groups).squeeze(1)
        + model.atomic_energies[graph.species]
    )
    assert np.allclose(from_numpy.detach().numpy(), energies, atol=1e-12)
