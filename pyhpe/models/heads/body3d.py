"""Heads of the image-based 3-D models: pass-through heads over their networks' outputs that
own the paper's loss and the prediction through the model's codec
(:mod:`pyhpe.codecs.body3d`).

Each ``predict(outputs)`` returns the decoded dict the ``image3d`` task reads: ``keypoints``
``(B, K, 2)`` input pixels and either ``depth`` ``(B, K)`` mm relative to the root (3DMPPE,
back-projected with the camera by the task) or ``keypoints_3d`` ``(B, K, 3)`` root-relative
mm with ``scores`` (VNect, DconvMP, ORPM)."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ...codecs.body3d import DconvMPCodec, MPPE3DCodec, ORPMCodec, VNectCodec
from .base import BaseHead


def _no_flip(name, flipped_outputs):
    if flipped_outputs is not None:
        raise NotImplementedError(f"{name}: flip testing is not supported")


def _check_maps(name, maps: Tensor, codec) -> None:
    if torch.jit.is_tracing():      # export: shapes are fixed by the traced input
        return
    if tuple(maps.shape[-2:]) != tuple(codec.heatmap_size[::-1]):
        raise ValueError(f"{name}: the network's maps are {tuple(maps.shape[-2:])} (H, W) but "
                         f"the codec's heatmap_size is {codec.heatmap_size} (W, H)")


class MPPE3DHead(BaseHead):
    """3DMPPE over ``{"coords": (B, K, 3) voxels, "root": (B, 3)}`` (``root`` with RootNet):
    the official L1 losses ``loss_pose`` ``(|dx| + |dy| + |dz|) / 3`` on visible joints and
    ``loss_root`` on RootNet's ``(x, y, Z)`` (times ``root_loss_weight``)."""

    def __init__(self, codec: MPPE3DCodec, root_loss_weight: float = 1.0, joint_weights=None):
        if not isinstance(codec, MPPE3DCodec):
            raise TypeError(f"MPPE3DHead: needs an MPPE3DCodec, got {type(codec).__name__}")
        super().__init__(codec, joint_weights)
        self.root_loss_weight = float(root_loss_weight)

    def forward(self, feats):
        return feats

    def loss(self, outputs, targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        w = self.keypoint_weights(targets)
        err = (outputs["coords"] - targets["coords"].float()).abs() * w[..., None]
        losses = {"loss_pose": err.sum(-1).mean() / 3.0}
        if "root" in outputs:
            rw = targets["root_weight"].float()
            rerr = (outputs["root"] - targets["root_coords"].float()).abs() * rw[:, None]
            losses["loss_root"] = self.root_loss_weight * rerr.sum(-1).mean() / 3.0
        return losses

    def predict(self, outputs, flipped_outputs=None, flip_index: Optional[Sequence[int]] = None):
        """``keypoints (B, K, 2)`` input pixels, ``depth (B, K)`` mm relative to the root and,
        with RootNet, ``root (B, 2)`` input pixels and ``root_depth (B,)`` mm."""
        _no_flip("MPPE3DHead", flipped_outputs)
        kp, dz = self.codec.decode(outputs["coords"])
        pred = {"keypoints": kp, "depth": dz}
        if "root" in outputs:
            pred["root"], pred["root_depth"] = self.codec.decode_root(outputs["root"])
        return pred


class VNectHead(BaseHead):
    """VNect over ``(heatmaps (B, K, h, w), location maps (B, K, 3, h, w))``: heatmap L2
    ``loss_heatmap`` and the location-map L2 weighted by the ground-truth heatmap
    ``loss_location`` (times ``location_weight``); prediction: the location-map read-out."""

    def __init__(self, codec: VNectCodec, location_weight: float = 1.0, joint_weights=None):
        if not isinstance(codec, VNectCodec):
            raise TypeError(f"VNectHead: needs a VNectCodec, got {type(codec).__name__}")
        super().__init__(codec, joint_weights)
        self.location_weight = float(location_weight)

    def forward(self, feats):
        _check_maps("VNect", feats[0], self.codec)
        return feats

    def loss(self, outputs, targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        heatmaps, locmaps = outputs
        gt = targets["heatmaps"].float()
        w = self.keypoint_weights(targets)
        hm = ((heatmaps.float() - gt) ** 2).mean((-2, -1)) * w
        loc = targets["locations"].float()[..., None, None]
        lm = ((gt[:, :, None] * (locmaps.float() - loc)) ** 2).sum((-2, -1)).sum(-1) * w
        return {"loss_heatmap": hm.mean(), "loss_location": self.location_weight * lm.mean()}

    def predict(self, outputs, flipped_outputs=None, flip_index: Optional[Sequence[int]] = None):
        _no_flip("VNectHead", flipped_outputs)
        p = self.codec.decode(outputs)
        return {"keypoints": p.keypoints, "scores": p.scores, "keypoints_3d": p.keypoints_3d}


class DconvMPHead(BaseHead):
    """DconvMP over ``(pose (B, K, 3), cell logits (B, K, grid^2))``: the stage's losses,
    ``loss_regression`` (L2 of the root-relative joints, times ``regression_weight``; off
    when 0) and ``loss_detection`` (cross-entropy over the cells, times
    ``detection_weight``; off when 0)."""

    def __init__(self, codec: DconvMPCodec, regression_weight: float = 1.0,
                 detection_weight: float = 0.0, joint_weights=None):
        if not isinstance(codec, DconvMPCodec):
            raise TypeError(f"DconvMPHead: needs a DconvMPCodec, got {type(codec).__name__}")
        super().__init__(codec, joint_weights)
        self.regression_weight = float(regression_weight)
        self.detection_weight = float(detection_weight)

    def forward(self, feats):
        return feats

    def loss(self, outputs, targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        pose, logits = outputs
        losses = {}
        if self.regression_weight:
            w = self.keypoint_weights(targets)
            err = ((pose.float() - targets["pose_3d"].float()) ** 2).sum(-1) * w
            losses["loss_regression"] = self.regression_weight * err.mean()
        if self.detection_weight:
            w = targets["detection_weights"].float()
            cells = targets["cells"].clamp_min(0)
            ce = F.cross_entropy(logits.float().flatten(0, 1), cells.flatten(), reduction="none")
            losses["loss_detection"] = self.detection_weight * (ce * w.flatten()).sum() / \
                w.sum().clamp_min(1.0)
        return losses

    def predict(self, outputs, flipped_outputs=None, flip_index: Optional[Sequence[int]] = None):
        _no_flip("DconvMPHead", flipped_outputs)
        kp, scores, P = self.codec.decode(outputs)
        return {"keypoints": kp, "scores": scores, "keypoints_3d": P}


class ORPMHead(BaseHead):
    """ORPM over ``(heatmaps (B, K, h, w), pafs (B, 2L, h, w), orpm (B, K, 3, h, w))``:
    ``loss_heatmap`` and ``loss_paf`` (L2) and ``loss_orpm`` (L2 on the pixels the codec
    wrote, times ``orpm_weight``). :meth:`predict_people`: every person (PAF grouping, the
    ORPM read-out); :meth:`predict` (person crops): the highest-scoring person of each crop,
    the heatmap maxima as one person where grouping finds nobody."""

    def __init__(self, codec: ORPMCodec, orpm_weight: float = 1.0, joint_weights=None):
        if not isinstance(codec, ORPMCodec):
            raise TypeError(f"ORPMHead: needs an ORPMCodec, got {type(codec).__name__}")
        super().__init__(codec, joint_weights)
        self.orpm_weight = float(orpm_weight)

    def forward(self, feats):
        _check_maps("ORPM", feats[0], self.codec)
        return feats

    def loss(self, outputs, targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        hm, paf, orpm = (o.float() for o in outputs)
        mask = targets["orpm_mask"].float()
        err = (mask[:, :, None] * (orpm - targets["orpm"].float())) ** 2
        return {"loss_heatmap": ((hm - targets["heatmaps"].float()) ** 2).mean(),
                "loss_paf": ((paf - targets["pafs"].float()) ** 2).mean(),
                "loss_orpm": self.orpm_weight * err.sum() / mask.sum().clamp_min(1.0)}

    def predict_people(self, outputs):
        return self.codec.decode(outputs)

    def predict(self, outputs, flipped_outputs=None, flip_index: Optional[Sequence[int]] = None):
        _no_flip("ORPMHead", flipped_outputs)
        hm, paf, orpm = outputs
        people = self.codec.decode((hm, paf, orpm))
        B, K = hm.shape[:2]
        kps, scs, p3 = [], [], []
        for b in range(B):
            if len(people.person_scores[b]):
                i = int(people.person_scores[b].argmax())
                kps.append(people.keypoints[b][i].to(hm.device))
                scs.append(people.scores[b][i].to(hm.device))
                p3.append(people.keypoints_3d[b][i].to(hm.device))
                continue
            w = hm.shape[-1]
            sc, idx = hm[b].float().reshape(K, -1).max(-1)
            kp = torch.stack([idx % w, idx // w], -1).float() * torch.tensor(
                self.codec.paf.stride, device=hm.device)
            kps.append(kp), scs.append(sc)
            p3.append(self.codec.read_out(orpm[b].float(), kp[None], sc[None])[0])
        return {"keypoints": torch.stack(kps), "scores": torch.stack(scs),
                "keypoints_3d": torch.stack(p3)}


__all__ = ["DconvMPHead", "MPPE3DHead", "ORPMHead", "VNectHead"]
