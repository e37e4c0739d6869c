"""The training loop: AdamW, EMA weights, ReduceLROnPlateau, divergence guard, checkpoints, DDP.

Distributed runs (``torchrun --nproc_per_node N``, see ``parallel.py``) split every global batch of
``train.batch_size`` structures between the processes so that the update equals the single-process one.
The batch order of epoch e depends only on (seed, e), which makes ``--resume`` exact.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from tqdm import tqdm

from ..atomic import remove_stale_temporaries
from ..model import REANN
from ..model.runtime import resolve_device
from .auto import initial_coefficient, resolve
from .checkpoints import BEST, LAST, load_checkpoint, restore_rng_states, rng_states, save_checkpoint
from .config import Config, check_resumable
from .data import LabelledStructure, collate, energy_only, epoch_batches
from .ema import EMA
from .energy_shift import refit_energy_shift
from .errors import TrainingError
from .evaluate import evaluate_checkpoint
from .export import export_model
from .inputs import load_inputs
from .losses import BatchCounts, batch_errors, training_loss, weighted_objective
from .metrics import ErrorSums, format_error_table
from .output import RunOutput, prepare_output_dir
from .parallel import init_distributed

__all__ = ["Trainer", "TrainingError", "TrainingResult", "train"]


@dataclass
class TrainingResult:
    """What a finished run produced."""

    output_dir: Path
    epochs: int  # epochs completed
    best_val_loss: float
    model_file: Path
    test_metrics: dict[str, Any] | None
    structures_per_second: float  # median over the epochs of this invocation
    stop_reason: str = ""
    final_lr: float = math.nan


class Trainer:
    """One training run; ``run()`` trains until the epoch budget, the minimum lr or the time limit."""

    def __init__(self, config: Config, resume: bool = False, force: bool = False) -> None:
        self.output: RunOutput | None = None
        self._started_group = False
        try:
            self._set_up(config, resume, force)
        except BaseException:
            self.close()
            raise

    def _set_up(self, config: Config, resume: bool, force: bool) -> None:
        self.config = config
        self.output_dir = Path(config.output.dir)
        self.distributed, self.device, self._started_group = init_distributed(
            resolve_device(config.train.device)
        )
        self.dtype = torch.float64 if config.model.dtype == "float64" else torch.float32
        # read and check the data before anything is written
        inputs = load_inputs(config)
        self.species = inputs.species
        self.references = inputs.references
        self.data = inputs.structures
        self.test_frames = inputs.test_frames
        self.fit_forces = not energy_only(self.data["train"] + self.data["val"], "train + val data")
        self.initial_coefficient, coefficient_notes = initial_coefficient(
            config.model.initial_coefficient, self.data["train"]
        )
        if self.distributed.is_main:
            prepare_output_dir(self.output_dir, resume, force)
        if resume:  # refuse a changed model before config.yaml, train.log or metrics.csv are touched
            stored = load_checkpoint(self.output_dir / LAST)["model_config"]
            check_resumable(stored, REANN(**self.model_kwargs()).config)
        self.distributed.barrier()
        self.output = RunOutput(config, self.distributed.is_main, resume)
        self.log(self.references.note)
        references = [self.references.energies[s] for s in self.species]
        settings = resolve(config.train, self.data["train"], references, self.fit_forces)
        for note in (*coefficient_notes, *settings.notes):
            self.log(f"chosen from the training data: {note}")
        # the training settings in force: the configuration with its auto values resolved
        self.train = dataclasses.replace(
            config.train,
            energy_weight=settings.energy_weight,
            force_weight=settings.force_weight,
            scheduler_patience=settings.patience,
            ema_decay=settings.ema_decay,
        )
        torch.manual_seed(self.train.seed)
        self.model = REANN(**self.model_kwargs()).to(self.device)
        self.distributed.broadcast_parameters(self.model)
        self.ema = EMA(self.model, settings.ema_decay)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=self.train.lr, weight_decay=self.train.weight_decay
        )
        self.scheduler = (
            None  # with a time budget and no explicit patience, budget_lr alone sets the learning rate
            if settings.patience is None
            else torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, factor=self.train.scheduler_factor, patience=settings.patience
            )
        )
        self.epoch = 0
        self.best_val_loss = math.inf
        self.best_annealed = False  # the best model was trained at a learning rate below train.lr
        self.elapsed_seconds = 0.0  # training wall time of all invocations (the time budget counts it)
        if resume:
            self._resume()

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of REANN for this run (species and reference energies filled in)."""
        kwargs = {k: v for k, v in self.config.to_dict()["model"].items() if k != "species"}
        kwargs["initial_coefficient"] = self.initial_coefficient  # "auto" resolved from the data
        return {"species": self.species, "atomic_energies": self.references.energies, **kwargs}

    def log(self, message: str) -> None:
        if self.output is not None:
            self.output.log(message)

    # --- checkpoints --------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything needed to continue the run exactly."""
        return {
            "epoch": self.epoch,
            "best_val_loss": self.best_val_loss,
            "best_annealed": self.best_annealed,
            "config": self.config.to_dict(),
            "model_config": self.model.config,
            "reference_energies": self.references.energies,
            "model_state": self.model.state_dict(),
            "ema_state": self.ema.model.state_dict(),
            "ema_updates": self.ema.updates,
            "optimizer_state": self.optimizer.state_dict(),
            "scheduler_state": None if self.scheduler is None else self.scheduler.state_dict(),
            "rng_states": rng_states(),
            "elapsed_seconds": self.elapsed_seconds,
        }

    def load_state(self, checkpoint: dict[str, Any]) -> None:
        self.model.load_state_dict(checkpoint["model_state"])
        self.ema.model.load_state_dict(checkpoint["ema_state"])
        self.ema.updates = int(checkpoint["ema_updates"])
        self.optimizer.load_state_dict(checkpoint["optimizer_state"])
        if self.scheduler is not None and checkpoint["scheduler_state"] is not None:
            self.scheduler.load_state_dict(checkpoint["scheduler_state"])

    def _resume(self) -> None:
        remove_stale_temporaries(self.output_dir, self.log)
        checkpoint = load_checkpoint(self.output_dir / LAST)
        self.load_state(checkpoint)
        restore_rng_states(checkpoint["rng_states"])
        self.epoch = int(checkpoint["epoch"])
        self.best_val_loss = float(checkpoint["best_val_loss"])
        self.best_annealed = bool(checkpoint.get("best_annealed", False))
        self.elapsed_seconds = float(checkpoint.get("elapsed_seconds", 0.0))
        assert self.output is not None
        self.output.csv.load_until(self.epoch)
        self.log(f"resumed from {self.output_dir / LAST} after epoch {self.epoch}")

    def save(self, name: str) -> None:
        if self.distributed.is_main:
            save_checkpoint(self.output_dir / name, self.state())

    # --- epochs -------------------------------------------------------------------------------------

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    @property
    def eval_batch_size(self) -> int:
        return self.train.val_batch_size or self.train.batch_size

    def _wants_stress(self, structures: Sequence[LabelledStructure]) -> bool:
        return self.train.stress_weight > 0 and any(s.stress is not None for s in structures)

    def train_epoch(self, epoch: int) -> ErrorSums:
        """One pass over the training set; returns the error sums of the training predictions."""
        self.model.train()
        structures = self.data["train"]
        stress = self._wants_stress(structures)
        sums = ErrorSums(self.device)
        batches = epoch_batches(len(structures), self.train.batch_size, self.train.seed, epoch)
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
            shard = self.distributed.shard(global_batch)
            self.optimizer.zero_grad(set_to_none=True)
            if shard:
                batch = collate([structures[i] for i in shard], self.dtype, self.device)
                predicted = self.model(batch.graph, forces=self.fit_forces, stress=stress)
                loss = training_loss(batch_errors(predicted, batch, counts), self.train, self.lr)
                loss.backward()
                sums.add(predicted, batch)
            self.distributed.all_reduce_gradients(parameters)
            if self.train.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(parameters, self.train.grad_clip)
            self.optimizer.step()
            self.ema.update(self.model)
        sums.all_reduce()
        return sums

    def validate(self, model: torch.nn.Module, structures: Sequence[LabelledStructure]) -> ErrorSums:
        """Error sums of ``model`` (evaluation mode) on ``structures``, shared out among the processes."""
        model.eval()
        stress = self._wants_stress(structures)
        sums = ErrorSums(self.device)
        size = self.eval_batch_size
        mine = self.distributed.shard(range(len(structures)))
        for start in range(0, len(mine), size):
            batch = collate([structures[i] for i in mine[start : start + size]], self.dtype, self.device)
            predicted = model(batch.graph, forces=self.fit_forces, stress=stress)
            sums.add(predicted, batch)
        sums.all_reduce()
        return sums

    def epoch_loss(self, sums: ErrorSums) -> float:
        """The training loss (at the current learning rate) of all structures summed in ``sums``."""
        return training_loss(sums.squared_errors(), self.train, self.lr)

    def _diverged(self, val_loss: float) -> bool:
        factor = self.train.divergence_factor
        return not math.isfinite(val_loss) or (
            math.isfinite(self.best_val_loss) and val_loss > factor * self.best_val_loss
        )

    def _recover_from_divergence(self, val_loss: float) -> None:
        if not (self.output_dir / BEST).is_file():
            raise TrainingError(
                f"validation loss {val_loss} in epoch {self.epoch} before any usable state: lower train.lr"
            )
        self.distributed.barrier()
        lowered = self.lr * self.train.scheduler_factor
        self.load_state(load_checkpoint(self.output_dir / BEST))
        for group in self.optimizer.param_groups:
            group["lr"] = lowered
        self.log(
            f"epoch {self.epoch}: validation loss {val_loss:.4g} diverged (best {self.best_val_loss:.4g}); "
            f"reloaded the best state and lowered the learning rate to {lowered:.3g}"
        )

    def _is_best(self, val_loss: float, lr: float) -> bool:
        """Whether the model of this epoch (trained at ``lr``) becomes the best one: the lowest validation
        loss, where a model of the annealing phase (lr below train.lr) always replaces one of the phase at
        the initial lr. At the initial lr the averaged weights still move fast, and on a small validation
        set the minimum there is mostly chance: on 180 random-CH4 frames with 20 validation frames, the six
        of fifteen runs whose best epoch fell at epochs 29-73 of about 6000 had test energy RMSE 97-131
        meV/atom against 62-84 for the other nine (docs/training.md)."""
        return val_loss < self.best_val_loss or (lr < self.train.lr and not self.best_annealed)

    def selection_metric(self, sums: ErrorSums) -> float:
        """The fixed metric that picks the best model and drives the plateau schedule: the weighted
        loss with this run's weights, whatever ``train.loss`` is (the reference loss's weights move
        with the lr)."""
        train = self.train
        assert train.energy_weight is not None and train.force_weight is not None
        return float(
            weighted_objective(
                sums.squared_errors(), train.energy_weight, train.force_weight, train.stress_weight
            )
        )

    def budget_lr(self) -> float:
        """Upper bound on the lr from the time budget: lr until 25 % of ``max_minutes``, then exponential
        decay to min_lr at 100 %, so that a run with a budget always ends annealed (inf without a budget)."""
        train = self.train
        if train.max_minutes is None or train.max_minutes <= 0:
            return math.inf
        progress = (self.elapsed_seconds / (60 * train.max_minutes) - 0.25) / 0.75
        return train.lr * (train.min_lr / train.lr) ** min(1.0, max(0.0, progress))

    def run(self) -> TrainingResult:
        """Train until the epoch budget, the minimum learning rate or the time limit."""
        train = self.train
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
        throughputs = []
        stop_reason = f"epoch budget of {train.epochs} epochs reached"
        while self.epoch < train.epochs:
            if self.lr < train.min_lr * (1 - 1e-9):
                stop_reason = f"learning rate {self.lr:.3g} fell below min_lr {train.min_lr:.3g}"
                break
            if train.max_minutes is not None and self.elapsed_seconds > 60 * train.max_minutes:
                stop_reason = f"time budget of {train.max_minutes} min reached"
                break
            epoch_start = time.perf_counter()
            self.epoch += 1
            train_sums = self.train_epoch(self.epoch)
            train_seconds = time.perf_counter() - epoch_start
            throughputs.append(len(self.data["train"]) / train_seconds)
            val_sums = self.validate(self.ema.model, self.data["val"])
            val_loss = self.selection_metric(val_sums)
            lr = self.lr
            if self._diverged(val_loss):
                self._recover_from_divergence(val_loss)
            else:
                if self.scheduler is not None:
                    self.scheduler.step(val_loss)
                if self._is_best(val_loss, lr):
                    self.best_val_loss = val_loss
                    self.best_annealed = lr < train.lr
                    self.save(BEST)
            self.elapsed_seconds += time.perf_counter() - epoch_start
            cap = self.budget_lr()
            if self.lr > cap:
                for group in self.optimizer.param_groups:
                    group["lr"] = cap
            # the budget counts checkpoint writing too (about 0.03 s of a 0.2 s epoch on small sets), so
            # that a run given N minutes ends after about N minutes
            save_start = time.perf_counter()
            self.save(LAST)
            self.elapsed_seconds += time.perf_counter() - save_start
            self._report(
                lr, train_sums, val_sums, val_loss, time.perf_counter() - epoch_start, throughputs[-1]
            )
        self.log(f"stopping after epoch {self.epoch}: {stop_reason}; final learning rate {self.lr:.3g}")
        return self._finish(throughputs, stop_reason)

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
        assert self.output is not None
        self.output.record(
            {
                "epoch": self.epoch,
                "lr": lr,
                "train_loss": self.epoch_loss(train),
                "train_energy_rmse_meV_per_atom": train_rmse["energy_rmse_per_atom"],
                "train_force_rmse_meV_per_A": train_rmse["force_rmse"],
                "val_loss": val_loss,
                "val_energy_rmse_meV_per_atom": val_rmse["energy_rmse_per_atom"],
                "val_force_rmse_meV_per_A": val_rmse["force_rmse"],
                "epoch_seconds": seconds,
                "structures_per_second": throughput,
            }
        )

    def _finish(self, throughputs: list[float], stop_reason: str) -> TrainingResult:
        self.distributed.barrier()
        model_file = self.output_dir / "model.pt"
        test_metrics = None
        if self.distributed.is_main:
            if self.train.refit_energy_shift:
                self.log(
                    refit_energy_shift(
                        self.output_dir / BEST,
                        self.data["train"],
                        self.species,
                        self.eval_batch_size,
                        self.dtype,
                        self.device,
                    )
                )
            export_model(self.output_dir / BEST, model_file, force=True)
            if self.test_frames is not None:
                test_metrics = evaluate_checkpoint(
                    self.output_dir / BEST,
                    self.test_frames,
                    self.output_dir / "test_metrics.json",
                    self.eval_batch_size,
                    self.device,
                )
                self.log("test set (best EMA model):\n" + format_error_table(test_metrics))
            self.log(
                f"stopped after epoch {self.epoch} ({stop_reason}); final learning rate {self.lr:.3g}; "
                f"{self.elapsed_seconds / 60:.1f} min of training, {time.process_time() / 60:.1f} min of CPU "
                f"time in this process"
            )
            self.log(f"best validation loss {self.best_val_loss:.6g}; model written to {model_file}")
        throughputs.sort()
        median = throughputs[len(throughputs) // 2] if throughputs else math.nan
        self.close()
        return TrainingResult(
            self.output_dir,
            self.epoch,
            self.best_val_loss,
            model_file,
            test_metrics,
            median,
            stop_reason,
            self.lr,
        )

    def close(self) -> None:
        if self.output is not None:
            self.output.close()
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
