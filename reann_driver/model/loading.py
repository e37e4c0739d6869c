"""Loading model and committee files: the model a file describes, with its weights, in evaluation mode.

Kept apart from ``files`` (the file format), so that the model module can write files without an
import circle: ``reann`` -> ``files``, and ``loading`` -> ``files``, ``reann``, ``committee``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from .committee import Committee
from .files import COMMITTEE_FORMAT, ModelFileError, _upgrade, read_model_file
from .reann import REANN
from .runtime import dtype_from_name


def shapes_problem(config: dict[str, Any], state_dict: dict[str, torch.Tensor]) -> str | None:
    """Whether the weights a config implies match the stored ones, found by building the model on
    torch's meta device (no memory), so that a config claiming huge layers is refused before allocating."""
    with torch.device("meta"):
        expected = {key: value.shape for key, value in REANN(**config).state_dict().items()}
    missing = sorted(expected.keys() - state_dict.keys())
    unexpected = sorted(state_dict.keys() - expected.keys())
    if missing or unexpected:
        return f"weights missing {missing[:3]}, unexpected {unexpected[:3]}"
    for key, shape in expected.items():
        if state_dict[key].shape != shape:
            stored = tuple(state_dict[key].shape)
            return f"weight {key!r} has shape {stored} but the config implies {tuple(shape)}"
    return None


def _build(description: dict[str, Any], path: str | os.PathLike[str]) -> REANN:
    config, state = _upgrade(dict(description["config"]), description["state_dict"])
    try:
        problem = shapes_problem(config, state)
        if problem:
            raise ModelFileError(f"{str(path)!r} holds an inconsistent model: {problem}")
        model = REANN(**config)
        model.load_state_dict(state)
    except (TypeError, ValueError, RuntimeError, KeyError) as error:
        if isinstance(error, ModelFileError):
            raise
        raise ModelFileError(f"{str(path)!r} holds an inconsistent model: {error}") from None
    model.metadata = description.get("metadata", {})
    return model


def load_model(
    path: str | os.PathLike[str],
    device: torch.device | str | None = None,
    dtype: torch.dtype | str | None = None,
) -> REANN | Committee:
    """Build the model (or committee) a file describes and load its weights (in evaluation mode).

    Args:
        path: a model file, or a committee file (then a ``Committee`` is returned).
        device: where to put it (default: CPU).
        dtype: override the stored float32/float64 (e.g. float64 inference of a float32-trained model).
    """
    payload = read_model_file(path)
    if payload["format"] == COMMITTEE_FORMAT:
        members = [_build(member, path) for member in payload["members"]]
        try:
            model: REANN | Committee = Committee(members)
        except ValueError as error:
            raise ModelFileError(f"{str(path)!r}: {error}") from None
    else:
        model = _build(payload, path)
    model.metadata = payload.get("metadata", {})
    if dtype is not None:
        members = [model.member(k) for k in range(len(model))] if isinstance(model, Committee) else [model]
        for member in members:
            member.to(dtype_from_name(dtype))
            member.config["dtype"] = str(dtype_from_name(dtype)).removeprefix("torch.")
    return model.to(device or "cpu").eval()


def load_committee(
    paths: Sequence[str | os.PathLike[str]],
    device: torch.device | str | None = None,
    dtype: torch.dtype | str | None = None,
) -> REANN | Committee:
    """One model or committee file, or several model files as one committee (same species and cutoff)."""
    if len(paths) == 1:
        return load_model(paths[0], device, dtype)
    members = []
    for path in paths:
        model = load_model(path, device, dtype)
        if isinstance(model, Committee):
            raise ModelFileError(f"{str(path)!r} is a committee file; give it alone or give model files")
        members.append(model)
    try:
        return Committee(members, names=[repr(str(p)) for p in paths])
    except ValueError as error:
        raise ModelFileError(str(error)) from None
