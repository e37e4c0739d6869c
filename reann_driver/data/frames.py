"""The standard form of a labelled frame: an ``ase.Atoms`` in Å with energy (eV), forces (eV/Å) and
stress (eV/Å^3) held as single-point calculator results, and ``info`` keys ``source``, ``source_index``
and ``config_type``. All floating-point data are float64.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from .units import PACKAGE_UNITS, Units

#: ``info`` keys every standard frame carries.
STANDARD_INFO_KEYS = ("config_type", "source", "source_index")


@dataclass(frozen=True)
class LabelKeys:
    """Where a source file keeps its labels; ``None`` means the usual places (calculator results,
    then ``info["energy"]`` / ``arrays["forces"]`` / ``info["stress"]``)."""

    energy: str | None = None
    forces: str | None = None
    stress: str | None = None


DEFAULT_KEYS = LabelKeys()


def full_stress(stress: Any) -> np.ndarray:
    """A 3x3 stress from either the 3x3 or the Voigt-6 (xx, yy, zz, yz, xz, xy) form."""
    values = np.asarray(stress, dtype=np.float64)
    if values.shape == (3, 3):
        return values
    if values.shape == (6,):
        xx, yy, zz, yz, xz, xy = values
        return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    if values.shape == (9,):
        return values.reshape(3, 3)
    raise ValueError(f"stress must have 6 or 9 components, got shape {values.shape}")


def voigt_stress(stress: Any) -> np.ndarray:
    """The Voigt-6 form (xx, yy, zz, yz, xz, xy) ASE calculators report."""
    full = full_stress(stress)
    return np.array([full[0, 0], full[1, 1], full[2, 2], full[1, 2], full[0, 2], full[0, 1]])


def make_frame(
    symbols: Any,
    positions: Any,
    *,
    cell: Any = None,
    pbc: Any = False,
    energy: float | None = None,
    forces: Any = None,
    stress: Any = None,
    info: Mapping[str, Any] | None = None,
) -> Atoms:
    """Build a standard frame. ``forces`` keeps whatever shape it is given so that ``validate`` can
    report a malformed array instead of it being silently reshaped."""
    atoms = Atoms(symbols=symbols, positions=np.asarray(positions, dtype=np.float64), cell=cell, pbc=pbc)
    if info:
        atoms.info.update(info)
    results: dict[str, Any] = {}
    if energy is not None:
        results["energy"] = float(energy)
    if forces is not None:
        results["forces"] = np.asarray(forces, dtype=np.float64)
    if stress is not None:
        results["stress"] = voigt_stress(stress)
    if results:
        atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def standard_copy(atoms: Atoms, info: Mapping[str, Any] | None = None) -> Atoms:
    """A standard frame with the symbols, positions, cell, pbc and calculator results of ``atoms``."""
    results = _results(atoms)
    return make_frame(
        atoms.get_chemical_symbols(),
        atoms.positions,
        cell=atoms.cell.array,
        pbc=atoms.pbc,
        energy=results.get("energy"),
        forces=results.get("forces"),
        stress=results.get("stress"),
        info=info,
    )


def _results(atoms: Atoms) -> dict[str, Any]:
    calc = atoms.calc
    return dict(getattr(calc, "results", {}) or {}) if calc is not None else {}


def frame_energy(atoms: Atoms) -> float | None:
    """The frame's energy in its own units, or None when it has none."""
    value = _results(atoms).get("energy")
    return None if value is None else float(value)


def frame_forces(atoms: Atoms) -> np.ndarray | None:
    """The frame's force array as stored (shape not checked), or None."""
    value = _results(atoms).get("forces")
    return None if value is None else np.asarray(value, dtype=np.float64)


def frame_stress(atoms: Atoms) -> np.ndarray | None:
    """The frame's 3x3 stress, or None."""
    value = _results(atoms).get("stress")
    return None if value is None else full_stress(value)


def _plain_info_value(value: Any) -> Any:
    """Info values the standard form keeps: strings, booleans and finite-or-not numbers."""
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, np.generic) and value.shape == ():
        return value.item()
    return None


def standardize(
    raw: Atoms,
    *,
    units: Units = PACKAGE_UNITS,
    keys: LabelKeys = DEFAULT_KEYS,
    source: str,
    source_index: int,
    config_type: str | None = None,
) -> Atoms:
    """Convert a frame as read (source units, labels wherever the file kept them) to the standard form."""
    results = _results(raw)
    info = dict(raw.info)
    arrays = raw.arrays

    if keys.energy:
        energy = results.get(keys.energy, info.get(keys.energy))
    else:
        energy = results.get("energy", results.get("free_energy", info.get("energy")))
    info.pop(keys.energy or "energy", None)

    forces_key = keys.forces or "forces"
    forces = results.get(forces_key)
    if forces is None and forces_key in arrays:
        forces = arrays[forces_key]

    stress_key = keys.stress or "stress"
    stress = results.get(stress_key)
    if stress is None:
        stress = info.pop(stress_key, None)
    info.pop(stress_key, None)

    kept: dict[str, Any] = {}
    for key, value in info.items():
        plain = _plain_info_value(value)
        if plain is not None and key not in STANDARD_INFO_KEYS:
            kept[key] = plain
    frame_type = config_type if config_type is not None else info.get("config_type")
    kept["config_type"] = str(frame_type) if frame_type is not None else "default"
    kept["source"] = source
    kept["source_index"] = int(source_index)

    if energy is not None:
        values = np.asarray(energy, dtype=np.float64).reshape(-1)
        if values.size != 1:
            raise ValueError(f"the energy must be one number, got {values.size}")
        energy = float(values[0]) * units.energy_factor
    if forces is not None:
        forces = np.asarray(forces, dtype=np.float64) * units.force_factor
    if stress is not None:
        stress = full_stress(stress) * units.stress_factor

    cell = np.asarray(raw.cell.array, dtype=np.float64) * units.length_factor
    return make_frame(
        raw.get_chemical_symbols(),
        np.asarray(raw.positions, dtype=np.float64) * units.length_factor,
        cell=cell,
        pbc=raw.pbc.copy(),
        energy=energy,
        forces=forces,
        stress=stress,
        info=dict(sorted(kept.items())),
    )
