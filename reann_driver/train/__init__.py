"""Training, evaluation and export of REANN models (``reann train``, ``reann eval``, ``reann export``)."""

from .checkpoints import CheckpointError, load_checkpoint, model_from_checkpoint
from .committee import CommitteeResult, train_committee
from .config import Config, ConfigError, config_from_dict, defaults_template, load_config
from .data import DataError, collate, prepare, read_structures
from .errors import TrainingError
from .evaluate import (
    Evaluation,
    evaluate_checkpoint,
    evaluate_structures,
    parity_plot,
    predict,
    write_metrics_json,
    write_predictions,
)
from .export import export_model
from .metrics import error_table, format_error_table
from .reference import fit_reference_energies
from .trainer import Trainer, TrainingResult, train

__all__ = [
    "CheckpointError",
    "CommitteeResult",
    "Config",
    "ConfigError",
    "DataError",
    "Evaluation",
    "Trainer",
    "TrainingError",
    "TrainingResult",
    "collate",
    "config_from_dict",
    "defaults_template",
    "error_table",
    "evaluate_checkpoint",
    "evaluate_structures",
    "export_model",
    "fit_reference_energies",
    "format_error_table",
    "load_checkpoint",
    "load_config",
    "model_from_checkpoint",
    "parity_plot",
    "predict",
    "prepare",
    "read_structures",
    "train",
    "train_committee",
    "write_metrics_json",
    "write_predictions",
]
