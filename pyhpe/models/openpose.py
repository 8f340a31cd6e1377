"""OpenPose-style network (Cao et al. 2017/2019): VGG features, then stages predicting Part
Affinity Fields and confidence maps, each stage refining the previous prediction."""
from __future__ import annotations

from typing import List, Tuple

import torch
import torch.nn as nn

from .common import init_weights


def _vgg(cfg):
    layers, c = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c, v, 3, 1, 1), nn.ReLU(inplace=True)]
            c = v
    return nn.Sequential(*layers), c


def _branch(cin, cmid, cout, n, k):
    layers, c = [], cin
    for _ in range(n):
        layers += [nn.Conv2d(c, cmid, k, 1, k // 2), nn.ReLU(inplace=True)]
        c = cmid
    layers += [nn.Conv2d(c, cmid, 1), nn.ReLU(inplace=True), nn.Conv2d(cmid, cout, 1)]
    return nn.Sequential(*layers)


class OpenPoseNet(nn.Module):
    """``(B, 3, H, W) -> (pafs (B, 2L, H/8, W/8), heatmaps (B, K + 1, H/8, W/8))`` of the last
    stage, L = number of limbs (COCO: 19), K + 1 includes the background map.
    :meth:`forward_stages` returns every stage's pair for intermediate supervision."""

    output_kind = "paf"

    def __init__(self, num_keypoints=17, num_limbs=19, num_stages=6,
                 vgg=(64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512),
                 feat_channels=128, stage_channels=128, stage1_kernel=3, refine_kernel=7,
                 refine_convs=5):
        super().__init__()
        self.backbone, c = _vgg(vgg)
        self.reduce = nn.Sequential(nn.Conv2d(c, feat_channels, 3, 1, 1), nn.ReLU(inplace=True))
        P, S = 2 * num_limbs, num_keypoints + 1
        self.paf1 = _branch(feat_channels, stage_channels, P, 3, stage1_kernel)
        self.hm1 = _branch(feat_channels, stage_channels, S, 3, stage1_kernel)
        cin = feat_channels + P + S
        self.paf_refine = nn.ModuleList([_branch(cin, stage_channels, P, refine_convs, refine_kernel)
                                         for _ in range(num_stages - 1)])
        self.hm_refine = nn.ModuleList([_branch(cin, stage_channels, S, refine_convs, refine_kernel)
                                        for _ in range(num_stages - 1)])
        init_weights(self)

    def forward_stages(self, x) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        f = self.reduce(self.backbone(x))
        out = [(self.paf1(f), self.hm1(f))]
        for pr, hr in zip(self.paf_refine, self.hm_refine):
            z = torch.cat([f, *out[-1]], 1)
            out.append((pr(z), hr(z)))
        return out

    def forward(self, x):
        return self.forward_stages(x)[-1]


CONFIGS = {"paper": dict(),
           "tiny": dict(num_stages=2, vgg=(8, "M", 16, "M", 16, "M", 16), feat_channels=16,
                        stage_channels=16, refine_convs=1, refine_kernel=3)}
