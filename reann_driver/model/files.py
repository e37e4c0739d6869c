"""Model files: one ``torch.save`` file holding the weights and a JSON-able hyper-parameter description;
committee files: one such description per member in one file.

Loading uses ``torch.load(weights_only=True)``: a model file can hold only tensors and plain containers,
so loading one never runs code. Before any model is built, the config must be finite and within bounds,
the weights finite, and their shapes those the config implies (checked on torch's meta device), so a
small file cannot make the loader allocate gigabytes.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from ase.data import atomic_numbers

from ..atomic import atomic_write_bytes
from ..errors import UserError

if TYPE_CHECKING:  # annotations only: this module imports neither the model nor the committee
    from .committee import Committee

FORMAT = "reann-driver/model"
FORMAT_VERSION = 1
COMMITTEE_FORMAT = "reann-driver/committee"
COMMITTEE_FORMAT_VERSION = 1


class SavableModel(Protocol):
    """What a model file stores: the hyper-parameters that rebuild the model, and its weights."""

    config: dict[str, Any]

    def state_dict(self) -> dict[str, Any]: ...


class ModelFileError(UserError, ValueError):
    """A file that is not a readable reann-driver model (missing, truncated, foreign or corrupt)."""


def _description(model: SavableModel, metadata: dict[str, Any] | None) -> dict[str, Any]:
    """Hyper-parameters, JSON metadata and CPU weights of one model."""
    return {
        "config": json.loads(json.dumps(model.config)),
        "metadata": json.loads(json.dumps(metadata or {})),
        "state_dict": {key: value.detach().cpu().clone() for key, value in model.state_dict().items()},
    }


def save_model(
    model: SavableModel, path: str | os.PathLike[str], metadata: dict[str, Any] | None = None
) -> None:
    """Write ``model`` to ``path`` atomically. ``metadata`` must be JSON-serialisable (e.g. training info)."""
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **_description(model, metadata)}
    atomic_write_bytes(path, lambda stream: torch.save(payload, stream))


def save_committee(
    committee: Committee, path: str | os.PathLike[str], metadata: dict[str, Any] | None = None
) -> None:
    """Write a committee (every member with its own metadata, plus the committee's) to one file."""
    payload = {
        "format": COMMITTEE_FORMAT,
        "format_version": COMMITTEE_FORMAT_VERSION,
        "metadata": json.loads(json.dumps(metadata if metadata is not None else committee.metadata)),
        "members": [
            _description(committee.member(k), committee.member(k).metadata) for k in range(len(committee))
        ],
    }
    atomic_write_bytes(path, lambda stream: torch.save(payload, stream))


def read_tagged_file(
    path: str | os.PathLike[str], kind: str, versions: dict[str, int], error: type[Exception]
) -> dict[str, Any]:
    """Load a ``torch.save`` dict tagged with ``format``/``format_version`` safely (``weights_only=True``).

    ``versions`` maps the accepted formats to the version this code reads; ``kind`` names the file in
    messages ("model file", "checkpoint"); ``error`` is raised for a missing, truncated, corrupt, foreign
    or newer file.
    """
    source = Path(path)
    if not source.is_file():
        raise error(f"{kind} {str(source)!r} does not exist")
    try:
        payload = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as problem:  # any unpickling failure means "not such a file"
        text = str(problem)
        if "Weights only load failed" in text:  # refers to code: say so, not torch's advice to run it
            detail = next((line for line in text.splitlines() if "Unpickler error" in line), "")
            detail = detail.split("error:", 1)[-1].strip()
            raise error(
                f"{str(source)!r} is not a reann-driver {kind}: it refers to Python objects that a "
                f"{kind} never holds ({detail[:120]}); it was not loaded"
            ) from None
        first_line = text.strip().splitlines()[0][:200] if text.strip() else type(problem).__name__
        raise error(
            f"{str(source)!r} is not a reann-driver {kind} (truncated, corrupt or foreign): {first_line}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") not in versions:
        raise error(f"{str(source)!r} is a torch file but not a reann-driver {kind}")
    version = versions[payload["format"]]
    if payload.get("format_version") != version:
        raise error(
            f"{str(source)!r} has {kind} format version {payload.get('format_version')}, "
            f"this reann-driver reads version {version}"
        )
    return payload


#: Bounds on the hyper-parameters that set the cost of building a model (not its size, which is
#: checked against the stored weights): larger values would make construction itself hang.
CONFIG_BOUNDS = {"n_radial": 4096, "l_max": 12, "iterations": 64, "n_orbitals": 1 << 20}
#: Longest list in a config (species, layer widths).
MAX_CONFIG_LIST = 256


def read_model_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked contents of a model or committee file without building a model: ``format``,
    ``metadata`` and, for a model, ``config`` and ``state_dict``; for a committee, ``members``, a list
    of such descriptions. Every config is finite and within bounds, every weight a finite tensor."""
    payload = read_tagged_file(
        path,
        "model file",
        {FORMAT: FORMAT_VERSION, COMMITTEE_FORMAT: COMMITTEE_FORMAT_VERSION},
        ModelFileError,
    )
    members = payload.get("members") if payload["format"] == COMMITTEE_FORMAT else [payload]
    if not isinstance(members, list) or not members:
        raise ModelFileError(f"{str(path)!r} lacks its 'members' section")
    for member in members:
        for key in ("config", "state_dict"):
            if not isinstance(member, dict) or not isinstance(member.get(key), dict):
                raise ModelFileError(f"{str(path)!r} lacks its {key!r} section")
        problem = config_problem(member["config"]) or weights_problem(member["state_dict"])
        if problem:
            raise ModelFileError(f"{str(path)!r} holds an unusable model: {problem}")
        if not isinstance(member.get("metadata", {}), dict):
            raise ModelFileError(f"{str(path)!r} has a malformed 'metadata' section")
    return payload


def config_problem(config: dict[str, Any]) -> str | None:
    """Why a model config cannot be built (non-finite numbers, values beyond ``CONFIG_BOUNDS``), or None."""

    def numbers(value: Any) -> list[Any]:
        if isinstance(value, dict):
            return [n for item in value.values() for n in numbers(item)]
        if isinstance(value, (list, tuple)):
            return [n for item in value for n in numbers(item)]
        return [value] if isinstance(value, (int, float)) else []

    for key, value in config.items():
        if any(not math.isfinite(number) for number in numbers(value)):
            return f"config {key!r} is not finite ({value!r})"
        if isinstance(value, (list, tuple, dict)) and len(value) > MAX_CONFIG_LIST:
            return f"config {key!r} has {len(value)} entries (at most {MAX_CONFIG_LIST})"
    species = config.get("species")
    if not (isinstance(species, list) and all(symbol in atomic_numbers for symbol in species)):
        return f"config 'species' must be a list of chemical symbols, got {species!r}"
    cutoff = config.get("cutoff")
    if cutoff is not None and not (isinstance(cutoff, (int, float)) and cutoff > 0):
        return f"config 'cutoff' must be a positive number of Å, got {cutoff!r}"
    for key, bound in CONFIG_BOUNDS.items():
        value = config.get(key)
        if value is not None and not (isinstance(value, int) and 0 <= value <= bound):
            return f"config {key!r} must be an integer in 0..{bound}, got {value!r}"
    return None


def weights_problem(state_dict: dict[str, Any]) -> str | None:
    """Why stored weights cannot be used (not tensors, not finite), or None."""
    for name, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            return f"weight {name!r} is a {type(value).__name__}, not a tensor"
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return f"weight {name!r} holds NaN or infinite values"
    return None


# Hyper-parameters that files written before they existed (reann-driver 0.1) lack, with the value that
# reproduces those models exactly.
LEGACY_CONFIG = {
    "network_layout": "pre_norm",
    "shared_mixing": True,
    "radial_init": "narrow",
    "initial_coefficient": 1.0,
}
# Added after 0.1, with the values that files written before them used.
LATER_DEFAULTS = {"mixing_init": "normal", "pair_repulsion": "none"}


def _upgrade(config: dict[str, Any], state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Config and weights of a 0.1 file in the current layout (one shared mixing set, [1, L, k, m])."""
    config = {**LEGACY_CONFIG, **config} if "network_layout" not in config else config
    config = {**LATER_DEFAULTS, **config}
    mixing = state.get("density.mixing")
    if isinstance(mixing, torch.Tensor) and mixing.dim() == 3:
        state = {**state, "density.mixing": mixing.unsqueeze(0)}
    return config, state
