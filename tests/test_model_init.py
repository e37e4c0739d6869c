"""Initialisation of the radial Gaussians (``model.radial_init``) and of the orbital mixing matrices
(``model.mixing_init``), and files written before the latter."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import reann_driver
from reann_driver import load_model
from reann_driver.model.density import initial_mixing
from reann_driver.model.radial import GaussianRadial


def test_graded_radial_functions_are_narrowest_at_short_range() -> None:
    """``graded``: centres evenly spaced on [0, r_c), alpha from 1.2 Å^-2 at r = 0 down to 0.2 at the last
    centre, the same for every neighbour element and independent of the seed; ``wide`` is the reverse."""
    graded = GaussianRadial(n_species=2, n_radial=8, cutoff=5.0, init="graded")
    wide = GaussianRadial(n_species=2, n_radial=8, cutoff=5.0, init="wide")
    spacing = torch.full((7,), 5.0 / 8)
    for radial in (graded, wide):
        centres = radial.centres.detach()
        torch.testing.assert_close(centres[:, 0], torch.zeros(2))
        torch.testing.assert_close(torch.diff(centres[0]), spacing)
        assert torch.equal(centres[0], centres[1])
    alpha = graded.alpha.detach()
    torch.testing.assert_close(alpha[:, 0], torch.full((2,), 1.2))
    torch.testing.assert_close(alpha[:, -1], torch.full((2,), 0.2))
    assert bool((torch.diff(alpha[0]) < 0).all())
    torch.testing.assert_close(wide.alpha.detach(), alpha.flip(1))
    torch.manual_seed(1)
    again = GaussianRadial(n_species=2, n_radial=8, cutoff=5.0, init="graded")
    assert torch.equal(again.alpha, graded.alpha) and torch.equal(again.centres, graded.centres)


def test_unknown_radial_init_is_refused() -> None:
    with pytest.raises(ValueError, match="radial_init"):
        reann_driver.REANN(["H"], radial_init="random")


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
