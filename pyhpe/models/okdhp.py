"""OKDHP (Li et al., ICCV 2021, "Online Knowledge Distillation for Efficient Pose
Estimation"), as the official code (zhengli97/OKDHP, ``lib/models/hourglass_okd_share_less.py``,
``lib/core/function_okd.py``, ``lib/core/loss.py``) defines it.

Architecture (``base="hourglass"``, the paper's): a stacked hourglass (FPD/pytorch-pose
layout: pre-activation bottlenecks of expansion 2 with biased convolutions, 256 features)
whose stem and first ``num_stacks - branch_stacks`` stacks are shared and whose last
``branch_stacks`` stacks are repeated in ``num_branches`` independently initialised
branches (official: 4 stacks, the last 2 in 3 branches). The **Feature Aggregation Unit**
reads the shared stem features: ``num_kernels`` parallel ``k x k`` convolutions (``k = 3, 5,
7``; conv-BN-ReLU, 256 channels) summed, global average pooled, ``FC 256->64``, then one
``FC 64->K`` per branch and a softmax over the branches: per-joint weights ``a_{b,k}``. The
ensemble teacher is ``H_e[k] = sum_b a_{b,k} H_b[k]`` over the branches' last heatmaps.

Loss (``function_okd.train``): ``loss_heatmap`` = the MSE of every output (the shared
stacks' and every branch stack's) to the target + ``ens_weight`` x the ensemble's MSE;
``loss_kd`` = ``kd_weight x ramp x sum`` over the same outputs of the pixel-wise KL
divergence ``JointsKLDLoss(H, H_e)`` (per joint: softmax over the pixels of the weighted
maps, ``KL(softmax(H_e) || softmax(H))`` summed over pixels, batch and joints, divided by
``B x H x W``). As in the official code the teacher is not detached (the KD term also trains
the ensemble and the FAU); ``detach_teacher=True`` detaches it. ``ramp`` is the mean-teacher
ramp-up ``exp(-5 (1 - t/T)^2)`` over ``kd_rampup`` training steps (official: 60 epochs;
``0``: 1 throughout). The MSE is pyhpe's :func:`keypoint_mse_loss` (mmpose's, without the
official ``0.5`` factor).

Inference: one branch (``deploy``) as the paper deploys it: the shared stem and stacks and
that branch's stacks, i.e. a plain ``num_stacks`` hourglass (``deploy_parameters()``).

``base="simple_baseline"`` (a variant): a ResNet + deconvolution heatmap model whose last
``branch_stages`` ResNet stages and deconvolution head are branched, the same FAU on the
shared trunk's features, the same losses.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .common import ResNet, init_weights
from .heads.heatmap import HeatmapHead, check_map_size, default_heatmap_codec
from .heads.losses import keypoint_mse_loss
from .pose_model import PoseModel

Outputs = Union[Tensor, List[Tensor]]


def joints_kld_loss(pred: Tensor, target: Tensor, weights: Optional[Tensor] = None) -> Tensor:
    """The official ``JointsKLDLoss``: per joint ``KL(softmax(w t) || softmax(w p))`` over the
    ``H x W`` pixels (``w`` the keypoint weight), summed over pixels, joints and batch, divided
    by ``B x H x W``."""
    b, k, h, w = pred.shape
    p, t = pred.float().reshape(b, k, h * w), target.float().reshape(b, k, h * w)
    if weights is not None:
        wt = weights.float().reshape(b, k, 1)
        p, t = p * wt, t * wt
    kl = F.kl_div(F.log_softmax(p, -1), F.softmax(t, -1), reduction="none")
    return kl.sum() / (b * h * w)


class FAU(nn.Module):
    """Feature Aggregation Unit (official): ``num_kernels`` parallel ``k x k`` conv-BN-ReLU
    (``k = 3, 5, 7, ...``) on the shared features, summed, global average pooled, ``FC
    C->mid``, one ``FC mid->K`` per branch, softmax over the branches: ``(B, branches, K)``."""

    def __init__(self, channels: int, num_branches: int, num_keypoints: int, num_kernels: int = 3,
                 mid: int = 64):
        super().__init__()
        self.convs = nn.ModuleList([nn.Sequential(nn.Conv2d(channels, channels, 3 + 2 * i, 1, 1 + i),
                                                  nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
                                    for i in range(num_kernels)])
        self.fc = nn.Linear(channels, mid)
        self.fcs = nn.ModuleList([nn.Linear(mid, num_keypoints) for _ in range(num_branches)])

    def forward(self, x: Tensor) -> Tensor:
        u = sum(conv(x) for conv in self.convs)
        z = self.fc(u.mean((2, 3)))
        return torch.softmax(torch.stack([fc(z) for fc in self.fcs], 1), 1)

    @staticmethod
    def ensemble(weights: Tensor, maps: List[Tensor]) -> Tensor:
        """``sum_b a_{b,k} H_b[k]``."""
        return sum(weights[:, i, :, None, None].to(m.dtype) * m for i, m in enumerate(maps))


class OKDHPLoss:
    """The official training loss over ``outputs`` (every supervised map) and ``ensemble``."""

    def __init__(self, kd_weight: float = 2.0, ens_weight: float = 1.0, kd_rampup: int = 0,
                 detach_teacher: bool = False):
        self.kd_weight, self.ens_weight = float(kd_weight), float(ens_weight)
        self.kd_rampup, self.detach_teacher = int(kd_rampup), bool(detach_teacher)

    def ramp(self, step: int) -> float:
        if self.kd_rampup <= 0:
            return 1.0
        phase = 1.0 - min(max(step, 0), self.kd_rampup) / self.kd_rampup
        return float(math.exp(-5.0 * phase * phase))

    def __call__(self, outputs: List[Tensor], ensemble: Tensor, target: Tensor, w: Tensor, kw: Tensor,
                 step: int) -> Dict[str, Tensor]:
        teacher = ensemble.detach() if self.detach_teacher else ensemble
        hard = sum(keypoint_mse_loss(o, target, w) for o in outputs)
        return {"loss_heatmap": hard + self.ens_weight * keypoint_mse_loss(ensemble, target, w),
                "loss_kd": self.kd_weight * self.ramp(step) * sum(joints_kld_loss(o, teacher, kw)
                                                                  for o in outputs)}


class _OKDHPHeadBase(HeatmapHead):
    """Shared loss/decoding of both OKDHP variants; training outputs end with the ensemble."""

    def _init_okd(self, kd_weight, ens_weight, kd_rampup, detach_teacher):
        self.okd_loss = OKDHPLoss(kd_weight, ens_weight, kd_rampup, detach_teacher)
        self.register_buffer("step", torch.zeros((), dtype=torch.long), persistent=False)

    def _okd_losses(self, outputs: List[Tensor], targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        *maps, ensemble = outputs
        losses = self.okd_loss(maps, ensemble, targets["heatmaps"], self.map_weights(targets),
                               targets.get("keypoint_weights"), int(self.step))
        if self.training:
            self.step += 1
        return losses


# --------------------------------------------------------------------- hourglass (official)
class _PreBottleneck(nn.Module):
    """The official ``Bottleneck`` (expansion 2): BN-ReLU-conv1x1, BN-ReLU-conv3x3,
    BN-ReLU-conv1x1 (biased convolutions) + the skip (a biased 1x1 conv where the width
    changes)."""

    def __init__(self, cin, planes):
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, planes, 1),
                                  nn.BatchNorm2d(planes), nn.ReLU(inplace=True), nn.Conv2d(planes, planes, 3, 1, 1),
                                  nn.BatchNorm2d(planes), nn.ReLU(inplace=True), nn.Conv2d(planes, 2 * planes, 1))
        self.skip = nn.Identity() if cin == 2 * planes else nn.Conv2d(cin, 2 * planes, 1)

    def forward(self, x):
        return self.body(x) + self.skip(x)


class _Hourglass(nn.Module):
    """The official ``Hourglass``: per level ``up1``, ``low1``, ``low3`` residuals (+ the
    innermost ``low2``), max-pool down, nearest x2 up."""

    def __init__(self, depth, planes, num_blocks):
        super().__init__()
        ch = 2 * planes

        def res():
            return nn.Sequential(*[_PreBottleneck(ch, planes) for _ in range(num_blocks)])

        self.up1, self.low1, self.low3 = res(), res(), res()
        self.low2 = _Hourglass(depth - 1, planes, num_blocks) if depth > 1 else res()

    def forward(self, x):
        up = self.up1(x)
        low = self.low3(self.low2(self.low1(F.max_pool2d(x, 2))))
        return up + F.interpolate(low, size=up.shape[-2:], mode="nearest")


class _Stack(nn.Module):
    """One official ``individual`` stack: hourglass, residual, conv1x1-BN-ReLU; the score
    1x1 conv; the merges ``_fc`` / ``_score`` into the next stack (``merge``)."""

    def __init__(self, planes, num_keypoints, depth, num_blocks, merge):
        super().__init__()
        ch = 2 * planes
        self.body = nn.Sequential(_Hourglass(depth, planes, num_blocks),
                                  *[_PreBottleneck(ch, planes) for _ in range(num_blocks)],
                                  nn.Conv2d(ch, ch, 1), nn.BatchNorm2d(ch), nn.ReLU(inplace=True))
        self.score = nn.Conv2d(ch, num_keypoints, 1)
        self.fc_ = nn.Conv2d(ch, ch, 1) if merge else None
        self.score_ = nn.Conv2d(num_keypoints, ch, 1) if merge else None

    def forward(self, x):
        y = self.body(x)
        s = self.score(y)
        return s, (x + self.fc_(y) + self.score_(s) if self.fc_ is not None else None)


class OKDHourglass(nn.Module):
    """Backbone: training ``(B, 3, H, W) -> [shared stacks' maps..., branch 0's stack maps...,
    ..., ensemble]``; evaluation: the deployed branch's last maps ``(B, K, H/4, W/4)``."""

    stride = 4

    def __init__(self, num_keypoints=16, num_stacks=4, branch_stacks=2, num_branches=3, features=256,
                 depth=4, num_blocks=1, num_kernels=3, fau_mid=64, deploy=0):
        super().__init__()
        if num_branches < 2:
            raise ValueError(f"OKDHP: 'num_branches' must be >= 2, got {num_branches}")
        if not 1 <= branch_stacks <= num_stacks:
            raise ValueError(f"OKDHP: 'branch_stacks' must be in [1, num_stacks={num_stacks}], got {branch_stacks}")
        if not 0 <= deploy < num_branches:
            raise ValueError(f"OKDHP: 'deploy' must be in [0, {num_branches}), got {deploy}")
        inp, planes = features // 4, features // 2
        ch = 2 * planes
        self.deploy = int(deploy)
        self.stem = nn.Sequential(nn.Conv2d(3, inp, 7, 2, 3), nn.BatchNorm2d(inp), nn.ReLU(inplace=True),
                                  _PreBottleneck(inp, inp), nn.MaxPool2d(2, 2),
                                  _PreBottleneck(2 * inp, inp), _PreBottleneck(2 * inp, planes))
        self.fau = FAU(ch, num_branches, num_keypoints, num_kernels, fau_mid)
        self.shared = nn.ModuleList([_Stack(planes, num_keypoints, depth, num_blocks, True)
                                     for _ in range(num_stacks - branch_stacks)])
        self.branches = nn.ModuleList([nn.ModuleList([_Stack(planes, num_keypoints, depth, num_blocks,
                                                             j < branch_stacks - 1)
                                                      for j in range(branch_stacks)])
                                       for _ in range(num_branches)])
        init_weights(self)
        for m in self.modules():
            if isinstance(m, _Stack):  # heatmap outputs start near zero
                nn.init.normal_(m.score.weight, std=0.001)

    def forward(self, x) -> Outputs:
        x = self.stem(x)
        a = self.fau(x) if self.training else None
        outs = []
        for st in self.shared:
            s, x = st(x)
            outs.append(s)
        if not self.training:
            for st in self.branches[self.deploy]:
                s, x = st(x)
            return s
        lasts = []
        for branch in self.branches:
            xb = x
            for st in branch:
                s, xb = st(xb)
                outs.append(s)
            lasts.append(s)
        return outs + [FAU.ensemble(a, lasts)]


class OKDHourglassHead(_OKDHPHeadBase):
    """Pass-through head of :class:`OKDHourglass`: the OKDHP loss in training; the deployed
    branch's maps decoded at inference."""

    def __init__(self, codec, num_keypoints, deploy_index: int, kd_weight=2.0, ens_weight=1.0,
                 kd_rampup=0, detach_teacher=False, joint_weights=None):
        super().__init__(codec, None, num_keypoints, joint_weights=joint_weights)
        self.deploy_index = int(deploy_index)
        self._init_okd(kd_weight, ens_weight, kd_rampup, detach_teacher)

    def forward(self, feats) -> Outputs:
        return feats

    def final_outputs(self, outputs: Outputs) -> Tensor:
        if isinstance(outputs, (list, tuple)):
            outputs = outputs[self.deploy_index]
        return outputs[:, :self.num_keypoints]

    def loss(self, outputs: Outputs, targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        if not isinstance(outputs, (list, tuple)):             # eval mode: the deployed branch
            return {"loss_heatmap": keypoint_mse_loss(outputs, targets["heatmaps"], self.map_weights(targets))}
        return self._okd_losses(list(outputs), targets)


# --------------------------------------------------------------------- ResNet variant
class SharedTrunk(nn.Module):
    """The shared low-level layers: the ResNet stem and its first stages."""

    def __init__(self, resnet: ResNet, num_shared: int):
        super().__init__()
        self.stem = resnet.stem
        self.stages = nn.ModuleList(list(resnet.stages)[:num_shared])

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for st in self.stages:
            x = st(x)
        return x


class OKDHPHead(_OKDHPHeadBase):
    """ResNet variant: the branches (last ResNet stages + heatmap head each) and the FAU on the
    shared trunk's features. Training outputs: ``[H_1, ..., H_m, H_e]``; eval outputs: the
    deployed branch's maps (a tensor)."""

    def __init__(self, codec, tails: List[nn.Module], heads: List[HeatmapHead], trunk_channels: int,
                 deploy: int = 0, kd_weight: float = 2.0, ens_weight: float = 1.0, kd_rampup: int = 0,
                 detach_teacher: bool = False, num_kernels: int = 3, fau_mid: int = 64, joint_weights=None):
        super().__init__(codec, None, heads[0].num_keypoints, joint_weights=joint_weights)
        if not 0 <= deploy < len(heads):
            raise ValueError(f"OKDHP: 'deploy' must be in [0, {len(heads)}), got {deploy}")
        self.tails = nn.ModuleList(tails)
        self.deconvs = nn.ModuleList([h.deconv for h in heads])
        self.finals = nn.ModuleList([h.final for h in heads])
        self.deploy = int(deploy)
        self.fau = FAU(trunk_channels, len(heads), heads[0].num_keypoints, num_kernels, fau_mid)
        init_weights(self.fau)
        self._init_okd(kd_weight, ens_weight, kd_rampup, detach_teacher)

    @property
    def num_branches(self) -> int:
        return len(self.finals)

    def branch(self, i: int, x: Tensor) -> Tensor:
        return self.finals[i](self.deconvs[i](self.tails[i](x)))

    def forward(self, x: Tensor) -> Outputs:
        if not self.training:
            return self.branch(self.deploy, x)
        maps = [self.branch(i, x) for i in range(self.num_branches)]
        return maps + [FAU.ensemble(self.fau(x), maps)]

    def final_outputs(self, outputs: Outputs) -> Tensor:
        if isinstance(outputs, (list, tuple)):
            outputs = outputs[self.deploy]
        return outputs[:, :self.num_keypoints]

    def loss(self, outputs: Outputs, targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        if not isinstance(outputs, (list, tuple)):
            return {"loss_heatmap": keypoint_mse_loss(outputs, targets["heatmaps"], self.map_weights(targets))}
        return self._okd_losses(list(outputs), targets)


class OKDHP(PoseModel):
    """A :class:`PoseModel` for both OKDHP variants; ``deploy_parameters()`` counts the
    deployed single-branch network."""

    def deploy_parameters(self) -> int:
        if isinstance(self.backbone, OKDHourglass):
            bb = self.backbone
            parts = [bb.stem, bb.shared, bb.branches[bb.deploy]]
        else:
            h = self.head
            parts = [self.backbone, h.tails[h.deploy], h.deconvs[h.deploy], h.finals[h.deploy]]
        return sum(p.numel() for m in parts for p in m.parameters())


def build(num_keypoints=17, codec=None, *, base="hourglass", base_config="tiny", num_branches=3,
          branch_stages=1, deploy=0, kd_weight=2.0, ens_weight=1.0, kd_rampup=0, detach_teacher=False,
          num_kernels=3, fau_mid=64, input_size=(256, 256), joint_weights=None, **arch) -> OKDHP:
    """``base="hourglass"``: :class:`OKDHourglass` (``arch``: ``num_stacks``,
    ``branch_stacks``, ``features``, ``depth``, ``num_blocks``). ``base="simple_baseline"``:
    ``num_branches`` copies of the last ``branch_stages`` ResNet stages and the heatmap head of
    ``build_model(base, base_config, **arch)``."""
    okd = dict(kd_weight=kd_weight, ens_weight=ens_weight, kd_rampup=kd_rampup, detach_teacher=detach_teacher)
    if base == "hourglass":
        bb = OKDHourglass(num_keypoints, num_branches=num_branches, deploy=deploy, num_kernels=num_kernels,
                          fau_mid=fau_mid, **arch)
        if codec is None:
            codec = default_heatmap_codec(input_size, OKDHourglass.stride)
        check_map_size(codec, OKDHourglass.stride, "OKDHP")
        n_shared, n_branch = len(bb.shared), len(bb.branches[0])
        head = OKDHourglassHead(codec, num_keypoints, n_shared + (deploy + 1) * n_branch - 1,
                                joint_weights=joint_weights, **okd)
        return OKDHP(bb, head)
    from . import build_model
    if num_branches < 2:
        raise ValueError(f"OKDHP: 'num_branches' must be >= 2, got {num_branches}")
    models = [build_model(base, base_config, num_keypoints, codec=codec, **arch)
              for _ in range(num_branches)]
    first = models[0]
    if not isinstance(first.backbone, ResNet) or type(first.head) is not HeatmapHead \
            or isinstance(first.head.final, nn.Identity):
        raise ValueError(f"OKDHP: base {base!r} must be 'hourglass' or a ResNet + deconvolution heatmap "
                         "model (e.g. 'simple_baseline')")
    n_stages = len(first.backbone.stages)
    if not 0 <= branch_stages < n_stages:
        raise ValueError(f"OKDHP: 'branch_stages' must be in [0, {n_stages}), got {branch_stages}")
    shared = n_stages - branch_stages
    trunk = SharedTrunk(first.backbone, shared)
    with torch.no_grad():
        trunk_channels = trunk(torch.zeros(1, 3, 64, 64)).shape[1]
    tails = [nn.Sequential(*list(m.backbone.stages)[shared:]) for m in models]
    head = OKDHPHead(first.codec, tails, [m.head for m in models], trunk_channels, deploy,
                     num_kernels=num_kernels, fau_mid=fau_mid, joint_weights=joint_weights, **okd)
    return OKDHP(trunk, head)


CONFIGS = {
    # the official MPII/COCO setting: a 4-stack hourglass (256 features), the last 2 stacks
    # in 3 branches, FAU kernels 3/5/7, KD weight 2, ensemble weight 1 (run_train_hg.sh)
    "paper": dict(base="hourglass", num_stacks=4, branch_stacks=2, num_branches=3, features=256),
    "tiny": dict(input_size=(48, 64), base="hourglass", num_stacks=2, branch_stacks=1, num_branches=3,
                 features=32, depth=2, fau_mid=8),
    # variant: SimpleBaseline-R50 with three branches of its last ResNet stage + deconvolutions
    "simple_baseline_r50": dict(base="simple_baseline", base_config="paper", num_branches=3, branch_stages=1),
    "tiny_resnet": dict(base="simple_baseline", base_config="tiny", num_branches=3, branch_stages=1),
}
