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

Inputs are ``{"image": (B, 3, H, W), "k_value": (B,)}``; :meth:`MPPE3D.forward` returns
``{"coords": (B, K, 3) voxels, "root": (B, 3)}`` (``root`` only with ``rootnet``) or, with
targets (:class:`pyhpe.codecs.MPPE3DCodec`), the losses ``loss_pose`` and ``loss_root``.
Absolute camera-frame joints: :func:`pyhpe.codecs.body3d.back_project` of the decoded pixels
and ``root depth + relative depth`` (done by the ``image3d`` task)."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
from torch import Tensor

from ..codecs.body3d import MPPE3DCodec
from .common import ResNet


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


class MPPE3D(nn.Module):
    """PoseNet (and, with ``rootnet``, RootNet: separate networks, as in the paper, trained
    side by side). See the module docstring for inputs, outputs and losses."""

    def __init__(self, codec: MPPE3DCodec, posenet: PoseNet, rootnet: Optional[RootNet] = None,
                 root_loss_weight: float = 1.0):
        super().__init__()
        self.codec = codec
        self.posenet = posenet
        self.rootnet = rootnet
        self.root_loss_weight = float(root_loss_weight)

    @staticmethod
    def _image(inputs):
        return inputs["image"] if isinstance(inputs, dict) else inputs

    def forward(self, inputs, targets: Optional[Dict[str, Tensor]] = None):
        from ..ops import soft_argmax_3d
        image = self._image(inputs)
        volumes = self.posenet(image)
        out = {"coords": soft_argmax_3d(volumes.float())}
        if self.rootnet is not None:
            if not isinstance(inputs, dict) or "k_value" not in inputs:
                raise ValueError("MPPE3D: RootNet needs inputs {'image', 'k_value'}")
            out["root"] = self.rootnet(image, inputs["k_value"])
        if targets is None:
            return out
        return self.loss(out, targets)

    def loss(self, out, targets) -> Dict[str, Tensor]:
        w = targets["keypoint_weights"].float()
        err = (out["coords"] - targets["coords"].float()).abs() * w[..., None]
        losses = {"loss_pose": err.sum(-1).mean() / 3.0}
        if "root" in out:
            rw = targets["root_weight"].float()
            rerr = (out["root"] - targets["root_coords"].float()).abs() * rw[:, None]
            losses["loss_root"] = self.root_loss_weight * rerr.sum(-1).mean() / 3.0
        return losses

    @torch.no_grad()
    def predict(self, inputs) -> Dict[str, Tensor]:
        """Decoded: ``keypoints (B, K, 2)`` input pixels, ``depth (B, K)`` mm relative to the
        root and, with RootNet, ``root (B, 2)`` input pixels and ``root_depth (B,)`` mm."""
        out = self(inputs)
        kp, dz = self.codec.decode(out["coords"])
        pred = {"keypoints": kp, "depth": dz}
        if "root" in out:
            pred["root"], pred["root_depth"] = self.codec.decode_root(out["root"])
        return pred


def build(num_keypoints=17, codec=None, *, input_size=(256, 256), depth=50, layers=None,
          widths=(64, 128, 256, 512), stem_channels=64, deconv_channels=(256, 256, 256),
          depth_bins=64, rootnet=True, root_loss_weight=1.0, root_index=0,
          joint_weights=None) -> MPPE3D:
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
    return MPPE3D(codec, posenet, root, root_loss_weight)


CONFIGS = {
    # official: ResNet-50, 256 x 256 crops, 64 x 64 x 64 volumes, three 256-channel deconvs
    "paper": dict(input_size=(256, 256), depth=50, deconv_channels=(256, 256, 256), depth_bins=64),
    "tiny": dict(input_size=(64, 64), depth=18, layers=[1, 1, 1], widths=(8, 16, 32),
                 stem_channels=8, deconv_channels=(16, 16), depth_bins=16),
}
