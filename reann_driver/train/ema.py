"""Exponential moving average of a model's weights (what validation, checkpoints and export use)."""

from __future__ import annotations

import copy

import torch


class EMA:
    """Exponential moving average of parameters and buffers, decay warmed up as min(d, (1+n)/(10+n)).

    ``decay=None`` keeps a plain copy of the current weights.
    """

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
