"""Safe output: never overwrite without ``force``; write a temporary sibling and rename it into place."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..atomic import atomic_path, umask_mode
from .errors import DataError


def refuse_overwrite(path: str | os.PathLike[str], force: bool) -> None:
    """Raise DataError when ``path`` exists and ``force`` is not set."""
    if Path(path).exists() and not force:
        raise DataError(f"{str(path)!r} exists; pass --force to overwrite it")


@contextmanager
def atomic_file(path: str | os.PathLike[str], force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on failure it is removed.
    An existing ``path`` is replaced only with ``force``."""
    refuse_overwrite(path, force)
    with atomic_path(path) as temporary:
        yield temporary


@contextmanager
def atomic_directory(path: str | os.PathLike[str], force: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary directory beside ``path``; on success it takes the place of ``path``
    (an existing ``path`` is replaced only with ``force``); on failure it is removed."""
    target = Path(path)
    refuse_overwrite(target, force)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(temporary, umask_mode(0o777))
    try:
        yield temporary
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            old.rmdir()
            os.replace(target, old)
            os.replace(temporary, target)
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        else:
            os.replace(temporary, target)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary)
