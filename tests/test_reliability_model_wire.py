"""Issue 14, model and driver side: bad model files refused before allocating, nothing non-finite on the
wire, every length from the wire checked, handshake timeout, clean socket close, clear connection errors,
stale checkpoint temporaries removed on --resume. No real i-PI here (see test_ipi_e2e.py for that)."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import molecule
from click.testing import CliRunner
from conftest import tiny_model
from test_train_loop import rattled_alloys, tiny_config

import reann_driver
from reann_driver import ModelFileError, load_model
from reann_driver.atomic import remove_stale_temporaries
from reann_driver.cli.main import main as reann
from reann_driver.ipi import protocol
from reann_driver.ipi.cli import EXIT_ERROR
from reann_driver.ipi.cli import main as driver_main
from reann_driver.ipi.client import Address, close_connection, connect, serve
from reann_driver.ipi.evaluator import ANGSTROM_PER_BOHR, BatchEvaluator, ModelOutputError, TemplateError
from reann_driver.model import files, loading


def save_payload(path: Path, model: reann_driver.REANN, **changes: object) -> Path:
    """A model file whose payload sections are replaced by ``changes`` (written like save_model)."""
    payload = {
        "format": files.FORMAT,
        "format_version": files.FORMAT_VERSION,
        "config": dict(model.config),
        "metadata": {},
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
    }
    for key, value in changes.items():
        if key == "config_update":
            payload["config"].update(value)  # type: ignore[call-overload]
        elif key == "weight_update":
            payload["state_dict"].update(value)  # type: ignore[call-overload]
        else:
            payload[key] = value
    torch.save(payload, path)
    return path


@pytest.fixture(scope="module")
def small_model() -> reann_driver.REANN:
    return tiny_model(species=("H", "C"), iterations=1)


# --- item 5: model files ------------------------------------------------------------------------


def test_item5_nan_weights_and_nan_cutoff_are_refused(tmp_path: Path, small_model) -> None:
    name = next(iter(small_model.state_dict()))
    bad = small_model.state_dict()[name].clone().fill_(float("nan"))
    with pytest.raises(ModelFileError, match=f"weight '{name}' holds NaN"):
        load_model(save_payload(tmp_path / "nan.pt", small_model, weight_update={name: bad}))
    for value in (float("nan"), float("inf"), -1.0):
        path = save_payload(tmp_path / "cut.pt", small_model, config_update={"cutoff": value})
        with pytest.raises(ModelFileError, match="cutoff"):
            load_model(path)
    with pytest.raises(ModelFileError, match="l_max"):
        load_model(save_payload(tmp_path / "l.pt", small_model, config_update={"l_max": 10**6}))
    with pytest.raises(ModelFileError, match="not a tensor"):
        load_model(save_payload(tmp_path / "t.pt", small_model, weight_update={name: [1.0]}))


def test_item5_huge_config_in_a_small_file_is_refused_before_allocating(
    tmp_path: Path, small_model, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save_payload(tmp_path / "huge.pt", small_model, config_update={"hidden": [60000, 60000]})
    assert path.stat().st_size < 2**17  # a small file claiming layers of 60000 x 60000 weights
    devices: list[str] = []
    original = loading.REANN  # model files are built in model/loading.py

    def recording(*args, **kwargs):
        devices.append(torch.empty(0).device.type)  # where construction allocates
        return original(*args, **kwargs)

    monkeypatch.setattr(loading, "REANN", recording)
    with pytest.raises(ModelFileError, match=r"shape .* config implies"):
        load_model(path)
    assert devices == ["meta"]
    devices.clear()
    load_model(save_payload(tmp_path / "fine.pt", small_model))
    assert devices == ["meta", "cpu"]


class _Exploit:
    def __reduce__(self):
        return (os.system, ("true",))


def test_item12_exploit_file_message_is_one_line_without_torch_advice(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": files.FORMAT, "x": _Exploit()}, path)
    with pytest.raises(ModelFileError) as caught:
        load_model(path)
    message = str(caught.value)
    assert "not a reann-driver model file" in message and "\n" not in message
    assert "weights_only" not in message and "trust" not in message
    result = CliRunner().invoke(reann, ["info", str(path)])
    assert result.exit_code == 1 and "not a reann-driver model file" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("content", [b"", b"garbage", b"PK\x03\x04broken"])
def test_item8_reann_info_on_bad_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    result = CliRunner().invoke(reann, ["info", str(path)])
    assert result.exit_code == 1 and "bad.pt" in result.output
    assert isinstance(result.exception, SystemExit)


def exploding(model: reann_driver.REANN) -> reann_driver.REANN:
    """Finite weights whose energies overflow to inf/NaN."""
    with torch.no_grad():
        for parameter in model.energy_networks.parameters():
            parameter.fill_(1e300)
    return model


def test_item5_reann_eval_refuses_non_finite_predictions(tmp_path: Path) -> None:
    model = exploding(tiny_model(species=("Cu", "Al"), iterations=1))
    model.save(str(tmp_path / "m.pt"))
    rattled = rattled_alloys(2, seed=0)
    from ase.io import write

    write(tmp_path / "d.extxyz", rattled)
    result = CliRunner().invoke(reann, ["eval", str(tmp_path / "m.pt"), str(tmp_path / "d.extxyz")])
    assert result.exit_code == 1 and "non-finite" in result.output, result.output


def test_item5_driver_never_sends_non_finite_results(tmp_path: Path) -> None:
    model = exploding(tiny_model(species=("H", "C"), iterations=1))
    evaluator = BatchEvaluator(model, molecule("CH4").get_chemical_symbols(), periodic=False)
    positions = molecule("CH4").positions[None] / ANGSTROM_PER_BOHR
    with pytest.raises(ModelOutputError, match="nothing was sent to i-PI"):
        evaluator.evaluate(np.eye(3)[None] * 30, positions)
    peer, mine = socket.socketpair()
    with peer, mine:
        peer.sendall(protocol.STATUS)
        peer.sendall(protocol.POSDATA + (np.eye(3) * 30).tobytes() * 2 + np.int32(5).tobytes())
        peer.sendall(positions.tobytes() + protocol.GETFORCE)
        with pytest.raises(ModelOutputError):
            serve(mine, evaluator, handshake_timeout=5)
        peer.settimeout(1)
        assert peer.recv(100) == protocol.NEEDINIT  # the status answer, and no FORCEREADY


# --- item 9: lengths from the wire --------------------------------------------------------------


def init_message(text: bytes, length: int | None = None) -> bytes:
    size = len(text) if length is None else length
    return protocol.INIT + np.int32(0).tobytes() + np.int32(size).tobytes() + text


@pytest.mark.parametrize(
    "stream, match",
    [
        (init_message(b"batch_size:20000000"), "batch_size 20000000"),
        (init_message(b"batch_size:60000") + protocol.POSDATA, "GiB per POSDATA"),  # 60000 x 5 atoms: fine
        (init_message(b"", length=2**31 - 1), "INIT string length"),
        (protocol.POSDATA + bytes(144) + np.int32(9_999_999).tobytes(), "i-PI sends 9999999 atoms"),
        (init_message(b"batch_size:4") + protocol.POSDATA + np.int32(9_999_999).tobytes(), "9999999 atoms"),
    ],
    ids=["batch", "batch-ok-then-eof", "init-length", "atoms-single", "atoms-batched"],
)
def test_item9_lengths_are_checked_before_allocating(small_model, stream: bytes, match: str) -> None:
    import tracemalloc

    evaluator = BatchEvaluator(small_model, molecule("CH4").get_chemical_symbols(), periodic=False)
    peer, mine = socket.socketpair()
    with peer, mine:
        peer.sendall(stream)
        peer.shutdown(socket.SHUT_WR)
        tracemalloc.start()
        try:
            with pytest.raises((protocol.ProtocolError, TemplateError, protocol.ConnectionClosed)) as caught:
                serve(mine, evaluator, handshake_timeout=5)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 50 * 2**20
    if not isinstance(caught.value, protocol.ConnectionClosed):
        assert match in str(caught.value)


# --- item 10 (unit level) and 11: closing and the handshake -------------------------------------


def test_item10_close_leaves_no_reset_for_the_peer() -> None:
    """Unread bytes on a plain close() make the peer's recv fail with ECONNRESET (what killed i-PI's
    polling thread); close_connection drains them, so the peer reads an orderly end of stream."""
    peer, mine = socket.socketpair()
    peer.sendall(protocol.POSDATA + bytes(5000) + protocol.GETFORCE)
    mine.close()
    with pytest.raises(ConnectionResetError):
        peer.recv(10)
    peer.close()
    peer, mine = socket.socketpair()
    peer.sendall(bytes(5000))
    close_connection(mine, linger=0.3)
    peer.settimeout(1)
    assert peer.recv(10) == b""  # end of stream, not a reset
    peer.close()
    peer, mine = socket.socketpair()  # a peer that closes in turn ends the lingering at once
    peer.sendall(bytes(100))
    threading.Timer(0.1, lambda: (peer.recv(10), peer.close())).start()
    started = time.monotonic()
    close_connection(mine, linger=5.0)
    assert time.monotonic() - started < 2.0


def test_item11_silent_server_gives_a_handshake_timeout(small_model, tmp_path: Path) -> None:
    small_model.save(str(tmp_path / "m.pt"))
    molecule("CH4").write(tmp_path / "ch4.xyz")
    listener = socket.socket()
    listener.bind(("localhost", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    started = time.monotonic()
    arguments = ["--model", str(tmp_path / "m.pt"), "--template", str(tmp_path / "ch4.xyz")]
    arguments += ["--port", str(port), "--handshake-timeout", "0.5"]
    result = CliRunner().invoke(driver_main, arguments)
    listener.close()
    assert result.exit_code == EXIT_ERROR and "is it i-PI?" in result.output, result.output
    assert time.monotonic() - started < 10
    peer, mine = socket.socketpair()
    with peer, mine:
        peer.sendall(b"HTTP/1.1 200")
        with pytest.raises(protocol.ProtocolError, match="is it i-PI"):
            serve(mine, None, handshake_timeout=1)  # type: ignore[arg-type]


# --- item 12: leftovers -------------------------------------------------------------------------


def test_item12_stale_unix_socket_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "ipi_stale"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.close()  # what a killed i-PI leaves: the file, nobody listening
    with pytest.raises(ConnectionError, match=rf"{path} exists but nobody listens.*delete it"):
        connect(Address(unix_path=str(path)), wait=0.2)


def test_item12_too_long_unix_path_names_path_and_limit(tmp_path: Path) -> None:
    path = "/tmp/ipi_" + "x" * 200
    with pytest.raises(ConnectionError, match=rf"{path}.* 209 bytes, longer than the 10[37]"):
        connect(Address(unix_path=path), wait=0)


def test_item12_stale_temporaries_are_removed(tmp_path: Path) -> None:
    (tmp_path / ".last.pt.k3j_x9ab.tmp").write_bytes(bytes(100))
    (tmp_path / ".best.pt.abcdefgh.tmp").write_bytes(b"")
    for keep in ("last.pt", "notes.tmp", ".hidden.tmp"):
        (tmp_path / keep).write_text("keep")
    lines: list[str] = []
    removed = remove_stale_temporaries(tmp_path, lines.append)
    assert sorted(p.name for p in removed) == [".best.pt.abcdefgh.tmp", ".last.pt.k3j_x9ab.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden.tmp", "last.pt", "notes.tmp"]
    assert lines and "2 temporary file(s)" in lines[0]


def test_item12_resume_removes_checkpoint_temporaries(tmp_path: Path) -> None:
    from ase.io import write

    from reann_driver.train import train

    frames = rattled_alloys(8, seed=2)
    for name, part in (("train", frames[:4]), ("val", frames[4:6]), ("test", frames[6:])):
        write(tmp_path / f"{name}.extxyz", part)
    run = tmp_path / "run"
    train(tiny_config(tmp_path, run, "train.epochs=1"))
    leftover = run / ".last.pt.q1w2e3r4.tmp"  # as left by kill -9 during a checkpoint write
    leftover.write_bytes(bytes(1000))
    train(tiny_config(tmp_path, run, "train.epochs=2"), resume=True)
    assert not leftover.exists()
    assert "removed 1 temporary file(s)" in (run / "train.log").read_text()


def test_item2_reann_export_and_eval_follow_the_output_rule(tmp_path: Path, small_model) -> None:
    model = tmp_path / "m.pt"
    small_model.save(str(model))
    original = model.read_bytes()
    result = CliRunner().invoke(reann, ["export", str(model), str(model), "--force"])
    assert result.exit_code == 1 and "is the input" in result.output
    molecule("CH4").write(tmp_path / "d.extxyz")
    for option in ("--json", "--predictions"):
        result = CliRunner().invoke(
            reann, ["eval", str(model), str(tmp_path / "d.extxyz"), option, str(tmp_path / "d.extxyz")]
        )
        assert result.exit_code == 1 and "is the input" in result.output, result.output
    assert model.read_bytes() == original
