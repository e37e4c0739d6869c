"""The driver's client loop: connect to i-PI and answer its requests until EXIT.

The loop is a small state machine driven by i-PI's messages. It starts in NEEDINIT so that i-PI sends
INIT, whose string carries ``batch_size:N`` when the ``<ffsocket>`` batches; every POSDATA is then
evaluated at once (all N structures in one model call) and the answer to GETFORCE goes out in one
``sendall``. POSDATA and GETFORCE may arrive in one packet or separately, with STATUS in between.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import protocol
from .evaluator import BatchEvaluator


@dataclass(frozen=True)
class Address:
    """Where i-PI listens: a unix socket path, or a TCP host and port."""

    unix_path: str | None = None
    host: str = "localhost"
    port: int = 31415

    def __str__(self) -> str:
        return f"unix socket {self.unix_path}" if self.unix_path else f"{self.host}:{self.port}"


def unix_socket_path(address: str, prefix: str = "/tmp/ipi_") -> str:
    """i-PI's unix socket file: ``prefix + address`` (i-PI's ``sockets_prefix``), or ``address`` itself
    when it contains a ``/``."""
    return address if "/" in address else prefix + address


#: Longest unix socket path the kernel accepts (``sun_path`` holds 108 bytes on Linux, 104 elsewhere,
#: including the terminating NUL).
UNIX_PATH_MAX = 107 if sys.platform.startswith("linux") else 103


def connect(address: Address, wait: float = 60.0, poll_interval: float = 0.1) -> socket.socket:
    """Connect to i-PI, retrying for up to ``wait`` seconds while the server is not up yet."""
    if address.unix_path and len(os.fsencode(address.unix_path)) > UNIX_PATH_MAX:
        raise ConnectionError(
            f"unix socket path {address.unix_path!r} is {len(os.fsencode(address.unix_path))} bytes, "
            f"longer than the {UNIX_PATH_MAX} a unix socket allows: use a shorter address or --sockets-prefix"
        )
    deadline = time.monotonic() + wait
    while True:
        if address.unix_path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: str | tuple[str, int] = address.unix_path
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # i-PI's small messages: no Nagle
            target = (address.host, address.port)
        try:
            sock.connect(target)
            return sock
        except (FileNotFoundError, ConnectionRefusedError) as error:
            sock.close()
            if time.monotonic() >= deadline:
                if address.unix_path and isinstance(error, ConnectionRefusedError):
                    raise ConnectionError(
                        f"{address.unix_path} exists but nobody listens on it after {wait:g} s: a socket "
                        "file left by an i-PI that was killed; delete it (and check that no i-PI is still "
                        "starting), then start i-PI again"
                    ) from None
                raise ConnectionError(
                    f"no i-PI server at {address} after {wait:g} s ({error.strerror}); "
                    "start i-PI first and check the <ffsocket> address/port"
                ) from None
            time.sleep(poll_interval)
        except OSError:
            sock.close()
            raise


class HandshakeTimeout(protocol.ProtocolError):
    """The peer accepted the connection but did not speak i-PI's protocol in time."""


def close_connection(sock: socket.socket, linger: float = 2.0) -> None:
    """Close ``sock`` so that i-PI sees an orderly end of stream, never a reset.

    Closing a socket with unread bytes pending makes the kernel reset the connection, and i-PI 3.3's
    polling thread dies on the ConnectionResetError (i-PI then hangs: a new driver is never served).
    So the driver first shuts down its sending side (i-PI reads end-of-file, drops this client and
    queues its request again), then reads and discards whatever i-PI still sends until i-PI closes
    its side or ``linger`` seconds pass, and only then closes.
    """
    try:
        sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + linger
        while (remaining := deadline - time.monotonic()) > 0:
            sock.settimeout(remaining)
            if not sock.recv(1 << 16):
                break
    except OSError:  # already reset or closed by i-PI, or the linger time is up
        pass
    finally:
        sock.close()


@dataclass
class Session:
    """What happened during one connection."""

    batch_size: int = 1
    init_string: str = ""
    n_requests: int = 0
    n_structures: int = 0  # as sent by i-PI, padding included
    n_evaluated: int = 0  # distinct structures given to the model
    seconds_evaluating: float = 0.0
    seconds_total: float = 0.0
    exit_received: bool = False


def real_structures(structures: protocol.Structures) -> int:
    """Number of structures before i-PI's padding: i-PI fills an incomplete batch with copies of the
    last structure, which need not be evaluated again."""
    n = len(structures.cells)
    while (
        n > 1
        and np.array_equal(structures.positions[n - 1], structures.positions[n - 2])
        and np.array_equal(structures.cells[n - 1], structures.cells[n - 2])
    ):
        n -= 1
    return n


def serve(
    sock: socket.socket,
    evaluator: BatchEvaluator,
    log: Callable[[str], None] | None = None,
    handshake_timeout: float | None = None,
    check_stop: Callable[[], None] | None = None,
) -> Session:
    """Answer i-PI's requests on ``sock`` until EXIT (returns) or until the connection closes
    (``protocol.ConnectionClosed``). Errors in the structures i-PI sends propagate unchanged.

    i-PI speaks first (STATUS) as soon as it accepts a driver: when nothing arrives within
    ``handshake_timeout`` seconds the peer is not i-PI (``HandshakeTimeout``). Sizes announced by i-PI
    (INIT length, batch_size, atom count) are checked before any buffer is sized from them.
    ``check_stop`` is called before each message is handled; an exception it raises ends serving (the
    driver's signal handling uses it for a signal whose exception was swallowed, e.g. in a finalizer).
    """
    session = Session()
    started = time.perf_counter()
    initialised = False
    reply: bytes | None = None
    try:
        sock.settimeout(handshake_timeout)
        try:
            first: bytes | None = protocol.receive_exactly(sock, protocol.HEADER_LENGTH)
        except TimeoutError:
            raise HandshakeTimeout(
                f"the server accepted the connection but sent no i-PI message in {handshake_timeout:g} s: "
                "is it i-PI? (check the address or port)"
            ) from None
        if first not in (protocol.STATUS, protocol.INIT, protocol.POSDATA):
            raise protocol.ProtocolError(f"the server's first message {first!r} is not i-PI's: is it i-PI?")
        sock.settimeout(None)
        while True:
            message = first or protocol.receive_exactly(sock, protocol.HEADER_LENGTH)
            first = None
            if check_stop is not None:
                check_stop()
            if message == protocol.STATUS:
                if not initialised:
                    sock.sendall(protocol.NEEDINIT)
                else:
                    sock.sendall(protocol.HAVEDATA if reply is not None else protocol.READY)
            elif message == protocol.INIT:
                _, session.init_string = protocol.receive_init(sock)
                session.batch_size = protocol.parse_batch_size(session.init_string)
                protocol.check_batch(session.batch_size, evaluator.n_atoms)
                initialised = True
                if log:
                    log(f"i-PI initialised the driver (batch size {session.batch_size})")
            elif message == protocol.POSDATA:
                if reply is not None:
                    raise protocol.ProtocolError("POSDATA received before the previous forces were collected")
                initialised = True  # a server that never sends INIT gets single-structure answers
                try:
                    structures = protocol.receive_posdata(sock, session.batch_size, evaluator.n_atoms)
                except protocol.AtomCountError as error:
                    evaluator.check_atom_count(error.sent)  # the template's message
                    raise
                n_real = real_structures(structures)
                tick = time.perf_counter()
                results = evaluator.evaluate(structures.cells[:n_real], structures.positions[:n_real])
                session.seconds_evaluating += time.perf_counter() - tick
                order = [*range(n_real), *[n_real - 1] * (len(structures.cells) - n_real)]
                reply = protocol.encode_forces(
                    results.energies[order],
                    results.forces[order],
                    results.virials[order],
                    [results.extras[k] for k in order],
                )
                session.n_requests += 1
                session.n_structures += len(structures.cells)
                session.n_evaluated += n_real
            elif message == protocol.GETFORCE:
                if reply is None:
                    raise protocol.ProtocolError("GETFORCE received before any POSDATA")
                sock.sendall(reply)
                reply = None
            elif message == protocol.EXIT:
                session.exit_received = True
                return session
            else:
                raise protocol.ProtocolError(f"unexpected message {message!r} from i-PI")
    except (BrokenPipeError, ConnectionResetError) as error:
        raise protocol.ConnectionClosed(f"i-PI closed the connection ({error.strerror})") from None
    finally:
        session.seconds_total = time.perf_counter() - started
