"""This branch's inference engine next to a checkout of another release, in one process, alternating calls.

    git worktree add /tmp/release 7abdbab          # reann-driver 0.1
    python bench/bench_engine.py /tmp/release --water /path/to/deepmd-kit_examples-water/data/data_0

Both packages are imported in the same process (the reference under another name) and evaluate the
same model (written by the reference, read back here through the 0.1 upgrade path) at the anchor
hyper-parameters: r_c 5 Å, 8 radial, L_max 2, T 3, networks [64, 64] / [32, 32], float64, one thread.
Prints medians of alternating calls and the ratio ours / reference for

* one 192-atom water box, energy + forces, through the ASE calculator, the i-PI driver's evaluator and a
  direct model call (graph built beforehand);
* a batch of 32 boxes (per box) through the same three entry points (the calculator: 32 calls);
* our driver's evaluator with its kept neighbour slots (default skin) next to a fresh neighbour list;
* the cost per atom of a direct call from 192 to 24,576 atoms (replicated boxes);
* our direct call with its hand-written force pass next to autograd's (192 to 12,288 atoms);
* the peak memory per atom of one direct call (each measured in a fresh subprocess: VmHWM);
* with ``--compile``, our driver's evaluator with ``compile=True`` (torch.compile) next to the reference's
  driver, and the time of its first (compiling) call.

The driver's evaluator of this branch keeps its neighbour slots between calls; each call gets fresh
small displacements (0.01 Å, below half the skin), as in MD between neighbour-list rebuilds.
Timings on a shared machine are noisy: compare the ratios, which alternate calls to cancel load.
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from ase import Atoms
from frames import deepmd_frame

ROOT = Path(__file__).resolve().parents[1]
ANCHOR = {
    "cutoff": 5.0,
    "n_radial": 8,
    "l_max": 2,
    "iterations": 3,
    "hidden": (64, 64),
    "coefficient_hidden": (32, 32),
    "dtype": "float64",
}
SIZES = ((1, 1, 1), (2, 2, 2), (4, 4, 4), (4, 4, 8))  # 192 ... 24,576 atoms


def import_package(root: Path) -> SimpleNamespace:
    """The entry points of the reann_driver package under ``root``; afterwards the name is free again."""
    sys.path.insert(0, str(root))
    try:
        modules = [
            importlib.import_module(name)
            for name in ("reann_driver.model", "reann_driver.calculator", "reann_driver.ipi.evaluator")
        ]
        memory = importlib.import_module("reann_driver.memory")
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == "reann_driver" or n.startswith("reann_driver.")]:
            del sys.modules[name]
    model, calculator, evaluator = modules
    return SimpleNamespace(
        REANN=model.REANN,
        load_model=model.load_model,
        graph_from_atoms=model.graph_from_atoms,
        REANNCalculator=calculator.REANNCalculator,
        BatchEvaluator=evaluator.BatchEvaluator,
        bohr=evaluator.ANGSTROM_PER_BOHR,
        keep_freed_memory=memory.keep_freed_memory,
    )


def alternate(ours: Callable[[], object], theirs: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median seconds of ``ours`` and ``theirs`` called in turn (after one warm-up call each)."""
    ours(), theirs()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for function, record in ((ours, times[0]), (theirs, times[1])):
            start = time.perf_counter()
            function()
            record.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def entry_points(package: SimpleNamespace, model_file: Path, boxes: list[Atoms]) -> dict:
    """Three callables per package evaluating all ``boxes`` (E+F): calculator, driver, direct."""
    model = package.load_model(model_file)
    calculator = package.REANNCalculator(model_file)
    graph = package.graph_from_atoms(boxes, model.species, model.cutoff)

    def through_calculator() -> None:
        for box in boxes:
            atoms = box.copy()
            atoms.calc = calculator
            calculator.reset()  # the same positions again: no cached results
            atoms.get_forces()

    return {
        "calculator": through_calculator,
        "driver": driver_call(package, model_file, boxes),
        "direct": lambda: model(graph, forces=True),
    }


def driver_call(
    package: SimpleNamespace, model_file: Path, boxes: list[Atoms], **options: object
) -> Callable[[], object]:
    """One request of the i-PI driver's evaluator (its defaults, or ``options``) on ``boxes`` moved by
    fresh 0.01 Å displacements."""
    model = package.load_model(model_file)
    evaluator = package.BatchEvaluator(model, boxes[0].get_chemical_symbols(), **options)
    cells = np.stack([np.asarray(b.get_cell()).T / package.bohr for b in boxes])
    positions = np.stack([b.get_positions() / package.bohr for b in boxes])
    rng = np.random.default_rng(0)
    return lambda: evaluator.evaluate(
        cells, positions + rng.normal(scale=0.01 / package.bohr, size=positions.shape)
    )


def direct_call(
    package: SimpleNamespace, model_file: Path, box: Atoms, adjoint: bool | None = None
) -> Callable[[], object]:
    """E+F of ``box`` by a direct model call on a graph built beforehand; ``adjoint`` (this branch only):
    with the hand-written force pass (``REANN.adjoint_pass``) or, False, autograd's (the training path)."""
    model = package.load_model(model_file)
    if adjoint is not None:
        model.adjoint_forces = adjoint
    graph = package.graph_from_atoms([box], model.species, model.cutoff)
    return lambda: model(graph, forces=True)


def peak_memory(root: Path, model_file: Path, water: str, size: tuple[int, int, int]) -> float:
    """Peak resident memory (bytes) one direct E+F call adds, in a fresh process (VmHWM of
    /proc/self/status: unlike ru_maxrss, it is not inherited from the parent across exec)."""
    script = f"""
import resource, re, sys, torch
sys.path.insert(0, {str(root)!r}); sys.path.insert(0, {str(ROOT / "bench")!r})
torch.set_num_threads(1)
from frames import deepmd_frame
from reann_driver.model import graph_from_atoms, load_model
model = load_model({str(model_file)!r})
atoms = deepmd_frame({water!r}).repeat({size!r})
graph = graph_from_atoms([atoms], model.species, model.cutoff)
before = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()
model(graph, forces=True)
status = open("/proc/self/status").read()
print(int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) * 1024 - before)
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"OMP_NUM_THREADS": "1"},
    )
    return float(result.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("reference", type=Path, help="checkout of the reference release (e.g. /tmp/release)")
    parser.add_argument("--water", required=True, help="DeePMD-kit system folder with 64-water frames")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--largest", type=int, default=len(SIZES), help="how many of the sizes to scan")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument(
        "--compile", action="store_true", help="also time our driver with compile=True against 0.1's driver"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    theirs = import_package(args.reference.resolve())
    ours = import_package(ROOT)
    ours.keep_freed_memory()  # as the i-PI driver does, for both

    torch.manual_seed(0)
    model_file = Path("/tmp") / f"bench-engine-{abs(hash(str(ROOT))) % 10**8}.pt"
    theirs.REANN(["H", "O"], **ANCHOR).save(str(model_file))  # 0.1 defaults at the anchor sizes
    water = deepmd_frame(args.water)
    check_ours, check_theirs = ours.load_model(model_file), theirs.load_model(model_file)
    graph_ours = ours.graph_from_atoms([water], ["H", "O"], 5.0)
    graph_theirs = theirs.graph_from_atoms([water], ["H", "O"], 5.0)
    difference = (check_ours(graph_ours)["forces"] - check_theirs(graph_theirs)["forces"]).abs().max()
    print(
        f"torch {torch.__version__}, 1 thread, float64; "
        f"same model in both: max |ΔF| = {float(difference):.1e} eV/Å"
    )
    figures: dict[str, object] = {}

    def repeats_for(box: Atoms) -> int:
        return max(1, args.repeats // (1 + len(box) // 2000))

    print(f"\n{'E+F':34} {'ours ms':>10} {'reference ms':>13} {'ratio':>7}")
    for label, boxes in (
        ("one box (192 atoms)", [water]),
        (f"batch of {args.batch}, per box", [water] * args.batch),
    ):
        mine, reference = entry_points(ours, model_file, boxes), entry_points(theirs, model_file, boxes)
        repeats = args.repeats if len(boxes) == 1 else max(3, args.repeats // 3)
        for name in mine:
            a, b = alternate(mine[name], reference[name], repeats)
            a, b = 1e3 * a / len(boxes), 1e3 * b / len(boxes)
            print(f"{name + ', ' + label:34} {a:10.2f} {b:13.2f} {a / b:7.2f}")
            figures[f"{name}, {label}"] = {"ours_ms": a, "reference_ms": b}

    print(f"\n{'our driver: kept slots / fresh list':34} {'kept ms':>10} {'fresh ms':>13} {'ratio':>7}")
    for label, boxes in (("one box", [water]), (f"batch of {args.batch}, per box", [water] * args.batch)):
        kept = driver_call(ours, model_file, boxes)
        fresh = driver_call(ours, model_file, boxes, skin=None)
        a, b = alternate(kept, fresh, args.repeats if len(boxes) == 1 else max(3, args.repeats // 3))
        a, b = 1e3 * a / len(boxes), 1e3 * b / len(boxes)
        print(f"{label:34} {a:10.2f} {b:13.2f} {a / b:7.2f}")
        figures[f"kept slots, {label}"] = {"kept_ms": a, "fresh_ms": b}

    if args.compile:
        print(
            f"\n{'driver compiled / reference driver':34} {'ours ms':>10} {'reference ms':>13} {'ratio':>7}"
        )
        for label, boxes in (("one box", [water]), (f"batch of {args.batch}, per box", [water] * args.batch)):
            start = time.perf_counter()
            compiled = driver_call(ours, model_file, boxes, compile=True)
            compiled()  # compiles
            seconds = time.perf_counter() - start
            reference = driver_call(theirs, model_file, boxes)
            a, b = alternate(
                compiled, reference, args.repeats if len(boxes) == 1 else max(3, args.repeats // 3)
            )
            a, b = 1e3 * a / len(boxes), 1e3 * b / len(boxes)
            print(f"{label:34} {a:10.2f} {b:13.2f} {a / b:7.2f}   (first call {seconds:.0f} s)")
            figures[f"compiled driver, {label}"] = {"ours_ms": a, "reference_ms": b, "compile_s": seconds}

    print(f"\n{'direct E+F, cost per atom':34} {'ours µs':>10} {'reference µs':>13} {'ratio':>7}")
    for size in SIZES[: args.largest]:
        box = water.repeat(size)
        a, b = alternate(
            direct_call(ours, model_file, box), direct_call(theirs, model_file, box), repeats_for(box)
        )
        a, b = 1e6 * a / len(box), 1e6 * b / len(box)
        print(f"{len(box):>7} atoms{'':22} {a:10.1f} {b:13.1f} {a / b:7.2f}")
        figures[f"per atom, {len(box)} atoms"] = {"ours_us": a, "reference_us": b}

    header = f"{'adjoint µs':>10} {'autograd µs':>13} {'ratio':>7}"
    print(f"\n{'force pass, hand-written/autograd':34} {header}")
    for size in SIZES[: min(args.largest, 3)]:
        box = water.repeat(size)
        a, b = alternate(
            direct_call(ours, model_file, box, adjoint=True),
            direct_call(ours, model_file, box, adjoint=False),
            repeats_for(box),
        )
        a, b = 1e6 * a / len(box), 1e6 * b / len(box)
        print(f"{len(box):>7} atoms{'':22} {a:10.1f} {b:13.1f} {a / b:7.2f}")
        figures[f"force pass, {len(box)} atoms"] = {"adjoint_us": a, "autograd_us": b}

    print(f"\n{'peak memory of one direct E+F':34} {'ours KB/at':>10} {'ref. KB/atom':>13} {'ratio':>7}")
    for size in SIZES[1 : args.largest]:
        n_atoms = 192 * int(np.prod(size))
        a = peak_memory(ROOT, model_file, args.water, size) / n_atoms / 1e3
        b = peak_memory(args.reference.resolve(), model_file, args.water, size) / n_atoms / 1e3
        print(f"{n_atoms:>7} atoms{'':22} {a:10.1f} {b:13.1f} {a / b:7.2f}")
        figures[f"peak memory, {n_atoms} atoms"] = {"ours_kb_per_atom": a, "reference_kb_per_atom": b}
    print(f"\nmax RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.1f} GB")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    model_file.unlink()


if __name__ == "__main__":
    main()
