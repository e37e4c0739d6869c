"""What every format module provides: lazily parsed frame records, and text-file helpers."""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ase import Atoms

from ..errors import DataFormatError


@dataclass(frozen=True)
class FrameRecord:
    """One frame of a source file, located but not yet parsed (so that streaming selection is cheap).

    ``index`` is the 0-based frame number in the source, ``where`` a human-readable location
    ("line 17", "frame 3 of data_1/set.000"), ``source`` the name recorded in the standard frame,
    and ``parse()`` returns the frame as an ``ase.Atoms`` in the file's own units.
    """

    index: int
    where: str
    source: str
    parse: Callable[[], Atoms]


@contextmanager
def open_text(path: str | os.PathLike[str]) -> Iterator[TextIO]:
    """Open a text file for reading, transparently decompressing ``.gz``; strict UTF-8."""
    source = Path(path)
    if not source.is_file():
        raise DataFormatError(source, "", "no such file")
    if source.suffix == ".gz":
        with gzip.open(source, "rb") as binary, io.TextIOWrapper(binary, encoding="utf-8") as text:
            yield text
    else:
        with open(source, encoding="utf-8") as text:
            yield text


def numbered_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) pairs; decoding and decompression failures become DataFormatError."""
    number = 0
    with open_text(path) as stream:
        try:
            for number, line in enumerate(stream, start=1):
                if "\x00" in line:
                    raise DataFormatError(
                        path, f"line {number}", "contains a NUL byte (binary data in a text file)"
                    )
                yield number, line
        except (UnicodeDecodeError, OSError, EOFError, zlib.error) as error:
            raise DataFormatError(
                path, f"after line {number}", f"unreadable (not text or corrupt): {error}"
            ) from None


def parse_floats(path: str | os.PathLike[str], number: int, words: list[str], what: str) -> list[float]:
    """``words`` as floats; a ``DataFormatError`` naming the file, line and field otherwise."""
    try:
        return [float(word) for word in words]
    except ValueError:
        raise DataFormatError(
            path, f"line {number}", f"{what}: not a number in {' '.join(words)!r}"
        ) from None


def format_numbers(values: Iterable[float]) -> str:
    """Floats separated by spaces, each with the shortest repr that round-trips exactly."""
    return " ".join(repr(float(value)) for value in values)
