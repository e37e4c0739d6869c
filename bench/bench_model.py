"""Time REANN energy + forces: one CH4 molecule, one 64-water box (192 atoms), a batch of 32 boxes.

Prints the median wall time of repeated calls after warm-up (neighbour list included, and alone), and
the per-frame ratio of batched to single evaluation. Runs on the CPU and, when present, on CUDA.

    python bench/bench_model.py                       # default hyper-parameters, 1 CPU thread
    python bench/bench_model.py --water /path/to/deepmd/water/data_0 --iterations 3 --coefficient-hidden 32 32

glibc is told to keep freed memory (``reann_driver.memory``), as the i-PI driver does; without it a
batch of 32 boxes spends a sizeable part of its time in page faults.

Default model (documented in docs): r_c 5.0 Å, 8 radial functions, L_max 2, T = 2, networks [64, 64].
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import torch
from ase import Atoms
from ase.build import molecule
from frames import deepmd_frame

import reann_driver
from reann_driver.memory import keep_freed_memory
from reann_driver.model import graph_from_atoms


def water_box(source: str | None) -> Atoms:
    """A 64-water box: frame 0 of a DeePMD-kit system folder if given, else a 4x4x4 lattice of molecules."""
    if source:
        return deepmd_frame(source)
    rng = np.random.default_rng(0)
    edge = 12.42  # Å: 64 molecules at 1.0 g/cm^3
    template = molecule("H2O")
    atoms = Atoms(cell=np.eye(3) * edge, pbc=True)
    for index in np.ndindex(4, 4, 4):
        water = template.copy()
        water.rotate(rng.uniform(0, 360), rng.normal(size=3))
        water.translate((np.array(index) + 0.5) * edge / 4)
        atoms += water
    return atoms


def neighbours(model: reann_driver.REANN, structures: list[Atoms], device: str) -> object:
    return graph_from_atoms(structures, model.species, model.cutoff, model.dtype, device)


def energy_and_forces(model: reann_driver.REANN, structures: list[Atoms], device: str) -> object:
    return model(neighbours(model, structures, device), forces=True)


def median_ms(function: Callable[[], object], repeats: int, warmup: int = 3, sync: bool = False) -> float:
    return interleaved_medians_ms([function], repeats, sync, warmup)[0]


def interleaved_medians_ms(
    functions: list[Callable[[], object]], repeats: int, sync: bool = False, warmup: int = 3
) -> list[float]:
    """Median wall time (ms) of each function after ``warmup`` calls, the functions called in turn in
    every repeat (so that a change of machine load affects them alike)."""
    times: list[list[float]] = [[] for _ in functions]
    for repeat in range(warmup + repeats):
        for function, samples in zip(functions, times):
            if sync:
                torch.cuda.synchronize()
            start = time.perf_counter()
            function()
            if sync:
                torch.cuda.synchronize()
            if repeat >= warmup:
                samples.append(time.perf_counter() - start)
    return [1e3 * statistics.median(samples) for samples in times]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--water", help="DeePMD-kit system folder with a 64-water frame (default: built)")
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--coefficient-hidden", type=int, nargs="+", default=None)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as reann-driver does: large batches reuse freed heap instead of page-faulting

    water = water_box(args.water)
    systems = {"CH4 (5 atoms)": [molecule("CH4")], "water box (192 atoms)": [water]}
    systems[f"{args.batch} water boxes"] = [water] * args.batch
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(
        f"REANN r_c 5.0, n_radial 8, L_max 2, T {args.iterations}, hidden {args.hidden}, "
        f"coefficient hidden {args.coefficient_hidden or args.hidden}, {args.dtype}, "
        f"{args.threads} CPU thread(s), torch {torch.__version__}"
    )
    print(f"{'device':6} {'system':24} {'neighbours ms':>14} {'E+F ms':>10} {'ms/frame':>10}")
    for device in devices:
        torch.manual_seed(0)
        model = reann_driver.REANN(
            species=["H", "C", "O"],
            cutoff=5.0,
            n_radial=8,
            l_max=2,
            iterations=args.iterations,
            hidden=tuple(args.hidden),
            coefficient_hidden=tuple(args.coefficient_hidden) if args.coefficient_hidden else None,
            dtype=args.dtype,
        ).to(device)
        per_frame: dict[str, float] = {}
        for name, structures in systems.items():
            repeats = max(3, args.repeats // (4 if len(structures) > 1 else 1))

            sync = device == "cuda"
            neighbour_ms = median_ms(partial(neighbours, model, structures, device), repeats, sync=sync)
            total_ms = median_ms(partial(energy_and_forces, model, structures, device), repeats, sync=sync)
            per_frame[name] = total_ms / len(structures)
            print(f"{device:6} {name:24} {neighbour_ms:14.2f} {total_ms:10.2f} {per_frame[name]:10.2f}")
        batched, single = per_frame[f"{args.batch} water boxes"], per_frame["water box (192 atoms)"]
        print(f"{device:6} batched / single cost per frame: {batched / single:.2f}")


if __name__ == "__main__":
    main()
