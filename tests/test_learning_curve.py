"""bench/learning_curve.py: its results file, its resumption, its tables and the training command it runs."""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from reann_driver.train import load_config
from reann_driver.train.config import TrainConfig

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "learning_curve.py"


@pytest.fixture(scope="module")
def curve():
    spec = importlib.util.spec_from_file_location("learning_curve", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["learning_curve"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def result(curve, size: int, t: int, energy: float = 10.0, force: float = 100.0):
    return curve.Result(
        size=size,
        iterations=t,
        energy_rmse_meV_per_atom=energy,
        force_rmse_meV_per_A=force,
        epochs=12,
        minutes=1.5,
        final_lr=2.5e-4,
        max_minutes=2.0,
        threads=1,
        version="0.1.0",
    )


def test_results_round_trip_sorted(curve, tmp_path):
    path = tmp_path / "results.jsonl"
    assert curve.read_results(path) == {}
    records = [result(curve, 300, 1), result(curve, 100, 2), result(curve, 100, 0)]
    curve.write_results(path, records)
    keys = [
        (json.loads(line)["size"], json.loads(line)["iterations"]) for line in path.read_text().splitlines()
    ]
    assert keys == [(100, 0), (100, 2), (300, 1)]
    assert curve.read_results(path) == {r.key: r for r in records}


def test_bad_results_line_names_the_line(curve, tmp_path):
    path = tmp_path / "results.jsonl"
    curve.write_results(path, [result(curve, 100, 0)])
    with open(path, "a") as stream:
        stream.write('{"size": 300}\n')
    with pytest.raises(SystemExit, match=r"results.jsonl:2: not a learning-curve result"):
        curve.read_results(path)


def test_finished_runs_are_skipped_and_published(curve, tmp_path, capsys):
    out, docs = tmp_path / "out", tmp_path / "docs"
    out.mkdir()
    docs.mkdir()
    records = [result(curve, n, t, 100.0 / n, 1000.0 / n) for n in (20, 40) for t in (0, 1)]
    curve.write_results(out / "results.jsonl", [*records, result(curve, 80, 3)])
    # no data folder: any run that is not skipped would fail
    argv = ["--data", str(tmp_path / "missing"), "--out", str(out), "--sizes", "20,40", "--iterations", "0,1"]
    curve.main([*argv, "--docs", str(docs)])
    assert capsys.readouterr().out.count("done, skipped") == 4
    table = (out / "learning_curve.md").read_text()
    assert "| 20 | 5.0 | 5.0 |" in table and "| 40 | 25.0 | 25.0 |" in table
    assert "| 80 |" not in table  # only the sizes and T asked for
    assert "](learning_curve.png)" in table
    assert "](learning-curve.png)" in (docs / "learning-curve-results.md").read_text()
    for png in (out / "learning_curve.png", docs / "learning-curve.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_run_reports_missing_data(curve, tmp_path):
    with pytest.raises(SystemExit, match=r"train_20\.extxyz does not exist"):
        curve.main(
            ["--data", str(tmp_path), "--out", str(tmp_path / "out"), "--sizes", "20", "--iterations", "0"]
        )


def test_table_leaves_missing_runs_blank(curve):
    table = curve.markdown_table([result(curve, 100, 0, 12.345, 456.78), result(curve, 300, 2)])
    assert "| training frames | T=0 | T=2 |" in table
    assert "| 100 | 12.3 |  |" in table
    assert "| 100 | 0 | 12.35 | 456.8 | 12 | 1.5 | 2.50e-04 |" in table
    assert curve.markdown_table([]) == "No run finished yet.\n"


def test_command_sets_model_keys_and_budget_only(curve, tmp_path):
    files = {name: tmp_path / f"{name}.extxyz" for name in ("train", "val", "test")}
    command = curve.train_command(files, tmp_path / "run", 3, 20.0)
    settings = [command[i + 1] for i, word in enumerate(command) if word == "--set"]
    assert sorted(s for s in settings if s.startswith("train.")) == ["train.max_minutes=20.0"]
    config = load_config(None, settings)
    assert config.train == replace(TrainConfig(), max_minutes=20.0)
    model = config.model
    assert (model.cutoff, model.n_radial, model.l_max, model.iterations) == (5.0, 8, 2, 3)
    assert (model.hidden, model.coefficient_hidden, model.dtype) == ([64, 64], [32, 32], "float64")
    assert config.data.train == str(files["train"]) and config.data.test == str(files["test"])
    no_budget = curve.train_command(files, tmp_path / "run", 0, None)
    assert not any(word.startswith("train.") for word in no_budget)
