"""The root of the errors a user can fix (bad input, refused overwrite, missing device).

The console commands print these as one line (``--debug`` shows the traceback); any other exception is a
bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input or environment, reported in one line naming what is at fault."""


#: Operating-system errors that are the user's to fix: a path that is missing, taken or not allowed.
USER_OS_ERRORS: tuple[type[OSError], ...] = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


def is_user_error(error: BaseException) -> bool:
    """True for errors reported in one line (``UserError`` and the path errors above)."""
    return isinstance(error, (UserError, *USER_OS_ERRORS))
