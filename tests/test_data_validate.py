"""validate: every class of defect is caught with its frame number; clean data passes."""

import numpy as np
import pytest

from reann_driver.data import make_frame, validate_frames
from reann_driver.data.validate import unit_warnings


def water(index=0, shift=0.0, **changes):
    positions = np.array([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]]) + shift
    values = {
        "energy": -2080.0 - 0.01 * index,
        "forces": np.full((3, 3), 0.1 + 0.01 * index),
        "cell": np.eye(3) * 8.0,
        "pbc": True,
    }
    values.update(changes)
    return make_frame(["O", "H", "H"], positions + 0.01 * index, **values)


def clean_set():
    return [water(i) for i in range(10)]


def codes(report):
    return {(issue.frame, issue.severity, issue.code) for issue in report.issues}


def test_clean_set_has_no_issue():
    report = validate_frames(clean_set())
    assert report.frames == 10
    assert report.issues == []


@pytest.mark.parametrize(
    "bad, code",
    [
        (water(3, energy=float("nan")), "non-finite"),
        (water(3, forces=np.array([[np.inf, 0, 0], [0, 0, 0], [0, 0, 0]])), "non-finite"),
        (water(3, energy=None), "missing-energy"),
        (water(3, forces=None), "missing-forces"),
        (water(3, forces=np.zeros((2, 3))), "force-shape"),
        (water(3, cell=np.zeros((3, 3))), "cell"),
        (
            make_frame(["O", "H"], [[0, 0, 0], [0.3, 0, 0]], energy=-1.0, forces=np.zeros((2, 3))),
            "close-atoms",
        ),
    ],
)
def test_each_error_is_reported_with_its_frame(bad, code):
    frames = clean_set()
    frames[3] = bad
    report = validate_frames(frames)
    assert (3, "error", code) in codes(report)
    assert all(issue.frame == 3 for issue in report.errors)


def test_close_atoms_across_periodic_boundary():
    frame = make_frame(
        ["H", "H"],
        [[0.1, 0, 0], [7.8, 0, 0]],
        cell=np.eye(3) * 8.0,
        pbc=True,
        energy=-1.0,
        forces=np.zeros((2, 3)),
    )
    assert ("close-atoms") in {issue.code for issue in validate_frames([frame]).errors}


def test_duplicates_and_outliers_are_warnings():
    frames = clean_set()
    frames[5] = water(2)
    frames[7] = water(7, forces=np.full((3, 3), 40.0))
    frames[8] = water(8, energy=-1000.0)
    report = validate_frames(frames)
    assert (5, "warning", "duplicate") in codes(report)
    assert (7, "warning", "force-outlier") in codes(report)
    assert (8, "warning", "energy-outlier") in codes(report)
    assert report.errors == []


def test_energy_only_data_can_skip_the_force_requirement():
    frames = [water(i, forces=None) for i in range(3)]
    assert validate_frames(frames, require_forces=False).issues == []


def test_unit_warnings_spot_bohr_read_as_angstrom():
    bohr_as_angstrom = [water(i, shift=0.0) for i in range(3)]
    for frame in bohr_as_angstrom:
        frame.positions *= 1.8897
        frame.cell *= 1.8897
    assert any("Bohr" in warning for warning in unit_warnings(bohr_as_angstrom))
    assert unit_warnings(clean_set()) == []
