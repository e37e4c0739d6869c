"""Electronic-structure labelers for generated structures: energy (eV) and forces (eV/Å) of a molecule.

``gfn2-xtb`` (tblite) and ``pbe/cc-pvdz`` (PySCF) are optional extras imported only when used;
``emt`` (ASE's effective-medium theory) is a fast, unphysical stand-in for demos and tests.
Atomic-unit results are converted with CODATA 2018 constants.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any, Protocol

import numpy as np
from ase import Atoms

from .errors import DataError
from .units import CODATA_2018

HARTREE = CODATA_2018["Hartree"]
BOHR = CODATA_2018["Bohr"]


class LabelingFailed(RuntimeError):
    """A calculation that did not give usable labels (e.g. SCF not converged); the frame is skipped."""


@dataclass(frozen=True)
class Labels:
    """Energy in eV, forces in eV/Å and, for periodic structures, stress in eV/Å^3 (Voigt or 3x3)."""

    energy: float
    forces: np.ndarray
    stress: np.ndarray | None = None
    note: str | None = None  # how the labels were obtained when the standard route failed (e.g. SCF fallback)


class Labeler(Protocol):
    """Anything with a ``name``, a ``description`` and ``label(atoms) -> Labels``."""

    name: str

    def description(self) -> dict[str, str]: ...

    def label(self, atoms: Atoms) -> Labels: ...


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


class XTBLabeler:
    """GFN2-xTB through tblite (``pip install 'reann-driver[xtb]'``): neutral closed-shell molecules and
    3D-periodic cells (with stress)."""

    name = "gfn2-xtb"

    def __init__(self, max_iterations: int = 250) -> None:
        try:
            from tblite.interface import Calculator  # noqa: F401
        except ImportError:
            raise DataError(
                "the gfn2-xtb labeler needs tblite: pip install 'reann-driver[xtb]' (or pip install tblite)"
            ) from None
        self.max_iterations = max_iterations

    def description(self) -> dict[str, str]:
        return {"labeler": self.name, "method": "GFN2-xTB", "program": f"tblite {_version('tblite')}"}

    def label(self, atoms: Atoms) -> Labels:
        from tblite.interface import Calculator

        periodic = bool(atoms.pbc.all())
        if atoms.pbc.any() and not periodic:
            raise DataError("the gfn2-xtb labeler handles molecules and 3D-periodic cells only")
        lattice = np.asarray(atoms.cell.array) / BOHR if periodic else None
        calculator = Calculator(
            "GFN2-xTB",
            atoms.numbers,
            np.asarray(atoms.positions) / BOHR,
            lattice=lattice,
            periodic=np.array([True, True, True]) if periodic else None,
        )
        calculator.set("verbosity", 0)
        calculator.set("max-iter", self.max_iterations)
        try:
            result = calculator.singlepoint()
        except RuntimeError as error:
            raise LabelingFailed(f"tblite: {error}") from None
        energy = float(result.get("energy")) * HARTREE
        forces = -np.asarray(result.get("gradient"), dtype=np.float64) * (HARTREE / BOHR)
        stress = None
        if periodic:  # tblite's "virial" is dE/dstrain in Hartree (checked against finite strains)
            stress = np.asarray(result.get("virial"), dtype=np.float64) * HARTREE / atoms.get_volume()
        return Labels(energy, forces, stress)


class PySCFLabeler:
    """Kohn-Sham DFT with PySCF (``pip install 'reann-driver[pyscf]'``); default PBE/cc-pVDZ, the level
    of theory of the random-methane archive."""

    name = "pbe/cc-pvdz"

    def __init__(self, xc: str = "PBE", basis: str = "cc-pvdz", max_cycles: int = 100) -> None:
        try:
            import pyscf  # noqa: F401
        except ImportError:
            raise DataError(
                "the pbe/cc-pvdz labeler needs PySCF: pip install 'reann-driver[pyscf]'"
            ) from None
        self.xc, self.basis, self.max_cycles = xc, basis, max_cycles

    def description(self) -> dict[str, str]:
        return {
            "labeler": self.name,
            "method": f"{self.xc}/{self.basis}",
            "program": f"pyscf {_version('pyscf')}",
        }

    def label(self, atoms: Atoms) -> Labels:
        from pyscf import gto

        if atoms.pbc.any():
            raise DataError("the pbe/cc-pvdz labeler handles molecules only")
        molecule = gto.M(
            atom=[
                (symbol, tuple(position))
                for symbol, position in zip(atoms.get_chemical_symbols(), atoms.positions)
            ],
            basis=self.basis,
            unit="Angstrom",
            charge=0,
            spin=0,
            verbose=0,
        )
        kohn_sham, route = self._converged_scf(molecule)
        gradient = kohn_sham.nuc_grad_method().kernel()
        note = None if route == "diis" else f"scf: {route}"
        return Labels(
            float(kohn_sham.e_tot) * HARTREE,
            -np.asarray(gradient, dtype=np.float64) * (HARTREE / BOHR),
            note=note,
        )

    def _converged_scf(self, molecule: Any) -> tuple[Any, str]:
        """The lowest converged, internally stable restricted Kohn-Sham solution, and how it was found.

        DIIS (PySCF's default) is used as it is when it converges. Otherwise second-order SCF
        (``mf.newton()``) is run twice, from the standard initial guess and from the last DIIS density, the
        lower of the converged solutions is kept and checked for internal instabilities, which are followed
        downhill. Stretched random geometries (shortest C-H 1.7-2.3 Å) have small HOMO-LUMO gaps on which
        DIIS oscillates; second-order SCF started from the oscillating density alone can converge to an
        excited stationary point many eV too high (seen for PBE/cc-pVDZ CH4: 17 eV), so it is never trusted
        without the second start and the stability check. Raises LabelingFailed when nothing converges."""
        from pyscf import dft

        def kohn_sham() -> Any:
            solver = dft.RKS(molecule)
            solver.xc, solver.max_cycle = self.xc, self.max_cycles
            return solver

        first = kohn_sham()
        first.kernel()
        if first.converged:
            return first, "diis"
        candidates = []
        for start, guess in (("standard guess", None), ("DIIS density", first.make_rdm1())):
            solver = kohn_sham().newton()
            solver.kernel(dm0=guess)
            if solver.converged:
                candidates.append((float(solver.e_tot), start, solver))
        if not candidates:
            raise LabelingFailed(
                f"PySCF SCF not converged (DIIS in {self.max_cycles} cycles, second-order SCF from the "
                "standard guess and from the DIIS density)"
            )
        _, start, best = min(candidates, key=lambda candidate: candidate[0])
        route = f"newton from the {start}"
        for _ in range(3):
            orbitals, _, stable, _ = best.stability(return_status=True)
            if stable:
                return best, route
            following = kohn_sham().newton()
            following.kernel(dm0=best.make_rdm1(orbitals, best.mo_occ))
            if not following.converged or following.e_tot >= best.e_tot:
                break
            best, route = following, route + ", instability followed"
        return best, route + " (stability not confirmed)"


class EMTLabeler:
    """ASE's EMT: instant and deterministic but not a physical model of molecules (demos and tests only)."""

    name = "emt"

    def description(self) -> dict[str, str]:
        return {
            "labeler": self.name,
            "method": "EMT (not physical for molecules)",
            "program": f"ase {_version('ase')}",
        }

    def label(self, atoms: Atoms) -> Labels:
        from ase.calculators.emt import EMT

        work = atoms.copy()
        work.calc = EMT()
        stress = np.array(work.get_stress(voigt=False)) if work.pbc.all() else None
        return Labels(
            float(work.get_potential_energy()), np.array(work.get_forces(), dtype=np.float64), stress
        )


LABELERS = {"gfn2-xtb": XTBLabeler, "pbe/cc-pvdz": PySCFLabeler, "emt": EMTLabeler}


def make_labeler(name: str) -> Labeler:
    """A labeler by its ``--labeler`` name."""
    if name not in LABELERS:
        raise DataError(f"unknown labeler {name!r}; choose one of {', '.join(LABELERS)}")
    labeler: Labeler = LABELERS[name]()
    return labeler
