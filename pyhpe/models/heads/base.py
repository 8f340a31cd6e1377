"""BaseHead: a head owns its codec, its loss and its prediction."""
from __future__ import annotations

import functools
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
from torch import Tensor

from ...codecs import Codec


def average_outputs(a, b):
    """Mean of two outputs of the same structure (tensor, or tuple / NamedTuple of tensors)."""
    if isinstance(a, Tensor):
        return (a.float() + b.float()) / 2
    return type(a)(*[average_outputs(x, y) for x, y in zip(a, b)]) if hasattr(a, "_fields") \
        else type(a)(average_outputs(x, y) for x, y in zip(a, b))


class BaseHead(nn.Module):
    """``forward(feats) -> outputs`` (multi-stage heads return every stage, a list),
    ``loss(outputs, targets) -> {name: loss}`` (the engine sums them) and
    ``predict(outputs, flipped_outputs=None, flip_index=None) -> (keypoints, scores)``
    through ``self.codec``.

    ``joint_weights`` (K,) (e.g. ``KeypointSet.joint_weights``) multiply the codec's
    ``keypoint_weights`` inside the loss.

    Bone loss (every head, one place; attributes ``limb_*`` so that heads keep their own
    ``bone_*``): after :meth:`set_bone_loss` with a positive weight,
    every subclass's ``loss`` also returns ``loss_bone = limb_weight *``
    :func:`~pyhpe.models.heads.losses.bone_vector_loss` between the predicted and the
    ground-truth limb vectors, in fractions of the input (:meth:`limb_coords`).
    """

    limb_weight: float = 0.0     # the 2-D bone loss (set_bone_loss); 0: off
    limbs = None
    limb_beta: float = 10.0

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "loss" not in cls.__dict__:
            return
        orig = cls.__dict__["loss"]

        @functools.wraps(orig)
        def loss(self, outputs, targets, *args, **kw):
            if not self.limb_weight or getattr(self, "_in_loss", False):
                return orig(self, outputs, targets, *args, **kw)
            self._in_loss = True
            try:
                losses = dict(orig(self, outputs, targets, *args, **kw))
            finally:
                self._in_loss = False
            if "loss_bone" in losses:
                raise RuntimeError(f"{type(self).__name__}: its loss already has 'loss_bone'")
            losses["loss_bone"] = self.limb_loss(outputs, targets)
            return losses

        cls.loss = loss

    def __init__(self, codec: Codec, joint_weights=None):
        super().__init__()
        if not isinstance(codec, Codec):
            raise TypeError(f"{type(self).__name__}: 'codec' must be a pyhpe.codecs.Codec, got "
                            f"{type(codec).__name__}")
        self.codec = codec
        jw = None if joint_weights is None else torch.as_tensor(joint_weights, dtype=torch.float32)
        self.register_buffer("joint_weights", jw, persistent=False)

    def keypoint_weights(self, targets: Dict[str, Tensor]) -> Tensor:
        w = targets["keypoint_weights"].float()
        if self.joint_weights is not None:
            if self.joint_weights.numel() != w.shape[-1]:
                raise ValueError(f"{type(self).__name__}: {self.joint_weights.numel()} joint "
                                 f"weights for {w.shape[-1]} keypoints")
            w = w * self.joint_weights.to(w.device)
        return w

    def loss(self, outputs, targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        raise NotImplementedError

    # ---- bone loss ---------------------------------------------------------------------
    def set_bone_loss(self, weight: float, bones=None, beta: float = 10.0) -> None:
        """Enable the 2-D bone loss: ``weight`` (0 disables), ``bones`` ``[(i, j), ...]``
        (the keypoint set's skeleton, given by the task), ``beta`` the soft-argmax
        sharpness used to decode heatmaps differentiably."""
        weight = float(weight)
        if weight < 0:
            raise ValueError(f"{type(self).__name__}: bone_weight must be >= 0, got {weight}")
        if weight and not bones:
            raise ValueError(f"{type(self).__name__}: the bone loss needs 'bones'")
        self.limb_weight = weight
        self.limbs = None if bones is None else [tuple(int(i) for i in b) for b in bones]
        self.limb_beta = float(beta)

    def limb_coords(self, outputs, num_keypoints: int) -> Tensor:
        """Differentiable ``(B, K, 2)`` keypoints in fractions of the input from the final
        outputs: ``(B, K, 2)`` coordinates as they are (regression heads predict fractions);
        ``(B, K, H, W)`` maps through :func:`pyhpe.ops.soft_argmax` (``beta=limb_beta``),
        ``(x + 0.5) / W`` (integral heads decode with their codec's ``decode_logits``); a pair of ``(B, K, L)`` 1-D logits (SimCC) by the expectation of
        their softmax, ``(x + 0.5) / L``. Subclasses may override (integral heads)."""
        from ...ops import soft_argmax
        out = self.final_outputs(outputs)
        if isinstance(out, Tensor) and out.dim() == 3 and out.shape[-1] == 2:
            return out[:, :num_keypoints]
        if isinstance(out, Tensor) and out.dim() == 4:
            maps = out[:, :num_keypoints]
            h, w = maps.shape[-2:]
            if hasattr(self.codec, "decode_logits"):      # integral heads: their coordinates
                xy = self.codec.decode_logits(maps)
            else:
                xy = soft_argmax(maps, beta=self.limb_beta)
            size = torch.tensor([w, h], dtype=xy.dtype, device=xy.device)
            return (xy + 0.5) / size
        if isinstance(out, (tuple, list)) and len(out) == 2 and all(
                isinstance(t, Tensor) and t.dim() == 3 for t in out):
            coords = []
            for t in out:
                t = t[:, :num_keypoints]
                L = t.shape[-1]
                p = torch.softmax(t * self.limb_beta, dim=-1)
                grid = torch.arange(L, dtype=p.dtype, device=p.device)
                coords.append(((p * grid).sum(-1) + 0.5) / L)
            return torch.stack(coords, -1)
        raise TypeError(f"{type(self).__name__}: the bone loss cannot decode outputs of type "
                        f"{type(out).__name__}; override limb_coords")

    def limb_loss(self, outputs, targets: Dict[str, Tensor]) -> Tensor:
        """``limb_weight`` times the L1 limb-vector loss (fractions of the input). The ground
        truth is ``targets['keypoints_frac']`` (``(B, K, 2)`` keypoints / input size, which
        the top-down task adds when the bone loss is on), else ``keypoint_labels`` of a
        regression codec."""
        from .losses import bone_vector_loss
        w = targets["keypoint_weights"].float()
        if "keypoints_frac" in targets:
            gt = targets["keypoints_frac"]
        elif getattr(self.codec, "name", None) == "regression":
            gt = targets["keypoint_labels"]
        else:
            raise KeyError(f"{type(self).__name__}: the bone loss needs targets['keypoints_frac']")
        pred = self.limb_coords(outputs, gt.shape[1])
        return self.limb_weight * bone_vector_loss(pred, gt.to(pred.dtype), self.limbs, w)

    def final_outputs(self, outputs):
        """What prediction decodes: the last stage of a multi-stage head."""
        return outputs

    def predict(self, outputs, flipped_outputs=None, flip_index: Optional[Sequence[int]] = None):
        outputs = self.final_outputs(outputs)
        if flipped_outputs is not None:
            back = self.codec.flip_back(self.final_outputs(flipped_outputs), flip_index)
            outputs = average_outputs(outputs, back)
        return self.codec.decode(outputs)
