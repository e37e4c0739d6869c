"""Extended XYZ (and plain XYZ), optionally gzip-compressed.

i-PI's own xyz trajectories (comment ``# CELL{H}: ...`` or ``# CELL(abcABC): ...``) are read with i-PI's
reader, which applies the units the comment names; they come out in Å, so leave ``--length-unit`` at its
default for them.

Reading splits the file into frames by their atom-count lines (cheap, so unselected frames of a
7.7 M-frame archive are skipped without parsing) and parses a frame with ``ase.io.read`` only on
demand. Writing uses full float64 precision (shortest round-trip representation), which ASE's own
writer (``%16.8f``) does not.
"""

from __future__ import annotations

import functools
import io
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

import ase.io
import numpy as np
from ase import Atoms
from ase.io.extxyz import key_val_dict_to_str

from ..errors import DataFormatError
from ..frames import frame_energy, frame_forces, frame_stress
from .base import FrameRecord, numbered_lines

#: ``key=value`` pairs (values quoted, in braces or brackets, or plain) and bare words of a header.
HEADER_TOKEN = re.compile(r'([^\s="]+)\s*=\s*("(?:[^"\\]|\\.)*"|\{[^}]*\}|\[[^\]]*\]|[^\s"]+)|(\S+)')
#: The columns ASE assumes when a header has no ``Properties``.
DEFAULT_PROPERTIES = "species:S:1:pos:R:3"


#: The comment line of i-PI's own xyz format (``# CELL(abcABC): ...`` or ``# CELL{H}: ...``).
IPI_COMMENT = re.compile(r"\s*#.*CELL[(\[{](?:abcABC|H|GENH)[)\]}]")


def check_header(header: str) -> int:
    """The number of columns of every atom line the header declares; ValueError for an ambiguous
    header (a key given twice)."""
    if IPI_COMMENT.match(header):
        return 4
    values: dict[str, str] = {}
    for match in HEADER_TOKEN.finditer(header):
        key, value = match.group(1), match.group(2)
        if key is None:
            continue
        if key in values:
            raise ValueError(f"the header gives {key!r} twice ({values[key]} and {value}): which one holds?")
        values[key] = value
    properties = values.get("Properties", DEFAULT_PROPERTIES).strip('"').split(":")
    try:
        return sum(int(count) for count in properties[2::3])
    except ValueError:
        raise ValueError(f"cannot read Properties={values.get('Properties')}") from None


def _parse_chunk(path: str | os.PathLike[str], number: int, text: str) -> Atoms:
    lines = text.splitlines()
    try:
        columns = check_header(lines[1] if len(lines) > 1 else "")
    except ValueError as error:
        raise DataFormatError(path, f"line {number + 1}", str(error)) from None
    for offset, line in enumerate(lines[2:], start=2):
        found = len(line.split())
        if found != columns:
            raise DataFormatError(
                path,
                f"line {number + offset}",
                f"an atom line with {found} columns; the header's Properties declare {columns}",
            )
    if IPI_COMMENT.match(lines[1]):
        return _parse_ipi_chunk(text)
    atoms = ase.io.read(io.StringIO(text), format="extxyz", index=0)
    assert isinstance(atoms, Atoms)
    return atoms


def _parse_ipi_chunk(text: str) -> Atoms:
    """A frame of i-PI's xyz format, read by i-PI itself (units from the comment, e.g. positions{angstrom}
    cell{atomic_unit}; atomic units when none is named). Positions and cell come out in Å, periodic."""
    from ipi.utils.io import read_file
    from ipi.utils.units import unit_to_user

    frame = read_file("xyz", io.StringIO(text))
    angstrom = float(unit_to_user("length", "angstrom", 1.0))
    positions = np.asarray(frame["atoms"].q, dtype=np.float64).reshape(-1, 3) * angstrom
    cell = np.asarray(frame["cell"].h, dtype=np.float64).T * angstrom  # i-PI: lattice vectors as columns
    return Atoms(list(frame["atoms"].names), positions=positions, cell=cell, pbc=True)


def iter_records(path: str | os.PathLike[str]) -> Iterator[FrameRecord]:
    """Frame records of an (ext)xyz file; structural problems (bad atom count, truncated frame) raise
    DataFormatError naming the line."""
    name = Path(path).name
    lines = numbered_lines(path)
    index = 0
    for number, line in lines:
        stripped = line.strip()
        if not stripped:
            continue
        try:
            natoms = int(stripped)
        except ValueError:
            raise DataFormatError(
                path, f"line {number}", f"expected the atom count of frame {index}, found {stripped[:60]!r}"
            ) from None
        if natoms < 0:
            raise DataFormatError(path, f"line {number}", f"negative atom count {natoms}")
        chunk = [line]
        for _ in range(natoms + 1):
            nxt = next(lines, None)
            if nxt is None:
                raise DataFormatError(
                    path,
                    f"line {number}",
                    f"frame {index} is truncated: expected {natoms} atom lines, the file ends after "
                    f"{len(chunk) - 2 if len(chunk) > 1 else 0}",
                )
            chunk.append(nxt[1])
        text = "".join(chunk)
        yield FrameRecord(
            index, f"frame {index} (line {number})", name, functools.partial(_parse_chunk, path, number, text)
        )
        index += 1


def count_frames(path: str | os.PathLike[str]) -> int:
    """Number of frames, found without parsing them."""
    return sum(1 for _ in iter_records(path))


def _numbers(values: Iterable[float]) -> str:
    return " ".join(repr(float(value)) for value in values)


def format_frame(atoms: Atoms) -> str:
    """One frame of standard extxyz text (positions, forces, energy, stress at full float64 precision)."""
    forces = frame_forces(atoms)
    energy = frame_energy(atoms)
    stress = frame_stress(atoms)
    properties = "species:S:1:pos:R:3"
    if forces is not None:
        columns = forces.shape[1] if forces.ndim == 2 else 1
        properties += f":forces:R:{columns}"
    header = []
    if atoms.pbc.any() or atoms.cell.any():
        header.append(f'Lattice="{_numbers(atoms.cell.array.reshape(-1))}"')
    header.append(f"Properties={properties}")
    if energy is not None:
        header.append(f"energy={float(energy)!r}")
    if stress is not None:
        header.append(f'stress="{_numbers(stress.reshape(-1))}"')
    info = {key: value for key, value in atoms.info.items() if key not in ("energy", "stress", "pbc")}
    info_text = key_val_dict_to_str(info)
    if info_text:
        header.append(info_text)
    header.append('pbc="{}"'.format(" ".join("T" if flag else "F" for flag in atoms.pbc)))
    rows = [f"{len(atoms)}\n", " ".join(header) + "\n"]
    positions = np.asarray(atoms.positions, dtype=np.float64)
    force_rows = forces.reshape(len(atoms), -1) if forces is not None else None
    for i, symbol in enumerate(atoms.get_chemical_symbols()):
        row = f"{symbol} {_numbers(positions[i])}"
        if force_rows is not None:
            row += " " + _numbers(force_rows[i])
        rows.append(row + "\n")
    return "".join(rows)


def write_frames(stream: TextIO, frames: Iterable[Atoms]) -> int:
    """Write frames as standard extxyz to an open text stream; returns the number written."""
    count = 0
    for atoms in frames:
        stream.write(format_frame(atoms))
        count += 1
    return count
