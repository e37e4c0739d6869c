"""The energy-shift refit at the end of training: a per-element shift of the best model's reference
energies that minimises its squared training-set energy residuals (the same least squares as the
initial reference energies in ``reference.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .checkpoints import load_checkpoint, model_from_checkpoint, save_checkpoint
from .data import LabelledStructure, collate
from .reference import per_element_fit


def training_residuals(
    model: torch.nn.Module,
    structures: Sequence[LabelledStructure],
    n_species: int,
    batch_size: int,
    dtype: torch.dtype,
    device: torch.device,
) -> tuple[np.ndarray, np.ndarray]:
    """Reference minus predicted energy per structure (eV) and the compositions
    [n_structures, n_species] (atom counts)."""
    model.eval()
    residuals, counts = [], []
    for start in range(0, len(structures), batch_size):
        chunk = structures[start : start + batch_size]
        batch = collate(chunk, dtype, device)
        with torch.no_grad():
            energy = model(batch.graph, forces=False)["energy"]
        residuals.append((batch.energy - energy).double().cpu().numpy())
        counts += [torch.bincount(s.graph.species, minlength=n_species).numpy() for s in chunk]
    return np.concatenate(residuals), np.array(counts, dtype=np.float64)


def refit_energy_shift(
    checkpoint_path: Path,
    structures: Sequence[LabelledStructure],
    species: Sequence[str],
    batch_size: int,
    dtype: torch.dtype,
    device: torch.device,
) -> str:
    """Store in the checkpoint (``energy_shift`` key, eV per element) the per-element shift minimising
    the training energy residuals of its EMA model; returns one sentence for the log."""
    checkpoint = load_checkpoint(checkpoint_path)
    model = model_from_checkpoint(checkpoint, energy_shift=False).to(device)
    residuals, counts = training_residuals(model, structures, len(species), batch_size, dtype, device)
    shift, _ = per_element_fit(counts, residuals)
    after = residuals - counts @ shift
    n_atoms = counts.sum(axis=1)
    checkpoint["energy_shift"] = {s: float(v) for s, v in zip(species, shift)}
    save_checkpoint(checkpoint_path, checkpoint)
    return (
        "energy shift refitted on the training set: "
        + ", ".join(f"{s} {1000 * v:+.3f} meV" for s, v in zip(species, shift))
        + f"; training energy RMSE {1000 * np.sqrt(np.mean((residuals / n_atoms) ** 2)):.3f} -> "
        f"{1000 * np.sqrt(np.mean((after / n_atoms) ** 2)):.3f} meV/atom"
    )
