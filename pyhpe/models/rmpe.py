"""RMPE / AlphaPose (Fang et al. ICCV 2017): the symmetric spatial transformer network.

``inputs`` (the detector's crop) -> STN (a localisation net predicts an affine ``theta``;
``affine_grid`` / ``grid_sample`` extract the transformed crop) -> SPPE (any registered
heatmap model, the paper's stacked hourglass by default) -> SDTN (the de-transformer:
``gamma = theta^-1`` warps the SPPE's heatmaps back to the crop's frame).

Training (the paper's Sec. 3.2): the SPPE heatmap loss in the de-transformed frame
(``loss_heatmap``) plus the parallel SPPE branch's loss (``loss_parallel``): the transformed
crop goes through the SPPE with its weights held fixed (gradients reach only the STN) and
is compared with the centre-located ground-truth pose (the target heatmaps translated so
the visible joints' centre is the map centre), which drives the STN to centre the person.
The parallel branch exists only in training; inference is STN -> SPPE -> SDTN and the usual
heatmap decode (so flip test and the top-down task work unchanged).
"""
from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call

from .heads import HeatmapHead
from .heads.losses import keypoint_mse_loss
from .pose_model import PoseModel


class LocalisationNet(nn.Module):
    """The STN's localisation network: strided 3x3 conv-BN-ReLU blocks, global average pool and
    a linear layer to the 6 affine parameters, initialised to the identity transform."""

    def __init__(self, channels=(16, 32, 64, 128)):
        super().__init__()
        layers, cin = [], 3
        for c in channels:
            layers += [nn.Conv2d(cin, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c),
                       nn.ReLU(inplace=True)]
            cin = c
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, 6)
        nn.init.zeros_(self.fc.weight)
        with torch.no_grad():
            self.fc.bias.copy_(torch.tensor([1.0, 0, 0, 0, 1.0, 0]))

    def forward(self, x: Tensor) -> Tensor:
        f = self.features(x).mean((2, 3))
        return self.fc(f).view(-1, 2, 3)


def invert_affine(theta: Tensor) -> Tensor:
    """``(B, 2, 3)`` affine -> its inverse ``gamma`` (the SDTN's parameters)."""
    a, b, c = theta[:, 0, 0], theta[:, 0, 1], theta[:, 0, 2]
    d, e, f = theta[:, 1, 0], theta[:, 1, 1], theta[:, 1, 2]
    det = a * e - b * d                      # closed form (exportable, unlike linalg.inv)
    ia, ib, id_, ie = e / det, -b / det, -d / det, a / det
    return torch.stack([torch.stack([ia, ib, -(ia * c + ib * f)], -1),
                        torch.stack([id_, ie, -(id_ * c + ie * f)], -1)], 1)


def warp(x: Tensor, theta: Tensor) -> Tensor:
    """Sample ``x`` at ``theta`` (normalised output coords -> normalised input coords; pixel
    edges aligned, so crop and heatmaps of any stride share the frame)."""
    H, W = x.shape[-2:]
    # F.affine_grid(align_corners=False), written out so that ONNX opset 17 exports it
    xs = (torch.arange(W, device=x.device, dtype=x.dtype) * 2 + 1) / W - 1
    ys = (torch.arange(H, device=x.device, dtype=x.dtype) * 2 + 1) / H - 1
    base = torch.stack([xs.view(1, W).expand(H, W), ys.view(H, 1).expand(H, W),
                        torch.ones(H, W, device=x.device, dtype=x.dtype)], -1)   # (H, W, 3)
    grid = (base.view(1, H * W, 3) @ theta.to(x.dtype).transpose(1, 2)).view(-1, H, W, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def centred_targets(heatmaps: Tensor, weights: Tensor) -> Tensor:
    """The centre-located ground truth: target heatmaps translated so that the weighted centre
    of the visible joints (each map's soft-argmax) lies at the map centre."""
    B, K, H, W = heatmaps.shape
    hm = heatmaps.float().clamp(min=0)
    mass = hm.sum((2, 3))
    ys = (torch.arange(H, device=hm.device, dtype=hm.dtype) + 0.5) / H * 2 - 1
    xs = (torch.arange(W, device=hm.device, dtype=hm.dtype) + 0.5) / W * 2 - 1
    px = (hm.sum(2) * xs).sum(-1) / mass.clamp(min=1e-6)
    py = (hm.sum(3) * ys).sum(-1) / mass.clamp(min=1e-6)
    w = weights.float() * (mass > 1e-6).float()
    n = w.sum(1).clamp(min=1e-6)
    cx, cy = (px * w).sum(1) / n, (py * w).sum(1) / n
    theta = torch.zeros(B, 2, 3, device=hm.device, dtype=hm.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2], theta[:, 1, 2] = cx, cy   # output centre samples the pose centre
    return warp(hm, theta)


class RMPE(PoseModel):
    """STN + SPPE + SDTN (``sppe``: a heatmap :class:`PoseModel`; its codec is the model's).

    ``forward(inputs)`` -> the de-transformed heatmaps (a list for a multi-stage SPPE);
    ``forward(inputs, targets)`` -> ``loss_heatmap`` (+ ``loss_parallel`` in training when
    ``parallel_weight > 0``). ``last_theta`` keeps the latest STN transform for inspection.
    """

    def __init__(self, sppe: PoseModel, num_keypoints: int, loc_channels=(16, 32, 64, 128),
                 parallel_weight: float = 1.0):
        head = HeatmapHead(sppe.codec, None, num_keypoints, joint_weights=sppe.head.joint_weights)
        super().__init__(sppe, head)
        self.stn = LocalisationNet(loc_channels)
        self.parallel_weight = float(parallel_weight)
        self.last_theta: Optional[Tensor] = None

    @property
    def sppe(self) -> PoseModel:
        return self.backbone

    def transform(self, inputs: Tensor):
        theta = self.stn(inputs)
        return theta, warp(inputs, theta)

    def detransform(self, outputs, theta: Tensor):
        gamma = invert_affine(theta.float())
        if isinstance(outputs, (list, tuple)):
            return [warp(o, gamma) for o in outputs]
        return warp(outputs, gamma)

    def forward(self, inputs: Tensor, targets: Optional[Dict[str, Tensor]] = None):
        theta, crop = self.transform(inputs)
        self.last_theta = theta.detach()
        outputs = self.detransform(self.sppe(crop), theta)
        if targets is None:
            return outputs
        losses = self.head.loss(outputs, targets)
        if self.training and self.parallel_weight > 0:
            losses["loss_parallel"] = self.parallel_weight * self.parallel_loss(crop, targets)
        return losses

    def parallel_loss(self, crop: Tensor, targets: Dict[str, Tensor]) -> Tensor:
        """The parallel SPPE: the SPPE with fixed (detached) weights on the transformed crop
        against the centre-located ground truth; only the STN learns from it."""
        params = {k: v.detach() for k, v in self.sppe.named_parameters()}
        outs = functional_call(self.sppe, params, (crop,))
        outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        w = self.head.map_weights(targets)
        K = targets["heatmaps"].shape[1]
        goal = centred_targets(targets["heatmaps"], w)
        return sum(keypoint_mse_loss(o[:, :K], goal, w) for o in outs)


def build(num_keypoints=17, codec=None, *, sppe="hourglass", sppe_config="paper", sppe_kwargs=None,
          loc_channels=(16, 32, 64, 128), parallel_weight=1.0, input_size=None, **kwargs) -> RMPE:
    """An RMPE model around a registered heatmap SPPE (``sppe`` / ``sppe_config`` /
    ``sppe_kwargs``; ``input_size`` and other keyword arguments go to the SPPE)."""
    from . import build_model
    kw = dict(sppe_kwargs or {}, **kwargs)
    if input_size is not None:
        kw["input_size"] = input_size
    model = build_model(sppe, sppe_config, num_keypoints, codec=codec, **kw)
    if type(model.head) is not HeatmapHead:
        raise ValueError(f"rmpe: the SPPE must be a heatmap model (HeatmapHead), got "
                         f"{type(model.head).__name__}")
    return RMPE(model, num_keypoints, loc_channels, parallel_weight)


CONFIGS = {
    # the paper's SPPE: the stacked hourglass (8 stacks)
    "paper": dict(sppe="hourglass", sppe_config="paper"),
    "tiny": dict(sppe="simple_baseline", sppe_config="tiny", loc_channels=(8, 16, 32)),
}
