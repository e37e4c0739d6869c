"""``reann-driver``: serve a REANN model to a running i-PI over its socket protocol."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from ..cli.common import Command, debugging
from ..errors import is_user_error

if TYPE_CHECKING:
    from .client import Address
    from .evaluator import BatchEvaluator

EXIT_ERROR = 1  # bad model, template or structure
EXIT_CONNECTION_LOST = 3  # i-PI went away without sending EXIT
EXIT_SIGNAL = 128  # + the signal number (SIGINT 130, SIGTERM 143), as a shell reports it


class Stopped(Exception):
    """SIGTERM or SIGINT arrived: the driver leaves after closing the connection properly."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_received: list[int] = []  # signals that arrived while serving, in case their exception was swallowed


def _stop(signum: int, _frame: object) -> None:
    for other in (signal.SIGTERM, signal.SIGINT):  # a second signal ends the process at once
        signal.signal(other, signal.SIG_DFL)
    _received.append(signum)
    raise Stopped(signum)


def _raise_if_stopped() -> None:
    """Raise ``Stopped`` again for a signal whose exception Python swallowed: a handler's exception raised
    while a finalizer (``__del__``) runs is printed and ignored, not propagated."""
    if _received:
        raise Stopped(_received[0])


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """Turn SIGTERM and SIGINT into ``Stopped`` while serving (the previous handlers are restored)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.clear()
    previous = {signum: signal.signal(signum, _stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _print_plugin_path(context: click.Context, _parameter: click.Parameter, value: bool) -> None:
    if value and not context.resilient_parsing:
        click.echo(Path(__file__).with_name("plugin.py"))
        context.exit(0)


@click.command(
    cls=Command, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.option(
    "--model",
    "model_paths",
    required=True,
    multiple=True,
    type=click.Path(dir_okay=False),
    help="REANN model file or committee file; repeat it (--model a.pt --model b.pt ...) to serve the "
    "models as a committee: i-PI gets the mean, and per-member values as the JSON extras "
    'committee_pot/committee_force/committee_virial that <ffcommittee parse_json="true"> reads.',
)
@click.option(
    "--template",
    required=True,
    type=click.Path(dir_okay=False),
    help="Structure file (any ase.io format, i-PI xyz included) with the atoms i-PI simulates, in i-PI's "
    "order; its chemical symbols give the species.",
)
@click.option(
    "--unix",
    "unix_address",
    metavar="ADDRESS",
    help="Unix socket: i-PI's <address> (the file is SOCKETS_PREFIX + ADDRESS) or a path containing '/'.",
)
@click.option("--host", help="TCP host of i-PI's inet socket (default localhost when --port is given).")
@click.option("--port", type=click.IntRange(1, 65535), help="TCP port of i-PI's inet socket.")
@click.option(
    "--sockets-prefix", default="/tmp/ipi_", show_default=True, help="i-PI's sockets_prefix for unix sockets."
)
@click.option(
    "--device",
    default="cpu",
    show_default=True,
    help="cpu, cuda, cuda:N or auto (CUDA when available).",
)
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True)
@click.option(
    "--non-periodic",
    is_flag=True,
    help="Molecule in vacuum: ignore the box i-PI sends (no periodic images, zero virial).",
)
@click.option("--extras", is_flag=True, help="Send per-atom energies (eV) to i-PI as JSON extras.")
@click.option(
    "--skin",
    type=click.FloatRange(0),
    default=0.2,  # evaluator.DEFAULT_SKIN, written out so that --help needs no torch
    show_default=True,
    help="Neighbour-list skin in Å: the list is kept between steps and rebuilt when an atom moved more "
    "than skin/2 (0: rebuilt whenever an atom moves).",
)
@click.option(
    "--compile",
    "compile_model",
    is_flag=True,
    help="Run the model through torch.compile: the first request compiles it (about 20 s on an idle CPU "
    "core), every later one takes less time (see docs/driver.md). A single model only; needs a C++ "
    "compiler on CPU.",
)
@click.option(
    "--pass-atoms",
    type=click.IntRange(0),
    default=None,
    help="Most atoms per forward pass: a batch of beads goes through the model in blocks of whole "
    "structures (0: all in one pass). Default: 1000 for a single model on the CPU, where the blocks "
    "stay in the caches; one pass on CUDA, with --compile and for committees.",
)
@click.option(
    "--wait",
    type=click.FloatRange(0),
    default=60.0,
    show_default=True,
    help="Seconds to keep retrying while i-PI is not listening yet.",
)
@click.option(
    "--handshake-timeout",
    type=click.FloatRange(0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds to wait for i-PI's first message after connecting (i-PI speaks at once).",
)
@click.option(
    "--plugin-path",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_plugin_path,
    help="Print the path of the i-PI PES plugin file (for <pes_path> or i-pi-py_driver -P) and exit.",
)
def main(
    model_paths: tuple[str, ...],
    template: str,
    unix_address: str | None,
    host: str | None,
    port: int | None,
    sockets_prefix: str,
    device: str,
    dtype: str,
    non_periodic: bool,
    extras: bool,
    skin: float,
    compile_model: bool,
    pass_atoms: int | None,
    wait: float,
    handshake_timeout: float,
) -> None:
    """Connect to a running i-PI and serve REANN energies, forces and virials until i-PI says EXIT.

    Batched <ffsocket>s (i-PI >= 3.3, <batch_size>N</batch_size>) are evaluated N structures at a time in
    one model call. Several --model files (or one committee file) are served as a committee for
    <ffcommittee parse_json="true">. Exit codes: 0 after EXIT, 1 bad model/template/structure/result,
    2 usage, 3 connection lost, 130/143 stopped by SIGINT/SIGTERM. However the driver leaves, it closes
    the socket so that i-PI drops it cleanly and gives its pending request to the next driver that connects.
    """
    if unix_address and (host or port):
        raise click.UsageError("give either --unix or --host/--port, not both")
    if not unix_address and port is None:
        raise click.UsageError("give --unix ADDRESS (unix socket) or --port PORT [--host HOST] (inet socket)")
    from ..memory import keep_freed_memory  # torch and i-PI load only once the arguments are fine
    from .client import Address, unix_socket_path
    from .evaluator import BatchEvaluator

    if unix_address:
        address = Address(unix_path=unix_socket_path(unix_address, sockets_prefix))
    else:
        assert port is not None
        address = Address(host=host or "localhost", port=port)

    keep_freed_memory()  # large batches: reuse freed heap instead of page-faulting fresh memory each step
    try:
        evaluator = BatchEvaluator.from_files(
            model_paths,
            template,
            periodic=not non_periodic,
            device=device,
            dtype=dtype,
            extras=extras,
            skin=skin,
            compile=compile_model,
            pass_atoms=pass_atoms,
        )
    except Exception as error:
        _fail_on_user_error(error, EXIT_ERROR)

    from ..model import Committee

    _log(f"waiting for i-PI to listen at {address} (for up to {wait:g} s, --wait)")
    members = f"committee of {len(evaluator.model)}" if isinstance(evaluator.model, Committee) else "model"
    mode = f"{members} on {evaluator.device} ({dtype}), {'non-periodic' if non_periodic else 'periodic'}"
    if compile_model:
        mode += ", compiled (the first request compiles it)"
    with _stop_on_signals():
        _connect_and_serve(address, evaluator, wait, handshake_timeout, mode)


def _connect_and_serve(
    address: Address, evaluator: BatchEvaluator, wait: float, handshake_timeout: float, mode: str
) -> None:
    from . import protocol
    from .client import close_connection, connect, serve
    from .evaluator import ModelOutputError, StructureError, TemplateError

    try:
        sock = connect(address, wait=wait)
    except OSError as error:
        _fail(f"error: {error}", EXIT_ERROR)
    except Stopped as stop:
        _fail(f"stopped by {stop} before connecting", EXIT_SIGNAL + stop.signum)
    _log(f"connected to {address}: {evaluator.n_atoms} atoms, {mode}")
    try:
        session = serve(
            sock, evaluator, log=_log, handshake_timeout=handshake_timeout, check_stop=_raise_if_stopped
        )
    except protocol.ConnectionClosed as error:
        _fail(
            f"error: {error} without sending EXIT (did i-PI stop or crash?); driver stops",
            EXIT_CONNECTION_LOST,
        )
    except Stopped as stop:
        _fail(
            f"stopped by {stop}; the connection was closed so that i-PI can give its request to another "
            "driver",
            EXIT_SIGNAL + stop.signum,
        )
    except (TemplateError, StructureError, ModelOutputError, protocol.ProtocolError) as error:
        _fail(f"error: {error}; driver stops", EXIT_ERROR)
    except Exception as error:  # a user error in one line; a bug (or --debug) with its traceback
        _fail_on_user_error(error, EXIT_ERROR)
    finally:
        close_connection(sock)
    per_request = 1e3 * session.seconds_evaluating / max(session.n_requests, 1)
    _log(
        f"i-PI sent EXIT: {session.n_structures} structures in {session.n_requests} requests, "
        f"{per_request:.2f} ms model time per request, {session.seconds_total:.1f} s connected"
    )


def _log(message: str) -> None:
    click.echo(f"reann-driver: {message}", err=True)


def _fail(message: str, code: int) -> NoReturn:
    _log(message)
    sys.exit(code)


def _fail_on_user_error(error: Exception, code: int) -> NoReturn:
    """Exit with ``code`` and a one-line message for a user error; re-raise a bug or under --debug."""
    if debugging() or not is_user_error(error):
        raise error
    _fail(f"error: {error}", code)
