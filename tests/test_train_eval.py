"""Evaluation numbers against an independent NumPy computation; predictions, plots, export and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule
from ase.io import read, write
from click.testing import CliRunner
from conftest import label_with_emt, randomised

from reann_driver import REANN, REANNCalculator, load_model
from reann_driver.cli.main import main
from reann_driver.train import evaluate_structures, export_model, parity_plot, write_predictions
from reann_driver.train.checkpoints import save_checkpoint


@pytest.fixture(scope="module")
def frames():
    """Mixed periodic alloys and molecules (elements Cu, Al, H, C), EMT labels."""
    rng = np.random.default_rng(5)
    result = []
    for k in range(7):
        atoms = bulk("Cu", "fcc", a=3.7, cubic=True) if k % 2 else molecule("CH4")
        if k % 2:
            atoms.symbols[rng.random(len(atoms)) < 0.5] = "Al"
        atoms.positions += rng.normal(0, 0.05, size=atoms.positions.shape)
        label_with_emt(atoms)
        result.append(atoms)
    return result


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = REANN(["H", "C", "Al", "Cu"], cutoff=3.5, n_radial=4, l_max=1, iterations=1, hidden=(8, 8))
    return randomised(model).eval()


def numpy_reference(model, frames):
    """Predictions through the ASE calculator, one frame at a time, and the errors in plain NumPy."""
    calculator = REANNCalculator(model)
    e_pred, e_ref, n, f_pred, f_ref, symbols = [], [], [], [], [], []
    for atoms in frames:
        copy = atoms.copy()
        copy.calc = calculator
        e_pred.append(copy.get_potential_energy())
        f_pred.append(copy.get_forces())
        e_ref.append(atoms.get_potential_energy())
        f_ref.append(atoms.get_forces())
        n.append(len(atoms))
        symbols += atoms.get_chemical_symbols()
    de = np.array(e_pred) - np.array(e_ref)
    df = np.concatenate(f_pred) - np.concatenate(f_ref)
    symbols_array = np.array(symbols)
    return {
        "energy_rmse_per_atom_meV": 1e3 * np.sqrt(np.mean((de / np.array(n)) ** 2)),
        "energy_mae_per_atom_meV": 1e3 * np.mean(np.abs(de / np.array(n))),
        "energy_rmse_meV": 1e3 * np.sqrt(np.mean(de**2)),
        "energy_mae_meV": 1e3 * np.mean(np.abs(de)),
        "force_rmse_meV_per_A": 1e3 * np.sqrt(np.mean(df**2)),
        "force_mae_meV_per_A": 1e3 * np.mean(np.abs(df)),
        "per_element": {s: 1e3 * np.sqrt(np.mean(df[symbols_array == s] ** 2)) for s in set(symbols)},
    }, np.array(e_pred)


def test_eval_numbers_equal_numpy(model, frames):
    evaluation = evaluate_structures(model, frames, batch_size=3)
    expected, energies = numpy_reference(model, frames)
    np.testing.assert_allclose(evaluation.energies, energies, rtol=0, atol=1e-9)
    for key, value in expected.items():
        if key != "per_element":
            assert evaluation.metrics[key] == pytest.approx(value, rel=1e-9), key
    assert set(evaluation.metrics["force_per_element"]) == {"H", "C", "Al", "Cu"}
    for element, rmse in expected["per_element"].items():
        assert evaluation.metrics["force_per_element"][element]["rmse_meV_per_A"] == pytest.approx(
            rmse, rel=1e-9
        )


def test_predictions_file_and_parity_plot(model, frames, tmp_path):
    evaluation = evaluate_structures(model, frames)
    write_predictions(frames, evaluation, tmp_path / "pred.extxyz")
    parity_plot(frames, evaluation, tmp_path / "parity.png")
    written = read(tmp_path / "pred.extxyz", ":")
    assert len(written) == len(frames)
    for atoms, reference, energy in zip(written, frames, evaluation.energies):
        assert atoms.get_potential_energy() == pytest.approx(energy, abs=1e-8)
        assert atoms.info["REF_energy"] == pytest.approx(reference.get_potential_energy(), abs=1e-8)
        np.testing.assert_allclose(atoms.arrays["REF_forces"], reference.get_forces(), atol=1e-8)
    assert (tmp_path / "parity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_export_uses_ema_weights_and_cli_eval(model, frames, tmp_path):
    ema = REANN(**model.config)
    with torch.no_grad():
        for parameter in ema.parameters():
            parameter.add_(0.01)
    checkpoint = {
        "epoch": 3,
        "best_val_loss": 0.5,
        "config": {"train": {"lr": 1e-3}},
        "model_config": model.config,
        "reference_energies": None,
        "model_state": model.state_dict(),
        "ema_state": ema.state_dict(),
    }
    save_checkpoint(tmp_path / "run" / "best.pt", checkpoint)
    export_model(tmp_path / "run", tmp_path / "model.pt")
    exported = load_model(tmp_path / "model.pt")
    for name, value in ema.state_dict().items():
        assert torch.equal(exported.state_dict()[name], value)
    assert exported.metadata["training"]["epochs"] == 3
    with pytest.raises(FileExistsError):
        export_model(tmp_path / "run", tmp_path / "model.pt")

    write(tmp_path / "data.extxyz", frames)
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "eval",
            str(tmp_path / "model.pt"),
            str(tmp_path / "data.extxyz"),
            "--json",
            str(tmp_path / "e.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "meV/atom" in result.output and "Cu" in result.output
    again = runner.invoke(
        main,
        [
            "eval",
            str(tmp_path / "model.pt"),
            str(tmp_path / "data.extxyz"),
            "--json",
            str(tmp_path / "e.json"),
        ],
    )
    assert again.exit_code != 0 and "--force" in again.output


def test_cli_train_reports_config_errors(tmp_path):
    runner = CliRunner()
    config = tmp_path / "c.yaml"
    config.write_text("train:\n  lr: abc\n")
    result = runner.invoke(main, ["train", str(config)])
    assert result.exit_code != 0
    assert "train.lr: expected float, got 'abc'" in result.output
    result = runner.invoke(
        main, ["train", str(config), "--set", "train.lr=1e-3", "--set", "model.widths=[8]"]
    )
    assert "model.widths: unknown key" in result.output
    template = runner.invoke(main, ["train", "--print-defaults"])
    assert template.exit_code == 0 and "energy_weight" in template.output
