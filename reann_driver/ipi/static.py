"""Neighbour slots kept between i-PI requests: fixed capacity, a skin, rebuilt only when needed.

In MD the same atoms come back every step, moved a little. The slots are built once with the cutoff
plus a skin and reused until an atom has moved more than half the skin since the last build (or the
cell or the number of structures changes); pairs beyond the cutoff contribute exactly nothing, so the
energies are those of a fresh neighbour list. The capacity (slots per atom) only grows, so between
rebuilds every tensor keeps its shape and a forward + backward pass reads nothing back to the host.
"""

from dataclasses import dataclass

import numpy as np
import torch

from reann_driver.model import Graph, build_graph
from reann_driver.model.density import NeighbourSlots, neighbour_slots
from reann_driver.model.structures import species_groups


@dataclass
class Step:
    """What one model call needs: the graph (positions and cells in the kept buffers), slots, groups."""

    graph: Graph
    slots: NeighbourSlots
    groups: list[torch.Tensor]


def _buffers(step: Step) -> list[torch.Tensor]:
    """The tensors a model call reads (edges and shifts of the graph are not: the slots replace them)."""
    return [step.graph.positions, step.graph.cell, *step.slots]


def _same_shapes(kept: Step, new: Step) -> bool:
    return all(a.shape == b.shape for a, b in zip(_buffers(kept), _buffers(new)))


def _copy_into(kept: Step, new: Step) -> None:
    for target, source in zip(_buffers(kept), _buffers(new)):
        target.copy_(source)


class StaticNeighbours:
    """Neighbour slots of N copies of one template, reused between calls (lengths in Å).

    Args:
        species: species index of every template atom.
        n_species: number of species of the model.
        cutoff: the model's cutoff.
        skin: extra distance of the kept neighbour list; rebuilt when an atom moved more than skin / 2.
        periodic: 3D periodic structures (else the cell is ignored).
        device, dtype: where and in which precision the buffers live.
    """

    def __init__(
        self,
        species: np.ndarray,
        n_species: int,
        cutoff: float,
        skin: float,
        periodic: bool,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        if skin < 0:
            raise ValueError(f"skin must be >= 0 Å, got {skin}")
        self.species = np.asarray(species, dtype=np.int64)
        self.n_species = n_species
        self.cutoff = float(cutoff)
        self.skin = float(skin)
        self.periodic = periodic
        self.device = device
        self.dtype = dtype
        self.capacity = 0
        self.n_builds = 0
        self._built_positions: np.ndarray | None = None
        self._built_cells: np.ndarray | None = None
        self._step: Step | None = None

    def needs_rebuild(self, positions: np.ndarray, cells: np.ndarray) -> bool:
        """True when the kept slots may miss a pair within the cutoff for these structures."""
        if self._built_positions is None or self._built_cells is None:
            return True
        if positions.shape != self._built_positions.shape or not np.array_equal(cells, self._built_cells):
            return True
        moved = np.einsum("sai,sai->sa", positions - self._built_positions, positions - self._built_positions)
        return bool(moved.max(initial=0.0) > (0.5 * self.skin) ** 2)

    def update(self, positions: np.ndarray, cells: np.ndarray) -> Step:
        """The step for structures [n, n_atoms, 3] with cells [n, 3, 3] (rows, Å; zeros if non-periodic).

        Writes positions and cells into the kept buffers (in place) unless the slots are rebuilt.
        """
        if self._step is None or self.needs_rebuild(positions, cells):
            step = self._build(positions, cells)
            self.n_builds += 1
            if self._step is not None and _same_shapes(self._step, step):
                _copy_into(self._step, step)  # same buffers: a captured CUDA graph stays valid
            else:
                self._step = step
        else:
            graph = self._step.graph
            graph.positions.copy_(torch.from_numpy(positions.reshape(-1, 3)))
            graph.cell.copy_(torch.from_numpy(cells))
        return self._step

    def _build(self, positions: np.ndarray, cells: np.ndarray) -> Step:
        n_structures = len(positions)
        graph = build_graph(
            species=[self.species] * n_structures,
            positions=list(positions),
            cells=list(cells),
            pbcs=[[self.periodic] * 3] * n_structures,
            cutoff=self.cutoff + self.skin,
            dtype=self.dtype,
            device="cpu",
        )
        n_atoms = graph.positions.shape[0]
        counts = np.bincount(graph.edge_index[0].numpy(), minlength=n_atoms)
        needed = int(counts.max(initial=0))
        if needed > self.capacity:
            self.capacity = needed + max(2, needed // 10)  # head room: later rebuilds keep the shapes
        slots = neighbour_slots(graph.edge_index, graph.shifts, n_atoms, self.capacity)
        graph = graph.to(device=self.device)
        self._built_positions = positions.copy()
        self._built_cells = cells.copy()
        return Step(
            graph=graph,
            slots=NeighbourSlots(*(tensor.to(self.device) for tensor in slots)),
            groups=species_groups(graph.species, self.n_species),
        )


class CapturedCall:
    """A model call (energies, forces, virials) recorded as a CUDA graph over the buffers of ``step``;
    each replay reads the positions and cells written there and refills the same output tensors."""

    def __init__(self, model: torch.nn.Module, step: Step, stress: bool, warmup: int = 2) -> None:
        self.step = step
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up off the capture stream, as torch.cuda.graph requires
            for _ in range(warmup):
                model(step.graph, True, stress, step.slots, step.groups)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.outputs: dict[str, torch.Tensor] = model(step.graph, True, stress, step.slots, step.groups)

    def __call__(self) -> dict[str, torch.Tensor]:
        self.graph.replay()
        return self.outputs
