"""Figure for docs/theory/paper.md: how the iterations reach the five-body term centred at C in CH4.

Run from the repository root:  python docs/theory/scripts/ch4_term_trees.py [--out PATH] [--force]

For each cutoff graph of CH4 (H-H pairs inside r_c; bond graph, each H sees only C) the script searches the
term trees of rho_C^(T) (docs/theory/body-order.md, Remark on trees) for one that contains all five atoms,
at the smallest T where one exists, and draws it over the actual atoms: the root is C, the children of a
node are two of its neighbours (rho^(t) is a sum over neighbour pairs), a filled node carries an updated
coefficient c^(t) = c^(t-1) + C_t(rho^(t-1)) and has children of its own, an open node is the constant c^0.
Writes docs/theory/figures/ch4-term-trees.png.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from theory_tools import FIGURES, cutoff_graph, figure_arguments, methane, save_figure

NAMES = ["C", "H1", "H2", "H3", "H4"]
Tree = tuple[int, tuple["Tree", ...]]  # (atom, children); no children: a leaf (constant coefficient)


def atoms_of(tree: Tree) -> set[int]:
    atom, children = tree
    return {atom}.union(*(atoms_of(child) for child in children))


def density_trees(adjacency: np.ndarray, atom: int, level: int) -> list[Tree]:
    """All term trees of rho_atom^(level) (linear networks), up to the order of the two children."""
    options: dict[int, list[Tree]] = {}
    for neighbour in np.flatnonzero(adjacency[atom]):
        leaf: Tree = (int(neighbour), ())
        deeper = (
            []
            if level == 0
            else [(int(neighbour), t[1]) for t in density_trees(adjacency, int(neighbour), level - 1)]
        )
        options[int(neighbour)] = [leaf, *deeper]
    children = [t for ts in options.values() for t in ts]
    return [(atom, pair) for pair in itertools.combinations_with_replacement(children, 2)]


def covering_tree(adjacency: np.ndarray, centre: int, max_level: int = 3) -> tuple[int, Tree]:
    """The smallest T and a smallest term tree of rho_centre^(T) whose atoms are all atoms of the graph."""
    everyone = set(range(len(adjacency)))
    for level in range(max_level + 1):
        covering = [t for t in density_trees(adjacency, centre, level) if atoms_of(t) == everyone]
        if covering:
            return level, min(covering, key=size)
    raise ValueError(f"no term tree of rho^(T <= {max_level}) contains every atom")


def size(tree: Tree) -> int:
    return 1 + sum(size(child) for child in tree[1])


def draw(ax: plt.Axes, tree: Tree, iterations: int, title: str) -> None:
    leaves: list[float] = []

    def place(node: Tree, depth: int) -> float:
        atom, children = node
        xs = [place(child, depth + 1) for child in children]
        x = float(np.mean(xs)) if xs else float(len(leaves))
        if not xs:
            leaves.append(x)
        for cx in xs:
            ax.plot([x, cx], [-depth, -depth - 1], color="0.5", lw=1.5, zorder=1)
        internal = depth == 0 or bool(children)
        colour = "k" if atom == 0 else "tab:blue"
        ax.scatter(x, -depth, s=900, zorder=2, color=colour if internal else "white", edgecolor=colour, lw=2)
        ax.text(x, -depth, NAMES[atom], ha="center", va="center", zorder=3, fontsize=10,
                color="white" if internal else colour)  # fmt: skip
        return x

    place(tree, 0)
    for depth in range(iterations + 2):
        label = f"ρ_C^({iterations})" if depth == 0 else f"c^({iterations - depth + 1})"
        ax.text(-1.2, -depth, label, ha="right", va="center", fontsize=9, color="0.3")
    ax.set_xlim(-2.4, max(leaves) + 0.8)
    ax.set_ylim(-iterations - 1.6, 0.6)
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()


def main(argv: Sequence[str] | None = None) -> None:
    out = figure_arguments(__doc__.splitlines()[0], FIGURES / "ch4-term-trees.png", argv)
    cases = [(5.0, "r_c = 5 Å: H–H pairs inside r_c"), (1.65, "r_c = 1.65 Å: bond graph (H sees only C)")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1, 1.3]})
    for ax, (cutoff, label) in zip(axes, cases, strict=True):
        iterations, tree = covering_tree(cutoff_graph(methane(), cutoff), 0)
        print(f"r_c = {cutoff} Å: all five atoms first in one term of rho_C^(T) at T = {iterations}: {tree}")
        draw(ax, tree, iterations, f"{label}\nfive-body term of ρ_C first at T = {iterations}")
    fig.text(0.5, 0.02, "filled: atom enters through an updated coefficient (a density of its own); "
             "open: constant coefficient c⁰", ha="center", fontsize=9)  # fmt: skip
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    save_figure(fig, out)


if __name__ == "__main__":
    main()
