"""Candidate structures for active learning: i-PI's ``active_output``, i-PI xyz trajectories, any ASE file.

- i-PI's ``<ffcommittee>`` ``active_output`` file (i-PI 3.3) is a sequence of JSON objects
  ``{"position": [3 n_atoms], "cell": [9], "uncertainty": u}`` in atomic units (Bohr, Hartree; the
  cell is i-PI's h, lattice vectors as columns). It names no elements, so a template structure (the
  system i-PI simulates) gives them; positions of the wrong size are refused.
- i-PI xyz trajectories carry their units in the comment line (``positions{angstrom}``,
  ``cell{atomic_unit}``, ``CELL(abcABC)``); i-PI's own reader converts them.
- anything else is read with ``ase.io.read`` (lengths in Å).

Every frame comes back in Å with ``info["candidate_index"]`` (its place in the file) and, for i-PI's
active output, ``info["ipi_uncertainty_eV"]``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from .errors import DataError


def _ipi_constants() -> tuple[float, float]:
    """Å per Bohr and eV per Hartree as i-PI converts them (so that its numbers round-trip)."""
    from ipi.utils.units import unit_to_internal, unit_to_user

    return float(unit_to_user("length", "angstrom", 1.0)), 1.0 / float(
        unit_to_internal("energy", "electronvolt", 1.0)
    )


def read_candidates(
    path: str | os.PathLike[str], template: Sequence[str] | None = None, periodic: bool = True
) -> list[Atoms]:
    """The structures of ``path`` in Å (see the module).

    Args:
        template: the chemical symbols of the simulated system, needed for i-PI's active output and
            checked against every other file.
        periodic: for i-PI's files: use the cell (3D periodic); ``False`` for a molecule in vacuum
            (i-PI always has a box; it is dropped), as ``reann-driver --non-periodic``.
    """
    source = Path(path)
    if not source.is_file():
        raise DataError(f"{source} does not exist")
    with open(source, encoding="utf-8", errors="replace") as stream:
        head = stream.read(4096)
    stripped = head.lstrip()
    if stripped.startswith("{"):
        if template is None:
            raise DataError(f"{source} is i-PI's active output, which names no elements: give --template")
        frames = _read_active_output(source, list(template), periodic)
    elif len(head.splitlines()) > 1 and "CELL(" in head.splitlines()[1]:
        frames = _read_ipi_xyz(source, periodic)
    else:
        frames = _read_with_ase(source)
    if not frames:
        raise DataError(f"{source} holds no structures")
    if template is not None:
        for index, atoms in enumerate(frames):
            if atoms.get_chemical_symbols() != list(template):
                raise DataError(
                    f"{source}, frame {index}: atoms {atoms.get_chemical_formula()} differ from the "
                    f"template's ({Atoms(list(template)).get_chemical_formula()}, same order required): "
                    "a file from another system?"
                )
    for index, atoms in enumerate(frames):
        atoms.info["candidate_index"] = index
    return frames


def _ipi_structure(symbols: Sequence[str], positions: np.ndarray, h: np.ndarray, periodic: bool) -> Atoms:
    """Atoms in Å from i-PI's positions [n_atoms, 3] and h (lattice vectors as columns), in Bohr."""
    angstrom_per_bohr, _ = _ipi_constants()
    if periodic and abs(np.linalg.det(h)) < 1e-8:
        raise DataError("the i-PI cell has no volume; for a molecule in vacuum use --non-periodic")
    return Atoms(
        list(symbols),
        positions=positions * angstrom_per_bohr,
        cell=h.T * angstrom_per_bohr if periodic else None,
        pbc=periodic,
    )


def _read_active_output(source: Path, symbols: list[str], periodic: bool) -> list[Atoms]:
    _, ev_per_hartree = _ipi_constants()
    text = source.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    frames: list[Atoms] = []
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            return frames
        try:
            record, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise DataError(f"{source}: record {len(frames)} is not valid JSON ({error.msg})") from None
        if not isinstance(record, dict) or not {"position", "cell", "uncertainty"} <= record.keys():
            raise DataError(f"{source}: record {len(frames)} is not an i-PI active-output record")
        coordinates = np.asarray(record["position"], dtype=np.float64)
        cell = np.asarray(record["cell"], dtype=np.float64)
        if coordinates.shape != (3 * len(symbols),) or cell.shape != (9,):
            raise DataError(
                f"{source}: record {len(frames)} has {coordinates.size // 3} atoms, the template "
                f"{len(symbols)}: a file from another system?"
            )
        atoms = _ipi_structure(symbols, coordinates.reshape(-1, 3), cell.reshape(3, 3), periodic)
        atoms.info["ipi_uncertainty_eV"] = float(record["uncertainty"]) * ev_per_hartree
        frames.append(atoms)


def _read_ipi_xyz(source: Path, periodic: bool) -> list[Atoms]:
    from ipi.utils.io import iter_file

    frames = []
    with open(source, encoding="utf-8") as stream:
        try:
            for frame in iter_file("xyz", stream):
                atoms, cell = frame["atoms"], frame["cell"]
                positions = np.asarray(atoms.q, dtype=np.float64).reshape(-1, 3)
                h = np.asarray(cell.h, dtype=np.float64)
                frames.append(_ipi_structure(list(atoms.names), positions, h, periodic))
        except (ValueError, KeyError, IndexError) as error:
            raise DataError(f"{source}: not a readable i-PI xyz trajectory ({error})") from None
    return frames


def _read_with_ase(source: Path) -> list[Atoms]:
    from ase.io import read

    try:
        frames = read(source, index=":")
    except Exception as error:  # ase raises many types for malformed files
        raise DataError(f"cannot read {source} with ase.io.read: {error}") from None
    frames = frames if isinstance(frames, list) else [frames]
    return [atoms.copy() for atoms in frames]  # plain structures: labels are computed afresh
