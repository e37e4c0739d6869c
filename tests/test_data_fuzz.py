"""Fuzz suite of the dataset readers (reann_driver/data/formats/*): random bytes, truncations, byte
flips and structured mutations of valid files (numbers replaced by nan/inf/1e999/huge values, lines
duplicated or dropped, extra columns, NUL bytes) for extxyz, extxyz.gz, REANN configuration, n2p2,
DeePMD and ASE databases. Every frame that is read also goes through validate, the unit check,
statistics with neighbour counts and the extxyz writer, where the crashes of issue 14 were.

Each case must end with frames or a DataError naming the file (one line): never another exception,
never a hang. Outcome counts: see tests/fuzzing.py.
"""

from __future__ import annotations

import gzip
import io

import numpy as np
from fuzzing import FUZZ, classify
from hypothesis import given
from hypothesis import strategies as st

from reann_driver.data import DataError, make_frame, read_frames, write_frames
from reann_driver.data.formats import extxyz
from reann_driver.data.stats import dataset_statistics
from reann_driver.data.validate import unit_warnings, validate_frames


def valid_frames():
    rng = np.random.default_rng(1)
    return [
        make_frame(
            ["C", "H", "H", "H", "H"],
            rng.normal(size=(5, 3)) * 2,
            cell=np.eye(3) * 9.0,
            pbc=True,
            energy=-1100.0 + rng.normal(),
            forces=rng.normal(size=(5, 3)),
            stress=rng.normal(size=6) * 0.01,
            info={"config_type": "x", "source": "fuzz", "source_index": i},
        )
        for i in range(3)
    ]


_VALID: dict[tuple[str, str], bytes] = {}


def valid_bytes(tmp_path_factory, fmt, name):
    """The bytes of a valid file of this format (written once per session)."""
    if (fmt, name) not in _VALID:
        folder = tmp_path_factory.mktemp(fmt)
        write_frames(folder / name, valid_frames(), fmt)
        _VALID[(fmt, name)] = (folder / name).read_bytes()
    return _VALID[(fmt, name)]


def read_and_use(path, fmt):
    """Read every frame, then validate, unit-check, describe (with neighbour counts) and re-write them."""
    frames = list(read_frames(path, fmt))
    validate_frames(frames)
    unit_warnings(frames)
    dataset_statistics(frames, cutoff=3.0)
    extxyz.write_frames(io.StringIO(), frames)
    return frames


def check(suite, path, fmt):
    classify(
        f"reader {suite}",
        lambda: read_and_use(path, fmt),
        (DataError,),
        check_clear=lambda error: path.name in str(error),
    )


TEXT_FORMATS = [("extxyz", "f.extxyz"), ("reann", "configuration"), ("n2p2", "input.data")]
NASTY_NUMBERS = [
    "nan",
    "inf",
    "-inf",
    "1e999",
    "1e300",
    "-1e300",
    "1e-320",
    "0",
    "-1",
    "99999999999",
    "x",
    "",
]
MUTATION = st.tuples(
    st.sampled_from(["number", "duplicate", "delete", "column", "nul", "blank", "keyword"]),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
    st.sampled_from(NASTY_NUMBERS),
)


def mutate(text: str, mutations) -> str:
    lines = text.splitlines(keepends=True)
    for kind, where, which, value in mutations:
        if not lines:
            break
        k = int(where * (len(lines) - 1))
        words = lines[k].split()
        if kind == "number" and words:
            words[int(which * (len(words) - 1))] = value
            lines[k] = " ".join(words) + "\n"
        elif kind == "duplicate":
            lines.insert(k, lines[k])
        elif kind == "delete":
            del lines[k]
        elif kind == "column":
            lines[k] = lines[k].rstrip("\n") + f" {value or '0'}\n"
        elif kind == "nul":
            position = int(which * len(lines[k]))
            lines[k] = lines[k][:position] + "\x00" + lines[k][position:]
        elif kind == "blank":
            lines[k] = "\n"
        elif kind == "keyword" and words:
            words[0] = ["energy=1 energy=2", "begin", "end", "point=", "abprop:", "lattice", "pbc"][
                int(which * 6)
            ]
            lines[k] = " ".join(words) + "\n"
    return "".join(lines)


@FUZZ
@given(data=st.binary(max_size=3000), which=st.sampled_from(TEXT_FORMATS))
def test_text_readers_on_random_bytes(tmp_path_factory, data, which):
    fmt, name = which
    path = tmp_path_factory.mktemp("random") / name
    path.write_bytes(data)
    check(f"{fmt} random bytes", path, fmt)


@FUZZ
@given(cut=st.floats(0.0, 1.0), which=st.sampled_from(TEXT_FORMATS), flip=st.integers(0, 255))
def test_text_readers_on_truncated_and_corrupted_files(tmp_path_factory, cut, which, flip):
    fmt, name = which
    data = valid_bytes(tmp_path_factory, fmt, name)
    position = int(cut * (len(data) - 1))
    path = tmp_path_factory.mktemp("cut") / name
    path.write_bytes(data[:position])
    check(f"{fmt} truncated", path, fmt)
    path.write_bytes(data[:position] + bytes([flip]) + data[position + 1 :])
    check(f"{fmt} byte flip", path, fmt)


@FUZZ
@given(which=st.sampled_from(TEXT_FORMATS), mutations=st.lists(MUTATION, min_size=1, max_size=4))
def test_text_readers_on_mutated_files(tmp_path_factory, which, mutations):
    fmt, name = which
    text = mutate(valid_bytes(tmp_path_factory, fmt, name).decode(), mutations)
    path = tmp_path_factory.mktemp("mutated") / name
    path.write_text(text)
    check(f"{fmt} mutated", path, fmt)


@FUZZ
@given(cut=st.floats(0.0, 1.0), data=st.binary(max_size=200), mutations=st.lists(MUTATION, max_size=3))
def test_gzip_reader_on_truncated_random_and_mutated_archives(tmp_path_factory, cut, data, mutations):
    text = valid_bytes(tmp_path_factory, "extxyz", "f.extxyz").decode()
    packed = gzip.compress(mutate(text, mutations).encode())
    path = tmp_path_factory.mktemp("gz") / "f.extxyz.gz"
    path.write_bytes(packed[: int(cut * len(packed))])
    check("extxyz.gz truncated", path, "extxyz")
    path.write_bytes(data)
    check("extxyz.gz random bytes", path, "extxyz")
    path.write_bytes(packed)
    check("extxyz.gz mutated", path, "extxyz")


@FUZZ
@given(cut=st.floats(0.0, 1.0), data=st.binary(max_size=500))
def test_asedb_reader_on_truncated_and_random_files(tmp_path_factory, cut, data):
    valid = valid_bytes(tmp_path_factory, "asedb", "f.db")
    path = tmp_path_factory.mktemp("db") / "f.db"
    truncated = valid[: int(cut * len(valid))]
    path.write_bytes(truncated)
    check("asedb truncated", path, "asedb")
    assert path.read_bytes() == truncated, "reading must not modify the input"
    path.write_bytes(b"SQLite format 3\x00" + data)
    check("asedb random bytes", path, "asedb")


@FUZZ
@given(
    target=st.sampled_from(
        ["type.raw", "type_map.raw", "set.000/coord.npy", "set.000/box.npy", "set.000/force.npy"]
    ),
    data=st.binary(max_size=400),
    cut=st.floats(0.0, 1.0),
)
def test_deepmd_reader_on_damaged_systems(tmp_path_factory, target, data, cut):
    folder = tmp_path_factory.mktemp("dp")
    write_frames(folder / "dp", valid_frames(), "deepmd")
    damaged = folder / "dp" / "sys.000" / target
    original = damaged.read_bytes()
    damaged.write_bytes(data)
    check("deepmd random bytes", folder / "dp", "deepmd")
    damaged.write_bytes(original[: int(cut * len(original))])
    check("deepmd truncated", folder / "dp", "deepmd")


ARRAY_VALUES = st.sampled_from([np.nan, np.inf, -np.inf, 1e300, -1e300, 0.0, 1e-320, 1e20])


@FUZZ
@given(
    target=st.sampled_from(["coord", "box", "energy", "force", "virial"]),
    shape=st.sampled_from(["same", "scalar", "flat", "extra", "empty", "strings", "int", "fill"]),
    value=ARRAY_VALUES,
    where=st.floats(0.0, 1.0),
)
def test_deepmd_reader_on_wrong_arrays(tmp_path_factory, target, shape, value, where):
    folder = tmp_path_factory.mktemp("dp")
    write_frames(folder / "dp", valid_frames(), "deepmd")
    path = folder / "dp" / "sys.000" / "set.000" / f"{target}.npy"
    array = np.load(path) if path.exists() else np.zeros((3, 9))
    if shape == "same":
        flat = array.reshape(-1).copy()
        flat[int(where * (flat.size - 1))] = value
        array = flat.reshape(array.shape)
    elif shape == "fill":
        array = np.full_like(array, value)
    else:
        array = {
            "scalar": np.zeros(()),
            "flat": array.reshape(-1),
            "extra": np.zeros((*array.shape, 2)),
            "empty": array[:0],
            "strings": np.array(["a", "b", "c"]),
            "int": array.astype(np.int64),
        }[shape]
    np.save(path, array)
    check("deepmd wrong arrays", folder / "dp", "deepmd")
