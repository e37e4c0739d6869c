"""Neighbour counts of liquid water and the iterations a linear-network REANN needs for their body order.

Data for the table of docs/theory/body-order.md (Corollary 2). Run from the repository root:

    python docs/theory/scripts/water_neighbours.py \\
        ../shared/data/deepmd-kit_examples-water/data/data_0 --force

It reads a DeePMD-kit system (type.raw, type_map.raw, set.000/coord.npy and box.npy, Å), takes every
``--stride``-th frame (5 frames by default), counts for every O centre the atoms (O and H) within each cutoff
with ``ase.neighborlist.neighbor_list`` (periodic images included), and writes the mean and maximum counts N
with T_min(N) = the least T with B(T) = 2^(T+2) - 1 >= N + 1 to docs/theory/data/water-neighbours.csv.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

from reann_driver.atomic import atomic_write_bytes

ROOT = Path(__file__).resolve().parents[3]
OUTPUT = ROOT / "docs" / "theory" / "data" / "water-neighbours.csv"
CUTOFFS = {"own hydrogens": 1.2, "first shell": 3.2, "bulk 5 Å": 5.0, "bulk 6 Å": 6.0}  # Å
COLUMNS = ["environment", "cutoff", "frames", "centres", "mean_N", "max_N", "T_min_mean", "T_min_max"]


def neighbour_counts(atoms: Atoms, cutoff: float, centre: str = "O") -> np.ndarray:
    """Number of atoms j != i with r_ij < r_c (periodic images counted) for every atom i of species centre."""
    first = neighbor_list("i", atoms, cutoff, self_interaction=False)
    counts = np.bincount(first, minlength=len(atoms))
    return counts[np.array(atoms.get_chemical_symbols()) == centre]


def minimum_iterations(n_neighbours: int) -> int:
    """T_min(N): the least T whose linear-network body order B(T) = 2^(T+2) - 1 reaches N + 1 atoms."""
    iterations, bound = 0, 3
    while bound < n_neighbours + 1:
        iterations, bound = iterations + 1, 2 * bound + 1  # B(t) = 3 + 2 (B(t-1) - 1)
    return iterations


def read_deepmd(system: Path, stride: int) -> list[Atoms]:
    """Every stride-th frame of set.000 of a DeePMD-kit system as ASE Atoms (Å, periodic)."""
    types = np.loadtxt(system / "type.raw", dtype=int, ndmin=1)
    names = (system / "type_map.raw").read_text().split()
    coords = np.load(system / "set.000" / "coord.npy")
    boxes = np.load(system / "set.000" / "box.npy")
    if coords.shape[1] != 3 * len(types) or boxes.shape != (len(coords), 9):
        raise ValueError(f"{system}: coord.npy/box.npy do not match {len(types)} atoms")
    symbols = [names[t] for t in types]
    return [
        Atoms(symbols, positions=c.reshape(-1, 3), cell=b.reshape(3, 3), pbc=True)
        for c, b in zip(coords[::stride], boxes[::stride], strict=True)
    ]


def table(frames: list[Atoms]) -> list[dict[str, object]]:
    rows = []
    for environment, cutoff in CUTOFFS.items():
        counts = np.concatenate([neighbour_counts(atoms, cutoff) for atoms in frames])
        mean, largest = float(counts.mean()), int(counts.max())
        rows.append({
            "environment": environment, "cutoff": cutoff, "frames": len(frames), "centres": len(counts),
            "mean_N": round(mean, 1), "max_N": largest,
            "T_min_mean": minimum_iterations(round(mean)), "T_min_max": minimum_iterations(largest),
        })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("system", type=Path, help="DeePMD-kit system directory (type.raw, set.000/)")
    parser.add_argument("--stride", type=int, default=16, help="take every stride-th frame (default 16)")
    parser.add_argument("--out", type=Path, default=OUTPUT, help="CSV to write")
    parser.add_argument("--force", action="store_true", help="overwrite an existing CSV")
    args = parser.parse_args()
    if args.out.exists() and not args.force:
        parser.error(f"{args.out} exists; pass --force to overwrite it")
    rows = table(read_deepmd(args.system, args.stride))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(args.out, lambda stream: stream.write(text.getvalue().encode()))
    print(text.getvalue(), end="")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
