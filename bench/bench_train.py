"""Training throughput (structures per second, median over epochs) and batching cost.

Prints, for float64 and float32, the median training throughput over the timed epochs of a real
``Trainer`` run (validation excluded), their ratio, and the median time to build a batch from the
precomputed neighbour lists (``collate``) versus recomputing them (``graph_from_atoms``).

Usage:
    OMP_NUM_THREADS=1 python bench/bench_train.py                       # synthetic EMT copper, 32 atoms
    OMP_NUM_THREADS=2 python bench/bench_train.py --data /work/runs/deepmd_water_split_own \
        --set model.cutoff=4.5 --set model.n_radial=6 --set model.iterations=1 --set model.hidden=[32,32]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

from reann_driver.model import graph_from_atoms
from reann_driver.train import Trainer, collate, load_config


def synthetic_split(directory: Path, n_frames: int = 48, seed: int = 0) -> Path:
    """Rattled 32-atom fcc copper labelled with EMT, written as a split directory."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_frames):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
        atoms.positions += rng.normal(0, 0.08, size=atoms.positions.shape)
        atoms.calc = EMT()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        frames.append(atoms)
    write(directory / "train.extxyz", frames[: n_frames - 8])
    write(directory / "val.extxyz", frames[n_frames - 8 :])
    return directory


def epoch_throughputs(
    split_dir: Path, output: Path, dtype: str, epochs: int, overrides: list[str]
) -> list[float]:
    config = load_config(
        None,
        [
            f"data.split_dir={split_dir}",
            f"output.dir={output}",
            f"model.dtype={dtype}",
            f"train.epochs={epochs}",
            "train.device=cpu",
            "output.progress=false",
            "output.tensorboard=false",
            *overrides,
        ],
    )
    trainer = Trainer(config, force=True)
    rates = []
    try:
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            trainer.train_epoch(epoch)
            rates.append(len(trainer.data["train"]) / (time.perf_counter() - start))
    finally:
        trainer.close()
    return rates[1:] if len(rates) > 1 else rates  # the first epoch includes warm-up


def batching_times(split_dir: Path, cutoff: float, batch_size: int, repeats: int = 5) -> tuple[float, float]:
    """Median seconds to build one batch: from precomputed graphs, and recomputing neighbour lists."""
    from reann_driver.train.data import prepare, read_structures, species_of

    frames = read_structures(split_dir / "train.extxyz")[:batch_size]
    species = species_of(frames)
    structures = prepare(frames, species, cutoff)
    precomputed, recomputed = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        collate(structures)
        precomputed.append(time.perf_counter() - start)
        start = time.perf_counter()
        graph_from_atoms(frames, species, cutoff)
        recomputed.append(time.perf_counter() - start)
    return statistics.median(precomputed), statistics.median(recomputed)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, help="split directory (train.extxyz, val.extxyz); default synthetic"
    )
    parser.add_argument("--epochs", type=int, default=4, help="epochs per precision (the first is not timed)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override")
    parser.add_argument("--dtypes", default="float64,float32", help="comma-separated precisions to time")
    args = parser.parse_args()
    overrides = ["model.n_radial=6", "model.l_max=2", "model.iterations=1", "model.hidden=[32,32]"]
    overrides += ["model.cutoff=4.5", "train.batch_size=4", *args.overrides]
    with tempfile.TemporaryDirectory() as scratch:
        split_dir = args.data or synthetic_split(Path(scratch))
        n_atoms = len(read(split_dir / "train.extxyz", 0))
        print(f"data: {split_dir} ({n_atoms} atoms in the first frame); overrides: {' '.join(overrides)}")
        medians = {}
        for dtype in args.dtypes.split(","):
            rates = epoch_throughputs(
                split_dir, Path(scratch) / f"run_{dtype}", dtype, args.epochs, overrides
            )
            medians[dtype] = statistics.median(rates)
            print(f"{dtype}: median {medians[dtype]:.2f} structures/s over {len(rates)} epochs {rates}")
        if {"float32", "float64"} <= medians.keys():
            print(f"float32 / float64 throughput ratio: {medians['float32'] / medians['float64']:.2f}")
        config = load_config(None, overrides)
        fast, slow = batching_times(split_dir, config.model.cutoff, config.train.batch_size)
        print(
            f"batch of {config.train.batch_size}: collate {1e3 * fast:.2f} ms, "
            f"graph_from_atoms {1e3 * slow:.2f} ms (ratio {slow / fast:.1f})"
        )


if __name__ == "__main__":
    main()
