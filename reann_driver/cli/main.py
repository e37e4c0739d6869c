"""The ``reann`` command: inspect models; training, evaluation and export live in sub-commands."""

from __future__ import annotations

import json

import click

from .. import __version__
from ..model import load_model


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
