"""generate: the random-CH4 protocol, failed labels skipped and recorded, and resume after an
interruption giving exactly the file of an uninterrupted run (no frame lost or duplicated)."""

import json

import numpy as np
import pytest

from reann_driver.data import DataError
from reann_driver.data.generate import Plan, generate, random_ch4
from reann_driver.data.labelers import EMTLabeler, LabelingFailed

QUIET = {"progress": False, "echo": lambda _: None}


def test_random_ch4_protocol():
    rng = np.random.default_rng(0)
    for _ in range(200):
        atoms = random_ch4(rng)
        assert atoms.get_chemical_formula() == "CH4"
        assert np.all(atoms.positions[0] == 0.0)
        assert np.all(np.linalg.norm(atoms.positions[1:], axis=1) <= 3.0)
        distances = atoms.get_all_distances()[np.triu_indices(5, k=1)]
        assert distances.min() >= 0.5


def test_structures_depend_only_on_seed_and_index():
    plan = Plan("ch4", "random", 10, 5, "emt")
    np.testing.assert_array_equal(plan.structure(7).positions, plan.structure(7).positions)
    assert not np.array_equal(plan.structure(7).positions, plan.structure(8).positions)
    other_seed = Plan("ch4", "random", 10, 6, "emt")
    assert not np.array_equal(plan.structure(7).positions, other_seed.structure(7).positions)


class InterruptingLabeler(EMTLabeler):
    """EMT that is 'killed' (KeyboardInterrupt) at its ``stop_at``-th call."""

    def __init__(self, stop_at):
        self.calls, self.stop_at = 0, stop_at

    def label(self, atoms):
        self.calls += 1
        if self.calls == self.stop_at:
            raise KeyboardInterrupt
        return super().label(atoms)


class FlakyLabeler(EMTLabeler):
    """Fails (as an unconverged SCF would) on structures whose first H is far from C."""

    def label(self, atoms):
        if np.linalg.norm(atoms.positions[1]) > 2.5:
            raise LabelingFailed("SCF not converged (simulated)")
        return super().label(atoms)


def test_resume_after_interruption_reproduces_the_uninterrupted_file(tmp_path):
    plan = Plan("ch4", "random", 12, 3, "emt")
    reference = tmp_path / "reference.extxyz"
    generate(reference, plan, EMTLabeler(), **QUIET)

    resumed = tmp_path / "resumed.extxyz"
    with pytest.raises(KeyboardInterrupt):
        generate(resumed, plan, InterruptingLabeler(stop_at=6), **QUIET)
    assert not resumed.exists()
    journal = resumed.with_name(resumed.name + ".partial")
    assert journal.read_text().count("Properties=") == 5
    with open(journal, "a") as stream:  # a frame cut short by the kill
        stream.write("5\nProperties=species:S:1:pos:R:3 energy=1.0\nC 0 0 0\n")
    messages = []
    counting = InterruptingLabeler(stop_at=0)
    generate(resumed, plan, counting, progress=False, echo=messages.append)
    assert counting.calls == 7, "only the 7 missing structures are labelled again"
    assert "5 of 12" in messages[0]
    assert resumed.read_bytes() == reference.read_bytes()
    assert not journal.exists()


def test_failed_labels_are_skipped_and_reported(tmp_path):
    plan = Plan("ch4", "random", 30, 1, "emt")
    out = tmp_path / "ch4.extxyz"
    report = generate(out, plan, FlakyLabeler(), **QUIET)
    assert 0 < len(report.rejected) < 30
    assert report.written + len(report.rejected) == 30
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["rejected"][0]["reason"] == "SCF not converged (simulated)"
    from ase.io import read

    frames = read(out, ":")
    indices = [frame.info["source_index"] for frame in frames]
    assert indices == sorted(set(range(30)) - {item["index"] for item in report.rejected})


def test_resume_refuses_a_different_plan_and_overwrite(tmp_path):
    out = tmp_path / "ch4.extxyz"
    with pytest.raises(KeyboardInterrupt):
        generate(out, Plan("ch4", "random", 5, 1, "emt"), InterruptingLabeler(stop_at=2), **QUIET)
    with pytest.raises(DataError, match="different run"):
        generate(out, Plan("ch4", "random", 5, 2, "emt"), EMTLabeler(), **QUIET)
    generate(out, Plan("ch4", "random", 5, 1, "emt"), EMTLabeler(), **QUIET)
    with pytest.raises(DataError, match="--force"):
        generate(out, Plan("ch4", "random", 5, 1, "emt"), EMTLabeler(), **QUIET)


def test_parallel_workers_give_the_same_file(tmp_path):
    plan = Plan("ch4", "perturbed", 8, 4, "emt")
    generate(tmp_path / "serial.extxyz", plan, **QUIET)
    generate(tmp_path / "parallel.extxyz", plan, workers=2, **QUIET)
    assert (tmp_path / "serial.extxyz").read_bytes() == (tmp_path / "parallel.extxyz").read_bytes()


def test_shipped_ch4_samples_are_standard_and_labelled():
    from pathlib import Path

    from ase.io import read

    sample = Path(__file__).resolve().parents[1] / "datasets" / "ch4" / "sample"
    for name, count in (("ch4_random_gfn2_300.extxyz", 295), ("ch4_perturbed_gfn2_300.extxyz", 300)):
        frames = read(sample / name, ":")
        assert len(frames) == count
        assert all(frame.get_chemical_formula() == "CH4" for frame in frames)
        assert all(frame.get_forces().shape == (5, 3) for frame in frames)
        assert -120 < frames[0].get_potential_energy() < -60


def finite_difference_force(labeler, atoms, atom, axis, step=1e-4):
    plus, minus = atoms.copy(), atoms.copy()
    plus.positions[atom, axis] += step
    minus.positions[atom, axis] -= step
    return -(labeler.label(plus).energy - labeler.label(minus).energy) / (2 * step)


def test_gfn2_xtb_labeler_units_and_forces():
    pytest.importorskip("tblite")
    from ase.build import molecule

    from reann_driver.data.labelers import XTBLabeler

    labeler = XTBLabeler()
    atoms = molecule("CH4")
    atoms.positions[1] += [0.1, -0.05, 0.02]
    labels = labeler.label(atoms)
    assert -114.0 < labels.energy < -113.0  # GFN2-xTB CH4 is -4.175 Hartree
    assert labels.forces[1, 0] == pytest.approx(finite_difference_force(labeler, atoms, 1, 0), abs=1e-5)


@pytest.mark.slow
def test_pbe_labeler_units_and_forces():
    pytest.importorskip("pyscf")
    from ase.build import molecule

    from reann_driver.data.labelers import PySCFLabeler

    labeler = PySCFLabeler()
    atoms = molecule("CH4")
    labels = labeler.label(atoms)
    assert -1101.0 < labels.energy < -1100.0  # PBE/cc-pVDZ CH4 is about -40.44 Hartree
    assert labels.forces[1, 0] == pytest.approx(finite_difference_force(labeler, atoms, 1, 0, 1e-3), abs=1e-3)


def test_water_boxes_have_density_spacing_and_stress(tmp_path):
    from ase.io import read
    from ase.neighborlist import neighbor_list

    plan = Plan("water", "box", 3, 2, "emt", sigma=0.02, molecules=6, density=1.0)
    atoms = plan.structure(0)
    assert atoms.get_chemical_formula() == "H12O6" and atoms.pbc.all()
    grams_per_cm3 = 6 * 18.01528 / 6.02214076e23 / (atoms.get_volume() * 1e-24)
    assert grams_per_cm3 == pytest.approx(1.0)
    oxygen = atoms[atoms.numbers == 8]
    assert neighbor_list("d", oxygen, 2.5).size == 0

    reference = tmp_path / "reference.extxyz"
    generate(reference, plan, EMTLabeler(), **QUIET)
    resumed = tmp_path / "resumed.extxyz"
    with pytest.raises(KeyboardInterrupt):
        generate(resumed, plan, InterruptingLabeler(stop_at=2), **QUIET)
    generate(resumed, plan, EMTLabeler(), **QUIET)
    assert resumed.read_bytes() == reference.read_bytes()
    frames = read(reference, ":")
    assert frames[0].get_stress().shape == (6,)
    assert np.allclose(frames[0].cell.array, atoms.cell.array)


def test_impossible_plans_are_refused(tmp_path):
    for plan in (
        Plan("ch4", "box", 1, 0, "emt"),
        Plan("benzene", "random", 1, 0, "emt"),
        Plan("water", "box", 1, 0, "emt", density=-1.0),
    ):
        with pytest.raises(DataError):
            generate(tmp_path / "x.extxyz", plan, EMTLabeler(), **QUIET)


def test_gfn2_xtb_stress_matches_finite_strain():
    pytest.importorskip("tblite")
    from reann_driver.data.labelers import XTBLabeler

    labeler = XTBLabeler()
    atoms = Plan("water", "box", 1, 0, "gfn2-xtb", molecules=2, density=0.5).structure(0)
    stress = labeler.label(atoms).stress
    step, volume = 1e-4, atoms.get_volume()
    energies = []
    for sign in (1, -1):
        strained = atoms.copy()
        strain = np.eye(3)
        strain[0, 0] += sign * step
        strained.set_cell(atoms.cell.array @ strain, scale_atoms=True)
        energies.append(labeler.label(strained).energy)
    assert stress[0, 0] == pytest.approx(
        (energies[0] - energies[1]) / (2 * step) / volume, rel=1e-3, abs=1e-6
    )
