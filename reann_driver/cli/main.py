"""The ``reann`` command: train, evaluate, export and inspect models (logic in ``reann_driver.train``)."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click

from .. import __version__
from ..model import ModelFileError, load_model

_USER_ERRORS: tuple[type[Exception], ...] = (ValueError, FileExistsError, FileNotFoundError, RuntimeError)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reann")
def main() -> None:
    """REANN potentials: train, evaluate, export and inspect models."""


@main.command()
@click.argument("model_file", type=click.Path(dir_okay=False))
def info(model_file: str) -> None:
    """Print the hyper-parameters, species and size of MODEL_FILE.

    Example: reann info water.pt
    """
    model = load_model(model_file)
    n_parameters = sum(p.numel() for p in model.parameters())
    click.echo(json.dumps({**model.config, "parameters": n_parameters, "metadata": model.metadata}, indent=2))


def _log_to_terminal() -> None:
    logger = logging.getLogger("reann_driver.train")
    if not any(getattr(h, "_reann_cli", False) for h in logger.handlers):
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
    """Train a REANN model as described by CONFIG_FILE (YAML or TOML).

    \b
    Examples:
      reann train --print-defaults > train.yaml
      reann train train.yaml --set train.lr=5e-4 --set output.dir=runs/water
      reann train train.yaml --resume                     # continue a killed run
      torchrun --nproc_per_node 2 $(which reann) train train.yaml   # data-parallel
    """
    from ..train import defaults_template, load_config
    from ..train import train as run_training

    if print_defaults:
        click.echo(defaults_template(), nl=False)
        return
    if config_file is None and not overrides:
        raise click.UsageError("give a CONFIG_FILE (see --print-defaults) or --set options")
    _log_to_terminal()
    try:
        config = load_config(config_file, list(overrides))
        result = run_training(config, resume=resume, force=force)
    except _USER_ERRORS as error:
        raise click.ClickException(str(error)) from error
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
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
def evaluate(
    model_file: str,
    data_file: str,
    batch_size: int,
    device: str,
    predictions: str | None,
    plot: str | None,
    json_file: str | None,
    force: bool,
) -> None:
    """Errors of MODEL_FILE (a model file or a run directory) on the labelled DATA_FILE (extxyz).

    Prints energy RMSE/MAE (meV/atom and meV per structure) and force RMSE/MAE (meV/Å, overall and per
    element).

    \b
    Example:
      reann eval runs/water/model.pt water/test.extxyz --predictions pred.extxyz --plot parity.png
    """
    from ..model.runtime import resolve_device
    from ..train import (
        evaluate_structures,
        format_error_table,
        parity_plot,
        read_structures,
        write_metrics_json,
        write_predictions,
    )

    outputs = [p for p in (predictions, plot, json_file) if p is not None]
    existing = [p for p in outputs if Path(p).exists()]
    if existing and not force:
        raise click.ClickException(f"{', '.join(existing)} exist(s); use --force to overwrite")
    path = Path(model_file)
    try:
        model = load_model(path / "model.pt" if path.is_dir() else path)
        frames = read_structures(data_file)
        evaluation = evaluate_structures(model, frames, batch_size, resolve_device(device))
    except _USER_ERRORS as error:  # ModelFileError and DataError are ValueErrors
        raise click.ClickException(str(error)) from error
    click.echo(format_error_table(evaluation.metrics))
    if predictions:
        write_predictions(frames, evaluation, predictions)
    if plot:
        parity_plot(frames, evaluation, plot)
    if json_file:
        write_metrics_json(evaluation.metrics, json_file)


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

    try:
        if file_format == "metatomic":
            written = _export_metatomic(source, output, force)
        else:
            written = export_model(source, output, force=force)
    except _USER_ERRORS as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"wrote {written}")


def _export_metatomic(source: str, output: str, force: bool) -> Path:
    """The metatomic export of a model file, or of the model a checkpoint holds."""
    try:
        from ..model.metatomic import export_metatomic
    except ImportError as error:
        raise click.ClickException(
            f"--format metatomic needs metatomic-torch (pip install 'reann-driver[metatomic]'): {error}"
        ) from error
    from ..model.files import read_model_file
    from ..train.checkpoints import load_checkpoint, model_from_checkpoint, resolve_checkpoint

    path = Path(source)
    try:
        read_model_file(path)
    except ModelFileError:
        return export_metatomic(
            model_from_checkpoint(load_checkpoint(resolve_checkpoint(path))), output, force
        )
    return export_metatomic(load_model(path), output, force)


if __name__ == "__main__":
    main()
