"""The water neighbour-count table of docs/theory/body-order.md (Corollary 2) and the script behind it.

The counts come from docs/theory/scripts/water_neighbours.py run on the DeePMD-kit water frames (not in the
repository); its output is committed as docs/theory/data/water-neighbours.csv. Checked here: the counting
against a brute-force minimum-image count, T_min against Theorem 2's closed form, and the page against the
committed data.
"""

from __future__ import annotations

import csv
import importlib.util
import math
from pathlib import Path

import numpy as np
from ase import Atoms

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docs" / "theory" / "scripts" / "water_neighbours.py"
spec = importlib.util.spec_from_file_location("water_neighbours", SCRIPT)
assert spec is not None and spec.loader is not None
water_neighbours = importlib.util.module_from_spec(spec)
spec.loader.exec_module(water_neighbours)


def test_counts_match_a_brute_force_minimum_image_count() -> None:
    rng = np.random.default_rng(0)
    box = 9.0  # Å; all cutoffs below box / 2, so the minimum image is the only image within r_c
    positions = rng.uniform(0.0, box, (60, 3))
    symbols = ["O" if k % 3 == 0 else "H" for k in range(60)]
    atoms = Atoms(symbols, positions=positions, cell=np.eye(3) * box, pbc=True)
    difference = positions[:, None] - positions[None]
    difference -= box * np.round(difference / box)
    distances = np.linalg.norm(difference, axis=-1) + np.diag(np.full(60, np.inf))
    oxygens = np.array(symbols) == "O"
    for cutoff in (1.2, 3.2, 4.4):
        expected = (distances[oxygens] < cutoff).sum(axis=1)
        assert np.array_equal(water_neighbours.neighbour_counts(atoms, cutoff), expected)


def test_minimum_iterations_is_the_closed_form() -> None:
    """T_min(N) = max(0, ceil(log2(N + 2)) - 2), the least T with 2^(T+2) - 1 >= N + 1 (Corollary 2)."""
    for n in range(400):
        closed = max(0, math.ceil(math.log2(n + 2)) - 2)
        assert water_neighbours.minimum_iterations(n) == closed, n
        assert 2 ** (closed + 2) - 1 >= n + 1 and (closed == 0 or 2 ** (closed + 1) - 1 < n + 1)


def test_page_table_is_the_committed_data() -> None:
    with open(water_neighbours.OUTPUT, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [r["environment"] for r in rows] == list(water_neighbours.CUTOFFS)
    page = (ROOT / "docs" / "theory" / "body-order.md").read_text()
    lines = [line for line in page.splitlines() if line.startswith("| Water")]
    assert len(lines) == len(rows)
    for row, line in zip(rows, lines, strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert float(cells[1]) == float(row["cutoff"])
        assert cells[2] == f"{row['mean_N']} (max {row['max_N']})", line
        assert cells[3] == f"{row['T_min_mean']} (max {row['T_min_max']})", line
        assert int(row["T_min_mean"]) == water_neighbours.minimum_iterations(round(float(row["mean_N"])))
        assert int(row["T_min_max"]) == water_neighbours.minimum_iterations(int(row["max_N"]))
