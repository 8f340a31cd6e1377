"""PIPNetHead (Jin et al. 2021, "Pixel-in-Pixel Net", official ``Pip_resnet*``): on the
backbone's low-resolution map, five 1x1 convs predict the score map (K), the x / y offsets
inside each cell (K each) and the x / y offsets of each keypoint's C neighbours from its cell
(K*C each).

Loss (official ``compute_loss_pip``): ``cls_weight`` x the score-map loss over the whole map
(``cls_loss='mse'``: the official L2 on raw scores; ``'bce'``: binary cross-entropy on
logits) + ``reg_weight`` x the L1 of the offsets and of the neighbour offsets read at the
ground-truth cell, weighted per keypoint (``loss_cls``, ``loss_offset``, ``loss_nb``).
Inference (:meth:`PIPNetLabel.decode`): best cell + its offsets, averaged with the
neighbours' votes; flip test averages decoded keypoints.
"""
from __future__ import annotations

from typing import Dict, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ...codecs.pipnet import PIPNetLabel
from .base import BaseHead


class PIPNetOutputs(NamedTuple):
    scores: Tensor     # (B, K, h, w)
    offset_x: Tensor   # (B, K, h, w)
    offset_y: Tensor   # (B, K, h, w)
    nb_x: Tensor       # (B, K*C, h, w), keypoint-major
    nb_y: Tensor       # (B, K*C, h, w)


def _gather_cells(maps: Tensor, index: Tensor, n: int) -> Tensor:
    """``(B, K*n, h, w)`` maps read at each keypoint's cell ``index`` (B, K) -> (B, K, n)."""
    b, k = index.shape
    m = maps.reshape(b, k, n, -1)
    return m.gather(3, index.view(b, k, 1, 1).expand(b, k, n, 1)).squeeze(3)


class PIPNetHead(BaseHead):
    def __init__(self, codec: PIPNetLabel, in_channels: int, num_keypoints: int = 17, *,
                 deconv_layers: int = 0, cls_loss: str = "mse", cls_weight: float = 10.0,
                 reg_weight: float = 1.0, joint_weights=None):
        if not isinstance(codec, PIPNetLabel):
            raise TypeError(f"PIPNetHead: 'codec' must be a PIPNetLabel, got {type(codec).__name__}")
        super().__init__(codec, joint_weights)
        if cls_loss not in ("mse", "bce"):
            raise ValueError(f"PIPNetHead: 'cls_loss' must be 'mse' or 'bce', got {cls_loss!r}")
        if codec.num_keypoints != num_keypoints:
            raise ValueError(f"PIPNetHead: the codec's neighbours are for {codec.num_keypoints} "
                             f"keypoints, the head has {num_keypoints}")
        self.k, self.c = int(num_keypoints), codec.num_nb
        self.cls_loss, self.cls_weight, self.reg_weight = cls_loss, float(cls_weight), float(reg_weight)
        # official net_stride 16 / 8: stride-2 deconvs (4x4, BN, ReLU) before the heads
        ups = []
        for _ in range(deconv_layers):
            ups += [nn.ConvTranspose2d(in_channels, in_channels, 4, 2, 1, bias=False),
                    nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True)]
        self.upsample = nn.Sequential(*ups)
        self.cls_layer = nn.Conv2d(in_channels, self.k, 1)
        self.x_layer = nn.Conv2d(in_channels, self.k, 1)
        self.y_layer = nn.Conv2d(in_channels, self.k, 1)
        self.nb_x_layer = nn.Conv2d(in_channels, self.k * self.c, 1)
        self.nb_y_layer = nn.Conv2d(in_channels, self.k * self.c, 1)
        for m in self.modules():
            if isinstance(m, nn.ConvTranspose2d):
                nn.init.normal_(m.weight, std=0.001)
            elif isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.001)
                nn.init.zeros_(m.bias)

    def forward(self, feats: Tensor) -> PIPNetOutputs:
        x = self.upsample(feats)
        return PIPNetOutputs(self.cls_layer(x), self.x_layer(x), self.y_layer(x),
                             self.nb_x_layer(x), self.nb_y_layer(x))

    def loss(self, outputs: PIPNetOutputs, targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        w = self.keypoint_weights(targets)
        target = targets["heatmaps"].float()
        scores = outputs.scores.float()
        if scores.shape != target.shape:
            raise ValueError(f"PIPNetHead: score maps {tuple(scores.shape)} do not match the "
                             f"codec's grid {tuple(target.shape)} (heatmap_size vs. stride)")
        if self.cls_loss == "mse":
            cls = F.mse_loss(scores, target)
        else:
            cls = F.binary_cross_entropy_with_logits(scores, target)
        index = targets["cell_index"].long()
        off = torch.stack([_gather_cells(outputs.offset_x.float(), index, 1)[..., 0],
                           _gather_cells(outputs.offset_y.float(), index, 1)[..., 0]], -1)
        nb = torch.stack([_gather_cells(outputs.nb_x.float(), index, self.c),
                          _gather_cells(outputs.nb_y.float(), index, self.c)], -1)
        denom = w.sum().clamp_min(1.0)
        l_off = ((off - targets["offsets"].float()).abs().sum(-1) * w).sum() / (2 * denom)
        nbw = targets["nb_weights"].float()
        if self.joint_weights is not None:
            nbw = nbw * self.joint_weights.to(nbw.device).unsqueeze(1)
        l_nb = ((nb - targets["nb_offsets"].float()).abs().sum(-1) * nbw).sum() \
            / (2 * nbw.sum().clamp_min(1.0))
        return {"loss_cls": self.cls_weight * cls, "loss_offset": self.reg_weight * l_off,
                "loss_nb": self.reg_weight * l_nb}

    def predict(self, outputs, flipped_outputs=None, flip_index=None):
        keypoints, scores = self.codec.decode(outputs)
        if flipped_outputs is not None:
            kf, sf = self.codec.decode(flipped_outputs)
            idx = list(flip_index) if flip_index is not None else None
            keypoints = (keypoints + self.codec.flip_keypoints(kf, idx)) / 2
            scores = (scores + sf[:, idx]) / 2
        return keypoints, scores
