"""3DMPPE (Moon, Chang, Lee, ICCV 2019): camera-distance-aware top-down 3-D pose, the RootNet +
PoseNet pair on person crops (the DetectNet step is the data's person box).

* **PoseNet**: ResNet backbone + three 4x4 stride-2 deconvolutions (256 channels, BN, ReLU,
  no bias) + a 1x1 convolution to ``K * D`` channels, read as ``K`` volumes ``(D, H, W)``;
  3-D soft-argmax (:func:`pyhpe.ops.soft_argmax_3d`, integral regression) gives each joint's
  ``(x, y, z)`` in voxels; L1 loss ``(|dx| + |dy| + |dz|) / 3`` on visible joints (the
  official ``ResPoseNet``).
* **RootNet**: the same backbone + deconvolutions and a 1x1 convolution to one map whose 2-D
  soft-argmax is the root's ``(x, y)``; the root depth is ``gamma * k`` where ``k =
  sqrt(ax * ay * fx * fy / A_img)`` (:func:`pyhpe.codecs.body3d.k_value`) and ``gamma`` a 1x1
  convolution of the globally averaged backbone features (the learned correction); L1 loss
  on ``(x, y, Z)`` (the official ``RootNet``; its depth term is in millimetres).

The model is a :class:`~pyhpe.models.pose_model.PoseModel`: the backbone :class:`MPPE3DNet`
(PoseNet + RootNet) takes ``{"image": (B, 3, H, W), "k_value": (B,)}`` and returns
``{"coords": (B, K, 3) voxels, "root": (B, 3)}`` (``root`` only with ``rootnet``); the head
(:class:`~pyhpe.models.heads.body3d.MPPE3DHead`, codec :class:`pyhpe.codecs.MPPE3DCodec`)
owns the losses ``loss_pose`` and ``loss_root`` and the decoding.
Absolute camera-frame joints: :func:`pyhpe.codecs.body3d.back_project` of the decoded pixels
and ``root depth + relative depth`` (done by the ``image3d`` task)."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
from torch import Tensor

from ..codecs.body3d import MPPE3DCodec
from .common import ResNet
from .heads.body3d import MPPE3DHead
from .pose_model import PoseModel


def deconv_layers(cin: int, channels: Sequence[int]) -> nn.Sequential:
    """The official head's upsampling: per entry a 4x4 stride-2 deconvolution (no bias), BN,
    ReLU; weights N(0, 0.001), BN (1, 0)."""
    layers = []
    for c in channels:
        layers += [nn.ConvTranspose2d(cin, c, 4, 2, 1, bias=False), nn.BatchNorm2d(c),
                   nn.ReLU(inplace=True)]
        cin = c
    seq = nn.Sequential(*layers)
    for m in seq.modules():
        if isinstance(m, nn.ConvTranspose2d):
            nn.init.normal_(m.weight, std=0.001)
    return seq


def _head_conv(cin: int, cout: int) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, 1)
    nn.init.normal_(conv.weight, std=0.001)
    nn.init.zeros_(conv.bias)
    return conv


def _backbone(depth, layers, widths, stem_channels) -> ResNet:
    return ResNet(depth, layers, widths, None, stem_channels, True, "conv7")


class PoseNet(nn.Module):
    """``(B, 3, H, W) -> (B, K, D, H/4, W/4)`` volumes (four-stage ResNet, three deconvs)."""

    def __init__(self, num_keypoints: int, depth_bins: int, backbone: ResNet,
                 deconv_channels: Sequence[int] = (256, 256, 256)):
        super().__init__()
        self.num_keypoints, self.depth_bins = int(num_keypoints), int(depth_bins)
        self.backbone = backbone
        self.deconv = deconv_layers(backbone.out_channels, deconv_channels)
        self.final = _head_conv(deconv_channels[-1], self.num_keypoints * self.depth_bins)

    def forward(self, image: Tensor) -> Tensor:
        maps = self.final(self.deconv(self.backbone(image)))
        B, _, H, W = maps.shape
        return maps.reshape(B, self.num_keypoints, self.depth_bins, H, W)


class RootNet(nn.Module):
    """``(image, k_value) -> (B, 3)``: the root's map ``(x, y)`` (2-D soft-argmax) and depth
    ``gamma * k`` (mm)."""

    def __init__(self, backbone: ResNet, deconv_channels: Sequence[int] = (256, 256, 256)):
        super().__init__()
        self.backbone = backbone
        self.deconv = deconv_layers(backbone.out_channels, deconv_channels)
        self.xy = _head_conv(deconv_channels[-1], 1)
        self.depth = _head_conv(backbone.out_channels, 1)

    def forward(self, image: Tensor, k_value: Tensor) -> Tensor:
        from ..ops import soft_argmax
        feats = self.backbone(image)
        xy = soft_argmax(self.xy(self.deconv(feats)).float())[:, 0]
        gamma = self.depth(feats.mean((2, 3), keepdim=True)).reshape(-1, 1)
        return torch.cat([xy, gamma.float() * k_value.reshape(-1, 1).float()], 1)


class MPPE3DNet(nn.Module):
    """PoseNet (and, with ``rootnet``, RootNet: separate networks, as in the paper, trained
    side by side): ``inputs`` ``(B, 3, H, W)`` or ``{"image", "k_value"}`` (RootNet needs the
    dict) -> ``{"coords": (B, K, 3) voxels (3-D soft-argmax), "root": (B, 3)}``."""

    def __init__(self, posenet: PoseNet, rootnet: Optional[RootNet] = None):
        super().__init__()
        self.posenet = posenet
        self.rootnet = rootnet

    def forward(self, inputs) -> Dict[str, Tensor]:
        from ..ops import soft_argmax_3d
        image = inputs["image"] if isinstance(inputs, dict) else inputs
        out = {"coords": soft_argmax_3d(self.posenet(image).float())}
        if self.rootnet is not None:
            if not isinstance(inputs, dict) or "k_value" not in inputs:
                raise ValueError("MPPE3D: RootNet needs inputs {'image', 'k_value'} (k from the "
                                 "camera, pyhpe.codecs.body3d.k_value)")
            out["root"] = self.rootnet(image, inputs["k_value"])
        return out


def build(num_keypoints=17, codec=None, *, input_size=(256, 256), depth=50, layers=None,
          widths=(64, 128, 256, 512), stem_channels=64, deconv_channels=(256, 256, 256),
          depth_bins=64, rootnet=True, root_loss_weight=1.0, root_index=0,
          joint_weights=None) -> PoseModel:
    """3DMPPE: PoseNet (+ RootNet). Without a codec: :class:`MPPE3DCodec` at ``input_size``
    with ``depth_bins`` depth bins and the maps' size (stride 32 / 2^deconvs)."""
    def backbone():
        return _backbone(depth, layers, widths, stem_channels)
    bb = backbone()
    if codec is None:
        stride = bb.stride / 2 ** len(deconv_channels)
        W, H = (int(round(int(v) / stride)) for v in input_size)
        codec = MPPE3DCodec(input_size, (W, H, depth_bins), root_index=root_index)
    if not isinstance(codec, MPPE3DCodec):
        raise TypeError(f"mppe3d: needs an MPPE3DCodec, got {type(codec).__name__}")
    posenet = PoseNet(num_keypoints, codec.volume_size[2], bb, deconv_channels)
    root = RootNet(backbone(), deconv_channels) if rootnet else None
    return PoseModel(MPPE3DNet(posenet, root),
                     MPPE3DHead(codec, root_loss_weight, joint_weights=joint_weights))


CONFIGS = {
    # official: ResNet-50, 256 x 256 crops, 64 x 64 x 64 volumes, three 256-channel deconvs
    "paper": dict(input_size=(256, 256), depth=50, deconv_channels=(256, 256, 256), depth_bins=64),
    "tiny": dict(input_size=(64, 64), depth=18, layers=[1, 1, 1], widths=(8, 16, 32),
                 stem_channels=8, deconv_channels=(16, 16), depth_bins=16),
}
