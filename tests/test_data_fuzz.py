"""Property-based: every reader, fed random or truncated bytes, either reads frames or raises
DataFormatError naming the file; never another exception, never a hang."""

import gzip
import io

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reann_driver.data import DataFormatError, make_frame, read_frames, write_frames

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


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


def read_or_clean_error(path, fmt):
    try:
        return list(read_frames(path, fmt))
    except DataFormatError as error:
        assert str(path) in str(error) or path.name in str(error)
        return None


TEXT_FORMATS = [("extxyz", "f.extxyz"), ("reann", "configuration"), ("n2p2", "input.data")]


@FUZZ
@given(data=st.binary(max_size=3000), which=st.sampled_from(TEXT_FORMATS))
def test_text_readers_on_random_bytes(tmp_path_factory, data, which):
    fmt, name = which
    path = tmp_path_factory.mktemp("random") / name
    path.write_bytes(data)
    read_or_clean_error(path, fmt)


@FUZZ
@given(cut=st.floats(0.0, 1.0), which=st.sampled_from(TEXT_FORMATS), flip=st.integers(0, 255))
def test_text_readers_on_truncated_and_corrupted_files(tmp_path_factory, cut, which, flip):
    fmt, name = which
    data = valid_bytes(tmp_path_factory, fmt, name)
    position = int(cut * (len(data) - 1))
    path = tmp_path_factory.mktemp("cut") / name
    path.write_bytes(data[:position])
    read_or_clean_error(path, fmt)
    path.write_bytes(data[:position] + bytes([flip]) + data[position + 1 :])
    read_or_clean_error(path, fmt)


@FUZZ
@given(cut=st.floats(0.0, 1.0), data=st.binary(max_size=200))
def test_gzip_reader_on_truncated_and_random_archives(tmp_path_factory, cut, data):
    packed = gzip.compress(valid_bytes(tmp_path_factory, "extxyz", "f.extxyz"))
    path = tmp_path_factory.mktemp("gz") / "f.extxyz.gz"
    path.write_bytes(packed[: int(cut * len(packed))])
    read_or_clean_error(path, "extxyz")
    path.write_bytes(data)
    read_or_clean_error(path, "extxyz")


@FUZZ
@given(cut=st.floats(0.0, 1.0), data=st.binary(max_size=500))
def test_asedb_reader_on_truncated_and_random_files(tmp_path_factory, cut, data):
    valid = valid_bytes(tmp_path_factory, "asedb", "f.db")
    path = tmp_path_factory.mktemp("db") / "f.db"
    truncated = valid[: int(cut * len(valid))]
    path.write_bytes(truncated)
    read_or_clean_error(path, "asedb")
    assert path.read_bytes() == truncated, "reading must not modify the input"
    path.write_bytes(b"SQLite format 3\x00" + data)
    read_or_clean_error(path, "asedb")


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
    read_or_clean_error(folder / "dp", "deepmd")
    damaged.write_bytes(original[: int(cut * len(original))])
    read_or_clean_error(folder / "dp", "deepmd")


@FUZZ
@given(array=st.sampled_from([np.zeros(()), np.zeros((3,)), np.array(["a", "b"]), np.zeros((3, 15, 2))]))
def test_deepmd_reader_on_wrong_arrays(tmp_path_factory, array):
    folder = tmp_path_factory.mktemp("dp")
    write_frames(folder / "dp", valid_frames(), "deepmd")
    buffer = io.BytesIO()
    np.save(buffer, array)
    (folder / "dp" / "sys.000" / "set.000" / "force.npy").write_bytes(buffer.getvalue())
    assert read_or_clean_error(folder / "dp", "deepmd") is None
