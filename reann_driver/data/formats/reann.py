"""REANN's ``configuration`` files, as read by REANN's ``read_data.py``: per frame a ``point=`` line,
three cell rows, ``pbc f1 f2 f3``, one line per atom ``symbol mass x y z [fx fy fz]`` and
``abprop: energy``. Coordinates are Cartesian unless REANN's ``table_coor=1`` (``fractional=True``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers

from ..errors import DataError, DataFormatError
from ..frames import frame_energy, frame_forces, make_frame
from .base import FrameRecord, format_numbers, numbered_lines, parse_floats


def iter_records(path: str | os.PathLike[str], fractional: bool = False) -> Iterator[FrameRecord]:
    """Frame records, one per ``point=`` ... ``abprop:`` block."""
    name = Path(path).name
    index = 0
    block: list[tuple[int, str]] | None = None
    for number, line in numbered_lines(path):
        stripped = line.strip()
        if not stripped:
            continue
        if block is None:
            if not stripped.startswith("point"):
                raise DataFormatError(
                    path, f"line {number}", f"expected 'point=' of frame {index}, found {stripped[:40]!r}"
                )
            block = [(number, line)]
            continue
        block.append((number, line))
        if stripped.startswith("abprop:"):
            lines = block
            yield FrameRecord(
                index,
                f"frame {index} (line {lines[0][0]})",
                name,
                functools.partial(_parse_block, path, lines, fractional),
            )
            index += 1
            block = None
        elif stripped.startswith("point"):
            raise DataFormatError(
                path, f"line {number}", f"frame {index} (line {block[0][0]}) has no 'abprop:' line"
            )
    if block is not None:
        raise DataFormatError(
            path, f"line {block[0][0]}", f"frame {index} is truncated: the file ends before 'abprop:'"
        )


def _parse_block(path: str | os.PathLike[str], lines: list[tuple[int, str]], fractional: bool) -> Atoms:
    if len(lines) < 6:
        raise DataFormatError(
            path, f"line {lines[0][0]}", "a frame needs point=, 3 cell rows, pbc, atoms and abprop:"
        )
    cell = []
    for number, line in lines[1:4]:
        words = line.split()
        if len(words) != 3:
            raise DataFormatError(path, f"line {number}", "a cell row needs 3 numbers")
        cell.append(parse_floats(path, number, words, "cell"))
    number, line = lines[4]
    words = line.split()
    if len(words) != 4 or words[0].lower() != "pbc":
        raise DataFormatError(path, f"line {number}", "expected 'pbc f1 f2 f3'")
    pbc = [flag != 0 for flag in parse_floats(path, number, words[1:4], "pbc")]
    symbols, positions, forces = [], [], []
    for number, line in lines[5:-1]:
        words = line.split()
        if len(words) not in (5, 8):
            raise DataFormatError(
                path,
                f"line {number}",
                f"an atom line needs symbol mass x y z [fx fy fz], got {len(words)} fields",
            )
        if words[0] not in atomic_numbers:
            raise DataFormatError(path, f"line {number}", f"unknown element {words[0][:20]!r}")
        values = parse_floats(path, number, words[1:], "atom")
        symbols.append(words[0])
        positions.append(values[1:4])
        if len(values) == 7:
            forces.append(values[4:7])
    if forces and len(forces) != len(symbols):
        raise DataFormatError(path, f"line {lines[0][0]}", "some atom lines have forces and others not")
    number, line = lines[-1]
    words = line.split()
    if len(words) < 2:
        raise DataFormatError(path, f"line {number}", "'abprop:' needs a value")
    energy = parse_floats(path, number, words[1:2], "abprop")[0]
    cartesian = np.array(positions, dtype=np.float64).reshape(-1, 3)
    if fractional:
        cartesian = cartesian @ np.array(cell)
    return make_frame(
        symbols,
        cartesian,
        cell=np.array(cell),
        pbc=pbc,
        energy=energy,
        forces=np.array(forces) if forces else None,
    )


def write_frames(stream: TextIO, frames: Iterable[Atoms]) -> int:
    """Write standard frames as a REANN ``configuration`` file (Cartesian, eV and Å; forces if present)."""
    count = 0
    for atoms in frames:
        energy, forces = frame_energy(atoms), frame_forces(atoms)
        if energy is None:
            raise DataError(f"frame {atoms.info.get('source_index')}: REANN export needs an energy")
        stream.write(f"point= {count + 1}\n")
        for row in atoms.cell.array:
            stream.write(format_numbers(row) + "\n")
        stream.write("pbc " + " ".join("1" if flag else "0" for flag in atoms.pbc) + "\n")
        for i, (symbol, position) in enumerate(zip(atoms.get_chemical_symbols(), atoms.positions)):
            mass = atomic_masses[atomic_numbers[symbol]]
            row = f"{symbol} {float(mass)!r} {format_numbers(position)}"
            if forces is not None:
                row += " " + format_numbers(forces[i])
            stream.write(row + "\n")
        stream.write(f"abprop: {float(energy)!r}\n")
        count += 1
    return count
