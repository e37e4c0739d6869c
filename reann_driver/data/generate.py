"""Generate labelled structures when no archive is at hand.

CH4 structures follow the random-methane protocol of Pozdnyakov et al. (PRL 125, 166001, 2020):
C at the origin, four H uniformly distributed in the 3 Å sphere around it, every pair of atoms at least
0.5 Å apart (``mode="random"``). ``mode="perturbed"`` displaces the equilibrium geometry by Gaussian
noise instead (near-equilibrium data, e.g. for MD demos). Water structures (``mode="box"``) are cubic
periodic boxes of rigid-geometry molecules at a given density, randomly placed (O-O at least 2.5 Å apart
across periodic images) and oriented, then displaced by Gaussian noise.

Structure ``i`` is drawn from its own generator ``numpy.random.default_rng([seed, i])``, so the output
does not depend on the number of workers or on interruptions. Progress is journalled in
``OUT.partial`` (labelled frames) and ``OUT.partial-rejected.jsonl`` (failed labels); re-running the
same command resumes where it stopped, and the final file is written in index order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.build import molecule
from tqdm import tqdm
from vesin import ase_neighbor_list as neighbor_list

from .errors import DataError, DataFormatError
from .formats import extxyz
from .formats.base import numbered_lines
from .frames import make_frame, standard_copy
from .labelers import Labeler, LabelingFailed, make_labeler
from .output import atomic_file, check_output
from .units import CODATA_2018

AVOGADRO = CODATA_2018["_Nav"]

SPHERE_RADIUS = 3.0  # Å, radius of the sphere around C holding the H atoms (random mode)
MIN_DISTANCE = 0.5  # Å, smallest allowed distance between any two atoms
MIN_OXYGEN_DISTANCE = 2.5  # Å, smallest O-O distance when placing water molecules
MODES = {"ch4": ("random", "perturbed"), "water": ("box",)}
WATER_MASS = 18.01528  # g/mol


def random_ch4(rng: np.random.Generator) -> Atoms:
    """Random-methane protocol: H uniform in the 3 Å ball around C, all pairs >= 0.5 Å apart (rejection)."""
    while True:
        directions = rng.normal(size=(4, 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        radii = SPHERE_RADIUS * rng.random(4) ** (1.0 / 3.0)
        positions = np.vstack([np.zeros(3), directions * radii[:, None]])
        if _min_distance(positions) >= MIN_DISTANCE:
            return Atoms("CH4", positions=positions)


def perturbed_ch4(rng: np.random.Generator, sigma: float) -> Atoms:
    """Equilibrium CH4 (ASE's geometry, C-H 1.087 Å) plus Gaussian noise, ``sigma`` Å per coordinate."""
    reference = molecule("CH4")
    while True:
        positions = reference.positions + rng.normal(scale=sigma, size=reference.positions.shape)
        if _min_distance(positions) >= MIN_DISTANCE:
            return Atoms("CH4", positions=positions - positions[0])


def water_box(rng: np.random.Generator, molecules: int, density: float, sigma: float) -> Atoms:
    """``molecules`` H2O in a cubic periodic box of ``density`` g/cm^3, random positions and orientations
    (O-O >= 2.5 Å), each atom displaced by Gaussian noise of ``sigma`` Å per coordinate."""
    from scipy.spatial.transform import Rotation

    edge = (molecules * WATER_MASS / (AVOGADRO * density) * 1e24) ** (1.0 / 3.0)  # Å
    reference = molecule("H2O").positions
    reference = reference - reference[0]
    for _ in range(10_000):
        oxygens: list[np.ndarray] = []
        for _ in range(100 * molecules):
            candidate = rng.random(3) * edge
            separation = np.array(oxygens) - candidate if oxygens else np.empty((0, 3))
            separation -= edge * np.round(separation / edge)
            if not oxygens or np.linalg.norm(separation, axis=1).min() >= MIN_OXYGEN_DISTANCE:
                oxygens.append(candidate)
                if len(oxygens) == molecules:
                    break
        if len(oxygens) < molecules:
            continue
        positions = np.vstack(
            [Rotation.random(random_state=rng).apply(reference) + oxygen for oxygen in oxygens]
        ) + rng.normal(scale=sigma, size=(3 * molecules, 3))
        atoms = Atoms("OH2" * molecules, positions=positions, cell=np.eye(3) * edge, pbc=True)
        atoms.wrap()
        if neighbor_list("d", atoms, MIN_DISTANCE)[0].size == 0:
            return atoms
    raise DataError(f"could not place {molecules} water molecules at {density} g/cm^3; lower the density")


def _min_distance(positions: np.ndarray) -> float:
    differences = positions[:, None, :] - positions[None, :, :]
    distances = np.linalg.norm(differences, axis=-1)
    return float(distances[np.triu_indices(len(positions), k=1)].min())


@dataclass(frozen=True)
class Plan:
    """What to generate: the part of a run that must match for a journal to be resumed."""

    system: str
    mode: str
    n: int
    seed: int
    labeler: str
    sigma: float = 0.15
    molecules: int = 8
    density: float = 1.0

    def check(self) -> None:
        """Raise DataError for an impossible plan."""
        if self.system not in MODES:
            raise DataError(f"unknown system {self.system!r}; choose one of {', '.join(MODES)}")
        if self.mode not in MODES[self.system]:
            raise DataError(
                f"unknown {self.system} mode {self.mode!r}; choose one of {', '.join(MODES[self.system])}"
            )
        if self.n < 1 or self.molecules < 1 or self.density <= 0 or self.sigma < 0:
            raise DataError(
                "--n and --molecules must be positive, --density positive and --sigma non-negative"
            )

    def structure(self, index: int) -> Atoms:
        """Structure ``index`` (depends only on the seed and the index)."""
        rng = np.random.default_rng([self.seed, index])
        if self.mode == "random":
            return random_ch4(rng)
        if self.mode == "perturbed":
            return perturbed_ch4(rng, self.sigma)
        return water_box(rng, self.molecules, self.density, self.sigma)

    @property
    def source(self) -> str:
        return f"generated-{self.system}-{self.mode}-seed{self.seed}"


@dataclass(frozen=True)
class GenerationReport:
    """Outcome of a run: frames written, and the indices skipped with their reasons."""

    output: str
    requested: int
    written: int
    rejected: list[dict[str, Any]]
    labeler: dict[str, str]
    fallbacks: list[dict[str, Any]]  # frames labelled by a fallback route (e.g. second-order SCF), with it
    plan: dict[str, Any]


def label_structure(plan: Plan, labeler: Labeler, index: int) -> Atoms | str:
    """The labelled standard frame for ``index``, or the reason labelling failed."""
    info = {"config_type": plan.mode, "source": plan.source, "source_index": index}
    return labelled_frame(plan.structure(index), labeler, info)


def labelled_frame(structure: Atoms, labeler: Labeler, info: dict[str, Any]) -> Atoms | str:
    """``structure`` as a standard frame with the labeler's energy, forces (and stress) and ``info``,
    or the reason labelling failed."""
    try:
        labels = labeler.label(structure)
    except LabelingFailed as failure:
        return str(failure)
    finite = np.isfinite(labels.energy) and np.all(np.isfinite(labels.forces))
    if not finite or (labels.stress is not None and not np.all(np.isfinite(labels.stress))):
        return "non-finite energy, forces or stress"
    return make_frame(
        structure.get_chemical_symbols(),
        structure.positions,
        cell=structure.cell.array,
        pbc=structure.pbc,
        energy=labels.energy,
        forces=labels.forces,
        stress=labels.stress,
        info=info | ({"label_note": labels.note} if labels.note else {}),
    )


_WORKER_LABELER: Labeler | None = None


def _worker_init(labeler_name: str) -> None:
    global _WORKER_LABELER
    _WORKER_LABELER = make_labeler(labeler_name)


def _worker_label(plan: Plan, index: int) -> tuple[int, Atoms | str]:
    assert _WORKER_LABELER is not None
    return index, label_structure(plan, _WORKER_LABELER, index)


class Journal:
    """The resumable state of a run beside its output: plan, labelled frames, rejected indices."""

    def __init__(self, output: Path) -> None:
        self.plan_path = output.with_name(output.name + ".partial.json")
        self.frames_path = output.with_name(output.name + ".partial")
        self.rejected_path = output.with_name(output.name + ".partial-rejected.jsonl")

    def exists(self) -> bool:
        return self.plan_path.exists()

    def start(self, plan: Plan) -> None:
        self.plan_path.write_text(json.dumps(asdict(plan), sort_keys=True) + "\n")
        self.frames_path.write_text("")
        self.rejected_path.write_text("")

    def check_plan(self, plan: Plan) -> None:
        stored = json.loads(self.plan_path.read_text())
        if stored != json.loads(json.dumps(asdict(plan))):
            raise DataError(
                f"{self.plan_path} belongs to a different run ({stored}); "
                "finish that run with its own options, or delete the .partial files to start afresh"
            )

    def load(self) -> tuple[dict[int, Atoms], dict[int, str]]:
        """Completed frames and rejections; a frame cut short by an interruption is dropped."""
        frames: dict[int, Atoms] = {}
        try:
            for record in extxyz.iter_records(self.frames_path):
                atoms = record.parse()
                frames[int(atoms.info["source_index"])] = _restandardize(atoms)
        except (DataFormatError, ValueError, KeyError):
            pass  # the tail written when the run was interrupted; everything before it is intact
        with open(self.frames_path, "w", encoding="utf-8") as stream:  # rewrite without the broken tail
            extxyz.write_frames(stream, (frames[index] for index in sorted(frames)))
        rejected: dict[int, str] = {}
        for _, line in numbered_lines(self.rejected_path):
            try:
                entry = json.loads(line)
                rejected[int(entry["index"])] = str(entry["reason"])
            except (ValueError, KeyError, TypeError):
                break
        return frames, rejected

    def remove(self) -> None:
        for path in (self.plan_path, self.frames_path, self.rejected_path):
            path.unlink(missing_ok=True)


def _restandardize(atoms: Atoms) -> Atoms:
    """A frame read back from the journal, rebuilt exactly as it was written."""
    keys = ("config_type", "source", "source_index", "label_note")
    return standard_copy(atoms, {key: atoms.info[key] for key in keys if key in atoms.info})


def generate(
    output: str | os.PathLike[str],
    plan: Plan,
    labeler: Labeler | None = None,
    *,
    workers: int = 1,
    force: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> GenerationReport:
    """Generate and label ``plan.n`` structures into the extxyz file ``output`` (resuming a journal if
    one is there) and write the report ``output`` with suffix ``.json``. ``labeler`` defaults to
    ``make_labeler(plan.labeler)``; ``workers > 1`` runs labelers in separate processes."""
    target = Path(output)
    report_path = target.with_suffix(".json")
    check_output(target, force=force)
    check_output(report_path, force=force)
    plan.check()
    labeler = labeler or make_labeler(plan.labeler)

    journal = Journal(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if journal.exists():
        journal.check_plan(plan)
        frames, rejected = journal.load()
        echo(f"resuming {target}: {len(frames) + len(rejected)} of {plan.n} structures already done")
    else:
        journal.start(plan)
        frames, rejected = {}, {}
    todo = [index for index in range(plan.n) if index not in frames and index not in rejected]

    with (
        open(journal.frames_path, "a", encoding="utf-8") as frame_log,
        open(journal.rejected_path, "a", encoding="utf-8") as reject_log,
        tqdm(total=plan.n, initial=plan.n - len(todo), disable=not progress, unit="frame") as bar,
    ):

        def record(index: int, outcome: Atoms | str) -> None:
            if isinstance(outcome, str):
                rejected[index] = outcome
                reject_log.write(json.dumps({"index": index, "reason": outcome}) + "\n")
                reject_log.flush()
            else:
                frames[index] = outcome
                frame_log.write(extxyz.format_frame(outcome))
                frame_log.flush()
            bar.update(1)

        if workers <= 1:
            for index in todo:
                record(index, label_structure(plan, labeler, index))
        else:
            pool = ProcessPoolExecutor(workers, initializer=_worker_init, initargs=(plan.labeler,))
            try:
                futures = [pool.submit(_worker_label, plan, index) for index in todo]
                for future in as_completed(futures):
                    record(*future.result())
            finally:  # on interruption, drop the queued structures instead of labelling them for nothing
                pool.shutdown(wait=True, cancel_futures=True)

    with atomic_file(target, force) as temporary, open(temporary, "w", encoding="utf-8") as stream:
        written = extxyz.write_frames(stream, (frames[index] for index in sorted(frames)))
    report = GenerationReport(
        output=target.name,
        requested=plan.n,
        written=written,
        rejected=[{"index": index, "reason": rejected[index]} for index in sorted(rejected)],
        labeler=labeler.description(),
        fallbacks=[
            {"index": index, "note": frames[index].info["label_note"]}
            for index in sorted(frames)
            if "label_note" in frames[index].info
        ],
        plan=asdict(plan),
    )
    with atomic_file(report_path, force) as temporary:
        temporary.write_text(json.dumps(asdict(report), indent=2, sort_keys=True) + "\n")
    journal.remove()
    return report
