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
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from . import formats
from .errors import DataError
from .formats import extxyz
from .output import atomic_directory, check_output
from .recipes import Recipe, recipe_from_dict
from .stats import DatasetStatistics
from .validate import frame_errors

APPENDED = -1  # source_index of frames appended by active learning (they come from no source frame)
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
    check_output(out, [source_path], force=force, directory=True)
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
    problem = _manifest_problem(manifest)
    if problem:
        raise DataError(f"{path}: incomplete split manifest: {problem}")
    return manifest


def _manifest_problem(manifest: dict[str, Any]) -> str | None:
    """What ``verify_split`` needs and the manifest lacks (None when it is complete)."""
    entry_keys = ("file", "sha256", "indices", "count")
    splits = manifest.get("splits")
    if not isinstance(splits, dict):
        return "no 'splits' section"
    for name in SPLITS:
        entry = splits.get(name)
        if not isinstance(entry, dict) or any(key not in entry for key in entry_keys):
            return f"'splits.{name}' needs {', '.join(entry_keys)}"
    subsets = manifest.get("train_subsets", {})
    if not isinstance(subsets, dict) or not all(
        isinstance(entry, dict) and ("file" not in entry or all(key in entry for key in entry_keys))
        for entry in subsets.values()
    ):
        return f"each 'train_subsets' entry with a file needs {', '.join(entry_keys)}"
    source = manifest.get("source")
    if not isinstance(source, dict) or "sha256" not in source or "frames" not in source:
        return "'source' needs sha256 and frames"
    if not isinstance(manifest.get("recipe"), dict):
        return "no 'recipe' section"
    return None


def verify_split(folder: str | os.PathLike[str], source: str | os.PathLike[str] | None = None) -> list[str]:
    """Problems found re-checking a split folder against its manifest (empty when all is well).

    Checks every file's sha256, frame count and source indices; with ``source``, also that the source's
    sha256 matches and that the seeded selection reproduces the manifest's indices.
    """
    root = Path(folder)
    manifest = load_manifest(root)
    try:
        return _verify(root, manifest, source)
    except DataError:
        raise
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(
            f"{root / 'manifest.json'}: malformed split manifest ({type(error).__name__}: {error})"
        ) from None


def _verify(root: Path, manifest: dict[str, Any], source: str | os.PathLike[str] | None) -> list[str]:
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
        if [i for i in indices if i != APPENDED] != list(entry["indices"]):
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


def append_to_split(
    split_dir: str | os.PathLike[str],
    frames: list[Any],
    out: str | os.PathLike[str],
    *,
    into: str = "train",
    provenance: dict[str, Any] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Write the split folder ``out``: a copy of ``split_dir`` with labelled ``frames`` appended to its
    ``into`` split, the manifest updated (count, sha256, statistics, and an ``active_learning`` entry
    with ``provenance``); returns the new manifest.

    The input folder is never modified: ``out`` must be another folder (or, with ``force``, the same
    one, replaced atomically). It must match its manifest, and the frames' elements must be the
    split's.
    """
    source, target = Path(split_dir), Path(out)
    if into not in SPLITS:
        raise DataError(f"cannot append to {into!r}; choose one of {', '.join(SPLITS)}")
    manifest = load_manifest(source)
    problems = verify_split(source)
    if problems:
        raise DataError(f"{source} does not match its manifest ({problems[0]}); refusing to extend it")
    if not frames:
        raise DataError("no labelled frames to append")
    elements = {e for name in SPLITS for e in _elements(manifest["splits"][name]["statistics"]["formulas"])}
    for index, atoms in enumerate(frames):
        foreign = set(atoms.get_chemical_symbols()) - elements
        if foreign:
            raise DataError(
                f"frame {index} contains {sorted(foreign)}, which the split {source} does not "
                f"({sorted(elements)}): a file from another system?"
            )
        problems_of_frame = frame_errors(atoms)
        if problems_of_frame:
            raise DataError(f"frame {index}: {'; '.join(m for _, m in problems_of_frame)}")
    if target.resolve() == source.resolve() and not force:
        raise DataError(f"{target} is the input split; give another --out (or --force to replace it)")
    rounds = manifest.setdefault("active_learning", [])
    entry = manifest["splits"][into]
    with atomic_directory(target, force or target.resolve() == source.resolve()) as folder:
        for file in source.iterdir():
            if file.is_file():
                shutil.copy2(file, folder / file.name)
        with open(folder / entry["file"], "a", encoding="utf-8") as stream:
            for atoms in frames:
                copy = atoms.copy()
                copy.calc = atoms.calc
                copy.info.update(source_index=APPENDED, active_learning_round=len(rounds) + 1)
                stream.write(extxyz.format_frame(copy))
        statistics = DatasetStatistics()
        for record in extxyz.iter_records(folder / entry["file"]):
            statistics.add(record.parse())
        entry.update(
            count=entry["count"] + len(frames),
            sha256=sha256_of(folder / entry["file"]),
            statistics=_split_statistics(statistics),
        )
        rounds.append({"round": len(rounds) + 1, "split": into, "count": len(frames), **(provenance or {})})
        (folder / "manifest.json").write_text(
            json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8"
        )
    return manifest


def _elements(formulas: Any) -> set[str]:
    """Elements of the formulas a manifest's statistics list (a mapping or list of formulas)."""
    from ase.symbols import string2symbols

    return {symbol for formula in formulas for symbol in string2symbols(formula)}
