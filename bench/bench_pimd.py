"""Cost of one PIMD step of the 64-water box with i-PI, for 8 and 32 beads.

    python bench/bench_pimd.py [--beads 8 --beads 32] [--steps 20] [--device cpu|cuda]

Rows: (a) i-PI with its dummy driver (i-pi-py_driver -m dummy, zero forces: the floor set by i-PI itself,
unbatched and batched), (b) reann-driver unbatched (one client, one structure per message), (c) reann-driver
batched (all beads in one message and one model call), (d) the REANN PES plugin inside i-PI (<ffdirect>,
batched), and the cost of one batched evaluation alone (graph + forward + backward, and model only).
Step times are i-PI's own per-step timings (verbosity high), median over the steps after the first two.

The model is untrained with the default hyper-parameters: species H, O; r_c 5 Å, 8 radial functions,
L_max 2, T = 2 iterations, hidden (64, 64), float64. Timings do not depend on the weights.
"""

from __future__ import annotations

import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import click
import numpy as np
import torch
from ase.io import read

import reann_driver
from reann_driver.ipi.evaluator import ANGSTROM_PER_BOHR, BatchEvaluator
from reann_driver.ipi.inputs import prepare_input
from reann_driver.ipi.launch import run_ipi_with_driver
from reann_driver.memory import keep_freed_memory

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "water64_pimd"
_TIMING = re.compile(r"Average timings at MD step\s+(\d+)\. t/step:\s*(\S+)")


def step_times(log: Path) -> list[float]:
    """Per-step wall times (s) that i-PI prints at verbosity high."""
    return [float(m.group(2)) for m in _TIMING.finditer(log.read_text(errors="replace"))]


def run_case(
    folder: Path, beads: int, steps: int, batch: int, model: Path, device: str, mode: str
) -> float | None:
    """Median ms per step for one configuration (mode: dummy | driver | plugin)."""
    folder.mkdir(parents=True)
    (folder / "water_64.xyz").write_text((EXAMPLE / "water_64.xyz").read_text())
    address = f"reann-bench-{uuid.uuid4().hex[:8]}"
    plugin = None
    if mode == "plugin":
        plugin = {"model": str(model), "template": "water_64.xyz", "device": device}
    prepare_input(
        EXAMPLE / "input.xml",
        folder / "input.xml",
        total_steps=steps,
        nbeads=beads,
        batch_size=batch,
        unix_address=address,
        plugin_parameters=plugin,
    )
    text = (folder / "input.xml").read_text()
    text = text.replace("verbosity='low'", "verbosity='high'").replace('verbosity="low"', 'verbosity="high"')
    (folder / "input.xml").write_text(text)
    client = None
    driver: list[str] | None = ["--model", str(model), "--template", "water_64.xyz", "--device", device]
    if mode == "dummy":
        client = [str(Path(sys.executable).with_name("i-pi-py_driver")), "-m", "dummy", "-u", "-a", address]
        client.insert(0, sys.executable)
    if mode == "plugin":
        driver = None
    summary = run_ipi_with_driver(folder / "input.xml", folder, driver, timeout=1800, client_command=client)
    if not summary.ok:
        click.echo(f"  {folder.name} failed; see {folder}/ipi.log and driver.log", err=True)
        return None
    times = step_times(folder / "ipi.log")[2:]
    return 1e3 * statistics.median(times) if times else None


def evaluation_cost(model: reann_driver.REANN, beads: int, device: str, repeats: int) -> tuple[float, float]:
    """Median ms of one batched evaluation of ``beads`` water boxes: (graph + model, model only)."""
    atoms = read(EXAMPLE / "water_64.xyz")
    h = np.eye(3) * 12.444661 / ANGSTROM_PER_BOHR  # the box of water_64.xyz (12.4447 Å), Bohr
    rng = np.random.default_rng(0)
    positions = atoms.positions / ANGSTROM_PER_BOHR + rng.normal(0, 0.05, (beads, len(atoms), 3))
    evaluator = BatchEvaluator(model, atoms.get_chemical_symbols(), periodic=True, device=device)
    cells = np.repeat(h[None], beads, axis=0)
    totals, models = [], []
    from reann_driver.model import build_graph

    for _ in range(repeats + 1):
        _synchronize(device)
        start = time.perf_counter()
        evaluator.evaluate(cells, positions)
        _synchronize(device)
        totals.append(time.perf_counter() - start)
        graph = build_graph(
            [evaluator.species] * beads,
            list(positions * ANGSTROM_PER_BOHR),
            list(cells.transpose(0, 2, 1) * ANGSTROM_PER_BOHR),
            [[True] * 3] * beads,
            evaluator.model.cutoff,
            dtype=evaluator.dtype,
            device=evaluator.device,
        )
        _synchronize(device)
        start = time.perf_counter()
        output = evaluator.model(graph, forces=True, stress=True)
        output["virial"].cpu()
        _synchronize(device)
        models.append(time.perf_counter() - start)
    return 1e3 * statistics.median(totals[1:]), 1e3 * statistics.median(models[1:])


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@click.command()
@click.option("--beads", "bead_counts", type=int, multiple=True, default=(8, 32), show_default=True)
@click.option("--steps", type=click.IntRange(4), default=20, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--skip-unbatched", is_flag=True, help="Skip (b), the slowest case on CPU.")
def main(bead_counts: tuple[int, ...], steps: int, device: str, skip_unbatched: bool) -> None:
    keep_freed_memory()  # as reann-driver and the plugin do
    torch.manual_seed(0)
    model = reann_driver.REANN(["H", "O"])  # default hyper-parameters
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_pimd_") as scratch:
        model_path = Path(scratch) / "water_default.pt"
        model.save(str(model_path))
        for beads in bead_counts:
            click.echo(f"{beads} beads ...", err=True)
            case = {"beads": beads}
            runs = [
                ("dummy_1", 1, "dummy"),
                ("dummy_batched", beads, "dummy"),
                ("driver_1", 1, "driver"),
                ("driver_batched", beads, "driver"),
                ("plugin_batched", beads, "plugin"),
            ]
            for name, batch, mode in runs:
                if skip_unbatched and name == "driver_1":
                    case[name] = None
                    continue
                case[name] = run_case(
                    Path(scratch) / f"{name}_{beads}", beads, steps, batch, model_path, device, mode
                )
            case["evaluate"], case["model"] = evaluation_cost(model, beads, device, repeats=5)
            rows.append(case)

    def cell(value: float | None) -> str:
        return f"{value:10.1f}" if value is not None else f"{'-':>10}"

    click.echo(
        f"\nms per PIMD step, 64-water box (192 atoms), {device}, median of {steps - 2} steps "
        f"(torch {torch.__version__}, {torch.get_num_threads()} threads)"
    )
    names = ["dummy_1", "dummy_batched", "driver_1", "driver_batched", "plugin_batched", "evaluate", "model"]
    headers = [
        "(a) dummy",
        "(a) dummy B",
        "(b) unbatch",
        "(c) batched",
        "(d) ffdirect",
        "eval alone",
        "model only",
    ]
    click.echo(
        f"{'beads':>5} " + " ".join(f"{h:>11}" for h in headers) + "   (c)/max(a,eval)  (d)/max(a,eval)"
    )
    for row in rows:
        floor = [v for v in (row["dummy_1"], row["dummy_batched"]) if v is not None]
        bound = max(min(floor) if floor else 0.0, row["evaluate"])
        ratios = [
            f"{row[k] / bound:15.2f}" if row[k] is not None else f"{'-':>15}"
            for k in ("driver_batched", "plugin_batched")
        ]
        click.echo(f"{row['beads']:>5} " + " ".join(cell(row[n]) + " " for n in names) + "  ".join(ratios))
    click.echo("(b)/(c): ", nl=False)
    click.echo(
        ", ".join(
            f"{row['beads']} beads {row['driver_1'] / row['driver_batched']:.1f}x"
            for row in rows
            if row["driver_1"] and row["driver_batched"]
        )
        or "-"
    )


if __name__ == "__main__":
    main()
