"""Training utilities: EMA, LR schedules, losses, atomic checkpoints, RNG state, DDP helpers."""
from __future__ import annotations

import copy
import math
import os
import random
from typing import Dict, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


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


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") and isinstance(
        model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else model


def lr_lambda_factory(total_steps: int, warmup_steps: int = 0, policy: str = "cosine",
                      milestones: Sequence[int] = (), gamma: float = 0.1, warmup_ratio: float = 0.001,
                      min_ratio: float = 0.0):
    """Per-step LR multiplier: linear warm-up from ``warmup_ratio``, then 'step' (x gamma at each
    milestone step), 'cosine' (to ``min_ratio`` at ``total_steps``) or 'constant'."""
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
        elif policy == "constant":
            f = 1.0
        else:
            raise ValueError(f"unknown lr policy {policy!r}; use 'step', 'cosine' or 'constant'")
        return w * f
    return fn


def keypoint_mse_loss(pred: torch.Tensor, target: torch.Tensor, weights: Optional[torch.Tensor] = None) -> torch.Tensor:
    """mmpose ``KeypointMSELoss(use_target_weight=True)``: mean over B, K, H, W of
    ``w_k * (pred - target)^2`` (x 0.5 as in HRNet's JointsMSELoss would only rescale)."""
    d = (pred.float() - target.float()) ** 2
    if weights is not None:
        d = d * weights.float()[:, :, None, None]
    return d.mean()


def simcc_kl_loss(pred_x, pred_y, target_x, target_y, weights, beta: float = 10.0):
    """RTMPose ``KLDiscretLoss``: KL between softmax(pred * beta) and normalised targets."""
    def one(p, t):
        logp = F.log_softmax(p.float() * beta, dim=-1)
        t = t.float() / t.float().sum(-1, keepdim=True).clamp_min(1e-12)
        return (F.kl_div(logp, t, reduction="none").sum(-1) * weights).sum() / weights.numel()
    return one(pred_x, target_x) + one(pred_y, target_y)


def atomic_save(obj, path: str) -> None:
    """``torch.save`` to ``path + '.tmp'``, fsync, then ``os.replace`` (never a torn file)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be (safely) loaded; the message names the file."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint file does not exist."""


def load_checkpoint_file(path: str, map_location="cpu"):
    """Read a checkpoint written by :func:`atomic_save` with ``torch.load(weights_only=True)``.

    Only tensors and plain containers / numbers / strings are accepted: a file whose unpickling
    would construct arbitrary objects (and so could run code) is refused. A failure is a
    :class:`CheckpointError` naming the file (:class:`CheckpointNotFoundError`, also a
    ``FileNotFoundError``, when it does not exist).
    """
    if not os.path.isfile(path):
        raise CheckpointNotFoundError(f"pyhpe: cannot load checkpoint {str(path)!r}: no such file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - re-raised with the file name
        msg = str(e).strip().splitlines()
        raise CheckpointError(f"pyhpe: cannot load checkpoint {str(path)!r}: "
                              f"{msg[0] if msg else type(e).__name__} (only tensors and plain "
                              f"containers are loaded; weights_only=True)") from e


def get_rng_state() -> Dict:
    """Every RNG state as tensors and plain numbers (loadable with ``weights_only=True``)."""
    py_version, py_state, py_gauss = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    st = {"python": {"version": int(py_version), "state": torch.tensor(py_state, dtype=torch.int64),
                     "gauss": py_gauss},
          "numpy": {"kind": str(np_kind), "keys": torch.from_numpy(np_keys.astype(np.int64)),
                    "pos": int(np_pos), "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
          "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return st


def set_rng_state(st: Dict) -> None:
    py = st["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    n = st["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["gauss"]))
    torch.set_rng_state(st["torch"].cpu())
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in st["cuda"]])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def dist_info():
    """(rank, world_size, local_rank) from torchrun's environment."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))
