"""Error statistics: running sums during training (reducible across processes) and final tables.

Units: energies in eV, forces in eV/Å in, reported as meV/atom, meV and meV/Å.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_write_bytes
from .data import Batch
from .losses import BatchCounts, SquaredErrors, batch_errors

_FIELDS = (
    "energy_per_atom_sq",  # sum_s ((E_s - E_s^ref) / N_s)^2, eV^2
    "energy_sq",  # sum_s (E_s - E_s^ref)^2, eV^2
    "structures",
    "force_sq",  # sum_(i,a) (F_ia - F_ia^ref)^2, (eV/Å)^2
    "force_components",
    "stress_sq",  # sum over structures with stress of the 9 squared component errors, (eV/Å^3)^2
    "stress_components",
)


class ErrorSums:
    """Sums of squared errors over batches; ``all_reduce`` adds those of other processes."""

    def __init__(self, device: torch.device | str | None = None) -> None:
        self.values = torch.zeros(len(_FIELDS), dtype=torch.float64, device=device)

    def add(self, predicted: dict[str, torch.Tensor], batch: Batch) -> None:
        """Add the errors of one batch (predictions detached, differences in float64)."""
        has_stress = "stress" in predicted
        counts = BatchCounts(
            structures=len(batch.energy),
            atoms=len(batch.forces),
            stress_structures=int(batch.has_stress.sum()) if has_stress else 0,
        )
        detached = {key: value.detach() for key, value in predicted.items()}
        errors = batch_errors(detached, batch, counts, torch.float64)
        zero = torch.zeros((), dtype=torch.float64, device=errors.energy.device)
        increment = torch.stack(
            [
                errors.energy_per_atom,
                errors.energy,
                zero + errors.structures,
                errors.force,
                zero + errors.force_components,
                zero if errors.stress is None else errors.stress,
                zero + errors.stress_components,
            ]
        )
        self.values += increment.to(self.values.device)

    def all_reduce(self) -> None:
        """Sum over all processes of a distributed run (no-op otherwise)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(self.values)

    def __getitem__(self, name: str) -> float:
        return float(self.values[_FIELDS.index(name)])

    def rmse(self) -> dict[str, float]:
        """Energy RMSE in meV/atom and meV per structure, force RMSE in meV/Å (NaN when empty)."""
        n = self["structures"]
        nf = self["force_components"]
        return {
            "energy_rmse_per_atom": 1000 * math.sqrt(self["energy_per_atom_sq"] / n) if n else math.nan,
            "energy_rmse": 1000 * math.sqrt(self["energy_sq"] / n) if n else math.nan,
            "force_rmse": 1000 * math.sqrt(self["force_sq"] / nf) if nf else math.nan,
        }

    def squared_errors(self) -> SquaredErrors[float]:
        """The sums as the argument of the training losses (``losses.training_loss``)."""
        return SquaredErrors(
            energy_per_atom=self["energy_per_atom_sq"],
            energy=self["energy_sq"],
            force=self["force_sq"],
            stress=self["stress_sq"],
            structures=self["structures"],
            force_components=self["force_components"],
            stress_components=self["stress_components"],
        )


def error_table(
    energy_ref: np.ndarray,
    energy_pred: np.ndarray,
    n_atoms: np.ndarray,
    forces_ref: np.ndarray | None,
    forces_pred: np.ndarray,
    symbols: Sequence[str],
) -> dict[str, Any]:
    """RMSE and MAE of energies (meV/atom, meV per structure) and forces (meV/Å, overall and per element).

    Args:
        energy_ref, energy_pred: [n_structures] eV.
        n_atoms: [n_structures] atoms per structure.
        forces_ref, forces_pred: [n_atoms_total, 3] eV/Å, structures concatenated; ``forces_ref`` None
            (energy-only data) leaves the force entries out.
        symbols: [n_atoms_total] element of each force row.
    """
    energy_error = np.asarray(energy_pred, dtype=np.float64) - np.asarray(energy_ref, dtype=np.float64)
    per_atom = energy_error / np.asarray(n_atoms, dtype=np.float64)
    elements = np.asarray(symbols)
    table: dict[str, Any] = {
        "structures": len(energy_error),
        "atoms": len(elements),
        "energy_rmse_per_atom_meV": 1000 * float(np.sqrt(np.mean(per_atom**2))),
        "energy_mae_per_atom_meV": 1000 * float(np.mean(np.abs(per_atom))),
        "energy_rmse_meV": 1000 * float(np.sqrt(np.mean(energy_error**2))),
        "energy_mae_meV": 1000 * float(np.mean(np.abs(energy_error))),
    }
    if forces_ref is None:
        return table
    force_error = np.asarray(forces_pred, dtype=np.float64) - np.asarray(forces_ref, dtype=np.float64)
    table["force_rmse_meV_per_A"] = 1000 * float(np.sqrt(np.mean(force_error**2)))
    table["force_mae_meV_per_A"] = 1000 * float(np.mean(np.abs(force_error)))
    table["force_per_element"] = {}
    for element in sorted(set(elements.tolist())):
        selected = force_error[elements == element]
        table["force_per_element"][element] = {
            "rmse_meV_per_A": 1000 * float(np.sqrt(np.mean(selected**2))),
            "mae_meV_per_A": 1000 * float(np.mean(np.abs(selected))),
        }
    return table


def format_error_table(table: dict[str, Any]) -> str:
    """Human-readable lines for ``error_table`` output."""
    t = table

    def pair(label: str, rmse: float, mae: float, unit: str) -> str:
        return f"{label:<8}RMSE {rmse:10.3f} {unit:<10} MAE {mae:10.3f} {unit}"

    lines = [
        f"structures {t['structures']}, atoms {t['atoms']}",
        pair("energy", t["energy_rmse_per_atom_meV"], t["energy_mae_per_atom_meV"], "meV/atom"),
        pair("energy", t["energy_rmse_meV"], t["energy_mae_meV"], "meV/struct"),
    ]
    if "force_rmse_meV_per_A" not in t:
        return "\n".join([*lines, "forces  none in the data (energy-only)"])
    lines.append(pair("forces", t["force_rmse_meV_per_A"], t["force_mae_meV_per_A"], "meV/Å"))
    for element, v in t["force_per_element"].items():
        lines.append(pair(f"  {element}", v["rmse_meV_per_A"], v["mae_meV_per_A"], "meV/Å"))
    return "\n".join(lines)


class MetricsCSV:
    """``metrics.csv`` of a run: one row per epoch, rewritten atomically so that a resume can drop rows."""

    def __init__(self, path: str | os.PathLike[str], columns: Sequence[str]) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        self.rows: list[dict[str, Any]] = []

    def load_until(self, epoch: int) -> None:
        """Keep the rows of epochs <= ``epoch`` from an existing file (for --resume)."""
        if not self.path.is_file():
            return
        with self.path.open(newline="") as stream:
            self.rows = [row for row in csv.DictReader(stream) if int(row["epoch"]) <= epoch]

    def append(self, row: dict[str, Any]) -> None:
        """Add one epoch's row and rewrite the file."""
        self.rows.append(row)

        def write(stream: Any) -> None:
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=self.columns)
            writer.writeheader()
            writer.writerows(self.rows)
            stream.write(text.getvalue().encode())

        atomic_write_bytes(self.path, write)
