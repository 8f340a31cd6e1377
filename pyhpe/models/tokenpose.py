"""TokenPose (Li et al. 2021): keypoint tokens attend to visual tokens; an MLP turns each
keypoint token into its flattened heatmap."""
from __future__ import annotations

import torch
import torch.nn as nn

from .common import BasicBlock, conv_bn_act, init_weights
from .heads import HeatmapHead, default_heatmap_codec
from .pose_model import PoseModel
from .transformer import Encoder


class TokenPoseBackbone(nn.Module):
    """``(B, 3, H, W) -> (B, K, dim)`` keypoint tokens: a stride-4 CNN stem, ``patch`` sized
    patches of its features as visual tokens (learnt positions), K learnt keypoint tokens and
    a transformer."""

    def __init__(self, num_keypoints=17, img_size=(192, 256), patch=(3, 4), dim=192, depth=12,
                 heads=8, stem_channels=64, stem_blocks=2, mlp_ratio=3.0):
        super().__init__()
        w, h = img_size
        self.hm_size = (h // 4, w // 4)
        pw, ph = patch
        self.patch = (ph, pw)
        self.stem = nn.Sequential(conv_bn_act(3, stem_channels, 3, 2), conv_bn_act(stem_channels, stem_channels, 3, 2),
                                  *[BasicBlock(stem_channels, stem_channels) for _ in range(stem_blocks)])
        n_patches = (self.hm_size[0] // ph) * (self.hm_size[1] // pw)
        self.embed = nn.Linear(stem_channels * ph * pw, dim)
        self.pos = nn.Parameter(torch.zeros(1, n_patches, dim))
        self.kp_tokens = nn.Parameter(torch.zeros(1, num_keypoints, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        nn.init.trunc_normal_(self.kp_tokens, std=0.02)
        self.encoder = Encoder(dim, depth, heads, mlp_ratio)
        self.k = num_keypoints
        init_weights(self.stem)

    def forward(self, x):
        f = self.stem(x)
        b, c, fh, fw = f.shape
        ph, pw = self.patch
        t = f.reshape(b, c, fh // ph, ph, fw // pw, pw).permute(0, 2, 4, 1, 3, 5)
        t = self.embed(t.reshape(b, (fh // ph) * (fw // pw), c * ph * pw)) + self.pos
        z = self.encoder(torch.cat([self.kp_tokens.expand(b, -1, -1), t], 1))
        return z[:, :self.k]


class TokenHeatmapHead(HeatmapHead):
    """TokenPose's head (``mlp_head`` of the official TokenPose_*_base): a shared MLP from each
    keypoint token to its flattened ``map_hw`` heatmap, LayerNorm, Linear to ``H*W/8``,
    LayerNorm, Linear to ``H*W`` when ``dim`` is at most half that hidden width, else LayerNorm
    and one Linear (loss and prediction as :class:`HeatmapHead`)."""

    def __init__(self, codec, dim: int, map_hw, num_keypoints: int = 17, joint_weights=None):
        super().__init__(codec, None, num_keypoints, joint_weights=joint_weights)
        self.map_hw = tuple(map_hw)
        hw = self.map_hw[0] * self.map_hw[1]
        hidden = hw // 8
        if dim <= hidden * 0.5:
            self.mlp = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.LayerNorm(hidden),
                                     nn.Linear(hidden, hw))
        else:
            self.mlp = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hw))

    def forward_single(self, tokens):
        return self.mlp(tokens).view(tokens.shape[0], tokens.shape[1], *self.map_hw)


def build(num_keypoints=17, codec=None, *, img_size=(192, 256), joint_weights=None, **arch
          ) -> PoseModel:
    """TokenPose: heatmaps at stride 4 of ``img_size`` (the input size)."""
    backbone = TokenPoseBackbone(num_keypoints, img_size, **arch)
    codec = default_heatmap_codec(img_size, 4) if codec is None else codec
    head = TokenHeatmapHead(codec, backbone.encoder.norm.normalized_shape[0], backbone.hm_size,
                            num_keypoints, joint_weights)
    return PoseModel(backbone, head)


CONFIGS = {"paper": dict(img_size=(192, 256), patch=(3, 4), dim=192, depth=12, heads=8),  # TokenPose-S-v2
           "tiny": dict(img_size=(48, 64), patch=(3, 4), dim=32, depth=1, heads=2, stem_channels=8,
                        stem_blocks=1)}
