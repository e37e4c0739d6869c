"""Model files: one ``torch.save`` file holding the weights and a JSON-able hyper-parameter description.

Loading uses ``torch.load(weights_only=True)``: a model file can hold only tensors and plain containers,
so loading one never runs code.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .reann import REANN, dtype_from_name

FORMAT = "reann-driver/model"
FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A file that is not a readable reann-driver model (missing, truncated, foreign or corrupt)."""


def atomic_write_bytes(path: str | os.PathLike[str], write: Any) -> None:
    """Call ``write(file_object)`` on a temporary file beside ``path`` and rename it into place."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_model(model: REANN, path: str | os.PathLike[str], metadata: dict[str, Any] | None = None) -> None:
    """Write ``model`` to ``path`` atomically. ``metadata`` must be JSON-serialisable (e.g. training info)."""
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": json.loads(json.dumps(model.config)),
        "metadata": json.loads(json.dumps(metadata or {})),
        "state_dict": {key: value.detach().cpu().clone() for key, value in model.state_dict().items()},
    }
    atomic_write_bytes(path, lambda stream: torch.save(payload, stream))


def read_model_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked contents of a model file (config, metadata, state_dict) without building the model."""
    source = Path(path)
    if not source.is_file():
        raise ModelFileError(f"model file {str(source)!r} does not exist")
    try:
        payload = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ModelFileError(
            f"{str(source)!r} is not a reann-driver model file (truncated, corrupt or foreign): {error}"
        ) from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"{str(source)!r} is a torch file but not a reann-driver model file")
    if payload.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{str(source)!r} has model format version {payload.get('format_version')}, "
            f"this reann-driver reads version {FORMAT_VERSION}"
        )
    for key in ("config", "state_dict"):
        if not isinstance(payload.get(key), dict):
            raise ModelFileError(f"{str(source)!r} lacks its {key!r} section")
    return payload


def load_model(
    path: str | os.PathLike[str],
    device: torch.device | str | None = None,
    dtype: torch.dtype | str | None = None,
) -> REANN:
    """Build the model a file describes and load its weights (in evaluation mode).

    Args:
        path: the model file.
        device: where to put it (default: CPU).
        dtype: override the stored float32/float64 (e.g. float64 inference of a float32-trained model).
    """
    payload = read_model_file(path)
    config = dict(payload["config"])
    try:
        model = REANN(**config)
        model.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, RuntimeError) as error:
        raise ModelFileError(f"{str(path)!r} holds an inconsistent model: {error}") from error
    model.metadata = payload.get("metadata", {})
    if dtype is not None:
        model.to(dtype_from_name(dtype))
        model.config["dtype"] = str(dtype_from_name(dtype)).removeprefix("torch.")
    return model.to(device or "cpu").eval()
