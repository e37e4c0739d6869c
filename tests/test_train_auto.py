"""Training settings chosen from the data (train/auto.py) and the time-budget schedule of the trainer."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator
from test_train_loop import rattled_alloys, tiny_config, write_split

from reann_driver.train import load_config, train
from reann_driver.train.auto import (
    ENERGY_LENGTH,
    PATIENCE_STEPS,
    initial_coefficient,
    label_scales,
    mean_neighbours,
    resolve,
)
from reann_driver.train.config import ConfigError
from reann_driver.train.data import prepare
from reann_driver.train.trainer import Trainer


def methanes(n: int, forces: bool = True) -> list:
    """Rattled CH4 with made-up labels: energy -40 + 0.1 k eV, forces of RMS 2 eV/Å (or all zero)."""
    rng = np.random.default_rng(0)
    frames = []
    for k in range(n):
        atoms = molecule("CH4")
        atoms.positions += rng.normal(0, 0.05, atoms.positions.shape)
        values = rng.normal(0, 2.0, (5, 3)) if forces else np.zeros((5, 3))
        atoms.calc = SinglePointCalculator(atoms, energy=-40.0 + 0.1 * k, forces=values)
        frames.append(atoms)
    return frames


def test_loss_weights_follow_the_label_scales() -> None:
    frames = methanes(24)
    structures = prepare(frames, ["H", "C"], 4.0)
    mean = np.mean([a.get_potential_energy() / 5 for a in frames])
    energy_ms, force_ms = label_scales(structures, [mean, mean])
    forces = np.concatenate([a.get_forces().ravel() for a in frames])
    assert force_ms == pytest.approx(np.mean(forces**2))
    expected = np.mean([(a.get_potential_energy() / 5 - mean) ** 2 for a in frames])
    assert energy_ms == pytest.approx(expected)
    settings = resolve(load_config(None).train, structures, [mean, mean])
    assert settings.force_weight == pytest.approx(1 / force_ms)
    assert settings.energy_weight == pytest.approx(settings.force_weight / ENERGY_LENGTH**2)
    assert any("force_weight" in note for note in settings.notes)


def test_energy_only_data_get_no_force_weight() -> None:
    structures = prepare(methanes(8, forces=False), ["H", "C"], 4.0)
    settings = resolve(load_config(None).train, structures, [-8.0, -8.0])
    assert settings.force_weight == 0.0
    energy_ms, _ = label_scales(structures, [-8.0, -8.0])
    assert settings.energy_weight == pytest.approx(1 / energy_ms)
    assert any("no forces" in note for note in settings.notes)


def test_explicit_values_are_kept() -> None:
    structures = prepare(methanes(8), ["H", "C"], 4.0)
    config = load_config(
        None,
        [
            "train.energy_weight=3",
            "train.force_weight=2",
            "train.scheduler_patience=7",
            "train.ema_decay=0.9",
        ],
    )
    settings = resolve(config.train, structures, [-8.0, -8.0])
    assert (settings.energy_weight, settings.force_weight, settings.patience, settings.ema_decay) == (
        3.0,
        2.0,
        7,
        0.9,
    )
    assert settings.notes == ()
    assert resolve(load_config(None, ["train.ema_decay=null"]).train, structures, [0, 0]).ema_decay is None


@pytest.mark.parametrize(("n_frames", "batch", "patience"), [(16, 8, 500), (180, 8, 44), (80000, 8, 10)])
def test_patience_is_counted_in_optimizer_steps(n_frames: int, batch: int, patience: int) -> None:
    """A small set gets many epochs of patience (about PATIENCE_STEPS steps), a large one at least 10."""
    steps = math.ceil(n_frames / batch)
    frames = methanes(2)
    structures = prepare(frames, ["H", "C"], 4.0) * (n_frames // 2)
    settings = resolve(load_config(None, [f"train.batch_size={batch}"]).train, structures, [-8.0, -8.0])
    assert settings.steps_per_epoch == steps
    assert settings.patience == patience == max(10, math.ceil(PATIENCE_STEPS / steps))
    horizon = 1 / (1 - settings.ema_decay)
    assert horizon == pytest.approx(min(1000, patience * steps / 2))


def test_initial_coefficient_is_one_over_the_mean_neighbour_count(tmp_path) -> None:
    """auto: c^0 = 1 / <N_neighbours> of the training set, counted independently with ASE; an explicit
    value is kept; the trainer builds its model with the value and logs how it was chosen."""
    from ase.neighborlist import neighbor_list

    frames = methanes(6)
    structures = prepare(frames, ["H", "C"], 1.5)  # C-H 1.09 Å inside, H-H 1.78 Å outside
    counted = np.mean([len(neighbor_list("i", a, 1.5)) / len(a) for a in frames])
    assert counted == pytest.approx(8 / 5)
    assert mean_neighbours(structures) == pytest.approx(counted)
    value, notes = initial_coefficient("auto", structures)
    assert value == pytest.approx(5 / 8) and len(notes) == 1 and "1.60 per atom" in notes[0]
    assert initial_coefficient(0.3, structures) == (0.3, ())
    with pytest.raises(ConfigError, match="initial_coefficient"):
        load_config(None, ["model.initial_coefficient=0"])

    write_split(tmp_path, rattled_alloys(8, seed=6), 5, 3)
    trainer = Trainer(tiny_config(tmp_path, tmp_path / "probe", "model.initial_coefficient=auto"))
    try:
        expected = 1.0 / mean_neighbours(trainer.data["train"])
        assert trainer.model.config["initial_coefficient"] == pytest.approx(expected)
        coefficients = trainer.model.initial_coefficients.detach().numpy()
        np.testing.assert_allclose(coefficients, expected, rtol=1e-6)
        assert "model.initial_coefficient" in (tmp_path / "probe" / "train.log").read_text()
    finally:
        trainer.close()
    explicit = Trainer(tiny_config(tmp_path, tmp_path / "explicit", "model.initial_coefficient=0.5"))
    try:
        assert explicit.model.config["initial_coefficient"] == 0.5
    finally:
        explicit.close()


def test_a_time_budget_replaces_the_plateau_schedule(tmp_path) -> None:
    """With max_minutes and no explicit patience the budget alone sets the lr: no plateau schedule (which,
    driven by a small noisy validation set, stopped random-CH4 runs after two of twenty minutes), an EMA
    over 1000 steps, and a run that trains until the budget even when validation stops improving."""
    structures = prepare(methanes(8), ["H", "C"], 4.0)
    settings = resolve(load_config(None, ["train.max_minutes=20"]).train, structures, [-8.0, -8.0])
    assert settings.patience is None
    assert settings.ema_decay == pytest.approx(1 - 1 / 1000)
    assert any("no plateau schedule" in note for note in settings.notes)
    explicit = load_config(None, ["train.max_minutes=20", "train.scheduler_patience=3"]).train
    assert resolve(explicit, structures, [-8.0, -8.0]).patience == 3

    write_split(tmp_path, rattled_alloys(8, seed=6), 5, 3)
    # validation cannot improve at lr 1e-5 for long; a plateau schedule of patience 0 would stop at once
    options = ("train.lr=1e-5", "train.min_lr=1e-5", "train.max_minutes=0.05", "train.epochs=100000")
    trainer = Trainer(tiny_config(tmp_path, tmp_path / "probe", *options))
    try:
        assert trainer.scheduler is None
    finally:
        trainer.close()
    result = train(tiny_config(tmp_path, tmp_path / "run", *options))
    assert "time budget" in result.stop_reason
    assert "no plateau schedule" in (tmp_path / "run" / "train.log").read_text()


def test_time_budget_anneals_the_learning_rate(tmp_path) -> None:
    """With max_minutes the lr is capped: lr for the first quarter, min_lr at the end of the budget."""
    write_split(tmp_path, rattled_alloys(10, seed=3), 6, 4)
    config = tiny_config(tmp_path, tmp_path / "run", "train.max_minutes=10", "train.min_lr=1e-5")
    trainer = Trainer(config)
    try:
        for fraction, expected in [
            (0.0, 3e-3),
            (0.25, 3e-3),
            (0.625, 3e-3 * (1e-5 / 3e-3) ** 0.5),
            (1.0, 1e-5),
        ]:
            trainer.elapsed_seconds = fraction * 600
            assert trainer.budget_lr() == pytest.approx(expected)
    finally:
        trainer.close()


def test_the_log_says_why_training_stopped(tmp_path) -> None:
    write_split(tmp_path, rattled_alloys(8, seed=4), 5, 3)
    result = train(tiny_config(tmp_path, tmp_path / "run", "train.epochs=2"))
    log = (tmp_path / "run" / "train.log").read_text()
    assert "epoch budget of 2 epochs reached" in result.stop_reason
    assert "final learning rate" in log and result.final_lr == pytest.approx(3e-3)
    result = train(tiny_config(tmp_path, tmp_path / "run2", "train.lr=1e-5", "train.min_lr=1e-5",
                               "train.scheduler_patience=0", "train.epochs=50"))  # fmt: skip
    assert "fell below min_lr" in result.stop_reason and result.epochs < 50


def test_reference_loss_selects_on_a_fixed_metric(tmp_path) -> None:
    """The best model and the plateau use the weighted metric also with loss: reference, whose own
    value changes with the learning rate."""
    write_split(tmp_path, rattled_alloys(8, seed=5), 5, 3)
    trainer = Trainer(tiny_config(tmp_path, tmp_path / "run", "train.loss=reference"))
    try:
        sums = trainer.validate(trainer.ema.model, trainer.data["val"])
        metric = trainer.selection_metric(sums)
        for group in trainer.optimizer.param_groups:
            group["lr"] = 1e-4
        assert trainer.selection_metric(sums) == metric
        assert trainer.epoch_loss(sums) != pytest.approx(metric)
    finally:
        trainer.close()
