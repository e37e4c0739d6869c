"""The reann-driver command: clear errors and exit codes (fake in-process i-PI, no real server)."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import molecule
from click.testing import CliRunner
from conftest import randomised

import reann_driver
from reann_driver.ipi import cli, protocol
from reann_driver.ipi.cli import EXIT_CONNECTION_LOST, EXIT_ERROR, main
from reann_driver.ipi.evaluator import ANGSTROM_PER_BOHR


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    randomised(reann_driver.REANN(["H", "C"], n_radial=4, l_max=1, hidden=(16, 16), iterations=1)).save(
        str(folder / "m.pt")
    )
    methane = molecule("CH4")
    methane.write(folder / "ch4.xyz")
    methane[:4].write(folder / "ch3.xyz")
    (folder / "notes.pt").write_text("this is not a model\n")
    return {path.name: path for path in folder.iterdir()}


class OneShotServer:
    """Accepts one client on a unix socket, initialises it, sends one batched POSDATA + GETFORCE built
    from ``positions`` and then either waits for the reply and sends EXIT, or hangs up."""

    def __init__(self, path: Path, positions: np.ndarray, hang_up: bool = False) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(1)
        self.reply = b""
        self.thread = threading.Thread(target=self.run, args=(positions, hang_up), daemon=True)
        self.thread.start()

    def run(self, positions: np.ndarray, hang_up: bool) -> None:
        connection, _ = self.listener.accept()
        with connection:
            connection.sendall(protocol.STATUS)
            assert protocol.receive_exactly(connection, 12) == protocol.NEEDINIT
            text = b"batch_size:2"
            connection.sendall(protocol.INIT + np.int32(0).tobytes() + np.int32(len(text)).tobytes() + text)
            connection.sendall(protocol.STATUS)
            assert protocol.receive_exactly(connection, 12) == protocol.READY
            if hang_up:
                return
            h = np.eye(3) * 30.0
            cells = (h.tobytes() + np.linalg.inv(h).tobytes()) * 2
            payload = np.int32(len(positions)).tobytes() + cells + positions.tobytes() * 2
            connection.sendall(protocol.POSDATA + payload + protocol.GETFORCE)
            try:
                self.reply = protocol.receive_exactly(connection, 12)
                connection.sendall(protocol.EXIT)
            except protocol.ConnectionClosed:
                pass
        self.listener.close()


def invoke(*arguments: str):
    return CliRunner().invoke(main, list(arguments))


def test_not_a_model_fails_before_connecting(files, tmp_path):
    started = time.perf_counter()
    result = invoke(
        "--model", str(files["notes.pt"]), "--template", str(files["ch4.xyz"]), "--unix", "nobody"
    )
    assert result.exit_code == EXIT_ERROR
    assert "notes.pt" in result.output and "connected" not in result.output
    assert time.perf_counter() - started < 10  # did not wait for a server


def test_missing_template_and_usage_errors(files):
    result = invoke("--model", str(files["m.pt"]), "--template", "missing.xyz", "--unix", "x")
    assert result.exit_code == EXIT_ERROR and "missing.xyz" in result.output
    result = invoke("--model", str(files["m.pt"]), "--template", str(files["ch4.xyz"]))
    assert result.exit_code == 2 and "--unix" in result.output


def test_no_server_is_a_clear_error(files, tmp_path):
    result = invoke(
        "--model",
        str(files["m.pt"]),
        "--template",
        str(files["ch4.xyz"]),
        "--unix",
        str(tmp_path / "s"),
        "--wait",
        "0.2",
    )
    assert result.exit_code == EXIT_ERROR and "no i-PI server" in result.output


def test_served_batch_then_exit(files, tmp_path):
    positions = molecule("CH4").positions / ANGSTROM_PER_BOHR
    server = OneShotServer(tmp_path / "sock", np.ascontiguousarray(positions))
    result = invoke(
        "--model", str(files["m.pt"]), "--template", str(files["ch4.xyz"]), "--unix", str(tmp_path / "sock"),
        "--non-periodic",
    )  # fmt: skip
    server.thread.join(5)
    assert result.exit_code == 0, result.output
    assert server.reply == protocol.FORCEREADY
    assert "batch size 2" in result.output and "EXIT" in result.output


def test_served_batch_in_blocks_and_a_committee_refuses_them(files, tmp_path):
    # --pass-atoms 5: one CH4 per forward pass, two passes for the server's batch of 2
    positions = molecule("CH4").positions / ANGSTROM_PER_BOHR
    server = OneShotServer(tmp_path / "sock", np.ascontiguousarray(positions))
    result = invoke(
        "--model", str(files["m.pt"]), "--template", str(files["ch4.xyz"]), "--unix", str(tmp_path / "sock"),
        "--non-periodic", "--pass-atoms", "5",
    )  # fmt: skip
    server.thread.join(5)
    assert result.exit_code == 0, result.output
    assert server.reply == protocol.FORCEREADY
    result = invoke(
        "--model", str(files["m.pt"]), "--model", str(files["m.pt"]), "--template", str(files["ch4.xyz"]),
        "--unix", str(tmp_path / "sock2"), "--pass-atoms", "5",
    )  # fmt: skip
    assert result.exit_code == EXIT_ERROR
    assert "pass_atoms needs a single model" in result.output


@pytest.mark.slow
def test_served_batch_compiled(files, tmp_path):
    positions = molecule("CH4").positions / ANGSTROM_PER_BOHR
    server = OneShotServer(tmp_path / "sock", np.ascontiguousarray(positions))
    result = invoke(
        "--model", str(files["m.pt"]), "--template", str(files["ch4.xyz"]), "--unix", str(tmp_path / "sock"),
        "--non-periodic", "--compile",
    )  # fmt: skip
    server.thread.join(300)  # the first request compiles the model
    assert result.exit_code == 0, result.output
    assert server.reply == protocol.FORCEREADY
    assert "compiled" in result.output and "EXIT" in result.output


def test_compile_of_a_committee_is_a_clear_error(files, tmp_path):
    result = invoke(
        "--model", str(files["m.pt"]), "--model", str(files["m.pt"]), "--template", str(files["ch4.xyz"]),
        "--unix", str(tmp_path / "sock"), "--compile",
    )  # fmt: skip
    assert result.exit_code == EXIT_ERROR
    assert "compile needs a single model" in result.output


def test_wrong_atom_count_template(files, tmp_path):
    positions = np.ascontiguousarray(molecule("CH4").positions / ANGSTROM_PER_BOHR)
    server = OneShotServer(tmp_path / "sock", positions)
    result = invoke(
        "--model", str(files["m.pt"]), "--template", str(files["ch3.xyz"]), "--unix", str(tmp_path / "sock"),
        "--non-periodic",
    )  # fmt: skip
    server.thread.join(5)
    assert result.exit_code == EXIT_ERROR
    assert "i-PI sends 5 atoms" in result.output and "ch3.xyz" in result.output and "4 atoms" in result.output


def test_nan_positions(files, tmp_path):
    positions = np.ascontiguousarray(molecule("CH4").positions / ANGSTROM_PER_BOHR)
    positions[2, 0] = np.nan
    server = OneShotServer(tmp_path / "sock", positions)
    result = invoke(
        "--model", str(files["m.pt"]), "--template", str(files["ch4.xyz"]), "--unix", str(tmp_path / "sock"),
        "--non-periodic",
    )  # fmt: skip
    server.thread.join(5)
    assert result.exit_code == EXIT_ERROR
    assert "non-finite positions" in result.output and "atom 2" in result.output


def test_server_hangs_up(files, tmp_path):
    server = OneShotServer(tmp_path / "sock", np.zeros((5, 3)), hang_up=True)
    result = invoke(
        "--model", str(files["m.pt"]), "--template", str(files["ch4.xyz"]), "--unix", str(tmp_path / "sock"),
        "--non-periodic",
    )  # fmt: skip
    server.thread.join(5)
    assert result.exit_code == EXIT_CONNECTION_LOST
    assert "closed the connection" in result.output and "without sending EXIT" in result.output


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_signal_swallowed_by_a_finalizer_still_stops_the_driver():
    """A SIGTERM handled while a finalizer runs (vesin's NeighborList.__del__ in a real run) raises
    ``Stopped`` inside ``__del__``, where Python prints and ignores it; the serve loop's check raises it
    again."""

    class Finalised:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGTERM)

    with cli._stop_on_signals():
        Finalised()  # collected at once: the handler runs inside __del__
        with pytest.raises(cli.Stopped, match="SIGTERM"):
            cli._raise_if_stopped()
    assert signal.getsignal(signal.SIGTERM) is not cli._stop  # the handlers are restored


def test_plugin_path_option():
    result = invoke("--plugin-path")
    assert result.exit_code == 0 and result.output.strip().endswith("plugin.py")
    assert Path(result.output.strip()).is_file()
