"""ViTPose (Xu et al. 2022): a plain ViT backbone with a light deconvolution decoder."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import init_weights
from .heads import heatmap_model
from .pose_model import PoseModel
from .transformer import Encoder


class ViT(nn.Module):
    """Backbone ``(B, 3, H, W) -> (B, dim, H/p, W/p)``: patch embedding (p = ``patch_size``,
    padded by ``patch_padding`` pixels as ViTPose's), learnt positions (resized for other input
    sizes), ``depth`` pre-norm transformer blocks (LayerNorm eps 1e-6) and a final LayerNorm.

    As in the official ViTPose, ``pos`` has one more entry than patches (the position of the
    classification token of the ImageNet-pretrained ViT), added to every patch.
    """

    def __init__(self, img_size=(192, 256), patch_size=16, dim=768, depth=12, heads=12,
                 mlp_ratio=4.0, patch_padding=2):
        super().__init__()
        w, h = img_size
        self.grid = (h // patch_size, w // patch_size)
        self.patch_size = patch_size
        self.out_channels = dim
        self.patch = nn.Conv2d(3, dim, patch_size, patch_size, patch_padding)
        self.pos = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1] + 1, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.encoder = Encoder(dim, depth, heads, mlp_ratio, eps=1e-6)
        init_weights(self.encoder)

    def forward(self, x):
        f = self.patch(x)
        b, c, gh, gw = f.shape
        tokens = f.flatten(2).transpose(1, 2)
        pos = self.pos[:, 1:] + self.pos[:, :1]
        if (gh, gw) != self.grid:
            pos = F.interpolate(pos.transpose(1, 2).reshape(1, c, *self.grid), size=(gh, gw),
                                mode="bilinear", align_corners=False).flatten(2).transpose(1, 2)
        t = self.encoder(tokens + pos)
        return t.transpose(1, 2).reshape(b, c, gh, gw)


def build(num_keypoints=17, codec=None, *, img_size=(192, 256), patch_size=16, dim=768, depth=12,
          heads=12, mlp_ratio=4.0, decoder="classic", deconv_channels=(256, 256),
          joint_weights=None) -> PoseModel:
    """ViT + :class:`HeatmapHead`: the classic decoder (stride-2 deconvs + 1x1; the paper's
    p = 16 with two deconvs gives stride 4) or ``decoder='simple'`` (bilinear x4 + ReLU +
    3x3 conv). The input size is ``img_size``. The paper config is ViTPose-B with the classic
    decoder (loads the official checkpoints through :func:`pyhpe.apis.load_pretrained`)."""
    backbone = ViT(img_size, patch_size, dim, depth, heads, mlp_ratio)
    if decoder == "simple":
        opts = dict(deconv_channels=(), upsample=4, final_kernel=3)
        stride = patch_size / 4
    elif decoder == "classic":
        opts = dict(deconv_channels=deconv_channels)
        stride = patch_size / 2 ** len(deconv_channels)
    else:
        raise ValueError(f"vitpose: 'decoder' must be 'classic' or 'simple', got {decoder!r}")
    return heatmap_model(backbone, codec, img_size, stride, in_channels=dim,
                         num_keypoints=num_keypoints, joint_weights=joint_weights, **opts)


CONFIGS = {"paper": dict(img_size=(192, 256), patch_size=16, dim=768, depth=12, heads=12),  # ViTPose-B
           "small": dict(dim=384, depth=12, heads=12),
           "large": dict(dim=1024, depth=24, heads=16), "huge": dict(dim=1280, depth=32, heads=16),
           "tiny": dict(img_size=(48, 64), patch_size=8, dim=32, depth=2, heads=2,
                        deconv_channels=(16,), decoder="classic")}
