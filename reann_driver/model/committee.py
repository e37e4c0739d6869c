"""A committee of REANN models evaluated together: mean predictions, per-member values and their spread.

All members see the same flat graph (one neighbour list). Members with the same hyper-parameters are
evaluated in ONE vectorised call: their weights are stacked (``torch.func.stack_module_state``) and the
atomic-energy function is mapped over the member axis with ``torch.func.vmap``. Each member gets its
own copy of the positions (and strain), so one backward pass gives every member's forces and virial.

Units as for ``REANN``: Å, eV, eV/Å, eV/Å^3.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from .neighbors import Graph
from .reann import REANN
from .structures import apply_strain, cell_volumes, structure_energies

# hyper-parameters that do not change the forward pass (the dtype, and those that only set initial
# values): members that differ only in them share one vectorised call
NOT_ARCHITECTURE = ("dtype", "initial_coefficient", "radial_init", "mixing_init")

_Stacked = tuple[tuple[Any, ...], dict[str, torch.Tensor], dict[str, torch.Tensor]]  # key, params, buffers


class _AtomicEnergy(nn.Module):
    """``REANN.atomic_energy`` as a module call, so that ``functional_call`` can swap its weights."""

    def __init__(self, model: REANN) -> None:
        super().__init__()
        self.model = model

    def forward(self, graph: Graph, positions: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        return self.model.atomic_energy(graph, positions, cell)


class Committee(nn.Module):
    """K >= 2 REANN models with the same species (same order) and cutoff, for inference.

    ``forward`` returns the REANN outputs averaged over the members (``energy``, ``atomic_energies``,
    ``forces``, ``virial``, ``stress``) and, per member, ``committee_energy`` [K, n_structures],
    ``committee_forces`` [K, n_atoms, 3] and, with stress, ``committee_virial`` and ``committee_stress``
    [K, n_structures, 3, 3]. ``energy_uncertainty`` [n_structures] is the members' standard deviation
    with ddof=1 (eV), the quantity i-PI's ``<ffcommittee>`` reports (with alpha = 1).

    Args:
        members: the models (their weights are used as they are; train them separately).
        names: how error messages name the members (e.g. their files); default "member k".
    """

    def __init__(self, members: Sequence[REANN], names: Sequence[str] | None = None) -> None:
        super().__init__()
        members = list(members)
        names = list(names) if names is not None else [f"member {k}" for k in range(len(members))]
        if len(members) < 2:
            raise ValueError(f"a committee needs at least 2 members, got {len(members)}")
        if len(names) != len(members):
            raise ValueError("names must name every member")
        first = members[0]
        for name, member in zip(names[1:], members[1:]):
            if member.species != first.species or member.cutoff != first.cutoff:
                raise ValueError(
                    "committee members must have the same species (in the same order) and cutoff: "
                    f"{names[0]} has {first.species}, r_c {first.cutoff} Å; "
                    f"{name} has {member.species}, r_c {member.cutoff} Å"
                )
        if len({(member.dtype, member.device) for member in members}) > 1:
            raise ValueError("committee members must share dtype and device (convert them with .to() first)")
        self.members = nn.ModuleList(members)
        self.species = list(first.species)
        self.cutoff = float(first.cutoff)
        self.metadata: dict[str, Any] = {}
        groups: dict[str, list[int]] = {}
        for index, member in enumerate(members):
            architecture = {k: v for k, v in member.config.items() if k not in NOT_ARCHITECTURE}
            groups.setdefault(json.dumps(architecture, sort_keys=True), []).append(index)
        self.groups = list(groups.values())  # members that can share one vectorised call
        self._templates = [_AtomicEnergy(copy.deepcopy(members[g[0]]).to("meta")) for g in self.groups]
        self._stacked: list[_Stacked | None] = [None] * len(self.groups)
        self._parameters_of = [[p for k in group for p in members[k].parameters()] for group in self.groups]
        self.training = False

    def train(self, mode: bool = True) -> Committee:
        """A committee is evaluated only (its members are trained separately): ``train(True)`` raises."""
        if mode:
            raise RuntimeError("a Committee is for inference; train its members separately")
        return super().train(False)

    def __len__(self) -> int:
        return len(self.members)

    @property
    def dtype(self) -> torch.dtype:
        return self.member(0).dtype

    @property
    def device(self) -> torch.device:
        return self.member(0).device

    def member(self, index: int) -> REANN:
        """The k-th member model."""
        model = self.members[index]
        assert isinstance(model, REANN)
        return model

    def _weights(self, group: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Stacked parameters and buffers of one group, restacked only when a member's tensors change."""
        # Parameter objects survive .to() and load_state_dict (their data is replaced or copied into, which
        # changes data_ptr or _version); the buffers are re-read whenever the parameters changed.
        key = tuple((tensor.data_ptr(), tensor._version) for tensor in self._parameters_of[group])
        cached = self._stacked[group]
        if cached is None or cached[0] != key:
            wrappers = [_AtomicEnergy(self.member(k)) for k in self.groups[group]]
            with torch.no_grad():
                params, buffers = stack_module_state(wrappers)  # type: ignore[arg-type]
            cached = (key, {name: value.detach() for name, value in params.items()}, buffers)
            self._stacked[group] = cached
        return cached[1], cached[2]

    def forward(self, graph: Graph, forces: bool = True, stress: bool = False) -> dict[str, torch.Tensor]:
        """Mean and per-member energies and derivatives for a batch of structures (see the class)."""
        outputs = [self._group_forward(g, graph, forces, stress) for g in range(len(self.groups))]
        order = torch.tensor([index for group in self.groups for index in group], device=graph.batch.device)
        inverse = torch.argsort(order)  # from group order back to member order
        stacked = {key: torch.cat([output[key] for output in outputs])[inverse] for key in outputs[0]}
        energies = stacked["energy"]
        results = {
            "energy": energies.mean(0),
            "atomic_energies": stacked["atomic"].mean(0),
            "committee_energy": energies,
            "energy_uncertainty": energies.std(0, correction=1),
        }
        if forces:
            results["forces"] = stacked["forces"].mean(0)
            results["committee_forces"] = stacked["forces"]
        if stress:
            volume = cell_volumes(graph)[None, :, None, None]
            results["virial"] = stacked["virial"].mean(0)
            results["stress"] = -results["virial"] / volume[0]
            results["committee_virial"] = stacked["virial"]
            results["committee_stress"] = -stacked["virial"] / volume
        return results

    def _group_forward(self, group: int, graph: Graph, forces: bool, stress: bool) -> dict[str, torch.Tensor]:
        """Energies [k, n_structures], atomic energies and, when asked, forces and virials of one group."""
        params, buffers = self._weights(group)
        template = self._templates[group]
        n_members = len(self.groups[group])
        positions = graph.positions.detach().unsqueeze(0).repeat(n_members, 1, 1)
        strain = positions.new_zeros(n_members, graph.n_structures, 3, 3)
        inputs = []
        if forces or stress:
            inputs.append(positions.requires_grad_(True))
        if stress:
            inputs.append(strain.requires_grad_(True))

        def atomic_energy(
            params: dict[str, torch.Tensor],
            buffers: dict[str, torch.Tensor],
            positions: torch.Tensor,
            strain: torch.Tensor,
        ) -> torch.Tensor:
            strained, cell = apply_strain(graph, positions, graph.cell, strain)
            return functional_call(template, (params, buffers), (graph, strained, cell), tie_weights=False)

        with torch.enable_grad() if inputs else torch.no_grad():
            atomic = vmap(atomic_energy)(params, buffers, positions, strain)  # [k, n_atoms]
            energy = structure_energies(atomic, graph.batch, graph.n_structures)  # [k, n], float64
        results = {"energy": energy.detach(), "atomic": atomic.detach()}
        if inputs:
            gradients = torch.autograd.grad(energy.sum(), inputs, allow_unused=True)
            gradients = tuple(torch.zeros_like(x) if g is None else g for g, x in zip(gradients, inputs))
            if forces:
                results["forces"] = -gradients[0]
            if stress:
                results["virial"] = -gradients[-1]
        return results
