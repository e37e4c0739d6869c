"""Where and in which precision a model runs: device and dtype names, and model outputs back to NumPy."""

from __future__ import annotations

import copy
import os
import shutil
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
from torch import nn

from ..errors import UserError

if TYPE_CHECKING:  # reann.py imports this module
    from .reann import REANN

M = TypeVar("M", bound=nn.Module)
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def dtype_from_name(dtype: torch.dtype | str) -> torch.dtype:
    """``torch.float32``/``torch.float64`` or their names."""
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        return dtype
    try:
        return DTYPES[str(dtype).removeprefix("torch.")]
    except KeyError:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from None


class DeviceError(UserError, RuntimeError):
    """A device that was asked for but is not available (e.g. CUDA on a machine without a GPU)."""


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` means CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:  # torch's message lists the device types it knows
        raise DeviceError(f"device {str(device)!r}: {error}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {str(device)!r} was asked for but torch sees no CUDA device")
    return resolved


def inference_copy(model: M, device: torch.device, dtype: torch.dtype) -> M:
    """A copy of ``model`` for inference on ``device`` in ``dtype``: evaluation mode and parameters that
    need no gradient, so that a forces pass keeps nothing for weight gradients (the model passed in is
    left as it is)."""
    return copy.deepcopy(model).to(device=device, dtype=dtype).eval().requires_grad_(False)


def scripted_inference(model: nn.Module) -> Callable[..., dict[str, torch.Tensor]]:
    """The TorchScript of ``model`` (a ``REANN`` in evaluation mode; arguments as its ``forward``), whose
    results are those of the eager model (tested).

    TorchScript runs the same operations without Python's per-module and per-operation dispatch, which is
    most of the cost of a small system on the CPU. Scripting takes about 0.3 s.
    """
    with warnings.catch_warnings():  # torch.jit's deprecation notice (metatomic builds on it too), and
        warnings.simplefilter("ignore")  # REANN.metadata: a plain-Python attribute that the script ignores
        return torch.jit.script(model)  # type: ignore[no-any-return]


class CompileError(UserError, ValueError):
    """``torch.compile`` was asked for where it cannot work (no C++ compiler for a CPU model, a committee)."""


def compiled(model: REANN, device: torch.device) -> Callable[..., Any]:
    """``torch.compile(model)`` (TorchInductor) for inference with kept neighbour slots.

    The first call compiles (about 20 s on one idle CPU core for the anchor model), and so does the first
    call with new shapes (a neighbour capacity that grew); after a second compilation the changing
    sizes are treated as dynamic. The force pass (``torch.autograd.grad``) runs between two compiled
    graphs, whose backward AOTAutograd compiles too: the compiled model takes autograd's force pass, not
    the hand-written ``REANN.adjoint_pass`` (whose inner ``autograd.grad`` calls would break the graph).
    On CPU TorchInductor writes C++, so a C++ compiler must be on PATH (``CXX``, ``g++``, ``c++`` or
    ``clang++``)."""
    if device.type == "cpu":
        compilers = [os.environ.get("CXX", ""), "g++", "c++", "clang++"]
        if not any(name and shutil.which(name) for name in compilers):
            raise CompileError(
                "torch.compile on the CPU needs a C++ compiler (set CXX or install g++); "
                "run without compiling instead"
            )
    traced = copy.copy(model)  # shares the parameters; the caller's model keeps its force pass
    traced.adjoint_forces = False
    return torch.compile(traced)


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A model output as a float64 NumPy array on the host (whatever the model's device and dtype)."""
    return tensor.detach().to(device="cpu", dtype=torch.float64).numpy()
