"""Model files: one ``torch.save`` file holding the weights and a JSON-able hyper-parameter description.

Loading uses ``torch.load(weights_only=True)``: a model file can hold only tensors and plain containers,
so loading one never runs code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Protocol

import torch

from ..atomic import atomic_write_bytes
from ..errors import UserError

FORMAT = "reann-driver/model"
FORMAT_VERSION = 1


class SavableModel(Protocol):
    """What a model file stores: the hyper-parameters that rebuild the model, and its weights."""

    config: dict[str, Any]

    def state_dict(self) -> dict[str, Any]: ...


class ModelFileError(UserError, ValueError):
    """A file that is not a readable reann-driver model (missing, truncated, foreign or corrupt)."""


def save_model(
    model: SavableModel, path: str | os.PathLike[str], metadata: dict[str, Any] | None = None
) -> None:
    """Write ``model`` to ``path`` atomically. ``metadata`` must be JSON-serialisable (e.g. training info)."""
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": json.loads(json.dumps(model.config)),
        "metadata": json.loads(json.dumps(metadata or {})),
        "state_dict": {key: value.detach().cpu().clone() for key, value in model.state_dict().items()},
    }
    atomic_write_bytes(path, lambda stream: torch.save(payload, stream))


def read_tagged_file(
    path: str | os.PathLike[str], kind: str, file_format: str, version: int, error: type[Exception]
) -> dict[str, Any]:
    """Load a ``torch.save`` dict tagged with ``format``/``format_version`` safely (``weights_only=True``).

    ``kind`` names the file in messages ("model file", "checkpoint"); ``error`` is raised for a missing,
    truncated, corrupt, foreign or newer file.
    """
    source = Path(path)
    if not source.is_file():
        raise error(f"{kind} {str(source)!r} does not exist")
    try:
        payload = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as problem:  # any unpickling failure means "not such a file"
        # torch's own message runs over many lines (and suggests weights_only=False): name its type only
        raise error(
            f"{str(source)!r} is not a reann-driver {kind} (truncated, corrupt or foreign; torch.load "
            f"raised {type(problem).__name__}, --debug shows it)"
        ) from problem
    if not isinstance(payload, dict) or payload.get("format") != file_format:
        raise error(f"{str(source)!r} is a torch file but not a reann-driver {kind}")
    if payload.get("format_version") != version:
        raise error(
            f"{str(source)!r} has {kind} format version {payload.get('format_version')}, "
            f"this reann-driver reads version {version}"
        )
    return payload


def read_model_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked contents of a model file (config, metadata, state_dict) without building the model."""
    payload = read_tagged_file(path, "model file", FORMAT, FORMAT_VERSION, ModelFileError)
    for key in ("config", "state_dict"):
        if not isinstance(payload.get(key), dict):
            raise ModelFileError(f"{str(path)!r} lacks its {key!r} section")
    return payload


# Hyper-parameters that files written before they existed (reann-driver 0.1) lack, with the value that
# reproduces those models exactly.
LEGACY_CONFIG = {
    "network_layout": "pre_norm",
    "shared_mixing": True,
    "radial_init": "narrow",
    "initial_coefficient": 1.0,
}


def _upgrade(config: dict[str, Any], state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Config and weights of a 0.1 file in the current layout (one shared mixing set, [1, L, k, m])."""
    config = {**LEGACY_CONFIG, **config} if "network_layout" not in config else config
    mixing = state.get("density.mixing")
    if isinstance(mixing, torch.Tensor) and mixing.dim() == 3:
        state = {**state, "density.mixing": mixing.unsqueeze(0)}
    return config, state


def read_model_parts(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Config, weights and metadata of a model file, in the current layout (0.1 files upgraded)."""
    payload = read_model_file(path)
    config, state = _upgrade(dict(payload["config"]), payload["state_dict"])
    return config, state, payload.get("metadata", {})
