"""Lite Pose (Wang et al. 2022): an efficient single-branch bottom-up network (MobileNetV2-style
inverted residuals with large kernels, fusion deconvolutions).

The backbone and the fusion deconvolutions follow the official code
(github.com/mit-han-lab/litepose ``lib/models/pose_mobilenet.py``, architectures
``mobile_configs/search-{XS,S,M,L}.json``) module for module. Two heads:

* a heatmap model (backbone + :class:`HeatmapHead` at stride 4, K maps, multi-person targets
  from a heatmap codec) with the first two fusion deconvolutions (configs ``paper``, ``xs``,
  ``s``, ``m``, ``l``, ``tiny``);
* the official associative-embedding model (configs ``*_ae``, or any config given an
  :class:`~pyhpe.codecs.AssociativeEmbedding` codec): all three fusion deconvolutions and the
  official final layers, a 5x5 separable conv (depthwise, BN, ReLU, 1x1) of the refined plus
  one of the raw features after the second and the third deconvolution, giving K heatmaps +
  K tags at stride 4 and K heatmaps at stride 2, trained like HigherHRNet (heatmap MSE at both
  resolutions, the pull/push tag loss at stride 4: the official ``LOSS`` section) and decoded
  by tag grouping (:class:`LitePoseAEHead`).
"""
from __future__ import annotations

from typing import List, Tuple

import torch.nn as nn
from torch import Tensor

from ..codecs import AEOutputs, AssociativeEmbedding
from .common import heatmap_size, init_weights
from .heads import AssociativeEmbeddingHead, heatmap_model
from .pose_model import PoseModel


def _make_divisible(v, divisor=8):
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _conv_bn_relu6(cin, cout, k=3, s=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """Lite Pose's InvBottleneck: 1x1 expansion (ReLU6), k x k depthwise conv (ReLU6), 1x1
    projection; residual when the shape is kept."""

    def __init__(self, cin, cout, stride, expand, kernel):
        super().__init__()
        mid = _make_divisible(round(cin * expand))
        self.inv = _conv_bn_relu6(cin, mid, 1)
        self.depth_conv = _conv_bn_relu6(mid, mid, kernel, stride, groups=mid)
        self.point_conv = nn.Sequential(nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.use_res = stride == 1 and cin == cout

    def forward(self, x):
        y = self.point_conv(self.depth_conv(self.inv(x)))
        return x + y if self.use_res else y


class LitePose(nn.Module):
    """Backbone ``(B, 3, H, W) -> (B, C, H/s, W/s)`` features.

    ``first``: a stride-2 3x3 conv to 32 channels, a depthwise 3x3 conv and a 1x1 projection to
    ``stem_channels``; ``stages`` lists (channels, blocks, stride) of inverted residuals
    (``expand``, ``kernel``). Fusion deconvolutions (``deconv_channels``): step i upsamples the
    refined features and, by a second deconvolution, the raw features of the stage i + 1 from
    the end, sums them, then BN + ReLU (the last stage must keep its input's resolution, as
    Lite Pose's stride-1 last stage does). ``s`` is the backbone's stride / 2 ** deconvs.
    """

    def __init__(self, stem_channels=16,
                 stages=((16, 6, 2), (32, 8, 2), (48, 10, 2), (120, 10, 1)), expand=6, kernel=7,
                 deconv_channels=(32, 24)):
        super().__init__()
        self.first = nn.Sequential(_conv_bn_relu6(3, 32, 3, 2), _conv_bn_relu6(32, 32, 3, 1, groups=32),
                                   nn.Conv2d(32, stem_channels, 1, bias=False), nn.BatchNorm2d(stem_channels))
        channels, cin, stride = [stem_channels], stem_channels, 2
        self.channels = channels
        self.stage = nn.ModuleList()
        for c, n, s in stages:
            blocks = []
            for i in range(n):
                blocks.append(InvertedResidual(cin, c, s if i == 0 else 1, expand, kernel))
                cin = c
            self.stage.append(nn.Sequential(*blocks))
            channels.append(c)
            stride *= s
        if len(deconv_channels) > len(channels) - 2:
            raise ValueError(f"LitePose: {len(deconv_channels)} fusion deconvolutions need at least "
                             f"{len(deconv_channels) + 1} stages")
        self.deconv_refined, self.deconv_raw = nn.ModuleList(), nn.ModuleList()
        self.deconv_bnrelu = nn.ModuleList()
        c = channels[-1]
        for i, dc in enumerate(deconv_channels):
            self.deconv_refined.append(nn.ConvTranspose2d(c, dc, 4, 2, 1, bias=False))
            self.deconv_raw.append(nn.ConvTranspose2d(channels[-i - 2], dc, 4, 2, 1, bias=False))
            self.deconv_bnrelu.append(nn.Sequential(nn.BatchNorm2d(dc), nn.ReLU(inplace=True)))
            c = dc
            stride //= 2
        self.stride = stride
        self.out_channels = c
        init_weights(self)

    def fusion_levels(self, x) -> List[Tuple[Tensor, Tensor]]:
        """After each fusion deconvolution: (refined features, the raw stage features of the
        same resolution)."""
        xs = [self.first(x)]
        for st in self.stage:
            xs.append(st(xs[-1]))
        refined, raw = xs[-1], xs[-2]
        levels = []
        for i, (dr, dw, bn) in enumerate(zip(self.deconv_refined, self.deconv_raw, self.deconv_bnrelu)):
            refined = bn(dr(refined) + dw(raw))
            raw = xs[-i - 3]
            levels.append((refined, raw))
        return levels

    def forward(self, x):
        return self.fusion_levels(x)[-1][0]


class LitePoseLevels(LitePose):
    """The backbone of the associative-embedding model: ``forward`` returns the (refined, raw)
    feature pairs after every fusion deconvolution but the first (the official outputs)."""

    def forward(self, x):
        return self.fusion_levels(x)[1:]

    def level_channels(self) -> List[Tuple[int, int]]:
        """(refined, raw) channels of each level of :meth:`forward`."""
        dc = [m.out_channels for m in self.deconv_refined]
        return [(dc[i], self.channels[-i - 3]) for i in range(1, len(dc))]


class _SepConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int = 5):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(cin, cin, kernel, 1, kernel // 2, groups=cin, bias=False),
                                  nn.BatchNorm2d(cin), nn.ReLU(inplace=True),
                                  nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x):
        return self.conv(x)


class LitePoseAEHead(AssociativeEmbeddingHead):
    """The official final layers: for each level (refined, raw) of :class:`LitePoseLevels`,
    ``final_refined[j](refined) + final_raw[j](raw)`` with 5x5 separable convs; level 0 gives
    K heatmaps + tags, the others K heatmaps. Loss and inference:
    :class:`~pyhpe.models.heads.AssociativeEmbeddingHead`."""

    def __init__(self, codec: AssociativeEmbedding, level_channels, num_keypoints: int = 17,
                 tag_dim: int = 1, tag_per_keypoint: bool = True, final_kernel: int = 5,
                 **loss_options):
        super().__init__(codec, None, num_keypoints, tag_dim, tag_per_keypoint,
                         build_layers=False, **loss_options)
        self.final_refined, self.final_raw = nn.ModuleList(), nn.ModuleList()
        for j, (c_ref, c_raw) in enumerate(level_channels):
            cout = self.num_keypoints + (self.tag_channels if j == 0 else 0)
            self.final_refined.append(_SepConv2d(c_ref, cout, final_kernel))
            self.final_raw.append(_SepConv2d(c_raw, cout, final_kernel))
        init_weights(self)
        for sep in (*self.final_refined, *self.final_raw):
            nn.init.normal_(sep.conv[3].weight, std=0.001)   # small initial maps, as the heads
        self.check_codec("LitePoseAEHead")

    @property
    def num_levels(self) -> int:
        return len(self.final_refined)

    def forward(self, levels) -> List[AEOutputs]:
        return [self.split(fr(refined) + fw(raw)) for (refined, raw), fr, fw
                in zip(levels, self.final_refined, self.final_raw)]


def build(num_keypoints=17, codec=None, *, input_size=(448, 448), joint_weights=None,
          tags: bool = False, tag_dim: int = 1, sigma: float = 2.0,
          heatmap_loss_weights=(1.0,), tag_loss_weight: float = 1e-3,
          push_loss_factor: float = 0.5, loss_type: str = "exp", push_self_pairs: bool = True,
          tag_loss_reduction: str = "sum", restore_size: bool = True, **arch) -> PoseModel:
    """The heatmap model, or with ``tags`` (or an AssociativeEmbedding codec) the official
    associative-embedding model; without a codec that one gets an AssociativeEmbedding codec
    at stride 4 with a stride-2 extra target (``sigma`` map pixels, the official ``SIGMA: 2``).
    The loss options are :class:`~pyhpe.models.heads.AssociativeEmbeddingHead`'s."""
    if tags or isinstance(codec, AssociativeEmbedding):
        backbone = LitePoseLevels(**arch)
        levels = backbone.level_channels()
        if not levels:
            raise ValueError("litepose: the associative-embedding model needs at least two "
                             "fusion deconvolutions ('deconv_channels')")
        if codec is None:
            strides = [backbone.stride * 2 ** (len(levels) - 1 - j) for j in range(len(levels))]
            sizes = [heatmap_size(input_size, s) for s in strides]
            codec = AssociativeEmbedding(input_size, sizes[0], sigma=sigma,
                                         extra_heatmap_sizes=sizes[1:])
        head = LitePoseAEHead(codec, levels, num_keypoints, tag_dim,
                              heatmap_loss_weights=heatmap_loss_weights,
                              tag_loss_weight=tag_loss_weight, push_loss_factor=push_loss_factor,
                              loss_type=loss_type, push_self_pairs=push_self_pairs,
                              tag_loss_reduction=tag_loss_reduction, restore_size=restore_size,
                              joint_weights=joint_weights)
        return PoseModel(backbone, head)
    backbone = LitePose(**arch)
    return heatmap_model(backbone, codec, input_size, backbone.stride,
                         in_channels=backbone.out_channels, num_keypoints=num_keypoints,
                         joint_weights=joint_weights)


def _search(stem, channels, deconv, size):
    """An official ``search-*.json`` architecture: 6/8/10/10 blocks, expansion 6, 7x7 kernels;
    the heatmap model uses the first two of its three fusion deconvolutions (stride 4), the
    associative-embedding model (``tags``) all three."""
    return dict(input_size=(size, size), stem_channels=stem, expand=6, kernel=7,
                stages=tuple(zip(channels, (6, 8, 10, 10), (2, 2, 2, 1))),
                deconv_channels=deconv)


def _ae(cfg, third):
    return dict(cfg, tags=True, deconv_channels=tuple(cfg["deconv_channels"]) + (third,))


CONFIGS = {"paper": _search(16, (16, 32, 48, 120), (32, 24), 448),   # LitePose-S
           "xs": _search(16, (16, 32, 48, 80), (16, 24), 256),
           "s": _search(16, (16, 32, 48, 120), (32, 24), 448),
           "m": _search(16, (24, 48, 72, 120), (64, 40), 448),
           "l": _search(24, (24, 64, 96, 160), (64, 40), 512),
           "tiny": dict(input_size=(48, 64), stem_channels=8,
                        stages=((8, 1, 2), (16, 1, 2), (16, 1, 2), (16, 1, 1)), expand=2, kernel=3,
                        deconv_channels=(16, 16))}
# the official associative-embedding models (third deconvolution of each search-*.json)
CONFIGS.update({"paper_ae": _ae(CONFIGS["s"], 32), "xs_ae": _ae(CONFIGS["xs"], 24),
                "s_ae": _ae(CONFIGS["s"], 32), "m_ae": _ae(CONFIGS["m"], 32),
                "l_ae": _ae(CONFIGS["l"], 32),
                "tiny_ae": dict(_ae(CONFIGS["tiny"], 16), input_size=(64, 64)),
                # learns synthetic figures in a few hundred CPU steps
                "small_ae": dict(input_size=(64, 64), stem_channels=16, tags=True,
                                 stages=((16, 1, 2), (24, 2, 2), (32, 2, 2), (32, 2, 1)),
                                 expand=3, kernel=5, deconv_channels=(32, 24, 24),
                                 tag_loss_weight=0.01)})
