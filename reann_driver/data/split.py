"""Seeded, deterministic train/val/test splits, streamed from the source, with a manifest to verify them.

The selection depends only on the seed and the number of frames: ``numpy.random.default_rng(seed).choice``
draws test, then val, then train frames (without replacement; O(selected) memory when few frames are
taken from a huge source). Frames are then streamed from the source in order; only selected frames are
parsed, so splitting the 7.7 M-frame CH4 archive holds at most the selected indices in memory. Each
split file lists its frames in source order; learning-curve subsets are the first N frames of the
seeded training order (nested by construction).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from . import formats
from .errors import DataError
from .formats import extxyz
from .output import atomic_directory
from .recipes import Recipe, recipe_from_dict
from .stats import DatasetStatistics
from .validate import frame_errors

MANIFEST_FORMAT = "reann-driver/split-manifest"
MANIFEST_VERSION = 1
SPLITS = ("train", "val", "test")


def sha256_of(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, or of a folder (its files' relative paths and contents, in sorted order)."""
    source = Path(path)
    digest = hashlib.sha256()
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    for file in files:
        if source.is_dir():
            digest.update(file.relative_to(source).as_posix().encode() + b"\0")
        with open(file, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Selection:
    """Source indices of every split in seeded draw order (train order defines the nested subsets)."""

    test: np.ndarray
    val: np.ndarray
    train: np.ndarray

    def assignment(self) -> dict[int, tuple[str, int]]:
        """source index -> (split, rank in that split's draw order)."""
        table: dict[int, tuple[str, int]] = {}
        for name in SPLITS:
            for rank, index in enumerate(getattr(self, name).tolist()):
                table[int(index)] = (name, rank)
        return table


def select(frames: int, recipe: Recipe) -> Selection:
    """Draw the split indices for a source of ``frames`` frames."""
    test, val, train = recipe.split.counts(frames)
    rng = np.random.default_rng(recipe.seed)
    drawn = rng.choice(frames, size=test + val + train, replace=False)
    return Selection(test=drawn[:test], val=drawn[test : test + val], train=drawn[test + val :])


def count_source_frames(path: str | os.PathLike[str], fmt: str | None) -> int:
    """Frames in the source, counted without parsing them."""
    return sum(1 for _ in formats.iter_records(path, fmt))


@dataclass
class _SplitWriter:
    name: str
    stream: TextIO
    statistics: DatasetStatistics
    indices: list[int]


def split_dataset(
    source: str | os.PathLike[str],
    recipe: Recipe,
    out: str | os.PathLike[str],
    *,
    force: bool = False,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Write ``out/{train,val,test}.extxyz`` (and ``train_N.extxyz`` if the recipe asks) plus
    ``out/manifest.json``; returns the manifest. The output folder appears only when complete."""
    source_path = Path(source)
    if not source_path.exists():
        raise DataError(f"{source_path} does not exist")
    fmt = recipe.format or formats.detect_format(source_path)
    recipe = replace(recipe, format=fmt)
    checksum = sha256_of(source_path)
    if recipe.expected_sha256 and checksum != recipe.expected_sha256:
        raise DataError(
            f"{source_path}: sha256 {checksum} differs from the recipe's {recipe.expected_sha256}: "
            "not the expected file"
        )
    frames = recipe.expected_frames
    if frames is None:
        frames = count_source_frames(source_path, fmt)
    selection = select(frames, recipe)
    assignment = selection.assignment()
    subsets = sorted(set(recipe.split.subsets))
    rejected: list[dict[str, Any]] = []
    seen = 0

    with atomic_directory(out, force) as folder, contextlib.ExitStack() as files:

        def open_output(name: str) -> TextIO:
            return files.enter_context(open(folder / name, "w", encoding="utf-8"))

        writers = {
            name: _SplitWriter(name, open_output(f"{name}.extxyz"), DatasetStatistics(), [])
            for name in SPLITS
        }
        subset_streams = {
            size: open_output(f"train_{size}.extxyz") for size in subsets if recipe.split.write_subsets
        }
        subset_members: dict[int, list[int]] = {size: [] for size in subsets}

        for record in formats.iter_records(source_path, fmt):
            seen += 1
            if record.index not in assignment:
                continue
            name, rank = assignment[record.index]
            atoms = formats.standard_frame(record, source_path, units=recipe.units, keys=recipe.keys)
            problems = frame_errors(atoms, require_forces=False)  # energy-only data (QM9) is fine
            if problems:
                reason = "; ".join(message for _, message in problems)
                rejected.append({"index": record.index, "split": name, "reason": reason})
                continue
            text = extxyz.format_frame(atoms)
            writer = writers[name]
            writer.stream.write(text)
            writer.statistics.add(atoms)
            writer.indices.append(record.index)
            if name == "train":
                for size in subsets:
                    if rank < size:
                        subset_members[size].append(record.index)
                        if size in subset_streams:
                            subset_streams[size].write(text)
        files.close()
        if seen != frames:
            raise DataError(f"{source_path}: the recipe expects {frames} frames but the source holds {seen}")
        empty = [name for name in SPLITS if len(getattr(selection, name)) and not writers[name].indices]
        if empty:
            reasons = sorted({item["reason"] for item in rejected})
            raise DataError(
                f"{source_path}: the {' and '.join(empty)} split(s) would keep no frame: {len(rejected)} "
                f"of {len(assignment)} selected frames were rejected ({'; '.join(reasons[:3])}); check "
                "--from, --units and --energy-key/--forces-key (`reann-data validate` lists the problems)"
            )

        manifest: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "format_version": MANIFEST_VERSION,
            "recipe": recipe.describe(),
            "seed": recipe.seed,
            "source": {
                "name": source_path.name,
                "format": fmt,
                "sha256": checksum,
                "expected_sha256": recipe.expected_sha256 or "unknown",
                "frames": frames,
            },
            "splits": {},
            "train_subsets": {},
            "rejected": rejected,
            "software": {
                "reann-driver": _version("reann-driver"),
                "numpy": np.__version__,
                "ase": _version("ase"),
            },
        }
        for name in SPLITS:
            writer = writers[name]
            file = folder / f"{name}.extxyz"
            manifest["splits"][name] = {
                "file": file.name,
                "count": len(writer.indices),
                "sha256": sha256_of(file),
                "indices": writer.indices,
                "statistics": _split_statistics(writer.statistics),
            }
        for size in subsets:
            entry: dict[str, Any] = {"count": len(subset_members[size]), "indices": subset_members[size]}
            if size in subset_streams:
                file = folder / f"train_{size}.extxyz"
                entry.update(file=file.name, sha256=sha256_of(file))
            manifest["train_subsets"][str(size)] = entry
        (folder / "manifest.json").write_text(
            json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8"
        )
    if rejected:
        echo(f"{len(rejected)} selected frames were rejected (listed in the manifest under 'rejected')")
    return manifest


def _split_statistics(statistics: DatasetStatistics) -> dict[str, Any]:
    report = statistics.report()
    return {
        key: report[key]
        for key in ("frames", "atoms", "formulas", "energy_per_atom_eV", "force_rms_per_element_eV_per_A")
    }


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def load_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a split folder, checked for its format marker."""
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        raise DataError(f"{path} does not exist: not a split folder")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise DataError(f"{path} is not a reann-driver split manifest")
    return manifest


def verify_split(folder: str | os.PathLike[str], source: str | os.PathLike[str] | None = None) -> list[str]:
    """Problems found re-checking a split folder against its manifest (empty when all is well).

    Checks every file's sha256, frame count and source indices; with ``source``, also that the source's
    sha256 matches and that the seeded selection reproduces the manifest's indices.
    """
    root = Path(folder)
    manifest = load_manifest(root)
    problems: list[str] = []
    entries = [(name, manifest["splits"][name]) for name in SPLITS]
    entries += [
        (f"train_{size}", entry)
        for size, entry in manifest.get("train_subsets", {}).items()
        if "file" in entry
    ]
    for name, entry in entries:
        file = root / entry["file"]
        if not file.is_file():
            problems.append(f"{name}: {file} is missing")
            continue
        if sha256_of(file) != entry["sha256"]:
            problems.append(f"{name}: {file.name} sha256 differs from the manifest (file changed)")
        try:
            indices = [int(record.parse().info["source_index"]) for record in extxyz.iter_records(file)]
        except Exception as error:
            problems.append(f"{name}: {file.name} is unreadable: {error}")
            continue
        if indices != list(entry["indices"]):
            problems.append(f"{name}: the source indices in {file.name} differ from the manifest")
        if len(indices) != entry["count"]:
            problems.append(f"{name}: {len(indices)} frames, manifest says {entry['count']}")
    if source is not None:
        checksum = sha256_of(source)
        if checksum != manifest["source"]["sha256"]:
            problems.append(
                f"source {source}: sha256 {checksum} differs from the manifest's "
                f"{manifest['source']['sha256']}"
            )
        recipe = recipe_from_dict(manifest["recipe"], "manifest")
        selection = select(int(manifest["source"]["frames"]), recipe)
        rejected = {int(item["index"]) for item in manifest.get("rejected", [])}
        for name in SPLITS:
            expected = sorted(int(i) for i in getattr(selection, name).tolist() if int(i) not in rejected)
            if expected != list(manifest["splits"][name]["indices"]):
                problems.append(f"{name}: the seeded selection does not reproduce the manifest's indices")
    return problems
