"""ORPM (Mehta et al., 3DV 2018): single-shot multi-person 3-D pose from monocular RGB with
occlusion-robust pose maps.

Network (our reading of the paper, on VNect's trunk): ResNet-50 to res4f (stride 16), then a
2-D branch (res5a-style bottleneck, 4x4 stride-2 deconvolution, 3x3 conv) predicting ``K``
heatmaps and ``2L`` PAFs, and a 3-D branch (the same layers on the trunk's features, joined
by the 2-D branch's maps) predicting the ORPMs: ``3K`` X / Y / Z location maps (stride 8).

Loss: heatmap and PAF L2, and the ORPM L2 on the pixels the codec wrote
(:class:`pyhpe.codecs.ORPMCodec`: the whole pose around the torso and pelvis, each limb's
joints around the limb's joints). The model is a :class:`~pyhpe.models.pose_model.PoseModel`:
:class:`ORPMNet` and the head :class:`~pyhpe.models.heads.body3d.ORPMHead`, which owns the loss
and inference: ``head.predict_people(outputs)``: PAF grouping of the 2-D joints
(:func:`pyhpe.ops.paf_group`) then the ORPM read-out rules
(:func:`pyhpe.codecs.body3d.orpm_read_sources`); on person crops (the ``image3d`` task)
``model.predict`` keeps the highest-scoring person of each crop.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..codecs.body3d import ORPMCodec
from .common import ResNet, conv_bn_act
from .heads.body3d import ORPMHead
from .pose_model import PoseModel
from .vnect import _Bottleneck


def _up(cin, cout):
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


def _out(cin, cout):
    conv = nn.Conv2d(cin, cout, 1)
    nn.init.normal_(conv.weight, std=0.001)
    nn.init.zeros_(conv.bias)
    return conv


class ORPMNet(nn.Module):
    """``(B, 3, H, W) -> (heatmaps (B, K, h, w), pafs (B, 2L, h, w), orpm (B, K, 3, h, w))``."""

    def __init__(self, num_keypoints: int, num_limbs: int, backbone: ResNet,
                 block=(512, 512, 1024), up_channels=128, final_channels=128):
        super().__init__()
        K, L = int(num_keypoints), int(num_limbs)
        self.num_keypoints = K
        self.backbone = backbone
        c = backbone.out_channels
        self.branch2d = nn.Sequential(_Bottleneck(c, *block), _up(block[2], up_channels),
                                      conv_bn_act(up_channels, final_channels, 3))
        self.out2d = _out(final_channels, K + 2 * L)
        self.branch3d = nn.Sequential(_Bottleneck(c, *block), _up(block[2], up_channels))
        self.fuse3d = conv_bn_act(up_channels + K + 2 * L, final_channels, 3)
        self.out3d = _out(final_channels, 3 * K)

    def forward(self, image):
        if isinstance(image, dict):
            image = image["image"]
        f = self.backbone(image)
        maps2d = self.out2d(self.branch2d(f))
        orpm = self.out3d(self.fuse3d(torch.cat([self.branch3d(f), maps2d], 1)))
        K = self.num_keypoints
        B, _, h, w = orpm.shape
        return maps2d[:, :K], maps2d[:, K:], orpm.reshape(B, K, 3, h, w)


def build(num_keypoints=17, codec=None, *, input_size=(368, 368), depth=50, layers=(3, 4, 6),
          widths=(64, 128, 256), stem_channels=64, stem_pool=True, block=(512, 512, 1024),
          up_channels=128, final_channels=128, orpm_weight=1.0, parents=None, torso=None,
          root_index=0, joint_weights=None) -> PoseModel:
    """ORPM; without a codec: :class:`ORPMCodec` at ``input_size`` for ``parents`` (default:
    Human3.6M's 17-joint tree, torso = thorax)."""
    backbone = ResNet(depth, list(layers), widths, "bottleneck", stem_channels, stem_pool, "conv7")
    if codec is None:
        from ..keypoints import get_keypoint_set
        kset = get_keypoint_set("h36m17")
        parents = kset.parents if parents is None else parents
        stride = backbone.stride / 2
        codec = ORPMCodec(input_size, tuple(int(round(int(v) / stride)) for v in input_size),
                          parents, 8 if torso is None else torso, root_index)
    if not isinstance(codec, ORPMCodec):
        raise TypeError(f"orpm: needs an ORPMCodec, got {type(codec).__name__}")
    if codec.num_keypoints != num_keypoints:
        raise ValueError(f"orpm: the codec has {codec.num_keypoints} joints, the model "
                         f"{num_keypoints}")
    net = ORPMNet(num_keypoints, len(codec.paf.limbs), backbone, block, up_channels, final_channels)
    return PoseModel(net, ORPMHead(codec, orpm_weight, joint_weights=joint_weights))


CONFIGS = {
    "paper": dict(input_size=(368, 368), depth=50, layers=(3, 4, 6), widths=(64, 128, 256)),
    "tiny": dict(input_size=(64, 64), layers=(1, 1, 1), widths=(8, 16, 32), stem_channels=8,
                 stem_pool=False, block=(32, 32, 64), up_channels=16, final_channels=16),
}
