"""reann-driver: REANN machine-learning potentials for i-PI path-integral MD and ASE.

The public names are imported on first use, so that commands which do not need torch (``reann-data``)
start quickly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_PUBLIC = {
    "REANN": "reann_driver.model",
    "Committee": "reann_driver.model",
    "load_committee": "reann_driver.model",
    "ModelFileError": "reann_driver.model",
    "load_model": "reann_driver.model",
    "REANNCalculator": "reann_driver.calculator",
}

__all__ = [
    "REANN",
    "Committee",
    "ModelFileError",
    "REANNCalculator",
    "__version__",
    "load_committee",
    "load_model",
]

if TYPE_CHECKING:
    from .calculator import REANNCalculator
    from .model import REANN, Committee, ModelFileError, load_committee, load_model


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'reann_driver' has no attribute {name!r}")
