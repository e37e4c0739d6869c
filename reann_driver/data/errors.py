"""Errors of the dataset toolkit: every one names the file and the line or frame at fault."""

from __future__ import annotations

import os

from ..errors import UserError


class DataError(UserError, ValueError):
    """A dataset problem the user can fix (bad input, refused overwrite, inconsistent manifest, a data
    file that cannot be used for training)."""


class OutputExistsError(DataError, FileExistsError):
    """An output exists and ``--force`` was not given."""


class DataFormatError(DataError):
    """A file that cannot be parsed; the message names the file and the line or frame."""

    def __init__(self, path: str | os.PathLike[str], where: str, problem: str) -> None:
        self.path = str(path)
        self.where = where
        self.problem = problem
        super().__init__(f"{self.path}: {where}: {problem}" if where else f"{self.path}: {problem}")
