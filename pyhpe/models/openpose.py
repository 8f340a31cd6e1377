"""OpenPose-style network (Cao et al. 2017/2019): VGG features, then stages predicting Part
Affinity Fields and confidence maps, each stage refining the previous prediction."""
from __future__ import annotations

import torch.nn as nn

from ..codecs import PAFCodec
from ..ops.paf import COCO17_LIMBS, COCO18_LIMBS
from .common import heatmap_size, init_weights
from .heads import PAFHead, check_map_size
from .pose_model import PoseModel


def _vgg(cfg):
    layers, c = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c, v, 3, 1, 1), nn.ReLU(inplace=True)]
            c = v
    return nn.Sequential(*layers), c


VGG19_TO_CONV4_2 = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512)


class OpenPoseBackbone(nn.Module):
    """``(B, 3, H, W) -> (B, feat_channels, H/s, W/s)``: VGG layers (``vgg``: channels and
    "M" max-pools, s = 2 ** pools) and 3x3 reduction convs through ``reduce_channels`` to
    ``feat_channels`` (CMU's conv4_3_CPM 512 -> 256, conv4_4_CPM 256 -> 128), each with ReLU."""

    def __init__(self, vgg=VGG19_TO_CONV4_2, feat_channels=128, reduce_channels=(256,)):
        super().__init__()
        self.vgg, c = _vgg(vgg)
        layers = []
        for r in (*reduce_channels, feat_channels):
            layers += [nn.Conv2d(c, r, 3, 1, 1), nn.ReLU(inplace=True)]
            c = r
        self.reduce = nn.Sequential(*layers)
        self.stride = 2 ** sum(1 for v in vgg if v == "M")
        self.out_channels = feat_channels
        init_weights(self)

    def forward(self, x):
        return self.reduce(self.vgg(x))


def default_limbs(num_keypoints: int):
    """OpenPose's COCO-18 limbs for 18 keypoints, pyhpe's COCO-17 PAF tree for 17."""
    if num_keypoints == 18:
        return COCO18_LIMBS
    if num_keypoints == 17:
        return COCO17_LIMBS
    raise ValueError(f"openpose: no default limbs for {num_keypoints} keypoints; pass a PAFCodec")


def build(num_keypoints=17, codec=None, *, input_size=(368, 368), num_limbs=None, num_stages=6,
          vgg=VGG19_TO_CONV4_2, feat_channels=128, stage_channels=128, stage1_kernel=3,
          refine_kernel=7, refine_convs=5, paf_weight=1.0, joint_weights=None,
          reduce_channels=(256,), stage1_hidden=512) -> PoseModel:
    """OpenPose backbone + :class:`PAFHead` (``num_stages`` stages). Without a codec:
    PAFCodec(input_size, input_size / stride, :func:`default_limbs`); ``num_limbs``, when
    given, must match the codec's limbs. The paper config is CMU's COCO body model
    (``pose_deploy_linevec.prototxt``; loads ``body_pose_model.pth`` through
    :func:`pyhpe.apis.load_pretrained` with ``num_keypoints=18``)."""
    backbone = OpenPoseBackbone(vgg, feat_channels, reduce_channels)
    if codec is None:
        codec = PAFCodec(input_size, heatmap_size(input_size, backbone.stride),
                         default_limbs(num_keypoints))
    check_map_size(codec, backbone.stride, "openpose")
    if num_limbs is not None and int(num_limbs) != len(codec.limbs):
        raise ValueError(f"openpose: num_limbs={num_limbs} but the codec has {len(codec.limbs)} limbs")
    head = PAFHead(codec, feat_channels, num_keypoints, num_stages, stage_channels, stage1_kernel,
                   refine_kernel, refine_convs, paf_weight, joint_weights=joint_weights,
                   stage1_hidden=stage1_hidden)
    return PoseModel(backbone, head)


CONFIGS = {"paper": dict(),
           "tiny": dict(input_size=(48, 64), num_stages=2, vgg=(8, "M", 16, "M", 16, "M", 16),
                        feat_channels=16, reduce_channels=(), stage1_hidden=16, stage_channels=16, refine_convs=1, refine_kernel=3),
           # a stride-4 network that learns synthetic figures in minutes on a CPU
           "small": dict(input_size=(128, 128), num_stages=2,
                         vgg=(16, "M", 32, 32, "M", 48, 48, 48), feat_channels=48,
                         reduce_channels=(), stage1_hidden=48,
                         stage_channels=48, refine_convs=3, refine_kernel=3)}
