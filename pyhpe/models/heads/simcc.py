"""SimCCHead (RTMPose without the GAU)."""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import torch.nn as nn
from torch import Tensor

from ...codecs import SimCCLabel
from .base import BaseHead
from .losses import kl_discret_loss


class SimCCHead(BaseHead):
    """A ``kernel`` x ``kernel`` conv to K channels, each keypoint's flattened map through an
    MLP to ``hidden`` features, then linear classifiers over the codec's x and y bins.
    ``feat_hw`` is the backbone's feature size at the codec's input size.
    Loss: mmpose ``KLDiscretLoss(beta, label_softmax, label_beta)`` (RTMPose: 10, True, 10),
    named ``loss_kpt``."""

    def __init__(self, codec: SimCCLabel, in_channels: int, feat_hw: Sequence[int],
                 num_keypoints: int = 17, hidden: int = 256, kernel: int = 7, beta: float = 10.0,
                 label_softmax: bool = True, label_beta: float = 10.0, joint_weights=None):
        if not isinstance(codec, SimCCLabel):
            raise TypeError(f"SimCCHead: 'codec' must be a SimCCLabel, got {type(codec).__name__}")
        super().__init__(codec, joint_weights)
        self.num_keypoints = int(num_keypoints)
        self.beta, self.label_softmax, self.label_beta = float(beta), bool(label_softmax), float(label_beta)
        self.conv = nn.Conv2d(in_channels, num_keypoints, kernel, 1, kernel // 2)
        fh, fw = feat_hw
        self.mlp = nn.Sequential(nn.Linear(fh * fw, hidden), nn.LayerNorm(hidden), nn.SiLU())
        wx, wy = codec.bins
        self.cls_x = nn.Linear(hidden, wx)
        self.cls_y = nn.Linear(hidden, wy)

    def forward(self, feats: Tensor) -> Tuple[Tensor, Tensor]:
        z = self.mlp(self.conv(feats).flatten(2))
        return self.cls_x(z), self.cls_y(z)

    def loss(self, outputs, targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        return {"loss_kpt": kl_discret_loss(outputs, (targets["x_labels"], targets["y_labels"]),
                                            self.keypoint_weights(targets), self.beta,
                                            self.label_softmax, self.label_beta)}
