"""Shared helpers for the typed op wrappers."""
from __future__ import annotations

import math
import numbers
import operator
from typing import Optional, Tuple

import numpy as np
import torch

from ..keypoints import COCO_SIGMAS


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


# ---- scalar options: named errors instead of silent truncation -------------------------


def int_option(op: str, value, name: str, lo: Optional[int] = None,
               hi: Optional[int] = None) -> int:
    """An integer option: ints (and numpy / 0-d integer tensors) as they are, floats only
    when integral (48.0); 48.9 is a ValueError and a non-number a TypeError, naming it. The
    result fits in int64 and, when given, lies in [lo, hi]."""
    if isinstance(value, torch.SymInt):
        return value
    if isinstance(value, bool) or value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{op}: '{name}' must be an integer, got {value!r} "
                        f"({type(value).__name__})")
    try:
        result = operator.index(value)
    except TypeError:
        if not (isinstance(value, numbers.Real)
                or (isinstance(value, torch.Tensor) and value.numel() == 1)):
            raise TypeError(f"{op}: '{name}' must be an integer, got {value!r} "
                            f"({type(value).__name__})") from None
        v = float(value)
        if not (math.isfinite(v) and v.is_integer()):
            raise ValueError(f"{op}: '{name}' must be an integer, got {value!r}") from None
        result = int(v)
    if not -2**63 <= result < 2**63:
        raise ValueError(f"{op}: '{name}' must fit in int64, got {result}")
    if (lo is not None and result < lo) or (hi is not None and result > hi):
        raise ValueError(f"{op}: '{name}' must lie in [{lo}, {hi}], got {result}")
    return result


def float_option(op: str, value, name: str, *, finite: bool = False) -> float:
    """A float option; a non-number is a TypeError naming it, and with ``finite`` NaN and
    infinities are a ValueError (other range checks are the op's)."""
    if isinstance(value, torch.SymFloat):
        return value
    if isinstance(value, bool) or value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{op}: '{name}' must be a number, got {value!r} "
                        f"({type(value).__name__})")
    try:
        result = float(value)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{op}: '{name}' must be a number, got {value!r} "
                        f"({type(value).__name__})") from None
    if finite and not math.isfinite(result):
        raise ValueError(f"{op}: '{name}' must be finite, got {result}")
    return result


def _pair(op: str, value, name: str, what: str):
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{op}: '{name}' must be {what}, got {value!r}")
    items = tuple(value)
    if len(items) != 2:
        raise ValueError(f"{op}: '{name}' must be {what}, got {value!r}")
    return items


def float_pair(op: str, value, name: str) -> Tuple[float, float]:
    """(a, b) float options, e.g. per-axis sigmas."""
    a, b = _pair(op, value, name, "a number or a pair of numbers")
    return float_option(op, a, f"{name}[0]"), float_option(op, b, f"{name}[1]")


def int_pair(op: str, value, name: str) -> Tuple[int, int]:
    """(a, b) integer options, e.g. sizes (W, H) or per-axis kernels."""
    a, b = _pair(op, value, name, "a pair of integers")
    return int_option(op, a, f"{name}[0]"), int_option(op, b, f"{name}[1]")


# A tensor copy: torch.as_tensor warns on the read-only shared array, and torch.compile
# traces a tensor constant where it cannot trace numpy array flags.
_COCO_SIGMAS = torch.tensor(COCO_SIGMAS.tolist(), dtype=torch.float64)


def size_option(op: str, size, name: str, axes: str) -> Tuple[int, ...]:
    """A size such as ``(W, H)`` (``axes="WH"``) or ``(W, H, D)`` as ints: 48.0 is accepted,
    48.9 (ValueError) and non-numbers (TypeError) are refused naming the argument, as are
    negative sizes; the op range-checks the values."""
    what = "(" + ", ".join(axes) + ")"
    if isinstance(size, (str, bytes)) or not hasattr(size, "__iter__"):
        raise TypeError(f"{op}: '{name}' must be {what}, got {size!r}")
    items = tuple(size)
    if len(items) != len(axes):
        raise ValueError(f"{op}: '{name}' must be {what}, got {size!r}")
    out = tuple(int_option(op, v, name) for v in items)
    if any(v < 0 for v in out):
        raise ValueError(f"{op}: '{name}' must be non-negative {what}, got {items}")
    return out


def sigma_arg(op: str, sigma, device, scalar_ndim: int) -> Tuple[torch.Tensor, bool]:
    """A Gaussian ``sigma`` option and whether it was a number: a positive finite number as a
    float64 tensor of ``scalar_ndim`` size-1 dims, anything else as a tensor on ``device``
    holding real numbers (the op then checks its shape, and its values with
    :func:`check_sigma_values`)."""
    if isinstance(sigma, numbers.Real) and not isinstance(sigma, bool):
        if not (0 < float(sigma) < float("inf")):
            raise ValueError(f"{op}: 'sigma' must be positive and finite, got {sigma}")
        return torch.full((1,) * scalar_ndim, float(sigma), dtype=torch.float64,
                          device=device), True
    if isinstance(sigma, (bool, str, bytes)) or sigma is None:
        raise TypeError(f"{op}: 'sigma' must be a float or a tensor of sigmas, got {sigma!r}")
    try:
        s = torch.as_tensor(sigma, device=device)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{op}: 'sigma' must be a float or a tensor of sigmas, "
                        f"got {sigma!r}") from None
    if s.dtype == torch.bool or s.is_complex():
        raise TypeError(f"{op}: 'sigma' must hold real numbers, got dtype {s.dtype}")
    return s, False


def check_sigma_values(op: str, s: torch.Tensor) -> None:
    """Every sigma positive and finite (skipped while torch.compile traces)."""
    if (s.numel() and not torch.compiler.is_compiling()
            and not bool(((s > 0) & torch.isfinite(s)).all())):
        raise ValueError(f"{op}: 'sigma' must be positive and finite")


def sigmas_tensor(op: str, sigmas, K: int, dtype: torch.dtype, device) -> torch.Tensor:
    """Per-keypoint OKS sigmas as a tensor; None means COCO-17 (:data:`pyhpe.keypoints.
    COCO_SIGMAS`), refused naming the argument for any other K."""
    if sigmas is None:
        if K != 17:
            raise ValueError(f"{op}: 'sigmas' is required for K={K} keypoints "
                             "(the default is COCO-17)")
        sigmas = _COCO_SIGMAS
    elif isinstance(sigmas, np.ndarray):
        sigmas = sigmas.copy()  # keypoint sets hold read-only arrays; torch warns on those
    return torch.as_tensor(sigmas, dtype=dtype, device=device)
