"""The ``reann`` command: train, evaluate, export and inspect models (logic in ``reann_driver.train``)."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .. import __version__
from .common import Group

if TYPE_CHECKING:
    from ..model import REANN


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reann")
def main() -> None:
    """REANN potentials: train, evaluate, export and inspect models."""


@main.command()
@click.argument("model_file", type=click.Path(dir_okay=False))
def info(model_file: str) -> None:
    """Print the hyper-parameters, species and size of MODEL_FILE (of every member of a committee).

    Example: reann info water.pt
    """
    from ..model import Committee, load_model

    model = load_model(model_file)
    description: dict[str, object]
    if isinstance(model, Committee):
        members = [model.member(k) for k in range(len(model))]
        description = {"committee": [_description(member) for member in members], "metadata": model.metadata}
    else:
        description = _description(model)
    click.echo(json.dumps(description, indent=2))


def _description(model: REANN) -> dict[str, object]:
    """Config, size and metadata of one model."""
    n_parameters = sum(p.numel() for p in model.parameters())
    return {**model.config, "parameters": n_parameters, "metadata": model.metadata}


def _log_to_terminal() -> None:
    logger = logging.getLogger("reann_driver.train")
    for handler in logger.handlers:
        if getattr(handler, "_reann_cli", False):  # a second command in the same process
            handler.setStream(sys.stdout)  # type: ignore[attr-defined]
            break
    else:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._reann_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


@main.command()
@click.argument("config_file", required=False, type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE", help="Override a config key.")
@click.option("--resume", is_flag=True, help="Continue the run in output.dir from its last checkpoint.")
@click.option("--force", is_flag=True, help="Write into a non-empty output.dir (overwriting its files).")
@click.option("--print-defaults", is_flag=True, help="Print a commented template with every key and exit.")
def train(
    config_file: str | None, overrides: tuple[str, ...], resume: bool, force: bool, print_defaults: bool
) -> None:
    """Train a REANN model as described by CONFIG_FILE (YAML or TOML); with train.committee K > 1, a
    committee of K members written to output.dir/committee.pt.

    \b
    Examples:
      reann train --print-defaults > train.yaml
      reann train train.yaml --set train.lr=5e-4 --set output.dir=runs/water
      reann train train.yaml --resume                     # continue a killed run
      reann train train.yaml --set train.committee=4      # a committee of 4 members
      torchrun --nproc_per_node 2 $(which reann) train train.yaml   # data-parallel
    """
    from ..train import defaults_template, load_config, train_committee
    from ..train import train as run_training

    if print_defaults:
        click.echo(defaults_template(), nl=False)
        return
    if config_file is None and not overrides:
        raise click.UsageError("give a CONFIG_FILE (see --print-defaults) or --set options")
    _log_to_terminal()
    try:
        config = load_config(config_file, list(overrides))
        trainer = train_committee if config.train.committee > 1 else run_training
        result = trainer(config, resume=resume, force=force)
    except KeyboardInterrupt:
        raise click.ClickException("interrupted; continue from the last checkpoint with --resume") from None
    if os.environ.get("RANK", "0") == "0":  # one summary line per torchrun job
        click.echo(f"model: {result.model_file}  (median {result.structures_per_second:.2f} structures/s)")


@main.command(name="eval")
@click.argument("model_file", type=click.Path())
@click.argument("data_file", type=click.Path(dir_okay=False))
@click.option("--batch-size", default=16, show_default=True, help="Structures per evaluation batch.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--predictions", type=click.Path(dir_okay=False), help="Write per-frame predictions (extxyz).")
@click.option("--plot", type=click.Path(dir_okay=False), help="Write energy and force parity plots (PNG).")
@click.option("--json", "json_file", type=click.Path(dir_okay=False), help="Write the error table as JSON.")
@click.option(
    "--calibration",
    "calibration_file",
    type=click.Path(dir_okay=False),
    help="Committee: write the spread-vs-error calibration plot (PNG).",
)
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
def evaluate(
    model_file: str,
    data_file: str,
    batch_size: int,
    device: str,
    predictions: str | None,
    plot: str | None,
    json_file: str | None,
    calibration_file: str | None,
    force: bool,
) -> None:
    """Errors of MODEL_FILE (a model or committee file, or a run directory) on the labelled DATA_FILE
    (extxyz).

    Prints energy RMSE/MAE (meV/atom and meV per structure) and force RMSE/MAE (meV/Å, overall and per
    element). For a committee: the errors of its mean, and its spread against those errors with the
    calibration factor alpha to give i-PI's <ffcommittee>.

    \b
    Examples:
      reann eval runs/water/model.pt water/test.extxyz --predictions pred.extxyz --plot parity.png
      reann eval runs/water/committee.pt water/test.extxyz --calibration calibration.png
    """
    import numpy as np

    from ..data.output import check_output
    from ..model import Committee, load_model
    from ..model.runtime import resolve_device
    from ..train import (
        evaluate_structures,
        format_error_table,
        parity_plot,
        read_structures,
        write_metrics_json,
        write_predictions,
    )
    from ..train.calibration import calibration_plot, format_calibration

    path = Path(model_file)
    path = _run_model_file(path) if path.is_dir() else path
    for output in (predictions, plot, json_file, calibration_file):
        if output is not None:
            check_output(output, [path, data_file], force=force)
    model = load_model(path)
    if calibration_file and not isinstance(model, Committee):
        raise click.ClickException(f"--calibration needs a committee; {model_file} is a single model")
    frames = read_structures(data_file)
    evaluation = evaluate_structures(model, frames, batch_size, resolve_device(device))
    if not (np.isfinite(evaluation.energies).all() and all(np.isfinite(f).all() for f in evaluation.forces)):
        raise click.ClickException(
            f"{model_file} predicts non-finite energies or forces on {data_file}: no error table"
        )
    click.echo(format_error_table(evaluation.metrics))
    if evaluation.calibration is not None and evaluation.members is not None:
        click.echo(format_calibration(evaluation.calibration))
        if calibration_file:
            calibration_plot(evaluation.members, frames, calibration_file)
    if predictions:
        write_predictions(frames, evaluation, predictions)
    if plot:
        parity_plot(frames, evaluation, plot)
    if json_file:
        table = dict(evaluation.metrics)
        if evaluation.calibration is not None:
            table["calibration"] = evaluation.calibration
        write_metrics_json(table, json_file)


def _run_model_file(run_dir: Path) -> Path:
    """The model of a run directory: its committee file if it has one, else its model.pt."""
    committee = run_dir / "committee.pt"
    return committee if committee.is_file() else run_dir / "model.pt"


@main.command()
@click.argument("source", type=click.Path(exists=True))
@click.argument("output", type=click.Path(dir_okay=False))
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["reann", "metatomic"]),
    default="reann",
    show_default=True,
    help="reann: our model file (from a checkpoint); metatomic: a TorchScript metatomic model.",
)
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
def export(source: str, output: str, file_format: str, force: bool) -> None:
    """Write the deployable model OUTPUT from SOURCE: a checkpoint (a run directory means its best
    checkpoint; EMA weights) or, for ``--format metatomic``, also a model file.

    The reann format serves the ASE calculator and the i-PI driver; the metatomic format (needs the
    ``metatomic`` extra) runs in i-PI (``<ffdirect>`` with ``pes=metatomic``), ASE (metatomic-ase) and
    LAMMPS (``pair_style metatomic``) without reann-driver.

    \b
    Examples:
      reann export runs/water water.pt
      reann export water.pt water-metatomic.pt --format metatomic
    """
    from ..train import export_model

    if file_format == "metatomic":
        written = _export_metatomic(source, output, force)
    else:
        written = export_model(source, output, force=force)
    click.echo(f"wrote {written}")


def _export_metatomic(source: str, output: str, force: bool) -> Path:
    """The metatomic export of a model file, or of the model a checkpoint holds."""
    try:
        from ..model.metatomic import export_metatomic
    except ImportError as error:
        raise click.ClickException(
            f"--format metatomic needs metatomic-torch (pip install 'reann-driver[metatomic]'): {error}"
        ) from error
    from ..model import REANN, ModelFileError, load_model
    from ..model.files import read_model_file
    from ..train.checkpoints import load_checkpoint, model_from_checkpoint, resolve_checkpoint

    path = Path(source)
    try:
        read_model_file(path)
    except ModelFileError:
        checkpoint = load_checkpoint(resolve_checkpoint(path))
        return export_metatomic(model_from_checkpoint(checkpoint), output, force)
    model = load_model(path)
    if not isinstance(model, REANN):
        raise click.ClickException(f"{source}: a committee file; export its members one by one")
    return export_metatomic(model, output, force)


@main.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
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
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run folder (must not exist; default: runs/<date-time> beside the input).",
)
@click.option("--force", is_flag=True, help="Reuse an existing --output folder, overwriting its files.")
@click.option("--timeout", type=float, default=3600.0, show_default=True, help="Seconds before giving up.")
def pimd(
    source: Path,
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
    """Run the i-PI input SOURCE (a file, or a folder holding input.xml) with reann-driver and MODEL,
    in a new folder; print the speed, the temperature and the quantum kinetic energy, with warnings
    when the run is too short, far from its target temperature or does not conserve energy.

    The <ffsocket> must be a unix or inet socket; its address is replaced by a fresh one.

    \b
    Examples:
      reann pimd examples/ch4_pimd --model examples/ch4_pimd/model.pt --non-periodic
      reann pimd examples/water64_pimd --model water.pt --device cuda --steps 200
    """
    from tqdm import tqdm

    from ..ipi.pimd import RunFailed, run_pimd

    input_xml = source / "input.xml" if source.is_dir() else source
    driver = ["--device", device, "--dtype", dtype] + (["--non-periodic"] if non_periodic else [])
    bar = tqdm(unit="step", desc="PIMD", leave=False, disable=None)

    def progress(step: float, total: int) -> None:
        bar.total = total
        bar.update(step - bar.n)

    try:
        run = run_pimd(
            input_xml,
            model,
            driver,
            steps=steps,
            beads=beads,
            batch_size=batch_size,
            output=output,
            force=force,
            timeout=timeout,
            progress=progress,
        )
    except RunFailed as error:
        click.echo(error.logs, err=True)
        raise
    finally:
        bar.close()
    averages, summary = run.averages, run.summary
    click.echo(f"ran {run.folder} (i-PI log: ipi.log, driver log: driver.log)")
    click.echo(f"steps: {run.total_steps} in {summary.wall_seconds:.1f} s wall time (start-up included)")
    if summary.steps_per_second:
        click.echo(f"speed: {summary.steps_per_second:.1f} steps/s (start-up excluded)")
    temperature, temperature_error = averages.temperature
    kinetic, kinetic_error = averages.kinetic_cv
    click.echo(
        f"temperature: {temperature:.1f} ± {temperature_error:.1f} K (first 20% of the rows discarded)"
    )
    click.echo(
        f"quantum kinetic energy (centroid virial, kinetic_cv): {kinetic:.4f} ± {kinetic_error:.4f} eV "
        f"(classical 3/2 N kT at that temperature: {averages.classical_kinetic:.4f} eV)"
    )
    for warning in averages.warnings:
        click.echo(f"warning: {warning}", err=True)


if __name__ == "__main__":
    main()
