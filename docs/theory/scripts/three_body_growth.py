"""Figure for docs/theory/paper.md (analogue of Fig. 1(c) of the REANN paper): growth per iteration.

Run from the repository root:  python docs/theory/scripts/three_body_growth.py [--out PATH] [--force]

Left: the number of distinct three-body functions psi(a; b, c) (centre a, two different neighbours b, c)
that occur in the terms of the central density rho^(T), counted from the term trees over the actual atoms
(tests/theory_tools.three_body_functions). Right: the number of non-zero many-body components (E_centre)_S
of the central atomic energy, measured on the model by exact inclusion-exclusion (linear networks, random
weights; tests/test_theory_body_order.py shows they are exactly the supports of the trees). Three cutoff
graphs: CH4 with the H-H pairs inside r_c, the CH4 bond graph, and a branched 9-atom cluster with rings.
Writes docs/theory/figures/three-body-growth.png.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from theory_tools import (
    FIGURES,
    cutoff_graph,
    figure_arguments,
    float64_model,
    grown_cluster,
    methane,
    nonzero_components,
    save_figure,
    subset_energies,
    three_body_functions,
)

ITERATIONS = range(4)


def cases() -> list[tuple[str, np.ndarray, np.ndarray, float, str]]:
    methane_species = np.array([1, 0, 0, 0, 0])
    branched = grown_cluster(9, seed=2, bond=1.1)  # the cluster of test_theory_body_order.py
    return [
        ("CH4, r_c = 5 Å (H–H inside)", methane(), methane_species, 5.0, "o-"),
        ("CH4, r_c = 1.65 Å (bond graph)", methane(), methane_species, 1.65, "s--"),
        ("branched 9 atoms, r_c = 2 Å", branched, np.random.default_rng(2).integers(0, 2, 9), 2.0, "^:"),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    out = figure_arguments(__doc__.splitlines()[0], FIGURES / "three-body-growth.png", argv)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for label, positions, species, cutoff, style in cases():
        adjacency = cutoff_graph(positions, cutoff)
        centre = int(np.argmax(adjacency.sum(axis=1)))
        functions = [len(three_body_functions(adjacency, centre, t)) for t in ITERATIONS]
        components = []
        for t in ITERATIONS:
            model = float64_model(["H", "C"], cutoff, t, seed=t)
            components.append(
                int(nonzero_components(subset_energies(model, species, positions, centre)).sum())
            )
        print(f"{label}: three-body functions {functions}, non-zero components of E_centre {components}")
        left.plot(list(ITERATIONS), functions, style, label=label)
        right.plot(list(ITERATIONS), components, style, label=label)
    left.set_ylabel("distinct three-body functions ψ(a; b, c) in ρ^(T)")
    right.set_ylabel("non-zero components (E_centre)_S (model)")
    right.set_yscale("log")
    for ax in (left, right):
        ax.set_xlabel("iterations T")
        ax.set_xticks(list(ITERATIONS))
        ax.grid(alpha=0.3)
    left.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    save_figure(fig, out)


if __name__ == "__main__":
    main()
