"""Every console command: quick --help (no torch), one-line user errors, --debug tracebacks, no silent
wait."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator
from click.testing import CliRunner

import reann_driver
from reann_driver.cli import main as reann_cli
from reann_driver.data import cli as data_cli
from reann_driver.ipi import cli as driver_cli

COMMANDS = {
    "reann": "reann_driver.cli.main",
    "reann-data": "reann_driver.data.cli",
    "reann-driver": "reann_driver.ipi.cli",
}
HEAVY = ("torch", "ipi", "ase.io", "ase.db", "vesin", "e3nn", "scipy")


@pytest.mark.parametrize(
    ("command", "arguments"),
    [
        ("reann", ["--help"]),
        ("reann", ["train", "--help"]),
        ("reann", ["info"]),  # missing argument: usage error
        ("reann-data", ["--help"]),
        ("reann-data", ["split", "--help"]),
        ("reann-data", ["convert"]),
        ("reann-driver", ["--help"]),
        ("reann-driver", ["--model", "m.pt", "--template", "t.xyz"]),  # no address: usage error
    ],
)
def test_help_and_usage_errors_load_no_heavy_module(command, arguments):
    code = (
        f"import sys; sys.argv = [{command!r}, *{arguments!r}]\n"
        f"from {COMMANDS[command]} import main\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    status = exit.code\n"
        f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('LOADED', loaded, 'STATUS', status)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "LOADED [] STATUS" in result.stdout, result.stdout + result.stderr
    expected_status = "0" if "--help" in arguments else "2"
    assert result.stdout.strip().endswith(f"STATUS {expected_status}")


@pytest.fixture
def model_file(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "m.pt"
    reann_driver.REANN(["H", "C"], n_radial=4, l_max=1, hidden=(8,), iterations=1).save(str(path))
    return path


def test_info_on_a_bad_file_is_one_line(tmp_path):
    bad = tmp_path / "notes.pt"
    bad.write_text("not a model\n")
    result = CliRunner().invoke(reann_cli.main, ["info", str(bad)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1
    assert "notes.pt" in result.output and "not a reann-driver model file" in result.output


def test_debug_shows_the_traceback_on_every_command(tmp_path):
    bad = tmp_path / "notes.pt"
    bad.write_text("not a model\n")
    for arguments in (["info", str(bad), "--debug"], ["--debug", "info", str(bad)]):
        result = CliRunner().invoke(reann_cli.main, arguments)
        assert type(result.exception).__name__ == "ModelFileError", arguments
    result = CliRunner().invoke(data_cli.main, ["stats", str(bad), "--from", "n2p2", "--debug"])
    assert type(result.exception).__name__ == "DataFormatError"
    result = CliRunner().invoke(
        driver_cli.main, ["--model", str(bad), "--template", str(bad), "--unix", "x", "--debug"]
    )
    assert type(result.exception).__name__ == "ModelFileError"
    for group in (reann_cli.main, data_cli.main):
        for name, command in group.commands.items():
            assert "--debug" in {o for p in command.params for o in getattr(p, "opts", [])}, name


def test_runtime_errors_keep_their_traceback(monkeypatch, model_file):
    """A RuntimeError (a bug, a CUDA failure) is not reduced to one line."""

    def broken(*_args, **_kwargs):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr("reann_driver.model.load_model", broken)
    result = CliRunner().invoke(reann_cli.main, ["info", str(model_file)])
    assert isinstance(result.exception, RuntimeError) and not isinstance(result.exception, SystemExit)


def test_cuda_on_a_cpu_machine_is_a_user_error(model_file, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    data = tmp_path / "d.extxyz"
    methane = molecule("CH4")
    methane.calc = SinglePointCalculator(methane, energy=-1.0, forces=np.ones((5, 3)))
    methane.write(data)
    result = CliRunner().invoke(reann_cli.main, ["eval", str(model_file), str(data), "--device", "cuda"])
    assert result.exit_code == 1 and "no CUDA device" in result.output


def test_driver_says_at_once_what_it_waits_for(model_file, tmp_path):
    template = tmp_path / "ch4.xyz"
    molecule("CH4").write(template)
    socket_path = tmp_path / "nobody"
    result = CliRunner().invoke(
        driver_cli.main,
        [
            "--model",
            str(model_file),
            "--template",
            str(template),
            "--unix",
            str(socket_path),
            "--wait",
            "0.1",
        ],
    )
    assert result.exit_code == driver_cli.EXIT_ERROR
    first = result.output.splitlines()[0]
    assert f"waiting for i-PI to listen at unix socket {socket_path}" in first
    assert "up to 0.1 s" in first
