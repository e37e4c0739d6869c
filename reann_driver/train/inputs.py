"""The inputs of a training run, read and checked before anything is written: the data splits named by
the configuration, the species, the per-element reference energies and the precomputed structures."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ase import Atoms

from .config import Config
from .data import LabelledStructure, prepare, read_structures, species_of
from .errors import TrainingError
from .reference import ReferenceEnergies, fit_reference_energies, given_reference_energies


@dataclass(frozen=True)
class TrainingInputs:
    """Structures of the splits (``train``, ``val`` and, when given, ``test``) with what the model needs."""

    species: list[str]
    references: ReferenceEnergies
    structures: dict[str, list[LabelledStructure]]
    test_frames: list[Atoms] | None  # the test split as read, for the final evaluation


def data_paths(config: Config) -> dict[str, str | None]:
    """File of each split: ``data.<split>`` if set, else ``<data.split_dir>/<split>.extxyz`` (the test
    split only when that file exists and is not empty, as after ``reann-data split --test 0``); train
    and val are required."""
    data = config.data
    paths: dict[str, str | None] = {}
    for split in ("train", "val", "test"):
        explicit = getattr(data, split)
        if explicit is not None:
            paths[split] = explicit
        elif data.split_dir is not None:
            candidate = Path(data.split_dir) / f"{split}.extxyz"
            kept = split != "test" or (candidate.is_file() and candidate.stat().st_size > 0)
            paths[split] = str(candidate) if kept else None
        else:
            paths[split] = None
    for split in ("train", "val"):
        if paths[split] is None:
            raise TrainingError(f"no {split} data: set data.split_dir or data.{split}")
    return paths


def load_inputs(config: Config) -> TrainingInputs:
    """Read the splits, choose the species (``model.species`` or those of train + val) and the reference
    energies (``data.reference_energies`` or a fit to the training set), precompute neighbour lists."""
    paths = data_paths(config)
    frames = {split: read_structures(path) for split, path in paths.items() if path is not None}
    species = config.model.species or species_of(frames["train"] + frames["val"])
    given = config.data.reference_energies
    references = (
        given_reference_energies(given, species)
        if given is not None
        else fit_reference_energies(frames["train"], species)
    )
    structures = {
        split: prepare(f, species, config.model.cutoff, source=str(paths[split]))
        for split, f in frames.items()
    }
    return TrainingInputs(species, references, structures, frames.get("test"))
