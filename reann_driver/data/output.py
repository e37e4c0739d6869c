"""Safe output: never overwrite without ``force``, never touch an input; write a temporary sibling and
rename it into place.

``check_output`` is the one rule every writing command follows: an output that is, contains or lies
inside one of the command's inputs is refused, ``--force`` or not; an existing output is replaced only
with ``--force``, and only by the same kind of thing (a file by a file, a folder by a folder).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..atomic import atomic_path, umask_mode
from .errors import DataError, OutputExistsError


def _same_file(first: Path, second: Path) -> bool:
    try:
        return first.samefile(second)
    except OSError:
        return False


def check_output(
    path: str | os.PathLike[str],
    inputs: Iterable[str | os.PathLike[str]] = (),
    *,
    force: bool = False,
    directory: bool = False,
) -> None:
    """Refuse (DataError) an output that would destroy an input or an existing file.

    Args:
        path: the output (a file, or a folder when ``directory``).
        inputs: the files and folders the command reads.
        force: allow replacing an existing output of the same kind.
        directory: the output is a folder.
    """
    target = Path(path).resolve()
    for source in inputs:
        origin = Path(source).resolve()
        if target == origin or _same_file(target, origin):
            relation = "is"
        elif origin in target.parents:
            relation = "lies inside"
        elif target in origin.parents:
            relation = "contains"
        else:
            continue
        raise DataError(
            f"the output {str(path)!r} {relation} the input {str(source)!r}; "
            "choose another output (--force does not allow this)"
        )
    if not target.exists() and not target.is_symlink():
        return
    if directory and not target.is_dir():
        raise DataError(f"{str(path)!r} exists and is not a folder; choose another output folder")
    if not directory and target.is_dir():
        raise DataError(f"{str(path)!r} is a folder; give a file name")
    refuse_overwrite(path, force)


def refuse_overwrite(path: str | os.PathLike[str], force: bool) -> None:
    """Raise OutputExistsError (a DataError) when ``path`` exists and ``force`` is not set."""
    if Path(path).exists() and not force:
        raise OutputExistsError(f"{str(path)!r} exists; pass --force to overwrite it")


@contextmanager
def atomic_file(path: str | os.PathLike[str], force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on failure it is removed.
    An existing ``path`` is replaced only with ``force`` (see ``check_output``)."""
    check_output(path, force=force)
    with atomic_path(path) as temporary:
        yield temporary


@contextmanager
def atomic_directory(path: str | os.PathLike[str], force: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary directory beside ``path``; on success it takes the place of ``path``
    (an existing ``path`` is replaced only with ``force``); on failure it is removed."""
    target = Path(path)
    check_output(target, force=force, directory=True)
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
