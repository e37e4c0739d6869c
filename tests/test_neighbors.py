"""The vesin neighbour list against a brute-force search, including cells smaller than the cutoff."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from reann_driver.model import neighbor_pairs


def brute_force(positions, cell, pbc, cutoff) -> set[tuple[int, int, int, int, int]]:
    reach = [0, 0, 0]
    if any(pbc):
        heights = 1.0 / np.linalg.norm(np.linalg.inv(cell).T, axis=1)
        reach = [int(np.ceil(cutoff / h)) + 1 if p else 0 for h, p in zip(heights, pbc)]
    pairs = set()
    for shift in itertools.product(*(range(-n, n + 1) for n in reach)):
        offset = np.array(shift) @ cell if any(pbc) else np.zeros(3)
        for i, j in itertools.product(range(len(positions)), repeat=2):
            if i == j and not any(shift):
                continue
            if np.linalg.norm(positions[j] + offset - positions[i]) < cutoff:
                pairs.add((i, j, *shift))
    return pairs


def as_set(i, j, shifts) -> set[tuple[int, int, int, int, int]]:
    return {(int(a), int(b), *map(int, s)) for a, b, s in zip(i, j, shifts)}


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("pbc", [(True, True, True), (True, False, True), (False, False, False)])
def test_matches_brute_force_on_triclinic_cells(seed: int, pbc: tuple[bool, bool, bool]) -> None:
    rng = np.random.default_rng(seed)
    scale = [1.5, 2.5, 4.0, 6.0, 2.0, 3.0][seed]  # several cells are smaller than the 3.1 Å cutoff
    cell = scale * (np.eye(3) + 0.3 * rng.uniform(-1, 1, (3, 3)))
    positions = rng.uniform(0, 1, (7, 3)) @ cell + rng.normal(0, 0.5, (7, 3))  # some atoms outside the cell
    found = as_set(*neighbor_pairs(positions, cell, pbc, 3.1))
    expected = brute_force(positions, cell, pbc, 3.1)
    assert found == expected
    assert len(expected) > 0


def test_several_images_of_the_same_atom() -> None:
    """One atom in a 1.2 Å cubic cell sees its own images: 6 at 1.2 Å, 12 at 1.70 Å, ..."""
    i, j, shifts = neighbor_pairs(np.zeros((1, 3)), 1.2 * np.eye(3), [True] * 3, 1.75)
    assert len(i) == 18 and set(i) == {0} and set(j) == {0}
    assert {tuple(s) for s in shifts} == {
        s for s in itertools.product((-1, 0, 1), repeat=3) if 0 < sum(abs(x) for x in s) <= 2
    }


def test_molecule_with_zero_cell_and_non_finite_positions() -> None:
    positions = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 5.0]])
    i, j, shifts = neighbor_pairs(positions, np.zeros((3, 3)), False, 2.0)
    assert as_set(i, j, shifts) == {(0, 1, 0, 0, 0), (1, 0, 0, 0, 0)}
    positions[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        neighbor_pairs(positions, np.zeros((3, 3)), False, 2.0)


def test_slab_with_zero_vacuum_vector() -> None:
    """Periodic in x and y, with the ASE-style zero third lattice vector."""
    cell = np.array([[2.0, 0, 0], [0.5, 2.2, 0], [0, 0, 0]])
    positions = np.array([[0.1, 0.2, 0.0], [1.0, 1.0, 1.5], [0.3, 1.7, 8.0]])
    found = as_set(*neighbor_pairs(positions, cell, (True, True, False), 2.6))
    full_cell = cell.copy()
    full_cell[2] = [0, 0, 100.0]
    assert found == brute_force(positions, full_cell, (True, True, False), 2.6)
