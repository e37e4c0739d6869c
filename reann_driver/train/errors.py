"""The error raised when a training run cannot start or continue."""

from ..errors import UserError


class TrainingError(UserError, RuntimeError):
    """Training cannot start or continue (output directory in use, diverged, inconsistent resume)."""
