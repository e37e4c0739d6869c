"""Energies, forces and virials of a large system, chunk by chunk of centre atoms, with a peak memory that
does not hold autograd's intermediates for the whole system.

One autograd force pass keeps every intermediate of every iteration for every neighbour slot: about
110 KB per atom of liquid water at the anchor sizes (r_c 5 Å, 8 radial, L_max 2, T 3, float64). This pass
keeps per slot only the orbitals, f_c g_k and Y_a, and their adjoints, and runs autograd on one chunk of
centre atoms at a time:

1. forward without autograd: the orbitals of every slot and the coefficients c^t of every atom;
2. backward over the iterations t = T, ..., 0: per chunk, rho^t again from the kept orbitals and c^t, then
   the chunk's energies (t = T) or coefficient updates NN_t(rho^t) (t < T) back to the orbitals of its
   slots (accumulated over t) and to c^t of all atoms. The adjoint of c^t is
   dE/dc^t = dE/dc^(t+1) + the vector-Jacobian product of NN_t(rho^t(c^t)) with dE/dc^(t+1)
   (c^(t+1) = c^t + NN_t(rho^t), PRL 127, 156002, Eq. (5)); c^0 does not depend on the positions;
3. per chunk, the orbitals and the pair repulsion again from r_ij, back to dE/dr_ij, then the forces
   F_i = sum_s dE/dr_is - sum_{(k,s): j(k,s) = i} dE/dr_ks and the virial -sum r_ij (x) dE/dr_ij
   (symmetrised, as the strain derivative of the plain pass).

The arithmetic is that of the plain pass plus one more forward pass of the networks and the orbitals;
results equal the plain pass to rounding (tested). Measured on one CPU core (64-water boxes replicated,
anchor sizes, T = 3, float64, peak resident memory of one call in a fresh process, time of alternating
calls in one process): 53, 42 and 41 KB per atom at 6,144, 12,288 and 24,576 atoms instead of 117, 120 and
127, in 1.12x the time of the plain pass. The model therefore takes it only from ``CHUNKED_SLOTS`` slots on,
where memory rather than time limits a force pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import torch

from .density import NeighbourSlots, neighbour_slots, orbital_sums
from .neighbors import Graph
from .structures import cell_volumes, species_groups, structure_energies

if TYPE_CHECKING:
    from .reann import REANN  # which calls this module's pass

CHUNKED_SLOTS = 1 << 20  # from this many neighbour slots on (about 20,000 atoms of liquid water at r_c = 5 Å)
CHUNK_SLOTS = 1 << 16  # neighbour slots per chunk (about 1,100 atoms of water at r_c = 5 Å)


@torch.jit.unused  # scripted models never ask (they always take autograd's pass)
def goes_in_chunks(graph: Graph, slots: NeighbourSlots | None) -> bool:
    """True when a force pass over ``graph`` (with its neighbour ``slots``, when kept) should go chunk by
    chunk: from ``CHUNKED_SLOTS`` neighbour slots on (counted as edges without slots), except while
    ``torch.compile`` traces the model or a CUDA graph records it (the chunked pass reads the species
    groups back to the host)."""
    n_slots = graph.edge_index.shape[1] if slots is None else slots.neighbour.numel()
    if n_slots < CHUNKED_SLOTS or torch.compiler.is_compiling():
        return False
    return not (graph.positions.is_cuda and torch.cuda.is_current_stream_capturing())


class Forward(NamedTuple):
    """What the forward pass keeps: per slot the orbitals, per atom and iteration c^t, S^t and rho^t."""

    radial: torch.Tensor  # f_c g_k per slot [n_atoms, capacity, n_radial]
    angular: torch.Tensor  # Y_a per slot [n_atoms, n_angular, capacity]
    coefficients: list[torch.Tensor]  # c^t [n_atoms, n_radial], t = 0..T
    sums: list[torch.Tensor]  # S^t [n_atoms, n_angular, n_radial]
    densities: list[torch.Tensor]  # rho^t [n_atoms, n_orbitals]
    atomic: torch.Tensor  # atomic energies [n_atoms], eV
    groups: list[torch.Tensor]  # the atoms of each species
    neighbour_species: torch.Tensor  # species of the neighbour in each slot [n_atoms, capacity]


def chunked_forward(
    model: REANN, graph: Graph, stress: bool, slots: NeighbourSlots | None = None
) -> dict[str, torch.Tensor]:
    """``model.forward(graph, forces=True, stress=stress, slots=slots)`` of a model in evaluation mode,
    chunk by chunk (see the module docstring); the same keys, no autograd graph."""
    graph = graph._replace(positions=graph.positions.detach(), cell=graph.cell.detach())
    n_atoms = graph.positions.shape[0]
    if slots is None:
        slots = neighbour_slots(graph.edge_index, graph.shifts, n_atoms)
    step = max(1, CHUNK_SLOTS // max(1, slots.neighbour.shape[1]))
    ranges = [(low, min(low + step, n_atoms)) for low in range(0, n_atoms, step)]
    kept = forward_pass(model, graph, slots, ranges)
    d_radial, d_angular = orbital_adjoints(model, slots, ranges, kept)
    forces, virial = geometry_adjoints(model, graph, slots, ranges, kept, d_radial, d_angular, stress)
    results = {
        "energy": structure_energies(kept.atomic, graph.batch, graph.cell.shape[0]),
        "atomic_energies": kept.atomic,
        "forces": forces,
    }
    if stress:
        virial = 0.5 * (virial + virial.transpose(1, 2))
        results["virial"] = virial
        results["stress"] = -virial / cell_volumes(graph)[:, None, None]
    return results


def slot_vectors(graph: Graph, slots: NeighbourSlots, low: int, high: int) -> torch.Tensor:
    """r_ij = x_j - x_i + S . H in Å of the slots of centre atoms low..high-1, [n, capacity, 3]."""
    neighbour = slots.neighbour[low:high]
    cell_shifts = torch.bmm(slots.shifts[low:high], graph.cell[graph.batch[low:high]])
    moved = graph.positions.index_select(0, neighbour.reshape(-1)).view(cell_shifts.shape)
    return moved - graph.positions[low:high, None, :] + cell_shifts


@torch.no_grad()
def forward_pass(model: REANN, graph: Graph, slots: NeighbourSlots, ranges: list[tuple[int, int]]) -> Forward:
    """Step 1: the orbitals of every slot, then the densities and coefficients of every iteration."""
    species = graph.species
    neighbour_species = species[slots.neighbour]
    radial, angular, pair = [], [], []
    for lo, hi in ranges:
        distances, r, y = model.orbitals(
            slot_vectors(graph, slots, lo, hi), slots.mask[lo:hi], neighbour_species[lo:hi]
        )
        radial.append(r)
        angular.append(y)
        pair.append(model.pair_energy(distances, species[lo:hi], neighbour_species[lo:hi]))
    kept_radial, kept_angular = torch.cat(radial), torch.cat(angular)
    del radial, angular
    groups = species_groups(species, len(model.species))
    coefficients, sums, densities = [model.initial_coefficients[species]], [], []
    for t in range(model.iterations + 1):
        sums.append(
            torch.cat(
                [
                    orbital_sums(
                        kept_radial[lo:hi], kept_angular[lo:hi], coefficients[t], slots.neighbour[lo:hi]
                    )
                    for lo, hi in ranges
                ]
            )
        )
        densities.append(model.density.from_sums(sums[t], t))
        if t < model.iterations:  # c^(t+1) = c^t + NN_t(rho^t)
            coefficients.append(coefficients[t] + model.coefficient_updates[t](densities[t], groups))
    atomic = model.energy_networks(densities[-1], groups).squeeze(1) + model.atomic_energies[species]
    atomic = atomic + torch.cat(pair)
    return Forward(
        kept_radial, kept_angular, coefficients, sums, densities, atomic, groups, neighbour_species
    )


def orbital_adjoints(
    model: REANN, slots: NeighbourSlots, ranges: list[tuple[int, int]], kept: Forward
) -> tuple[torch.Tensor, torch.Tensor]:
    """Step 2: dE/d(f_c g_k) and dE/dY_a per slot, over the iterations T, ..., 0: the networks through
    autograd, the densities by hand (S_i[a, k] = sum_s Y_a(r_is) g_k(r_is) c_j(s)[k])."""
    radial, angular = kept.radial, kept.angular
    d_radial, d_angular = torch.zeros_like(radial), torch.zeros_like(angular)
    adjoint = torch.zeros_like(kept.coefficients[0])  # dE/dc^(t+1)
    for t in range(model.iterations, -1, -1):
        with torch.enable_grad():
            density = kept.densities[t].requires_grad_(True)
            if t == model.iterations:
                output = model.energy_networks(density, kept.groups).squeeze(1)
                cotangent = torch.ones_like(output)
            else:
                output = model.coefficient_updates[t](density, kept.groups)
                cotangent = adjoint
            (d_density,) = torch.autograd.grad([output], [density], [cotangent])
        with torch.no_grad():  # the parameters need no gradient here
            d_sums = model.density.sums_gradient(kept.sums[t], d_density, t)
            d_coefficients = torch.zeros_like(adjoint)
            for lo, hi in ranges:
                index = slots.neighbour[lo:hi].reshape(-1)
                neighbour_coefficients = kept.coefficients[t].index_select(0, index).view(radial[lo:hi].shape)
                d_weighted = torch.bmm(angular[lo:hi].transpose(1, 2), d_sums[lo:hi])  # dE/d(g_k c_j[k])
                d_radial[lo:hi].addcmul_(d_weighted, neighbour_coefficients)
                weighted = radial[lo:hi] * neighbour_coefficients
                d_angular[lo:hi].baddbmm_(d_sums[lo:hi], weighted.transpose(1, 2))
                if t > 0:  # c^0 does not depend on the positions
                    per_slot = (d_weighted * radial[lo:hi]).reshape(-1, radial.shape[2])
                    d_coefficients.index_add_(0, index, per_slot)
            adjoint = adjoint + d_coefficients  # dE/dc^t
    return d_radial, d_angular


def geometry_adjoints(
    model: REANN,
    graph: Graph,
    slots: NeighbourSlots,
    ranges: list[tuple[int, int]],
    kept: Forward,
    d_radial: torch.Tensor,
    d_angular: torch.Tensor,
    stress: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Step 3: dE/dr_ij per slot through the orbitals and the pair repulsion, then the forces [n_atoms, 3]
    (eV/Å) and the unsymmetrised virial -sum r_ij (x) dE/dr_ij [n_structures, 3, 3] (eV; zeros unless
    ``stress``)."""
    species, neighbour_species = graph.species, kept.neighbour_species
    forces = torch.zeros_like(graph.positions)
    virial = torch.zeros_like(graph.cell)
    for lo, hi in ranges:
        with torch.enable_grad():
            vectors = slot_vectors(graph, slots, lo, hi).requires_grad_(True)
            distances, r, y = model.orbitals(vectors, slots.mask[lo:hi], neighbour_species[lo:hi])
            outputs, cotangents = [r, y], [d_radial[lo:hi], d_angular[lo:hi]]
            if model.use_repulsion:
                outputs.append(model.pair_energy(distances, species[lo:hi], neighbour_species[lo:hi]))
                cotangents.append(torch.ones_like(outputs[-1]))
            (d_vectors,) = torch.autograd.grad(outputs, [vectors], cotangents)
        forces[lo:hi] += d_vectors.sum(dim=1)  # r_ij = x_j - x_i + ...
        forces.index_add_(0, slots.neighbour[lo:hi].reshape(-1), -d_vectors.reshape(-1, 3))
        if stress:
            per_atom = torch.einsum("nsa,nsb->nab", vectors.detach(), d_vectors)
            virial.index_add_(0, graph.batch[lo:hi], -per_atom)
    return forces, virial
