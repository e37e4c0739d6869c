"""ASE calculator for REANN models (energies in eV, forces in eV/Å, stress in eV/Å^3, Voigt order)."""

from __future__ import annotations

import os
from typing import Any

import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from .model import REANN, graph_from_atoms, load_model
from .model.runtime import dtype_from_name, inference_copy, resolve_device, to_numpy


class REANNCalculator(Calculator):
    """An ASE calculator wrapping a REANN model or model file.

    Args:
        model: a ``REANN`` instance or the path of a model file.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
        dtype: arithmetic precision for inference (default float64, whatever the model was trained in).
        compile: run the model through ``torch.compile`` (dynamic shapes). The first call then takes
            about a minute on a CPU; it pays off on GPUs, where it fuses the element-wise kernels.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]  # noqa: RUF012

    def __init__(
        self,
        model: REANN | str | os.PathLike[str],
        device: str | torch.device = "cpu",
        dtype: torch.dtype | str = torch.float64,
        compile: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.device = resolve_device(device)
        self.dtype = dtype_from_name(dtype)
        loaded = model if isinstance(model, REANN) else load_model(model)
        self.model = inference_copy(loaded, self.device, self.dtype)
        if compile:
            self.model.compile(dynamic=True)

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: list[str] | None = None,
        system_changes: list[str] = all_changes,
    ) -> None:
        super().calculate(atoms, properties or ["energy"], system_changes)
        assert self.atoms is not None
        properties = properties or ["energy"]
        periodic = bool(self.atoms.pbc.all())
        if "stress" in properties and not periodic:
            raise PropertyNotImplementedError("stress needs a structure periodic in all three directions")
        graph = graph_from_atoms(
            [self.atoms], self.model.species, self.model.cutoff, dtype=self.dtype, device=self.device
        )
        output = self.model(graph, forces=True, stress=periodic)
        energy = float(output["energy"].detach().cpu().double().item())
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "energies": to_numpy(output["atomic_energies"]),
            "forces": to_numpy(output["forces"]),
        }
        if periodic:
            self.results["stress"] = full_3x3_to_voigt_6_stress(to_numpy(output["stress"][0]))
