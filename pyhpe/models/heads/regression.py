"""RegressionHead (DeepPose): pooled features -> normalised keypoints."""
from __future__ import annotations

from typing import Dict

import torch
import torch.nn as nn
from torch import Tensor

from ...codecs import RegressionLabel
from .base import BaseHead
from .losses import check_coordinate_loss, coordinate_loss


class RegressionHead(BaseHead):
    """Global average pooling and a linear layer to ``(B, K, 2)`` keypoints in [0, 1] (mmpose
    ``RegressionHead``); ``num_stages > 1`` adds DeepPose's cascade (each stage regresses an
    offset from the pooled features and the previous estimate).
    Loss: ``loss`` = 'l1' | 'smooth_l1' | 'mse' with target weights (mmpose L1Loss /
    SmoothL1Loss / MSELoss), named ``loss_kpt``."""

    def __init__(self, codec: RegressionLabel, in_channels: int, num_keypoints: int = 17,
                 num_stages: int = 1, loss: str = "l1", joint_weights=None):
        if not isinstance(codec, RegressionLabel):
            raise TypeError(f"RegressionHead: 'codec' must be a RegressionLabel, got "
                            f"{type(codec).__name__}")
        super().__init__(codec, joint_weights)
        self.loss_kind = check_coordinate_loss(loss, "RegressionHead")
        self.k = int(num_keypoints)
        self.fc = nn.Linear(in_channels, self.k * 2)
        self.refine = nn.ModuleList([nn.Linear(in_channels + self.k * 2, self.k * 2)
                                     for _ in range(num_stages - 1)])
        for lin in [self.fc, *self.refine]:
            nn.init.normal_(lin.weight, std=0.001)
            nn.init.constant_(lin.bias, 0.0)
        nn.init.constant_(self.fc.bias, 0.5)   # start at the input's centre

    def forward(self, feats: Tensor) -> Tensor:
        f = feats.mean(dim=(2, 3)) if feats.dim() == 4 else feats
        out = self.fc(f)
        for r in self.refine:
            out = out + r(torch.cat([f, out], 1))
        return out.view(-1, self.k, 2)

    def loss(self, outputs: Tensor, targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        return {"loss_kpt": coordinate_loss(outputs, targets["keypoint_labels"],
                                            self.keypoint_weights(targets), self.loss_kind)}
