"""reann-driver: REANN machine-learning potentials for i-PI path-integral MD and ASE."""

from .calculator import REANNCalculator
from .model import REANN, ModelFileError, load_model

__version__ = "0.1.0"

__all__ = ["REANN", "ModelFileError", "REANNCalculator", "__version__", "load_model"]
