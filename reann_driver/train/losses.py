"""Training objectives on energies, forces and stress, defined once on sums of squared errors.

A loss is a function of ``SquaredErrors``: sums of squared errors and the numbers of terms that
normalise them. For a training step the sums are those of one process's shard and the numbers those
of the *global* batch (the whole batch across all processes), so that the losses of the shards of a
distributed batch add up to the loss of the undivided batch and summed gradients equal the
single-process gradient. For the epoch losses in the metrics the sums and numbers are accumulated
over all batches (``metrics.ErrorSums``); both go through the same ``training_loss``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import torch

from .config import TrainConfig
from .data import Batch

T = TypeVar("T", torch.Tensor, float)


@dataclass(frozen=True)
class BatchCounts:
    """Sizes of the global batch that normalise the loss terms."""

    structures: int
    atoms: int
    stress_structures: int


@dataclass(frozen=True)
class SquaredErrors(Generic[T]):
    """Sums of squared errors (eV^2, (eV/Å)^2, (eV/Å^3)^2) and the numbers of terms they are averaged over."""

    energy_per_atom: T  # sum_s ((E_s - E_s^ref) / N_s)^2
    energy: T  # sum_s (E_s - E_s^ref)^2
    force: T  # sum_(i,a) (F_ia - F_ia^ref)^2
    stress: T | None  # sum over structures with stress of the 9 squared component errors; None: not predicted
    structures: float
    force_components: float
    stress_components: float


def batch_errors(
    predicted: dict[str, torch.Tensor],
    batch: Batch,
    counts: BatchCounts,
    dtype: torch.dtype | None = None,
) -> SquaredErrors[torch.Tensor]:
    """Squared-error sums of one batch (differences cast to ``dtype`` if given), normalised by ``counts``.

    Without ``predicted["forces"]`` (energy-only data) there are no force terms."""
    energy_error = (predicted["energy"] - batch.energy).to(dtype)
    with_forces = "forces" in predicted
    force_error = (predicted["forces"] - batch.forces).to(dtype) if with_forces else energy_error[:0]
    stress = None
    if "stress" in predicted:
        stress = (predicted["stress"] - batch.stress)[batch.has_stress].to(dtype).square().sum()
    return SquaredErrors(
        energy_per_atom=(energy_error / batch.n_atoms.to(energy_error.dtype)).square().sum(),
        energy=energy_error.square().sum(),
        force=force_error.square().sum(),
        stress=stress,
        structures=counts.structures,
        force_components=3 * counts.atoms if with_forces else 0,
        stress_components=9 * counts.stress_structures,
    )


def weighted_objective(
    errors: SquaredErrors[T], energy_weight: float, force_weight: float, stress_weight: float
) -> T:
    """w_E mean_s((E_s - E_s^ref) / N_s)^2 + w_F mean_(i,a)(F_ia - F_ia^ref)^2 + w_S mean(dS^2) (eV, Å)."""
    loss = energy_weight * errors.energy_per_atom / errors.structures
    if errors.force_components:  # none for energy-only data
        loss = loss + force_weight * errors.force / errors.force_components
    if stress_weight and errors.stress_components and errors.stress is not None:
        loss = loss + stress_weight * errors.stress / errors.stress_components
    return loss


def reference_objective(errors: SquaredErrors[T], force_weight: float) -> T:
    """Original REANN objective: sum of squared total-energy errors + f * sum of squared force errors,
    divided by the number of structures (eV^2)."""
    return (errors.energy + force_weight * errors.force) / errors.structures


def reference_force_weight(
    lr: float, initial_lr: float, min_lr: float, init_f: float, final_f: float
) -> float:
    """Original REANN force weight: linear in the learning rate, init_f at initial_lr, final_f at min_lr."""
    if initial_lr == min_lr:
        return final_f
    return init_f + (final_f - init_f) * (lr - initial_lr) / (min_lr - initial_lr)


def training_loss(errors: SquaredErrors[T], train: TrainConfig, lr: float) -> T:
    """The configured objective (``train.loss``) at learning rate ``lr``."""
    if train.loss == "reference":
        weight = reference_force_weight(lr, train.lr, train.min_lr, train.init_f, train.final_f)
        return reference_objective(errors, weight)
    if train.energy_weight is None or train.force_weight is None:
        raise ValueError("training_loss needs resolved loss weights (see train/auto.py)")
    return weighted_objective(errors, train.energy_weight, train.force_weight, train.stress_weight)


def weighted_loss(
    predicted: dict[str, torch.Tensor],
    batch: Batch,
    counts: BatchCounts,
    energy_weight: float,
    force_weight: float,
    stress_weight: float,
) -> torch.Tensor:
    """``weighted_objective`` of one batch normalised by the global ``counts``."""
    return weighted_objective(
        batch_errors(predicted, batch, counts), energy_weight, force_weight, stress_weight
    )


def reference_loss(
    predicted: dict[str, torch.Tensor], batch: Batch, counts: BatchCounts, force_weight: float
) -> torch.Tensor:
    """``reference_objective`` of one batch normalised by the global ``counts``."""
    return reference_objective(batch_errors(predicted, batch, counts), force_weight)
