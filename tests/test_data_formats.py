"""Readers and writers: round trips between every pair of formats, unit conversion, format detection,
and errors that name the file and line."""

import itertools

import numpy as np
import pytest
from ase.io import read

from reann_driver.data import (
    DataError,
    DataFormatError,
    LabelKeys,
    detect_format,
    make_frame,
    read_frames,
    write_frames,
)
from reann_driver.data.formats import READ_FORMATS, WRITE_FORMATS
from reann_driver.data.frames import frame_stress
from reann_driver.data.units import UNIT_PRESETS, Units

PATHS = {
    "extxyz": "frames.extxyz",
    "reann": "configuration",
    "n2p2": "input.data",
    "deepmd": "deepmd_system",
    "asedb": "frames.db",
}


def synthetic_frames(count=4, seed=0, periodic=True, stress=True):
    """Small periodic water-like frames with awkward float64 values (full-precision round trips)."""
    rng = np.random.default_rng(seed)
    frames = []
    for index in range(count):
        cell = np.diag(rng.uniform(6.0, 7.0, 3)) + rng.normal(scale=0.1, size=(3, 3)) if periodic else None
        positions = rng.uniform(0.0, 6.0, (6, 3)) + rng.normal(scale=1e-9, size=(6, 3))
        frames.append(
            make_frame(
                ["O", "H", "H", "O", "H", "H"],
                positions,
                cell=cell,
                pbc=periodic,
                energy=-2081.123456789012345 + rng.normal(),
                forces=rng.normal(size=(6, 3)) / 3.0,
                stress=(lambda s: s + s.T)(rng.normal(scale=1e-3, size=(3, 3)))
                if (periodic and stress)
                else None,
                info={"config_type": "liquid", "source": "synthetic", "source_index": index},
            )
        )
    return frames


def assert_same_frames(got, expected, stress=True):
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a.get_chemical_symbols() == b.get_chemical_symbols()
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.cell.array, b.cell.array)
        np.testing.assert_array_equal(a.pbc, b.pbc)
        assert a.get_potential_energy() == b.get_potential_energy()
        np.testing.assert_array_equal(a.get_forces(), b.get_forces())
        if stress and frame_stress(b) is not None:
            np.testing.assert_allclose(frame_stress(a), frame_stress(b), rtol=1e-14, atol=1e-18)


@pytest.mark.parametrize("first, second", list(itertools.product(WRITE_FORMATS, READ_FORMATS)))
def test_round_trip_between_every_pair_of_formats(tmp_path, first, second):
    """standard -> first -> read -> second -> read gives the original frames to float64 precision."""
    frames = synthetic_frames()
    first_path = tmp_path / PATHS[first]
    write_frames(first_path, frames, first)
    via_first = list(read_frames(first_path, first))
    second_path = tmp_path / ("b_" + PATHS[second])
    write_frames(second_path, via_first, second)
    via_second = list(read_frames(second_path, second))
    keeps_stress = {"extxyz", "deepmd", "asedb"}
    assert_same_frames(via_second, frames, stress=first in keeps_stress and second in keeps_stress)


@pytest.mark.parametrize("fmt", WRITE_FORMATS)
def test_molecules_round_trip(tmp_path, fmt):
    frames = synthetic_frames(periodic=False)
    path = tmp_path / PATHS[fmt]
    write_frames(path, frames, fmt)
    assert_same_frames(list(read_frames(path, fmt)), frames)


def test_standard_extxyz_is_read_by_ase_with_calculator_results(tmp_path):
    frames = synthetic_frames()
    path = tmp_path / "standard.extxyz"
    write_frames(path, frames)
    atoms = read(path, index=1)
    assert atoms.get_potential_energy() == frames[1].get_potential_energy()
    np.testing.assert_array_equal(atoms.get_forces(), frames[1].get_forces())
    np.testing.assert_allclose(atoms.get_stress(voigt=False), frame_stress(frames[1]), rtol=1e-15)
    assert atoms.info["source_index"] == 1
    assert atoms.info["config_type"] == "liquid"


def test_atomic_units_are_converted_exactly(tmp_path):
    """An n2p2 file in Bohr/Hartree read with --units atomic equals the same data written in Å/eV."""
    bohr, hartree = UNIT_PRESETS["atomic"].length_factor, UNIT_PRESETS["atomic"].energy_factor
    path = tmp_path / "input.data"
    path.write_text(
        "begin\ncomment atomic units\n"
        "lattice 20.0 0.0 0.0\nlattice 0.0 20.0 0.0\nlattice 0.0 0.0 20.0\n"
        "atom 1.0 2.0 3.0 O 0.0 0.0 0.01 0.02 0.03\n"
        "atom 2.5 2.0 3.0 H 0.0 0.0 -0.01 0.0 0.0\n"
        "energy -76.4\ncharge 0.0\nend\n"
    )
    (frame,) = read_frames(path, units=UNIT_PRESETS["atomic"])
    np.testing.assert_array_equal(frame.positions, np.array([[1.0, 2.0, 3.0], [2.5, 2.0, 3.0]]) * bohr)
    np.testing.assert_array_equal(frame.cell.array, np.eye(3) * 20.0 * bohr)
    assert frame.get_potential_energy() == -76.4 * hartree
    np.testing.assert_array_equal(frame.get_forces()[0], np.array([0.01, 0.02, 0.03]) * (hartree / bohr))
    assert frame.info["source"] == "input.data" and frame.info["source_index"] == 0


def test_extxyz_with_custom_label_keys(tmp_path):
    """Files such as the water set keep labels under TotEnergy / force."""
    path = tmp_path / "water.xyz"
    path.write_text(
        '2\nLattice="10 0 0 0 10 0 0 0 10" Properties=species:S:1:pos:R:3:force:R:3 '
        'TotEnergy=-17.5 pbc="T T T"\n'
        "O 0 0 0 0.1 0.2 0.3\nH 1.8 0 0 -0.1 -0.2 -0.3\n"
    )
    units = Units("bohr", "hartree", "hartree/bohr")
    (frame,) = read_frames(path, keys=LabelKeys("TotEnergy", "force"), units=units)
    assert frame.get_potential_energy() == -17.5 * units.energy_factor
    np.testing.assert_array_equal(frame.get_forces()[1], np.array([-0.1, -0.2, -0.3]) * units.force_factor)
    assert "TotEnergy" not in frame.info


def test_deepmd_virial_becomes_ase_stress(tmp_path):
    frames = synthetic_frames(count=2)
    write_frames(tmp_path / "dp", frames, "deepmd")
    virial = np.load(tmp_path / "dp" / "sys.000" / "set.000" / "virial.npy")
    expected = -frame_stress(frames[0]) * frames[0].get_volume()
    np.testing.assert_allclose(virial[0].reshape(3, 3), expected, rtol=1e-14)


def test_format_detection(tmp_path):
    assert detect_format(tmp_path) == "deepmd"
    assert detect_format("x/methane.extxyz.gz") == "extxyz"
    assert detect_format("a.db") == "asedb"
    assert detect_format("input.data") == "n2p2"
    odd = tmp_path / "frames.txt"
    odd.write_text("point= 1\n")
    assert detect_format(odd) == "reann"
    odd.write_text("\nbegin\n")
    assert detect_format(odd) == "n2p2"


def test_gzip_extxyz_is_read(tmp_path):
    import gzip

    frames = synthetic_frames(count=2)
    plain = tmp_path / "f.extxyz"
    write_frames(plain, frames)
    packed = tmp_path / "f.extxyz.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert_same_frames(list(read_frames(packed)), frames)


@pytest.mark.parametrize(
    "fmt, text, where",
    [
        ("extxyz", "2\ncomment\nH 0 0 0\n", "line 1"),
        ("extxyz", "2\nProperties=species:S:1:pos:R:3\nH 0 0 0\nH 0 0 x\n", "frame 0 (line 1)"),
        ("extxyz", "1\nProperties=species:S:1:pos:R:3\nH 0 0 0\nnonsense\n", "line 4"),
        ("n2p2", "begin\natom 0 0 0 H 0 0 0 0 0\nenergy 1.0\n", "line 1"),
        ("n2p2", "begin\natom 0 0 zero H 0 0 0 0 0\nenergy 1.0\nend\n", "line 2"),
        ("n2p2", "begin\nlattice 1 0 0\natom 0 0 0 H 0 0 0 0 0\nenergy 1.0\nend\n", "line 2"),
        ("n2p2", "begin\nend\nbogus\n", "line 3"),
        ("reann", "point= 1\n1 0 0\n0 1 0\n0 0 1\npbc 1 1 1\nH 1.0 0 0 0\n", "line 1"),
        ("reann", "point= 1\n1 0 0\n0 1 0\n0 0 1\npbc 1 1 1\nH 1.0 0 0\nabprop: 1.0\n", "line 6"),
        ("reann", "point= 1\n1 0 0\n0 1 0\n0 0 1\npbc 1 1 1\nXx 1.0 0 0 0\nabprop: 1.0\n", "line 6"),
    ],
)
def test_bad_text_inputs_name_file_and_line(tmp_path, fmt, text, where):
    path = tmp_path / "bad.input"
    path.write_text(text)
    with pytest.raises(DataFormatError) as caught:
        list(read_frames(path, fmt))
    assert str(path) in str(caught.value)
    assert where in str(caught.value)


def test_bad_deepmd_and_asedb_inputs(tmp_path):
    system = tmp_path / "sys"
    (system / "set.000").mkdir(parents=True)
    (system / "type.raw").write_text("0 1\n")
    (system / "type_map.raw").write_text("O\nH\n")
    np.save(system / "set.000" / "coord.npy", np.zeros((2, 6)))
    np.save(system / "set.000" / "box.npy", np.zeros((3, 9)))
    with pytest.raises(DataFormatError, match=r"box\.npy.*3 frames"):
        list(read_frames(system, "deepmd"))
    not_db = tmp_path / "x.db"
    not_db.write_bytes(b"not a database at all")
    with pytest.raises(DataFormatError, match="not an SQLite file"):
        list(read_frames(not_db, "asedb"))
    assert not_db.read_bytes() == b"not a database at all"


def test_reann_fractional_coordinates(tmp_path):
    path = tmp_path / "configuration"
    path.write_text("point= 1\n4 0 0\n0 5 0\n0 0 6\npbc 1 1 1\nH 1.008 0.5 0.5 0.5 0 0 0\nabprop: -1.0\n")
    (frame,) = read_frames(path, fractional=True)
    np.testing.assert_array_equal(frame.positions[0], [2.0, 2.5, 3.0])


def test_writers_refuse_to_overwrite(tmp_path):
    path = tmp_path / "frames.extxyz"
    path.write_text("precious")
    with pytest.raises(DataError, match="--force"):
        write_frames(path, synthetic_frames(count=1))
    assert path.read_text() == "precious"
    write_frames(path, synthetic_frames(count=1), force=True)
    assert len(list(read_frames(path))) == 1


def test_failed_write_leaves_no_partial_output(tmp_path):
    def frames():
        yield from synthetic_frames(count=1)
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_frames(tmp_path / "out.extxyz", frames())
    assert list(tmp_path.iterdir()) == []
