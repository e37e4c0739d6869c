"""stats: reference energies are fitted only when identifiable; moments and neighbour counts are right."""

import numpy as np
import pytest

from reann_driver.data import dataset_statistics, make_frame


def molecule_frames(formulas, references, seed=0):
    rng = np.random.default_rng(seed)
    frames = []
    for symbols in formulas:
        positions = np.arange(len(symbols))[:, None] * np.array([1.2, 0.0, 0.0])
        energy = sum(references[s] for s in symbols) + rng.normal(scale=1e-3)
        frames.append(
            make_frame(symbols, positions, energy=energy, forces=rng.normal(size=(len(symbols), 3)))
        )
    return frames


def test_fixed_stoichiometry_is_reported_rank_deficient():
    references = {"H": -13.6, "O": -432.0}
    frames = molecule_frames([["O", "H", "H"]] * 5 + [["O", "H", "H"] * 2] * 5, references)
    result = dataset_statistics(frames).report()["reference_energies"]
    assert result["identifiable"] is False
    assert result["rank"] == 1
    assert "rank 1 < 2" in result["reason"]
    assert "energies_eV" not in result


def test_varied_composition_recovers_reference_energies():
    references = {"C": -1029.0, "H": -13.6, "O": -432.0}
    formulas = [
        ["C", "H", "H", "H", "H"],
        ["O", "H", "H"],
        ["C", "O"],
        ["C", "O", "O"],
        ["H", "H"],
        ["O", "O"],
    ]
    result = dataset_statistics(molecule_frames(formulas, references)).report()["reference_energies"]
    assert result["identifiable"] is True
    for symbol, value in references.items():
        assert result["energies_eV"][symbol] == pytest.approx(value, abs=0.01)


def test_moments_force_rms_and_neighbours():
    frames = [
        make_frame(["H", "H"], [[0, 0, 0], [0.74, 0, 0]], energy=-2.0, forces=[[1.0, 0, 0], [-1.0, 0, 0]]),
        make_frame(["H", "H"], [[0, 0, 0], [3.0, 0, 0]], energy=-4.0, forces=[[0.0, 2.0, 0], [0, -2.0, 0]]),
    ]
    report = dataset_statistics(frames, cutoff=1.0, isolated_atoms={"H": -0.5}).report()
    assert report["energy_per_atom_eV"]["mean"] == pytest.approx(-1.5)
    assert report["energy_per_atom_eV"]["std"] == pytest.approx(0.5)
    assert report["force_rms_per_element_eV_per_A"]["H"] == pytest.approx(np.sqrt((1 + 1 + 4 + 4) / 12))
    assert report["neighbours"]["mean"] == pytest.approx(0.5)
    assert report["binding_energy_per_atom_eV"]["mean"] == pytest.approx(-1.0)
    assert report["formulas"] == {"H2": 2}


def test_plot_is_written(tmp_path):
    from reann_driver.data.stats import plot_histograms

    frames = molecule_frames([["O", "H", "H"]] * 4, {"H": -13.6, "O": -432.0})
    statistics = dataset_statistics(frames, cutoff=2.0, keep_values=True)
    plot_histograms(statistics, str(tmp_path / "hist.png"))
    assert (tmp_path / "hist.png").read_bytes()[:4] == b"\x89PNG"
