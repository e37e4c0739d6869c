"""ASE calculator for REANN models (energies in eV, forces in eV/Å, stress in eV/Å^3, Voigt order)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from .model import REANN, Committee, graph_from_atoms, load_model
from .model.runtime import dtype_from_name, inference_copy, resolve_device, scripted_inference, to_numpy


class REANNCalculator(Calculator):
    """An ASE calculator wrapping a REANN model, a committee, or their file.

    A committee gives the members' mean as ``energy``, ``forces`` and ``stress``, and adds to
    ``calc.results``: ``committee_energy`` [K] (eV), ``committee_forces`` [K, n_atoms, 3] (eV/Å),
    ``committee_stress`` [K, 6] (eV/Å^3, periodic structures), ``energy_uncertainty`` (eV, the
    members' standard deviation with ddof=1, what i-PI's ``<ffcommittee>`` reports with alpha = 1) and
    ``forces_uncertainty`` [n_atoms] (eV/Å, the root of the summed per-component variances, ddof=1).

    Args:
        model: a ``REANN`` or ``Committee`` instance, or the path of a model or committee file.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
        dtype: arithmetic precision for inference (default float64, whatever the model was trained in).
        compile: run the model through ``torch.compile`` (dynamic shapes). The first call then takes
            about a minute on a CPU; it pays off on GPUs, where it fuses the element-wise kernels.
            Without it, a single model on the CPU runs as TorchScript (``runtime.scripted_inference``).
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]  # noqa: RUF012

    def __init__(
        self,
        model: REANN | Committee | str | os.PathLike[str],
        device: str | torch.device = "cpu",
        dtype: torch.dtype | str = torch.float64,
        compile: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.device = resolve_device(device)
        self.dtype = dtype_from_name(dtype)
        loaded = model if isinstance(model, REANN | Committee) else load_model(model)
        if isinstance(loaded, REANN):
            self.model: REANN | Committee = inference_copy(loaded, self.device, self.dtype)
        else:
            self.model = loaded.to(device=self.device, dtype=self.dtype).eval()
        self._call: Callable[..., dict[str, torch.Tensor]] = self.model
        if compile:
            self.model.compile(dynamic=True)
        elif isinstance(self.model, REANN) and self.device.type == "cpu":
            self._call = scripted_inference(self.model)  # no Python dispatch per operation

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
        output = self._call(graph, forces=True, stress=periodic)
        energy = float(output["energy"].detach().cpu().double().item())
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "energies": to_numpy(output["atomic_energies"]),
            "forces": to_numpy(output["forces"]),
        }
        if periodic:
            self.results["stress"] = full_3x3_to_voigt_6_stress(to_numpy(output["stress"][0]))
        if isinstance(self.model, Committee):
            members = to_numpy(output["committee_forces"])
            self.results["committee_energy"] = to_numpy(output["committee_energy"][:, 0])
            self.results["committee_forces"] = members
            self.results["energy_uncertainty"] = float(to_numpy(output["energy_uncertainty"][0]))
            self.results["forces_uncertainty"] = np.sqrt(members.var(axis=0, ddof=1).sum(axis=1))
            if periodic:
                self.results["committee_stress"] = full_3x3_to_voigt_6_stress(
                    to_numpy(output["committee_stress"][:, 0])
                )
