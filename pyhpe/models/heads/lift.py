"""LiftHead: lifter features -> standardised root-relative 3-D keypoints."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch.nn as nn
from torch import Tensor

from ...codecs import Lift3DCodec
from .base import BaseHead
from .losses import bone_length_loss, coordinate_loss


class LiftHead(BaseHead):
    """A linear layer to ``(B, K, 3)`` standardised 3-D keypoints (Martinez et al. 2017).
    Loss: weighted MSE on the standardised targets (``loss_mse``) plus, with ``bone_weight``
    > 0, the bone-length loss ``| |pred bone| - |gt bone| |`` in metres of the de-standardised
    poses (``loss_bone``) over ``bones`` ((parent, child) pairs)."""

    def __init__(self, codec: Lift3DCodec, in_features: int, bone_weight: float = 0.0,
                 bones: Optional[Sequence[Sequence[int]]] = None, joint_weights=None):
        if not isinstance(codec, Lift3DCodec):
            raise TypeError(f"LiftHead: 'codec' must be a Lift3DCodec, got {type(codec).__name__}")
        super().__init__(codec, joint_weights)
        self.k_out = codec.mean_3d.shape[0]
        self.bone_weight = float(bone_weight)
        if self.bone_weight > 0 and not bones:
            raise ValueError("LiftHead: 'bone_weight' > 0 needs 'bones'")
        self.bones = [tuple(int(v) for v in b) for b in (bones or [])]
        self.out = nn.Linear(in_features, self.k_out * 3)

    def forward(self, feats: Tensor) -> Tensor:
        return self.out(feats).view(feats.shape[0], self.k_out, 3)

    def loss(self, outputs: Tensor, targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        labels = targets["keypoint_labels"]
        losses = {"loss_mse": coordinate_loss(outputs, labels, self.keypoint_weights(targets), "mse")}
        if self.bone_weight > 0:
            pred_m = self.codec.denormalize_3d(outputs.float()) / 1000.0
            gt_m = self.codec.denormalize_3d(labels.float()) / 1000.0
            losses["loss_bone"] = self.bone_weight * bone_length_loss(pred_m, gt_m, self.bones)
        return losses
