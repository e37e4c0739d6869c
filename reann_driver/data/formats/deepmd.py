"""DeePMD-kit npy systems: ``type.raw``, ``type_map.raw`` and ``set.*/{coord,box,energy,force,virial}.npy``.

A path may be one system or a folder holding several (found recursively, in sorted order). Frames are
numbered across systems and sets in that order. DeePMD's virial (energy units) becomes the ASE-sign
stress ``-virial / volume``. Arrays are read with ``allow_pickle=False`` and memory-mapped.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from ..errors import DataError, DataFormatError
from ..frames import frame_energy, frame_forces, frame_stress, make_frame
from .base import FrameRecord


def find_systems(root: Path) -> list[Path]:
    """System folders (those holding ``type.raw``) at or below ``root``, sorted."""
    if (root / "type.raw").is_file():
        return [root]
    return sorted(path.parent for path in root.rglob("type.raw"))


def _read_raw(path: Path, kind: type) -> list:
    try:
        words = path.read_text(encoding="utf-8").split()
    except (OSError, UnicodeDecodeError) as error:
        raise DataFormatError(path, "", f"unreadable: {error}") from None
    try:
        return [kind(word) for word in words]
    except ValueError as error:
        raise DataFormatError(path, "", f"bad entry: {error}") from None


def _load(path: Path, frames: int | None, width: int | None) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DataFormatError(path, "", f"not a readable .npy array: {error}") from None
    if array.ndim == 0:
        raise DataFormatError(path, "", "holds a scalar, expected one row per frame")
    if frames is not None and array.shape[0] != frames:
        raise DataFormatError(path, "", f"holds {array.shape[0]} frames, coord.npy holds {frames}")
    if width is not None and (array.ndim not in (1, 2) or int(np.prod(array.shape[1:])) != width):
        raise DataFormatError(path, "", f"has shape {array.shape}, expected ({array.shape[0]}, {width})")
    return array


def iter_records(path: str | os.PathLike[str]) -> Iterator[FrameRecord]:
    """Frame records of every system under ``path``."""
    root = Path(path)
    if not root.is_dir():
        raise DataFormatError(root, "", "a DeePMD system must be a folder holding type.raw")
    systems = find_systems(root)
    if not systems:
        raise DataFormatError(root, "", "no DeePMD system (no type.raw) in this folder")
    index = 0
    for system in systems:
        types = _read_raw(system / "type.raw", int)
        type_map_file = system / "type_map.raw"
        if not type_map_file.is_file():
            raise DataFormatError(system, "", "type_map.raw is missing: element names are needed")
        type_map = _read_raw(type_map_file, str)
        if not types or min(types) < 0 or max(types) >= len(type_map):
            raise DataFormatError(system / "type.raw", "", f"types must lie in 0..{len(type_map) - 1}")
        symbols = [type_map[t] for t in types]
        natoms = len(symbols)
        periodic = not (system / "nopbc").exists()
        sets = sorted(path for path in system.glob("set.*") if path.is_dir())
        if not sets:
            raise DataFormatError(system, "", "no set.* folder")
        for set_dir in sets:
            label = set_dir.relative_to(root).as_posix() if set_dir != root else set_dir.name
            coord = _load(set_dir / "coord.npy", None, 3 * natoms)
            count = coord.shape[0]
            box = _load(set_dir / "box.npy", count, 9) if (set_dir / "box.npy").exists() else None
            if periodic and box is None:
                raise DataFormatError(set_dir, "", "box.npy is missing (and there is no nopbc file)")
            energy = _load(set_dir / "energy.npy", count, 1) if (set_dir / "energy.npy").exists() else None
            force = (
                _load(set_dir / "force.npy", count, 3 * natoms) if (set_dir / "force.npy").exists() else None
            )
            virial = _load(set_dir / "virial.npy", count, 9) if (set_dir / "virial.npy").exists() else None
            arrays = _SetArrays(symbols, periodic, coord, box, energy, force, virial)
            for frame in range(count):
                yield FrameRecord(
                    index,
                    f"frame {frame} of {label}",
                    root.name,
                    functools.partial(arrays.frame, frame, label),
                )
                index += 1


@dataclass(frozen=True)
class _SetArrays:
    """The (memory-mapped) arrays of one set, and how to build frame ``i`` from them."""

    symbols: list[str]
    periodic: bool
    coord: np.ndarray
    box: np.ndarray | None
    energy: np.ndarray | None
    force: np.ndarray | None
    virial: np.ndarray | None

    def frame(self, i: int, label: str) -> Atoms:
        natoms = len(self.symbols)
        cell = np.asarray(self.box[i], dtype=np.float64).reshape(3, 3) if self.box is not None else None
        stress = None
        if self.virial is not None and cell is not None and self.periodic:
            stress = -np.asarray(self.virial[i], dtype=np.float64).reshape(3, 3) / abs(np.linalg.det(cell))
        return make_frame(
            self.symbols,
            np.asarray(self.coord[i], dtype=np.float64).reshape(natoms, 3),
            cell=cell,
            pbc=self.periodic,
            energy=float(np.asarray(self.energy[i]).reshape(-1)[0]) if self.energy is not None else None,
            forces=np.asarray(self.force[i], dtype=np.float64).reshape(natoms, 3)
            if self.force is not None
            else None,
            stress=stress,
            info={"deepmd_set": label, "deepmd_frame": i},
        )


def write_frames(folder: Path, frames: Iterable[Atoms]) -> int:
    """Write standard frames as DeePMD systems ``sys.000``, ``sys.001`` ... in ``folder`` (one system per
    distinct atom sequence and periodicity; frame order is kept within a system). Units eV, Å."""
    groups: dict[tuple[tuple[str, ...], bool], list[Atoms]] = {}
    elements: list[str] = []
    for atoms in frames:
        symbols = tuple(atoms.get_chemical_symbols())
        if atoms.pbc.any() and not atoms.pbc.all():
            raise DataError(
                f"frame {atoms.info.get('source_index')}: DeePMD cannot store partial periodicity {atoms.pbc}"
            )
        groups.setdefault((symbols, bool(atoms.pbc.all())), []).append(atoms)
        elements.extend(symbol for symbol in symbols if symbol not in elements)
    count = 0
    for number, ((symbols, periodic), members) in enumerate(groups.items()):
        system = folder / f"sys.{number:03d}"
        set_dir = system / "set.000"
        set_dir.mkdir(parents=True)
        (system / "type_map.raw").write_text("\n".join(elements) + "\n")
        (system / "type.raw").write_text("\n".join(str(elements.index(s)) for s in symbols) + "\n")
        if not periodic:
            (system / "nopbc").write_text("")
        energies, forces, stresses = [], [], []
        for atoms in members:
            energy, force, stress = frame_energy(atoms), frame_forces(atoms), frame_stress(atoms)
            if energy is None or force is None:
                raise DataError(
                    f"frame {atoms.info.get('source_index')}: DeePMD export needs energy and forces"
                )
            energies.append(energy)
            forces.append(force.reshape(-1))
            stresses.append(stress)
        np.save(set_dir / "coord.npy", np.array([a.positions.reshape(-1) for a in members], dtype=np.float64))
        np.save(set_dir / "box.npy", np.array([a.cell.array.reshape(-1) for a in members], dtype=np.float64))
        np.save(set_dir / "energy.npy", np.array(energies, dtype=np.float64))
        np.save(set_dir / "force.npy", np.array(forces, dtype=np.float64))
        if periodic and all(stress is not None for stress in stresses):
            virials = [-stress * a.get_volume() for stress, a in zip(stresses, members)]  # type: ignore[operator]
            np.save(set_dir / "virial.npy", np.array([v.reshape(-1) for v in virials], dtype=np.float64))
        count += len(members)
    return count
