"""Energies, forces and virials of a batch of i-PI structures (atomic units) from one model call.

i-PI works in atomic units (Bohr, Hartree) with the cell h holding lattice vectors as columns; the
model works in Å and eV with lattice vectors as rows. The conversion factors come from
``ipi.utils.units`` so that numbers round-trip exactly through i-PI's own output conversions.
All N structures of a request become ONE flat graph and ONE forward + backward pass; on the CPU a single
model takes them in blocks of whole structures of about ``CPU_PASS_ATOMS`` atoms instead (one pass per
block), where the per-slot tensors stay in the caches.

A committee returns the members' mean and, for i-PI's ``<ffcommittee parse_json="true">``, the
per-member values as JSON extras: ``committee_pot`` [K] (Hartree), ``committee_force`` [K][3 n_atoms]
(Hartree/Bohr, atom-major) and ``committee_virial`` [K][9] (Hartree, row-major, oriented as the
virial on the wire; zeros for a non-periodic run).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from ipi.utils.units import unit_to_internal, unit_to_user

from reann_driver.errors import UserError
from reann_driver.geometry import neighbour_list_problem
from reann_driver.model import REANN, Committee, build_graph, load_committee, species_indices
from reann_driver.model.runtime import (
    CompileError,
    compiled,
    dtype_from_name,
    inference_copy,
    resolve_device,
    scripted_inference,
    to_numpy,
)

from .static import CapturedCall, StaticNeighbours

ANGSTROM_PER_BOHR = float(unit_to_user("length", "angstrom", 1.0))
HARTREE_PER_EV = float(unit_to_internal("energy", "electronvolt", 1.0))
DEFAULT_SKIN = 0.2  # Å: on a CPU a larger skin costs more in extra slots than it saves in rebuilds
# atoms per forward pass on the CPU: 32 64-water boxes took 14.2-14.5 ms per box in blocks of 384-768
# atoms, 16.4 in blocks of 1,536 and 20.0 in one pass (TorchScript, T = 3, one thread)
CPU_PASS_ATOMS = 1000


class TemplateError(UserError, ValueError):
    """The template structure cannot be read, or does not fit the model or the structures i-PI sends."""


class PassSizeError(UserError, ValueError):
    """``pass_atoms`` cannot apply: negative, or asked of a committee."""


class StructureError(UserError, ValueError):
    """i-PI sent a structure the model cannot evaluate (non-finite positions, singular cell, ...)."""


class ModelOutputError(ValueError):
    """The model gave a non-finite energy, force or virial: it is never sent to i-PI."""


@dataclass(frozen=True)
class Results:
    """Model results in i-PI's atomic units for N structures."""

    energies: np.ndarray  # [n] Hartree
    forces: np.ndarray  # [n, n_atoms, 3] Hartree/Bohr
    virials: np.ndarray  # [n, 3, 3] Hartree, -dE/d(strain), oriented as i-PI reads it
    extras: list[str]  # one JSON string (or "") per structure


def read_template_symbols(path: str | os.PathLike[str]) -> list[str]:
    """Chemical symbols of the first frame of an ASE-readable structure file (i-PI xyz works too)."""
    import ase.io

    try:
        atoms = ase.io.read(os.fspath(path), index=0)
    except FileNotFoundError:
        raise TemplateError(f"template file {os.fspath(path)!r} does not exist") from None
    except Exception as error:
        raise TemplateError(f"cannot read template {os.fspath(path)!r} with ase.io.read: {error}") from None
    symbols = atoms.get_chemical_symbols()  # type: ignore[union-attr]
    if not symbols:
        raise TemplateError(f"template {os.fspath(path)!r} contains no atoms")
    return symbols


class BatchEvaluator:
    """Evaluate a REANN model or committee on batches of structures that share the template's atoms.

    Args:
        model: the REANN model or committee.
        symbols: chemical symbol of every atom, in i-PI's atom order.
        periodic: use the cell i-PI sends (3D periodic, virials from the strain derivative); with
            ``False`` the box is ignored (gas-phase molecules) and the virial is returned as zero.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
        dtype: arithmetic precision of the model (the wire is float64 regardless).
        extras: add per-atom energies (eV) as JSON extras ``{"atomic_energies": [...]}``.
        template_name: how error messages name the template.
        skin: neighbour-list skin in Å: the neighbour slots are kept between calls and rebuilt only when
            an atom moved more than skin / 2 (``reann_driver.ipi.static``); ``None`` builds a fresh
            neighbour list for every call (as committees always do).
        cuda_graphs: on CUDA with kept slots, replay each request as one CUDA graph (recorded again
            only when the buffers change shape).
        compile: run the model through ``torch.compile`` (``model.runtime.compiled``): the first request
            compiles it (about 20 s for the 64-water anchor model on one idle core), later ones take
            about 0.8x the time. Needs a single model and kept slots
            (``skin``); on CUDA it replaces the CUDA-graph replay.
        pass_atoms: at most this many atoms per forward pass (whole structures, at least one); 0: all
            structures in one pass; ``None``: ``CPU_PASS_ATOMS`` for a single model on the CPU without
            ``compile``, else one pass (CUDA, ``compile``, committees).

    Without ``compile``, a single model on the CPU runs as TorchScript (``runtime.scripted_inference``).
    """

    def __init__(
        self,
        model: REANN | Committee,
        symbols: Sequence[str],
        periodic: bool = True,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | str = torch.float64,
        extras: bool = False,
        template_name: str = "the template",
        skin: float | None = DEFAULT_SKIN,
        cuda_graphs: bool = True,
        compile: bool = False,
        pass_atoms: int | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.dtype = dtype_from_name(dtype)
        if isinstance(model, REANN):
            self.model: REANN | Committee = inference_copy(model, self.device, self.dtype)
        else:
            self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.periodic = periodic
        self.extras = extras
        self.template_name = template_name
        self.symbols = list(symbols)
        try:
            self.species = species_indices(self.symbols, model.species)
        except ValueError as error:
            raise TemplateError(f"{template_name}: {error}") from None
        single_cpu = isinstance(model, REANN) and self.device.type == "cpu" and not compile
        if pass_atoms is None:
            pass_atoms = CPU_PASS_ATOMS if single_cpu else 0
        if pass_atoms < 0:
            raise PassSizeError(f"pass_atoms must be a number of atoms >= 0 (0: one pass), got {pass_atoms}")
        if pass_atoms and not isinstance(model, REANN):
            raise PassSizeError(
                "pass_atoms needs a single model: a committee takes every structure in one pass"
            )
        self.pass_atoms = pass_atoms  # 0: one pass
        self.skin = skin
        self.neighbours: list[StaticNeighbours] | None = None  # one per block of structures
        if compile and (not isinstance(model, REANN) or skin is None):
            raise CompileError(
                "compile needs a single model (not a committee) and kept neighbour slots (a skin)"
            )
        self._call: Callable[..., dict[str, torch.Tensor]] = self.model
        if compile and isinstance(self.model, REANN):
            self._call = compiled(self.model, self.device)
        elif isinstance(self.model, REANN) and self.device.type == "cpu":
            self._call = scripted_inference(self.model)  # no Python dispatch per operation
        self.cuda_graphs = cuda_graphs and self.device.type == "cuda" and not compile
        self._captured: dict[int, CapturedCall] = {}  # per block
        if skin is not None and isinstance(model, REANN):  # a committee builds its own slots per member
            self.neighbours = [self._kept_slots()]

    @classmethod
    def from_files(
        cls,
        model_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        template_path: str | os.PathLike[str],
        periodic: bool = True,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | str = torch.float64,
        extras: bool = False,
        skin: float | None = DEFAULT_SKIN,
        compile: bool = False,
        pass_atoms: int | None = None,
    ) -> BatchEvaluator:
        """Load the model file, the committee file or several model files forming a committee
        (``ModelFileError`` if they are not) and the template's symbols."""
        paths = [model_path] if isinstance(model_path, str | os.PathLike) else list(model_path)
        model = load_committee(paths)
        symbols = read_template_symbols(template_path)
        name = f"template {template_path!r}"
        return cls(
            model,
            symbols,
            periodic,
            device,
            dtype,
            extras,
            template_name=name,
            skin=skin,
            compile=compile,
            pass_atoms=pass_atoms,
        )

    @property
    def n_atoms(self) -> int:
        return len(self.symbols)

    def check_atom_count(self, n_atoms: int) -> None:
        """TemplateError unless i-PI's structures have the template's number of atoms."""
        if n_atoms != self.n_atoms:
            raise TemplateError(
                f"i-PI sends {n_atoms} atoms per structure but {self.template_name} has "
                f"{self.n_atoms} atoms: the template must be the structure i-PI simulates, same atoms "
                "in the same order"
            )

    def check(self, cells: np.ndarray, positions: np.ndarray) -> None:
        """Clear errors for structures that do not match the template or cannot be evaluated."""
        if positions.ndim != 3 or positions.shape[2] != 3:
            raise StructureError(f"positions must be [n_structures, n_atoms, 3], got shape {positions.shape}")
        self.check_atom_count(positions.shape[1])
        bad = ~np.isfinite(positions).all(axis=2)
        if bad.any():
            structure, atom = (int(k) for k in np.argwhere(bad)[0])
            raise StructureError(
                f"i-PI sent non-finite positions ({int(bad.sum())} atom(s); first: structure {structure}, "
                f"atom {atom} {self.symbols[atom]}): the simulation has blown up (time step too large, "
                "or a model outside its training domain)"
            )
        if self.periodic:
            if not np.isfinite(cells).all():
                raise StructureError("i-PI sent a non-finite cell")
            volumes = np.abs(np.linalg.det(cells))
            if (volumes < 1e-8).any():
                raise StructureError(
                    "i-PI sent a cell with zero volume; for a molecule in vacuum use --non-periodic "
                    "(non_periodic=true for the plugin)"
                )
        for k, (cell, structure) in enumerate(zip(cells, positions)):
            problem = neighbour_list_problem(
                structure * ANGSTROM_PER_BOHR, cell.T * ANGSTROM_PER_BOHR, self.periodic, self.model.cutoff
            )
            if problem is not None:
                raise StructureError(f"i-PI sent an unusable structure {k}: {problem[1]}")

    def evaluate(self, cells: np.ndarray, positions: np.ndarray) -> Results:
        """Energies, forces and virials for N structures in one forward + backward pass per block
        (``blocks``).

        Args:
            cells: [n, 3, 3] i-PI cells h in Bohr (lattice vectors as columns).
            positions: [n, n_atoms, 3] in Bohr.
        """
        cells = np.asarray(cells, dtype=np.float64).reshape(-1, 3, 3)
        positions = np.asarray(positions, dtype=np.float64).reshape(len(cells), -1, 3)
        self.check(cells, positions)
        n_structures = len(cells)
        positions_angstrom = positions * ANGSTROM_PER_BOHR
        if self.periodic:
            cells_angstrom = cells.transpose(0, 2, 1) * ANGSTROM_PER_BOHR  # rows = lattice vectors
        else:
            cells_angstrom = np.zeros_like(cells)
        blocks = self.blocks(n_structures)
        if self.neighbours is not None:
            del self.neighbours[len(blocks) :]  # fewer structures than before: fewer blocks
            self._captured = {k: call for k, call in self._captured.items() if k < len(blocks)}
        outputs = [
            self._evaluate_block(k, positions_angstrom[start:stop], cells_angstrom[start:stop])
            for k, (start, stop) in enumerate(blocks)
        ]
        # a single model's outputs all run over structures or atoms first: blocks join along that axis
        output = (
            outputs[0]
            if len(outputs) == 1
            else {key: torch.cat([o[key] for o in outputs]) for key in outputs[0]}
        )
        energies = to_numpy(output["energy"]) * HARTREE_PER_EV
        forces = to_numpy(output["forces"]).reshape(n_structures, -1, 3) * (
            HARTREE_PER_EV * ANGSTROM_PER_BOHR
        )
        if self.periodic:
            virials = to_numpy(output["virial"]).transpose(0, 2, 1) * HARTREE_PER_EV
        else:
            virials = np.zeros((n_structures, 3, 3))
        extras: list[dict[str, object]] = [{} for _ in range(n_structures)]
        if self.extras:
            per_atom = to_numpy(output["atomic_energies"]).reshape(n_structures, -1)
            for extra, row in zip(extras, per_atom):
                extra["atomic_energies"] = row.tolist()
        if isinstance(self.model, Committee):
            self._add_committee(output, extras)
        for name, values in (("energy", energies), ("forces", forces), ("virial", virials)):
            bad = ~np.isfinite(values.reshape(n_structures, -1)).all(axis=1)
            if bad.any():
                raise ModelOutputError(
                    f"the model gave a non-finite {name} for structure {int(np.argmax(bad))} of this "
                    f"request ({int(bad.sum())} of {n_structures}); nothing was sent to i-PI: check the "
                    "model file and the structures (reann eval on similar data)"
                )
        return Results(
            energies=energies,
            forces=forces,
            virials=virials,
            extras=[json.dumps(extra) if extra else "" for extra in extras],
        )

    def blocks(self, n_structures: int) -> list[tuple[int, int]]:
        """(start, stop) of each block of consecutive structures that one forward pass takes: as few
        blocks as keep each within ``pass_atoms`` atoms (at least one structure), sizes differing by at
        most one."""
        if self.pass_atoms == 0:
            return [(0, n_structures)]
        n_blocks = min(n_structures, -(-n_structures * self.n_atoms // self.pass_atoms))
        bounds = np.linspace(0, n_structures, n_blocks + 1).round().astype(int)
        return [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]

    def _kept_slots(self) -> StaticNeighbours:
        """Kept neighbour slots for one more block (``ValueError`` for a negative skin)."""
        assert self.skin is not None
        return StaticNeighbours(
            self.species,
            len(self.model.species),
            self.model.cutoff,
            self.skin,
            self.periodic,
            self.device,
            self.dtype,
        )

    def _evaluate_block(self, k: int, positions: np.ndarray, cells: np.ndarray) -> dict[str, torch.Tensor]:
        """The model's outputs for block ``k`` of a request (Å, rows): through its kept slots, or a fresh
        neighbour list."""
        n_structures = len(positions)
        if self.neighbours is None:
            graph = build_graph(
                species=[self.species] * n_structures,
                positions=list(positions),
                cells=list(cells),
                pbcs=[[self.periodic] * 3] * n_structures,
                cutoff=self.model.cutoff,
                dtype=self.dtype,
                device=self.device,
            )
            return self._call(graph, forces=True, stress=self.periodic)
        while len(self.neighbours) <= k:
            self.neighbours.append(self._kept_slots())
        step = self.neighbours[k].update(positions, cells)
        if self.cuda_graphs:
            if k not in self._captured or self._captured[k].step is not step:
                self._captured[k] = CapturedCall(self.model, step, self.periodic)
            return self._captured[k]()
        return self._call(step.graph, True, self.periodic, step.slots, step.groups)

    def _add_committee(self, output: dict[str, torch.Tensor], extras: list[dict[str, object]]) -> None:
        """Per-member energies, forces and virials of every structure in i-PI's units and layout."""
        n_structures, n_members = len(extras), len(output["committee_energy"])
        pots = to_numpy(output["committee_energy"]) * HARTREE_PER_EV  # [K, n]
        forces = to_numpy(output["committee_forces"]).reshape(n_members, n_structures, -1) * (
            HARTREE_PER_EV * ANGSTROM_PER_BOHR
        )
        if self.periodic:
            virials = to_numpy(output["committee_virial"]).transpose(0, 1, 3, 2) * HARTREE_PER_EV
        else:
            virials = np.zeros((n_members, n_structures, 3, 3))
        for k, extra in enumerate(extras):
            extra["committee_pot"] = pots[:, k].tolist()
            extra["committee_force"] = forces[:, k].tolist()
            extra["committee_virial"] = virials[:, k].reshape(n_members, 9).tolist()
