"""Coarse-to-fine volumetric prediction (Pavlakos, Zhou, Derpanis, Daniilidis, CVPR 2017).

A stacked hourglass whose stack i predicts, for every joint, a volume of ``res_z[i]`` depth
bins over the heatmap plane (the paper's four-stack model: 1, 2, 4, 64 bins): channels
``K * res_z[i]``, joint-major, read as ``(B, K, res_z[i], H, W)``. The stacks follow the
paper's ``hg-stacked-4`` network: a stride-4 stem, hourglasses of three residuals per branch
with 2c-channel outputs, two 1x1 "lin" layers per stack, and between stacks the prediction
(1x1 conv) added to a 1x1 conv of the concatenated features of this and the previous stack
(the stem's pooled features before the second stack). Loss: the paper's L2 to each stack's
target volume (intermediate supervision, summed). Inference: the finest volume decoded by
:func:`pyhpe.ops.soft_argmax_3d` (integral decoding; codec :class:`pyhpe.codecs.volumetric.
VolumetricC2F`).
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..codecs.volumetric import VolumetricC2F
from .common import init_weights
from .heads.base import BaseHead
from .hourglass import _Residual
from .pose_model import PoseModel


class _C2FHourglass(nn.Module):
    """The paper's hourglass: upper branch Res(in, c), Res(c, c), Res(c, out); lower branch
    pool, Res(in, c), Res(c, c), Res(c, c), the inner hourglass (or Res(c, out)),
    Res(out, out), nearest upsampling; the sum."""

    def __init__(self, depth: int, cin: int, cout: int, c: int):
        super().__init__()
        self.up = nn.Sequential(_Residual(cin, c), _Residual(c, c), _Residual(c, cout))
        self.low = nn.Sequential(_Residual(cin, c), _Residual(c, c), _Residual(c, c))
        self.inner = _C2FHourglass(depth - 1, c, cout, c) if depth > 1 else _Residual(c, cout)
        self.low_out = _Residual(cout, cout)

    def forward(self, x):
        up = self.up(x)
        low = self.low_out(self.inner(self.low(F.max_pool2d(x, 2))))
        return up + F.interpolate(low, size=up.shape[-2:], mode="nearest")


def _lin(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class C2FVolumetric(nn.Module):
    """Backbone ``(B, 3, H, W) -> [(B, K, res_z[i], H/4, W/4)]`` for every stack; the input
    may be the image3d task's ``{'image': (B, 3, H, W)}``."""

    stride = 4

    def __init__(self, num_keypoints: int = 17, res_z: Sequence[int] = (1, 2, 4, 64),
                 channels: int = 256, depth: int = 4):
        super().__init__()
        c, K = channels, num_keypoints
        self.num_keypoints, self.res_z = K, tuple(int(r) for r in res_z)
        n = len(self.res_z)
        self.stem = nn.Sequential(nn.Conv2d(3, c // 4, 7, 2, 3), nn.BatchNorm2d(c // 4),
                                  nn.ReLU(inplace=True), _Residual(c // 4, c // 2))
        self.stem_res = nn.Sequential(_Residual(c // 2, c // 2), _Residual(c // 2, c // 2),
                                      _Residual(c // 2, c))
        cins = [c] + [c + c // 2] + [2 * c] * max(n - 2, 0)
        self.hgs = nn.ModuleList(_C2FHourglass(depth, cins[i], 2 * c, c) for i in range(n))
        self.lin1 = nn.ModuleList(_lin(2 * c, 2 * c) for _ in range(n))
        feat = [c] * (n - 1) + [2 * c]  # the last stack keeps 2c features (the paper's l8)
        self.lin2 = nn.ModuleList(_lin(2 * c, feat[i]) for i in range(n))
        self.outs = nn.ModuleList(nn.Conv2d(feat[i], K * r, 1) for i, r in enumerate(self.res_z))
        # merges into stack i + 1 (input channels cins[i + 1])
        self.merge_pred = nn.ModuleList(nn.Conv2d(K * self.res_z[i], cins[i + 1], 1)
                                        for i in range(n - 1))
        self.merge_cat = nn.ModuleList(nn.Conv2d(cins[i + 1], cins[i + 1], 1)
                                       for i in range(n - 1))
        init_weights(self)

    def forward(self, x) -> List[Tensor]:
        if isinstance(x, dict):
            x = x["image"]
        r1 = self.stem(x)
        pooled = F.max_pool2d(r1, 2)
        x = self.stem_res(pooled)
        prev = pooled  # what the first merge concatenates (the stem's pooled features)
        outs = []
        for i, hg in enumerate(self.hgs):
            f = self.lin2[i](self.lin1[i](hg(x)))
            o = self.outs[i](f)
            B, _, H, W = o.shape
            outs.append(o.view(B, self.num_keypoints, self.res_z[i], H, W))
            if i < len(self.hgs) - 1:
                x = self.merge_cat[i](torch.cat([f, prev], 1)) + self.merge_pred[i](o)
                prev = f
        return outs


class VolumetricHead(BaseHead):
    """Pass-through head over the stacks' volumes: the summed L2 to the codec's per-level
    targets (weighted by the keypoint weights), prediction from the finest volume."""

    def forward(self, feats):
        return feats

    def final_outputs(self, outputs):
        return outputs[-1]

    def loss(self, outputs, targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        w = self.keypoint_weights(targets)[..., None, None, None]
        total = 0.0
        for i, out in enumerate(outputs):
            t = targets[f"volumes_{i}"].to(out.dtype)
            total = total + ((out - t) ** 2 * w).mean()
        return {"loss_volume": total}


def build(num_keypoints=17, codec=None, *, input_size=(256, 256), res_z=(1, 2, 4, 64),
          channels=256, depth=4, sigma=2.0, depth_range=2000.0, beta=20.0,
          joint_weights=None) -> PoseModel:
    """The coarse-to-fine network and its head; without a codec, :class:`VolumetricC2F` at
    ``input_size`` (heatmaps a quarter of it) with ``res_z``, ``sigma``, ``depth_range``,
    ``beta``."""
    if codec is None:
        w, h = input_size
        codec = VolumetricC2F(input_size, (w // 4, h // 4), res_z, sigma, depth_range, beta)
    if not isinstance(codec, VolumetricC2F):
        raise ValueError(f"volumetric: needs the 'volumetric' codec, got {type(codec).__name__}")
    if tuple(codec.res_z) != tuple(res_z):
        raise ValueError(f"volumetric: the codec's res_z {codec.res_z} is not the model's "
                         f"{tuple(res_z)}")
    backbone = C2FVolumetric(num_keypoints, res_z, channels, depth)
    return PoseModel(backbone, VolumetricHead(codec, joint_weights=joint_weights))


CONFIGS = {"paper": dict(input_size=(256, 256), res_z=(1, 2, 4, 64), channels=256, depth=4),
           "tiny": dict(input_size=(64, 64), res_z=(1, 4, 16), channels=16, depth=2, sigma=1.0)}
