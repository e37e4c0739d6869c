"""Active learning for CH4 with GFN2-xTB labels: PIMD with a committee -> select -> label -> retrain.

    python examples/active_learning/run.py --output runs/al        # about 20-30 min on one CPU core

Round 0 trains a committee of 4 on 30 GFN2-xTB frames near the equilibrium geometry. Every round then
runs 8-bead PIMD at 300 K and at 1000 K with the committee inside i-PI's ``<ffcommittee>``
(``active_thresh``/``active_output``), picks the most uncertain and mutually distinct structures with
``reann-data select``, labels them with GFN2-xTB and retrains. A fixed test set of PIMD frames sampled
with GFN2-xTB itself (i-PI + tblite through ASE's socket client) measures the force error of every
round. Prints and writes (``OUTPUT/results.json``, ``OUTPUT/active_learning.png``) per round: training
frames, test force RMSE, and the fraction of PIMD steps x beads whose uncertainty exceeds the threshold.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import click
import numpy as np
from ase.io import write

from reann_driver.data.frames import make_frame
from reann_driver.data.labelers import XTBLabeler
from reann_driver.data.trajectory import read_candidates
from reann_driver.ipi.evaluator import HARTREE_PER_EV
from reann_driver.ipi.launch import prepare_input, read_socket_spec, run_ipi_with_driver, wrap_in_committee

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
TEMPERATURES = (300, 1000)
MODEL = [  # a small REANN: the point is the loop, not the last meV
    "model.cutoff=4.0",
    "model.n_radial=6",
    "model.l_max=2",
    "model.iterations=1",
    "model.hidden=[32, 32]",
]


def run(command: list[str], log: Path) -> None:
    """Run a reann command, its output appended to ``log``; stop on failure."""
    with open(log, "a") as stream:
        stream.write(f"$ {' '.join(command)}\n")
        stream.flush()
        done = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT)
    if done.returncode:
        raise click.ClickException(f"{' '.join(command)} failed; see {log}")


def pimd_input(folder: Path, temperature: int, steps: int, committee: bool, threshold: float) -> Path:
    """The 8-bead CH4 PIMD input at ``temperature`` in ``folder``: the force field wrapped in
    <ffcommittee> (JSON committee, active-learning output) or plain (the reference)."""
    (folder / "init.xyz").write_text((HERE / "init.xyz").read_text())
    address = f"al-{uuid.uuid4().hex[:10]}"
    batch_size = None if committee else 1  # the reference: ASE's socket client does not batch
    prepare_input(HERE / "pimd.xml", folder / "input.xml", steps, batch_size=batch_size, unix_address=address)
    tree = ET.parse(folder / "input.xml")
    root = tree.getroot()
    for element in root.iter("temperature"):
        element.text = str(temperature)
    for element in root.iter("velocities"):
        element.text = str(temperature)
    tree.write(folder / "input.xml")
    if committee:
        fields = {"active_output": "active", "active_thresh": str(threshold)}
        wrap_in_committee(folder / "input.xml", fields)
    return folder / "input.xml"


def reference_test_set(folder: Path, steps: int) -> list:
    """Frames of GFN2-xTB PIMD at each temperature (every bead every 20 steps, the start left out),
    labelled with GFN2-xTB."""
    frames = []
    labeler = XTBLabeler()
    for temperature in TEMPERATURES:
        run_dir = folder / f"reference_{temperature}K"
        run_dir.mkdir(parents=True)
        input_xml = pimd_input(run_dir, temperature, steps, committee=False, threshold=0.0)
        address = read_socket_spec(input_xml).address.unix_path
        client = [sys.executable, str(HERE / "xtb_client.py"), str(address), "init.xyz"]
        summary = run_ipi_with_driver(input_xml, run_dir, None, timeout=3600, client_command=client)
        if not summary.ok:
            raise click.ClickException(f"the reference PIMD failed; see {run_dir}/ipi.log")
        for path in sorted(run_dir.glob("ch4.pos_*.xyz")):
            for atoms in read_candidates(path, periodic=False)[1:]:
                labels = labeler.label(atoms)
                info = {"config_type": f"reference PIMD {temperature} K"}
                frames.append(
                    make_frame(
                        atoms.symbols, atoms.positions, energy=labels.energy, forces=labels.forces, info=info
                    )
                )
    if not frames:
        raise click.ClickException(f"the reference PIMD wrote no frames after step 0; see {folder}")
    return frames


def committee_pimd(folder: Path, committee: Path, steps: int, threshold: float) -> dict[int, float]:
    """Fraction of steps x beads above ``threshold`` per temperature; the active outputs stay behind."""
    fractions = {}
    for temperature in TEMPERATURES:
        run_dir = folder / f"pimd_{temperature}K"
        run_dir.mkdir(parents=True)
        input_xml = pimd_input(run_dir, temperature, steps, committee=True, threshold=threshold)
        driver = ["--model", str(committee), "--template", "init.xyz", "--non-periodic"]
        summary = run_ipi_with_driver(input_xml, run_dir, driver, timeout=3600)
        uncertainties = np.array(  # Hartree, every bead at every step
            [
                float(line)
                for path in sorted(run_dir.glob("ch4.unc_*"))
                for line in path.read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")
            ]
        )
        fractions[temperature] = float(np.mean(uncertainties / HARTREE_PER_EV > threshold))
        if not summary.ok:
            click.echo(f"  PIMD at {temperature} K stopped early (see {run_dir}); its steps so far count")
    return fractions


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--output", required=True, type=click.Path(file_okay=False, path_type=Path), help="New folder.")
@click.option("--rounds", type=click.IntRange(1), default=3, show_default=True)
@click.option("--members", type=click.IntRange(2), default=4, show_default=True)
@click.option(
    "--select", "per_round", type=click.IntRange(1), default=8, show_default=True, help="Per round."
)
@click.option("--steps", type=click.IntRange(10), default=200, show_default=True, help="PIMD steps per run.")
@click.option(
    "--reference-steps", type=click.IntRange(20), default=100, show_default=True, help="Test-set PIMD steps."
)
@click.option("--threshold", type=float, default=0.03, show_default=True, help="Uncertainty threshold, eV.")
@click.option("--epochs", type=click.IntRange(1), default=300, show_default=True)
@click.option("--minutes", type=float, default=1.0, show_default=True, help="Training time cap per member.")
def main(
    output: Path,
    rounds: int,
    members: int,
    per_round: int,
    steps: int,
    reference_steps: int,
    threshold: float,
    epochs: int,
    minutes: float,
) -> None:
    """Run the active-learning loop in the new folder OUTPUT and print the per-round table."""
    if output.exists():
        raise click.ClickException(f"{output} exists; choose a new --output")
    output.mkdir(parents=True)
    log = output / "commands.log"
    started = time.perf_counter()
    click.echo("round 0 data: 30 GFN2-xTB frames near the equilibrium geometry")
    start = output / "start.extxyz"
    run(
        [
            str(BIN / "reann-data"),
            "generate",
            "ch4",
            "--n",
            "30",
            "--seed",
            "1",
            "--labeler",
            "gfn2-xtb",
            "--mode",
            "perturbed",
            "--sigma",
            "0.1",
            "--quiet",
            str(start),
        ],
        log,
    )
    run(
        [
            str(BIN / "reann-data"),
            "split",
            str(start),
            "--seed",
            "0",
            "--test",
            "0",
            "--val",
            "6",
            "--out",
            str(output / "data_0"),
        ],
        log,
    )
    click.echo("fixed test set: GFN2-xTB PIMD frames at 300 K and 1000 K")
    test_frames = reference_test_set(output / "reference", steps=reference_steps)
    write(output / "test.extxyz", test_frames)
    rows = []
    for round_ in range(rounds + 1):
        data, run_dir = output / f"data_{round_}", output / f"train_{round_}"
        click.echo(f"round {round_}: train a committee of {members} ({time.perf_counter() - started:.0f} s)")
        settings = [
            f"data.split_dir={data}",
            f"data.test={output / 'test.extxyz'}",
            f"output.dir={run_dir}",
            f"train.committee={members}",
            f"train.epochs={epochs}",
            f"train.max_minutes={minutes}",
            "train.batch_size=4",
            "train.device=cpu",
            "output.progress=false",
            "output.tensorboard=false",
            *MODEL,
        ]
        run([str(BIN / "reann"), "train", *[f"--set={s}" for s in settings]], log)
        committee = run_dir / "committee.pt"
        run(
            [
                str(BIN / "reann"),
                "eval",
                str(committee),
                str(output / "test.extxyz"),
                "--json",
                str(output / f"eval_{round_}.json"),
            ],
            log,
        )
        table = json.loads((output / f"eval_{round_}.json").read_text())
        fractions = committee_pimd(output / f"pimd_{round_}", committee, steps, threshold)
        manifest = json.loads((data / "manifest.json").read_text())
        rows.append(
            {
                "round": round_,
                "train_frames": manifest["splits"]["train"]["count"],
                "test_force_rmse_meV_per_A": table["force_rmse_meV_per_A"],
                "alpha": table["calibration"]["alpha"],
                **{f"above_threshold_{t}K": fractions[t] for t in TEMPERATURES},
            }
        )
        click.echo("  " + json.dumps(rows[-1]))
        if round_ == rounds:
            break
        candidates = output / f"pimd_{round_}" / "active.json"  # i-PI's records of both temperatures
        dumps = [output / f"pimd_{round_}" / f"pimd_{t}K" / "ch4.active" for t in TEMPERATURES]
        candidates.write_text("".join(path.read_text() for path in dumps if path.is_file()))
        if not candidates.read_text().strip():
            click.echo("  no structure above the threshold: the committee is confident; stopping")
            break
        run(
            [
                str(BIN / "reann-data"),
                "select",
                str(candidates),
                "--template",
                str(HERE / "init.xyz"),
                "--non-periodic",
                "--committee",
                str(committee),
                "--n",
                str(per_round),
                "--labeler",
                "gfn2-xtb",
                "--split",
                str(data),
                "--out",
                str(output / f"data_{round_ + 1}"),
            ],
            log,
        )
    (output / "results.json").write_text(json.dumps(rows, indent=2))
    plot(rows, output / "active_learning.png", threshold)
    click.echo(
        f"\n{'round':>5} {'train frames':>12} {'force RMSE meV/Å':>17} "
        + " ".join(f"{f'> thr {t} K':>11}" for t in TEMPERATURES)
    )
    for row in rows:
        click.echo(
            f"{row['round']:>5} {row['train_frames']:>12} {row['test_force_rmse_meV_per_A']:>17.1f} "
            + " ".join(f"{row[f'above_threshold_{t}K']:>11.3f}" for t in TEMPERATURES)
        )
    click.echo(f"total {time.perf_counter() - started:.0f} s; files in {output}")


def plot(rows: list[dict], path: Path, threshold: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [row["round"] for row in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6), constrained_layout=True)
    left.plot(rounds, [row["test_force_rmse_meV_per_A"] for row in rows], "o-")
    left.set_xlabel("round")
    left.set_ylabel("test force RMSE (meV/Å)")
    for temperature in TEMPERATURES:
        right.plot(
            rounds, [row[f"above_threshold_{temperature}K"] for row in rows], "o-", label=f"{temperature} K"
        )
    right.set_xlabel("round")
    right.set_ylabel(f"fraction of bead steps with spread > {threshold:g} eV")
    right.legend()
    for axis in (left, right):
        axis.set_xticks(rounds)
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    main()
