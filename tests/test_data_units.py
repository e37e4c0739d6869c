"""Unit presets against hand-computed CODATA 2018 values (SI-exact e and N_A, CODATA 2018 a0 and Eh).

ASE derives Bohr and Hartree from the CODATA 2018 fundamental constants, so they agree with the
12-digit tabulated values to about 1e-11 relative.
"""

import pytest

from reann_driver.data.units import (
    ENERGY_UNITS,
    FORCE_UNITS,
    LENGTH_UNITS,
    UNIT_PRESETS,
    Units,
    resolve_units,
)

ELEMENTARY_CHARGE = 1.602176634e-19  # C, exact (SI 2019)
AVOGADRO = 6.02214076e23  # 1/mol, exact (SI 2019)
BOHR_IN_ANGSTROM = 0.529177210903  # CODATA 2018
HARTREE_IN_EV = 27.211386245988  # CODATA 2018
KCAL_PER_MOL_IN_EV = 4184.0 / (AVOGADRO * ELEMENTARY_CHARGE)
KJ_PER_MOL_IN_EV = 1000.0 / (AVOGADRO * ELEMENTARY_CHARGE)


def test_length_units():
    assert LENGTH_UNITS["angstrom"] == 1.0
    assert LENGTH_UNITS["bohr"] == pytest.approx(BOHR_IN_ANGSTROM, rel=1e-10)


def test_energy_units():
    assert ENERGY_UNITS["ev"] == 1.0
    assert ENERGY_UNITS["hartree"] == pytest.approx(HARTREE_IN_EV, rel=1e-10)
    assert ENERGY_UNITS["kcal/mol"] == pytest.approx(KCAL_PER_MOL_IN_EV, rel=1e-10)
    assert ENERGY_UNITS["kj/mol"] == pytest.approx(KJ_PER_MOL_IN_EV, rel=1e-10)
    assert ENERGY_UNITS["kcal/mol"] == pytest.approx(0.043364104241800934, rel=1e-10)


def test_force_units():
    assert FORCE_UNITS["hartree/bohr"] == pytest.approx(HARTREE_IN_EV / BOHR_IN_ANGSTROM, rel=1e-10)
    assert FORCE_UNITS["hartree/bohr"] == pytest.approx(51.422067476325886, rel=1e-10)
    assert FORCE_UNITS["hartree/angstrom"] == pytest.approx(HARTREE_IN_EV, rel=1e-10)
    assert FORCE_UNITS["kcal/mol/angstrom"] == pytest.approx(KCAL_PER_MOL_IN_EV, rel=1e-10)


def test_atomic_preset_and_stress_factor():
    atomic = UNIT_PRESETS["atomic"]
    assert atomic == Units("bohr", "hartree", "hartree/bohr")
    assert atomic.stress_factor == pytest.approx(HARTREE_IN_EV / BOHR_IN_ANGSTROM**3, rel=1e-10)
    assert UNIT_PRESETS["ev-angstrom"].is_package_units


def test_resolve_units_overrides_preset():
    units = resolve_units("atomic", force="hartree/angstrom")
    assert units == Units("bohr", "hartree", "hartree/angstrom")
    assert resolve_units() == Units()


@pytest.mark.parametrize("field", ["length", "energy", "force"])
def test_unknown_units_are_refused(field):
    with pytest.raises(ValueError, match="unknown"):
        Units(**{field: "furlong"})
    with pytest.raises(ValueError, match="unknown unit preset"):
        resolve_units("imperial")
