"""Unit systems of input files and their conversion to the package units (Å, eV, eV/Å, eV/Å^3).

Constants are CODATA 2018 from ``ase.units.create_units("2018")``; nothing is typed by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

from ase.units import create_units

CODATA_2018 = create_units("2018")

#: Size of one unit of each supported length unit, in Å.
LENGTH_UNITS: dict[str, float] = {"angstrom": 1.0, "bohr": CODATA_2018["Bohr"]}

#: Size of one unit of each supported energy unit, in eV.
ENERGY_UNITS: dict[str, float] = {
    "ev": 1.0,
    "hartree": CODATA_2018["Hartree"],
    "kcal/mol": CODATA_2018["kcal"] / CODATA_2018["mol"],
    "kj/mol": CODATA_2018["kJ"] / CODATA_2018["mol"],
}

#: Size of one unit of each supported force unit, in eV/Å.
FORCE_UNITS: dict[str, float] = {
    "ev/angstrom": 1.0,
    "hartree/bohr": CODATA_2018["Hartree"] / CODATA_2018["Bohr"],
    "hartree/angstrom": CODATA_2018["Hartree"],
    "kcal/mol/angstrom": CODATA_2018["kcal"] / CODATA_2018["mol"],
}


@dataclass(frozen=True)
class Units:
    """The units a file is written in. Stress is taken to be in energy / length^3 of the same file."""

    length: str = "angstrom"
    energy: str = "ev"
    force: str = "ev/angstrom"

    def __post_init__(self) -> None:
        for name, table in (("length", LENGTH_UNITS), ("energy", ENERGY_UNITS), ("force", FORCE_UNITS)):
            value = getattr(self, name)
            if value not in table:
                raise ValueError(f"unknown {name} unit {value!r}; choose one of {', '.join(table)}")

    @property
    def length_factor(self) -> float:
        """Multiply lengths in this unit by this factor to get Å."""
        return LENGTH_UNITS[self.length]

    @property
    def energy_factor(self) -> float:
        """Multiply energies in this unit by this factor to get eV."""
        return ENERGY_UNITS[self.energy]

    @property
    def force_factor(self) -> float:
        """Multiply forces in this unit by this factor to get eV/Å."""
        return FORCE_UNITS[self.force]

    @property
    def stress_factor(self) -> float:
        """Multiply stresses (energy unit / length unit^3) by this factor to get eV/Å^3."""
        return self.energy_factor / self.length_factor**3

    @property
    def is_package_units(self) -> bool:
        """True when no conversion is needed (Å, eV, eV/Å)."""
        return self == PACKAGE_UNITS

    def describe(self) -> dict[str, str]:
        """JSON-able description for manifests and reports."""
        return {"length": self.length, "energy": self.energy, "force": self.force}

    def mismatch(self) -> str | None:
        """A warning when the units mix systems as files rarely do (Bohr with eV, Å with Hartree/Bohr)."""
        problems = []
        if self.length == "bohr" and self.energy != "hartree":
            problems.append(f"energies in {self.energy}")
        if self.force.rpartition("/")[2] != self.length:
            problems.append(f"forces in {self.force}")
        if not problems:
            return None
        return (
            f"positions in {self.length} but {' and '.join(problems)}: files rarely mix unit systems "
            "(--units atomic is bohr + hartree + hartree/bohr); check --length-unit, --energy-unit and "
            "--force-unit"
        )


PACKAGE_UNITS = Units()

#: Named unit systems accepted by ``--units``.
UNIT_PRESETS: dict[str, Units] = {
    "ev-angstrom": PACKAGE_UNITS,
    "atomic": Units(length="bohr", energy="hartree", force="hartree/bohr"),
}


def resolve_units(
    preset: str | None = None,
    length: str | None = None,
    energy: str | None = None,
    force: str | None = None,
) -> Units:
    """Units from a preset name, with any explicitly given unit overriding the preset's."""
    if preset is not None and preset not in UNIT_PRESETS:
        raise ValueError(f"unknown unit preset {preset!r}; choose one of {', '.join(UNIT_PRESETS)}")
    base = UNIT_PRESETS[preset] if preset is not None else PACKAGE_UNITS
    return Units(length=length or base.length, energy=energy or base.energy, force=force or base.force)
