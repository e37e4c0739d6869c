"""ASE databases (SQLite ``.db``). Reading never creates or alters the file: it is checked to be an
SQLite file holding ASE's tables before ``ase.db`` touches it."""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import ase.db
from ase import Atoms

from ..errors import DataFormatError
from ..frames import standard_copy
from .base import FrameRecord

SQLITE_MAGIC = b"SQLite format 3\x00"


def _check_database(path: Path) -> None:
    if not path.is_file():
        raise DataFormatError(path, "", "no such file")
    with open(path, "rb") as stream:
        if stream.read(16) != SQLITE_MAGIC:
            raise DataFormatError(path, "", "not an SQLite file (ASE databases are SQLite .db files)")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            tables = {
                row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
    except sqlite3.DatabaseError as error:
        raise DataFormatError(path, "", f"corrupt SQLite file: {error}") from None
    if "systems" not in tables:
        raise DataFormatError(path, "", "an SQLite file without ASE's 'systems' table")


def _row_to_atoms(row: Any) -> Atoms:
    atoms = row.toatoms()
    info = dict(row.data.get("info", {})) if row.get("data") else dict(row.key_value_pairs)
    return standard_copy(atoms, info)


def iter_records(path: str | os.PathLike[str]) -> Iterator[FrameRecord]:
    """Frame records, one per row in id order."""
    source = Path(path)
    _check_database(source)
    try:
        database = ase.db.connect(str(source), type="db", create_indices=False)
        rows = database.select(sort="id")
        for index, row in enumerate(rows):
            yield FrameRecord(index, f"row id {row.id}", source.name, functools.partial(_row_to_atoms, row))
    except Exception as error:  # whatever ase.db raises on a damaged file
        raise DataFormatError(source, "", f"unreadable ASE database: {error}") from None


def write_frames(path: Path, frames: Iterable[Atoms]) -> int:
    """Write standard frames to a new ASE database at ``path`` (info in ``data['info']``; the standard
    info keys also as key-value pairs for ``ase db`` queries)."""
    count = 0
    database = ase.db.connect(str(path), type="db", append=False)
    with database:
        for atoms in frames:
            info = {key: value for key, value in atoms.info.items()}
            pairs = {key: info[key] for key in ("config_type", "source", "source_index") if key in info}
            database.write(atoms, key_value_pairs=pairs, data={"info": info})
            count += 1
    return count
