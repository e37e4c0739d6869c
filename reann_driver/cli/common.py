"""What the console commands share: user errors as one line, ``--debug`` on every command for the traceback.

``reann``, ``reann-data`` and ``reann-driver`` use these click classes; their commands import the heavy
modules (torch, ase.io, i-PI) inside the command body, so that ``--help`` and argument errors are quick.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click

from ..errors import is_user_error

F = TypeVar("F", bound=Callable[..., Any])

_DEBUG = "reann_driver.debug"


def debugging() -> bool:
    """True when ``--debug`` was given to the running command or to its group."""
    context = click.get_current_context(silent=True)
    return bool(context is not None and context.meta.get(_DEBUG))


def _set_debug(context: click.Context, _parameter: click.Parameter, value: bool) -> None:
    if value:
        context.meta[_DEBUG] = True  # meta is shared by a group's context and its subcommands'


def _debug_option() -> click.Option:
    return click.Option(
        ["--debug"],
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_set_debug,
        help="Show the full traceback of an error instead of one line.",
    )


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn user errors (bad input, refused overwrite, missing device) into one-line click errors, unless
    ``--debug``; every other exception is a bug and keeps its traceback."""
    try:
        yield
    except Exception as error:
        if debugging() or not is_user_error(error):
            raise
        raise click.ClickException(str(error)) from None


def friendly_errors(command: F) -> F:
    """Decorator form of ``one_line_errors`` for a command function."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with one_line_errors():
            return command(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


class _Reporting:
    """Adds ``--debug`` to a click command or group and reports its user errors in one line."""

    params: list[click.Parameter]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.append(_debug_option())

    def invoke(self, ctx: click.Context) -> Any:
        with one_line_errors():
            return super().invoke(ctx)  # type: ignore[misc]


class Command(_Reporting, click.Command):
    """A click command with ``--debug`` whose user errors are one line."""


class Group(_Reporting, click.Group):
    """A click group whose subcommands (and itself) take ``--debug``."""

    command_class = Command


Group.group_class = Group
