"""Run i-PI and ``reann-driver`` side by side, wait for both, and summarise the run.

Used by the examples' launchers, the benchmark and the end-to-end tests. If either process fails the
other is stopped, so that nothing waits forever for a partner that is gone.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .client import Address, unix_socket_path
from .outputs import read_properties


@dataclass(frozen=True)
class SocketSpec:
    """The ``<ffsocket>`` of an i-PI input: where the driver must connect."""

    address: Address
    batch_size: int
    mode: str  # unix | inet

    def driver_arguments(self) -> list[str]:
        if self.address.unix_path:
            return ["--unix", self.address.unix_path]
        return ["--host", self.address.host, "--port", str(self.address.port)]


def read_socket_spec(input_xml: str | os.PathLike[str]) -> SocketSpec:
    """The (first) ``<ffsocket>`` of an i-PI input file."""
    root = ET.parse(input_xml).getroot()
    element = root.find(".//ffsocket")
    if element is None:
        raise ValueError(f"{os.fspath(input_xml)} has no <ffsocket>")
    mode = element.get("mode", "unix").strip().lower()
    text = element.findtext("address", default="localhost").strip()
    batch_size = int(element.findtext("batch_size", default="1").strip())
    if mode in ("unix", "shm"):
        prefix = element.get("sockets_prefix", "/tmp/ipi_").strip()
        address = Address(unix_path=unix_socket_path(text, prefix))
    else:
        address = Address(host=text, port=int(element.findtext("port", default="31415").strip()))
    return SocketSpec(address=address, batch_size=batch_size, mode=mode)


def prepare_input(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    total_steps: int | None = None,
    nbeads: int | None = None,
    batch_size: int | None = None,
    unix_address: str | None = None,
    inet_port: int | None = None,
    plugin_parameters: dict[str, str] | None = None,
) -> None:
    """Copy an i-PI input, changing the run length, the number of beads and/or the force field.

    ``unix_address`` switches the ``<ffsocket>`` to a unix socket with that address, ``inet_port`` to an
    inet socket on localhost; ``batch_size`` 1 removes batching. ``plugin_parameters`` replaces the
    ``<ffsocket>`` by an in-process ``<ffdirect>`` running the REANN PES plugin with these parameters.
    """
    tree = ET.parse(source)
    root = tree.getroot()

    def set_text(parent: ET.Element, tag: str, value: str) -> None:
        child = parent.find(tag)
        if child is None:
            child = ET.SubElement(parent, tag)
        child.text = value

    if total_steps is not None:
        set_text(root, "total_steps", str(total_steps))
    if nbeads is not None:
        for initialize in root.iter("initialize"):
            initialize.set("nbeads", str(nbeads))
    sockets = list(root.iter("ffsocket"))
    for element in sockets:
        if batch_size is not None:
            set_text(element, "batch_size", str(batch_size))
        if unix_address is not None:
            element.set("mode", "unix")
            set_text(element, "address", unix_address)
        if inet_port is not None:
            element.set("mode", "inet")
            set_text(element, "address", "localhost")
            set_text(element, "port", str(inet_port))
    if plugin_parameters is not None:
        for element in sockets:
            name = element.get("name", "")
            element.clear()
            element.tag = "ffdirect"
            element.set("name", name)
            element.set("pbc", "false")
            set_text(element, "pes", "custom")
            set_text(element, "pes_path", str(Path(__file__).with_name("plugin.py")))
            pairs = ", ".join(f"{key}: {value}" for key, value in plugin_parameters.items())
            set_text(element, "parameters", "{" + pairs + "}")
    for element in root.iter("ffdirect"):
        if batch_size is not None:
            set_text(element, "batch_size", str(batch_size))
    tree.write(destination)


def wrap_in_committee(input_xml: str | os.PathLike[str], fields: dict[str, str] | None = None) -> None:
    """Rewrite an i-PI input so that its force field (the first ``<ffsocket>`` or ``<ffdirect>``) sits
    in an ``<ffcommittee name='committee'>`` reading the members from the JSON extras (``parse_json``),
    with the further ``fields`` (tag: text, e.g. ``alpha``, ``active_output``; ``active_thresh`` is in
    eV), every ``<force>`` pointing at it; and add a per-bead trajectory ``unc`` of i-PI's uncertainty
    (``committee_uncertainty``, Hartree) every step."""
    tree = ET.parse(input_xml)
    root = tree.getroot()
    inner = root.find("ffsocket")
    inner = inner if inner is not None else root.find("ffdirect")
    if inner is None:
        raise ValueError(f"{os.fspath(input_xml)} has no <ffsocket> or <ffdirect> to wrap")
    committee = ET.Element("ffcommittee", name="committee")
    for tag, text in {"parse_json": "true", **(fields or {})}.items():
        element = ET.SubElement(committee, tag)
        element.text = text
        if tag == "active_thresh":
            element.set("units", "electronvolt")
    position = list(root).index(inner)
    root.remove(inner)
    committee.append(inner)
    root.insert(position, committee)
    for force in root.iter("force"):
        force.set("forcefield", "committee")
    output = root.find("output")
    if output is None:
        output = ET.SubElement(root, "output")
    uncertainty = ET.SubElement(output, "trajectory", stride="1", filename="unc")
    uncertainty.set("extra_type", "committee_uncertainty")
    uncertainty.text = "extras"
    tree.write(input_xml)


def remove_stale_unix_socket(path: str) -> None:
    """Delete a unix socket file left by a crashed i-PI (nobody accepts on it); refuse if one is alive."""
    if not os.path.exists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)
        return
    finally:
        probe.close()
    raise RuntimeError(f"another i-PI is listening on {path}; stop it or change the <address>")


@dataclass
class RunSummary:
    ipi_returncode: int | None
    driver_returncode: int | None
    wall_seconds: float
    steps_per_second: float | None  # from the properties file, start-up excluded

    @property
    def ok(self) -> bool:
        return self.ipi_returncode == 0 and self.driver_returncode == 0


def ipi_command() -> list[str]:
    """The ``i-pi`` script of this Python environment (or the one on PATH)."""
    beside = Path(sys.executable).with_name("i-pi")
    if beside.exists():
        return [sys.executable, str(beside)]
    found = shutil.which("i-pi")
    if found is None:
        raise FileNotFoundError("the i-pi command is not installed (pip install ipi)")
    return [found]


def run_ipi_with_driver(
    input_xml: str | os.PathLike[str],
    workdir: str | os.PathLike[str],
    driver_arguments: Sequence[str] | None,
    properties_file: str | None = None,
    timeout: float | None = None,
    log_files: bool = True,
    environment: dict[str, str] | None = None,
    client_command: Sequence[str] | None = None,
    progress: Callable[[float], None] | None = None,
) -> RunSummary:
    """Start ``i-pi input.xml`` in ``workdir`` and ``reann-driver`` with ``driver_arguments`` (plus the
    socket address read from the input); wait for both.

    Args:
        driver_arguments: the driver's options besides the address (``--model``, ``--template``, ...);
            None runs i-PI alone (e.g. ``<ffdirect>`` inputs).
        properties_file: i-PI's properties file (relative to ``workdir``) used to time the steps.
        timeout: seconds before both processes are killed.
        log_files: write i-PI's and the driver's output to ``ipi.log`` / ``driver.log`` in ``workdir``.
        client_command: run this command as the client instead of reann-driver (e.g. i-PI's own
            ``i-pi-py_driver``); ``driver_arguments`` are then ignored.
        progress: called with the step of each new row of ``properties_file``.
    """
    workdir = Path(workdir)
    env = dict(os.environ if environment is None else environment)
    started = time.perf_counter()
    with_client = driver_arguments is not None or client_command is not None
    spec = read_socket_spec(input_xml) if with_client else None
    if spec is not None and spec.address.unix_path:
        remove_stale_unix_socket(spec.address.unix_path)
    outputs = []

    def output(name: str) -> int | None:
        if not log_files:
            return subprocess.DEVNULL
        stream = open(workdir / name, "w")
        outputs.append(stream)
        return stream.fileno()

    processes: dict[str, subprocess.Popen[bytes]] = {}
    first_row: tuple[float, float] | None = None
    last_row: tuple[float, float] | None = None
    try:
        processes["ipi"] = subprocess.Popen(
            [*ipi_command(), str(Path(input_xml).resolve())],
            cwd=workdir,
            stdout=output("ipi.log"),
            stderr=subprocess.STDOUT,
            env=env,
        )
        if spec is not None and client_command is not None and spec.address.unix_path:
            _wait_for_socket_file(spec.address.unix_path, processes["ipi"], timeout=60.0)
        if spec is not None:
            command = client_command or [
                sys.executable,
                "-m",
                "reann_driver.ipi",
                *spec.driver_arguments(),
                *(driver_arguments or []),
            ]
            processes["driver"] = subprocess.Popen(
                list(command),
                cwd=workdir,
                stdout=output("driver.log"),
                stderr=subprocess.STDOUT,
                env=env,
            )
        while any(p.poll() is None for p in processes.values()):
            if timeout is not None and time.perf_counter() - started > timeout:
                break
            if any(p.poll() not in (None, 0) for p in processes.values()):
                time.sleep(1.0)  # give the partner a moment to notice and exit by itself
                break
            if properties_file is not None:
                step = _last_step(workdir / properties_file)
                if step is not None:
                    now = time.perf_counter()
                    first_row = first_row or (now, step)
                    if last_row is None or step != last_row[1]:
                        last_row = (now, step)
                        if progress is not None:
                            progress(step)
            time.sleep(0.02)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        for stream in outputs:
            stream.close()
    rate = None
    if first_row and last_row and last_row[1] > first_row[1]:
        rate = (last_row[1] - first_row[1]) / (last_row[0] - first_row[0])
    driver = processes.get("driver")
    return RunSummary(
        ipi_returncode=processes["ipi"].returncode,
        driver_returncode=driver.returncode if driver is not None else 0,
        wall_seconds=time.perf_counter() - started,
        steps_per_second=rate,
    )


def _wait_for_socket_file(path: str, server: subprocess.Popen[bytes], timeout: float) -> None:
    """Other clients (e.g. i-pi-py_driver) do not retry: start them once i-PI's socket file exists."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and server.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)


def _last_step(path: Path) -> float | None:
    """The step number of the last complete row of a properties file whose first column is ``step``."""
    try:
        with open(path, "rb") as stream:
            stream.seek(0, os.SEEK_END)
            stream.seek(max(0, stream.tell() - 4096))
            text = stream.read().decode(errors="replace")
    except FileNotFoundError:
        return None
    lines = text.splitlines()
    if not text.endswith("\n"):
        lines = lines[:-1]  # the row being written
    for line in reversed(lines):
        fields = line.split()
        if fields and not line.startswith("#"):
            try:
                return float(fields[0])
            except ValueError:
                return None
    return None


def block_average(values: np.ndarray, n_blocks: int = 5) -> tuple[float, float]:
    """Mean and its standard error from ``n_blocks`` contiguous blocks (correlated time series)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < n_blocks:
        return float(values.mean()), float("nan")
    blocks = np.array([block.mean() for block in np.array_split(values, n_blocks)])
    return float(values.mean()), float(blocks.std(ddof=1) / np.sqrt(n_blocks))


def summarise_properties(path: str | os.PathLike[str], discard_fraction: float = 0.2) -> dict[str, float]:
    """Averages over the last ``1 - discard_fraction`` of a run: kinetic_cv and temperature."""
    table = read_properties(path)
    summary: dict[str, float] = {}
    for name, key in (("kinetic_cv", "kinetic_cv{electronvolt}"), ("temperature", "temperature{kelvin}")):
        if key in table and len(table[key]):
            values = table[key][int(discard_fraction * len(table[key])) :]
            summary[name], summary[name + "_error"] = block_average(values)
    return summary
