"""Learning-rate schedules as per-step multipliers (for ``torch.optim.lr_scheduler.LambdaLR``)."""
from __future__ import annotations

import math
from typing import Sequence

LR_POLICIES = ("cosine", "step", "constant")


def lr_lambda_factory(total_steps: int, warmup_steps: int = 0, policy: str = "cosine",
                      milestones: Sequence[int] = (), gamma: float = 0.1, warmup_ratio: float = 0.001,
                      min_ratio: float = 0.0):
    """Per-step LR multiplier: linear warm-up from ``warmup_ratio``, then 'step' (x gamma at each
    milestone step), 'cosine' (to ``min_ratio`` at ``total_steps``) or 'constant'."""
    if policy not in LR_POLICIES:
        raise ValueError(f"unknown lr policy {policy!r}; use one of {LR_POLICIES}")
    milestones = sorted(int(m) for m in milestones)

    def fn(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            w = warmup_ratio + (1 - warmup_ratio) * step / warmup_steps
        else:
            w = 1.0
        if policy == "step":
            f = gamma ** sum(step >= m for m in milestones)
        elif policy == "cosine":
            t = min(max(step - warmup_steps, 0) / max(total_steps - warmup_steps, 1), 1.0)
            f = min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t))
        else:
            f = 1.0
        return w * f
    return fn


__all__ = ["LR_POLICIES", "lr_lambda_factory"]
