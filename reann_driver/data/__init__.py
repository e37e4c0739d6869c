"""Dataset toolkit: read many formats into one standard form, check, describe, split and generate data.

The standard form is an ``ase.Atoms`` (written as extxyz) with energy (eV), forces (eV/Å) and stress
(eV/Å^3) as single-point calculator results, and ``info`` keys ``source``, ``source_index`` and
``config_type``. The ``reann-data`` command (``reann_driver.data.cli``) is a thin layer over these functions.

The names are imported on first use, so that ``reann-data --help`` does not wait for torch (vesin).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_PUBLIC = {
    "DataError": "errors",
    "DataFormatError": "errors",
    "detect_format": "formats",
    "iter_records": "formats",
    "read_frames": "formats",
    "write_frames": "formats",
    "LabelKeys": "frames",
    "make_frame": "frames",
    "standardize": "frames",
    "Recipe": "recipes",
    "SplitRule": "recipes",
    "load_recipe": "recipes",
    "split_dataset": "split",
    "verify_split": "split",
    "DatasetStatistics": "stats",
    "dataset_statistics": "stats",
    "UNIT_PRESETS": "units",
    "Units": "units",
    "resolve_units": "units",
    "ValidationReport": "validate",
    "validate_frames": "validate",
}

__all__ = [
    "UNIT_PRESETS",
    "DataError",
    "DataFormatError",
    "DatasetStatistics",
    "LabelKeys",
    "Recipe",
    "SplitRule",
    "Units",
    "ValidationReport",
    "dataset_statistics",
    "detect_format",
    "iter_records",
    "load_recipe",
    "make_frame",
    "read_frames",
    "resolve_units",
    "split_dataset",
    "standardize",
    "validate_frames",
    "verify_split",
    "write_frames",
]

if TYPE_CHECKING:
    from .errors import DataError, DataFormatError
    from .formats import detect_format, iter_records, read_frames, write_frames
    from .frames import LabelKeys, make_frame, standardize
    from .recipes import Recipe, SplitRule, load_recipe
    from .split import split_dataset, verify_split
    from .stats import DatasetStatistics, dataset_statistics
    from .units import UNIT_PRESETS, Units, resolve_units
    from .validate import ValidationReport, validate_frames


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
