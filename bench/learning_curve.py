"""Learning curve on the generated random-CH4 set: test energy and force RMSE versus training size, per T.

For every training size N and every number of iterations T, runs ``reann train`` (a subprocess of the
``reann`` command line) with only the model hyper-parameters set, the same for every run (r_c 5 Å,
8 radial functions, L_max 2, energy networks [64, 64], coefficient networks [32, 32], float64), plus
an optional wall-time budget ``train.max_minutes``; every other key keeps the default of the installed
reann-driver. The data are the folder written by ``datasets/ch4/learning-curve/make.sh DIR``:
``DIR/split/train_N.extxyz`` (nested training sets), ``DIR/split/val.extxyz`` and ``DIR/test/test.extxyz``.

Writes into ``--out``:

* ``results.jsonl``: one JSON object per finished run (size, T, test energy RMSE in meV/atom, test
  force RMSE in meV/Å, epochs, minutes of wall time, learning rate of the last epoch, settings). Runs
  already in it are skipped, so an interrupted curve continues where it stopped; a run that was cut
  off before it finished is started again from scratch.
* ``runs/N<size>_T<T>/``: the run folders (train.log, metrics.csv, test_metrics.json, model.pt), and
  ``runs/N<size>_T<T>.log``, the output of the command.
* ``learning_curve.png`` (log-log plot, one line per T) and ``learning_curve.md`` (tables).

``--docs DIR`` also writes ``DIR/learning-curve-results.md`` and ``DIR/learning-curve.png``, which the
documentation page ``docs/learning-curve.md`` includes.

Usage:
    bash datasets/ch4/learning-curve/make.sh /work/data/curve/data
    python bench/learning_curve.py --data /work/data/curve/data --out /work/runs/curve \
        --minutes 20 --docs docs
    python bench/learning_curve.py --data /work/data/curve/data --out /tmp/curve-smoke \
        --sizes 20,40 --iterations 0,1 --minutes 0.2        # a quick end-to-end check
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import reann_driver
from reann_driver.atomic import atomic_path

MODEL_KEYS: dict[str, Any] = {
    "cutoff": 5.0,  # Å
    "n_radial": 8,
    "l_max": 2,
    "hidden": [64, 64],
    "coefficient_hidden": [32, 32],
    "dtype": "float64",
}
DEFAULT_SIZES = (100, 300, 1000, 3000, 10000)
DEFAULT_ITERATIONS = (0, 1, 2, 3)
RESULTS = "results.jsonl"


@dataclass(frozen=True)
class Result:
    """One finished run: test errors of the final model and how the run went."""

    size: int  # training frames
    iterations: int  # T
    energy_rmse_meV_per_atom: float
    force_rmse_meV_per_A: float
    epochs: int
    minutes: float  # wall time of the whole `reann train` command
    final_lr: float  # learning rate of the last epoch
    max_minutes: float | None  # train.max_minutes given, None: no budget
    threads: int
    version: str  # reann-driver version (and git commit) that trained it

    @property
    def key(self) -> tuple[int, int]:
        return self.size, self.iterations


def read_results(path: Path) -> dict[tuple[int, int], Result]:
    """The runs recorded in a results file (empty when it does not exist yet)."""
    results: dict[tuple[int, int], Result] = {}
    if not path.exists():
        return results
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            result = Result(**json.loads(line))
        except (ValueError, TypeError) as error:
            raise SystemExit(f"{path}:{number}: not a learning-curve result: {error}") from None
        results[result.key] = result
    return results


def write_results(path: Path, results: Iterable[Result]) -> None:
    """Rewrite the results file atomically, sorted by size and T (a crash never leaves half a line)."""
    text = "".join(json.dumps(asdict(r), sort_keys=True) + "\n" for r in sorted(results, key=lambda r: r.key))
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def code_version() -> str:
    """The reann-driver version, with the git commit of its checkout when it is one (``0.1.0+1cfbdba``)."""
    root = Path(reann_driver.__file__).resolve().parents[1]
    try:
        described = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return reann_driver.__version__
    return f"{reann_driver.__version__}+{described.stdout.strip()}"


def data_files(data: Path, size: int) -> dict[str, Path]:
    """Training, validation and test files of one run, checked to exist."""
    files = {
        "train": data / "split" / f"train_{size}.extxyz",
        "val": data / "split" / "val.extxyz",
        "test": data / "test" / "test.extxyz",
    }
    for file in files.values():
        if not file.is_file():
            raise SystemExit(
                f"{file} does not exist: --data must be a folder written by "
                "datasets/ch4/learning-curve/make.sh (train_N.extxyz for every --sizes)"
            )
    return files


def train_command(files: dict[str, Path], run_dir: Path, iterations: int, minutes: float | None) -> list[str]:
    """The ``reann train`` command of one run: data, output, model keys and the time budget only."""
    settings = [f"data.{name}={file}" for name, file in files.items()]
    settings += [f"model.{key}={json.dumps(value)}" for key, value in MODEL_KEYS.items()]
    settings += [f"model.iterations={iterations}", f"output.dir={run_dir}", "output.progress=false"]
    if minutes is not None:
        settings.append(f"train.max_minutes={minutes}")
    command = [sys.executable, "-m", "reann_driver.cli.main", "train", "--force"]
    for setting in settings:
        command += ["--set", setting]
    return command


def last_epoch(metrics_csv: Path) -> tuple[int, float]:
    """(epoch, learning rate) of the last row of a run's metrics.csv."""
    with open(metrics_csv, newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    if not rows:
        raise SystemExit(f"{metrics_csv}: no epoch recorded")
    return int(rows[-1]["epoch"]), float(rows[-1]["lr"])


def run_one(
    data: Path, out: Path, size: int, iterations: int, minutes: float | None, threads: int, version: str
) -> Result:
    """Train one model (from scratch: a folder left by a cut-off run is replaced) and read its errors."""
    run_dir = out / "runs" / f"N{size}_T{iterations}"
    log = out / "runs" / f"N{size}_T{iterations}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = train_command(data_files(data, size), run_dir, iterations, minutes)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as stream:
        finished = subprocess.run(command, env=env, stdout=stream, stderr=subprocess.STDOUT, check=False)
    elapsed = (time.perf_counter() - start) / 60.0
    if finished.returncode != 0:
        tail = log.read_text(encoding="utf-8").strip().splitlines()[-1:]
        raise SystemExit(f"N={size} T={iterations}: reann train failed ({' '.join(tail)}); see {log}")
    test = json.loads((run_dir / "test_metrics.json").read_text(encoding="utf-8"))
    epochs, final_lr = last_epoch(run_dir / "metrics.csv")
    return Result(
        size=size,
        iterations=iterations,
        energy_rmse_meV_per_atom=float(test["energy_rmse_per_atom_meV"]),
        force_rmse_meV_per_A=float(test["force_rmse_meV_per_A"]),
        epochs=epochs,
        minutes=round(elapsed, 3),
        final_lr=final_lr,
        max_minutes=minutes,
        threads=threads,
        version=version,
    )


def _pivot(results: Sequence[Result], field: str) -> list[str]:
    sizes = sorted({r.size for r in results})
    ts = sorted({r.iterations for r in results})
    table = {r.key: getattr(r, field) for r in results}
    lines = ["| training frames | " + " | ".join(f"T={t}" for t in ts) + " |"]
    lines.append("|---:|" + "---:|" * len(ts))
    for size in sizes:
        cells = [f"{table[size, t]:.1f}" if (size, t) in table else "" for t in ts]
        lines.append(f"| {size} | " + " | ".join(cells) + " |")
    return lines


def markdown_table(results: Sequence[Result], figure: str | None = None) -> str:
    """Markdown tables of the results: energy and force RMSE (rows: size, columns: T), then every run."""
    if not results:
        return "No run finished yet.\n"
    minutes = sorted({r.max_minutes for r in results if r.max_minutes is not None})
    budgets = [f"{m:g} min" for m in minutes] + (
        ["none"] if any(r.max_minutes is None for r in results) else []
    )
    lines = [
        f"Written by `bench/learning_curve.py` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"reann-driver {', '.join(sorted({r.version for r in results}))}; time budget per run: "
        f"{', '.join(budgets)}; threads: {', '.join(str(t) for t in sorted({r.threads for r in results}))}.",
        "",
    ]
    if figure is not None:
        lines += [f"![Test RMSE versus training size, one line per T]({figure})", ""]
    lines += ["**Test energy RMSE (meV/atom)**", "", *_pivot(results, "energy_rmse_meV_per_atom"), ""]
    lines += ["**Test force RMSE (meV/Å)**", "", *_pivot(results, "force_rmse_meV_per_A"), ""]
    lines += [
        "**Runs**",
        "",
        "| training frames | T | E RMSE (meV/atom) | F RMSE (meV/Å) | epochs | minutes | final lr |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(results, key=lambda r: r.key):
        lines.append(
            f"| {r.size} | {r.iterations} | {r.energy_rmse_meV_per_atom:.2f} | {r.force_rmse_meV_per_A:.1f} "
            f"| {r.epochs} | {r.minutes:.1f} | {r.final_lr:.2e} |"
        )
    return "\n".join(lines) + "\n"


def plot(results: Sequence[Result], path: Path) -> None:
    """Log-log plot of test energy and force RMSE versus training size, one line per T (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    figure, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    fields = (
        ("energy_rmse_meV_per_atom", "test energy RMSE (meV/atom)"),
        ("force_rmse_meV_per_A", "test force RMSE (meV/Å)"),
    )
    for axis, (field, label) in zip(axes, fields):
        for t in sorted({r.iterations for r in results}):
            points = sorted((r.size, getattr(r, field)) for r in results if r.iterations == t)
            axis.plot(*zip(*points), marker="o", label=f"T={t}" + (" (EANN)" if t == 0 else ""))
        axis.set_xscale("log")
        axis.set_yscale("log")
        sizes = sorted({r.size for r in results})
        axis.set_xticks(sizes, [str(size) for size in sizes])
        axis.xaxis.set_minor_locator(NullLocator())
        axis.set_xlabel("training frames")
        axis.set_ylabel(label)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    figure.suptitle("Random CH4, GFN2-xTB: learning curve")
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=120)
    plt.close(figure)


def publish(results: Sequence[Result], out: Path, docs: Path | None) -> None:
    """Write the figure and the tables into ``out`` (and into ``docs`` under the page's names)."""
    plot(results, out / "learning_curve.png")
    (out / "learning_curve.md").write_text(markdown_table(results, "learning_curve.png"), encoding="utf-8")
    if docs is not None:
        shutil.copyfile(out / "learning_curve.png", docs / "learning-curve.png")
        with atomic_path(docs / "learning-curve-results.md") as temporary:
            temporary.write_text(markdown_table(results, "learning-curve.png"), encoding="utf-8")


def integers(text: str) -> list[int]:
    """ "100,300" -> [100, 300] (argparse type)."""
    try:
        values = [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated non-negative integers")
    return values


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="folder written by make.sh")
    parser.add_argument("--out", type=Path, required=True, help="results folder (resumable)")
    parser.add_argument("--sizes", type=integers, default=list(DEFAULT_SIZES), help="training sizes")
    parser.add_argument("--iterations", type=integers, default=list(DEFAULT_ITERATIONS), help="values of T")
    parser.add_argument("--minutes", type=float, default=None, help="train.max_minutes per run")
    parser.add_argument("--threads", type=int, default=1, help="OMP/MKL threads per run")
    parser.add_argument(
        "--docs", type=Path, default=None, help="also write the page's figure and tables here"
    )
    args = parser.parse_args(argv)
    if args.minutes is not None and not args.minutes > 0:
        parser.error("--minutes must be positive")
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    if args.docs is not None and not args.docs.is_dir():
        parser.error(f"--docs {args.docs}: not a folder")

    args.out.mkdir(parents=True, exist_ok=True)
    results_file = args.out / RESULTS
    results = read_results(results_file)
    version = code_version()
    for size in args.sizes:
        for t in args.iterations:
            if (size, t) in results:
                print(f"N={size} T={t}: done, skipped")
                continue
            print(f"N={size} T={t}: training ...", flush=True)
            result = run_one(args.data, args.out, size, t, args.minutes, args.threads, version)
            results[result.key] = result
            write_results(results_file, results.values())
            print(
                f"N={size} T={t}: E {result.energy_rmse_meV_per_atom:.2f} meV/atom, "
                f"F {result.force_rmse_meV_per_A:.1f} meV/Å, {result.epochs} epochs, "
                f"{result.minutes:.1f} min, final lr {result.final_lr:.2e}",
                flush=True,
            )
    selected = [results[size, t] for size in args.sizes for t in args.iterations]
    publish(selected, args.out, args.docs)
    print(f"wrote {args.out / 'learning_curve.png'} and {args.out / 'learning_curve.md'}")


if __name__ == "__main__":
    main()
