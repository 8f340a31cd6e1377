"""SimCC / RTMPose-like model: a CNN backbone and a SimCC head classifying x and y separately."""
from __future__ import annotations

import torch
import torch.nn as nn

from .common import ResNet, conv_bn_act


class SimCCHead(nn.Module):
    """RTMPose head without the GAU: a large-kernel conv to K channels, flatten each keypoint's
    map, an MLP to ``hidden`` features, then two linear classifiers over ``round(W * r)`` x bins
    and ``round(H * r)`` y bins (r = ``split_ratio``)."""

    def __init__(self, cin, feat_hw, num_keypoints, input_size, split_ratio=2.0, hidden=256,
                 kernel=7):
        super().__init__()
        self.conv = nn.Conv2d(cin, num_keypoints, kernel, 1, kernel // 2)
        fh, fw = feat_hw
        self.mlp = nn.Sequential(nn.Linear(fh * fw, hidden), nn.LayerNorm(hidden), nn.SiLU())
        self.cls_x = nn.Linear(hidden, int(round(input_size[0] * split_ratio)))
        self.cls_y = nn.Linear(hidden, int(round(input_size[1] * split_ratio)))

    def forward(self, f):
        z = self.mlp(self.conv(f).flatten(2))
        return self.cls_x(z), self.cls_y(z)


class RTMPoseLike(nn.Module):
    """``(B, 3, H, W) -> ((B, K, W r), (B, K, H r))`` SimCC logits for ``input_size=(W, H)``."""

    output_kind = "simcc"

    def __init__(self, num_keypoints=17, input_size=(192, 256), split_ratio=2.0, depth=50,
                 layers=None, widths=(64, 128, 256, 512), stem_channels=64, hidden=256):
        super().__init__()
        self.input_size = tuple(input_size)
        self.split_ratio = split_ratio
        self.backbone = ResNet(depth, layers, widths, stem_channels=stem_channels)
        with torch.no_grad():  # the feature-map size fixes the MLP's input width
            was = self.backbone.training
            feat = tuple(self.backbone.eval()(torch.zeros(1, 3, input_size[1], input_size[0])).shape[-2:])
            self.backbone.train(was)
        self.head = SimCCHead(self.backbone.out_channels, feat, num_keypoints, input_size,
                              split_ratio, hidden)

    def forward(self, x):
        return self.head(self.backbone(x))


CONFIGS = {"paper": dict(input_size=(192, 256), depth=50, hidden=256),
           "tiny": dict(input_size=(48, 64), depth=18, layers=[1, 1, 1, 1], widths=(8, 16, 32, 32),
                        stem_channels=8, hidden=32)}
