"""The training loop: AdamW, EMA weights, ReduceLROnPlateau, divergence guard, checkpoints, DDP.

Distributed runs (``torchrun --nproc_per_node N``) split every global batch of ``train.batch_size``
structures between the processes; each process normalises its loss by the global batch counts and
the gradients are summed across processes, so the update equals the single-process one.
The batch order of epoch e depends only on (seed, e), which makes ``--resume`` exact.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml
from tqdm import tqdm

from ..atomic import atomic_write_bytes
from ..model import REANN
from ..model.runtime import resolve_device
from .checkpoints import BEST, LAST, load_checkpoint, model_from_checkpoint, restore_rng_states, rng_states
from .checkpoints import save_checkpoint as write_checkpoint
from .config import Config
from .data import LabelledStructure, collate, prepare, read_structures, species_of
from .evaluate import evaluate_structures
from .losses import BatchCounts, reference_force_weight, reference_loss, weighted_loss
from .metrics import ErrorSums, MetricsCSV, format_error_table
from .reference import fit_reference_energies, given_reference_energies, per_element_fit

logger = logging.getLogger("reann_driver.train")

CSV_COLUMNS = (
    "epoch",
    "lr",
    "train_loss",
    "train_energy_rmse_meV_per_atom",
    "train_force_rmse_meV_per_A",
    "val_loss",
    "val_energy_rmse_meV_per_atom",
    "val_force_rmse_meV_per_A",
    "epoch_seconds",
    "structures_per_second",
)


class TrainingError(RuntimeError):
    """Training cannot start or continue (output directory in use, diverged, inconsistent resume)."""


@dataclass
class TrainingResult:
    """What a finished run produced."""

    output_dir: Path
    epochs: int  # epochs completed
    best_val_loss: float
    model_file: Path
    test_metrics: dict[str, Any] | None
    structures_per_second: float  # median over the epochs of this invocation


@dataclass(frozen=True)
class Distributed:
    """Rank and size of the process group (1 process when not launched by torchrun)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_reduce_gradients(self, parameters: Sequence[torch.nn.Parameter]) -> None:
        """Sum the gradients of all processes (one flat buffer, deterministic order)."""
        if self.world_size == 1:
            return
        gradients = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
        flat = torch.cat([g.reshape(-1) for g in gradients])
        dist.all_reduce(flat)
        offset = 0
        for parameter in parameters:
            size = parameter.numel()
            parameter.grad = flat[offset : offset + size].view_as(parameter).clone()
            offset += size

    def broadcast_parameters(self, module: torch.nn.Module) -> None:
        if self.world_size > 1:
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, 0)

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


def init_distributed(device_name: str) -> tuple[Distributed, bool]:
    """Join the torchrun process group when WORLD_SIZE > 1; returns (context, whether it was started here)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed(), False
    started = False
    if not dist.is_initialized():
        backend = "nccl" if device_name.startswith("cuda") else "gloo"
        dist.init_process_group(backend=backend)
        started = True
    return Distributed(dist.get_rank(), dist.get_world_size()), started


def batch_order(n_structures: int, seed: int, epoch: int) -> torch.Tensor:
    """Shuffled structure indices of one epoch, a function of (seed, epoch) only."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n_structures, generator=generator)


def prepare_output_dir(directory: Path, resume: bool, force: bool) -> None:
    """Refuse to write into a non-empty directory unless resuming or forced."""
    if resume:
        if not (directory / LAST).is_file():
            raise TrainingError(f"--resume: {str(directory / LAST)!r} does not exist")
        return
    if directory.exists() and any(directory.iterdir()) and not force:
        raise TrainingError(
            f"output directory {str(directory)!r} is not empty; use --resume to continue that run "
            "or --force to overwrite its files"
        )
    directory.mkdir(parents=True, exist_ok=True)


def _data_paths(config: Config) -> dict[str, str | None]:
    data = config.data
    paths: dict[str, str | None] = {}
    for split in ("train", "val", "test"):
        explicit = getattr(data, split)
        if explicit is not None:
            paths[split] = explicit
        elif data.split_dir is not None:
            candidate = Path(data.split_dir) / f"{split}.extxyz"
            paths[split] = str(candidate) if (split != "test" or candidate.is_file()) else None
        else:
            paths[split] = None
    for split in ("train", "val"):
        if paths[split] is None:
            raise TrainingError(f"no {split} data: set data.split_dir or data.{split}")
    return paths


class EMA:
    """Exponential moving average of parameters and buffers, decay warmed up as min(d, (1+n)/(10+n))."""

    def __init__(self, model: torch.nn.Module, decay: float | None) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        if self.decay is None:
            self.model.load_state_dict(model.state_dict())
            return
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for average, current in zip(self.model.state_dict().values(), model.state_dict().values()):
            if average.is_floating_point():
                average.mul_(decay).add_(current, alpha=1 - decay)
            else:
                average.copy_(current)


class Trainer:
    """One training run; ``run()`` trains until the epoch budget, the minimum lr or the time limit."""

    def __init__(self, config: Config, resume: bool = False, force: bool = False) -> None:
        self._log_handler: logging.Handler | None = None
        self._started_group = False
        self.tensorboard: Any = None
        try:
            self._set_up(config, resume, force)
        except BaseException:
            self.close()
            raise

    def _set_up(self, config: Config, resume: bool, force: bool) -> None:
        self.config = config
        self.resume = resume
        self.output_dir = Path(config.output.dir)
        self.device = resolve_device(config.train.device)
        self.distributed, self._started_group = init_distributed(str(self.device))
        if self.device.type == "cuda" and self.distributed.world_size > 1:
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(self.device)
        self.dtype = torch.float64 if config.model.dtype == "float64" else torch.float32
        # read and check the data before anything is written
        self.paths = _data_paths(config)
        frames = {split: read_structures(path) for split, path in self.paths.items() if path is not None}
        self.species = config.model.species or species_of(frames["train"] + frames["val"])
        given = config.data.reference_energies
        self.references = (
            given_reference_energies(given, self.species)
            if given is not None
            else fit_reference_energies(frames["train"], self.species)
        )
        self.data: dict[str, list[LabelledStructure]] = {
            split: prepare(f, self.species, config.model.cutoff, source=str(self.paths[split]))
            for split, f in frames.items()
        }
        self.test_frames = frames.get("test")
        if self.distributed.is_main:
            prepare_output_dir(self.output_dir, resume, force)
        self.distributed.barrier()
        self._log_handler = self._attach_log_file() if self.distributed.is_main else None
        if self.distributed.is_main:
            text = yaml.safe_dump(config.to_dict(), sort_keys=False).encode()
            atomic_write_bytes(self.output_dir / "config.yaml", lambda stream: stream.write(text))
        self.log(self.references.note)
        torch.manual_seed(config.train.seed)
        self.model = REANN(**self.model_kwargs()).to(self.device)
        self.distributed.broadcast_parameters(self.model)
        self.ema = EMA(self.model, config.train.ema_decay)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.train.lr, weight_decay=config.train.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, factor=config.train.scheduler_factor, patience=config.train.scheduler_patience
        )
        self.epoch = 0
        self.best_val_loss = math.inf
        self.csv = MetricsCSV(self.output_dir / "metrics.csv", CSV_COLUMNS)
        self.tensorboard = self._open_tensorboard()
        if resume:
            self._resume()

    # --- set-up -------------------------------------------------------------------------------------

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of REANN for this run (species and reference energies filled in)."""
        kwargs = {k: v for k, v in self.config.to_dict()["model"].items() if k != "species"}
        return {"species": self.species, "atomic_energies": self.references.energies, **kwargs}

    def _attach_log_file(self) -> logging.Handler:
        handler = logging.FileHandler(self.output_dir / "train.log", mode="a" if self.resume else "w")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        return handler

    def _open_tensorboard(self) -> Any:
        if not (self.config.output.tensorboard and self.distributed.is_main):
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return None
        return SummaryWriter(str(self.output_dir / "tensorboard"))

    def log(self, message: str) -> None:
        if self.distributed.is_main:
            logger.info(message)

    # --- checkpoints --------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything needed to continue the run exactly."""
        return {
            "epoch": self.epoch,
            "best_val_loss": self.best_val_loss,
            "config": self.config.to_dict(),
            "model_config": self.model.config,
            "reference_energies": self.references.energies,
            "model_state": self.model.state_dict(),
            "ema_state": self.ema.model.state_dict(),
            "ema_updates": self.ema.updates,
            "optimizer_state": self.optimizer.state_dict(),
            "scheduler_state": self.scheduler.state_dict(),
            "rng_states": rng_states(),
        }

    def load_state(self, checkpoint: dict[str, Any]) -> None:
        self.model.load_state_dict(checkpoint["model_state"])
        self.ema.model.load_state_dict(checkpoint["ema_state"])
        self.ema.updates = int(checkpoint["ema_updates"])
        self.optimizer.load_state_dict(checkpoint["optimizer_state"])
        self.scheduler.load_state_dict(checkpoint["scheduler_state"])

    def _resume(self) -> None:
        checkpoint = load_checkpoint(self.output_dir / LAST)
        stored = checkpoint["model_config"]
        current = self.model.config
        if stored != current:
            raise TrainingError(
                f"--resume: the model section differs from the checkpoint's ({stored} vs {current})"
            )
        self.load_state(checkpoint)
        restore_rng_states(checkpoint["rng_states"])
        self.epoch = int(checkpoint["epoch"])
        self.best_val_loss = float(checkpoint["best_val_loss"])
        self.csv.load_until(self.epoch)
        self.log(f"resumed from {self.output_dir / LAST} after epoch {self.epoch}")

    def save(self, name: str) -> None:
        if self.distributed.is_main:
            write_checkpoint(self.output_dir / name, self.state())

    # --- epochs -------------------------------------------------------------------------------------

    def _global_batches(self, epoch: int) -> list[list[int]]:
        order = batch_order(len(self.data["train"]), self.config.train.seed, epoch).tolist()
        size = self.config.train.batch_size
        return [order[start : start + size] for start in range(0, len(order), size)]

    def _loss(self, predicted: dict[str, torch.Tensor], batch: Any, counts: BatchCounts) -> torch.Tensor:
        train = self.config.train
        if train.loss == "reference":
            weight = reference_force_weight(self.lr, train.lr, train.min_lr, train.init_f, train.final_f)
            return reference_loss(predicted, batch, counts, weight)
        return weighted_loss(
            predicted, batch, counts, train.energy_weight, train.force_weight, train.stress_weight
        )

    def _loss_from_sums(self, sums: ErrorSums) -> float:
        train = self.config.train
        if train.loss == "reference":
            weight = reference_force_weight(self.lr, train.lr, train.min_lr, train.init_f, train.final_f)
            return sums.reference_loss(weight)
        return sums.weighted_loss(train.energy_weight, train.force_weight, train.stress_weight)

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _wants_stress(self, structures: Sequence[LabelledStructure]) -> bool:
        return self.config.train.stress_weight > 0 and any(s.stress is not None for s in structures)

    def train_epoch(self, epoch: int) -> ErrorSums:
        """One pass over the training set; returns the error sums of the training predictions."""
        self.model.train()
        structures = self.data["train"]
        stress = self._wants_stress(structures)
        sums = ErrorSums(self.device)
        rank, world = self.distributed.rank, self.distributed.world_size
        batches = self._global_batches(epoch)
        progress = tqdm(
            batches,
            desc=f"epoch {epoch}",
            leave=False,
            unit="batch",
            disable=None if (self.config.output.progress and self.distributed.is_main) else True,
        )
        parameters = list(self.model.parameters())
        for global_batch in progress:
            counts = BatchCounts(
                structures=len(global_batch),
                atoms=sum(structures[i].n_atoms for i in global_batch),
                stress_structures=sum(structures[i].stress is not None for i in global_batch),
            )
            shard = global_batch[rank::world]
            self.optimizer.zero_grad(set_to_none=True)
            if shard:
                batch = collate([structures[i] for i in shard], self.dtype, self.device)
                predicted = self.model(batch.graph, forces=True, stress=stress)
                loss = self._loss(predicted, batch, counts)
                loss.backward()
                sums.add(predicted, batch)
            self.distributed.all_reduce_gradients(parameters)
            if self.config.train.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(parameters, self.config.train.grad_clip)
            self.optimizer.step()
            self.ema.update(self.model)
        sums.all_reduce()
        return sums

    def validate(self, model: torch.nn.Module, structures: Sequence[LabelledStructure]) -> ErrorSums:
        """Error sums of ``model`` (evaluation mode) on ``structures``, shared out among the processes."""
        model.eval()
        stress = self._wants_stress(structures)
        sums = ErrorSums(self.device)
        size = self.config.train.val_batch_size or self.config.train.batch_size
        mine = list(range(len(structures)))[self.distributed.rank :: self.distributed.world_size]
        for start in range(0, len(mine), size):
            batch = collate([structures[i] for i in mine[start : start + size]], self.dtype, self.device)
            predicted = model(batch.graph, forces=True, stress=stress)
            sums.add(predicted, batch)
        sums.all_reduce()
        return sums

    def _diverged(self, val_loss: float) -> bool:
        factor = self.config.train.divergence_factor
        return not math.isfinite(val_loss) or (
            math.isfinite(self.best_val_loss) and val_loss > factor * self.best_val_loss
        )

    def _recover_from_divergence(self, val_loss: float) -> None:
        if not (self.output_dir / BEST).is_file():
            raise TrainingError(
                f"validation loss {val_loss} in epoch {self.epoch} before any usable state: lower train.lr"
            )
        self.distributed.barrier()
        lowered = self.lr * self.config.train.scheduler_factor
        self.load_state(load_checkpoint(self.output_dir / BEST))
        for group in self.optimizer.param_groups:
            group["lr"] = lowered
        self.log(
            f"epoch {self.epoch}: validation loss {val_loss:.4g} diverged (best {self.best_val_loss:.4g}); "
            f"reloaded the best state and lowered the learning rate to {lowered:.3g}"
        )

    def run(self) -> TrainingResult:
        """Train until the epoch budget, the minimum learning rate or the time limit."""
        train = self.config.train
        n_parameters = sum(p.numel() for p in self.model.parameters())
        self.log(
            f"{len(self.data['train'])} training and {len(self.data['val'])} validation structures; "
            f"species {self.species}; {n_parameters} parameters; device {self.device}; "
            f"{self.distributed.world_size} process(es)"
        )
        header = ("epoch", "lr", "train E", "train F", "val E", "val F", "val loss", "time/s")
        self.log(
            " ".join(f"{h:>{w}}" for h, w in zip(header, (5, 9, 9, 9, 9, 9, 10, 7)))
            + "   (E: RMSE meV/atom, F: RMSE meV/Å; train: running, val: EMA model)"
        )
        started = time.perf_counter()
        throughputs = []
        while self.epoch < train.epochs and self.lr >= train.min_lr * (1 - 1e-9):
            epoch_start = time.perf_counter()
            self.epoch += 1
            train_sums = self.train_epoch(self.epoch)
            train_seconds = time.perf_counter() - epoch_start
            throughputs.append(len(self.data["train"]) / train_seconds)
            val_sums = self.validate(self.ema.model, self.data["val"])
            val_loss = self._loss_from_sums(val_sums)
            lr = self.lr
            if self._diverged(val_loss):
                self._recover_from_divergence(val_loss)
            else:
                self.scheduler.step(val_loss)
                if val_loss < self.best_val_loss:
                    self.best_val_loss = val_loss
                    self.save(BEST)
            self.save(LAST)
            self._report(
                lr, train_sums, val_sums, val_loss, time.perf_counter() - epoch_start, throughputs[-1]
            )
            if train.max_minutes is not None and time.perf_counter() - started > 60 * train.max_minutes:
                self.log(f"stopping: time limit of {train.max_minutes} min reached")
                break
        if self.lr < train.min_lr * (1 - 1e-9):
            self.log(f"stopping: learning rate {self.lr:.3g} fell below min_lr {train.min_lr:.3g}")
        return self._finish(throughputs)

    def _report(
        self, lr: float, train: ErrorSums, val: ErrorSums, val_loss: float, seconds: float, throughput: float
    ) -> None:
        train_rmse, val_rmse = train.rmse(), val.rmse()
        self.log(
            f"{self.epoch:>5} {lr:>9.2e} "
            f"{train_rmse['energy_rmse_per_atom']:>9.3f} {train_rmse['force_rmse']:>9.2f} "
            f"{val_rmse['energy_rmse_per_atom']:>9.3f} {val_rmse['force_rmse']:>9.2f} "
            f"{val_loss:>10.4e} {seconds:>7.1f}"
        )
        if not self.distributed.is_main:
            return
        row = {
            "epoch": self.epoch,
            "lr": lr,
            "train_loss": self._loss_from_sums(train),
            "train_energy_rmse_meV_per_atom": train_rmse["energy_rmse_per_atom"],
            "train_force_rmse_meV_per_A": train_rmse["force_rmse"],
            "val_loss": val_loss,
            "val_energy_rmse_meV_per_atom": val_rmse["energy_rmse_per_atom"],
            "val_force_rmse_meV_per_A": val_rmse["force_rmse"],
            "epoch_seconds": seconds,
            "structures_per_second": throughput,
        }
        self.csv.append(row)
        if self.tensorboard is not None:
            for key, value in row.items():
                if key != "epoch":
                    self.tensorboard.add_scalar(key, value, self.epoch)

    def _finish(self, throughputs: list[float]) -> TrainingResult:
        from .export import export_model

        self.distributed.barrier()
        model_file = self.output_dir / "model.pt"
        test_metrics = None
        if self.distributed.is_main:
            if self.config.train.refit_energy_shift:
                self._refit_energy_shift()
            export_model(self.output_dir / BEST, model_file, force=True)
            if self.test_frames is not None:
                model = model_from_checkpoint(load_checkpoint(self.output_dir / BEST)).to(self.device)
                batch_size = self.config.train.val_batch_size or self.config.train.batch_size
                test_metrics = evaluate_structures(model, self.test_frames, batch_size, self.device).metrics
                self.log("test set (best EMA model):\n" + format_error_table(test_metrics))
                (self.output_dir / "test_metrics.json").write_text(json.dumps(test_metrics, indent=2))
            self.log(f"best validation loss {self.best_val_loss:.6g}; model written to {model_file}")
        throughputs.sort()
        median = throughputs[len(throughputs) // 2] if throughputs else math.nan
        self.close()
        return TrainingResult(
            self.output_dir, self.epoch, self.best_val_loss, model_file, test_metrics, median
        )

    def training_residuals(self, model: torch.nn.Module) -> tuple[np.ndarray, np.ndarray]:
        """Reference minus predicted energy per training structure (eV) and the compositions
        [n_structures, n_species] (atom counts)."""
        model.eval()
        structures = self.data["train"]
        size = self.config.train.val_batch_size or self.config.train.batch_size
        residuals, counts = [], []
        for start in range(0, len(structures), size):
            chunk = structures[start : start + size]
            batch = collate(chunk, self.dtype, self.device)
            with torch.no_grad():
                energy = model(batch.graph, forces=False)["energy"]
            residuals.append((batch.energy - energy).double().cpu().numpy())
            counts += [torch.bincount(s.graph.species, minlength=len(self.species)).numpy() for s in chunk]
        return np.concatenate(residuals), np.array(counts, dtype=np.float64)

    def _refit_energy_shift(self) -> None:
        """Store in the best checkpoint the per-element shift minimising its training energy residuals."""
        checkpoint = load_checkpoint(self.output_dir / BEST)
        model = model_from_checkpoint(checkpoint, energy_shift=False).to(self.device)
        residuals, counts = self.training_residuals(model)
        shift, _ = per_element_fit(counts, residuals)
        after = residuals - counts @ shift
        n_atoms = counts.sum(axis=1)
        checkpoint["energy_shift"] = {s: float(v) for s, v in zip(self.species, shift)}
        write_checkpoint(self.output_dir / BEST, checkpoint)
        self.log(
            "energy shift refitted on the training set: "
            + ", ".join(f"{s} {1000 * v:+.3f} meV" for s, v in zip(self.species, shift))
            + f"; training energy RMSE {1000 * np.sqrt(np.mean((residuals / n_atoms) ** 2)):.3f} -> "
            f"{1000 * np.sqrt(np.mean((after / n_atoms) ** 2)):.3f} meV/atom"
        )

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
            self.tensorboard = None
        if self._log_handler is not None:
            logger.removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None
        if self._started_group:
            dist.destroy_process_group()
            self._started_group = False


def train(config: Config, resume: bool = False, force: bool = False) -> TrainingResult:
    """Run a training as configured (see ``reann train --print-defaults``)."""
    trainer = Trainer(config, resume=resume, force=force)
    try:
        return trainer.run()
    finally:
        trainer.close()
