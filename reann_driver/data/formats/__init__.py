"""Readers and writers of the supported dataset formats, and the conversion to the standard form."""

from __future__ import annotations

import importlib
import os
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from types import ModuleType

from ase import Atoms

from ..errors import DataError, DataFormatError
from ..frames import DEFAULT_KEYS, LabelKeys, standardize
from ..output import atomic_directory, atomic_file
from ..units import PACKAGE_UNITS, Units
from .base import FrameRecord, numbered_lines

#: Formats ``--from`` accepts.
READ_FORMATS = ("extxyz", "reann", "n2p2", "deepmd", "asedb")
#: Formats ``--to`` accepts (extxyz is the standard form; the others are exports).
WRITE_FORMATS = ("extxyz", "reann", "n2p2", "deepmd", "asedb")


def format_module(fmt: str) -> ModuleType:
    """The reader/writer module of a format, imported on first use (ase.io and ase.db are slow to load)."""
    if fmt not in READ_FORMATS:
        raise DataError(f"unknown format {fmt!r}; choose one of {', '.join(READ_FORMATS)}")
    return importlib.import_module(f"{__name__}.{fmt}")


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
    module = format_module(fmt)
    if Path(path).is_dir() and fmt != "deepmd":
        hint = " (it looks like DeePMD data: --from deepmd)" if detect_format(path) == "deepmd" else ""
        raise DataError(f"{os.fspath(path)} is a folder, but --from {fmt} reads a file{hint}")
    if fmt == "reann":
        return _not_empty(module.iter_records(path, fractional=bool(options.get("fractional", False))), path)
    return _not_empty(module.iter_records(path), path)


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
    if fmt not in WRITE_FORMATS:
        raise DataError(f"unknown output format {fmt!r}; choose one of {', '.join(WRITE_FORMATS)}")
    module = format_module(fmt)
    written: int
    if fmt in ("extxyz", "reann", "n2p2"):
        with atomic_file(path, force) as temporary, open(temporary, "w", encoding="utf-8") as stream:
            written = module.write_frames(stream, frames)
    elif fmt == "deepmd":
        with atomic_directory(path, force) as temporary:
            written = module.write_frames(temporary, frames)
    else:  # asedb
        with atomic_file(path, force) as temporary:
            temporary.unlink()
            written = module.write_frames(temporary, frames)
    return written


__all__ = [
    "READ_FORMATS",
    "WRITE_FORMATS",
    "FrameRecord",
    "detect_format",
    "format_module",
    "iter_records",
    "parse_record",
    "read_frames",
    "standard_frame",
    "write_frames",
]
