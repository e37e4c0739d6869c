"""Figure for docs/theory/verification.md: a CH4-like pair with identical three-body carbon densities.

Run from the repository root:  python docs/theory/scripts/degenerate_pair_figure.py
Writes docs/theory/figures/degenerate-pair.png and prints the numbers shown on the page. The construction
and the models are those of tests/test_theory_degenerate.py (imported, not copied).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests"))
from test_theory_degenerate import carbon_densities, degenerate_pair, random_model  # noqa: E402

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
        score = min(np.linalg.norm(a - b) for i, a in enumerate(points) for b in points[i + 1 :])
        if score > best_score:
            best, best_score = rotated, score
    return best


def separation(cutoff: float, seeds: range, iterations: int = 3) -> np.ndarray:
    """|rho_C^t(1) - rho_C^t(2)|_max / |rho_C^t(1)|_max for t = 0..iterations, one row per seed."""
    first, second = degenerate_pair()
    rows = []
    for seed in seeds:
        model = random_model(iterations, cutoff=cutoff, seed=seed)
        rho_1, _ = carbon_densities(model, first)
        rho_2, _ = carbon_densities(model, second)
        rows.append([np.abs(a - b).max() / np.abs(a).max() for a, b in zip(rho_1, rho_2)])
    return np.maximum(np.array(rows), FLOOR)


def main() -> None:
    first, second = degenerate_pair()
    full, bonded = separation(4.0, range(5)), separation(1.5, range(5))
    print("relative difference of rho_C^t, t = 0..3 (max over 5 random models)")
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
    ax.set_xlabel("iteration t")
    ax.set_ylabel("relative difference of ρ_C^(t)")
    ax.set_title("5 random models each", fontsize=9)
    ax.legend(fontsize=7, loc="center right")
    fig.tight_layout()
    out = ROOT / "docs" / "theory" / "figures" / "degenerate-pair.png"
    fig.savefig(out, dpi=120)
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
