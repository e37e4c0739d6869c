"""Run i-PI and ``reann-driver`` side by side and wait for both (``reann pimd``, the benchmark, the tests).

If either process fails the other is stopped, so that nothing waits forever for a partner that is gone.
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

from .inputs import InputError, read_socket_spec


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
    raise InputError(f"another i-PI is listening on {path}; stop it or change the <address>")


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
