"""What a PIMD run gave: block averages of i-PI's properties, and warnings when they cannot be trusted.

The properties file is read with i-PI's own ``ipi.scripting.read_output``. Warnings: too few rows for an
error bar, a mean temperature far from the thermostat's target, a quantum kinetic energy below the
classical one, and a conserved quantity that moves by more than half the classical kinetic energy
(energy not conserved).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
from ase.units import kB

from .inputs import Ensemble

N_BLOCKS = 5
MIN_ROWS_PER_BLOCK = 2
#: Relative deviation of the mean temperature from the target beyond which the run is flagged.
TEMPERATURE_TOLERANCE = 0.2
#: Spread of the conserved quantity, as a fraction of the classical kinetic energy 3/2 N k_B T, beyond
#: which energy is not conserved (a good run of the CH4 example spans about a tenth).
CONSERVED_TOLERANCE = 0.5


def block_average(values: np.ndarray, n_blocks: int = N_BLOCKS) -> tuple[float, float]:
    """Mean and its standard error from ``n_blocks`` contiguous blocks (NaN error for too short a series)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < n_blocks * MIN_ROWS_PER_BLOCK:
        return float(values.mean()) if len(values) else math.nan, math.nan
    blocks = np.array([block.mean() for block in np.array_split(values, n_blocks)])
    return float(values.mean()), float(blocks.std(ddof=1) / np.sqrt(n_blocks))


@dataclass
class RunAverages:
    """Averages over the kept rows (eV, K) and the warnings about them."""

    rows: int
    temperature: tuple[float, float] = (math.nan, math.nan)
    kinetic_cv: tuple[float, float] = (math.nan, math.nan)
    classical_kinetic: float = math.nan  # 3/2 N k_B T at the mean temperature, eV
    conserved_spread: float = math.nan  # max - min of the conserved quantity, eV
    warnings: list[str] = field(default_factory=list)


def read_properties(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, str | None]]:
    """Columns of a complete i-PI properties file by name, and their units (i-PI's reader)."""
    from ipi.scripting import read_output

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        values, info = read_output(os.fspath(path))
    return values, {name: units for name, (units, _) in info.items()}


def _in(values: np.ndarray, units: str | None, family: str, unit: str) -> np.ndarray:
    """Values converted from the file's units (atomic units when none are given) to ``unit``."""
    from ipi.utils.units import unit_to_internal, unit_to_user

    internal = unit_to_internal(family, units or "atomic_unit", 1.0)
    return np.asarray(values, dtype=np.float64) * float(unit_to_user(family, unit, internal))


def summarise(
    path: str | os.PathLike[str], n_atoms: int, ensemble: Ensemble, discard_fraction: float = 0.2
) -> RunAverages:
    """Averages over the last ``1 - discard_fraction`` of the rows of the properties file ``path``."""
    values, units = read_properties(path)
    n_rows = len(next(iter(values.values()))) if values else 0
    first = int(discard_fraction * n_rows)
    averages = RunAverages(rows=n_rows - first)

    def kept(name: str, family: str, unit: str) -> np.ndarray | None:
        return _in(values[name][first:], units[name], family, unit) if name in values else None

    temperature = kept("temperature", "temperature", "kelvin")
    kinetic = kept("kinetic_cv", "energy", "electronvolt")
    conserved = kept("conserved", "energy", "electronvolt")
    if temperature is not None and len(temperature):
        averages.temperature = block_average(temperature)
        averages.classical_kinetic = 1.5 * n_atoms * kB * averages.temperature[0]
    if kinetic is not None and len(kinetic):
        averages.kinetic_cv = block_average(kinetic)
    if conserved is not None and len(conserved):
        averages.conserved_spread = float(np.ptp(conserved))
    averages.warnings = _warnings(averages, ensemble, n_atoms)
    return averages


def _warnings(averages: RunAverages, ensemble: Ensemble, n_atoms: int) -> list[str]:
    found = []
    needed = N_BLOCKS * MIN_ROWS_PER_BLOCK
    if averages.rows < needed:
        found.append(
            f"only {averages.rows} rows of properties after the discarded start: too few for an error bar "
            f"(needs {needed}; run more steps or write properties more often)"
        )
    mean_t = averages.temperature[0]
    target = ensemble.temperature
    if not math.isfinite(mean_t) and averages.rows:
        found.append("the temperature is not finite: the simulation blew up")
    elif target and ensemble.mode != "nve" and abs(mean_t - target) > TEMPERATURE_TOLERANCE * target:
        found.append(
            f"the mean temperature {mean_t:.1f} K is far from the thermostat's {target:.1f} K: the run is "
            "too short to equilibrate, or the model drives the system where it was not trained (blow-up)"
        )
    kinetic, classical = averages.kinetic_cv[0], averages.classical_kinetic
    if math.isfinite(kinetic) and math.isfinite(classical) and kinetic < classical:
        found.append(
            f"the quantum kinetic energy {kinetic:.4f} eV is below the classical {classical:.4f} eV, which "
            "a converged run does not give: the run is too short or unstable"
        )
    spread = averages.conserved_spread
    scale = 1.5 * n_atoms * kB * (target or mean_t)
    if math.isfinite(spread) and math.isfinite(scale) and spread > CONSERVED_TOLERANCE * scale:
        nve = ensemble.mode == "nve"
        what = "energy is not conserved in this NVE run" if nve else "the conserved quantity drifts"
        found.append(
            f"{what}: it spans {spread:.4g} eV, more than {CONSERVED_TOLERANCE:g} x 3/2 N k_B T = "
            f"{scale:.4g} eV; lower the time step, or check that the forces are the derivatives of a smooth "
            "model"
        )
    return found
