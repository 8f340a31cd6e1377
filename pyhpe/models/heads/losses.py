"""The heads' losses, in mmpose 1.x form (one home; heads import from here)."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def _expand(weights: Tensor, like: Tensor) -> Tensor:
    w = weights.to(like.dtype)
    return w.reshape(w.shape + (1,) * (like.dim() - w.dim()))


def keypoint_mse_loss(pred: Tensor, target: Tensor, weights: Optional[Tensor] = None) -> Tensor:
    """mmpose ``KeypointMSELoss(use_target_weight=True)``: the plain mean over B, K, H, W of
    ``w_k (pred - target)^2``."""
    d = (pred.float() - target.float()) ** 2
    if weights is not None:
        d = d * _expand(weights.float(), d)
    return d.mean()


def kl_discret_loss(preds: Sequence[Tensor], targets: Sequence[Tensor], weights: Optional[Tensor],
                    beta: float = 10.0, label_softmax: bool = True, label_beta: float = 10.0) -> Tensor:
    """mmpose ``KLDiscretLoss`` (RTMPose: ``beta=10, label_softmax=True``): per axis
    ``KL(labels || softmax(beta * logits))`` averaged over the bins, weighted per keypoint,
    summed over the batch and divided by K."""
    K = preds[0].shape[1]
    loss = preds[0].new_zeros((), dtype=torch.float32)
    for pred, target in zip(preds, targets):
        logp = F.log_softmax(pred.float() * beta, dim=-1)
        t = target.float()
        if label_softmax:
            t = F.softmax(t * label_beta, dim=-1)
        per = F.kl_div(logp, t, reduction="none").mean(-1)
        if weights is not None:
            per = per * weights.float()
        loss = loss + per.sum()
    return loss / K


_COORDINATE_LOSSES = {"l1": F.l1_loss, "smooth_l1": F.smooth_l1_loss, "mse": F.mse_loss}


def check_coordinate_loss(kind: str, who: str) -> str:
    """``kind`` if :func:`coordinate_loss` knows it, else a ValueError naming ``who``."""
    if kind not in _COORDINATE_LOSSES:
        raise ValueError(f"{who}: unknown loss {kind!r}; use 'l1', 'smooth_l1' or 'mse'")
    return kind


def coordinate_loss(pred: Tensor, target: Tensor, weights: Optional[Tensor], kind: str = "l1"
                    ) -> Tensor:
    """mmpose ``L1Loss`` / ``SmoothL1Loss`` / ``MSELoss`` with ``use_target_weight``: the mean
    over every coordinate of ``loss(w * pred, w * target)``."""
    p, t = pred.float(), target.float()
    if weights is not None:
        w = _expand(weights.float(), p)
        p, t = p * w, t * w
    return _COORDINATE_LOSSES[check_coordinate_loss(kind, "coordinate_loss")](p, t)


def weighted_mean(values: Tensor, weights: Tensor) -> Tensor:
    """``sum(w v) / max(sum w, 1)`` over (B, K)."""
    w = weights.to(values.dtype)
    return (values * w).sum() / w.sum().clamp_min(1.0)


def js_divergence(p: Tensor, q: Tensor, eps: float = 1e-24) -> Tensor:
    """Jensen-Shannon divergence ``(B, K)`` between unit-sum maps ``(B, K, H, W)``
    (dsntnn ``js_reg_losses``)."""
    m = 0.5 * (p + q)

    def kl(a, b):
        return (a * ((a + eps).log() - (b + eps).log())).sum((-2, -1))

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def bone_length_loss(pred: Tensor, target: Tensor, bones) -> Tensor:
    """Mean absolute difference of bone lengths of ``(B, K, 3)`` poses."""
    idx = torch.as_tensor(bones, device=pred.device, dtype=torch.long).reshape(-1, 2)
    lp = (pred[:, idx[:, 0]] - pred[:, idx[:, 1]]).norm(dim=-1)
    lt = (target[:, idx[:, 0]] - target[:, idx[:, 1]]).norm(dim=-1)
    return (lp - lt).abs().mean()


def bone_vector_loss(pred: Tensor, target: Tensor, bones, weights: Optional[Tensor] = None
                     ) -> Tensor:
    """2-D bone (limb-vector) loss: ``sum_b w_b |(p_j - p_i) - (t_j - t_i)|_1 / max(sum_b w_b,
    1)`` over the bones ``(i, j)`` of ``(B, K, D)`` poses; a bone's weight is the product of
    its two keypoint weights ``(B, K)`` (all ones when ``weights`` is None). Zero for perfect
    predictions; differentiable in ``pred``."""
    idx = torch.as_tensor(bones, device=pred.device, dtype=torch.long).reshape(-1, 2)
    if idx.numel() == 0:
        return pred.sum() * 0
    vp = pred[:, idx[:, 1]] - pred[:, idx[:, 0]]
    vt = (target[:, idx[:, 1]] - target[:, idx[:, 0]]).to(pred.dtype)
    per = (vp - vt).abs().sum(-1)                                   # (B, L)
    if weights is None:
        w = torch.ones_like(per)
    else:
        w = (weights[:, idx[:, 0]] * weights[:, idx[:, 1]]).to(per.dtype)
    return (per * w).sum() / w.sum().clamp_min(1.0)
