"""Heatmap heads: HeatmapHead (deconvolutions + 1x1 conv, or the stage maps of a multi-stage
backbone) and IntegralHead (the same layers, trained through a differentiable decode)."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ...codecs import Codec, IntegralRegressionLabel, MSRAHeatmap, MultiLevelHeatmap
from ..common import conv_bn_act, heatmap_size, init_weights
from .base import BaseHead
from .losses import js_divergence, keypoint_mse_loss, weighted_mean

Outputs = Union[Tensor, List[Tensor]]


class HeatmapHead(BaseHead):
    """``in_channels`` features -> K maps: ``deconv_channels`` stride-2 4x4 deconvolutions (BN,
    ReLU), ``extra_convs`` 3x3 convs, optionally ReLU + a bilinear ``upsample`` (ViTPose's
    simple decoder), then a ``final_kernel`` conv to ``num_keypoints`` maps.

    ``in_channels=None``: the backbone already produces the maps (Hourglass, CPM); a list of
    stage maps is passed through. With a list (one tensor per stage) the loss sums the
    stages and prediction decodes the last. Maps may carry extra channels after the K
    keypoints (CPM's background); loss and prediction use the first K.
    Loss: mmpose ``KeypointMSELoss(use_target_weight=True)``, named ``loss_heatmap``.
    """

    def __init__(self, codec: Codec, in_channels: Optional[int] = None, num_keypoints: int = 17,
                 deconv_channels: Sequence[int] = (), extra_convs: int = 0, final_kernel: int = 1,
                 upsample: int = 1, joint_weights=None):
        super().__init__(codec, joint_weights)
        self.num_keypoints = int(num_keypoints)
        self.upsample = int(upsample)
        if in_channels is None:
            self.deconv, self.final = nn.Identity(), nn.Identity()
            return
        layers, cin = [], in_channels
        for c in deconv_channels:
            layers += [nn.ConvTranspose2d(cin, c, 4, 2, 1, bias=False), nn.BatchNorm2d(c),
                       nn.ReLU(inplace=True)]
            cin = c
        for _ in range(extra_convs):
            layers.append(conv_bn_act(cin, cin, 3))
        self.deconv = nn.Sequential(*layers)
        self.final = nn.Conv2d(cin, self.num_keypoints, final_kernel, 1, final_kernel // 2)
        init_weights(self)
        nn.init.normal_(self.final.weight, std=0.001)

    def forward_single(self, x: Tensor) -> Tensor:
        x = self.deconv(x)
        if self.upsample > 1:
            # ViTPose's simple decoder: ReLU, then the bilinear upsampling
            x = F.interpolate(F.relu(x), scale_factor=self.upsample, mode="bilinear",
                              align_corners=False)
        return self.final(x)

    def forward(self, feats) -> Outputs:
        if isinstance(feats, (list, tuple)):
            return [self.forward_single(f) for f in feats]
        return self.forward_single(feats)

    @staticmethod
    def stages(outputs: Outputs) -> List[Tensor]:
        return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]

    def final_outputs(self, outputs: Outputs) -> Tensor:
        return self.stages(outputs)[-1][:, :self.num_keypoints]

    def map_weights(self, targets: Dict[str, Tensor]) -> Tensor:
        """``(B, K)`` weights of the maps. Multi-instance targets (``(B, N, K)`` weights, N > 1:
        bottom-up) supervise every map fully, empty images included: only the joint weights
        apply; one instance (N = 1) is single-instance."""
        w = self.keypoint_weights(targets)
        if w.dim() == 3:
            if w.shape[1] == 1:
                return w[:, 0]
            jw = self.joint_weights if self.joint_weights is not None else 1.0
            return torch.ones_like(w[:, 0]) * jw
        return w

    def loss(self, outputs: Outputs, targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        target = targets["heatmaps"]
        w = self.map_weights(targets)
        K = target.shape[1]
        return {"loss_heatmap": sum(keypoint_mse_loss(o[:, :K], target, w)
                                    for o in self.stages(outputs))}


class IntegralHead(HeatmapHead):
    """Heatmap layers whose logits are decoded differentiably by an
    :class:`~pyhpe.codecs.IntegralRegressionLabel` (IPR / debiased IPR / DSNT).

    Loss: ipr/dipr: L1 of the heatmap-pixel error divided by the map size, summed over x and
    y, weighted mean over keypoints (``loss_coord``); dsnt: the Euclidean distance in dsntnn's
    (-1, 1) frame (``loss_coord``) plus ``reg_weight`` times the Jensen-Shannon divergence to
    the codec's unit-sum Gaussians (``loss_reg``). Flip test averages decoded keypoints.
    """

    def __init__(self, codec: IntegralRegressionLabel, *args, reg_weight: float = 1.0, **kwargs):
        if not isinstance(codec, IntegralRegressionLabel):
            raise TypeError(f"IntegralHead: 'codec' must be an IntegralRegressionLabel, got "
                            f"{type(codec).__name__}")
        super().__init__(codec, *args, **kwargs)
        self.reg_weight = float(reg_weight)

    def loss(self, outputs: Outputs, targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        target = targets["keypoint_labels"].float()
        w = self.keypoint_weights(targets)
        K = target.shape[1]
        coord, reg = 0.0, 0.0
        for logits in self.stages(outputs):
            logits = logits[:, :K]
            h, wd = logits.shape[-2:]
            size = torch.tensor([wd, h], dtype=torch.float32, device=logits.device)
            coords = self.codec.decode_logits(logits).float()
            if self.codec.method == "dsnt":
                coord = coord + weighted_mean(((coords - target) * 2 / size).norm(dim=-1), w)
                reg = reg + weighted_mean(js_divergence(self.codec.probabilities(logits),
                                                        targets["heatmaps"].float()), w)
            else:
                coord = coord + weighted_mean(((coords - target).abs() / size).sum(-1), w)
        losses = {"loss_coord": coord}
        if self.codec.method == "dsnt":
            losses["loss_reg"] = self.reg_weight * reg
        return losses

    def predict(self, outputs, flipped_outputs=None, flip_index=None):
        keypoints, scores = self.codec.decode(self.final_outputs(outputs))
        if flipped_outputs is not None:
            kf, sf = self.codec.decode(self.final_outputs(flipped_outputs))
            idx = list(flip_index) if flip_index is not None else None
            keypoints = (keypoints + self.codec.flip_keypoints(kf, idx)) / 2
            scores = (scores + sf[:, idx]) / 2
        return keypoints, scores


def default_heatmap_codec(input_size, stride: float) -> MSRAHeatmap:
    """MSRA heatmaps (sigma 2) of a stride-``stride`` network at ``input_size=(W, H)``."""
    return MSRAHeatmap(input_size, heatmap_size(input_size, stride), sigma=2.0)


def heatmap_model(backbone: nn.Module, codec: Optional[Codec], input_size, stride: float,
                  **head_kwargs):
    """A heatmap network as a :class:`~pyhpe.models.PoseModel`: ``backbone`` + an
    :class:`IntegralHead` for an integral codec, else a :class:`HeatmapHead` (``head_kwargs``);
    without a codec, :func:`default_heatmap_codec` at ``input_size``. A codec whose maps are
    not the network's output size (``codec.input_size / stride``) is refused here, not at
    the first loss."""
    from ..pose_model import PoseModel
    if codec is None:
        codec = default_heatmap_codec(input_size, stride)
    check_map_size(codec, stride, type(backbone).__name__)
    if isinstance(codec, MultiLevelHeatmap):
        raise ValueError(f"{type(backbone).__name__}: the 'multilevel' codec makes one target per "
                         "level; it trains the multi-level models (cpn, mspn), not a single-map head")
    cls = IntegralHead if isinstance(codec, IntegralRegressionLabel) else HeatmapHead
    return PoseModel(backbone, cls(codec, **head_kwargs))


def check_map_size(codec: Codec, stride: float, who: str) -> None:
    """``codec.heatmap_size`` must be the size of a stride-``stride`` network's output at
    ``codec.input_size``."""
    expected = heatmap_size(codec.input_size, stride)
    if tuple(codec.heatmap_size) != expected:
        raise ValueError(f"{who}: the codec's heatmap_size {tuple(codec.heatmap_size)} is not the "
                         f"network's output size {expected} (input_size {tuple(codec.input_size)} "
                         f"/ stride {stride:g})")
