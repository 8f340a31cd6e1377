"""Return types of the ops: one named tuple per op, whatever the options.

Named tuples unpack like the plain tuples they replace (``heatmaps, weights = ...``) and
pass through torch.compile; fields are tensors on the input's device unless a docstring
says otherwise.
"""
from __future__ import annotations

from typing import List, NamedTuple

import torch

Tensor = torch.Tensor


class HeatmapTargets(NamedTuple):
    """Gaussian heatmap targets: heatmaps ``(B, K, H, W)``, keypoint_weights ``(B, N, K)``."""
    heatmaps: Tensor
    keypoint_weights: Tensor


class SimCCTargets(NamedTuple):
    """SimCC labels: x_labels ``(B, K, Wx)``, y_labels ``(B, K, Wy)``, keypoint_weights
    ``(B, K)``."""
    x_labels: Tensor
    y_labels: Tensor
    keypoint_weights: Tensor


class PAFTargets(NamedTuple):
    """Part affinity fields ``(B, 2L, H, W)`` and per-limb coverage counts ``(B, L, H, W)``."""
    pafs: Tensor
    counts: Tensor


class Decoded(NamedTuple):
    """Decoded keypoints ``(B, K, 2)`` (x, y) and scores ``(B, K)``."""
    keypoints: Tensor
    scores: Tensor


class RescoredPoses(NamedTuple):
    """Image keypoints ``(N, K, 3)`` float64 ``[x, y, score]`` and instance scores ``(N,)``."""
    keypoints: Tensor
    scores: Tensor


class NMSResult(NamedTuple):
    """Kept rows ``(P,)`` int64 (per image, in keep order) and kept poses per image ``(M,)``."""
    keep: Tensor
    counts: Tensor


class AlphaPoseNMSResult(NamedTuple):
    """Merged keypoints ``(P, K, 2)``, merged scores ``(P, K)``, picked rows ``(P,)`` int64 and
    picks per image ``(M,)``."""
    keypoints: Tensor
    scores: Tensor
    indices: Tensor
    counts: Tensor


class Peaks(NamedTuple):
    """Part candidates ``(B, K, M, 3)`` [x, y, score] (zero padded) and their counts ``(B, K)``."""
    peaks: Tensor
    counts: Tensor


class Poses(NamedTuple):
    """The people of one image: keypoints ``(P, K, 3)`` [x, y, score], scores ``(P,)``."""
    keypoints: Tensor
    scores: Tensor


class GroupedPoses(NamedTuple):
    """The people of a batch, padded: keypoints ``(B, P, K, 3)`` [x, y, score] (missing parts
    and padding 0), scores ``(B, P)``, counts ``(B,)`` int64 and the peak index of every part
    ``(B, P, K)`` int64 (-1 where missing)."""
    keypoints: Tensor
    scores: Tensor
    counts: Tensor
    peak_indices: Tensor

    def per_image(self) -> List[Poses]:
        """The B images' :class:`Poses` (on the host), padding dropped."""
        keypoints, scores = self.keypoints.cpu(), self.scores.cpu()
        return [Poses(keypoints[b, :n], scores[b, :n])
                for b, n in enumerate(self.counts.cpu().tolist())]


class RaggedOKS(NamedTuple):
    """OKS matrices of a ragged batch: ``values`` is the concatenation of the N row-major
    ``(D_n, G_n)`` blocks, ``dt_counts`` / ``gt_counts`` ``(N,)`` int64 (on the host) their
    sizes."""
    values: Tensor
    dt_counts: Tensor
    gt_counts: Tensor

    def matrices(self) -> List[Tensor]:
        """The N ``(D_n, G_n)`` matrices, views of ``values``."""
        d, g = self.dt_counts.tolist(), self.gt_counts.tolist()
        blocks = torch.split(self.values, [a * b for a, b in zip(d, g)])
        return [block.view(a, b) for block, a, b in zip(blocks, d, g)]


class AEGroups(NamedTuple):
    """Associative Embedding groups, padded to a static ``N``: keypoints ``(B, N, K, 2)``
    float32 (x, y) in heatmap pixels, keypoint_scores ``(B, N, K)``, instance_scores
    ``(B, N)`` and num_instances ``(B,)`` int64; rows ``n >= num_instances[b]`` are zero."""
    keypoints: Tensor
    keypoint_scores: Tensor
    instance_scores: Tensor
    num_instances: Tensor

    def per_image(self) -> List[Poses]:
        """The B images' :class:`Poses` (on the host, ``(N_b, K, 3)`` [x, y, score] and the
        instance scores), padding dropped."""
        kp, ks, sc = self.keypoints.cpu(), self.keypoint_scores.cpu(), self.instance_scores.cpu()
        return [Poses(torch.cat([kp[b, :n], ks[b, :n, :, None]], -1), sc[b, :n])
                for b, n in enumerate(self.num_instances.cpu().tolist())]


__all__ = ["AEGroups", "AlphaPoseNMSResult", "Decoded", "GroupedPoses", "HeatmapTargets", "NMSResult",
           "PAFTargets", "Peaks", "Poses", "RaggedOKS", "SimCCTargets"]


class VolumeTargets(NamedTuple):
    """3-D Gaussian targets: volumes ``(B, K, D, H, W)``, keypoint_weights ``(B, K)``."""
    volumes: Tensor
    keypoint_weights: Tensor


__all__ += ["VolumeTargets"]
