"""Training objectives on energies, forces and stress.

Both losses are written as sums over structures and atoms divided by *global* counts (the whole
batch across all processes), so that the losses of the shards of a distributed batch add up to the
loss of the undivided batch and summed gradients equal the single-process gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .data import Batch


@dataclass(frozen=True)
class BatchCounts:
    """Sizes of the global batch that normalise the loss terms."""

    structures: int
    atoms: int
    stress_structures: int


def weighted_loss(
    predicted: dict[str, torch.Tensor],
    batch: Batch,
    counts: BatchCounts,
    energy_weight: float,
    force_weight: float,
    stress_weight: float,
) -> torch.Tensor:
    """w_E mean_s((E_s - E_s^ref) / N_s)^2 + w_F mean_(i,a)(F_ia - F_ia^ref)^2 + w_S mean(dS^2) (eV, Å).

    Without ``predicted["forces"]`` (energy-only data) the force term is left out."""
    energy_error = (predicted["energy"] - batch.energy) / batch.n_atoms
    loss = energy_weight * energy_error.square().sum() / counts.structures
    if "forces" in predicted:
        loss = loss + force_weight * (predicted["forces"] - batch.forces).square().sum() / (3 * counts.atoms)
    if stress_weight and counts.stress_structures and "stress" in predicted:
        stress_error = (predicted["stress"] - batch.stress)[batch.has_stress]
        loss = loss + stress_weight * stress_error.square().sum() / (9 * counts.stress_structures)
    return loss


def reference_force_weight(
    lr: float, initial_lr: float, min_lr: float, init_f: float, final_f: float
) -> float:
    """Original REANN force weight: linear in the learning rate, init_f at initial_lr, final_f at min_lr."""
    if initial_lr == min_lr:
        return final_f
    return init_f + (final_f - init_f) * (lr - initial_lr) / (min_lr - initial_lr)


def reference_loss(
    predicted: dict[str, torch.Tensor], batch: Batch, counts: BatchCounts, force_weight: float
) -> torch.Tensor:
    """Original REANN objective: sum of squared total-energy errors + f * sum of squared force errors,
    divided by the number of structures in the global batch (eV^2); energies only without
    ``predicted["forces"]``."""
    loss = (predicted["energy"] - batch.energy).square().sum()
    if "forces" in predicted:
        loss = loss + force_weight * (predicted["forces"] - batch.forces).square().sum()
    return loss / counts.structures
