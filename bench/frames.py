"""Structures for the benchmarks (no reann_driver import, so that a benchmark may import two releases)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms


def deepmd_frame(source: str | Path, index: int = 0) -> Atoms:
    """Frame ``index`` of the first set of a DeePMD-kit system folder (positions and cell in Å)."""
    folder = Path(source)
    type_map = (folder / "type_map.raw").read_text().split()
    types = np.loadtxt(folder / "type.raw", dtype=int)
    first_set = sorted(folder.glob("set.*"))[0]
    positions = np.load(first_set / "coord.npy")[index].reshape(-1, 3)
    cell = np.load(first_set / "box.npy")[index].reshape(3, 3)
    return Atoms([type_map[t] for t in types], positions=positions, cell=cell, pbc=True)
