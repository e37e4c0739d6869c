"""The SCF fallback of the PBE labeller picks the lowest converged solution (a fake PySCF solver, so the
test is instant): second-order SCF from an oscillating DIIS density alone can land on an excited state."""

from __future__ import annotations

from typing import ClassVar

import pytest

from reann_driver.data.labelers import LabelingFailed, PySCFLabeler

pytest.importorskip("pyscf")


class FakeSolver:
    """Stands in for pyscf.dft.RKS: ``outcomes[start] = (converged, energy in Hartree)`` for the starts
    diis, guess (second order from the standard guess) and density (second order from the DIIS density)."""

    outcomes: ClassVar[dict[str, tuple[bool, float]]] = {}

    def __init__(self, molecule: object, second_order: bool = False) -> None:
        self.second_order = second_order
        self.converged, self.e_tot, self.mo_occ = False, 0.0, None

    def newton(self) -> FakeSolver:
        return FakeSolver(None, second_order=True)

    def kernel(self, dm0: object = None) -> float:
        start = "diis" if not self.second_order else ("guess" if dm0 is None else "density")
        self.converged, self.e_tot = self.outcomes[start]
        return self.e_tot

    def make_rdm1(self, *args: object) -> str:
        return "density"

    def stability(self, return_status: bool) -> tuple[None, None, bool, None]:
        return None, None, True, None


@pytest.fixture
def labeler(monkeypatch) -> PySCFLabeler:
    import pyscf.dft

    monkeypatch.setattr(pyscf.dft, "RKS", FakeSolver)
    return PySCFLabeler()


def test_diis_is_used_when_it_converges(labeler) -> None:
    FakeSolver.outcomes = {"diis": (True, -40.0)}
    solver, route = labeler._converged_scf(None)
    assert route == "diis" and solver.e_tot == -40.0


@pytest.mark.parametrize(("density", "guess", "energy", "start"), [
    ((True, -39.4), (True, -40.0), -40.0, "standard guess"),  # the DIIS density leads to an excited state
    ((True, -40.0), (True, -39.4), -40.0, "DIIS density"),
    ((True, -40.0), (False, -41.0), -40.0, "DIIS density"),  # an unconverged lower energy does not count
])  # fmt: skip
def test_the_lowest_converged_second_order_solution_wins(labeler, density, guess, energy, start) -> None:
    FakeSolver.outcomes = {"diis": (False, -39.0), "density": density, "guess": guess}
    solver, route = labeler._converged_scf(None)
    assert solver.e_tot == energy and route == f"newton from the {start}"


def test_nothing_converged_is_a_rejection(labeler) -> None:
    FakeSolver.outcomes = {"diis": (False, -39.0), "density": (False, -39.5), "guess": (False, -40.0)}
    with pytest.raises(LabelingFailed, match="not converged"):
        labeler._converged_scf(None)
