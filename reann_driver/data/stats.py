"""Dataset statistics, accumulated frame by frame (so a large file never has to be held in memory).

Per-element reference energies come from a least-squares fit of frame energies to element counts
only when the composition matrix has full column rank; for fixed-stoichiometry sets (bulk water, CH4)
it does not, and the report says so instead of fitting.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from vesin import ase_neighbor_list as neighbor_list

from ..geometry import neighbour_list_problem
from .errors import DataError
from .frames import frame_energy, frame_forces
from .output import atomic_file, check_output


@dataclass
class RunningMoments:
    """Count, mean and standard deviation by Welford's update (numerically stable in one pass)."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf

    def add(self, value: float) -> None:
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (value - self.mean)
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)

    def summary(self) -> dict[str, float | int | None]:
        if self.count == 0:
            return {"count": 0, "mean": None, "std": None, "min": None, "max": None}
        return {
            "count": self.count,
            "mean": self.mean,
            "std": math.sqrt(self.m2 / self.count),
            "min": self.minimum,
            "max": self.maximum,
        }


@dataclass
class DatasetStatistics:
    """Accumulates statistics of standard frames; ``report()`` gives a JSON-able summary.

    ``cutoff`` (Å) enables neighbour counts; ``isolated_atoms`` (eV per element) enables the
    binding-energy statistics; ``keep_values`` keeps per-frame values for plotting.
    """

    cutoff: float | None = None
    isolated_atoms: Mapping[str, float] | None = None
    keep_values: bool = False
    frames: int = 0
    atoms: int = 0
    formulas: Counter = field(default_factory=Counter)
    elements: Counter = field(default_factory=Counter)
    config_types: Counter = field(default_factory=Counter)
    frames_without_energy: int = 0
    frames_without_forces: int = 0
    energy_per_atom: RunningMoments = field(default_factory=RunningMoments)
    binding_energy_per_atom: RunningMoments = field(default_factory=RunningMoments)
    neighbours: RunningMoments = field(default_factory=RunningMoments)
    force_square_sums: dict[str, float] = field(default_factory=dict)
    force_counts: dict[str, int] = field(default_factory=dict)
    max_force: float = 0.0
    # Normal equations of E = sum_e n_e * eps_e, and the distinct composition rows seen.
    _gram: dict[tuple[str, str], float] = field(default_factory=dict)
    _moment: dict[str, float] = field(default_factory=dict)
    _energy_square_sum: float = 0.0
    _energy_frames: int = 0
    values: dict[str, list[float]] = field(
        default_factory=lambda: {"energy_per_atom": [], "force": [], "neighbours": []}
    )

    def add(self, atoms: Atoms) -> None:
        """Include one standard frame."""
        self.frames += 1
        count = len(atoms)
        self.atoms += count
        symbols = atoms.get_chemical_symbols()
        composition = Counter(symbols)
        self.formulas[atoms.get_chemical_formula(mode="hill")] += 1
        self.elements.update(composition)
        self.config_types[str(atoms.info.get("config_type", "default"))] += 1

        energy = frame_energy(atoms)
        if energy is None:
            self.frames_without_energy += 1
        elif count:
            self.energy_per_atom.add(energy / count)
            if self.keep_values:
                self.values["energy_per_atom"].append(energy / count)
            for a in composition:
                self._moment[a] = self._moment.get(a, 0.0) + composition[a] * energy
                for b in composition:
                    self._gram[(a, b)] = self._gram.get((a, b), 0.0) + composition[a] * composition[b]
            self._energy_square_sum += energy * energy
            self._energy_frames += 1
            if self.isolated_atoms is not None:
                reference = sum(self.isolated_atoms.get(symbol, math.nan) for symbol in symbols)
                self.binding_energy_per_atom.add((energy - reference) / count)

        forces = frame_forces(atoms)
        if forces is None or forces.shape != (count, 3):
            self.frames_without_forces += 1
        else:
            squares = np.sum(forces**2, axis=1)
            for symbol, square in zip(symbols, squares):
                self.force_square_sums[symbol] = self.force_square_sums.get(symbol, 0.0) + float(square)
                self.force_counts[symbol] = self.force_counts.get(symbol, 0) + 3
            if count:
                self.max_force = max(self.max_force, float(np.sqrt(squares.max())))
            if self.keep_values:
                self.values["force"].extend(forces.reshape(-1).tolist())

        if self.cutoff is not None and count:
            problem = neighbour_list_problem(atoms.positions, atoms.cell.array, atoms.pbc, self.cutoff)
            if problem is not None:
                index = atoms.info.get("source_index", self.frames - 1)
                where = f"{atoms.info.get('source', 'frame')}: frame {index}"
                raise DataError(f"{where}: cannot count neighbours: {problem[1]} (see reann-data validate)")
            (centres,) = neighbor_list("i", atoms, self.cutoff)
            per_atom = np.bincount(centres, minlength=count)
            for value in per_atom:
                self.neighbours.add(float(value))
            if self.keep_values:
                self.values["neighbours"].extend(per_atom.astype(float).tolist())

    def reference_energies(self) -> dict[str, Any]:
        """Least-squares per-element energies, or the statement that they are not identifiable."""
        elements = sorted(self.elements)
        if self._energy_frames == 0:
            return {"identifiable": False, "reason": "no frame has an energy"}
        gram = np.array([[self._gram.get((a, b), 0.0) for b in elements] for a in elements])
        moment = np.array([self._moment.get(a, 0.0) for a in elements])
        rank = int(np.linalg.matrix_rank(gram))
        if rank < len(elements):
            return {
                "identifiable": False,
                "elements": elements,
                "rank": rank,
                "reason": (
                    f"the composition matrix (frames x element counts) has rank {rank} "
                    f"< {len(elements)} elements: "
                    "every frame has the same stoichiometry (up to scale), so per-element reference energies "
                    "cannot be separated by least squares; no fit was made. Give isolated-atom energies "
                    "(--isolated-atom SYMBOL=eV) or use the mean energy per atom as a single shift."
                ),
            }
        solution = np.linalg.solve(gram, moment)
        residual_square = self._energy_square_sum - 2 * solution @ moment + solution @ gram @ solution
        rmse = math.sqrt(max(residual_square, 0.0) / self._energy_frames)
        return {
            "identifiable": True,
            "elements": elements,
            "rank": rank,
            "energies_eV": {a: float(e) for a, e in zip(elements, solution)},
            "fit_rmse_eV_per_frame": rmse,
        }

    def report(self) -> dict[str, Any]:
        """JSON-able summary (energies in eV, forces in eV/Å)."""
        report: dict[str, Any] = {
            "frames": self.frames,
            "atoms": self.atoms,
            "formulas": dict(sorted(self.formulas.items())),
            "elements": dict(sorted(self.elements.items())),
            "config_types": dict(sorted(self.config_types.items())),
            "frames_without_energy": self.frames_without_energy,
            "frames_without_forces": self.frames_without_forces,
            "energy_per_atom_eV": self.energy_per_atom.summary(),
            "force_rms_per_element_eV_per_A": {
                symbol: math.sqrt(self.force_square_sums[symbol] / self.force_counts[symbol])
                for symbol in sorted(self.force_counts)
            },
            "max_atomic_force_eV_per_A": self.max_force,
            "reference_energies": self.reference_energies(),
        }
        if self.cutoff is not None:
            report["neighbours"] = {"cutoff_A": self.cutoff, **self.neighbours.summary()}
        if self.isolated_atoms is not None:
            report["isolated_atom_energies_eV"] = dict(self.isolated_atoms)
            report["binding_energy_per_atom_eV"] = self.binding_energy_per_atom.summary()
        return report


def dataset_statistics(frames: Iterable[Atoms], **options: Any) -> DatasetStatistics:
    """Accumulate statistics over ``frames`` (options as for DatasetStatistics)."""
    statistics = DatasetStatistics(**options)
    for atoms in frames:
        statistics.add(atoms)
    return statistics


def check_plot_output(path: str, inputs: Iterable[str], force: bool = False) -> None:
    """Refuse a plot file that is not a ``.png`` or that ``check_output`` refuses."""
    if Path(path).suffix.lower() != ".png":
        raise DataError(f"the plot is a PNG image: give a file name ending in .png, not {path!r}")
    check_output(path, inputs, force=force)


def plot_histograms(statistics: DatasetStatistics, path: str, force: bool = False) -> None:
    """Histograms of energy per atom, force components and neighbour counts, as one PNG written
    atomically (an existing ``path`` is replaced only with ``force``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("energy_per_atom", "energy per atom (eV)"),
        ("force", "force component (eV/Å)"),
        ("neighbours", "neighbours within cutoff"),
    ]
    panels = [(key, label) for key, label in panels if statistics.values[key]]
    figure, axes = plt.subplots(
        1, max(len(panels), 1), figsize=(4.5 * max(len(panels), 1), 3.5), squeeze=False
    )
    for axis, (key, label) in zip(axes[0], panels):
        axis.hist(statistics.values[key], bins=60)
        axis.ticklabel_format(axis="x", useOffset=False)
        axis.set_xlabel(label)
        axis.set_ylabel("count")
    figure.tight_layout()
    with atomic_file(path, force=force) as temporary:
        figure.savefig(temporary, dpi=120, format="png")
    plt.close(figure)
