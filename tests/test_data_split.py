"""split: seeded and byte-identical, nested subsets, rejected frames listed, verify catches tampering,
and a large file is streamed in bounded memory."""

import json
import tracemalloc

import numpy as np
import pytest

from reann_driver.data import (
    DataError,
    LabelKeys,
    Recipe,
    SplitRule,
    load_recipe,
    split_dataset,
    verify_split,
)
from reann_driver.data.units import Units

TETRAHEDRON = np.array(
    [[0, 0, 0], [0.63, 0.63, 0.63], [-0.63, -0.63, 0.63], [0.63, -0.63, -0.63], [-0.63, 0.63, -0.63]]
)


def write_ch4_file(path, frames, seed=0, bad=()):
    """A synthetic CH4 extxyz (energies in Hartree, forces in Hartree/Bohr, as in the methane archive)."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as stream:
        for index in range(frames):
            positions = TETRAHEDRON + rng.normal(scale=0.05, size=(5, 3))
            energy = "nan" if index in bad else repr(-40.4 + 0.01 * rng.normal())
            stream.write(f'5\nProperties=species:S:1:pos:R:3:forces:R:3 energy={energy} pbc="F F F"\n')
            for symbol, position in zip("CHHHH", positions):
                force = rng.normal(scale=0.05, size=3)
                stream.write(
                    f"{symbol} {' '.join(map(repr, position.tolist()))} "
                    f"{' '.join(map(repr, force.tolist()))}\n"
                )


def recipe(**split):
    rule = SplitRule(**({"test": 0.2, "val": 0.1, "subsets": (5, 10, 20)} | split))
    return Recipe(name="test", seed=7, units=Units("angstrom", "hartree", "hartree/bohr"), split=rule)


def test_split_is_deterministic_and_verifiable(tmp_path):
    source = tmp_path / "ch4.extxyz"
    write_ch4_file(source, 60)
    first = split_dataset(source, recipe(write_subsets=True), tmp_path / "a")
    second = split_dataset(source, recipe(write_subsets=True), tmp_path / "b")
    for name in ("train.extxyz", "val.extxyz", "test.extxyz", "train_10.extxyz", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert first == second
    counts = {name: first["splits"][name]["count"] for name in ("train", "val", "test")}
    assert counts == {"train": 42, "val": 6, "test": 12}
    indices = [set(first["splits"][name]["indices"]) for name in ("train", "val", "test")]
    assert set.union(*indices) == set(range(60)) and sum(map(len, indices)) == 60
    subsets = [set(first["train_subsets"][str(n)]["indices"]) for n in (5, 10, 20)]
    assert subsets[0] < subsets[1] < subsets[2] < indices[0]
    assert first["source"]["frames"] == 60 and len(first["source"]["sha256"]) == 64
    assert verify_split(tmp_path / "a", source) == []


def test_different_seed_gives_a_different_split(tmp_path):
    source = tmp_path / "ch4.extxyz"
    write_ch4_file(source, 40)
    one = split_dataset(source, recipe(), tmp_path / "a")
    other = split_dataset(source, Recipe(**{**recipe().__dict__, "seed": 8}), tmp_path / "b")
    assert one["splits"]["test"]["indices"] != other["splits"]["test"]["indices"]


def test_verify_catches_tampering(tmp_path):
    source = tmp_path / "ch4.extxyz"
    write_ch4_file(source, 30)
    split_dataset(source, recipe(), tmp_path / "split")
    test_file = tmp_path / "split" / "test.extxyz"
    test_file.write_text(test_file.read_text().replace("energy=-1", "energy=-2", 1))
    assert any("sha256" in problem for problem in verify_split(tmp_path / "split"))
    other = tmp_path / "other.extxyz"
    write_ch4_file(other, 30, seed=1)
    assert any("source" in problem for problem in verify_split(tmp_path / "split", other))


def test_invalid_frames_are_listed_as_rejected(tmp_path):
    source = tmp_path / "ch4.extxyz"
    write_ch4_file(source, 30, bad={4, 17})
    manifest = split_dataset(source, recipe(), tmp_path / "split", echo=lambda _: None)
    assert sorted(item["index"] for item in manifest["rejected"]) == [4, 17]
    written = {i for name in ("train", "val", "test") for i in manifest["splits"][name]["indices"]}
    assert written == set(range(30)) - {4, 17}
    assert verify_split(tmp_path / "split", source) == []


def test_refuses_overwrite_and_wrong_frame_count(tmp_path):
    source = tmp_path / "ch4.extxyz"
    write_ch4_file(source, 20)
    split_dataset(source, recipe(subsets=()), tmp_path / "split")
    with pytest.raises(DataError, match="--force"):
        split_dataset(source, recipe(subsets=()), tmp_path / "split")
    wrong = Recipe(**{**recipe(subsets=()).__dict__, "source": {"frames": 25}})
    with pytest.raises(DataError, match="expects 25 frames"):
        split_dataset(source, wrong, tmp_path / "other")
    assert not (tmp_path / "other").exists()
    with pytest.raises(DataError, match="exceeds"):
        split_dataset(source, recipe(subsets=(100,)), tmp_path / "third")


def test_streaming_split_of_a_large_file_uses_bounded_memory(tmp_path):
    """20,000 frames (7 MB; about 100 MB as ase.Atoms): picking 150 stays under 10 MB of Python heap."""
    source = tmp_path / "big.extxyz"
    write_ch4_file(source, 20000)
    rule = {"test": 50, "val": 50, "train": 50, "subsets": (10,)}
    tracemalloc.start()
    manifest = split_dataset(source, recipe(**rule), tmp_path / "split")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 10 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    assert manifest["splits"]["train"]["count"] == 50
    assert max(max(manifest["splits"][n]["indices"]) for n in ("train", "val", "test")) > 1000


def test_water_recipe_reads_atomic_units_with_custom_keys(tmp_path):
    """The shipped water recipe applied to a small file of the same layout (TotEnergy/force, atomic units)."""
    water = load_recipe("water")
    assert water.units == Units("bohr", "hartree", "hartree/bohr")
    assert water.keys == LabelKeys("TotEnergy", "force")
    source = tmp_path / "dataset_1593.xyz"
    rng = np.random.default_rng(3)
    with open(source, "w") as stream:
        for _ in range(40):
            stream.write('3\nLattice="23.5 0 0 0 23.5 0 0 0 23.5" Properties=species:S:1:pos:R:3:force:R:3 ')
            stream.write(f'TotEnergy={-17.2 + 0.01 * rng.normal()!r} pbc="T T T"\n')
            for symbol, position in zip("OHH", [[1.0, 1.0, 1.0], [2.8, 1.0, 1.0], [0.5, 2.7, 1.0]]):
                stream.write(f"{symbol} {' '.join(map(str, position))} 0.01 -0.02 0.03\n")
    small = Recipe(
        **{**water.__dict__, "source": {"frames": 40}, "split": SplitRule(test=0.1, val=0.1, subsets=(10,))}
    )
    manifest = split_dataset(source, small, tmp_path / "split")
    frame = next(iter(__import__("ase.io", fromlist=["iread"]).iread(tmp_path / "split" / "train.extxyz")))
    assert frame.cell[0, 0] == pytest.approx(23.5 * 0.529177210903, rel=1e-10)
    assert frame.get_forces()[0, 0] == pytest.approx(0.01 * 51.422067476, rel=1e-9)
    assert (
        json.loads((tmp_path / "split" / "manifest.json").read_text())["recipe"]["units"]["length"] == "bohr"
    )
    assert manifest["splits"]["test"]["count"] == 4


def test_shipped_recipes_are_consistent():
    ch4 = load_recipe("ch4")
    assert ch4.expected_frames == 7732488
    assert ch4.split.counts(ch4.expected_frames) == (20000, 10000, 100000)
    assert max(ch4.split.subsets) == 100000
    water = load_recipe("water")
    assert water.split.counts(1593) == (159, 159, 1275)
