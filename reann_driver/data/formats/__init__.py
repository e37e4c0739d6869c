"""Readers and writers of the supported dataset formats, and the conversion to the standard form."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path

from ase import Atoms

from ..errors import DataError, DataFormatError
from ..frames import DEFAULT_KEYS, LabelKeys, standardize
from ..output import atomic_directory, atomic_file
from ..units import PACKAGE_UNITS, Units
from . import asedb, deepmd, extxyz, n2p2, reann
from .base import FrameRecord, numbered_lines

#: Formats ``--from`` accepts.
READ_FORMATS = ("extxyz", "reann", "n2p2", "deepmd", "asedb")
#: Formats ``--to`` accepts (extxyz is the standard form; the others are exports).
WRITE_FORMATS = ("extxyz", "reann", "n2p2", "deepmd", "asedb")


def detect_format(path: str | os.PathLike[str]) -> str:
    """Guess the format of ``path`` from its name, then from its first non-blank line."""
    source = Path(path)
    if source.is_dir():
        return "deepmd"
    name = source.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith((".xyz", ".extxyz")):
        return "extxyz"
    if name.endswith(".db"):
        return "asedb"
    if name == "input.data" or name.endswith(".input.data") or name.endswith(".data"):
        return "n2p2"
    if name.startswith("configuration"):
        return "reann"
    if not source.exists():
        raise DataError(f"{str(source)!r} does not exist")
    try:
        for _, line in numbered_lines(source):
            word = line.strip().split()
            if not word:
                continue
            if word[0] == "begin":
                return "n2p2"
            if word[0].startswith("point="):
                return "reann"
            if word[0].isdigit():
                return "extxyz"
            break
    except DataFormatError:
        pass
    raise DataError(f"cannot tell the format of {str(source)!r}; name it with --from")


def iter_records(
    path: str | os.PathLike[str], fmt: str | None = None, **options: object
) -> Iterator[FrameRecord]:
    """Unparsed frame records of ``path`` in source order (format auto-detected when ``fmt`` is None).
    A source without frames is a DataFormatError."""
    fmt = fmt or detect_format(path)
    if fmt == "extxyz":
        return _not_empty(extxyz.iter_records(path), path)
    if fmt == "reann":
        return _not_empty(reann.iter_records(path, fractional=bool(options.get("fractional", False))), path)
    if fmt == "n2p2":
        return _not_empty(n2p2.iter_records(path), path)
    if fmt == "deepmd":
        return _not_empty(deepmd.iter_records(path), path)
    if fmt == "asedb":
        return _not_empty(asedb.iter_records(path), path)
    raise DataError(f"unknown input format {fmt!r}; choose one of {', '.join(READ_FORMATS)}")


def _not_empty(records: Iterator[FrameRecord], path: str | os.PathLike[str]) -> Iterator[FrameRecord]:
    empty = True
    for record in records:
        empty = False
        yield record
    if empty:
        raise DataFormatError(path, "", "holds no frames (empty file or folder)")


def parse_record(record: FrameRecord, path: str | os.PathLike[str]) -> Atoms:
    """Parse one record, turning any parser failure into a DataFormatError naming file and frame."""
    try:
        return record.parse()
    except DataFormatError:
        raise
    except Exception as error:
        raise DataFormatError(path, record.where, f"{type(error).__name__}: {error}") from None


def standard_frame(
    record: FrameRecord,
    path: str | os.PathLike[str],
    *,
    units: Units = PACKAGE_UNITS,
    keys: LabelKeys = DEFAULT_KEYS,
    config_type: str | None = None,
) -> Atoms:
    """Parse one record and convert it to the standard form (errors name the file and frame)."""
    raw = parse_record(record, path)
    try:
        return standardize(
            raw,
            units=units,
            keys=keys,
            source=record.source,
            source_index=record.index,
            config_type=config_type,
        )
    except Exception as error:  # labels of an unexpected type or shape in the input
        raise DataFormatError(path, record.where, f"{type(error).__name__}: {error}") from None


def read_frames(
    path: str | os.PathLike[str],
    fmt: str | None = None,
    *,
    units: Units = PACKAGE_UNITS,
    keys: LabelKeys = DEFAULT_KEYS,
    config_type: str | None = None,
    select: Collection[int] | None = None,
    fractional: bool = False,
) -> Iterator[Atoms]:
    """Frames of ``path`` in the standard form (Å, eV, eV/Å, eV/Å^3), in source order.

    ``select`` restricts the output to these source indices; the other frames are skipped without
    being parsed, so a selection from a huge file costs little memory and time.
    """
    wanted = None if select is None else set(select)
    for record in iter_records(path, fmt, fractional=fractional):
        if wanted is None or record.index in wanted:
            yield standard_frame(record, path, units=units, keys=keys, config_type=config_type)


def write_frames(
    path: str | os.PathLike[str], frames: Iterable[Atoms], fmt: str = "extxyz", force: bool = False
) -> int:
    """Write standard frames to ``path`` atomically (never over an existing file without ``force``).

    Returns the number of frames written.

    ``extxyz``, ``reann`` and ``n2p2`` stream; ``deepmd`` (a directory) and ``asedb`` are built in a
    temporary location and renamed into place.
    """
    if fmt in ("extxyz", "reann", "n2p2"):
        module = {"extxyz": extxyz, "reann": reann, "n2p2": n2p2}[fmt]
        with atomic_file(path, force) as temporary, open(temporary, "w", encoding="utf-8") as stream:
            return module.write_frames(stream, frames)
    if fmt == "deepmd":
        with atomic_directory(path, force) as temporary:
            return deepmd.write_frames(temporary, frames)
    if fmt == "asedb":
        with atomic_file(path, force) as temporary:
            temporary.unlink()
            return asedb.write_frames(temporary, frames)
    raise DataError(f"unknown output format {fmt!r}; choose one of {', '.join(WRITE_FORMATS)}")


__all__ = [
    "READ_FORMATS",
    "WRITE_FORMATS",
    "FrameRecord",
    "detect_format",
    "iter_records",
    "parse_record",
    "read_frames",
    "standard_frame",
    "write_frames",
]
