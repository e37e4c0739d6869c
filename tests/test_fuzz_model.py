"""Fuzz suite of the model loader (reann_driver/model/files.py): valid model files with one or more
sections replaced (config values: huge, negative, non-finite, wrong types; weights: wrong shapes, NaN,
non-tensors, other dtypes; missing or foreign sections, other format tags), plus truncated and
byte-flipped files. A file that loads is evaluated on a small molecule.

Each case must end with a model or a ModelFileError naming the file (one line): never another
exception, never a hang, and the process never grows beyond a bound (nothing sized from a bad config).
Outcome counts: see tests/fuzzing.py.
"""

from __future__ import annotations

import functools
import re
import resource

import torch
from ase.build import molecule
from conftest import tiny_model
from fuzzing import FUZZ, classify
from hypothesis import given
from hypothesis import strategies as st

from reann_driver import ModelFileError, load_model
from reann_driver.model import files, graph_from_atoms

#: Largest resident set the suite may reach (a 60000-wide layer alone would be 14 GB).
MAX_RSS_BYTES = 3 * 2**30

CONFIG_VALUES = st.one_of(
    st.sampled_from(
        [0, -1, 1, 2, 3, 10**6, 2**31, 2**63 - 1, 60000, True, None, "", "x", "silu", "spherical"]
    ),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 0.0, -5.0, 1e-300, 1e300, 3.5]),
    st.lists(st.sampled_from([0, -1, 16, 60000, 2**40, 1.5, "H"]), max_size=4),
    st.sampled_from([["H", "C"], ["C", "H"], ["H"], ["Xx", "C"], [], {"H": 1.0}, ["H"] * 300]),
)
CONFIG_KEYS = st.sampled_from(
    [
        "species",
        "cutoff",
        "n_radial",
        "l_max",
        "iterations",
        "hidden",
        "coefficient_hidden",
        "n_orbitals",
        "angular",
        "activation",
        "layer_norm",
        "atomic_energies",
        "dtype",
        "unknown_key",
    ]
)


@functools.cache
def valid_payload() -> dict:
    """The contents of a valid model file (built once; not a fixture, to keep hypothesis' reports short)."""
    model = tiny_model(species=("H", "C"), iterations=1)
    return {
        "format": files.FORMAT,
        "format_version": files.FORMAT_VERSION,
        "config": dict(model.config),
        "metadata": {"note": "fuzz"},
        "state_dict": {key: value.detach().clone() for key, value in model.state_dict().items()},
    }


METHANE = molecule("CH4")


def load_and_evaluate(path) -> None:
    """Load, then evaluate (non-finite energies of finite weights are the driver's and eval's concern)."""
    model = load_model(path)
    atoms = METHANE.copy()
    atoms.symbols = [model.species[i % len(model.species)] for i in range(len(atoms))]
    graph = graph_from_atoms([atoms], model.species, model.cutoff, dtype=model.dtype)
    model(graph, forces=True)


def check(suite: str, path) -> None:
    classify(
        f"model {suite}",
        lambda: load_and_evaluate(path),
        (ModelFileError,),
        seconds=20,
        check_clear=lambda error: path.name in str(error),
    )
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 < MAX_RSS_BYTES


@FUZZ
@given(changes=st.lists(st.tuples(CONFIG_KEYS, CONFIG_VALUES), min_size=1, max_size=3))
def test_model_loader_on_changed_configs(tmp_path_factory, changes):
    payload = valid_payload()
    config = dict(payload["config"])
    for key, value in changes:
        config[key] = value
    path = tmp_path_factory.mktemp("config") / "m.pt"
    torch.save({**payload, "config": config}, path)
    check("config changed", path)


WEIGHT_CHANGES = st.sampled_from(["nan", "inf", "shape", "scalar", "int", "list", "drop", "extra", "huge"])


@FUZZ
@given(change=WEIGHT_CHANGES, which=st.floats(0.0, 1.0))
def test_model_loader_on_changed_weights(tmp_path_factory, change, which):
    payload = valid_payload()
    weights = dict(payload["state_dict"])
    names = sorted(weights)
    name = names[int(which * (len(names) - 1))]
    tensor = weights[name].clone()
    if change == "nan":
        tensor.view(-1)[0] = float("nan")
    elif change == "inf":
        tensor.view(-1)[-1] = float("inf")
    elif change == "shape":
        tensor = torch.zeros(*tensor.shape, 2)
    elif change == "scalar":
        tensor = torch.tensor(1.0)
    elif change == "int":
        tensor = tensor.to(torch.int64)
    elif change == "huge":
        tensor = torch.zeros(2, 60000)
    if change == "list":
        weights[name] = tensor.tolist()
    elif change == "drop":
        del weights[name]
    elif change == "extra":
        weights["unexpected.weight"] = tensor
    else:
        weights[name] = tensor
    path = tmp_path_factory.mktemp("weights") / "m.pt"
    torch.save({**payload, "state_dict": weights}, path)
    check("weights changed", path)


SECTIONS = st.sampled_from(["format", "format_version", "config", "metadata", "state_dict"])
SECTION_VALUES = st.sampled_from([None, 0, 2, "reann-driver/model", "x", [], {}, [1, 2], {"a": 1}])


@FUZZ
@given(section=SECTIONS, value=SECTION_VALUES, drop=st.booleans(), top=st.sampled_from([None, [], 1, "s"]))
def test_model_loader_on_changed_sections(tmp_path_factory, section, value, drop, top):
    payload = valid_payload()
    content: object = {k: v for k, v in payload.items() if not (drop and k == section)}
    if not drop:
        content = {**payload, section: value}
    if top is not None:
        content = top
    path = tmp_path_factory.mktemp("sections") / "m.pt"
    torch.save(content, path)
    check("sections changed", path)


@FUZZ
@given(cut=st.floats(0.0, 1.0), flip=st.integers(0, 255), where=st.floats(0.0, 1.0))
def test_model_loader_on_truncated_and_flipped_files(tmp_path_factory, cut, flip, where):
    payload = valid_payload()
    folder = tmp_path_factory.mktemp("bytes")
    torch.save(payload, folder / "valid.pt")
    # torch writes a random serialization id into every file: fix it, so the same cases run every time
    data = re.sub(
        rb"\d{30,}", lambda match: b"0" * len(match.group()), (folder / "valid.pt").read_bytes(), count=1
    )
    path = folder / "m.pt"
    path.write_bytes(data[: int(cut * len(data))])
    check("truncated", path)
    position = int(where * (len(data) - 1))
    path.write_bytes(data[:position] + bytes([flip]) + data[position + 1 :])
    check("byte flip", path)
