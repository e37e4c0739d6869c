"""Time a committee of K REANN models (energies + forces) against one model on the same batch.

Prints the median wall time of repeated calls after warm-up (graph built once, outside the timing) for
one model, the vectorised committee (``reann_driver.Committee``) and, as the naive reference, the K
members called one after another; and the ratios committee / one model and loop / one model. The three
are timed in turn within every repeat, so that a change of machine load affects them alike.

    python bench/bench_committee.py                  # K = 4, default hyper-parameters, 1 CPU thread
    python bench/bench_committee.py --members 8 --threads 2

Systems: one CH4 molecule, the 8 beads of a CH4 ring polymer (one batched i-PI request), one 64-water
box (192 atoms).
"""

from __future__ import annotations

import argparse
from functools import partial

import numpy as np
import torch
from ase.build import molecule
from bench_model import interleaved_medians_ms, water_box

import reann_driver
from reann_driver.memory import keep_freed_memory
from reann_driver.model import graph_from_atoms


def call_each(models: list[reann_driver.REANN], graph: object) -> list[object]:
    """The naive committee: every member on its own."""
    return [model(graph) for model in models]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()

    rng = np.random.default_rng(0)
    beads = []
    for _ in range(8):
        bead = molecule("CH4")
        bead.positions += rng.normal(scale=0.05, size=bead.positions.shape)
        beads.append(bead)
    systems = {"CH4 (5 atoms)": [molecule("CH4")], "CH4, 8 beads": beads, "water box": [water_box(None)]}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(
        f"committee of {args.members} vs one REANN (r_c 5.0, n_radial 8, L_max 2, T 2, hidden [64, 64]), "
        f"{args.dtype}, {args.threads} CPU thread(s), torch {torch.__version__}"
    )
    print(
        f"{'device':6} {'system':16} {'one ms':>8} "
        f"{'committee ms':>13} {'loop ms':>9} {'ratio':>6} {'loop':>6}"
    )
    for device in devices:
        members = []
        for seed in range(args.members):
            torch.manual_seed(seed)
            members.append(reann_driver.REANN(["H", "C", "O"], dtype=args.dtype).to(device).eval())
        committee = reann_driver.Committee(members).to(device)
        sync = device == "cuda"
        for name, structures in systems.items():
            graph = graph_from_atoms(
                structures, committee.species, committee.cutoff, members[0].dtype, device
            )
            one, together, loop = interleaved_medians_ms(
                [
                    partial(members[0], graph),
                    partial(committee, graph),
                    partial(call_each, members, graph),
                ],
                args.repeats,
                sync,
            )
            print(
                f"{device:6} {name:16} {one:8.2f} {together:13.2f} {loop:9.2f} "
                f"{together / one:5.2f}x {loop / one:5.2f}x"
            )


if __name__ == "__main__":
    main()
