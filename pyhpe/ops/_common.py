"""Shared helpers for the typed op wrappers."""
from __future__ import annotations

import torch


def as_float_tensor(x, name: str, *, like: torch.Tensor | None = None) -> torch.Tensor:
    """Tensor from array-like input; keeps tensors as they are (the op checks them)."""
    if isinstance(x, torch.Tensor):
        return x
    if like is not None:
        return torch.as_tensor(x, dtype=like.dtype, device=like.device)
    t = torch.as_tensor(x)
    if not t.is_floating_point():
        t = t.to(torch.float32)
    return t


def check_finite(x: torch.Tensor | None, name: str, op: str) -> None:
    """Raise ValueError naming the argument when it holds NaN or infinity."""
    if x is None or x.numel() == 0 or not x.is_floating_point():
        return
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{op}: '{name}' contains NaN or infinite values")
