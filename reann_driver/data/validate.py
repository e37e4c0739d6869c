"""Checks of standard frames: each problem is reported with its frame number, as an error or a warning.

Errors (non-zero exit of ``reann-data validate``): non-finite values, missing energy or forces, force
arrays of the wrong shape, forces beyond an absolute bound, degenerate periodic cells, structures too
large for a neighbour list, atoms closer than ``min_distance``.
Warnings: duplicate frames, force arrays that are all zero (placeholders of energy-only data), force and
energy outliers (robust z-score), values that look like the wrong units.
"""

from __future__ import annotations

import hashlib
import math
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from vesin import ase_neighbor_list as neighbor_list

from ..geometry import neighbour_list_problem
from .frames import frame_energy, frame_forces, frame_stress

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Issue:
    """One problem: the frame (0-based position in the file), its severity, a short code and a message."""

    frame: int
    severity: str
    code: str
    message: str


def frame_errors(
    atoms: Atoms, *, require_forces: bool = True, min_distance: float = 0.5
) -> list[tuple[str, str]]:
    """(code, message) for every error-level problem of one frame."""
    problems: list[tuple[str, str]] = []
    count = len(atoms)
    if count == 0:
        problems.append(("empty", "frame has no atoms"))
    geometry = neighbour_list_problem(atoms.positions, atoms.cell.array, atoms.pbc, min_distance)
    if geometry is not None:
        problems.append(geometry)
    elif not np.all(np.isfinite(atoms.cell.array)):
        problems.append(("non-finite", "non-finite cell"))
    energy = frame_energy(atoms)
    if energy is None:
        problems.append(("missing-energy", "no energy"))
    elif not math.isfinite(energy):
        problems.append(("non-finite", f"non-finite energy {energy}"))
    forces = frame_forces(atoms)
    if forces is None:
        if require_forces:
            problems.append(("missing-forces", "no forces"))
    elif forces.shape != (count, 3):
        problems.append(("force-shape", f"forces have shape {forces.shape}, expected ({count}, 3)"))
    elif not np.all(np.isfinite(forces)):
        problems.append(("non-finite", "non-finite forces"))
    stress = frame_stress(atoms)
    if stress is not None and not np.all(np.isfinite(stress)):
        problems.append(("non-finite", "non-finite stress"))
    if count > 1 and not problems:
        first, second, distances = neighbor_list("ijd", atoms, min_distance)
        if len(distances):
            k = int(np.argmin(distances))
            problems.append(
                (
                    "close-atoms",
                    f"atoms {first[k]} and {second[k]} are {distances[k]:.3f} Å apart "
                    f"(threshold {min_distance} Å)",
                )
            )
    return problems


def frame_fingerprint(atoms: Atoms) -> bytes:
    """16-byte hash of species, positions, cell and periodicity (exact duplicates share it)."""
    digest = hashlib.sha256()
    digest.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(atoms.positions, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(atoms.cell.array, dtype=np.float64).tobytes())
    digest.update(np.asarray(atoms.pbc, dtype=np.int8).tobytes())
    return digest.digest()[:16]


def robust_outliers(values: np.ndarray, threshold: float) -> np.ndarray:
    """Positions of values whose robust z-score (median, 1.4826 MAD) exceeds ``threshold``."""
    if len(values) < 5:
        return np.array([], dtype=int)
    median = np.median(values)
    spread = 1.4826 * np.median(np.abs(values - median))
    if spread == 0:
        return np.array([], dtype=int)
    return np.flatnonzero(np.abs(values - median) / spread > threshold)


@dataclass
class ValidationReport:
    """All issues found, and how many frames were checked."""

    frames: int = 0
    issues: list[Issue] = field(default_factory=list)

    @property
    def errors(self) -> list[Issue]:
        return [issue for issue in self.issues if issue.severity == ERROR]

    @property
    def warnings(self) -> list[Issue]:
        return [issue for issue in self.issues if issue.severity == WARNING]

    def counts(self) -> dict[str, int]:
        """Number of issues per code."""
        counts: dict[str, int] = {}
        for issue in self.issues:
            counts[issue.code] = counts.get(issue.code, 0) + 1
        return dict(sorted(counts.items()))


def validate_frames(
    frames: Iterable[Atoms],
    *,
    require_forces: bool = True,
    min_distance: float = 0.5,
    outlier_threshold: float = 10.0,
    max_force: float = 1e4,
) -> ValidationReport:
    """Check every frame; duplicates and outliers are found across the whole set.

    Frames are numbered by their position in ``frames`` (0-based). An atomic force beyond ``max_force``
    (eV/Å) is an error in any frame (the outlier test needs at least five frames).
    """
    report = ValidationReport()
    seen: dict[bytes, int] = {}
    # per-frame values for the outlier tests, as compact arrays (frame position, value)
    max_forces = (array("q"), array("d"))
    energies = (array("q"), array("d"))
    for position, atoms in enumerate(frames):
        report.frames += 1
        for code, message in frame_errors(atoms, require_forces=require_forces, min_distance=min_distance):
            report.issues.append(Issue(position, ERROR, code, message))
        fingerprint = frame_fingerprint(atoms)
        if fingerprint in seen:
            report.issues.append(
                Issue(
                    position,
                    WARNING,
                    "duplicate",
                    f"same species, positions and cell as frame {seen[fingerprint]}",
                )
            )
        else:
            seen[fingerprint] = position
        forces = frame_forces(atoms)
        if (
            forces is not None
            and forces.shape == (len(atoms), 3)
            and len(atoms)
            and np.all(np.isfinite(forces))
        ):
            with np.errstate(over="ignore"):
                largest = float(np.linalg.norm(forces, axis=1).max())
            max_forces[0].append(position)
            if len(atoms) > 1 and not forces.any():
                report.issues.append(
                    Issue(
                        position,
                        WARNING,
                        "zero-forces",
                        "every force is exactly 0: a placeholder for energy-only data (as in n2p2's QM9 "
                        "file)? reann train then fits the energies only",
                    )
                )
            max_forces[1].append(largest)
            if largest > max_force:
                message = f"largest atomic force {largest:.6g} eV/Å exceeds {max_force:g} eV/Å (wrong units?)"
                report.issues.append(Issue(position, ERROR, "force-bound", message))
        energy = frame_energy(atoms)
        if energy is not None and math.isfinite(energy) and len(atoms):
            energies[0].append(position)
            energies[1].append(energy / len(atoms))
    for label, (positions, stored), unit in (
        ("force-outlier", max_forces, "eV/Å"),
        ("energy-outlier", energies, "eV/atom"),
    ):
        values = np.frombuffer(stored, dtype=np.float64) if len(stored) else np.empty(0)
        for k in robust_outliers(values, outlier_threshold):
            what = "largest atomic force" if label == "force-outlier" else "energy per atom"
            report.issues.append(
                Issue(
                    positions[k],
                    WARNING,
                    label,
                    f"{what} {values[k]:.6g} {unit} is far from the median {np.median(values):.6g} "
                    f"(robust z-score > {outlier_threshold})",
                )
            )
    report.issues.sort(key=lambda issue: (issue.frame, issue.severity, issue.code))
    return report


def unit_warnings(frames: Iterable[Atoms], sample: int = 20) -> list[str]:
    """Warnings when converted values look implausible for the chosen units (checks the first frames).

    Bonds to H are about 1 Å. In each frame the shortest distance from a hydrogen atom to any atom is
    taken; if it is typically beyond 1.65 Å (1.8 Å for O-H in Bohr), the positions are probably Bohr read
    as Å. (Random CH4 structures, with H anywhere within 3 Å of C, still give about 1.5 Å.)
    Forces beyond 100 eV/Å or typical forces below 1e-3 eV/Å suggest a wrong force unit.
    """
    nearest_h: list[float] = []
    force_rms: list[float] = []
    big_cells: list[float] = []
    for position, atoms in enumerate(frames):
        if position >= sample:
            break
        hydrogens = np.flatnonzero(atoms.numbers == 1)
        usable = neighbour_list_problem(atoms.positions, atoms.cell.array, atoms.pbc, 3.0) is None
        if usable and len(atoms) > 1 and len(hydrogens):
            first, distances = neighbor_list("id", atoms, 3.0)
            near_hydrogen = distances[np.isin(first, hydrogens)]
            if len(near_hydrogen):
                nearest_h.append(float(near_hydrogen.min()))
        forces = frame_forces(atoms)
        if forces is not None and forces.size and np.all(np.isfinite(forces)):
            with np.errstate(over="ignore"):
                force_rms.append(float(np.sqrt(np.mean(forces**2))))
        if usable and atoms.pbc.all() and len(atoms):
            big_cells.append(abs(atoms.cell.volume) / len(atoms))
    warnings = []
    if nearest_h and np.median(nearest_h) > 1.65:
        edge = f"; cell volume {np.median(big_cells):.1f} Å^3 per atom" if big_cells else ""
        warnings.append(
            f"the shortest bond to hydrogen is typically {np.median(nearest_h):.2f} Å "
            "(expected about 1 Å"
            f"{edge}): are the positions in Bohr? (use --length-unit bohr or --units atomic)"
        )
    if nearest_h and np.median(nearest_h) < 0.5:
        warnings.append(
            f"the shortest bond to hydrogen is typically {np.median(nearest_h):.2f} Å: "
            "are the positions in a unit smaller than the one chosen?"
        )
    if force_rms and np.median(force_rms) > 100.0:
        warnings.append(
            f"typical force RMS {np.median(force_rms):.3g} eV/Å is implausibly large: check --force-unit"
        )
    if force_rms and 0 < np.median(force_rms) < 1e-3:
        warnings.append(
            f"typical force RMS {np.median(force_rms):.3g} eV/Å is implausibly small: check --force-unit"
        )
    return warnings
