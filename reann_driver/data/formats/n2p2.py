"""n2p2 / RuNNer ``input.data``: ``begin``, ``comment``, three ``lattice`` lines (periodic frames only),
``atom x y z element charge atomic_energy fx fy fz`` lines, ``energy``, ``charge``, ``end``.

ASE has no reader for it; this one reports the line of every problem. Values are read in whatever
units the file uses (the n2p2 water examples are in Bohr and Hartree: convert with ``--units atomic``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

import numpy as np
from ase import Atoms

from ..errors import DataError, DataFormatError
from ..frames import frame_energy, frame_forces, make_frame
from .base import FrameRecord, format_numbers, numbered_lines, parse_floats

KEYWORDS = ("comment", "lattice", "atom", "energy", "charge")


def iter_records(path: str | os.PathLike[str]) -> Iterator[FrameRecord]:
    """Frame records, one per ``begin`` ... ``end`` block."""
    name = Path(path).name
    index = 0
    block: list[tuple[int, str]] | None = None
    start = 0
    for number, line in numbered_lines(path):
        words = line.split()
        if not words:
            continue
        keyword = words[0].lower()
        if block is None:
            if keyword != "begin":
                raise DataFormatError(
                    path, f"line {number}", f"expected 'begin' of frame {index}, found {words[0][:40]!r}"
                )
            block, start = [], number
        elif keyword == "begin":
            raise DataFormatError(
                path, f"line {number}", f"'begin' inside frame {index} (opened at line {start}, no 'end')"
            )
        elif keyword == "end":
            lines = block
            yield FrameRecord(
                index, f"frame {index} (line {start})", name, functools.partial(_parse_block, path, lines)
            )
            index += 1
            block = None
        elif keyword in KEYWORDS:
            block.append((number, line))
        else:
            raise DataFormatError(
                path, f"line {number}", f"unknown keyword {words[0][:40]!r} in frame {index}"
            )
    if block is not None:
        raise DataFormatError(
            path, f"line {start}", f"frame {index} is truncated: the file ends before its 'end'"
        )


def _parse_block(path: str | os.PathLike[str], lines: list[tuple[int, str]]) -> Atoms:
    lattice: list[list[float]] = []
    symbols: list[str] = []
    positions: list[list[float]] = []
    forces: list[list[float]] = []
    energy: float | None = None
    comment = ""
    for number, line in lines:
        words = line.split()
        keyword = words[0].lower()
        if keyword == "comment":
            comment = line.strip()[len(words[0]) :].strip()
        elif keyword == "lattice":
            if len(words) != 4:
                raise DataFormatError(path, f"line {number}", "a lattice line needs 3 numbers")
            lattice.append(parse_floats(path, number, words[1:4], "lattice"))
        elif keyword == "atom":
            if len(words) != 10:
                raise DataFormatError(
                    path,
                    f"line {number}",
                    f"an atom line needs x y z element charge energy fx fy fz, got {len(words) - 1} fields",
                )
            values = parse_floats(path, number, words[1:4] + words[5:10], "atom")
            symbols.append(words[4])
            positions.append(values[0:3])
            forces.append(values[5:8])
        elif keyword == "energy":
            if len(words) != 2:
                raise DataFormatError(path, f"line {number}", "an energy line needs one number")
            if energy is not None:
                raise DataFormatError(path, f"line {number}", "a second 'energy' line in the same frame")
            energy = parse_floats(path, number, words[1:2], "energy")[0]
    if len(lattice) not in (0, 3):
        raise DataFormatError(
            path, f"line {lines[0][0] if lines else '?'}", f"{len(lattice)} lattice lines (need 0 or 3)"
        )
    try:
        return make_frame(
            symbols,
            np.array(positions, dtype=np.float64).reshape(-1, 3),
            cell=np.array(lattice) if lattice else None,
            pbc=bool(lattice),
            energy=energy,
            forces=np.array(forces, dtype=np.float64).reshape(-1, 3),
            info={"comment": comment} if comment else None,
        )
    except (KeyError, ValueError) as error:  # unknown element symbol
        where = f"line {lines[0][0]}" if lines else ""
        raise DataFormatError(path, where, f"bad frame: {error}") from None


def write_frames(stream: TextIO, frames: Iterable[Atoms]) -> int:
    """Write standard frames as ``input.data`` (units eV and Å). Every frame needs energy and forces."""
    count = 0
    for atoms in frames:
        energy, forces = frame_energy(atoms), frame_forces(atoms)
        if energy is None or forces is None or forces.shape != (len(atoms), 3):
            raise DataError(f"frame {atoms.info.get('source_index')}: n2p2 export needs an energy and forces")
        tags = " ".join(
            f"{key}={atoms.info[key]}"
            for key in ("config_type", "source", "source_index")
            if key in atoms.info
        )
        stream.write("begin\n")
        stream.write(f"comment {tags}\n")
        if atoms.pbc.any():
            for row in atoms.cell.array:
                stream.write(f"lattice {format_numbers(row)}\n")
        for symbol, position, force in zip(atoms.get_chemical_symbols(), atoms.positions, forces):
            stream.write(f"atom {format_numbers(position)} {symbol} 0.0 0.0 {format_numbers(force)}\n")
        stream.write(f"energy {float(energy)!r}\ncharge 0.0\nend\n")
        count += 1
    return count
