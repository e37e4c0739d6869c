"""Build ``water_64.xyz``: 64 rigid TIP3P waters relaxed in a cubic box at the density of the DeePMD-kit
water data (edge 12.4447 Å, 0.993 g/cm³), written in i-PI's xyz format (positions and cell in Å).

    python examples/water64_pimd/build_box.py examples/water64_pimd/water_64.xyz

Molecules start on a 4x4x4 grid (O-O 3.11 Å) with seeded random orientations; ASE's TIP3P potential with
rigid bonds (FixBondLengths) then relaxes the hydrogen-bond network (FIRE, forces below 0.05 eV/Å).
TIP3P is only the starting point: the PIMD itself runs on the REANN model.
"""

from __future__ import annotations

import sys

import numpy as np
from ase import Atoms
from ase.build import molecule
from ase.calculators.tip3p import TIP3P, angleHOH, rOH
from ase.constraints import FixBondLengths
from ase.optimize import FIRE
from scipy.spatial.transform import Rotation

EDGE = 12.444661  # Å, the box of the DeePMD-kit water frames
GRID = 4
SEED = 2024


def build() -> Atoms:
    """The relaxed box, atoms ordered O, H, H per molecule (as TIP3P requires)."""
    rng = np.random.default_rng(SEED)
    water = molecule("H2O")
    angle = np.radians(angleHOH / 2)
    water.positions = [
        [0, 0, 0],
        [rOH * np.sin(angle), 0, rOH * np.cos(angle)],
        [-rOH * np.sin(angle), 0, rOH * np.cos(angle)],
    ]
    water.symbols = "OHH"
    box = Atoms(cell=[EDGE] * 3, pbc=True)
    spacing = EDGE / GRID
    for index in np.ndindex(GRID, GRID, GRID):
        copy = water.copy()
        copy.positions = Rotation.random(random_state=rng).apply(copy.positions) + spacing * (
            np.array(index) + 0.5
        )
        box += copy
    pairs = [(3 * i + a, 3 * i + b) for i in range(GRID**3) for a, b in ((0, 1), (0, 2), (1, 2))]
    box.constraints = FixBondLengths(pairs)
    box.calc = TIP3P(rc=EDGE / 2 - 0.1)
    FIRE(box, logfile=None).run(fmax=0.05, steps=2000)
    box.constraints = []
    box.wrap()
    return box


def write_ipi_xyz(atoms: Atoms, path: str) -> None:
    """i-PI xyz: the cell matrix (lattice vectors as columns) and positions, both in Å."""
    h = " ".join(f"{value:.8e}" for value in atoms.cell.array.T.ravel())
    lines = [str(len(atoms)), f"# CELL{{H}}: {h} positions{{angstrom}} cell{{angstrom}}"]
    lines += [f"{s:>5} {x:12.6f} {y:12.6f} {z:12.6f}" for s, (x, y, z) in zip(atoms.symbols, atoms.positions)]
    with open(path, "w") as stream:
        stream.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    write_ipi_xyz(build(), sys.argv[1])
