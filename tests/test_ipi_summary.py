"""reann pimd without a server: input checks (shm refused) and the run summary's warnings."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from reann_driver.cli.main import main
from reann_driver.ipi.inputs import Ensemble, InputError, read_ensemble, read_socket_spec
from reann_driver.ipi.summary import block_average, summarise

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ch4_pimd"
HEADER = """# column   1     --> step : The current simulation time step.
# column   2     --> conserved{electronvolt} : The value of the conserved energy quantity per bead.
# column   3     --> temperature{kelvin} : The current temperature, as obtained from the MD kinetic energy.
# column   4     --> kinetic_cv{electronvolt} : The centroid-virial quantum kinetic energy.
"""
CLASSICAL_CH4 = 1.5 * 5 * 8.617333262e-5 * 300  # eV


def properties(tmp_path: Path, temperature, kinetic, conserved) -> Path:
    path = tmp_path / "ch4.out"
    rows = [
        f"{10 * i} {c:.8f} {t:.4f} {k:.6f}"
        for i, (c, t, k) in enumerate(zip(conserved, temperature, kinetic))
    ]
    path.write_text(HEADER + "\n".join(rows) + "\n")
    return path


def test_shm_is_refused_with_a_clear_message(tmp_path):
    text = (EXAMPLE / "input.xml").read_text().replace("mode='unix'", "mode='shm'")
    (tmp_path / "input.xml").write_text(text)
    with pytest.raises(InputError, match="not i-PI's shared-memory 'shm' mode"):
        read_socket_spec(tmp_path / "input.xml")
    shutil.copy(EXAMPLE / "init.xyz", tmp_path)
    result = CliRunner().invoke(main, ["pimd", str(tmp_path), "--model", str(EXAMPLE / "model.pt")])
    assert result.exit_code == 1 and "shm" in result.output
    assert not (tmp_path / "runs").exists()  # refused before anything was written


def test_ensemble_of_the_example():
    assert read_ensemble(EXAMPLE / "input.xml") == Ensemble(mode="nvt", temperature=pytest.approx(300.0))


def test_a_good_run_gives_no_warning(tmp_path):
    rng = np.random.default_rng(0)
    n = 200
    path = properties(
        tmp_path, 300 + rng.normal(0, 20, n), 0.55 + rng.normal(0, 0.05, n), rng.normal(0, 0.002, n)
    )
    averages = summarise(path, 5, Ensemble("nvt", 300.0))
    assert averages.warnings == []
    assert averages.temperature[0] == pytest.approx(300, abs=5) and math.isfinite(averages.temperature[1])
    assert averages.classical_kinetic == pytest.approx(CLASSICAL_CH4, rel=0.02)


def test_a_short_blown_up_run_is_flagged(tmp_path):
    """The case of the issue: 'temperature: 6635.3 ± nan K' and kinetic_cv below the classical value."""
    path = properties(tmp_path, [300, 2000, 6000, 9000, 12000], [0.1, 0.2, 0.3, 0.4, 0.5], [0, 1, 5, 20, 80])
    warnings = " | ".join(summarise(path, 5, Ensemble("nvt", 300.0)).warnings)
    assert "too few for an error bar" in warnings
    assert "far from the thermostat's 300.0 K" in warnings
    assert "the conserved quantity drifts" in warnings
    path = properties(tmp_path, [300] * 20, [0.1] * 20, [0.0] * 20)
    assert "below the classical" in " ".join(summarise(path, 5, Ensemble("nvt", 300.0)).warnings)


def test_nve_energy_drift_is_named(tmp_path):
    n = 50
    path = properties(tmp_path, [300.0] * n, [0.6] * n, np.linspace(0, 0.5, n))
    warnings = summarise(path, 5, Ensemble("nve", 300.0)).warnings
    assert len(warnings) == 1 and "energy is not conserved in this NVE run" in warnings[0]


def test_block_average_needs_enough_rows():
    assert math.isnan(block_average(np.arange(9.0))[1])
    mean, error = block_average(np.arange(10.0))
    assert mean == 4.5 and error > 0
