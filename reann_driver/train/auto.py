"""Training settings chosen from the data when the configuration leaves them at ``auto`` (null).

Rules (documented in docs/training.md):

* **Loss weights.** The force term is divided by the mean square force component of the training set,
  so that the loss starts near 1 whatever the units and the system; an error e in the energy per atom
  counts as much as an error e / ``ENERGY_LENGTH`` in a force component (10 meV/atom as 10 meV/Å):
  w_F = 1 / <F_ia^2>   [(eV/Å)^-2],   w_E = w_F / ENERGY_LENGTH^2   [(eV/atom)^-2].
  Data without forces get w_F = 0 and w_E = 1 / <((E_s - sum_i e_Z_i) / N_s)^2>, the mean square energy
  per atom about the reference energies. A weight given in the configuration is used as it is.
  (Measured on 180 random-CH4 frames, 20-minute runs, test RMSE in meV/atom and meV/Å: w_E/w_F = 1 Å^-2
  gave T=2 45.5/635 and 44.2/480 (two seeds), T=0 51.2/564; 10 Å^-2 gave T=2 48.9/770, T=0 47.0/575;
  on 180 PBE/cc-pVDZ frames 0.1 Å^-2 gave T=0 82.8/1448 and T=2 94.5/1583 against 74.6/1423 and
  67.8/1316 with 1 Å^-2; on the regenerated PBE set with ``zbl_heavy``, seed 0, 3 Å^-2 gave T=0
  65.3/602 and T=2 59.4/742 against 56.0/710 and 54.5/675; see docs/training.md.)
* **Schedule.** With a time budget (``max_minutes``) there is no plateau schedule: the learning rate
  follows the budget (held for a quarter of it, then annealed exponentially to min_lr at its end; see
  ``Trainer.budget_lr``), so the run uses the time it was given. On 180 random-CH4 frames (T=0, 8-minute
  runs, two seeds) this gave test RMSE 43.0/364 and 43.4/380 meV/atom / meV/Å, against 70.3/720 and
  70.3/805 when the plateau schedule, driven by 20 noisy validation frames, lowered the rate to min_lr
  within two minutes. Without a budget, the **patience** of the plateau schedule is counted in optimizer
  steps, not epochs: patience = max(10 epochs, PATIENCE_STEPS / steps per epoch), so that a small data set
  (few steps per epoch) is not stopped after a minute.
* **Initial orbital coefficients**, with ``model.initial_coefficient: auto`` (the default):
  c^0 = 1 / <N_neighbours>, the mean number of neighbours within the cutoff per atom of the training set,
  so that the sums sum_j c_j phi(r_ij) of the densities start of order one whatever the system. With the
  default ``radial_init: graded`` it gave, on 1000 GFN2-xTB random-CH4 frames (3-minute budget, seeds
  0-2, T=0), test RMSE 48.2/410 meV/atom / meV/Å against 61.1/515 for c^0 = 1/150 (the original code's
  1/``neigh_atoms`` at its example value); see docs/training.md.
* **EMA** horizon 1 / (1 - decay) of at most 1000 steps and at most half the patience window, so that the
  averaged weights follow the schedule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .config import TrainConfig
from .data import LabelledStructure

ENERGY_LENGTH = 1.0  # Å: w_E / w_F = 1 Å^-2
PATIENCE_STEPS = 1000  # optimizer steps without validation improvement before the learning rate is lowered
MIN_PATIENCE_EPOCHS = 10
MAX_EMA_HORIZON = 1000  # steps


@dataclass(frozen=True)
class Settings:
    """The values a run uses (explicit ones from the configuration, the others chosen from the data)."""

    energy_weight: float
    force_weight: float
    patience: int | None  # epochs of the plateau schedule; None: no plateau schedule (the time budget rules)
    ema_decay: float | None
    steps_per_epoch: int
    notes: tuple[str, ...]  # one line per value chosen from the data, for the log


def label_scales(
    structures: Sequence[LabelledStructure], references: Sequence[float]
) -> tuple[float, float | None]:
    """Mean square of the energy per atom relative to the reference energies ((eV/atom)^2) and of the
    force components ((eV/Å)^2; None when the data have no forces)."""
    reference = np.asarray(references, dtype=np.float64)
    energies = []
    force_sq, force_count = 0.0, 0
    for structure in structures:
        species = structure.graph.species.numpy()
        energies.append((structure.energy - reference[species].sum()) / structure.n_atoms)
        if structure.forces is not None:
            forces = structure.forces.double().numpy()
            force_sq += float(np.square(forces).sum())
            force_count += forces.size
    energy_ms = float(np.mean(np.square(energies)))
    return energy_ms, (force_sq / force_count if force_count and force_sq > 0 else None)


def mean_neighbours(structures: Sequence[LabelledStructure]) -> float:
    """Mean number of neighbours within the cutoff per atom (the edges of the structures' graphs)."""
    edges = sum(int(structure.graph.edge_index.shape[1]) for structure in structures)
    atoms = sum(structure.n_atoms for structure in structures)
    return edges / max(1, atoms)


def initial_coefficient(
    configured: float | str, structures: Sequence[LabelledStructure]
) -> tuple[float, tuple[str, ...]]:
    """The initial orbital coefficient c^0 and, as ``Settings.notes``, the log line saying how it was
    chosen from the data (none for a configured value): 1 / the mean number of neighbours (1 for
    structures without neighbours)."""
    if configured != "auto":
        return float(configured), ()
    neighbours = mean_neighbours(structures)
    value = 1.0 / neighbours if neighbours > 0 else 1.0
    return value, (
        f"model.initial_coefficient {value:.4g} = 1 / the mean number of neighbours within the cutoff "
        f"({neighbours:.2f} per atom)",
    )


def resolve(
    train: TrainConfig,
    structures: Sequence[LabelledStructure],
    references: Sequence[float],
    fit_forces: bool = True,
) -> Settings:
    """Settings for ``train`` on the training ``structures`` (``references``: eV per species);
    ``fit_forces=False`` (energy-only data) sets the force weight to 0 whatever the configuration says."""
    notes = []
    steps = max(1, math.ceil(len(structures) / train.batch_size))
    energy_weight, force_weight = train.energy_weight, train.force_weight
    energy_ms, force_ms = label_scales(structures, references)
    if not fit_forces or force_ms is None:
        force_weight = 0.0
        notes.append(
            "force_weight 0: no forces in the training data (absent, or all zero as n2p2 files write for "
            "energy-only sets such as QM9): fitting energies only, force weight 0"
        )
    elif force_weight is None:
        force_weight = 1.0 / force_ms
        notes.append(
            f"force_weight {force_weight:.4g} (eV/Å)^-2 = 1 / mean square force component "
            f"({math.sqrt(force_ms):.3f} eV/Å RMS)"
        )
    if energy_weight is None:
        if force_weight > 0:
            energy_weight = force_weight / ENERGY_LENGTH**2
            rule = f"force_weight / ({ENERGY_LENGTH:.3g} Å)^2"
        else:
            energy_weight = 1.0 / max(energy_ms, 1e-12)
            rule = "1 / mean square energy per atom about the reference energies"
        notes.append(
            f"energy_weight {energy_weight:.4g} (eV/atom)^-2 = {rule} "
            f"(training energies: {1000 * math.sqrt(energy_ms):.1f} meV/atom RMS about the references)"
        )
    patience = train.scheduler_patience
    if patience is None and train.max_minutes:
        notes.append(
            f"no plateau schedule: the learning rate follows the time budget of {train.max_minutes:g} min "
            f"({train.lr:g} for the first quarter, then annealed exponentially to {train.min_lr:g} "
            "at its end)"
        )
    elif patience is None:
        patience = max(MIN_PATIENCE_EPOCHS, math.ceil(PATIENCE_STEPS / steps))
        notes.append(
            f"scheduler_patience {patience} epochs "
            f"(about {PATIENCE_STEPS} optimizer steps of {steps} per epoch)"
        )
    ema_decay = train.ema_decay
    if ema_decay == "auto":
        window = MAX_EMA_HORIZON if patience is None else patience * steps / 2
        horizon = max(10.0, min(MAX_EMA_HORIZON, window))
        ema_decay = 1.0 - 1.0 / horizon
        notes.append(f"ema_decay {ema_decay:.4g} (an average over about {horizon:.0f} optimizer steps)")
    return Settings(energy_weight, force_weight, patience, ema_decay, steps, tuple(notes))
