"""ViTPose (Xu et al. 2022): a plain ViT backbone with a light deconvolution decoder."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import HeatmapHead, init_weights
from .transformer import Encoder


class ViTPose(nn.Module):
    """``(B, 3, H, W) -> (B, K, 4H/p, 4W/p)`` heatmaps (p = patch size; the paper's p = 16 gives
    stride 4): patch embedding, ``depth`` transformer blocks, the classic decoder (two stride-2
    deconvs + 1x1) or ``decoder='simple'`` (bilinear x4 + ReLU + 3x3 conv)."""

    output_kind = "heatmap"

    def __init__(self, num_keypoints=17, img_size=(192, 256), patch_size=16, dim=768, depth=12,
                 heads=12, mlp_ratio=4.0, decoder="classic", deconv_channels=(256, 256)):
        super().__init__()
        w, h = img_size
        self.grid = (h // patch_size, w // patch_size)
        self.patch = nn.Conv2d(3, dim, patch_size, patch_size)
        self.pos = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1], dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.encoder = Encoder(dim, depth, heads, mlp_ratio)
        self.decoder_kind = decoder
        if decoder == "simple":
            self.head = nn.Conv2d(dim, num_keypoints, 3, 1, 1)
        else:
            self.head = HeatmapHead(dim, num_keypoints, deconv_channels)
        init_weights(self.encoder)

    def forward(self, x):
        f = self.patch(x)
        b, c, gh, gw = f.shape
        tokens = f.flatten(2).transpose(1, 2)
        pos = self.pos
        if (gh, gw) != self.grid:
            pos = F.interpolate(pos.transpose(1, 2).reshape(1, c, *self.grid), size=(gh, gw),
                                mode="bilinear", align_corners=False).flatten(2).transpose(1, 2)
        t = self.encoder(tokens + pos)
        f = t.transpose(1, 2).reshape(b, c, gh, gw)
        if self.decoder_kind == "simple":
            return self.head(F.relu(F.interpolate(f, scale_factor=4, mode="bilinear", align_corners=False)))
        return self.head(f)


CONFIGS = {"paper": dict(img_size=(192, 256), patch_size=16, dim=768, depth=12, heads=12),  # ViTPose-B
           "small": dict(dim=384, depth=12, heads=12),
           "large": dict(dim=1024, depth=24, heads=16), "huge": dict(dim=1280, depth=32, heads=16),
           "tiny": dict(img_size=(48, 64), patch_size=8, dim=32, depth=2, heads=2,
                        deconv_channels=(16,), decoder="classic")}
