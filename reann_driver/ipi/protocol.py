"""The i-PI socket protocol, client side: message headers, POSDATA decoding and FORCEREADY encoding.

Every message starts with a 12-byte ASCII header padded with blanks. All numbers on the wire are
native-endian float64 / int32 in atomic units (Bohr, Hartree). The cell ``h`` travels as i-PI stores
it (lattice vectors as *columns*), serialised in C order, followed by its inverse.

Single-structure exchange (i-PI ``Driver.sendpos`` / ``_recv_force_data``)::

    POSDATA  h[3,3] ih[3,3] natoms:int32 positions[natoms*3]
    FORCEREADY energy:f64 natoms:int32 forces[natoms*3] virial[3,3] len:int32 extras[len]

Batched exchange (i-PI 3.3, ``batch_size:N`` announced in the INIT string)::

    POSDATA  natoms:int32 (h[3,3] ih[3,3]) * N positions[N, natoms*3]
    FORCEREADY energies[N] natoms:int32 forces[N, natoms*3] virials[N,3,3] (len:int32 extras[len]) * N
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass

import numpy as np

HEADER_LENGTH = 12
FLOAT = np.dtype("=f8")
INT = np.dtype("=i4")
#: Longest INIT parameter string accepted (i-PI sends a short ``<parameters>`` string).
MAX_INIT_LENGTH = 1 << 20
#: Largest batch_size accepted in INIT.
MAX_BATCH_SIZE = 1 << 16
#: Largest POSDATA payload accepted (cells and positions of one batch), in bytes.
MAX_POSDATA_BYTES = 1 << 32


class ConnectionClosed(ConnectionError):
    """i-PI closed the socket (or it broke) while the driver was waiting for a message."""


class ProtocolError(RuntimeError):
    """i-PI sent something the protocol does not allow."""


def header(name: str) -> bytes:
    """The 12-byte header of message ``name`` (e.g. ``"forceready"`` -> ``b"FORCEREADY  "``)."""
    encoded = name.upper().encode("ascii")
    if len(encoded) > HEADER_LENGTH:
        raise ValueError(f"message name {name!r} is longer than {HEADER_LENGTH} characters")
    return encoded.ljust(HEADER_LENGTH)


STATUS, INIT, POSDATA, GETFORCE, EXIT = (header(m) for m in ("status", "init", "posdata", "getforce", "exit"))
READY, NEEDINIT, HAVEDATA, FORCEREADY = (header(m) for m in ("ready", "needinit", "havedata", "forceready"))


def receive_exactly(sock: socket.socket, n_bytes: int) -> bytes:
    """Read exactly ``n_bytes`` from ``sock``; ``ConnectionClosed`` if the peer goes away first."""
    buffer = bytearray(n_bytes)
    view = memoryview(buffer)
    received = 0
    while received < n_bytes:
        try:
            count = sock.recv_into(view[received:], n_bytes - received)
        except (ConnectionResetError, BrokenPipeError) as error:
            raise ConnectionClosed(f"i-PI closed the connection ({error.strerror})") from None
        if count == 0:
            raise ConnectionClosed("i-PI closed the connection")
        received += count
    return bytes(buffer)


def receive_array(sock: socket.socket, dtype: np.dtype, count: int) -> np.ndarray:
    """Read ``count`` values of ``dtype`` from the socket."""
    return np.frombuffer(receive_exactly(sock, dtype.itemsize * count), dtype=dtype).copy()


def receive_int(sock: socket.socket) -> int:
    return int(receive_array(sock, INT, 1)[0])


def parse_batch_size(init_string: str) -> int:
    """The batch size i-PI 3.3 appends to the INIT string as ``batch_size:N`` (1 when absent)."""
    match = re.search(r"(?:^|[,\s])batch_size\s*:\s*(\d+)", init_string)
    if match is None:
        return 1
    value = int(match.group(1))
    if not 1 <= value <= MAX_BATCH_SIZE:
        raise ProtocolError(f"i-PI announced batch_size {value} in its INIT string (1..{MAX_BATCH_SIZE})")
    return value


def check_batch(batch_size: int, n_atoms: int) -> None:
    """Refuse a batch whose POSDATA would exceed ``MAX_POSDATA_BYTES`` (before any buffer is sized)."""
    size = batch_size * (18 + 3 * n_atoms) * FLOAT.itemsize
    if size > MAX_POSDATA_BYTES:
        raise ProtocolError(
            f"batch_size {batch_size} with {n_atoms} atoms means {size / 2**30:.1f} GiB per POSDATA "
            f"(at most {MAX_POSDATA_BYTES / 2**30:.0f} GiB): lower <batch_size> in the <ffsocket>"
        )


def receive_init(sock: socket.socket) -> tuple[int, str]:
    """Read the INIT body (after the header): replica index and parameter string."""
    replica = receive_int(sock)
    length = receive_int(sock)
    if not 0 <= length <= MAX_INIT_LENGTH:
        raise ProtocolError(f"INIT string length {length} is outside 0..{MAX_INIT_LENGTH}")
    text = receive_exactly(sock, length).decode("utf-8", errors="replace")
    return replica, text


@dataclass(frozen=True)
class Structures:
    """The structures of one POSDATA message, in atomic units as i-PI sent them.

    ``cells`` holds i-PI's h (lattice vectors as columns, Bohr), ``positions`` is [n, natoms, 3] Bohr.
    """

    cells: np.ndarray  # [n_structures, 3, 3]
    positions: np.ndarray  # [n_structures, n_atoms, 3]

    @property
    def n_atoms(self) -> int:
        return int(self.positions.shape[1])


class AtomCountError(ProtocolError):
    """POSDATA announces another number of atoms than the driver expects."""

    def __init__(self, sent: int, expected: int) -> None:
        super().__init__(f"POSDATA announces {sent} atoms, the driver expects {expected}")
        self.sent = sent


def receive_posdata(sock: socket.socket, batch_size: int, n_atoms: int) -> Structures:
    """Read a POSDATA body (after the header) in the single (``batch_size`` 1) or batched layout.

    ``n_atoms`` is the count the driver expects (its template's): another announced count raises
    ``AtomCountError`` before the positions are read, so no buffer is ever sized from the wire.
    """
    check_batch(batch_size, n_atoms)
    if batch_size == 1:
        cells = receive_array(sock, FLOAT, 18).reshape(2, 3, 3)[:1]
        _check_atom_count(receive_int(sock), n_atoms)
        positions = receive_array(sock, FLOAT, 3 * n_atoms).reshape(1, n_atoms, 3)
        return Structures(cells=cells, positions=positions)
    _check_atom_count(receive_int(sock), n_atoms)
    cells = receive_array(sock, FLOAT, 18 * batch_size).reshape(batch_size, 2, 3, 3)[:, 0]
    positions = receive_array(sock, FLOAT, 3 * n_atoms * batch_size).reshape(batch_size, n_atoms, 3)
    return Structures(cells=np.ascontiguousarray(cells), positions=positions)


def _check_atom_count(sent: int, expected: int) -> None:
    if sent != expected:
        raise AtomCountError(sent, expected)


def encode_forces(energies: np.ndarray, forces: np.ndarray, virials: np.ndarray, extras: list[str]) -> bytes:
    """The complete FORCEREADY message (header included), ready for a single ``sendall``.

    The batched layout with one structure is byte for byte the single-structure layout, so one
    encoder serves both.

    Args:
        energies: [n] Hartree.
        forces: [n, natoms, 3] Hartree/Bohr.
        virials: [n, 3, 3] Hartree, already in the orientation i-PI reads.
        extras: one (possibly empty) string per structure, usually JSON.
    """
    energies = np.ascontiguousarray(energies, dtype=FLOAT).reshape(-1)
    n_structures = energies.shape[0]
    forces = np.ascontiguousarray(forces, dtype=FLOAT).reshape(n_structures, -1)
    virials = np.ascontiguousarray(virials, dtype=FLOAT).reshape(n_structures, 9)
    if forces.shape[1] % 3 or len(extras) != n_structures:
        raise ValueError("forces must be [n, natoms, 3] and extras must have one entry per structure")
    n_atoms = np.array([forces.shape[1] // 3], dtype=INT).tobytes()
    parts = [FORCEREADY, energies.tobytes(), n_atoms, forces.tobytes(), virials.tobytes()]
    for text in extras:
        blob = text.encode("utf-8")
        parts += [np.array([len(blob)], dtype=INT).tobytes(), blob]
    return b"".join(parts)
