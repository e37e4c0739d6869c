"""Split recipes: small declarative TOML files (``datasets/NAME/recipe.toml``) that pin down a standard split.

A recipe names its source (file, URL, checksum or "unknown", expected frame count), the units and label
keys needed to read it, the seed and the split rule. ``load_recipe`` accepts a path or a name; a name is
looked up as ``datasets/NAME/recipe.toml`` in the working directory, then in the reann-driver checkout.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import DataError
from .frames import DEFAULT_KEYS, LabelKeys
from .units import PACKAGE_UNITS, Units

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class SplitRule:
    """Sizes of the splits: a float in (0, 1) is a fraction of the frames, an int a count; ``train=None``
    takes every frame not in test or val. A split is empty only when asked for by the count 0 (e.g. a
    test-only pool: ``val=0, train=0``), never by a fraction or the remainder. ``subsets`` are nested
    learning-curve subsets of train (the first N frames of the seeded training order)."""

    test: float | int = 0.1
    val: float | int = 0.1
    train: float | int | None = None
    subsets: tuple[int, ...] = ()
    write_subsets: bool = False

    def counts(self, frames: int) -> tuple[int, int, int]:
        """(test, val, train) frame counts for a source of ``frames`` frames."""

        def size(value: float | int, name: str) -> int:
            if isinstance(value, bool) or value < 0:
                raise DataError(f"split size {name}={value!r} must be a non-negative fraction or count")
            if isinstance(value, float):
                if value >= 1.0:
                    raise DataError(
                        f"split fraction {name}={value} must be below 1 (give a count as an integer)"
                    )
                return round(value * frames)
            return int(value)

        test, val = size(self.test, "test"), size(self.val, "val")
        train = frames - test - val if self.train is None else size(self.train, "train")
        if test + val + max(train, 0) > frames or train < 0:
            asked = f"{test} test + {val} val" + ("" if self.train is None else f" + {train} train")
            raise DataError(f"the split asks for {asked} frames but the source has {frames}")
        for name, count in (("test", test), ("val", val), ("train", train)):
            asked_for_none = type(getattr(self, name)) is int  # an explicit count 0, e.g. a test-only pool
            if count == 0 and not asked_for_none:
                raise DataError(
                    f"the {name} split would be empty ({name}={getattr(self, name)!r} of {frames} frames); "
                    f"give it at least one frame, or --{name} 0 to ask for an empty one"
                )
        if test + val + train == 0:
            raise DataError(f"the split asks for no frame of the {frames}")
        if self.subsets and max(self.subsets) > train:
            raise DataError(
                f"learning-curve subset of {max(self.subsets)} frames exceeds the {train} training frames"
            )
        return test, val, train


@dataclass(frozen=True)
class Recipe:
    """A named, reproducible way to read and split one dataset."""

    name: str
    seed: int = 0
    description: str = ""
    source: dict[str, Any] = field(default_factory=dict)
    format: str | None = None
    units: Units = PACKAGE_UNITS
    keys: LabelKeys = DEFAULT_KEYS
    split: SplitRule = field(default_factory=SplitRule)

    @property
    def expected_frames(self) -> int | None:
        frames = self.source.get("frames")
        return int(frames) if frames is not None else None

    @property
    def expected_sha256(self) -> str | None:
        checksum = self.source.get("sha256")
        return None if checksum in (None, "", "unknown") else str(checksum)

    def describe(self) -> dict[str, Any]:
        """JSON-able form for the manifest."""
        data = asdict(self)
        data["split"]["subsets"] = list(self.split.subsets)
        return data


def recipe_from_dict(data: dict[str, Any], origin: str = "recipe") -> Recipe:
    """Build a Recipe from the parsed TOML (or manifest) dictionary, with a clear error on bad fields."""
    try:
        units = data.get("units", {})
        keys = data.get("keys", {})
        split = dict(data.get("split", {}))
        split["subsets"] = tuple(int(n) for n in split.get("subsets", ()))
        return Recipe(
            name=str(data["name"]),
            seed=int(data.get("seed", 0)),
            description=str(data.get("description", "")),
            source=dict(data.get("source", {})),
            format=data.get("format"),
            units=Units(**units),
            keys=LabelKeys(**keys),
            split=SplitRule(**split),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(f"{origin}: invalid recipe: {error}") from None


def find_recipe(name_or_path: str) -> Path:
    """The recipe file for a path or a name (``datasets/NAME/recipe.toml``)."""
    candidate = Path(name_or_path)
    if candidate.is_file():
        return candidate
    for root in (Path.cwd(), REPOSITORY_ROOT):
        path = root / "datasets" / name_or_path / "recipe.toml"
        if path.is_file():
            return path
    raise DataError(
        f"no recipe {name_or_path!r}: give a recipe.toml path, or a name with "
        f"datasets/{name_or_path}/recipe.toml "
        "in the working directory or the reann-driver checkout"
    )


def load_recipe(name_or_path: str) -> Recipe:
    """Read a recipe by name or path."""
    path = find_recipe(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not valid TOML: {error}") from None
    return recipe_from_dict(data, str(path))
