"""End to end with a real i-PI: the CH4 PIMD example (4 beads, 20 steps) driven by reann-driver.

The potential energy of every bead that i-PI wrote must equal REANNCalculator's energy of the bead
positions i-PI wrote (full-precision binary trajectory) to 1e-8 eV, batched and unbatched, on unix and
inet sockets; and the driver must stop quickly and loudly when i-PI dies.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from click.testing import CliRunner
from conftest import randomised

import reann_driver
import reann_driver.ipi.plugin as plugin_module
from reann_driver.ipi.evaluator import ANGSTROM_PER_BOHR, read_template_symbols
from reann_driver.ipi.inputs import prepare_input, read_socket_spec
from reann_driver.ipi.launch import ipi_command, run_ipi_with_driver
from reann_driver.ipi.summary import read_properties

pytestmark = pytest.mark.ipi

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ch4_pimd"
N_BEADS, N_STEPS = 4, 20


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """An untrained tiny model; its weights are scaled down so that 20 PIMD steps stay gentle."""
    torch.manual_seed(3)
    model = randomised(reann_driver.REANN(["H", "C"], n_radial=4, l_max=1, hidden=(16, 16), iterations=1))
    with torch.no_grad():
        for parameter in model.energy_networks.parameters():
            parameter.mul_(0.5)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    model.save(str(path))
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return int(probe.getsockname()[1])


def prepare_run(
    folder: Path,
    batch_size: int,
    inet: bool = False,
    steps: int = N_STEPS,
    plugin: dict[str, str] | None = None,
    consolidate: bool = True,
) -> Path:
    """The CH4 example with 4 beads, a unique socket and full-precision per-bead outputs every step."""
    (folder / "init.xyz").write_text((EXAMPLE / "init.xyz").read_text())
    prepare_input(
        EXAMPLE / "input.xml",
        folder / "input.xml",
        total_steps=steps,
        nbeads=N_BEADS,
        batch_size=batch_size,
        unix_address=None if inet else f"reann-test-{uuid.uuid4().hex[:10]}",
        inet_port=free_port() if inet else None,
        plugin_parameters=plugin,
    )
    tree = ET.parse(folder / "input.xml")
    root = tree.getroot()
    root.set("floatformat", "%.17e")
    for element in root.iter("ffsocket"):  # False: POSDATA, STATUS, GETFORCE as separate messages
        ET.SubElement(element, "consolidate_messages").text = str(consolidate)
    output = root.find("output")
    assert output is not None
    output.clear()
    output.set("prefix", "t")
    properties = ET.SubElement(output, "properties", stride="1", filename="out")
    properties.text = "[ step, bead_potentials{electronvolt}, kinetic_cv{electronvolt} ]"
    trajectory = ET.SubElement(output, "trajectory", stride="1", filename="pos", format="bin")
    trajectory.text = "positions"  # atomic units, float64
    tree.write(folder / "input.xml")
    return folder / "input.xml"


def read_binary_trajectory(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """All frames of an i-PI ``format='bin'`` trajectory (i-PI's reader takes only one frame per file).

    Returns (cells h [n_frames, 3, 3] with lattice vectors as columns, values [n_frames, n_atoms, 3]) in
    the units the trajectory was written in (atomic units unless the ``<trajectory>`` asked otherwise).
    i-PI writes per frame: h (9 f8), natoms (i8), values (3 natoms f8), len(names) (i8), the names
    ('|'-joined, UTF-32) and a title (UTF-32) whose length is the same for every frame of a file.
    """
    data = open(path, "rb").read()
    if not data:
        return np.zeros((0, 3, 3)), np.zeros((0, 0, 3))
    n_atoms = int(np.frombuffer(data, dtype=np.int64, count=1, offset=72)[0])
    names_offset = 80 + 24 * n_atoms
    n_name_chars = int(np.frombuffer(data, dtype=np.int64, count=1, offset=names_offset)[0])
    title_offset = names_offset + 8 + 4 * n_name_chars
    # the title runs up to the next frame, which starts with the same cell-independent atom count
    title = data[title_offset:].decode("utf-32-le", errors="replace")
    end = title.find("cell{")
    if end < 0:
        raise ValueError(f"{os.fspath(path)} does not look like an i-PI binary trajectory")
    title_chars = title.find("}", end) + 1
    frame_size = title_offset + 4 * title_chars
    if len(data) % frame_size:
        raise ValueError(
            f"{os.fspath(path)}: size {len(data)} is not a multiple of the frame size {frame_size}"
        )
    n_frames = len(data) // frame_size
    frames = np.frombuffer(data, dtype=np.uint8).reshape(n_frames, frame_size)
    cells = frames[:, :72].copy().view(np.float64).reshape(n_frames, 3, 3)
    values = frames[:, 80 : 80 + 24 * n_atoms].copy().view(np.float64).reshape(n_frames, n_atoms, 3)
    return cells, values


def check_bead_energies(folder: Path, model_file: Path) -> None:
    table, units = read_properties(folder / "t.out")
    potentials = table["bead_potentials"]
    assert units["bead_potentials"] == "electronvolt"
    assert potentials.shape == (N_STEPS + 1, N_BEADS)
    symbols = read_template_symbols(folder / "init.xyz")
    calculator = reann_driver.REANNCalculator(model_file)
    for bead in range(N_BEADS):
        _, positions = read_binary_trajectory(folder / f"t.pos_{bead}.bin")
        assert positions.shape == (N_STEPS + 1, len(symbols), 3)
        for step in range(N_STEPS + 1):
            atoms = Atoms(symbols, positions=positions[step] * ANGSTROM_PER_BOHR, pbc=False)
            atoms.calc = calculator
            assert potentials[step, bead] == pytest.approx(atoms.get_potential_energy(), abs=1e-8)
    # the beads really moved apart and along the trajectory: the comparison is not trivial
    assert np.ptp(potentials) > 1e-3


@pytest.mark.parametrize("batch_size", [N_BEADS, 1], ids=["batched", "unbatched"])
def test_unix_socket_bead_energies(tmp_path, model_file, batch_size):
    # the unbatched run also uses i-PI's other message order (no consolidated POSDATA + GETFORCE)
    input_xml = prepare_run(tmp_path, batch_size, consolidate=batch_size > 1)
    driver = ["--model", str(model_file), "--template", "init.xyz", "--non-periodic"]
    summary = run_ipi_with_driver(input_xml, tmp_path, driver, timeout=60)
    log = (tmp_path / "driver.log").read_text()
    assert summary.ok, log + (tmp_path / "ipi.log").read_text()[-2000:]
    assert f"batch size {batch_size}" in log
    assert f"{(N_STEPS + 1) * N_BEADS} structures in {(N_STEPS + 1) * N_BEADS // batch_size} requests" in log
    check_bead_energies(tmp_path, model_file)


def test_inet_socket_bead_energies(tmp_path, model_file):
    input_xml = prepare_run(tmp_path, N_BEADS, inet=True)
    driver = ["--model", str(model_file), "--template", "init.xyz", "--non-periodic"]
    summary = run_ipi_with_driver(input_xml, tmp_path, driver, timeout=60)
    assert summary.ok, (tmp_path / "driver.log").read_text() + (tmp_path / "ipi.log").read_text()[-2000:]
    check_bead_energies(tmp_path, model_file)


def test_ffdirect_plugin_bead_energies(tmp_path, model_file):
    """The same model inside i-PI: <ffdirect><pes>custom</pes> with the plugin file, batched."""
    plugin = {"model": str(model_file), "template": "init.xyz", "non_periodic": "true"}
    input_xml = prepare_run(tmp_path, N_BEADS, plugin=plugin)
    assert "<ffdirect" in input_xml.read_text() and "<ffsocket" not in input_xml.read_text()
    summary = run_ipi_with_driver(input_xml, tmp_path, None, timeout=60)
    assert summary.ok, (tmp_path / "ipi.log").read_text()[-3000:]
    check_bead_energies(tmp_path, model_file)


def test_plugin_under_stock_python_client(tmp_path, model_file):
    """The plugin file through i-PI's own client: i-pi-py_driver -m custom -P plugin.py -o ..."""
    input_xml = prepare_run(tmp_path, N_BEADS)
    spec = read_socket_spec(input_xml)
    assert spec.address.unix_path is not None
    address = spec.address.unix_path.removeprefix("/tmp/ipi_")
    client = [sys.executable, str(Path(sys.executable).with_name("i-pi-py_driver")), "-u", "-a", address]
    client += ["-m", "custom", "-P", str(Path(plugin_module.__file__))]
    client += ["-o", f"model={model_file},template=init.xyz,non_periodic=true"]
    summary = run_ipi_with_driver(input_xml, tmp_path, None, timeout=60, client_command=client)
    assert summary.ok, (tmp_path / "driver.log").read_text()[-3000:]
    check_bead_energies(tmp_path, model_file)


def test_driver_exits_quickly_when_ipi_is_killed(tmp_path, model_file):
    input_xml = prepare_run(tmp_path, N_BEADS, steps=1_000_000)
    spec = read_socket_spec(input_xml)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ipi = subprocess.Popen([*ipi_command(), str(input_xml)], cwd=tmp_path, stdout=subprocess.DEVNULL, env=env)
    driver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reann_driver.ipi",
            *spec.driver_arguments(),
            "--model",
            str(model_file),
            "--template",
            "init.xyz",
            "--non-periodic",
        ],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 40
        while not _has_rows(tmp_path / "t.out", 5):  # the simulation is running
            assert time.monotonic() < deadline and driver.poll() is None and ipi.poll() is None
            time.sleep(0.05)
        ipi.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        _, stderr = driver.communicate(timeout=10)
        elapsed = time.monotonic() - killed
    finally:
        for process in (ipi, driver):
            if process.poll() is None:
                process.kill()
                process.wait()
        if spec.address.unix_path and os.path.exists(spec.address.unix_path):
            os.unlink(spec.address.unix_path)
    assert elapsed < 2.0
    assert driver.returncode == 3
    assert "closed the connection" in stderr and "without sending EXIT" in stderr


def _has_rows(path: Path, n_rows: int) -> bool:
    try:
        return sum(1 for line in path.read_text().splitlines() if line and not line.startswith("#")) >= n_rows
    except FileNotFoundError:
        return False


def test_reann_pimd_prints_speed_kinetic_energy_and_warnings(tmp_path, model_file):
    """reann pimd, the main job's launcher, on a short CH4 run: too short for an error bar, so it says so."""
    from reann_driver.cli.main import main

    arguments = [
        "pimd",
        str(EXAMPLE),
        "--model",
        str(model_file),
        "--non-periodic",
        "--steps",
        "60",
        "--beads",
        "4",
    ]
    result = CliRunner().invoke(main, [*arguments, "--output", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert re.search(r"speed: [0-9.]+ steps/s", result.output)
    assert re.search(r"kinetic_cv\): [0-9.]+ ± nan eV", result.output)
    assert "too few for an error bar" in result.output  # 60 steps = 5 kept rows
    assert "batch size 4" in (tmp_path / "run" / "driver.log").read_text()
    result = CliRunner().invoke(main, [*arguments, "--output", str(tmp_path / "run")])
    assert result.exit_code == 1 and "exists" in result.output  # never overwrites a run


def start_driver(
    folder: Path, input_xml: Path, model_file: Path, template: str = "init.xyz"
) -> subprocess.Popen:
    spec = read_socket_spec(input_xml)
    command = [sys.executable, "-m", "reann_driver.ipi", *spec.driver_arguments()]
    command += ["--model", str(model_file), "--template", template, "--non-periodic"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen(command, cwd=folder, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "error"])
def test_ipi_serves_a_new_driver_after_the_first_one_leaves(tmp_path, model_file, how):
    """Issue 14, item 10: however the driver leaves (signal, or an error with i-PI's GETFORCE unread), i-PI
    3.3 must not freeze: a second driver connects, gets the pending request and the run completes."""
    input_xml = prepare_run(tmp_path, N_BEADS)
    spec = read_socket_spec(input_xml)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ipi = subprocess.Popen([*ipi_command(), str(input_xml)], cwd=tmp_path, stdout=subprocess.DEVNULL, env=env)
    processes = [ipi]
    try:
        if how == "error":  # fails on the first POSDATA, with i-PI's GETFORCE still unread
            symbols = read_template_symbols(tmp_path / "init.xyz")
            Atoms(symbols[:-1], positions=np.zeros((len(symbols) - 1, 3))).write(tmp_path / "short.xyz")
            first = start_driver(tmp_path, input_xml, model_file, template="short.xyz")
            processes.append(first)
            _, stderr = first.communicate(timeout=40)
            assert first.returncode == 1 and "atoms per structure" in stderr, stderr
        else:
            first = start_driver(tmp_path, input_xml, model_file)
            processes.append(first)
            deadline = time.monotonic() + 40
            while not _has_rows(tmp_path / "t.out", 3):  # the simulation is running
                assert time.monotonic() < deadline and first.poll() is None and ipi.poll() is None
                time.sleep(0.02)
            first.send_signal(getattr(signal, how))
            _, stderr = first.communicate(timeout=10)
            assert first.returncode == 128 + getattr(signal, how), stderr
            assert f"stopped by {how}" in stderr
        second = start_driver(tmp_path, input_xml, model_file)
        processes.append(second)
        _, stderr = second.communicate(timeout=60)
        assert second.returncode == 0, stderr
        assert ipi.wait(timeout=30) == 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        if spec.address.unix_path and os.path.exists(spec.address.unix_path):
            os.unlink(spec.address.unix_path)
    steps = read_properties(tmp_path / "t.out")[0]["step"]
    assert steps[-1] == N_STEPS
