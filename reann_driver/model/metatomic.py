"""Export to metatomic: a TorchScript ``AtomisticModel`` that i-PI, ASE and LAMMPS run without reann-driver.

The exported model computes the energy (eV, per structure or per atom) from the pair vectors of the
engine's neighbour list (Å); engines get forces and stress by differentiating it (metatomic's standard
path), so no explicit gradients are declared. Requires the optional ``metatomic`` extra
(``metatomic-torch``).
"""

import os
from pathlib import Path
from typing import Dict, List, Optional  # noqa: UP035 (metatomic checks these spellings)

import torch
from ase.data import atomic_numbers
from metatensor.torch import Labels, TensorBlock, TensorMap
from metatomic.torch import (
    AtomisticModel,
    ModelCapabilities,
    ModelMetadata,
    ModelOutput,
    NeighborListOptions,
    System,
)

from .reann import REANN


class MetatomicREANN(torch.nn.Module):
    """A REANN model behind metatomic's model interface (the module an ``AtomisticModel`` wraps)."""

    species_of_type: torch.Tensor

    def __init__(self, model: REANN) -> None:
        super().__init__()
        self.model = model
        numbers = [atomic_numbers[symbol] for symbol in model.species]
        table = torch.full((max(numbers) + 1,), -1, dtype=torch.long)
        table[torch.tensor(numbers)] = torch.arange(len(numbers))
        self.register_buffer("species_of_type", table)  # atomic number -> species index (-1: unknown)
        self.neighbours = NeighborListOptions(cutoff=model.cutoff, full_list=True, strict=True)

    def requested_neighbor_lists(self) -> list[NeighborListOptions]:
        return [self.neighbours]

    def forward(
        self,
        systems: List[System],  # noqa: UP006
        outputs: Dict[str, ModelOutput],  # noqa: UP006
        selected_atoms: Optional[Labels] = None,  # noqa: UP045
    ) -> Dict[str, TensorMap]:  # noqa: UP006
        if "energy" not in outputs:
            return {}
        vectors: list[torch.Tensor] = []
        edges: list[torch.Tensor] = []
        species: list[torch.Tensor] = []
        owners: list[torch.Tensor] = []
        atoms: list[torch.Tensor] = []
        offset = 0
        for index, system in enumerate(systems):
            n_atoms = system.positions.shape[0]
            pairs = system.get_neighbor_list(self.neighbours)
            edges.append(pairs.samples.values[:, :2].T.to(torch.long) + offset)
            vectors.append(pairs.values.reshape(-1, 3))
            types = system.types.to(torch.long)
            if bool(((types < 0) | (types >= self.species_of_type.shape[0])).any()):
                raise ValueError("the system holds an atomic type the model does not know")
            species.append(self.species_of_type[types])
            owners.append(torch.full((n_atoms,), index, dtype=torch.int32, device=types.device))
            atoms.append(torch.arange(n_atoms, dtype=torch.int32, device=types.device))
            offset += n_atoms
        all_species = torch.cat(species)
        if bool((all_species < 0).any()):
            raise ValueError("the system holds an atomic type the model does not know")
        atomic = self.model.atomic_energy_from_edges(torch.cat(vectors), torch.cat(edges, dim=1), all_species)
        owner = torch.cat(owners)
        atom = torch.cat(atoms)
        if selected_atoms is not None:
            sizes = torch.tensor([s.positions.shape[0] for s in systems], device=atomic.device)
            starts = torch.cumsum(sizes, 0) - sizes
            wanted = selected_atoms.values.to(torch.long)
            keep = starts[wanted[:, 0]] + wanted[:, 1]
            atomic, owner, atom = atomic[keep], owner[keep], atom[keep]
        properties = Labels(["energy"], torch.zeros((1, 1), dtype=torch.int32, device=atomic.device))
        if outputs["energy"].sample_kind == "atom":
            samples = Labels(["system", "atom"], torch.stack([owner, atom], dim=1))
            values = atomic[:, None]
        else:
            values = atomic.new_zeros(len(systems)).index_add(0, owner.to(torch.long), atomic)[:, None]
            structures = torch.arange(len(systems), dtype=torch.int32, device=atomic.device)[:, None]
            samples = Labels(["system"], structures)
        block = TensorBlock(values=values, samples=samples, components=[], properties=properties)
        keys = Labels(["_"], torch.zeros((1, 1), dtype=torch.int32, device=atomic.device))
        return {"energy": TensorMap(keys, [block])}


def atomistic_model(model: REANN) -> AtomisticModel:
    """The metatomic ``AtomisticModel`` of ``model`` (energies in eV, lengths in Å)."""
    capabilities = ModelCapabilities(
        outputs={"energy": ModelOutput(unit="eV", sample_kind="atom")},
        atomic_types=[atomic_numbers[symbol] for symbol in model.species],
        interaction_range=model.cutoff * (model.iterations + 1),
        length_unit="angstrom",
        supported_devices=["cpu", "cuda"],
        dtype=str(model.dtype).removeprefix("torch."),
    )
    metadata = ModelMetadata(
        name="REANN (reann-driver)",
        description=f"recursively embedded atom neural network: {model.extra_repr()}",
        references={"architecture": ["Y. Zhang, J. Xia and B. Jiang, Phys. Rev. Lett. 127, 156002 (2021)"]},
    )
    return AtomisticModel(MetatomicREANN(model).eval(), metadata, capabilities)


def export_metatomic(model: REANN, output: str | os.PathLike[str], force: bool = False) -> Path:
    """Write ``model`` as a metatomic model file (TorchScript) to ``output``, atomically."""
    target = Path(output)
    if target.exists() and not force:
        raise FileExistsError(f"{str(target)!r} exists; use --force to overwrite it")
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        atomistic_model(model).save(str(partial))
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target
