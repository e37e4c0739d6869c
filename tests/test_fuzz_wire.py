"""Fuzz suite of the wire protocol (reann_driver/ipi/protocol.py, client.py): a fake i-PI sends
sequences of messages (STATUS, INIT with any length, string and batch_size, POSDATA in the single and
batched layouts with any atom count and any numbers, GETFORCE, EXIT, unknown headers, random bytes),
cut at a random point, to ``serve`` on a socket pair.

Each case must end with EXIT, or with one of the driver's own errors (connection closed, protocol,
template, structure, non-finite model output) in one line: never another exception, never a hang,
and no buffer sized from a header before it is checked (traced allocations stay small).
Outcome counts: see tests/fuzzing.py.
"""

from __future__ import annotations

import functools
import socket
import threading
import tracemalloc

import numpy as np
from ase.build import molecule
from conftest import tiny_model
from fuzzing import FUZZ, classify
from hypothesis import given
from hypothesis import strategies as st

from reann_driver.ipi import protocol
from reann_driver.ipi.client import serve
from reann_driver.ipi.evaluator import (
    ANGSTROM_PER_BOHR,
    BatchEvaluator,
    ModelOutputError,
    StructureError,
    TemplateError,
)

METHANE = molecule("CH4")
N_ATOMS = len(METHANE)
#: Largest traced allocation peak of one case (the batches below need well under 1 MB).
MAX_TRACED_BYTES = 32 * 2**20
CLEAR = (protocol.ConnectionClosed, protocol.ProtocolError, TemplateError, StructureError, ModelOutputError)


@functools.cache
def evaluator(periodic: bool) -> BatchEvaluator:
    return BatchEvaluator(
        tiny_model(species=("H", "C"), iterations=1), METHANE.get_chemical_symbols(), periodic
    )


INTS = st.one_of(
    st.sampled_from([0, 1, 2, 3, 4, N_ATOMS, N_ATOMS - 1, N_ATOMS + 1, -1, 2**31 - 1, -(2**31), 9_999_999]),
    st.integers(-(2**31), 2**31 - 1),
)
NUMBERS = st.sampled_from([np.nan, np.inf, -np.inf, 1e300, 1e20, 0.0, -3.0, 1e-300])


def int32(value: int) -> bytes:
    return np.int32(value).tobytes()


@st.composite
def init_message(draw) -> bytes:
    text = draw(
        st.one_of(
            st.sampled_from(["", "batch_size:1", "batch_size:2", "batch_size:3", "batch_size:0"]),
            st.sampled_from(["batch_size:20000000", "batch_size:-4", "x batch_size:2", "batch_size:99999"]),
            st.text(max_size=40),
        )
    ).encode("utf-8", errors="replace")
    length = draw(st.one_of(st.just(len(text)), INTS))
    return protocol.INIT + int32(draw(INTS)) + int32(length) + text


@st.composite
def posdata_message(draw) -> bytes:
    structures = draw(st.integers(1, 3))
    sent_atoms = draw(st.one_of(st.just(N_ATOMS), INTS))
    cell = np.eye(3) * draw(st.sampled_from([20.0, 0.0, 1e-3, 1e300, np.nan]))
    positions = METHANE.positions / ANGSTROM_PER_BOHR + 10.0
    if draw(st.booleans()):
        positions = positions.copy()
        positions.reshape(-1)[draw(st.integers(0, positions.size - 1))] = draw(NUMBERS)
    cells = (cell.tobytes() + np.eye(3).tobytes()) * structures
    body = positions.tobytes() * structures
    if draw(st.booleans()):  # the batched layout: atom count first
        return protocol.POSDATA + int32(sent_atoms) + cells + body
    return protocol.POSDATA + cells[:144] + int32(sent_atoms) + body[: positions.nbytes]


MESSAGE = st.one_of(
    st.just(protocol.STATUS),
    init_message(),
    posdata_message(),
    st.just(protocol.GETFORCE),
    st.just(protocol.EXIT),
    st.sampled_from([b"HELLO       ", b"status      ", b"POSDATA", b"\x00" * 12]),
    st.binary(max_size=64),
)


def run_session(stream: bytes, periodic: bool, answers: bytearray | None = None) -> None:
    """Feed ``stream`` to serve() from a fake i-PI that collects every answer (into ``answers``); peak
    traced memory bounded."""
    peer, driver = socket.socketpair()
    answers = bytearray() if answers is None else answers

    def fake_ipi() -> None:
        try:
            peer.sendall(stream)
            peer.shutdown(socket.SHUT_WR)
            while chunk := peer.recv(1 << 16):
                answers.extend(chunk)
        except OSError:
            pass

    thread = threading.Thread(target=fake_ipi, daemon=True)
    thread.start()
    tracemalloc.start()
    try:
        serve(driver, evaluator(periodic), handshake_timeout=5)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        driver.close()
        thread.join(5)
        peer.close()
        assert peak < MAX_TRACED_BYTES, f"{peak / 2**20:.0f} MiB traced in one session"


@FUZZ
@given(messages=st.lists(MESSAGE, min_size=1, max_size=8), cut=st.floats(0.5, 1.0), periodic=st.booleans())
def test_serve_on_fuzzed_message_sequences(messages, cut, periodic):
    stream = b"".join(messages)
    stream = stream[: max(1, int(cut * len(stream)))]
    classify("wire message sequences", lambda: run_session(stream, periodic), CLEAR, seconds=15)


@FUZZ
@given(
    init=init_message(),
    posdata=posdata_message(),
    order=st.sampled_from(["together", "status-between", "no-init"]),
)
def test_serve_on_one_fuzzed_request(init, posdata, order):
    """The order i-PI really uses (STATUS, INIT, STATUS, POSDATA [+ STATUS] + GETFORCE, EXIT), with one
    fuzzed INIT and POSDATA."""
    opening = protocol.STATUS + (b"" if order == "no-init" else init + protocol.STATUS)
    middle = protocol.STATUS if order == "status-between" else b""
    stream = opening + posdata + middle + protocol.GETFORCE + protocol.STATUS + protocol.EXIT
    classify("wire one request", lambda: run_session(stream, True), CLEAR, seconds=15)


@FUZZ
@given(
    batch=st.integers(1, 3),
    values=st.lists(st.tuples(st.integers(0, 3 * N_ATOMS * 3 - 1), NUMBERS), max_size=3),
    box=st.sampled_from([20.0, 8.0, 1.0, 1e-3, 1e12, np.inf]),
    periodic=st.booleans(),
)
def test_serve_never_sends_non_finite_forces(batch, values, box, periodic):
    """Well-formed requests with extreme positions and cells: served, or refused with a clear error;
    every FORCEREADY that goes out holds finite energies, forces and virials only."""
    positions = np.tile(METHANE.positions / ANGSTROM_PER_BOHR + 5.0, (batch, 1, 1))
    for index, value in values:
        positions.reshape(-1)[index % positions.size] = value
    h = np.eye(3) * box
    init = f"batch_size:{batch}".encode()
    posdata = protocol.POSDATA
    if batch == 1:
        posdata += h.tobytes() + np.eye(3).tobytes() + int32(N_ATOMS) + positions.tobytes()
    else:
        posdata += int32(N_ATOMS) + (h.tobytes() + np.eye(3).tobytes()) * batch + positions.tobytes()
    stream = protocol.STATUS + protocol.INIT + int32(0) + int32(len(init)) + init + protocol.STATUS
    stream += posdata + protocol.GETFORCE + protocol.STATUS + protocol.EXIT
    answers = bytearray()
    classify("wire extreme numbers", lambda: run_session(stream, periodic, answers), CLEAR, seconds=15)
    start = answers.find(protocol.FORCEREADY)
    if start >= 0:
        payload = bytes(answers[start + 12 :])
        energies = np.frombuffer(payload, np.float64, batch)
        count = batch * (3 * N_ATOMS + 9)
        rest = np.frombuffer(payload, np.float64, count, offset=8 * batch + 4)
        assert np.isfinite(energies).all() and np.isfinite(rest).all()
