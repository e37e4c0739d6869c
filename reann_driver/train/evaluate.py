"""Evaluate a model on labelled structures: error tables (also as JSON), per-frame predictions, parity
plots, and the test-set evaluation at the end of training."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from ..atomic import atomic_write_bytes
from ..model import REANN, Committee, graph_from_atoms
from ..model.runtime import to_numpy
from .calibration import MemberPredictions, calibration_table, predict_members
from .checkpoints import load_checkpoint, model_from_checkpoint
from .data import frame_has_forces
from .metrics import error_table


@dataclass
class Evaluation:
    """Predictions of a model on frames (eV, eV/Å) and their error table; for a committee, the members'
    predictions and the calibration of their spread (see ``calibration``)."""

    energies: np.ndarray  # [n_structures]
    forces: list[np.ndarray]  # per structure [n_atoms, 3]
    metrics: dict[str, Any]
    members: MemberPredictions | None = None
    calibration: dict[str, Any] | None = None


def predict(
    model: REANN | Committee,
    frames: Sequence[Atoms],
    batch_size: int = 16,
    device: torch.device | str | None = None,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Energies [n_structures] (eV) and forces (per structure [n_atoms, 3], eV/Å) in evaluation mode."""
    model = model.to(device or model.device).eval()
    energies: list[np.ndarray] = []
    forces: list[np.ndarray] = []
    for start in range(0, len(frames), batch_size):
        chunk = frames[start : start + batch_size]
        graph = graph_from_atoms(chunk, model.species, model.cutoff, dtype=model.dtype, device=model.device)
        output = model(graph, forces=True)
        energies.append(to_numpy(output["energy"]))
        flat = to_numpy(output["forces"])
        sizes = np.cumsum([len(a) for a in chunk])[:-1]
        forces.extend(np.split(flat, sizes))
    return np.concatenate(energies), forces


def evaluate_structures(
    model: REANN | Committee,
    frames: Sequence[Atoms],
    batch_size: int = 16,
    device: torch.device | str | None = None,
) -> Evaluation:
    """Predict ``frames`` and compare with their stored energies and forces (a committee: its mean;
    energies only when some frame has no forces)."""
    members = None
    if isinstance(model, Committee):
        members = predict_members(model, frames, batch_size, device)
        energies, forces = members.energies.mean(axis=0), [f.mean(axis=0) for f in members.forces]
    else:
        energies, forces = predict(model, frames, batch_size, device)
    with_forces = all(frame_has_forces(a) for a in frames)
    metrics = error_table(
        energy_ref=np.array([a.get_potential_energy() for a in frames]),
        energy_pred=energies,
        n_atoms=np.array([len(a) for a in frames]),
        forces_ref=np.concatenate([a.get_forces() for a in frames]) if with_forces else None,
        forces_pred=np.concatenate(forces),
        symbols=[s for a in frames for s in a.get_chemical_symbols()],
    )
    calibration = calibration_table(members, frames) if members is not None else None
    return Evaluation(energies, forces, metrics, members, calibration)


def write_metrics_json(metrics: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """An error table as indented JSON, written atomically."""
    text = json.dumps(metrics, indent=2).encode()
    atomic_write_bytes(path, lambda stream: stream.write(text))


def evaluate_checkpoint(
    checkpoint_path: str | os.PathLike[str],
    frames: Sequence[Atoms],
    output: str | os.PathLike[str],
    batch_size: int = 16,
    device: torch.device | str | None = None,
) -> dict[str, Any]:
    """Error table of a checkpoint's model (EMA weights, energy shift) on ``frames``, also written to
    ``output`` as JSON (atomically)."""
    model = model_from_checkpoint(load_checkpoint(checkpoint_path))
    metrics = evaluate_structures(model, frames, batch_size, device).metrics
    write_metrics_json(metrics, output)
    return metrics


def write_predictions(frames: Sequence[Atoms], evaluation: Evaluation, path: str | os.PathLike[str]) -> None:
    """extxyz with the predictions as calculator results and the references in ``REF_energy`` (info)
    and ``REF_forces`` (arrays); written atomically."""
    output = []
    for atoms, energy, forces in zip(frames, evaluation.energies, evaluation.forces):
        copy = atoms.copy()
        copy.info["REF_energy"] = float(atoms.get_potential_energy())
        if frame_has_forces(atoms):
            copy.arrays["REF_forces"] = np.asarray(atoms.get_forces(), dtype=np.float64)
        copy.calc = SinglePointCalculator(copy, energy=float(energy), forces=forces)
        output.append(copy)

    def dump(stream: Any) -> None:
        text = io.StringIO()
        write(text, output, format="extxyz")
        stream.write(text.getvalue().encode())

    atomic_write_bytes(path, dump)


def parity_plot(frames: Sequence[Atoms], evaluation: Evaluation, path: str | os.PathLike[str]) -> None:
    """PNG with energy-per-atom and force-component parity panels (reference vs predicted; the energy
    panel alone for energy-only data)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_atoms = np.array([len(a) for a in frames])
    energy_ref = np.array([a.get_potential_energy() for a in frames]) / n_atoms
    energy_pred = evaluation.energies / n_atoms
    metrics = evaluation.metrics
    panels = [
        (
            energy_ref,
            energy_pred,
            "energy (eV/atom)",
            f"RMSE {metrics['energy_rmse_per_atom_meV']:.2f} meV/atom",
        )
    ]
    if "force_rmse_meV_per_A" in metrics:
        panels.append(
            (
                np.concatenate([a.get_forces() for a in frames]).ravel(),
                np.concatenate(evaluation.forces).ravel(),
                "force component (eV/Å)",
                f"RMSE {metrics['force_rmse_meV_per_A']:.1f} meV/Å",
            )
        )
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.6), constrained_layout=True)
    for axis, (reference, predicted, label, title) in zip(np.atleast_1d(axes), panels):
        low, high = float(min(reference.min(), predicted.min())), float(max(reference.max(), predicted.max()))
        axis.plot([low, high], [low, high], color="0.6", linewidth=1)
        axis.scatter(reference, predicted, s=4, alpha=0.5)
        axis.set_xlabel(f"reference {label}")
        axis.set_ylabel(f"predicted {label}")
        axis.set_title(title)
        axis.locator_params(nbins=5)
        axis.ticklabel_format(useOffset=False)
    target = Path(path)
    atomic_write_bytes(target, lambda stream: figure.savefig(stream, format="png", dpi=120))
    plt.close(figure)
