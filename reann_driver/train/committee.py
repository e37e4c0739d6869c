"""Committee training: K ordinary trainings with derived seeds, bundled into one committee file.

Member k is trained by the ordinary trainer with ``train.seed + k`` (its own initial weights and batch
order) in ``output.dir/member_k``; with ``train.bootstrap`` on a resample (with replacement, same size)
of the training set drawn with that seed. All members get the species of the whole training and
validation data, so that they fit together. ``output.dir/committee.pt`` holds them all.

``--resume`` skips finished members (their ``model.pt`` exists), resumes the interrupted one and starts
the rest. At the end the committee is evaluated on the validation set (its calibration, alpha for
i-PI, goes into the committee file's metadata) and on the test set if there is one
(``output.dir/test_metrics.json``).
"""

from __future__ import annotations

import copy
import io
import json
import logging
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase.io import write

from ..atomic import atomic_write_bytes
from ..model import Committee, load_committee, save_committee
from ..model.runtime import resolve_device
from .calibration import format_calibration
from .checkpoints import LAST
from .config import Config
from .data import read_structures, species_of
from .errors import TrainingError
from .evaluate import evaluate_structures
from .inputs import data_paths
from .metrics import format_error_table
from .output import prepare_output_dir
from .trainer import TrainingResult, train

COMMITTEE_FILE = "committee.pt"
logger = logging.getLogger("reann_driver.train")


@dataclass
class CommitteeResult:
    """What a committee training produced."""

    output_dir: Path
    members: list[TrainingResult | None]  # None: finished in an earlier invocation (resume)
    model_file: Path  # the committee file
    test_metrics: dict[str, Any] | None  # the committee mean on the test set, with its calibration

    @property
    def structures_per_second(self) -> float:
        """Median training throughput of the members trained in this invocation."""
        speeds = [m.structures_per_second for m in self.members if m is not None]
        return statistics.median(speeds) if speeds else math.nan


def member_dir(output_dir: Path, index: int) -> Path:
    return output_dir / f"member_{index}"


def member_config(config: Config, index: int, species: list[str]) -> Config:
    """The ordinary training configuration of member ``index``."""
    member = copy.deepcopy(config)
    member.train.committee = 1
    member.train.bootstrap = False
    member.train.seed = config.train.seed + index
    member.model.species = species
    member.output.dir = str(member_dir(Path(config.output.dir), index))
    return member


def bootstrap_file(config: Config, index: int, train_path: str) -> str:
    """Write (atomically) a same-size resample with replacement of the training set for member
    ``index``, drawn with its seed; returns its path (``output.dir/bootstrap/member_k.extxyz``)."""
    frames = read_structures(train_path)
    rng = np.random.default_rng(config.train.seed + index)
    chosen = [frames[i] for i in rng.integers(0, len(frames), len(frames))]
    path = Path(config.output.dir) / "bootstrap" / f"member_{index}.extxyz"
    path.parent.mkdir(parents=True, exist_ok=True)

    def dump(stream: Any) -> None:
        text = io.StringIO()
        write(text, chosen, format="extxyz")
        stream.write(text.getvalue().encode())

    atomic_write_bytes(path, dump)
    return str(path)


def train_committee(config: Config, resume: bool = False, force: bool = False) -> CommitteeResult:
    """Train ``train.committee`` members and write ``output.dir/committee.pt``."""
    n_members = config.train.committee
    if n_members < 2:
        raise TrainingError(f"train.committee must be at least 2 for a committee, got {n_members}")
    output_dir = Path(config.output.dir)
    paths = data_paths(config)
    species = config.model.species or species_of(
        read_structures(str(paths["train"])) + read_structures(str(paths["val"]))
    )
    if resume:
        if not any(member_dir(output_dir, k).is_dir() for k in range(n_members)):
            raise TrainingError(f"--resume: {str(output_dir)!r} holds no committee members")
    else:
        prepare_output_dir(output_dir, resume=False, force=force)
    results: list[TrainingResult | None] = []
    for index in range(n_members):
        member = member_config(config, index, species)
        directory = Path(member.output.dir)
        if resume and (directory / "model.pt").is_file():
            results.append(None)
            continue
        if config.train.bootstrap:
            member.data.train = bootstrap_file(config, index, str(paths["train"]))
        member_resume = resume and (directory / LAST).is_file()
        results.append(train(member, resume=member_resume, force=force))
    committee = load_committee([member_dir(output_dir, k) / "model.pt" for k in range(n_members)])
    assert isinstance(committee, Committee)
    batch_size = config.train.val_batch_size or config.train.batch_size
    device = resolve_device(config.train.device)
    validation = evaluate_structures(committee, read_structures(str(paths["val"])), batch_size, device)
    assert validation.calibration is not None
    logger.info("committee on the validation set:\n" + format_calibration(validation.calibration))
    metadata = {
        "committee": {
            "members": n_members,
            "seeds": [config.train.seed + k for k in range(n_members)],
            "bootstrap": config.train.bootstrap,
            "member_files": [f"member_{k}/model.pt" for k in range(n_members)],
            "validation_calibration": validation.calibration,
        }
    }
    save_committee(committee, output_dir / COMMITTEE_FILE, metadata=metadata)
    test_metrics = None
    if paths["test"] is not None:
        test = evaluate_structures(committee, read_structures(str(paths["test"])), batch_size, device)
        test_metrics = {**test.metrics, "calibration": test.calibration}
        logger.info("committee mean on the test set:\n" + format_error_table(test.metrics))
        text = json.dumps(test_metrics, indent=2).encode()
        atomic_write_bytes(output_dir / "test_metrics.json", lambda stream: stream.write(text))
    logger.info(f"committee of {n_members} written to {output_dir / COMMITTEE_FILE}")
    return CommitteeResult(output_dir, results, output_dir / COMMITTEE_FILE, test_metrics)
