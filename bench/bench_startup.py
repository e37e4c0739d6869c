"""Start-up time of the console commands: ``--help`` and an argument error (medians of fresh processes).

    python bench/bench_startup.py [--repeats 5]

Each command runs as ``python -c "from MODULE import main; main()" ARGS`` in a new process; the
reference is a bare ``python -c pass`` in the same way, so the ratio shows what the package adds.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import click

COMMANDS = {
    "reann --help": ("reann_driver.cli.main", ["--help"]),
    "reann info (no argument)": ("reann_driver.cli.main", ["info"]),
    "reann train --help": ("reann_driver.cli.main", ["train", "--help"]),
    "reann-data --help": ("reann_driver.data.cli", ["--help"]),
    "reann-data convert (no argument)": ("reann_driver.data.cli", ["convert"]),
    "reann-driver --help": ("reann_driver.ipi.cli", ["--help"]),
    "reann-driver (no address)": ("reann_driver.ipi.cli", ["--model", "m.pt", "--template", "t.xyz"]),
}


def seconds(arguments: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@click.command()
@click.option("--repeats", type=click.IntRange(1), default=5, show_default=True)
def main(repeats: int) -> None:
    """Print the median start-up time of every command and its ratio to a bare interpreter."""
    reference = seconds([sys.executable, "-c", "pass"], repeats)
    click.echo(f"{'python -c pass':36s} {1000 * reference:8.0f} ms")
    for name, (module, arguments) in COMMANDS.items():
        code = f"import sys; sys.argv[0] = {name.split()[0]!r}; from {module} import main; main()"
        median = seconds([sys.executable, "-c", code, *arguments], repeats)
        click.echo(f"{name:36s} {1000 * median:8.0f} ms  ({median / reference:5.1f}x)")


if __name__ == "__main__":
    main()
