"""Figure for docs/theory/body-order.md and verification.md: body order versus T, measured on the model.

Run from the repository root:  python docs/theory/scripts/body_order_profile.py [--out PATH] [--force]

For the clusters and models of tests/test_theory_body_order.py (random points pairwise within r_c, linear
networks, or quadratic coefficient networks, random weights), the largest many-body component of each order
n, max_{|S| = n} |E_S| / max_U |E(U)|, from exact inclusion-exclusion over all 2^N sub-clusters. The curves
fall to float64 round-off right after B_d(T): 3, 7, 15 (d = 1) and 11 (d = 2, T = 1). About 5 s.
Writes docs/theory/figures/body-order-vs-T.png.
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
    figure_arguments,
    float64_model,
    order_profile,
    random_cluster,
    save_figure,
    square_activations,
    subset_energies,
)

FLOOR = 1e-18  # plotted in place of an exact zero
CASES = [  # (T, coefficient degree d, atoms N, bound B_d(T), style): those of the test
    (0, 1, 5, 3, "o-"),
    (1, 1, 9, 7, "s-"),
    (2, 1, 16, 15, "^-"),
    (1, 2, 12, 11, "d--"),
]


def main(argv: Sequence[str] | None = None) -> None:
    out = figure_arguments(__doc__.splitlines()[0], FIGURES / "body-order-vs-T.png", argv)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for iterations, degree, n_atoms, bound, style in CASES:
        model = float64_model(["H", "C"], 5.0, iterations, seed=iterations + 10 * degree + 100)
        if degree == 2:
            square_activations(model, "coefficients")
        species = np.random.default_rng(n_atoms).integers(0, 2, n_atoms)
        profile = order_profile(subset_energies(model, species, random_cluster(n_atoms, seed=n_atoms)))
        print(f"T = {iterations}, d = {degree}, N = {n_atoms}: " + " ".join(f"{x:.1e}" for x in profile))
        orders = np.arange(1, n_atoms + 1)
        label = f"T = {iterations}, d = {degree}: B = {bound}"
        ax.semilogy(orders, np.maximum(profile[1:], FLOOR), style, label=label, ms=4)
    ax.axhspan(FLOOR / 3, 3e-14, color="0.9", label="float64 round-off")
    ax.set_xlabel("order n (atoms in the component)")
    ax.set_ylabel("max |E_S| over |S| = n, relative")
    ax.set_xticks(range(1, 17))
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, out)


if __name__ == "__main__":
    main()
