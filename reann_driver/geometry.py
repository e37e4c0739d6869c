"""Whether a structure can be handed to the vesin neighbour list (no torch here).

vesin kills the whole process (SIGFPE) when the extent of a structure divided by the cutoff overflows
its cell-list arithmetic (around 1e19), and its time and memory grow without bound when a periodic
cell is much smaller than the cutoff. ``neighbour_list_problem`` turns such input (wrong units,
blown-up simulations, damaged files) into a message before vesin sees it. Lengths in Å.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: Largest extent of a structure (positions, periodic lattice vectors) in units of the cutoff.
MAX_EXTENT_OVER_CUTOFF = 1e9
#: Largest expected number of neighbour pairs of one periodic structure.
MAX_EXPECTED_PAIRS = 1e8


def neighbour_list_problem(positions: Any, cell: Any, pbc: Any, cutoff: float) -> tuple[str, str] | None:
    """(code, message) saying what makes a neighbour list of this structure impossible or unbounded,
    or None when it is fine. Codes: ``non-finite``, ``cell``, ``extent``.

    Args:
        positions: [n_atoms, 3] in Å.
        cell: [3, 3] lattice vectors as rows in Å (only periodic directions are looked at).
        pbc: periodicity along each lattice vector.
        cutoff: in Å.
    """
    if not (math.isfinite(cutoff) and cutoff > 0):
        return "cutoff", f"the cutoff {cutoff} Å must be a positive finite number"
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    if not np.isfinite(positions).all():
        return "non-finite", "non-finite positions (NaN or infinite)"
    periodic = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    box = np.asarray(cell, dtype=np.float64).reshape(3, 3)
    lengths = np.zeros(0)
    if periodic.any():
        if not np.isfinite(box[periodic]).all():
            return "non-finite", "non-finite cell"
        lengths = np.linalg.norm(box[periodic], axis=1)
        if (lengths < 1e-6).any():
            return "cell", "periodic direction with a zero cell vector (no Lattice given?)"
        if periodic.all() and abs(np.linalg.det(box)) < 1e-6:
            return "cell", "periodic frame with a degenerate (zero-volume) cell"
    extent = max(float(np.ptp(positions, axis=0).max()) if len(positions) else 0.0, *lengths, 0.0)
    if extent > MAX_EXTENT_OVER_CUTOFF * cutoff:
        return "extent", (
            f"the structure spans {extent:.3g} Å, more than {MAX_EXTENT_OVER_CUTOFF:g} times the cutoff "
            f"{cutoff:g} Å (wrong units or a blown-up structure)"
        )
    if periodic.all() and len(positions):
        volume = abs(float(np.linalg.det(box)))
        pairs = len(positions) ** 2 * (4.0 / 3.0) * math.pi * cutoff**3 / volume
        if pairs > MAX_EXPECTED_PAIRS:
            return "cell", (
                f"a cell of {volume:.3g} Å^3 for {len(positions)} atoms gives about {pairs:.2g} neighbour "
                f"pairs within {cutoff:g} Å (limit {MAX_EXPECTED_PAIRS:g}): is the cell in the right unit?"
            )
    return None
