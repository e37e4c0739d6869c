"""i-PI integration: the ``reann-driver`` socket client, its batch evaluator and the i-PI PES plugin."""

from .client import Address, Session, connect, serve
from .evaluator import BatchEvaluator, Results, StructureError, TemplateError

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
