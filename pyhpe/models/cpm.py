"""Convolutional Pose Machines (Wei et al. 2016): a sequence of stages refining belief maps."""
from __future__ import annotations

from typing import List

import torch
import torch.nn as nn

from .common import init_weights
from .heads import heatmap_model
from .pose_model import PoseModel


def _convs(cin, specs):
    layers = []
    for cout, k in specs:
        layers += [nn.Conv2d(cin, cout, k, 1, k // 2), nn.ReLU(inplace=True)]
        cin = cout
    return nn.Sequential(*layers), cin


class CPM(nn.Module):
    """Backbone ``(B, 3, H, W) -> [(B, K + 1, H/8, W/8)] * num_stages``: every stage's belief
    maps (K keypoints + background). Stage 1 sees the image only; stages t > 1 see shared
    image features and the previous beliefs through large (``large_kernel``) receptive
    fields."""

    stride = 8

    def __init__(self, num_keypoints=17, num_stages=6, channels=128, feat_channels=32,
                 large_kernel=11, background=True):
        super().__init__()
        k_out = num_keypoints + int(background)
        c = channels
        self.num_keypoints = num_keypoints
        self.stem, cs = _convs(3, [(c, 9)])
        self.stem = nn.Sequential(self.stem, nn.MaxPool2d(2), *_convs(cs, [(c, 9)])[0], nn.MaxPool2d(2),
                                  *_convs(c, [(c, 9)])[0], nn.MaxPool2d(2))
        stage1, _ = _convs(c, [(feat_channels, 5), (512 if c >= 128 else c, 9), (512 if c >= 128 else c, 1)])
        self.stage1 = nn.Sequential(stage1, nn.Conv2d(512 if c >= 128 else c, k_out, 1))
        self.features = nn.Sequential(*_convs(c, [(feat_channels, 5)])[0])
        self.stages = nn.ModuleList()
        for _ in range(num_stages - 1):
            body, cb = _convs(feat_channels + k_out, [(c, large_kernel)] * 3 + [(c, 1)])
            self.stages.append(nn.Sequential(body, nn.Conv2d(cb, k_out, 1)))
        init_weights(self)

    def forward(self, x) -> List[torch.Tensor]:
        f0 = self.stem(x)
        beliefs = [self.stage1(f0)]
        feats = self.features(f0)
        for st in self.stages:
            beliefs.append(st(torch.cat([feats, beliefs[-1]], 1)))
        return beliefs


def build(num_keypoints=17, codec=None, *, input_size=(192, 256), joint_weights=None, **arch
          ) -> PoseModel:
    """CPM + a pass-through :class:`HeatmapHead`: the loss sums every stage's K keypoint maps
    (the background belief map is not supervised)."""
    backbone = CPM(num_keypoints, **arch)
    return heatmap_model(backbone, codec, input_size, CPM.stride, num_keypoints=num_keypoints,
                         joint_weights=joint_weights)


CONFIGS = {"paper": dict(num_stages=6, channels=128, feat_channels=32, large_kernel=11),
           "tiny": dict(input_size=(48, 64), num_stages=2, channels=8, feat_channels=8,
                        large_kernel=3)}
