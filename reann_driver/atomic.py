"""Atomic file output: write a temporary sibling, flush it to disk, then rename it into place.

A reader never sees a half-written file, and a failed write leaves the previous file untouched.
No torch here, so the dataset toolkit can use it without loading torch.
"""

from __future__ import annotations

import os
import re
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


#: The temporary files ``atomic_path`` creates: ``.NAME.<8 random characters>.tmp``.
TEMPORARY_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


def remove_stale_temporaries(
    directory: str | os.PathLike[str], log: Callable[[str], None] | None = None
) -> list[Path]:
    """Delete the temporary files a killed writer left in ``directory`` (e.g. ``.last.pt.k3j_x9ab.tmp``
    after kill -9 during a checkpoint write); call it only when no writer of that directory runs.
    Returns the removed paths; ``log`` gets one line saying what was removed."""
    removed = []
    for path in sorted(Path(directory).iterdir()):
        if TEMPORARY_NAME.match(path.name) and path.is_file() and not path.is_symlink():
            size = path.stat().st_size
            path.unlink(missing_ok=True)
            removed.append((path, size))
    if removed and log is not None:
        total = sum(size for _, size in removed) / 2**20
        names = ", ".join(path.name for path, _ in removed[:3]) + (" ..." if len(removed) > 3 else "")
        log(
            f"removed {len(removed)} temporary file(s) left by an interrupted write "
            f"({total:.1f} MiB): {names}"
        )
    return [path for path, _ in removed]
