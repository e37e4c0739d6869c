"""Run one of the PIMD examples: i-PI + reann-driver side by side, then a short summary.

    python examples/run_pimd.py examples/ch4_pimd --model examples/ch4_pimd/model.pt --non-periodic

The example folder holds ``input.xml`` and the starting structure it names. The run happens in a new
folder (default ``EXAMPLE/runs/<date-time>``) so that nothing is overwritten; i-PI's and the driver's
output go to ``ipi.log`` and ``driver.log`` there. At the end it prints the steps per second and the
centroid-virial estimate of the quantum kinetic energy (i-PI's ``kinetic_cv``).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import click
from ase.units import kB
from tqdm import tqdm

from reann_driver import ModelFileError, load_model
from reann_driver.ipi.evaluator import read_template_symbols
from reann_driver.ipi.launch import prepare_input, read_socket_spec, run_ipi_with_driver, summarise_properties


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("example", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--model", required=True, type=click.Path(dir_okay=False, path_type=Path), help="REANN model file."
)
@click.option("--non-periodic", is_flag=True, help="Molecule in vacuum (passed to reann-driver).")
@click.option("--steps", type=click.IntRange(1), help="Override <total_steps>.")
@click.option("--beads", type=click.IntRange(1), help="Override the number of beads.")
@click.option(
    "--batch-size",
    type=click.IntRange(1),
    help="Override the <ffsocket> batch size (1: unbatched; default with --beads: the number of beads).",
)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or auto.")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True)
@click.option(
    "--output", type=click.Path(file_okay=False, path_type=Path), help="Run folder (must not exist)."
)
@click.option("--force", is_flag=True, help="Reuse an existing --output folder, overwriting its files.")
@click.option("--timeout", type=float, default=3600.0, show_default=True, help="Seconds before giving up.")
def main(
    example: Path,
    model: Path,
    non_periodic: bool,
    steps: int | None,
    beads: int | None,
    batch_size: int | None,
    device: str,
    dtype: str,
    output: Path | None,
    force: bool,
    timeout: float,
) -> None:
    """Run the PIMD example in folder EXAMPLE with the REANN model MODEL."""
    if not model.is_file():
        raise click.ClickException(
            f"model file {model} not found: train one (see {example / 'README.md'}) or pass --model PATH"
        )
    try:
        load_model(model)  # fail here, before starting i-PI, if it is not a model file
    except ModelFileError as error:
        raise click.ClickException(str(error)) from None
    source = example / "input.xml"
    run_dir = output or example / "runs" / time.strftime("%Y%m%d-%H%M%S")
    if run_dir.exists() and not force:
        raise click.ClickException(f"{run_dir} exists; choose another --output or add --force")
    run_dir.mkdir(parents=True, exist_ok=True)
    # the starting structure is the <file> of <initialize>; it is also the driver's template
    spec = read_socket_spec(source)
    structure_name = _initial_structure(source)
    shutil.copy(example / structure_name, run_dir / structure_name)
    address = f"reann-{os.getpid()}" if spec.mode == "unix" else None
    if beads is not None and batch_size is None and spec.batch_size > 1:
        batch_size = beads  # a batched example keeps one message (and one model call) per step
    prepare_input(
        source,
        run_dir / "input.xml",
        total_steps=steps,
        nbeads=beads,
        batch_size=batch_size,
        unix_address=address,
    )
    driver = [
        "--model",
        str(model.resolve()),
        "--template",
        structure_name,
        "--device",
        device,
        "--dtype",
        dtype,
    ]
    if non_periodic:
        driver.append("--non-periodic")
    n_atoms = len(read_template_symbols(run_dir / structure_name))
    click.echo(f"running {example.name} in {run_dir} (i-PI log: ipi.log, driver log: driver.log)")
    properties = _properties_file(run_dir / "input.xml")
    total_steps = int(ET.parse(run_dir / "input.xml").getroot().findtext("total_steps", "0"))
    with tqdm(total=total_steps, unit="step", desc="PIMD", leave=False, disable=None) as bar:
        summary = run_ipi_with_driver(
            run_dir / "input.xml",
            run_dir,
            driver,
            properties_file=properties,
            timeout=timeout,
            progress=lambda step: bar.update(step - bar.n),
        )
    if not summary.ok:
        for log in ("driver.log", "ipi.log"):
            tail = (run_dir / log).read_text(errors="replace").splitlines()[-15:]
            click.echo(f"--- last lines of {run_dir / log}:\n" + "\n".join(tail), err=True)
        raise click.ClickException(
            f"the run failed (i-PI exit code {summary.ipi_returncode}, driver exit code "
            f"{summary.driver_returncode}); see the logs above"
        )
    averages = summarise_properties(run_dir / properties)
    temperature = averages.get("temperature", float("nan"))
    classical = 1.5 * n_atoms * kB * temperature
    click.echo(f"steps: {total_steps} in {summary.wall_seconds:.1f} s wall time (start-up included)")
    if summary.steps_per_second:
        click.echo(f"speed: {summary.steps_per_second:.1f} steps/s (start-up excluded)")
    click.echo(
        f"temperature: {temperature:.1f} ± {averages.get('temperature_error', float('nan')):.1f} K "
        "(first 20% of the rows discarded)"
    )
    click.echo(
        f"quantum kinetic energy (centroid virial, kinetic_cv): "
        f"{averages['kinetic_cv']:.4f} ± {averages['kinetic_cv_error']:.4f} eV "
        f"(classical 3/2 N kT at that temperature: {classical:.4f} eV)"
    )
    click.echo(f"outputs: {run_dir}")


def _initial_structure(input_xml: Path) -> str:
    element = ET.parse(input_xml).getroot().find(".//initialize/file")
    if element is None or not (element.text or "").strip():
        raise click.ClickException(f"{input_xml} has no <initialize><file>")
    return (element.text or "").strip()


def _properties_file(input_xml: Path) -> str:
    root = ET.parse(input_xml).getroot()
    output = root.find("output")
    prefix = output.get("prefix", "simulation") if output is not None else "simulation"
    properties = root.find(".//output/properties")
    name = properties.get("filename", "out") if properties is not None else "out"
    return f"{prefix}.{name}"


if __name__ == "__main__":
    sys.exit(main())
