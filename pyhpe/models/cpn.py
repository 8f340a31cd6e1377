"""CPN: Cascaded Pyramid Network (Chen et al., CVPR 2018).

ResNet C2..C5 -> GlobalNet (FPN-style: 1x1 laterals, upsample + 1x1 conv added top-down, and a
heatmap prediction per level upsampled to the stride-4 output) -> RefineNet (per level
``L-1-i`` bottlenecks, upsampled to the output and concatenated, a bottleneck and a 3x3 conv
to the final maps). Layer layout of the authors' code (tf-cpn): BN on every conv but the
top-down merge conv, BN (no activation) on the 3x3 prediction convs.

Loss (tf-cpn): GlobalNet L2 averaged over its L levels and halved (level weights 1 / 2L),
RefineNet L2 with online hard keypoint mining (top 8 of 17) against the finest target.
GlobalNet level ``i`` (coarse -> fine) is supervised by the Gaussian of ``sigmas[i]``
(kernels 15, 11, 9, 7 at 256x192: the wider targets on the coarser levels, the paper's
intent; tf-cpn's released code zips them in the reversed order, kept there "for
reproduction of our pre-trained model"; ``global_targets="released"``). tf-cpn zeroes GlobalNet targets of keypoints with
v = 1; here every labelled keypoint is weighted by the codec's ``keypoint_weights``.
"""
from __future__ import annotations

from typing import List, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..codecs.multilevel import CPN_SIGMAS, MultiLevelHeatmap, sigma_from_kernel
from .common import ResNet, heatmap_size, init_weights
from .heads.heatmap import check_map_size
from .heads.multistage import MultiLevelHead
from .pose_model import PoseModel


def _conv_bn(cin, cout, k=1, relu=True):
    layers = [nn.Conv2d(cin, cout, k, 1, k // 2, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, *([nn.ReLU(inplace=True)] if relu else []))


def _predictor(cin, num_keypoints, norm: bool):
    """3x3 conv to the maps: + BN as the official code (``norm``), else a biased conv with
    small initial weights (maps near zero at the start, as SimpleBaseline's final layer)."""
    if norm:
        return nn.Sequential(nn.Conv2d(cin, num_keypoints, 3, 1, 1, bias=False),
                             nn.BatchNorm2d(num_keypoints))
    conv = nn.Conv2d(cin, num_keypoints, 3, 1, 1)
    conv.is_final = True
    return conv


def _small_init(module):
    for m in module.modules():
        if getattr(m, "is_final", False):
            nn.init.normal_(m.weight, std=0.001)
            nn.init.zeros_(m.bias)


def _up(x, size):
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


class RefineBottleneck(nn.Module):
    """pytorch-cpn's RefineNet bottleneck (expansion 2, 1x1 projection when the width changes)."""

    expansion = 2

    def __init__(self, cin, planes):
        super().__init__()
        cout = planes * self.expansion
        self.body = nn.Sequential(_conv_bn(cin, planes, 1), _conv_bn(planes, planes, 3),
                                  _conv_bn(planes, cout, 1, relu=False))
        self.skip = nn.Identity() if cin == cout else _conv_bn(cin, cout, 1, relu=False)

    def forward(self, x):
        return F.relu(self.body(x) + self.skip(x))


class GlobalNet(nn.Module):
    """``[C2..C5]`` -> (level features coarse -> fine, level heatmaps coarse -> fine)."""

    def __init__(self, in_channels: Sequence[int], num_keypoints: int, channels: int = 256,
                 pred_norm: bool = True):
        super().__init__()
        ins = list(in_channels)[::-1]                    # coarse -> fine
        self.laterals = nn.ModuleList([_conv_bn(c, channels, 1) for c in ins])
        # tf-cpn's merge conv after the upsampling: 1x1 with a bias, no BN
        self.ups = nn.ModuleList([nn.Conv2d(channels, channels, 1)
                                  for _ in range(len(ins) - 1)])
        self.predicts = nn.ModuleList([nn.Sequential(
            _conv_bn(channels, channels, 1), _predictor(channels, num_keypoints, pred_norm))
            for _ in ins])

    def forward(self, feats: List[torch.Tensor], out_size):
        feats, prev, outs, maps = feats[::-1], None, [], []
        for i, (x, lat) in enumerate(zip(feats, self.laterals)):
            f = lat(x)
            if prev is not None:
                f = f + self.ups[i - 1](_up(prev, f.shape[-2:]))
            prev = f
            outs.append(f)
            maps.append(_up(self.predicts[i](f), out_size))
        return outs, maps


class RefineNet(nn.Module):
    def __init__(self, num_levels: int, num_keypoints: int, channels: int = 256, planes: int = 128,
                 pred_norm: bool = True):
        super().__init__()
        width = planes * RefineBottleneck.expansion
        self.cascades = nn.ModuleList()
        for i in range(num_levels):
            blocks, cin = [], channels
            for _ in range(num_levels - 1 - i):
                blocks.append(RefineBottleneck(cin, planes))
                cin = width
            self.cascades.append(nn.Sequential(*blocks))
        cat = sum(width if num_levels - 1 - i > 0 else channels for i in range(num_levels))
        self.final = nn.Sequential(RefineBottleneck(cat, planes),
                                   _predictor(width, num_keypoints, pred_norm))

    def forward(self, feats, out_size):
        return self.final(torch.cat([_up(c(f), out_size) for f, c in zip(feats, self.cascades)], 1))


class CPN(nn.Module):
    """``(B, 3, H, W) -> [GlobalNet maps coarse -> fine..., RefineNet maps]``, each
    ``(B, K, H/4, W/4)``."""

    stride = 4

    def __init__(self, num_keypoints=17, depth=50, layers=None, widths=(64, 128, 256, 512),
                 block=None, stem_channels=64, channels=256, refine_planes=128, pred_norm=True):
        super().__init__()
        self.resnet = ResNet(depth, layers, widths, block, stem_channels)
        if len(self.resnet.stages) < 2:
            raise ValueError("CPN: the ResNet needs at least two stages")
        ins = [type(st[-1]).expansion * w for st, w in zip(self.resnet.stages, widths)]
        self.num_levels = len(ins)
        self.global_net = GlobalNet(ins, num_keypoints, channels, pred_norm)
        self.refine_net = RefineNet(len(ins), num_keypoints, channels, refine_planes, pred_norm)
        for m in (self.global_net, self.refine_net):
            init_weights(m)
            _small_init(m)

    def forward(self, x) -> List[torch.Tensor]:
        feats = self.resnet(x, return_all=True)
        size = feats[0].shape[-2:]                       # C2: stride 4
        gfeats, maps = self.global_net(feats, size)
        return maps + [self.refine_net(gfeats, size)]


#: tf-cpn's GlobalNet target kernels (coarse -> fine) per input size ``(w, h)`` (the
#: ``gk15 .. gk7`` of models/COCO.res50.{256x192,384x288}.CPN/config.py); other sizes use
#: the 256x192 kernels.
CPN_KERNELS = {(192, 256): (15, 11, 9, 7), (288, 384): (23, 17, 13, 9)}


def cpn_sigmas(input_size) -> tuple:
    """The CPN target sigmas (coarse -> fine) for ``input_size = (w, h)``."""
    if tuple(int(v) for v in input_size) not in CPN_KERNELS:
        return CPN_SIGMAS
    return tuple(round(sigma_from_kernel(k), 4) for k in CPN_KERNELS[tuple(int(v) for v in input_size)])


def build(num_keypoints=17, codec=None, *, input_size=(192, 256), topk=8, joint_weights=None,
          global_targets: str = "paper", **arch) -> PoseModel:
    """CPN + a :class:`MultiLevelHead`: L2 on the GlobalNet levels, weighted 1 / 2L each
    (``loss_heatmap``), and OHKM L2 on the RefineNet output (``loss_ohkm``). Without a codec: a
    :class:`MultiLevelHeatmap` with the CPN sigmas at ``input_size``. ``global_targets``:
    ``"paper"`` (the coarsest GlobalNet level gets the widest target) or ``"released"``
    (tf-cpn's network.py as released: the finest level gets the widest target, kept there to
    reproduce its pre-trained models)."""
    if global_targets not in ("paper", "released"):
        raise ValueError(f"CPN: 'global_targets' must be 'paper' or 'released', got {global_targets!r}")
    net = CPN(num_keypoints, **arch)
    L = net.num_levels
    if codec is None:
        base = cpn_sigmas(input_size)
        sig = base[-L:] if L <= len(base) else base[:1] * (L - 4) + base
        codec = MultiLevelHeatmap(input_size, heatmap_size(input_size, CPN.stride), sig)
    check_map_size(codec, CPN.stride, "CPN")
    n = getattr(codec, "num_levels", 1)
    levels = [max(n - L + i, 0) for i in range(L)]
    if global_targets == "released":
        levels = levels[::-1]
    levels = levels + [n - 1]
    head = MultiLevelHead(codec, levels, [False] * L + [True], [0.5 / L] * L + [1.0], topk=topk,
                          num_keypoints=num_keypoints, joint_weights=joint_weights)
    return PoseModel(net, head)


CONFIGS = {
    "paper": dict(depth=50),                            # CPN ResNet-50 256x192
    "paper_384": dict(input_size=(288, 384), depth=50), # CPN ResNet-50 384x288
    "r101": dict(depth=101),
    "tiny": dict(input_size=(48, 64), depth=18, layers=[1, 1, 1, 1], widths=(8, 16, 24, 32),
                 stem_channels=8, channels=16, refine_planes=8, pred_norm=False),
}
