"""Initialisation of the orbital mixing matrices (``model.mixing_init``) and files written before it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import reann_driver
from reann_driver import load_model
from reann_driver.model.density import initial_mixing


def test_orthogonal_mixing_is_the_original_codes() -> None:
    """One [k, m] matrix with orthonormal rows, the same for every L and iteration (``hyper``)."""
    torch.manual_seed(0)
    mixing = initial_mixing("orthogonal", n_sets=3, n_l=3, n_radial=8, n_orbitals=108)
    assert mixing.shape == (3, 3, 8, 108)
    single = mixing[0, 0]
    torch.testing.assert_close(single @ single.T, torch.eye(8), atol=1e-6, rtol=0)
    assert torch.equal(mixing, single.expand_as(mixing))
    assert mixing.is_contiguous()  # a real tensor, not a view: each copy trains on its own


def test_normal_mixing_scale() -> None:
    torch.manual_seed(0)
    mixing = initial_mixing("normal", n_sets=1, n_l=3, n_radial=8, n_orbitals=108)
    assert abs(float(mixing.std()) - 8**-0.5) < 0.03
    assert not torch.equal(mixing[0, 0], mixing[0, 1])


def test_unknown_mixing_init_is_refused() -> None:
    with pytest.raises(ValueError, match="mixing_init"):
        reann_driver.REANN(["H"], mixing_init="xavier")


def test_file_without_mixing_init_loads_and_says_normal(tmp_path: Path) -> None:
    """Files written before the option existed were initialised with ``normal``; they load unchanged."""
    model = reann_driver.REANN(["H", "C"], iterations=1, hidden=(8,), n_radial=3, l_max=1)
    path = tmp_path / "model.pt"
    model.save(str(path))
    payload = torch.load(path, weights_only=True)
    del payload["config"]["mixing_init"]
    torch.save(payload, path)
    loaded = load_model(path)
    assert loaded.config["mixing_init"] == "normal"
    assert torch.equal(loaded.density.mixing, model.density.mixing)
