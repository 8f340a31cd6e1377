"""Exponential moving average of a model's weights."""
from __future__ import annotations

import copy
import math
from typing import Dict

import torch
import torch.nn as nn

from .distributed import unwrap


class ModelEMA:
    """Exponential moving average of a model's parameters and buffers.

    ``decay`` ramps up as ``decay * (1 - exp(-updates / tau))`` (the YOLOv5/RTMPose rule) so the
    average follows the fast-changing early weights.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, tau: float = 200.0):
        self.module = copy.deepcopy(unwrap(model)).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay, self.tau, self.updates = decay, tau, 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / self.tau))
        src = unwrap(model).state_dict()
        for k, v in self.module.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(src[k].detach(), alpha=1 - d)
            else:
                v.copy_(src[k])

    def state_dict(self) -> Dict:
        return {"module": self.module.state_dict(), "updates": self.updates,
                "decay": self.decay, "tau": self.tau}

    def load_state_dict(self, sd: Dict) -> None:
        self.module.load_state_dict(sd["module"])
        self.updates, self.decay, self.tau = sd["updates"], sd["decay"], sd["tau"]


__all__ = ["ModelEMA"]
