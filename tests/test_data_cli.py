"""The reann-data command line: each command end to end, clean one-line errors, exit statuses."""

import json

import numpy as np
from click.testing import CliRunner

from reann_driver.data.cli import main

N2P2_ATOMIC = (
    "begin\ncomment water in atomic units\n"
    "lattice 23.5 0.0 0.0\nlattice 0.0 23.5 0.0\nlattice 0.0 0.0 23.5\n"
    "atom 1.0 1.0 1.0 O 0.0 0.0 0.01 0.02 0.03\n"
    "atom 2.8 1.0 1.0 H 0.0 0.0 -0.01 0.0 0.0\n"
    "atom 0.5 2.7 1.0 H 0.0 0.0 0.0 -0.02 -0.03\n"
    "energy {energy}\ncharge 0.0\nend\n"
)


def n2p2_file(path, count=6):
    path.write_text("".join(N2P2_ATOMIC.format(energy=-76.4 + 0.001 * i) for i in range(count)))
    return path


def run(*args):
    return CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)


def test_convert_atomic_units_then_validate_and_stats(tmp_path):
    source = n2p2_file(tmp_path / "input.data")
    out = tmp_path / "water.extxyz"
    result = run("convert", source, out, "--units", "atomic")
    assert result.exit_code == 0, result.output
    assert "wrote 6 frames" in result.output
    assert "Bohr?" not in result.output

    result = run("validate", out)
    assert result.exit_code == 0, result.output
    assert "6 frames checked: 0 errors" in result.output

    result = run("stats", out, "--cutoff", "2.0", "--json")
    report = json.loads(result.output)
    assert report["frames"] == 6
    assert report["reference_energies"]["identifiable"] is False
    result = run("stats", out, "--plot", tmp_path / "h.png")
    assert "not identifiable" in result.output and (tmp_path / "h.png").exists()


def test_convert_warns_when_units_look_wrong(tmp_path):
    source = n2p2_file(tmp_path / "input.data")
    result = run("convert", source, tmp_path / "wrong.extxyz")
    assert result.exit_code == 0
    assert "Bohr?" in result.output


def test_convert_refuses_overwrite_and_reports_bad_input_in_one_line(tmp_path):
    source = n2p2_file(tmp_path / "input.data")
    out = tmp_path / "water.extxyz"
    out.write_text("keep me")
    result = CliRunner().invoke(main, ["convert", str(source), str(out)])
    assert result.exit_code == 1 and "--force" in result.output and "Traceback" not in result.output
    assert out.read_text() == "keep me"
    broken = tmp_path / "broken.data"
    broken.write_text(source.read_text()[:-30])
    result = CliRunner().invoke(main, ["convert", str(broken), str(tmp_path / "x.extxyz")])
    assert result.exit_code == 1
    assert "broken.data: line" in result.output and "truncated" in result.output
    assert not (tmp_path / "x.extxyz").exists()


def test_export_formats(tmp_path):
    source = n2p2_file(tmp_path / "input.data")
    for fmt, name in (("reann", "configuration"), ("deepmd", "dp"), ("asedb", "w.db"), ("n2p2", "out.data")):
        result = run("convert", source, tmp_path / name, "--units", "atomic", "--to", fmt)
        assert result.exit_code == 0, result.output
        back = run("stats", tmp_path / name, "--from", fmt, "--json")
        assert json.loads(back.output)["frames"] == 6


def test_validate_exit_status_on_errors(tmp_path):
    path = tmp_path / "bad.extxyz"
    path.write_text(
        '2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=nan pbc="F F F"\n'
        "H 0 0 0 0 0 0\nH 0.2 0 0 0 0 0\n"
    )
    result = CliRunner().invoke(main, ["validate", str(path), "--json", str(tmp_path / "issues.json")])
    assert result.exit_code == 1
    assert "frame 0: error: non-finite" in result.output
    assert json.loads((tmp_path / "issues.json").read_text())["counts"]["non-finite"] == 1


def test_split_verify_and_generate(tmp_path):
    generated = tmp_path / "ch4.extxyz"
    result = run("generate", "ch4", generated, "--n", "20", "--seed", "1", "--labeler", "emt", "--quiet")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["written"] == 20

    args = [
        "split",
        generated,
        "--seed",
        "3",
        "--test",
        "0.2",
        "--val",
        "4",
        "--subsets",
        "5,10",
        "--write-subsets",
    ]
    result = run(*args, "--out", tmp_path / "split")
    assert result.exit_code == 0, result.output
    assert "{'train': 12, 'val': 4, 'test': 4}" in result.output
    result = run(*args, "--out", tmp_path / "again")
    for name in ("train.extxyz", "train_5.extxyz", "manifest.json"):
        assert (tmp_path / "split" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()
    result = run("verify", tmp_path / "split", "--source", generated)
    assert result.exit_code == 0 and "all files match" in result.output
    (tmp_path / "split" / "val.extxyz").write_text("")
    result = CliRunner().invoke(main, ["verify", str(tmp_path / "split")])
    assert result.exit_code == 1 and "mismatch: val" in result.output


def test_split_needs_a_seed_or_recipe(tmp_path):
    source = n2p2_file(tmp_path / "input.data")
    result = CliRunner().invoke(main, ["split", str(source), "--out", str(tmp_path / "s")])
    assert result.exit_code == 1 and "--seed" in result.output
    result = CliRunner().invoke(
        main, ["split", str(source), "--recipe", "nonexistent", "--out", str(tmp_path / "s")]
    )
    assert result.exit_code == 1 and "no recipe" in result.output


def test_split_with_recipe_and_unit_override(tmp_path):
    """--recipe water on an n2p2 file: --from overrides the recipe's format, its atomic units are kept."""
    source = n2p2_file(tmp_path / "input.data", count=20)
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        'name = "mini"\nseed = 5\n[units]\nlength = "bohr"\nenergy = "hartree"\nforce = "hartree/bohr"\n'
    )
    result = run("split", source, "--recipe", recipe, "--from", "n2p2", "--out", tmp_path / "s")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert manifest["recipe"]["units"]["length"] == "bohr" and manifest["seed"] == 5
    from ase.io import read

    frame = read(tmp_path / "s" / "train.extxyz", 0)
    assert np.isclose(frame.cell[0, 0], 23.5 * 0.529177210903)


def test_convert_warns_about_missing_labels(tmp_path):
    path = tmp_path / "q.extxyz"
    path.write_text('2\nProperties=species:S:1:pos:R:3 U0=-1.1 pbc="F F F"\nH 0 0 0\nH 0.74 0 0\n')
    result = run("convert", path, tmp_path / "out.extxyz", "--energy-key", "U0x")
    assert result.exit_code == 0
    assert "1 of 1 frames have no energy (looked for 'U0x')" in result.output
    result = run("convert", path, tmp_path / "ok.extxyz", "--energy-key", "U0", "--energy-unit", "hartree")
    assert "have no energy" not in result.output and "have no forces" in result.output


def test_recipe_label_keys_do_not_follow_a_different_format(tmp_path):
    """A water-like recipe (extxyz, TotEnergy/force) on an n2p2 copy: --from n2p2 uses n2p2 labels."""
    source = n2p2_file(tmp_path / "input.data", count=30)
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        'name = "w"\nseed = 1\nformat = "extxyz"\n[keys]\nenergy = "TotEnergy"\nforces = "force"\n'
        '[units]\nlength = "bohr"\nenergy = "hartree"\nforce = "hartree/bohr"\n'
    )
    result = run("split", source, "--recipe", recipe, "--from", "n2p2", "--out", tmp_path / "s")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert manifest["rejected"] == [] and manifest["splits"]["train"]["count"] == 24
