"""i-PI input files: where the driver must connect, and copies with another run length, bead count or
force field (``reann pimd``, the benchmark and the end-to-end tests).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from .client import Address, unix_socket_path


class InputError(UserError, ValueError):
    """An i-PI input that reann-driver cannot serve (no <ffsocket>, shared-memory sockets, ...)."""


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


def parse_input(path: str | os.PathLike[str]) -> ET.Element:
    """The root element of an i-PI input file (errors name the file)."""
    try:
        return ET.parse(path).getroot()
    except FileNotFoundError:
        raise InputError(f"i-PI input {os.fspath(path)!r} does not exist") from None
    except ET.ParseError as error:
        raise InputError(f"{os.fspath(path)} is not valid XML: {error}") from None


def read_socket_spec(input_xml: str | os.PathLike[str]) -> SocketSpec:
    """The (first) ``<ffsocket>`` of an i-PI input file."""
    root = parse_input(input_xml)
    element = root.find(".//ffsocket")
    if element is None:
        raise InputError(f"{os.fspath(input_xml)} has no <ffsocket> for the driver to connect to")
    mode = element.get("mode", "unix").strip().lower()
    if mode not in ("unix", "inet"):
        raise InputError(
            f"{os.fspath(input_xml)}: <ffsocket mode='{mode}'>: reann-driver speaks unix and inet sockets "
            "only (not i-PI's shared-memory 'shm' mode); use mode='unix' for a driver on the same machine"
        )
    text = element.findtext("address", default="localhost").strip()
    batch_size = int(element.findtext("batch_size", default="1").strip())
    if mode == "unix":
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
    root = parse_input(source)
    tree = ET.ElementTree(root)

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


def initial_structure(input_xml: str | os.PathLike[str]) -> str:
    """The file named by ``<initialize><file>`` (the starting structure, also the driver's template)."""
    element = parse_input(input_xml).find(".//initialize/file")
    if element is None or not (element.text or "").strip():
        raise InputError(f"{os.fspath(input_xml)} has no <initialize><file>")
    return (element.text or "").strip()


def properties_file(input_xml: str | os.PathLike[str]) -> str:
    """The name of the ``<properties>`` output file (``prefix.filename``)."""
    root = parse_input(input_xml)
    output = root.find("output")
    prefix = output.get("prefix", "simulation") if output is not None else "simulation"
    properties = root.find(".//output/properties")
    name = properties.get("filename", "out") if properties is not None else "out"
    return f"{prefix}.{name}"


@dataclass(frozen=True)
class Ensemble:
    """What the run should sample: the dynamics mode (nve, nvt, ...) and the target temperature (K)."""

    mode: str | None
    temperature: float | None


def read_ensemble(input_xml: str | os.PathLike[str]) -> Ensemble:
    """The ``<dynamics mode>`` and the ``<ensemble><temperature>`` in kelvin (i-PI's default unit for a
    temperature without ``units`` is the atomic unit)."""
    from ipi.utils.units import unit_to_internal, unit_to_user

    root = parse_input(input_xml)
    dynamics = root.find(".//motion/dynamics")
    element = root.find(".//ensemble/temperature")
    temperature = None
    if element is not None and (element.text or "").strip():
        internal = unit_to_internal(
            "temperature", element.get("units", "atomic_unit"), float(element.text or 0)
        )
        temperature = float(unit_to_user("temperature", "kelvin", internal))
    mode = dynamics.get("mode", "nve").strip().lower() if dynamics is not None else None
    return Ensemble(mode=mode, temperature=temperature)
