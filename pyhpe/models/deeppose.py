"""DeepPose-style direct regression (Toshev & Szegedy 2014) on a ResNet backbone (RLE-free)."""
from __future__ import annotations

import torch
import torch.nn as nn

from .common import ResNet


class DeepPose(nn.Module):
    """``(B, 3, H, W) -> (B, K, 2)`` keypoints normalised to [0, 1] of the input (x / W, y / H).

    Global average pooling and a linear layer, as mmpose's ``RegressionHead``; ``num_stages``
    > 1 adds DeepPose's cascaded refinement (each stage regresses an offset from the pooled
    features concatenated with the previous estimate).
    """

    output_kind = "regression"

    def __init__(self, num_keypoints=17, depth=50, layers=None, widths=(64, 128, 256, 512),
                 stem_channels=64, num_stages=1):
        super().__init__()
        self.backbone = ResNet(depth, layers, widths, stem_channels=stem_channels)
        c = self.backbone.out_channels
        self.k = num_keypoints
        self.head = nn.Linear(c, num_keypoints * 2)
        self.refine = nn.ModuleList([nn.Linear(c + num_keypoints * 2, num_keypoints * 2)
                                     for _ in range(num_stages - 1)])
        for lin in [self.head, *self.refine]:
            nn.init.normal_(lin.weight, std=0.001)
            nn.init.constant_(lin.bias, 0.0)
        nn.init.constant_(self.head.bias, 0.5)

    def forward(self, x):
        f = self.backbone(x).mean(dim=(2, 3))
        out = self.head(f)
        for r in self.refine:
            out = out + r(torch.cat([f, out], 1))
        return out.view(-1, self.k, 2)


CONFIGS = {"paper": dict(depth=50), "tiny": dict(depth=18, layers=[1, 1, 1, 1], widths=(8, 16, 32, 32),
                                                  stem_channels=8, num_stages=2)}
