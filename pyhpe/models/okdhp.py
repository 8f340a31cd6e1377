"""OKDHP (Li et al., ICCV 2021, "Online Knowledge Distillation for Efficient Pose
Estimation") as a wrapper around a heatmap model family.

Architecture: the low-level layers of the ``base`` model are shared; the last
``branch_stages`` ResNet stages and the whole heatmap head (deconvolutions + final conv) are
repeated in ``num_branches`` independently initialised branches. The Feature Aggregation Unit
(FAU) looks at the branches' last feature maps (concatenated, global-average pooled, FC -
ReLU - FC, softmax over the branches) and weighs the branches' heatmaps into the ensemble
teacher ``H_e = sum_i a_i H_i``.

Loss (from ``forward(inputs, targets)``, so the engine trains it unchanged):
``loss_heatmap = sum_i MSE(H_i, GT) + MSE(H_e, GT)`` (every term mmpose's weighted
``KeypointMSELoss``) and ``loss_kd = kd_weight * sum_i MSE(H_i, stopgrad(H_e))``: each branch
is distilled towards the detached ensemble, the ensemble itself learns from the ground truth.

Inference: one branch (``deploy``, default 0), as the paper deploys a single branch; in eval
mode only the shared layers and that branch run, so the deployed network is exactly the base
network (``deploy_parameters()`` counts it).

Simplifications (documented): the paper builds on stacked hourglasses (sharing the first
stacks and branching the last); here the base is a ResNet + deconvolution heatmap model
(``simple_baseline``), branched at its last ResNet stage(s). The FAU is read as
pooled branch features -> FC -> softmax weights; the paper's exact FAU layer sizes are not
reproduced (``fau_reduction`` sets the hidden width).
"""
from __future__ import annotations

from typing import Dict, List, Union

import torch
import torch.nn as nn
from torch import Tensor

from .common import ResNet
from .heads.heatmap import HeatmapHead
from .heads.losses import keypoint_mse_loss
from .pose_model import PoseModel

Outputs = Union[Tensor, List[Tensor]]


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


class FAU(nn.Module):
    """Feature Aggregation Unit: branch features -> softmax weights over the branches."""

    def __init__(self, channels: int, num_branches: int, reduction: int = 4):
        super().__init__()
        hidden = max(channels * num_branches // reduction, num_branches)
        self.fc = nn.Sequential(nn.Linear(channels * num_branches, hidden), nn.ReLU(inplace=True),
                                nn.Linear(hidden, num_branches))
        nn.init.zeros_(self.fc[2].weight)          # start from the plain average
        nn.init.zeros_(self.fc[2].bias)

    def forward(self, feats: List[Tensor]) -> Tensor:
        pooled = torch.cat([f.mean(dim=(2, 3)) for f in feats], dim=1)
        return torch.softmax(self.fc(pooled), dim=1)          # (B, num_branches)


class OKDHPHead(HeatmapHead):
    """The branches (last ResNet stages + heatmap head each), the FAU and the online
    distillation loss. Training outputs: ``[H_1, ..., H_m, H_e]``; eval outputs: the
    deployed branch's maps (a tensor)."""

    def __init__(self, codec, tails: List[nn.Module], heads: List[HeatmapHead], deploy: int = 0,
                 kd_weight: float = 1.0, fau_reduction: int = 4, joint_weights=None):
        super().__init__(codec, None, heads[0].num_keypoints, joint_weights=joint_weights)
        if not 0 <= deploy < len(heads):
            raise ValueError(f"OKDHP: 'deploy' must be in [0, {len(heads)}), got {deploy}")
        self.tails = nn.ModuleList(tails)
        self.deconvs = nn.ModuleList([h.deconv for h in heads])
        self.finals = nn.ModuleList([h.final for h in heads])
        self.deploy = int(deploy)
        self.kd_weight = float(kd_weight)
        channels = heads[0].final.in_channels
        self.fau = FAU(channels, len(heads), fau_reduction)

    @property
    def num_branches(self) -> int:
        return len(self.finals)

    def branch(self, i: int, x: Tensor):
        feat = self.deconvs[i](self.tails[i](x))
        return feat, self.finals[i](feat)

    def forward(self, x: Tensor) -> Outputs:
        if not self.training:
            return self.branch(self.deploy, x)[1]
        feats, maps = zip(*(self.branch(i, x) for i in range(self.num_branches)))
        w = self.fau(list(feats)).to(maps[0].dtype)
        ensemble = sum(w[:, i, None, None, None] * m for i, m in enumerate(maps))
        return list(maps) + [ensemble]

    def final_outputs(self, outputs: Outputs) -> Tensor:
        if isinstance(outputs, (list, tuple)):
            outputs = outputs[self.deploy]
        return outputs[:, :self.num_keypoints]

    def loss(self, outputs: Outputs, targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        target = targets["heatmaps"]
        w = self.map_weights(targets)
        if not isinstance(outputs, (list, tuple)):             # eval mode: the deployed branch
            return {"loss_heatmap": keypoint_mse_loss(outputs, target, w)}
        *branches, ensemble = outputs
        teacher = ensemble.detach()
        return {"loss_heatmap": sum(keypoint_mse_loss(o, target, w) for o in outputs),
                "loss_kd": self.kd_weight * sum(keypoint_mse_loss(o, teacher, w)
                                                for o in branches)}


class OKDHP(PoseModel):
    """A :class:`PoseModel` whose backbone is the shared trunk and whose head is an
    :class:`OKDHPHead`."""

    def deploy_parameters(self) -> int:
        """Parameters of the deployed network: the shared trunk and one branch."""
        h = self.head
        parts = [self.backbone, h.tails[h.deploy], h.deconvs[h.deploy], h.finals[h.deploy]]
        return sum(p.numel() for m in parts for p in m.parameters())


def build(num_keypoints=17, codec=None, *, base="simple_baseline", base_config="tiny",
          num_branches=3, branch_stages=1, deploy=0, kd_weight=1.0, fau_reduction=4,
          joint_weights=None, **base_overrides) -> OKDHP:
    """``num_branches`` copies of the last ``branch_stages`` ResNet stages and the heatmap head
    of ``build_model(base, base_config, **base_overrides)``, each branch initialised on its
    own; ``kd_weight`` weighs the distillation term."""
    from . import build_model
    if num_branches < 2:
        raise ValueError(f"OKDHP: 'num_branches' must be >= 2, got {num_branches}")
    models = [build_model(base, base_config, num_keypoints, codec=codec, **base_overrides)
              for _ in range(num_branches)]
    first = models[0]
    if not isinstance(first.backbone, ResNet) or type(first.head) is not HeatmapHead \
            or isinstance(first.head.final, nn.Identity):
        raise ValueError(f"OKDHP: base {base!r} must be a ResNet + deconvolution heatmap model "
                         "(e.g. 'simple_baseline')")
    n_stages = len(first.backbone.stages)
    if not 0 <= branch_stages < n_stages:
        raise ValueError(f"OKDHP: 'branch_stages' must be in [0, {n_stages}), got {branch_stages}")
    shared = n_stages - branch_stages
    trunk = SharedTrunk(first.backbone, shared)
    tails = [nn.Sequential(*list(m.backbone.stages)[shared:]) for m in models]
    head = OKDHPHead(first.codec, tails, [m.head for m in models], deploy, kd_weight,
                     fau_reduction, joint_weights)
    return OKDHP(trunk, head)


CONFIGS = {
    # SimpleBaseline-R50 with three branches of its last ResNet stage and deconvolution head;
    # the deployed branch is SimpleBaseline-R50 itself
    "paper": dict(base="simple_baseline", base_config="paper", num_branches=3, branch_stages=1),
    "tiny": dict(base="simple_baseline", base_config="tiny", num_branches=3, branch_stages=1),
}
