"""HigherHRNet (Cheng et al. 2020): bottom-up pose with associative embedding on an HRNet backbone
and a higher-resolution deconvolution module.

Module for module the official ``pose_higher_hrnet.py`` (HRNet/HigherHRNet-Human-Pose-Estimation):
the HRNet backbone's 1/4-resolution branch -> a 1x1 conv to ``K`` heatmaps + ``K`` tags; the
features concatenated with those predictions -> a 4x4 stride-2 deconvolution (BN, ReLU) and
four BasicBlocks -> a 1x1 conv to ``K`` heatmaps at 1/2 resolution. Training supervises the
heatmaps at both resolutions and the tags at 1/4 only (``WITH_AE_LOSS: [True, False]``);
inference averages the 1/4 heatmaps upsampled to 1/2 with the 1/2 ones (and the flipped
input's), upsamples heatmaps and tags to the input (``PROJECT2IMAGE``) and groups by tags.
"""
from __future__ import annotations

from typing import List, Sequence

import torch
import torch.nn as nn
from torch import Tensor

from ..codecs import AEOutputs, AssociativeEmbedding
from .common import BasicBlock, heatmap_size, init_weights
from .heads import AssociativeEmbeddingHead
from .hrnet import HRNet
from .pose_model import PoseModel


class HigherHRNetHead(AssociativeEmbeddingHead):
    """The 1/4-resolution final layer and ``len(deconv_channels)`` deconvolution modules
    (each: the previous features concatenated with the previous prediction when
    ``cat_output``, a 4x4 stride-2 deconvolution to ``c`` channels (BN, ReLU),
    ``num_basic_blocks`` BasicBlocks, a ``final_kernel`` conv to ``K`` heatmaps). Outputs:
    ``[AEOutputs(heatmaps_1/4, tags_1/4), AEOutputs(heatmaps_1/2, no tag channels), ...]``. Loss and
    inference: :class:`~pyhpe.models.heads.AssociativeEmbeddingHead`."""

    def __init__(self, codec: AssociativeEmbedding, in_channels: int = 32, num_keypoints: int = 17,
                 tag_dim: int = 1, tag_per_keypoint: bool = True,
                 deconv_channels: Sequence[int] = (32,), num_basic_blocks: int = 4,
                 cat_output: bool = True, final_kernel: int = 1, **loss_options):
        super().__init__(codec, in_channels, num_keypoints, tag_dim, tag_per_keypoint,
                         build_layers=False, **loss_options)
        K, pad = self.num_keypoints, final_kernel // 2
        c = int(in_channels)
        self.finals = nn.ModuleList([nn.Conv2d(c, K + self.tag_channels, final_kernel, 1, pad)])
        self.deconvs = nn.ModuleList()
        self.cat_output = bool(cat_output)
        prev_out = K + self.tag_channels
        for dc in deconv_channels:
            cin = c + prev_out if self.cat_output else c
            layers = [nn.Sequential(nn.ConvTranspose2d(cin, dc, 4, 2, 1, bias=False),
                                    nn.BatchNorm2d(dc), nn.ReLU(inplace=True))]
            layers += [BasicBlock(dc, dc) for _ in range(num_basic_blocks)]
            self.deconvs.append(nn.Sequential(*layers))
            self.finals.append(nn.Conv2d(dc, K, final_kernel, 1, pad))
            c, prev_out = dc, K
        init_weights(self)
        for f in self.finals:
            nn.init.normal_(f.weight, std=0.001)
        self.check_codec("HigherHRNetHead")

    @property
    def num_levels(self) -> int:
        return len(self.finals)

    def forward(self, feats: Tensor) -> List[AEOutputs]:
        x = feats
        y = self.finals[0](x)
        outs = [self.split(y)]
        for deconv, final in zip(self.deconvs, self.finals[1:]):
            if self.cat_output:
                x = torch.cat([x, y], 1)
            x = deconv(x)
            y = final(x)
            outs.append(self.split(y))
        return outs


def build(num_keypoints=17, codec=None, *, input_size=(512, 512), tag_dim=1,
          tag_per_keypoint=True, deconv_channels=(32,), num_basic_blocks=4, cat_output=True,
          final_kernel=1, sigma=2.0, heatmap_loss_weights=(1.0,), tag_loss_weight=1e-3,
          push_loss_factor=0.5, loss_type="exp", push_self_pairs=True,
          tag_loss_reduction="sum", restore_size=True, joint_weights=None, **arch) -> PoseModel:
    """HRNet backbone (``width``, ``modules``, ``num_blocks``, ...) + :class:`HigherHRNetHead`.
    Without a codec: :class:`~pyhpe.codecs.AssociativeEmbedding` at stride 4 with an extra
    target per deconvolution module (stride 2, ...), ``sigma`` map pixels at every resolution
    (the official ``SIGMA: 2``)."""
    backbone = HRNet(**arch)
    if codec is None:
        size = heatmap_size(input_size, HRNet.stride)
        extra = [heatmap_size(input_size, HRNet.stride / 2 ** (i + 1))
                 for i in range(len(deconv_channels))]
        codec = AssociativeEmbedding(input_size, size, sigma=sigma, extra_heatmap_sizes=extra)
    head = HigherHRNetHead(codec, backbone.out_channels, num_keypoints, tag_dim, tag_per_keypoint,
                           deconv_channels, num_basic_blocks, cat_output, final_kernel,
                           heatmap_loss_weights=heatmap_loss_weights,
                           tag_loss_weight=tag_loss_weight, push_loss_factor=push_loss_factor,
                           loss_type=loss_type, push_self_pairs=push_self_pairs,
                           tag_loss_reduction=tag_loss_reduction, restore_size=restore_size,
                           joint_weights=joint_weights)
    return PoseModel(backbone, head)


CONFIGS = {"paper": dict(width=32),                       # HigherHRNet-W32, 512 x 512
           "w32": dict(width=32),
           "w48": dict(width=48, input_size=(640, 640), deconv_channels=(48,)),
           "tiny": dict(input_size=(64, 64), width=8, modules=(1, 1, 1), num_blocks=1,
                        stem_channels=16, stage1_blocks=1, deconv_channels=(8,),
                        num_basic_blocks=1),
           # a network that learns synthetic figures in a few hundred CPU steps
           "small": dict(input_size=(64, 64), width=16, modules=(1, 1, 1), num_blocks=1,
                         stem_channels=32, stage1_blocks=1, deconv_channels=(16,),
                         num_basic_blocks=1, tag_loss_weight=0.01)}
