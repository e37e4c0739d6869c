"""Training checkpoints: plain dicts of tensors and numbers written with ``torch.save``, read with
``torch.load(weights_only=True)`` (a checkpoint never executes code when loaded)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_write_bytes
from ..errors import UserError
from ..model import REANN
from ..model.files import read_tagged_file

FORMAT = "reann-driver/checkpoint"
FORMAT_VERSION = 1
LAST = "last.pt"
BEST = "best.pt"


class CheckpointError(UserError, ValueError):
    """A file that is not a readable reann-driver training checkpoint."""


def rng_states() -> dict[str, torch.Tensor]:
    """Torch RNG states (CPU and CUDA) as tensors."""
    states = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state()
    return states


def restore_rng_states(states: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(states["cpu"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state(states["cuda"])


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write ``state`` (tensors, numbers, strings, plain containers) atomically."""
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **state}
    atomic_write_bytes(path, lambda stream: torch.save(payload, stream))


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint`` (CPU tensors)."""
    return read_tagged_file(path, "checkpoint", {FORMAT: FORMAT_VERSION}, CheckpointError)


def resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    """A run directory means its best checkpoint; a file is taken as it is."""
    source = Path(path)
    return source / BEST if source.is_dir() else source


def model_from_checkpoint(checkpoint: dict[str, Any], ema: bool = True, energy_shift: bool = True) -> REANN:
    """The model a checkpoint holds, with its EMA weights when present and ``ema`` is true, and with the
    per-element energy shift refitted at the end of training (``energy_shift`` key, eV) when present."""
    model = REANN(**checkpoint["model_config"])
    weights = checkpoint.get("ema_state") if ema else None
    model.load_state_dict(weights if weights is not None else checkpoint["model_state"])
    shift = checkpoint.get("energy_shift") if ema and energy_shift else None
    if shift is not None:
        current = model.atomic_energies.detach().cpu().tolist()
        model.set_atomic_energies([e + shift[s] for e, s in zip(current, model.species)])
    return model.eval()
