"""Issue 14, dataset side: no input overwritten, nothing silently wrong, no traceback.

Each test names the item of the issue it guards. Commands run through click's runner with
``catch_exceptions=False``, so a traceback fails the test instead of being swallowed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from reann_driver.data import DataError, DataFormatError, make_frame, read_frames, write_frames
from reann_driver.data.cli import main
from reann_driver.data.recipes import SplitRule
from reann_driver.train.config import Config
from reann_driver.train.inputs import data_paths


def run(*args: object):
    return CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)


def frames(count: int = 10, force_scale: float = 1.0) -> list:
    rng = np.random.default_rng(0)
    return [
        make_frame(
            ["O", "H", "H"],
            np.array([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]]) + rng.normal(0, 0.02, (3, 3)),
            energy=-14.0 + 0.01 * i,
            forces=rng.normal(size=(3, 3)) * force_scale,
            info={"config_type": "w", "source": "t", "source_index": i},
        )
        for i in range(count)
    ]


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    folder = tmp_path / "d"
    folder.mkdir()
    write_frames(folder / "a.xyz", frames())
    return folder / "a.xyz"


def fails_cleanly(result, *words: str) -> None:
    assert result.exit_code not in (0, None), result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, result.output


# --- item 1 and 2: one output rule ---------------------------------------------------------------


def test_item1_validate_json_onto_its_input_or_an_existing_file(dataset: Path) -> None:
    original = dataset.read_bytes()
    for force in ([], ["--force"]):
        fails_cleanly(run("validate", dataset, "--json", dataset, *force), "is the input")
    assert dataset.read_bytes() == original
    report = dataset.with_name("report.json")
    report.write_text("keep me")
    fails_cleanly(run("validate", dataset, "--json", report), "--force")
    assert report.read_text() == "keep me"
    assert run("validate", dataset, "--json", report, "--force").exit_code == 0
    assert json.loads(report.read_text())["frames"] == 10


def test_item1_and_8_stats_plot_needs_force_and_a_png(dataset: Path) -> None:
    plot = dataset.with_name("hist.png")
    plot.write_bytes(b"old")
    fails_cleanly(run("stats", dataset, "--plot", plot), "--force")
    assert plot.read_bytes() == b"old"
    assert run("stats", dataset, "--plot", plot, "--force").exit_code == 0
    assert plot.read_bytes().startswith(b"\x89PNG")
    fails_cleanly(run("stats", dataset, "--plot", dataset.with_name("hist.txt")), ".png")
    fails_cleanly(run("stats", dataset, "--plot", dataset.with_suffix(".png").with_name("a.xyz")), ".png")


def test_item2_split_into_the_folder_of_its_source_is_refused(dataset: Path) -> None:
    original = dataset.read_bytes()
    fails_cleanly(run("split", dataset, "--out", dataset.parent, "--seed", "1", "--force"), "contains")
    assert dataset.read_bytes() == original


def test_item2_convert_onto_or_around_its_input_is_refused(dataset: Path, tmp_path: Path) -> None:
    original = dataset.read_bytes()
    fails_cleanly(run("convert", dataset, dataset, "--force"), "is the input")
    fails_cleanly(run("convert", dataset, dataset.parent, "--to", "deepmd", "--force"), "contains")
    (tmp_path / "link.xyz").symlink_to(dataset)
    fails_cleanly(run("convert", dataset, tmp_path / "link.xyz", "--force"), "is the input")
    assert dataset.read_bytes() == original
    system = tmp_path / "sys"
    assert run("convert", dataset, system, "--to", "deepmd").exit_code == 0
    listing = sorted(p.relative_to(system) for p in system.rglob("*"))
    fails_cleanly(run("convert", system, system, "--to", "deepmd", "--force"), "is the input")
    fails_cleanly(run("convert", system, system / "inner", "--to", "deepmd", "--force"), "lies inside")
    assert sorted(p.relative_to(system) for p in system.rglob("*")) == listing


def test_item8_convert_onto_an_existing_folder(dataset: Path, tmp_path: Path) -> None:
    folder = tmp_path / "outdir"
    folder.mkdir()
    (folder / "keep").write_text("x")
    fails_cleanly(run("convert", dataset, folder, "--force"), "is a folder")
    assert (folder / "keep").read_text() == "x"


@pytest.mark.parametrize(
    "command",
    [
        ["convert", "{src}", "{out}"],
        ["convert", "{src}", "{out}", "--to", "reann"],
        ["validate", "{src}", "--json", "{out}"],
        ["stats", "{src}", "--plot", "{out}"],
    ],
)
def test_item1_every_file_writer_refuses_to_overwrite(dataset: Path, command: list[str]) -> None:
    out = dataset.with_name("out.png")
    out.write_bytes(b"keep")
    arguments = [word.format(src=dataset, out=out) for word in command]
    fails_cleanly(run(*arguments), "--force")
    assert out.read_bytes() == b"keep"


def test_item1_generate_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "ch4.extxyz"
    out.write_text("keep")
    fails_cleanly(run("generate", "ch4", out, "--n", "1", "--seed", "1", "--labeler", "emt"), "--force")
    assert out.read_text() == "keep"


# --- item 3: split sizes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sizes", [("8", "8"), ("0.9", "0.5"), ("0.0", "2"), ("2", "0.01"), ("5", "5")], ids=str
)
def test_item3_split_sizes_leaving_an_empty_or_negative_split(dataset: Path, sizes) -> None:
    test, val = sizes
    out = dataset.parent.parent / "split"
    result = run("split", dataset, "--out", out, "--seed", "1", "--test", test, "--val", val)
    fails_cleanly(result)
    assert "split" in result.output and not out.exists()


def test_item3_an_empty_split_asked_for_is_written_and_not_trained_on(dataset: Path) -> None:
    out = dataset.parent.parent / "split"
    assert run("split", dataset, "--out", out, "--seed", "1", "--test", "0", "--val", "2").exit_code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert [manifest["splits"][name]["count"] for name in ("test", "val", "train")] == [0, 2, 8]
    assert (out / "test.extxyz").read_bytes() == b""
    config = Config()
    config.data.split_dir = str(out)
    assert data_paths(config)["test"] is None  # reann train: no test set, instead of failing on the file
    assert run("verify", out, "--source", dataset).exit_code == 0


def test_item3_split_rule_counts() -> None:
    assert SplitRule(test=2, val=2).counts(10) == (2, 2, 6)
    assert SplitRule(test=0, val=2).counts(10) == (0, 2, 8)  # asked for: an empty test split
    assert SplitRule(test=4, val=0, train=0).counts(10) == (4, 0, 0)  # a test-only pool
    for rule in (
        SplitRule(test=8, val=8),
        SplitRule(test=0.9, val=0.5),
        SplitRule(test=0.01),  # a fraction that rounds to no frame
        SplitRule(test=5, val=5),  # no frame left for train
        SplitRule(test=0, val=0, train=0),
    ):
        with pytest.raises(DataError):
            rule.counts(10)


def test_item8_verify_with_an_incomplete_manifest(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "split"
    assert run("split", dataset, "--out", out, "--seed", "1", "--test", "2", "--val", "2").exit_code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    for broken in (
        {k: v for k, v in manifest.items() if k != "splits"},
        {**manifest, "splits": {"train": 3}},
    ):
        (out / "manifest.json").write_text(json.dumps(broken))
        fails_cleanly(run("verify", out), "manifest")
    (out / "manifest.json").write_text(json.dumps({**manifest, "source": {"sha256": "x", "frames": "many"}}))
    fails_cleanly(run("verify", out, "--source", dataset), "manifest")


# --- items 4 and 6: duplicate energies, extra columns ---------------------------------------


AMBIGUOUS = {  # item 4 (a label given twice) and item 6 (an extra column): file, text, expected message
    "key twice": ("twice.xyz", "1\nenergy=1.0 energy=2.0 Properties=species:S:1:pos:R:3\nH 0 0 0\n",
                  r"twice.xyz: line 2: .*'energy' twice"),
    "energy twice": ("input.data", "begin\natom 0 0 0 H 0 0 0 0 0\nenergy 1.0\nenergy 2.0\ncharge 0\nend\n",
                     r"line 4: a second 'energy' line"),
    "extra column": ("extra.xyz", "2\nProperties=species:S:1:pos:R:3 energy=1\nH 0 0 0\nH 0 0 1 7\n",
                     r"line 4: an atom line with 5 columns; .* declare 4"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(AMBIGUOUS))
def test_items4_and_6_ambiguous_lines_are_errors_naming_the_line(tmp_path: Path, case: str) -> None:
    name, text, message = AMBIGUOUS[case]
    (tmp_path / name).write_text(text)
    with pytest.raises(DataFormatError, match=message):
        list(read_frames(tmp_path / name))


# --- item 6: empty inputs, absolute force bound, extra columns, NUL bytes, i-PI xyz -------------


@pytest.mark.parametrize("name", ["e.xyz", "e.xyz.gz", "zero.xyz.gz", "configuration", "input.data"])
def test_item6_empty_inputs_are_errors(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name == "e.xyz.gz":  # a compressed empty file (zero.xyz.gz: a 0-byte file)
        import gzip

        path.write_bytes(gzip.compress(b""))
    else:
        path.write_bytes(b"")
    fails_cleanly(run("convert", path, tmp_path / "out.xyz"), name, "no frames")
    assert not (tmp_path / "out.xyz").exists()
    fails_cleanly(run("validate", path), "no frames")


def test_item6_empty_deepmd_set_is_an_error(tmp_path: Path) -> None:
    write_frames(tmp_path / "dp", frames(2), "deepmd")
    for array in (tmp_path / "dp").rglob("*.npy"):
        np.save(array, np.load(array)[:0])
    fails_cleanly(run("stats", tmp_path / "dp"), "no frames")


def test_item6_validate_bounds_forces_in_a_small_file(tmp_path: Path) -> None:
    path = tmp_path / "big.xyz"
    write_frames(path, frames(3, force_scale=1e300))
    result = run("validate", path)
    assert result.exit_code == 1 and "force-bound" in result.output and "Traceback" not in result.output
    write_frames(path, frames(3, force_scale=1e5), force=True)
    assert run("validate", path).exit_code == 1
    assert run("validate", path, "--max-force", "1e7").exit_code == 0


def test_item6_nul_byte_in_a_header(tmp_path: Path) -> None:
    path = tmp_path / "nul.xyz"
    path.write_bytes(b"1\nenergy=1\x00 Properties=species:S:1:pos:R:3\nH 0 0 0\n")
    fails_cleanly(run("convert", path, tmp_path / "out.xyz"), "line 2", "NUL")
    assert not (tmp_path / "out.xyz").exists()


def test_item6_ipi_xyz_keeps_its_cell_and_units(tmp_path: Path) -> None:
    path = tmp_path / "ipi.xyz"
    path.write_text(
        "2\n# CELL{H}: 20.0 0 0 0 20.0 0 0 0 20.0 Step: 0 Bead: 0 positions{angstrom} cell{atomic_unit}\n"
        "O 1.0 2.0 3.0\nH 1.5 2.0 3.0\n"
    )
    (atoms,) = read_frames(path)
    assert atoms.pbc.all()
    assert atoms.cell.array == pytest.approx(np.eye(3) * 20.0 * 0.529177210903, rel=1e-6)
    assert atoms.positions[1] == pytest.approx([1.5, 2.0, 3.0])
    path.write_text(
        "1\n# CELL(abcABC): 10 10 10 90 90 90 Step: 0 positions{atomic_unit} cell{angstrom}\nH 1 0 0\n"
    )
    (atoms,) = read_frames(path)
    assert atoms.cell.lengths() == pytest.approx([10, 10, 10]) and atoms.positions[0, 0] == pytest.approx(
        0.529177, 1e-5
    )


# --- item 7: geometry that crashed the unit check -----------------------------------------------

BAD_GEOMETRY = {
    "nan": "2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=1\nH nan 0 0 0 0 0\nH 0 0 1 0 0 0\n",
    "1e999": "2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=1\nH 1e999 0 0 0 0 0\nH 0 0 1 0 0 0\n",
    "1e300": "2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=1\nH 1e300 0 0 0 0 0\nH 0 0 1 0 0 0\n",
    "pbc-no-lattice": '2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=1 pbc="T T T"\n'
    "H 0 0 0 0 0 0\nH 0 0 1 0 0 0\n",
    "tiny-cell": '2\nLattice="1e-3 0 0 0 1e-3 0 0 0 1e-3" Properties=species:S:1:pos:R:3:forces:R:3 energy=1 '
    'pbc="T T T"\nH 0 0 0 0 0 0\nH 0 0 1e-4 0 0 0\n',
}


@pytest.mark.parametrize("case", sorted(BAD_GEOMETRY))
def test_item7_bad_geometry_is_a_frame_error_not_a_crash(tmp_path: Path, case: str) -> None:
    source = tmp_path / f"{case}.xyz"
    source.write_text(BAD_GEOMETRY[case])
    result = run("validate", source)
    assert result.exit_code == 1 and "frame 0: error" in result.output, result.output
    for arguments in (
        ["stats", source, "--cutoff", "3"],
        ["convert", source, tmp_path / "c.xyz", "--force"],
        ["convert", source, tmp_path / "dp", "--to", "deepmd", "--force"],
        ["stats", source],
    ):
        result = run(*arguments)
        assert "Traceback" not in result.output
        assert result.exit_code == 0 or f"{case}.xyz" in result.output, result.output
    shutil.rmtree(tmp_path / "dp", ignore_errors=True)
