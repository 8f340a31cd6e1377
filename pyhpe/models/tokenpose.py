"""TokenPose (Li et al. 2021): keypoint tokens attend to visual tokens; an MLP turns each
keypoint token into its flattened heatmap.

The modules follow the official code (github.com/leeyegy/TokenPose ``lib/models/
tokenpose_base.py``, ``TokenPose_S_base``): a stem of two stride-2 convs and ResNet's layer1
(Bottlenecks), patches flattened as (row, column, channel), fixed sine positions added to the
visual tokens before every layer ('sine-full'), pre-norm blocks whose attention has no qkv bias
and scales by ``dim ** -0.5`` (not per head), no final norm, and the MLP head.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import Bottleneck, conv_bn_act, init_weights, make_stage
from .heads import HeatmapHead, default_heatmap_codec
from .pose_model import PoseModel


def sine_positions(h: int, w: int, dim: int, temperature: float = 10000.0,
                   scale: float = 2 * math.pi) -> torch.Tensor:
    """TokenPose's (DETR-style) 2-D sine positions ``(1, h*w, dim)``: y features, then x."""
    area = torch.ones(1, h, w)
    y = area.cumsum(1)
    x = area.cumsum(2)
    y = y / (y[:, -1:, :] + 1e-6) * scale
    x = x / (x[:, :, -1:] + 1e-6) * scale
    half = dim // 2
    dim_t = torch.arange(half, dtype=torch.float32)
    dim_t = temperature ** (2 * (dim_t // 2) / half)
    px, py = x[..., None] / dim_t, y[..., None] / dim_t
    px = torch.stack((px[..., 0::2].sin(), px[..., 1::2].cos()), dim=4).flatten(3)
    py = torch.stack((py[..., 0::2].sin(), py[..., 1::2].cos()), dim=4).flatten(3)
    return torch.cat((py, px), dim=3).permute(0, 3, 1, 2).flatten(2).permute(0, 2, 1)


class TokenAttention(nn.Module):
    """Multi-head self-attention without qkv bias; scale ``dim ** -0.5`` (TokenPose's default)
    or ``(dim / heads) ** -0.5`` with ``scale_with_head``."""

    def __init__(self, dim, heads, scale_with_head=False):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5 if scale_with_head else dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.out = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = (t.view(b, n, self.heads, d // self.heads).transpose(1, 2)
                   for t in self.qkv(x).chunk(3, dim=-1))
        y = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class TokenBlock(nn.Module):
    def __init__(self, dim, heads, mlp_dim, scale_with_head=False):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = TokenAttention(dim, heads, scale_with_head)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TokenPoseBackbone(nn.Module):
    """``(B, 3, H, W) -> (B, K, dim)`` keypoint tokens: the stride-4 stem (two stride-2 3x3
    convs of ``stem_channels``, ``stem_blocks`` Bottlenecks), ``patch`` = (w, h) sized patches
    of its features as visual tokens, K learnt keypoint tokens and ``depth`` blocks.

    ``pos_embedding='sine-full'`` (TokenPose-S/B): fixed sine positions (a buffer) added to the
    visual tokens before every block; ``'learnable'`` (TokenPose-T/L): learnt positions of all
    tokens, added once.
    """

    def __init__(self, num_keypoints=17, img_size=(192, 256), patch=(2, 2), dim=192, depth=12,
                 heads=8, stem_channels=64, stem_blocks=4, mlp_ratio=3.0,
                 pos_embedding="sine-full", scale_with_head=False):
        super().__init__()
        w, h = img_size
        self.hm_size = (h // 4, w // 4)
        pw, ph = patch
        self.patch = (ph, pw)
        self.stem = nn.Sequential(conv_bn_act(3, stem_channels, 3, 2),
                                  conv_bn_act(stem_channels, stem_channels, 3, 2))
        self.layer1, c = make_stage(Bottleneck, stem_channels, stem_channels, stem_blocks, 1)
        gh, gw = self.hm_size[0] // ph, self.hm_size[1] // pw
        self.embed = nn.Linear(c * ph * pw, dim)
        self.kp_tokens = nn.Parameter(torch.zeros(1, num_keypoints, dim))
        nn.init.trunc_normal_(self.kp_tokens, std=0.02)
        if pos_embedding == "sine-full":
            self.register_buffer("pos", sine_positions(gh, gw, dim))
        elif pos_embedding == "learnable":
            self.pos = nn.Parameter(torch.zeros(1, gh * gw + num_keypoints, dim))
            nn.init.trunc_normal_(self.pos, std=0.02)
        else:
            raise ValueError(f"TokenPoseBackbone: 'pos_embedding' must be 'sine-full' or 'learnable', "
                             f"got {pos_embedding!r}")
        self.pos_embedding = pos_embedding
        self.blocks = nn.ModuleList([TokenBlock(dim, heads, int(dim * mlp_ratio), scale_with_head)
                                     for _ in range(depth)])
        self.dim = dim
        self.k = num_keypoints
        init_weights(self)

    def forward(self, x):
        f = self.layer1(self.stem(x))
        b, c, fh, fw = f.shape
        ph, pw = self.patch
        t = f.reshape(b, c, fh // ph, ph, fw // pw, pw).permute(0, 2, 4, 3, 5, 1)
        t = self.embed(t.reshape(b, (fh // ph) * (fw // pw), ph * pw * c))
        kp = self.kp_tokens.expand(b, -1, -1)
        sine = self.pos_embedding == "sine-full"
        z = torch.cat([kp, t + self.pos], 1) if sine else torch.cat([kp, t], 1) + self.pos
        for i, blk in enumerate(self.blocks):
            if i > 0 and sine:
                z = torch.cat([z[:, :self.k], z[:, self.k:] + self.pos], 1)
            z = blk(z)
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
    """TokenPose: heatmaps at stride 4 of ``img_size`` (the input size). The paper config is
    TokenPose-S-v2 (loads the official checkpoints through :func:`pyhpe.apis.load_pretrained`)."""
    backbone = TokenPoseBackbone(num_keypoints, img_size, **arch)
    codec = default_heatmap_codec(img_size, 4) if codec is None else codec
    head = TokenHeatmapHead(codec, backbone.dim, backbone.hm_size, num_keypoints, joint_weights)
    return PoseModel(backbone, head)


CONFIGS = {"paper": dict(img_size=(192, 256), patch=(2, 2), dim=192, depth=12, heads=8),  # TokenPose-S-v2
           "tiny": dict(img_size=(48, 64), patch=(3, 4), dim=32, depth=1, heads=2, stem_channels=8,
                        stem_blocks=1)}
