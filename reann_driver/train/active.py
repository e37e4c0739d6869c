"""Active learning: pick the structures a committee is least sure of and that differ from one another.

Each candidate gets the committee's energy spread (standard deviation, ddof=1, eV; what i-PI reports
with alpha = 1) and a descriptor: the final embedded densities rho of the first member, averaged over
the atoms of each element and concatenated. The pool is the candidates above the spread threshold (or
all), cut to the ``pool_factor * n`` most uncertain; from it, farthest-point sampling in the
standardised descriptor space starting at the most uncertain candidate picks ``n`` structures, so that
near-duplicates (consecutive MD steps, beads of one ring polymer) are not labelled twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms

from ..data.errors import DataError
from ..data.generate import labelled_frame
from ..data.labelers import Labeler
from ..model import Committee, graph_from_atoms
from ..model.runtime import to_numpy


@dataclass
class Scores:
    """Per candidate: energy spread [n] (eV) and descriptor [n, n_species * n_orbitals]."""

    spread: np.ndarray
    descriptors: np.ndarray


def score_candidates(committee: Committee, frames: Sequence[Atoms], batch_size: int = 16) -> Scores:
    """Committee spread and density descriptors of every frame (clear error for foreign elements)."""
    unknown = sorted({s for a in frames for s in a.get_chemical_symbols()} - set(committee.species))
    if unknown:
        raise DataError(
            f"the candidates contain {unknown}, which the committee (species {committee.species}) was "
            "not trained on: a file from another system?"
        )
    first = committee.member(0)
    captured: list[torch.Tensor] = []
    hook = first.energy_networks.register_forward_hook(lambda _m, inputs, _o: captured.append(inputs[0]))
    spreads, descriptors = [], []
    try:
        for start in range(0, len(frames), batch_size):
            chunk = frames[start : start + batch_size]
            graph = graph_from_atoms(
                chunk, committee.species, committee.cutoff, dtype=committee.dtype, device=committee.device
            )
            spreads.append(to_numpy(committee(graph, forces=False)["energy_uncertainty"]))
            captured.clear()
            with torch.no_grad():
                first(graph, forces=False)
            density = to_numpy(captured[-1])  # [n_atoms, n_orbitals]
            species, batch = graph.species.cpu().numpy(), graph.batch.cpu().numpy()
            for structure in range(len(chunk)):
                parts = []
                for element in range(len(committee.species)):
                    rows = density[(batch == structure) & (species == element)]
                    parts.append(rows.mean(axis=0) if len(rows) else np.zeros(density.shape[1]))
                descriptors.append(np.concatenate(parts))
    finally:
        hook.remove()
    return Scores(np.concatenate(spreads), np.array(descriptors))


def select(scores: Scores, n: int, threshold: float | None = None, pool_factor: int = 4) -> list[int]:
    """Indices of at most ``n`` candidates, most uncertain first, then farthest-point (see the module)."""
    if n < 1 or pool_factor < 1:
        raise ValueError("need n >= 1 and pool_factor >= 1")
    order = np.argsort(-scores.spread, kind="stable")
    if threshold is not None:
        order = order[scores.spread[order] > threshold]
    pool = order[: pool_factor * n]
    if len(pool) == 0:
        return []
    features = scores.descriptors[pool]
    scale = features.std(axis=0)
    features = (features - features.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    chosen = [0]  # the most uncertain
    distance = np.linalg.norm(features - features[0], axis=1)
    while len(chosen) < min(n, len(pool)):
        following = int(np.argmax(distance))
        if distance[following] <= 0:  # only duplicates left
            break
        chosen.append(following)
        distance = np.minimum(distance, np.linalg.norm(features - features[following], axis=1))
    return [int(pool[k]) for k in chosen]


def label_frames(
    frames: Sequence[Atoms], labeler: Labeler, echo: Callable[[str], None] = print
) -> list[Atoms]:
    """Labelled copies (energy eV, forces eV/Å, stress) of ``frames``; failed calculations are skipped
    with a message."""
    labelled = []
    for atoms in frames:
        frame = labelled_frame(atoms, labeler, {**atoms.info, "labeler": labeler.name})
        if isinstance(frame, str):
            echo(f"candidate {atoms.info.get('candidate_index')}: labelling failed ({frame}); skipped")
        else:
            labelled.append(frame)
    return labelled
