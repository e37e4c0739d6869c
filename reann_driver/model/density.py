"""The embedded density of REANN: squared linear combinations of Gaussian-type orbitals of the neighbours."""

from typing import Any, NamedTuple

import torch
from torch import nn

from .lean import keeps_only_inputs


class NeighbourSlots(NamedTuple):
    """Dense layout of a neighbour list: neighbour s of atom i sits in row i, column s.

    Orbital sums then become one batched matrix product per iteration instead of a scatter of
    per-edge outer products, which is what makes the recursion cheap. Every row has ``capacity``
    columns, at least the largest number of neighbours of any atom; empty slots have ``mask`` False.
    ``reverse`` lets a sum over the slots that see an atom as their neighbour be a gather instead of a
    scatter (see ``sum_over_reverse``).
    """

    neighbour: torch.Tensor  # [n_atoms, capacity] long, index of the neighbour j (0 where empty)
    shifts: torch.Tensor  # [n_atoms, capacity, 3] integer cell shifts S in the positions' dtype
    mask: torch.Tensor  # [n_atoms, capacity] bool, True where a neighbour is
    reverse: torch.Tensor  # [n_atoms, capacity] long, flat index of the slot (j, -S) seeing i from j
    # (empty slots: their own index); an empty tensor where the list is not symmetric


def edge_slots(centre: torch.Tensor, n_atoms: int, capacity: int = -1) -> tuple[torch.Tensor, int]:
    """The slot of every edge in its centre's row, and the capacity (the largest neighbour count when
    ``capacity`` is -1, which reads it back to the host; a given capacity must be large enough)."""
    counts = torch.bincount(centre, minlength=n_atoms)
    if capacity < 0:
        capacity = int(counts.max()) if centre.numel() > 0 else 0
    order = torch.argsort(centre, stable=True)
    first = torch.cumsum(counts, 0) - counts  # index of each centre's first edge in sorted order
    slot = torch.empty_like(centre)
    slot[order] = torch.arange(centre.numel(), device=centre.device) - first[centre[order]]
    return slot, capacity


def scatter_to_slots(
    centre: torch.Tensor, slot: torch.Tensor, per_edge: torch.Tensor, n_atoms: int, capacity: int
) -> torch.Tensor:
    """[n_edges, ...] -> [n_atoms, capacity, ...], zeros in empty slots (differentiable)."""
    size = [n_atoms, capacity]
    size.extend(per_edge.shape[1:])
    dense = per_edge.new_zeros(size)
    return dense.index_put((centre, slot), per_edge)


def neighbour_slots(
    edge_index: torch.Tensor, shifts: torch.Tensor, n_atoms: int, capacity: int = -1, reverse: bool = True
) -> NeighbourSlots:
    """The slot layout of edges (centre i, neighbour j) with cell shifts [n_edges, 3]; ``reverse``: with
    the reverse-slot table (``reverse_slots``: a sort of the edges, worth it for slots used many times),
    else an empty one (sums over reverse slots then scatter)."""
    centre, neighbour = edge_index[0], edge_index[1]
    slot, capacity = edge_slots(centre, n_atoms, capacity)
    table = scatter_to_slots(centre, slot, neighbour, n_atoms, capacity)
    mask = scatter_to_slots(centre, slot, torch.ones_like(centre, dtype=torch.bool), n_atoms, capacity)
    if reverse:
        reverses = reverse_slots(edge_index, shifts, centre * capacity + slot, n_atoms, capacity)
    else:
        reverses = torch.empty(0, dtype=torch.long, device=centre.device)
    return NeighbourSlots(table, scatter_to_slots(centre, slot, shifts, n_atoms, capacity), mask, reverses)


def reverse_slots(
    edge_index: torch.Tensor, shifts: torch.Tensor, position: torch.Tensor, n_atoms: int, capacity: int
) -> torch.Tensor:
    """For every slot, the flat index of its reverse: edge (i, j, S) at flat slot ``position`` has the
    reverse (j, i, -S). Slots without an edge are their own reverse. An empty tensor when some edge has
    no reverse (a list that is not full and symmetric); reads two numbers back to the host."""
    reverse = torch.arange(n_atoms * capacity, device=edge_index.device)
    if edge_index.shape[1] == 0:
        return reverse.view(n_atoms, capacity)
    centre, neighbour = edge_index[0], edge_index[1]
    integer = shifts.round().long()
    offset = int(integer.abs().max()) + 1
    keys, order = torch.sort(_edge_keys(centre, neighbour, integer, n_atoms, offset))
    wanted = _edge_keys(neighbour, centre, -integer, n_atoms, offset)
    found = torch.searchsorted(keys, wanted).clamp_(max=keys.numel() - 1)
    if not bool((keys[found] == wanted).all()):
        return torch.empty(0, dtype=torch.long, device=edge_index.device)
    reverse[position] = position[order[found]]
    return reverse.view(n_atoms, capacity)


def _edge_keys(
    first: torch.Tensor, second: torch.Tensor, shifts: torch.Tensor, n_atoms: int, offset: int
) -> torch.Tensor:
    """One integer per edge (first, second, integer shifts with |S| < offset), distinct for distinct edges."""
    base = 2 * offset + 1
    code = ((shifts[:, 0] + offset) * base + shifts[:, 1] + offset) * base + shifts[:, 2] + offset
    return (first * n_atoms + second) * base**3 + code


def sum_over_reverse(per_slot: torch.Tensor, slots: NeighbourSlots) -> torch.Tensor:
    """sum_{(i, s): j(i, s) = j} per_slot[i, s], [n_atoms, X] from [n_atoms, capacity, X]: the sum over
    the slots that see atom j as their neighbour, a gather through ``slots.reverse`` (4x faster than the
    scatter it replaces, which it falls back to where the list has no reverse). Empty slots must hold
    zeros."""
    flat = per_slot.reshape(-1, per_slot.shape[2])
    if slots.reverse.numel() == flat.shape[0]:
        return flat.index_select(0, slots.reverse.view(-1)).view(per_slot.shape).sum(1)
    return torch.zeros_like(per_slot[:, 0]).index_add_(0, slots.neighbour.view(-1), flat)


def orbital_sums(
    radial: torch.Tensor, angular: torch.Tensor, coefficients: torch.Tensor, neighbour: torch.Tensor
) -> torch.Tensor:
    """S_i[a, k] = sum_j Y_a(r_ij) f_c(r_ij) g_k(r_ij) c_j[k], [n_atoms, n_angular, n_radial] (Eq. (3) of
    PRL 127, 156002; shapes: see ``EmbeddedDensity.forward``)."""
    # c_j per slot; index_select, whose backward is an index_add (advanced indexing would sort)
    neighbour_coefficients = coefficients.index_select(0, neighbour.reshape(-1)).view(radial.shape)
    return torch.bmm(angular, radial * neighbour_coefficients)


class OrbitalSums(torch.autograd.Function):
    """``orbital_sums`` keeping only its inputs for the backward pass.

    Autograd would keep c_j per slot and the product g_k c_j per slot for every iteration t, two
    [n_atoms, capacity, n_radial] tensors each, although both are cheap to form again from the inputs that
    every iteration shares (g, Y) and the small [n_atoms, n_radial] coefficients. The backward forms them
    again with differentiable operations on the saved inputs, so that a force loss can still be
    backpropagated through it (training, ``create_graph=True``). ``torch.func.vmap`` (committees) batches it
    like any other operation (``generate_vmap_rule``).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(
        radial: torch.Tensor, angular: torch.Tensor, coefficients: torch.Tensor, neighbour: torch.Tensor
    ) -> torch.Tensor:
        return orbital_sums(radial, angular, coefficients, neighbour)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx: Any, d_sums: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        radial, angular, coefficients, neighbour = ctx.saved_tensors
        index = neighbour.reshape(-1)
        neighbour_coefficients = coefficients.index_select(0, index).view(radial.shape)
        d_radial = d_angular = d_coefficients = None
        if ctx.needs_input_grad[1]:  # dS/dY_a(r_ij) = g_k c_j[k]
            d_angular = torch.bmm(d_sums, (radial * neighbour_coefficients).transpose(1, 2))
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[2]:
            d_weighted = torch.bmm(angular.transpose(1, 2), d_sums)  # [n_atoms, capacity, n_radial]
            if ctx.needs_input_grad[0]:
                d_radial = d_weighted * neighbour_coefficients
            if ctx.needs_input_grad[2]:
                per_slot = (d_weighted * radial).reshape(-1, radial.shape[-1])
                d_coefficients = torch.zeros_like(coefficients).index_add(0, index, per_slot)
        return d_radial, d_angular, d_coefficients, None


@torch.jit.unused
def _orbital_sums_saving_inputs(
    radial: torch.Tensor, angular: torch.Tensor, coefficients: torch.Tensor, neighbour: torch.Tensor
) -> torch.Tensor:
    """``OrbitalSums.apply`` (TorchScript cannot call an autograd Function; a scripted model uses
    ``orbital_sums``)."""
    return OrbitalSums.apply(radial, angular, coefficients, neighbour)  # type: ignore[no-any-return]


MIXING_INITS = ("orthogonal", "normal")


def initial_mixing(init: str, n_sets: int, n_l: int, n_radial: int, n_orbitals: int) -> torch.Tensor:
    """Initial orbital mixing matrices W_L^t, [n_sets, n_l, n_radial, n_orbitals].

    * ``"orthogonal"``: one random matrix with orthonormal rows (or columns, whichever are fewer), entries
      about 1 / sqrt(max(k, m)), copied to every L and t: the original code's ``hyper`` (orthogonal_ of a
      [k, m] matrix repeated over iterations and angular momenta). Every density component then starts as
      the same well-scaled mixture of radial channels.
    * ``"normal"`` (reann-driver 0.1 to 0.2): independent N(0, 1/k) entries, about sqrt(m / k) times larger
      in norm, so the densities start about m / k times larger.
    """
    if init == "orthogonal":
        single = nn.init.orthogonal_(torch.empty(n_radial, n_orbitals))
        return single.expand(n_sets, n_l, n_radial, n_orbitals).clone()
    if init == "normal":
        return torch.randn(n_sets, n_l, n_radial, n_orbitals) / n_radial**0.5
    raise ValueError(f"mixing_init must be one of {MIXING_INITS}, got {init!r}")


# atoms per block of the mixing products: a block's [n_angular, atoms, m] products stay in cache
MIXING_BLOCK = 128


class EmbeddedDensity(nn.Module):
    """rho_i[m] = sum_L sum_{a in L} ( sum_k W_L[k, m] S_i[a, k] )^2 with
    S_i[a, k] = sum_j c_j[k] f_c(r_ij) g_k(r_ij) Y_a(r_ij)   (PRL 127, 156002, Eqs. (2)-(4)).

    Geometry (f_c g_k and Y_a per neighbour slot) is fixed across iterations; only the coefficients c_j
    change, so the model computes the orbitals once and calls this module T + 1 times. Each call t uses
    its own mixing matrices W_L^t (``n_sets = T + 1``, as the original code's ``hyper[t]``), or all calls
    share one set (``n_sets = 1``).

    Two evaluations of Eq. (4), equal to rounding (tested):

    * where autograd records (training, a force loss differentiated twice), the square expanded:
      rho_i[m] = sum_L sum_{k,q} G_i^L[k, q] W_L[k, m] W_L[q, m] with the Gram matrices
      G_i^L = sum_{a in L} S_i[a, :]^T S_i[a, :], so that autograd keeps only small [n_atoms, k, k] tensors
      (measured 1.35x faster than the form below for a training step's double backward at 768-1,536 atoms);
    * without autograd (the force pass ``REANN.adjoint_pass`` and its ``sums_gradient``), the mixed
      orbitals P_i[a, m] = sum_k S_i[a, k] W_L(a)[k, m] as one batched product over the angular components
      a, [n_angular, atoms, k] x [n_angular, k, m], for ``MIXING_BLOCK`` atoms at a time (the products stay
      in cache), then squared and summed over a: 2.2x faster than the Gram form at 192 atoms and 4x at
      24,576 (whose tiny batched products and gathers over the pairs scale badly).
    """

    pair_first: torch.Tensor
    pair_second: torch.Tensor
    pair_entries: torch.Tensor
    angular_degree: torch.Tensor

    def __init__(
        self, degree: list[int], n_radial: int, n_orbitals: int, n_sets: int = 1, init: str = "orthogonal"
    ) -> None:
        super().__init__()
        n_l = max(degree) + 1
        self.sizes = [degree.count(ell) for ell in range(n_l)]  # components per L
        # W_L^t [t, L, k, m]
        self.mixing = nn.Parameter(initial_mixing(init, n_sets, n_l, n_radial, n_orbitals))
        first, second = torch.triu_indices(n_radial, n_radial)  # the pairs k <= q
        self.register_buffer("pair_first", first, persistent=False)
        self.register_buffer("pair_second", second, persistent=False)
        self.register_buffer("pair_entries", first * n_radial + second, persistent=False)  # in G [k k]
        self.register_buffer("angular_degree", torch.tensor(degree, dtype=torch.long), persistent=False)
        self.block = MIXING_BLOCK

    def forward(
        self,
        radial: torch.Tensor,
        angular: torch.Tensor,
        coefficients: torch.Tensor,
        neighbour: torch.Tensor,
        iteration: int = 0,
    ) -> torch.Tensor:
        """Args:
            radial: f_c(r_ij) g_k(r_ij) per neighbour slot, [n_atoms, capacity, n_radial] (0 in empty slots).
            angular: Y_a(r_ij) per neighbour slot transposed, [n_atoms, n_angular, capacity].
            coefficients: c_j per atom, [n_atoms, n_radial].
            neighbour: index j of the neighbour in each slot, [n_atoms, capacity].
            iteration: t, which set of mixing matrices to use (taken modulo the number of sets).
        Returns:
            rho [n_atoms, n_orbitals].
        """
        if torch.jit.is_scripting() or not keeps_only_inputs(radial.shape[0] * radial.shape[1]):
            sums = orbital_sums(radial, angular, coefficients, neighbour)
        else:  # large systems: the memory-lean backward
            sums = _orbital_sums_saving_inputs(radial, angular, coefficients, neighbour)
        return self.from_sums(sums, iteration)

    def component_mixing(self, iteration: int = 0) -> torch.Tensor:
        """W_L(a) of call t for every angular component a, [n_angular, k, m]."""
        return self.mixing[iteration % self.mixing.shape[0]].index_select(0, self.angular_degree)

    def from_sums(self, sums: torch.Tensor, iteration: int = 0) -> torch.Tensor:
        """rho [n_atoms, n_orbitals] from the orbital sums S [n_atoms, n_angular, k] (Eq. (4); the Gram form
        where autograd records, else the mixed orbitals, in place: see the class docstring)."""
        if torch.is_grad_enabled():  # (under torch.func transforms requires_grad says nothing)
            grams: list[torch.Tensor] = []
            for block in torch.split(sums, self.sizes, dim=1):  # split: no zero-filled gradient per block
                grams.append(torch.bmm(block.transpose(1, 2), block))  # G^L [n_atoms, k, k]
            gram = torch.stack(grams, dim=1).flatten(2).index_select(2, self.pair_entries)  # k <= q
            return gram.reshape(gram.shape[0], -1) @ self.mixing_pairs(iteration)
        mixing = self.component_mixing(iteration)
        per_component = sums.transpose(0, 1)  # [n_angular, n_atoms, k]
        blocks: list[torch.Tensor] = []
        for start in range(0, sums.shape[0], self.block):
            mixed = torch.bmm(per_component[:, start : start + self.block], mixing)
            blocks.append(mixed.mul_(mixed).sum(0))
        if len(blocks) == 1:
            return blocks[0]
        return torch.cat(blocks) if blocks else sums.new_zeros(0, mixing.shape[2])

    def mixing_pairs(self, iteration: int = 0) -> torch.Tensor:
        """W_L[k, m] W_L[q, m] of the mixing matrices of call t for the pairs k <= q, times 2 for k < q
        (the pair stands for G[k, q] and G[q, k]), as a [L pairs, m] matrix."""
        mixing = self.mixing[iteration % self.mixing.shape[0]]  # [L, k, m]
        pairs = mixing.index_select(1, self.pair_first) * mixing.index_select(1, self.pair_second)
        pairs = pairs * (2.0 - (self.pair_first == self.pair_second).to(pairs.dtype))[None, :, None]
        return pairs.reshape(-1, pairs.shape[-1])

    def sums_gradient(self, sums: torch.Tensor, d_density: torch.Tensor, iteration: int = 0) -> torch.Tensor:
        """dL/dS [n_atoms, n_angular, k] from dL/drho [n_atoms, n_orbitals] and the orbital sums S (no
        autograd): dL/dS[a, k] = 2 sum_m dL/drho[m] P[a, m] W_L(a)[k, m], P formed again block by block."""
        mixing = self.component_mixing(iteration).detach()
        transposed = mixing.transpose(1, 2)  # [n_angular, m, k]
        per_component = sums.transpose(0, 1)
        d_sums = torch.empty_like(per_component)  # [n_angular, n_atoms, k]
        for start in range(0, sums.shape[0], self.block):
            stop = start + self.block
            mixed = torch.bmm(per_component[:, start:stop], mixing)
            mixed.mul_(2.0 * d_density[start:stop])
            torch.bmm(mixed, transposed, out=d_sums[:, start:stop])
        return d_sums.transpose(0, 1)
