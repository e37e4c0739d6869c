"""The error raised when a training run cannot start or continue."""


class TrainingError(RuntimeError):
    """Training cannot start or continue (output directory in use, diverged, inconsistent resume)."""
