"""The run directory (``output.dir``): refusal to overwrite, ``config.yaml``, ``train.log``, ``metrics.csv``
and TensorBoard scalars. Only the main process writes; on the others every method is a no-op."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from ..atomic import atomic_write_bytes
from .checkpoints import LAST
from .config import Config
from .errors import TrainingError
from .metrics import MetricsCSV

logger = logging.getLogger("reann_driver.train")

CSV_COLUMNS = (
    "epoch",
    "lr",
    "train_loss",
    "train_energy_rmse_meV_per_atom",
    "train_force_rmse_meV_per_A",
    "val_loss",
    "val_energy_rmse_meV_per_atom",
    "val_force_rmse_meV_per_A",
    "epoch_seconds",
    "structures_per_second",
)


def prepare_output_dir(directory: Path, resume: bool, force: bool) -> None:
    """Refuse to write into a non-empty directory unless resuming or forced."""
    if resume:
        if not (directory / LAST).is_file():
            raise TrainingError(f"--resume: {str(directory / LAST)!r} does not exist")
        return
    if directory.exists() and any(directory.iterdir()) and not force:
        raise TrainingError(
            f"output directory {str(directory)!r} is not empty; use --resume to continue that run "
            "or --force to overwrite its files"
        )
    directory.mkdir(parents=True, exist_ok=True)


class RunOutput:
    """Log, configuration and per-epoch metrics of a run in its (prepared) directory."""

    def __init__(self, config: Config, is_main: bool, resume: bool) -> None:
        self.directory = Path(config.output.dir)
        self.is_main = is_main
        self.csv = MetricsCSV(self.directory / "metrics.csv", CSV_COLUMNS)
        self._log_handler: logging.Handler | None = None
        self.tensorboard: Any = None
        if not is_main:
            return
        try:
            self._log_handler = self._attach_log_file(resume)
            text = yaml.safe_dump(config.to_dict(), sort_keys=False).encode()
            atomic_write_bytes(self.directory / "config.yaml", lambda stream: stream.write(text))
            self.tensorboard = self._open_tensorboard() if config.output.tensorboard else None
        except BaseException:
            self.close()
            raise

    def _attach_log_file(self, resume: bool) -> logging.Handler:
        handler = logging.FileHandler(self.directory / "train.log", mode="a" if resume else "w")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        return handler

    def _open_tensorboard(self) -> Any:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self.log(
                "output.tensorboard: the tensorboard package is not installed "
                "(pip install 'reann-driver[tensorboard]'); the curves are in metrics.csv only"
            )
            return None
        return SummaryWriter(str(self.directory / "tensorboard"))

    def log(self, message: str) -> None:
        if self.is_main:
            logger.info(message)

    def record(self, row: dict[str, Any]) -> None:
        """One epoch's row of ``CSV_COLUMNS``: appended to metrics.csv and (but the epoch) to TensorBoard."""
        if not self.is_main:
            return
        self.csv.append(row)
        if self.tensorboard is not None:
            for key, value in row.items():
                if key != "epoch":
                    self.tensorboard.add_scalar(key, value, row["epoch"])

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
            self.tensorboard = None
        if self._log_handler is not None:
            logger.removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None
