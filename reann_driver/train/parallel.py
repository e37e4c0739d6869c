"""Data-parallel training over a torchrun process group (``torchrun --nproc_per_node N``).

Every global batch is shared out among the processes; each process normalises its loss by the global
batch counts and the gradients are summed across processes, so the update equals the single-process one.
With one process (no ``WORLD_SIZE`` > 1) every operation here is a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


@dataclass(frozen=True)
class Distributed:
    """Rank and size of the process group (1 process when not launched by torchrun)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, items: Sequence[T]) -> list[T]:
        """This process's share of ``items`` (every world_size-th, starting at its rank)."""
        return list(items[self.rank :: self.world_size])

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
        """Give every process the parameters and buffers of rank 0."""
        if self.world_size > 1:
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, 0)

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


def init_distributed(device: torch.device) -> tuple[Distributed, torch.device, bool]:
    """Join the torchrun process group when WORLD_SIZE > 1 (nccl on CUDA, else gloo).

    Returns the context, the device of this process (``cuda:LOCAL_RANK`` for a multi-process CUDA run,
    else ``device``) and whether the group was started here (and must be destroyed by the caller).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed(), device, False
    started = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        started = True
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return Distributed(dist.get_rank(), dist.get_world_size()), device, started
