"""Committee spread against actual error: the calibration factor alpha for i-PI and a calibration plot.

i-PI's ``<ffcommittee>`` scales every member's deviation from the mean by ``alpha`` and reports
alpha times the members' standard deviation (ddof=1) of the potential energy as the uncertainty. If
the errors are Gaussian with that standard deviation, the maximum-likelihood alpha on labelled frames
is sqrt(mean(error^2 / spread^2)) (Musil et al., J. Chem. Theory Comput. 15, 906 (2019), without
their small-committee correction). The same is given for force components.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms

from ..atomic import atomic_write_bytes
from ..model import Committee, graph_from_atoms
from ..model.runtime import to_numpy


@dataclass
class MemberPredictions:
    """Every member's predictions: energies [K, n_structures] (eV), forces per structure [K, n_atoms, 3]
    (eV/Å)."""

    energies: np.ndarray
    forces: list[np.ndarray]


def predict_members(
    committee: Committee,
    frames: Sequence[Atoms],
    batch_size: int = 16,
    device: torch.device | str | None = None,
) -> MemberPredictions:
    """Per-member energies and forces of ``frames``, one vectorised committee call per batch."""
    committee = committee.to(device or committee.device).eval()
    energies: list[np.ndarray] = []
    forces: list[np.ndarray] = []
    for start in range(0, len(frames), batch_size):
        chunk = frames[start : start + batch_size]
        graph = graph_from_atoms(
            chunk, committee.species, committee.cutoff, dtype=committee.dtype, device=committee.device
        )
        output = committee(graph, forces=True)
        energies.append(to_numpy(output["committee_energy"]))
        sizes = np.cumsum([len(a) for a in chunk])[:-1]
        forces.extend(np.split(to_numpy(output["committee_forces"]), sizes, axis=1))
    return MemberPredictions(np.concatenate(energies, axis=1), forces)


def _alpha(errors: np.ndarray, spreads: np.ndarray) -> float:
    usable = spreads > 0
    return float(np.sqrt(np.mean((errors[usable] / spreads[usable]) ** 2))) if usable.any() else float("nan")


def spreads_and_errors(
    members: MemberPredictions, frames: Sequence[Atoms]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Committee spread (std, ddof=1) and error of the mean, per structure energy (eV) and per force
    component (eV/Å)."""
    energy_ref = np.array([a.get_potential_energy() for a in frames])
    forces_ref = np.concatenate([a.get_forces() for a in frames]).ravel()
    forces = np.concatenate(members.forces, axis=1).reshape(len(members.energies), -1)
    return {
        "energy": (members.energies.std(axis=0, ddof=1), members.energies.mean(axis=0) - energy_ref),
        "forces": (forces.std(axis=0, ddof=1), forces.mean(axis=0) - forces_ref),
    }


def calibration_table(members: MemberPredictions, frames: Sequence[Atoms]) -> dict[str, Any]:
    """alpha, mean spread, RMSE and the rank correlation of spread and |error|, energies in meV per
    structure and forces in meV/Å; ``alpha`` is the energy's, the value for i-PI's ``<alpha>``."""
    from scipy.stats import spearmanr

    table: dict[str, Any] = {"members": len(members.energies)}
    for name, (spread, error) in spreads_and_errors(members, frames).items():
        unit = "meV" if name == "energy" else "meV_per_A"
        correlation = spearmanr(spread, np.abs(error)).statistic if len(spread) > 2 else float("nan")
        table[name] = {
            "alpha": _alpha(error, spread),
            f"mean_spread_{unit}": 1e3 * float(spread.mean()),
            f"rmse_{unit}": 1e3 * float(np.sqrt(np.mean(error**2))),
            "spearman_spread_vs_abs_error": float(correlation),
        }
    table["alpha"] = table["energy"]["alpha"]
    return table


def format_calibration(table: dict[str, Any]) -> str:
    energy, forces = table["energy"], table["forces"]
    return "\n".join(
        [
            f"committee of {table['members']}: spread (std, ddof=1) vs error of the mean",
            f"  energy  alpha {energy['alpha']:.3g}  mean spread {energy['mean_spread_meV']:.3g} meV  "
            f"RMSE {energy['rmse_meV']:.3g} meV  Spearman {energy['spearman_spread_vs_abs_error']:.2f}",
            f"  forces  alpha {forces['alpha']:.3g}  mean spread {forces['mean_spread_meV_per_A']:.3g} meV/Å"
            f"  RMSE {forces['rmse_meV_per_A']:.3g} meV/Å  Spearman "
            f"{forces['spearman_spread_vs_abs_error']:.2f}",
            f"  for i-PI: <ffcommittee> ... <alpha>{table['alpha']:.4g}</alpha>",
        ]
    )


def calibration_plot(
    members: MemberPredictions, frames: Sequence[Atoms], path: str | os.PathLike[str], n_bins: int = 10
) -> None:
    """PNG: per panel (energy, force components) |error| against spread, and the RMSE of the error in
    bins of equal counts against the RMS spread of the bin, before and after scaling by alpha; a
    calibrated committee lies on the diagonal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4.6), constrained_layout=True)
    for axis, (name, (spread, error)) in zip(axes, spreads_and_errors(members, frames).items()):
        unit = "meV" if name == "energy" else "meV/Å"
        spread, error = 1e3 * spread, 1e3 * error
        alpha = _alpha(error, spread)
        order = np.argsort(spread)
        bins = [b for b in np.array_split(order, min(n_bins, len(order))) if len(b)]
        rms_spread = np.array([np.sqrt(np.mean(spread[b] ** 2)) for b in bins])
        rmse = np.array([np.sqrt(np.mean(error[b] ** 2)) for b in bins])
        axis.scatter(spread, np.abs(error), s=4, alpha=0.3, color="0.5", label="|error| per item")
        axis.plot(rms_spread, rmse, "o-", label="binned RMSE vs RMS spread")
        axis.plot(alpha * rms_spread, rmse, "s-", label=f"spread × alpha ({alpha:.3g})")
        positive = np.concatenate([spread[spread > 0], np.abs(error[error != 0])])
        if positive.size:
            low, high = float(positive.min()), float(positive.max())
            axis.plot([low, high], [low, high], color="0.3", linewidth=1, linestyle="--")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel(f"committee spread ({unit})")
        axis.set_ylabel(f"error of the mean ({unit})")
        axis.set_title("energy per structure" if name == "energy" else "force components")
        axis.legend(fontsize=8)
    atomic_write_bytes(Path(path), lambda stream: figure.savefig(stream, format="png", dpi=120))
    plt.close(figure)
