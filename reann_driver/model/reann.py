"""The REANN model: recursively embedded densities, per-element energy networks, forces and stress."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .angular import make_angular
from .density import (
    EmbeddedDensity,
    NeighbourSlots,
    edge_slots,
    neighbour_slots,
    scatter_to_slots,
    sum_over_reverse,
)
from .files import save_model
from .neighbors import Graph
from .networks import ElementNetworks
from .radial import GaussianRadial
from .repulsion import PAIR_REPULSIONS, ZBLRepulsion
from .runtime import dtype_from_name
from .structures import apply_strain, cell_volumes, species_groups, structure_energies


class REANN(nn.Module):
    """Recursively embedded atom neural network (Zhang, Xia & Jiang, PRL 127, 156002, 2021).

    Units: positions and cells in Å, energies in eV, forces in eV/Å, stress in eV/Å^3.

    Args:
        species: chemical symbols the model knows; their order fixes the species indices.
        cutoff: r_c in Å.
        n_radial: number of radial Gaussians per neighbour element (k).
        l_max: highest angular momentum L of the orbitals.
        iterations: T, the number of recursive coefficient updates (message passing); 0 is EANN.
        hidden: widths of the hidden layers of the atomic-energy networks.
        coefficient_hidden: widths of the coefficient-update networks (default: ``hidden``).
        n_orbitals: number of density components m (default n_radial (n_radial + 1) / 2 (l_max + 1),
            the reference code's choice).
        angular: ``"cartesian"`` (reference REANN monomials) or ``"spherical"`` (e3nn harmonics).
        activation: smooth activation of all networks: ``relu_like`` (alpha silu(beta x) with trainable
            per-neuron alpha, beta, as the original code), silu, tanh, gelu, softplus or identity.
        layer_norm: LayerNorm inside the residual blocks.
        network_layout: ``reference`` (the original code's residual block, zero-initialised output) or
            ``pre_norm`` (reann-driver 0.1); see ``networks.py``.
        shared_mixing: one set of orbital mixing matrices for all T + 1 densities instead of one per
            iteration (the original code has one per iteration).
        radial_init: initial radial centres and widths: ``wide``, ``graded``, ``reference`` or ``narrow`` (see
            ``GaussianRadial``).
        mixing_init: initial orbital mixing matrices: ``orthogonal`` (the original code's) or ``normal``
            (see ``density.initial_mixing``).
        pair_repulsion: ``zbl`` adds the ZBL screened nuclear repulsion, switched off at the sum of the
            covalent radii, to the learnt energy (see ``repulsion.py``); ``zbl_heavy`` the same on every pair
            but H-H; ``none`` (default) adds nothing.
        initial_coefficient: the value of every initial orbital coefficient c^0 (the original code uses
            1 / its neighbour-list capacity; ``reann train`` by default 1 / the mean number of neighbours).
        atomic_energies: reference energy per element in eV, the initial output bias of the energy
            networks (e.g. the mean energy per atom of the training data); 0 when omitted.
        dtype: float32 or float64 parameters and arithmetic.
    """

    def __init__(
        self,
        species: Sequence[str],
        cutoff: float = 5.0,
        n_radial: int = 8,
        l_max: int = 2,
        iterations: int = 2,
        hidden: Sequence[int] = (64, 64),
        coefficient_hidden: Sequence[int] | None = None,
        n_orbitals: int | None = None,
        angular: str = "cartesian",
        activation: str = "relu_like",
        layer_norm: bool = True,
        network_layout: str = "reference",
        shared_mixing: bool = False,
        radial_init: str = "wide",
        mixing_init: str = "orthogonal",
        pair_repulsion: str = "none",
        initial_coefficient: float = 1.0,
        atomic_energies: Mapping[str, float] | Sequence[float] | None = None,
        dtype: torch.dtype | str = torch.float64,
    ) -> None:
        super().__init__()
        species = [str(s) for s in species]
        if not species or len(set(species)) != len(species):
            raise ValueError(f"species must be a non-empty list of distinct symbols, got {species}")
        if pair_repulsion not in PAIR_REPULSIONS:
            raise ValueError(f"pair_repulsion must be one of {PAIR_REPULSIONS}, got {pair_repulsion!r}")
        if cutoff <= 0 or n_radial < 1 or l_max < 0 or iterations < 0:
            raise ValueError("need cutoff > 0, n_radial >= 1, l_max >= 0 and iterations >= 0")
        coefficient_hidden = hidden if coefficient_hidden is None else coefficient_hidden
        if n_orbitals is None:
            n_orbitals = n_radial * (n_radial + 1) // 2 * (l_max + 1)
        self.species = species
        self.cutoff = float(cutoff)
        self.iterations = int(iterations)
        self.config: dict[str, Any] = {
            "species": species,
            "cutoff": float(cutoff),
            "n_radial": int(n_radial),
            "l_max": int(l_max),
            "iterations": int(iterations),
            "hidden": [int(h) for h in hidden],
            "coefficient_hidden": [int(h) for h in coefficient_hidden],
            "n_orbitals": int(n_orbitals),
            "angular": angular,
            "activation": activation,
            "layer_norm": bool(layer_norm),
            "network_layout": network_layout,
            "shared_mixing": bool(shared_mixing),
            "radial_init": radial_init,
            "mixing_init": mixing_init,
            "pair_repulsion": pair_repulsion,
            "initial_coefficient": float(initial_coefficient),
            "dtype": str(dtype_from_name(dtype)).removeprefix("torch."),
        }
        n_species = len(species)
        network_options = {"activation": activation, "layer_norm": layer_norm, "layout": network_layout}
        self.radial = GaussianRadial(n_species, n_radial, cutoff, radial_init)
        self.angular = make_angular(angular, l_max)
        n_sets = 1 if shared_mixing else iterations + 1
        self.density = EmbeddedDensity(self.angular.degree, n_radial, n_orbitals, n_sets, mixing_init)
        # c^0 per element
        self.initial_coefficients = nn.Parameter(
            torch.full((n_species, n_radial), float(initial_coefficient))
        )
        self.coefficient_updates = nn.ModuleList(
            ElementNetworks(
                n_species, n_orbitals, coefficient_hidden, n_radial, zero_last=True, **network_options
            )
            for _ in range(iterations)
        )
        self.energy_networks = ElementNetworks(n_species, n_orbitals, hidden, 1, **network_options)
        self.use_repulsion = pair_repulsion != "none"
        self.repulsion = ZBLRepulsion(species, cutoff, hydrogen_pairs=pair_repulsion == "zbl")
        self.atomic_energies = nn.Parameter(torch.zeros(n_species))  # output bias per element, eV
        if atomic_energies is not None:
            self.set_atomic_energies(atomic_energies)
        self.metadata: dict[str, Any] = {}
        # evaluation-mode force passes: ``adjoint_pass`` (False: autograd's, as in training)
        self.adjoint_forces = True
        self.to(dtype_from_name(dtype))

    def save(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        """Write the model (weights and hyper-parameters) to one file; see ``reann_driver.load_model``."""
        save_model(self, path, metadata if metadata is not None else self.metadata)

    @property
    def dtype(self) -> torch.dtype:
        return self.atomic_energies.dtype

    @property
    def device(self) -> torch.device:
        return self.atomic_energies.device

    def set_atomic_energies(self, energies: Mapping[str, float] | Sequence[float]) -> None:
        """Set the per-element output bias (eV), e.g. from data statistics or isolated-atom energies."""
        if isinstance(energies, Mapping):
            missing = [s for s in self.species if s not in energies]
            if missing:
                raise ValueError(f"atomic_energies lacks {missing}")
            values = [float(energies[s]) for s in self.species]
        else:
            values = [float(e) for e in energies]
            if len(values) != len(self.species):
                raise ValueError(f"atomic_energies needs {len(self.species)} values, got {len(values)}")
        with torch.no_grad():
            self.atomic_energies.copy_(torch.tensor(values, dtype=self.atomic_energies.dtype))

    def extra_repr(self) -> str:
        keys = ["species", "cutoff", "n_radial", "l_max", "iterations", "hidden", "coefficient_hidden"]
        keys += ["n_orbitals", "angular", "activation", "network_layout", "shared_mixing", "pair_repulsion"]
        keys += ["dtype"]
        return ", ".join(f"{key}={self.config[key]}" for key in keys)

    def atomic_energy_from_slots(
        self,
        vectors: torch.Tensor,
        slots: NeighbourSlots,
        species: torch.Tensor,
        groups: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Energy of every atom in eV, [n_atoms], from its neighbours' vectors in the slot layout.

        Args:
            vectors: r_ij = x_j - x_i (+ cell shift) per slot, [n_atoms, capacity, 3] in Å (any finite
                value in empty slots; pairs beyond the cutoff contribute exactly nothing).
            slots: the dense neighbour layout (``neighbour`` and ``mask`` are used).
            species: species index of every atom, [n_atoms].
            groups: the atoms of each species (default: found here with ``nonzero``, a host sync).
        """
        if groups is None:
            groups = species_groups(species, len(self.species))
        neighbour_species = species[slots.neighbour]
        distances, radial, angular = self.orbitals(vectors, slots.mask, neighbour_species)
        coefficients = self.initial_coefficients[species]  # c^0 [n_atoms, n_radial]
        density = self.density(radial, angular, coefficients, slots.neighbour, 0)
        t = 0
        for update in self.coefficient_updates:
            t += 1
            coefficients = coefficients + update(density, groups)  # c^t = c^(t-1) + NN_t(rho^(t-1))
            density = self.density(radial, angular, coefficients, slots.neighbour, t)
        energy = self.energy_networks(density, groups).squeeze(1) + self.atomic_energies[species]
        if self.use_repulsion:
            energy = energy + self.pair_energy(distances, species, neighbour_species)
        return energy

    def orbitals(
        self, vectors: torch.Tensor, mask: torch.Tensor, neighbour_species: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Distances [n_atoms, capacity] (Å), f_c g_k [n_atoms, capacity, n_radial] and Y_a transposed
        [n_atoms, n_angular, capacity] of every neighbour slot, from r_ij [n_atoms, capacity, 3] (Å), the
        slots' ``mask`` and the species of each slot's neighbour, both [n_atoms, capacity]."""
        n_atoms, capacity = mask.shape[0], mask.shape[1]
        # empty slots get a vector beyond the cutoff: zero contribution, finite derivatives
        vectors = torch.where(mask[:, :, None], vectors, torch.full_like(vectors, self.cutoff))
        flat = vectors.reshape(-1, 3)
        distances = torch.linalg.vector_norm(flat, dim=1)
        radial = self.radial.with_cutoff(distances, neighbour_species.reshape(-1), self.cutoff)
        angular = self.angular(flat).reshape(n_atoms, capacity, -1).transpose(1, 2)
        return distances.view(n_atoms, capacity), radial.reshape(n_atoms, capacity, -1), angular

    def pair_energy(
        self, distances: torch.Tensor, species: torch.Tensor, neighbour_species: torch.Tensor
    ) -> torch.Tensor:
        """The pair repulsion's share of every atom's energy in eV, [n_atoms] (zeros without one), from
        the slots' distances [n_atoms, capacity] and the species of the atoms and their neighbours."""
        if not self.use_repulsion:
            return torch.zeros_like(distances[:, 0])
        centre_species = species[:, None].expand_as(neighbour_species).reshape(-1)
        pairs = self.repulsion(distances.reshape(-1), centre_species, neighbour_species.reshape(-1))
        return pairs.view(distances.shape).sum(dim=1)

    def atomic_energy_from_edges(
        self, vectors: torch.Tensor, edge_index: torch.Tensor, species: torch.Tensor
    ) -> torch.Tensor:
        """Energy of every atom in eV, [n_atoms], from the vectors r_ij [n_edges, 3] (Å) of the edges
        (centre i, neighbour j) ``edge_index`` [2, n_edges]; ``species`` [n_atoms]."""
        n_atoms = species.shape[0]
        centre = edge_index[0]
        slot, capacity = edge_slots(centre, n_atoms)
        slots = NeighbourSlots(
            scatter_to_slots(centre, slot, edge_index[1], n_atoms, capacity),
            scatter_to_slots(centre, slot, vectors.detach(), n_atoms, capacity),  # unused: no cell here
            scatter_to_slots(centre, slot, torch.ones_like(centre, dtype=torch.bool), n_atoms, capacity),
            torch.empty(0, dtype=torch.long, device=centre.device),  # unused: autograd's pass
        )
        dense = scatter_to_slots(centre, slot, vectors, n_atoms, capacity)
        return self.atomic_energy_from_slots(dense, slots, species)

    def atomic_energy(
        self,
        graph: Graph,
        positions: torch.Tensor,
        cell: torch.Tensor,
        slots: NeighbourSlots | None = None,
        groups: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Energy of every atom in eV, [n_atoms], for the given (possibly strained) positions and cells.

        ``slots`` is the graph's neighbour layout (default: built here, without the reverse table that
        autograd's pass does not read, which reads the largest neighbour count back to the host);
        ``groups`` see ``atomic_energy_from_slots``.
        """
        if slots is None:
            slots = neighbour_slots(graph.edge_index, graph.shifts, positions.shape[0], reverse=False)
        cell_shifts = torch.bmm(slots.shifts, cell[graph.batch])  # S . H per slot [n, capacity, 3]
        neighbour_positions = positions.index_select(0, slots.neighbour.reshape(-1)).view(cell_shifts.shape)
        vectors = neighbour_positions - positions[:, None, :] + cell_shifts
        return self.atomic_energy_from_slots(vectors, slots, graph.species, groups)

    def forward(
        self,
        graph: Graph,
        forces: bool = True,
        stress: bool = False,
        slots: NeighbourSlots | None = None,
        groups: list[torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Energies and their derivatives for a batch of structures.

        Returns a dict with ``energy`` [n_structures] (eV), ``atomic_energies`` [n_atoms] (eV) and, when
        asked, ``forces`` [n_atoms, 3] (eV/Å), ``virial`` [n_structures, 3, 3] (eV, -dE/d(strain)) and
        ``stress`` [n_structures, 3, 3] (eV/Å^3, +dE/d(strain)/V; NaN for structures with no volume).
        In training mode the derivatives keep their graph so that a force loss can be backpropagated.
        ``slots`` and ``groups`` (see ``atomic_energy``) let a caller that keeps them between
        calls skip their construction and its host synchronisations.
        """
        if forces and not self.training and self.adjoint_forces:
            if torch.jit.is_scripting():
                return self.adjoint_pass(graph, stress, slots, groups)
            return self._eager_adjoint_pass(graph, stress, slots, groups)
        positions, cell = graph.positions, graph.cell
        inputs: list[torch.Tensor] = []
        if forces or stress:
            positions = positions.detach().requires_grad_(True)
            inputs.append(positions)
        if stress:
            strain = torch.zeros_like(cell).requires_grad_(True)
            inputs.append(strain)
            positions, cell = apply_strain(graph, positions, cell, strain)
        atomic = self.atomic_energy(graph, positions, cell, slots, groups)
        energy = structure_energies(atomic, graph.batch, graph.cell.shape[0])
        results = {"energy": energy, "atomic_energies": atomic}
        if len(inputs) > 0:
            gradients = torch.autograd.grad(
                [energy.sum()], inputs, create_graph=self.training, allow_unused=True
            )
            if forces:
                results["forces"] = -_zero_if_none(gradients[0], inputs[0])
            if stress:
                strain_gradient = _zero_if_none(gradients[1], inputs[1])
                results["virial"] = -strain_gradient
                results["stress"] = strain_gradient / cell_volumes(graph)[:, None, None]
        return results

    @torch.jit.unused
    def _eager_adjoint_pass(
        self, graph: Graph, stress: bool, slots: NeighbourSlots | None, groups: list[torch.Tensor] | None
    ) -> dict[str, torch.Tensor]:
        """``adjoint_pass`` with autograd on (its networks need it) whatever the caller's grad mode."""
        with torch.enable_grad():
            return self.adjoint_pass(graph, stress, slots, groups)

    def adjoint_pass(
        self,
        graph: Graph,
        stress: bool = False,
        slots: NeighbourSlots | None = None,
        groups: list[torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Energies, forces and (when asked) virials and stress of a model in evaluation mode, the
        outputs of ``forward``, by a reverse pass written out by hand, without autograd (the networks'
        vector-Jacobian products too: ``forward_saving`` and ``vjp`` of ``networks.py``; autograd only for
        a pair repulsion and the spherical harmonics).

        1. forward: r_ij per slot, f_c g_k and its radial derivative, Y_a, then for t = 0..T the orbital
           sums S^t, rho^t (Eqs. (2)-(4) of PRL 127, 156002) and c^(t+1) = c^t + NN_t(rho^t) (Eq. (5));
        2. backward over t = T..0: dE/drho^t from the networks' tapes, dE/dS^t (``density.sums_gradient``),
           dE/d(f_c g_k) and dE/dY_a per slot, accumulated over t, and the adjoint of the coefficients
           dE/dc^t = dE/dc^(t+1) + sum_(slots seeing the atom) dE/d(c_j g_k) g_k;
        3. geometry: dE/dr_ij from the radial derivative and ``angular.vjp``, the forces
           F_i = sum_s dE/dr_is - sum_(slots seeing i) dE/dr (a gather through ``NeighbourSlots.reverse``)
           and the virial -sum r_ij (x) dE/dr_ij (symmetrised).

        Equal to autograd's pass to rounding (tests); it keeps per slot only the orbitals, the radial
        derivative and the two adjoints. No host synchronisation when ``slots`` and ``groups`` are given.
        """
        positions, cell = graph.positions.detach(), graph.cell.detach()
        n_atoms = positions.shape[0]
        if slots is None:
            slots = neighbour_slots(graph.edge_index, graph.shifts, n_atoms, reverse=False)  # used once
        if groups is None:
            groups = species_groups(graph.species, len(self.species))
        species, capacity = graph.species, slots.neighbour.shape[1]
        neighbour = slots.neighbour.reshape(-1)
        vectors = torch.bmm(slots.shifts, cell[graph.batch])  # S . H
        vectors += positions.index_select(0, neighbour).view(vectors.shape) - positions[:, None, :]  # r_ij
        # empty slots: a vector beyond the cutoff, where every orbital and slope is exactly zero
        vectors = torch.where(slots.mask[:, :, None], vectors, torch.full_like(vectors, self.cutoff)).view(
            -1, 3
        )
        ones = torch.ones(3, dtype=vectors.dtype, device=vectors.device)
        distances = torch.sqrt(vectors.square() @ ones)  # a product: faster than a norm over 3 values
        radial, slopes = self.radial.values_and_slopes(
            distances, species.index_select(0, neighbour), self.cutoff
        )
        angular = self.angular(vectors)
        n_radial, n_angular = radial.shape[1], angular.shape[1]
        radial = radial.view(n_atoms, capacity, n_radial)
        angular = angular.view(n_atoms, capacity, n_angular)
        with torch.no_grad():  # the networks' parameters need no graph: their products are written out
            # 1. forward: c^(t+1) = c^t + NN_t(rho^t), each network keeping its tapes for step 2
            coefficients = [self.initial_coefficients.detach().index_select(0, species)]
            sums: list[torch.Tensor] = []
            tapes: list[list[list[torch.Tensor]]] = []
            for update in self.coefficient_updates:
                density = self._density(radial, angular, coefficients[-1], neighbour, sums)
                tape: list[list[torch.Tensor]] = []  # one per species
                coefficients.append(coefficients[-1] + update.forward_saving(density, groups, tape))  # type: ignore[operator]
                tapes.append(tape)
            density = self._density(radial, angular, coefficients[-1], neighbour, sums)
            energy_tape: list[list[torch.Tensor]] = []
            energies = self.energy_networks.forward_saving(density, groups, energy_tape)
            atomic = energies.squeeze(1) + self.atomic_energies.detach().index_select(0, species)
            # 2. backward over the iterations
            d_radial = torch.zeros_like(radial)
            d_angular = torch.zeros_like(angular)
            d_density = self.energy_networks.vjp(torch.ones_like(energies), groups, energy_tape)
            adjoint = torch.zeros_like(coefficients[0])  # dE/dc^(t+1)
            for t in range(self.iterations, -1, -1):
                if t < self.iterations:  # dE/drho^t = dE/dc^(t+1) dNN_t/drho^t
                    for index, network in enumerate(self.coefficient_updates):
                        if index == t:
                            d_density = network.vjp(adjoint, groups, tapes.pop())  # type: ignore[operator]
                adjoint = self._orbital_adjoints(
                    t,
                    d_density,
                    sums[t],
                    coefficients[t],
                    radial,
                    angular,
                    slots,
                    d_radial,
                    d_angular,
                    adjoint,
                )
        # 3. geometry
        d_distances = d_radial.view(-1, n_radial).mul_(slopes) @ torch.ones_like(slopes[0])
        del radial, slopes, d_radial  # the peak memory comes next, in angular.vjp
        if self.use_repulsion:
            leaf = distances.detach().requires_grad_(True)
            shape = slots.neighbour.shape
            pair = self.pair_energy(leaf.view(shape), species, species.index_select(0, neighbour).view(shape))
            (d_pair,) = torch.autograd.grad([pair.sum()], [leaf])
            assert d_pair is not None
            atomic = atomic + pair.detach()
            d_distances = d_distances + d_pair
        d_vectors = (d_distances / distances)[:, None] * vectors
        d_vectors = d_vectors + self.angular.vjp(
            vectors, angular.view(-1, n_angular), d_angular.view(-1, n_angular)
        )
        d_vectors = d_vectors.view(n_atoms, capacity, 3)  # dE/dr_ij, zero in empty slots
        results = {
            "energy": structure_energies(atomic, graph.batch, graph.cell.shape[0]),
            "atomic_energies": atomic,
            "forces": d_vectors.sum(1) - sum_over_reverse(d_vectors, slots),
        }
        if stress:
            # sum_s r_is (x) dE/dr_is (the vectors of empty slots differ from r_ij, but dE/dr is zero there)
            per_atom = torch.bmm(vectors.view(d_vectors.shape).transpose(1, 2), d_vectors)
            virial = torch.zeros_like(cell).index_add_(0, graph.batch, -per_atom)
            virial = 0.5 * (virial + virial.transpose(1, 2))
            results["virial"] = virial
            results["stress"] = -virial / cell_volumes(graph)[:, None, None]
        return results

    def _orbital_adjoints(
        self,
        t: int,
        d_density: torch.Tensor,
        sums: torch.Tensor,
        coefficients: torch.Tensor,
        radial: torch.Tensor,
        angular: torch.Tensor,
        slots: NeighbourSlots,
        d_radial: torch.Tensor,
        d_angular: torch.Tensor,
        adjoint: torch.Tensor,
    ) -> torch.Tensor:
        """One backward step of ``adjoint_pass``: from dE/drho^t, adds dE/d(f_c g_k) and dE/dY_a of every
        slot into ``d_radial`` and ``d_angular`` (in place) and returns dE/dc^t (``adjoint``: dE/dc^(t+1)).
        Its [n_atoms, capacity, k] temporaries are freed on return, before the next step's."""
        d_sums = self.density.sums_gradient(sums, d_density, t)  # [n_atoms, n_angular, k]
        weighted = coefficients.index_select(0, slots.neighbour.view(-1)).view(radial.shape)  # c_j per slot
        d_weighted = torch.bmm(angular, d_sums)  # dE/d(c_j g_k) per slot
        d_radial.addcmul_(d_weighted, weighted)
        d_angular.baddbmm_(weighted.mul_(radial), d_sums.transpose(1, 2))  # weighted: now c_j g_k
        if t == 0:  # c^0 does not depend on the positions
            return adjoint
        return adjoint + sum_over_reverse(d_weighted.mul_(radial), slots)

    def _density(
        self,
        radial: torch.Tensor,
        angular: torch.Tensor,
        coefficients: torch.Tensor,
        neighbour: torch.Tensor,
        sums: list[torch.Tensor],
    ) -> torch.Tensor:
        """rho^t for ``adjoint_pass`` (t = len(sums)); appends S^t."""
        neighbour_coefficients = coefficients.index_select(0, neighbour).view(radial.shape)
        sums.append(torch.bmm(angular.transpose(1, 2), radial * neighbour_coefficients))  # Eq. (3)
        return self.density.from_sums(sums[-1], len(sums) - 1)


def _zero_if_none(gradient: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """The gradient autograd returns, or zeros for an input the energy does not depend on."""
    return torch.zeros_like(like) if gradient is None else gradient
