"""Atomic file output: write a temporary sibling, flush it to disk, then rename it into place.

A reader never sees a half-written file, and a failed write leaves the previous file untouched.
No torch here, so the dataset toolkit can use it without loading torch.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def umask_mode(mode: int) -> int:
    """``mode`` restricted by the process umask (what ``open``/``mkdir`` would have given)."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on failure it is removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    temporary = Path(name)
    os.chmod(temporary, umask_mode(0o666))
    try:
        yield temporary
        with open(temporary, "rb+") as stream:
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike[str], write: Callable[[IO[Any]], object]) -> None:
    """Call ``write(binary_stream)`` on a temporary file beside ``path`` and rename it into place."""
    with atomic_path(path) as temporary, open(temporary, "wb") as stream:
        write(stream)
