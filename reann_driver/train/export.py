"""Turn a training checkpoint into the deployable model file (EMA weights, training metadata)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..data.output import check_output
from .checkpoints import load_checkpoint, model_from_checkpoint, resolve_checkpoint


def training_metadata(checkpoint: dict[str, Any], source: Path) -> dict[str, Any]:
    """JSON-able description of how the model was trained."""
    config = checkpoint.get("config", {})
    return {
        "training": {
            "checkpoint": str(source),
            "epochs": int(checkpoint["epoch"]),
            "best_val_loss": float(checkpoint["best_val_loss"]),
            "reference_energies": checkpoint.get("reference_energies"),
            "data": config.get("data"),
            "train": config.get("train"),
            "ema_weights": checkpoint.get("ema_state") is not None,
            "energy_shift": checkpoint.get("energy_shift"),
        }
    }


def export_model(
    checkpoint_or_run_dir: str | os.PathLike[str], output: str | os.PathLike[str], force: bool = False
) -> Path:
    """Write the model held by a checkpoint (a run directory means its ``best.pt``) to ``output``."""
    target = Path(output)
    source = resolve_checkpoint(checkpoint_or_run_dir)
    check_output(target, [source], force=force)
    checkpoint = load_checkpoint(source)
    model = model_from_checkpoint(checkpoint, ema=True)
    model.save(str(target), metadata=training_metadata(checkpoint, source))
    return target
