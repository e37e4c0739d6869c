"""``reann pimd``: run an i-PI input with ``reann-driver`` in a fresh folder, then summarise the run.

The input's ``<initialize><file>`` is the starting structure and the driver's template; both are copied
into the run folder (default ``runs/<date-time>`` beside the input), so nothing is overwritten. i-PI's
and the driver's output go to ``ipi.log`` and ``driver.log`` there.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from .inputs import (
    initial_structure,
    parse_input,
    prepare_input,
    properties_file,
    read_ensemble,
    read_socket_spec,
)
from .launch import RunSummary, run_ipi_with_driver
from .summary import RunAverages, summarise


class RunFailed(UserError, RuntimeError):
    """i-PI or the driver stopped with an error; ``logs`` holds the last lines of both logs."""

    def __init__(self, message: str, logs: str) -> None:
        super().__init__(message)
        self.logs = logs


@dataclass(frozen=True)
class PimdRun:
    """Where the run went, how long it took and what it gave."""

    folder: Path
    total_steps: int
    summary: RunSummary
    averages: RunAverages


def run_pimd(
    input_xml: Path,
    model: Path,
    driver_options: list[str],
    *,
    steps: int | None = None,
    beads: int | None = None,
    batch_size: int | None = None,
    output: Path | None = None,
    force: bool = False,
    timeout: float = 3600.0,
    progress: Callable[[float, int], None] | None = None,
) -> PimdRun:
    """Run ``input_xml`` with ``reann-driver --model model *driver_options`` and summarise it.

    ``progress`` is called with (step, total steps) as i-PI writes properties rows.
    """
    from ..model import load_model
    from .evaluator import read_template_symbols

    load_model(model)  # fail here, before i-PI starts, if it is not a model file
    spec = read_socket_spec(input_xml)
    structure = initial_structure(input_xml)
    folder = output or input_xml.parent / "runs" / time.strftime("%Y%m%d-%H%M%S")
    if folder.exists() and not force:
        raise FileExistsError(f"{folder} exists; choose another --output or add --force")
    source_structure = input_xml.parent / structure
    if not source_structure.is_file():
        raise FileNotFoundError(f"{input_xml} starts from {structure}, which is not in {input_xml.parent}")
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(source_structure, folder / structure)
    if beads is not None and batch_size is None and spec.batch_size > 1:
        batch_size = beads  # a batched input keeps one message (and one model call) per step
    run_input = folder / "input.xml"
    prepare_input(
        input_xml,
        run_input,
        total_steps=steps,
        nbeads=beads,
        batch_size=batch_size,
        unix_address=f"reann-{os.getpid()}" if spec.mode == "unix" else None,
    )
    total_steps = int(parse_input(run_input).findtext("total_steps", "0"))
    properties = properties_file(run_input)
    summary = run_ipi_with_driver(
        run_input,
        folder,
        ["--model", str(model.resolve()), "--template", structure, *driver_options],
        properties_file=properties,
        timeout=timeout,
        progress=None if progress is None else (lambda step: progress(step, total_steps)),
    )
    if not summary.ok:
        tails = []
        for log in ("driver.log", "ipi.log"):
            lines = (folder / log).read_text(errors="replace").splitlines()[-15:]
            tails.append(f"--- last lines of {folder / log}:\n" + "\n".join(lines))
        raise RunFailed(
            f"the run failed (i-PI exit code {summary.ipi_returncode}, driver exit code "
            f"{summary.driver_returncode}); see the logs above",
            "\n".join(tails),
        )
    n_atoms = len(read_template_symbols(folder / structure))
    averages = summarise(folder / properties, n_atoms, read_ensemble(run_input))
    return PimdRun(folder, total_steps, summary, averages)
