"""Figure for docs/theory/verification.md: a CH4-like pair with identical three-body carbon densities.

Run from the repository root:  python docs/theory/scripts/degenerate_pair_figure.py [--out PATH] [--force]
Writes docs/theory/figures/degenerate-pair.png and prints the numbers shown on the page. The construction
and the models are those of tests/test_theory_degenerate.py (imported, not copied): for T = 0..3 and five
random models each, the relative difference of the carbon atomic energies of the two configurations.
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
from test_theory_degenerate import carbon_energy_difference, degenerate_pair, random_model
from theory_tools import FIGURES, figure_arguments, save_figure

FLOOR = 1e-17  # plotted in place of an exact zero
COLOURS = ["tab:blue", "tab:blue", "tab:orange", "tab:orange"]


def best_view(vectors: np.ndarray) -> np.ndarray:
    """Rotate so that the projection on the (x, y) plane separates the atoms best (z is depth)."""
    rng = np.random.default_rng(0)
    best, best_score = vectors, -1.0
    for _ in range(2000):
        rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        rotated = vectors @ rotation.T
        points = np.vstack([np.zeros(2), rotated[:, :2]])
        score = float(min(np.linalg.norm(a - b) for i, a in enumerate(points) for b in points[i + 1 :]))
        if score > best_score:
            best, best_score = rotated, score
    return best


def separation(cutoff: float, seeds: range, iterations: range = range(4)) -> np.ndarray:
    """|E_C(1) - E_C(2)| / |E_C(1)| for T in ``iterations``, one row per seed (one model per T and seed)."""
    first, second = degenerate_pair()
    rows = [[carbon_energy_difference(random_model(t, cutoff, seed), first, second) for t in iterations]
            for seed in seeds]  # fmt: skip
    return np.maximum(np.array(rows), FLOOR)


def main(argv: Sequence[str] | None = None) -> None:
    out = figure_arguments(__doc__.splitlines()[0], FIGURES / "degenerate-pair.png", argv)
    first, second = degenerate_pair()
    full, bonded = separation(4.0, range(5)), separation(1.5, range(5))
    print("relative difference of E_C, T = 0..3 (max over 5 random models)")
    print("r_c = 4.0 Å (H-H inside):", " ".join(f"{x:.1e}" for x in full.max(axis=0)))
    print("r_c = 4.0 Å (min over models):", " ".join(f"{x:.1e}" for x in full.min(axis=0)))
    print("r_c = 1.5 Å (bond graph):", " ".join(f"{x:.1e}" for x in bonded.max(axis=0)))

    fig = plt.figure(figsize=(10, 4))
    for k, (positions, title) in enumerate([(first, "configuration 1"), (second, "configuration 2")]):
        ax = fig.add_subplot(1, 3, k + 1)
        hydrogens = best_view(positions[1:])
        for h, colour in sorted(zip(hydrogens, COLOURS), key=lambda hc: hc[0][2]):  # far atoms first
            ax.plot([0, h[0]], [0, h[1]], color="grey", lw=2, zorder=1 + h[2])
            ax.scatter(h[0], h[1], s=160 * (1.4 + h[2] / 2), color=colour, edgecolor="k", zorder=2 + h[2])
        ax.scatter(0, 0, s=300, color="k", zorder=1.5)
        ax.set_title(f"{title}\nblue: C–H 1.09 Å, orange: C–H 1.22 Å", fontsize=9)
        ax.set_aspect("equal")
        ax.set_xlim(-1.4, 1.4)
        ax.set_ylim(-1.4, 1.4)
        ax.set_axis_off()
    ax = fig.add_subplot(1, 3, 3)
    t = np.arange(full.shape[1])
    for row in full:
        ax.semilogy(t, row, "o-", color="tab:red", alpha=0.6)
    for row in bonded:
        ax.semilogy(t, row, "s--", color="tab:green", alpha=0.6)
    ax.plot([], [], "o-", color="tab:red", label="r_c = 4.0 Å (H–H inside r_c)")
    ax.plot([], [], "s--", color="tab:green", label="r_c = 1.5 Å (H sees only C)")
    ax.axhspan(FLOOR / 2, 1e-13, color="0.9", label="float64 round-off")
    ax.set_xticks(t)
    ax.set_xlabel("iterations T")
    ax.set_ylabel("relative difference of E_C")
    ax.set_title("5 random models each", fontsize=9)
    ax.legend(fontsize=7, loc="center right")
    fig.tight_layout()
    save_figure(fig, out)


if __name__ == "__main__":
    main()
