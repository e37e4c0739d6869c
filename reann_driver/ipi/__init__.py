"""i-PI integration: the ``reann-driver`` socket client, its batch evaluator and the i-PI PES plugin.

The names are imported on first use, so that ``reann-driver --help`` does not wait for torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_PUBLIC = {
    "Address": "reann_driver.ipi.client",
    "Session": "reann_driver.ipi.client",
    "connect": "reann_driver.ipi.client",
    "serve": "reann_driver.ipi.client",
    "BatchEvaluator": "reann_driver.ipi.evaluator",
    "Results": "reann_driver.ipi.evaluator",
    "StructureError": "reann_driver.ipi.evaluator",
    "TemplateError": "reann_driver.ipi.evaluator",
}

__all__ = [
    "Address",
    "BatchEvaluator",
    "Results",
    "Session",
    "StructureError",
    "TemplateError",
    "connect",
    "serve",
]

if TYPE_CHECKING:
    from .client import Address, Session, connect, serve
    from .evaluator import BatchEvaluator, Results, StructureError, TemplateError


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'reann_driver.ipi' has no attribute {name!r}")
