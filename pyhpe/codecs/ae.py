"""Associative Embedding codec (Newell et al. 2017; HigherHRNet, Cheng et al. 2020): multi-person
Gaussian heatmaps plus the heatmap position of every ground-truth keypoint (what the tag loss
reads), decoded by tag grouping (:func:`pyhpe.ops.ae_group`).

Semantics follow mmpose 1.x ``AssociativeEmbedding``: keypoints are divided by the float32
``scale_factor`` (``input / heatmap``, or ``(input - 1) / (heatmap - 1)`` with ``use_udp``),
the heatmaps are mmpose's ``generate_gaussian_heatmaps`` / ``generate_udp_gaussian_heatmaps``
(the :func:`pyhpe.ops.msra_heatmaps` / :func:`pyhpe.ops.udp_heatmaps` kernels, max over persons)
and ``keypoint_indices[b, n, k] = (y * W + x, visible)`` with ``(x, y) = int(kp + 0.5)``
(truncation toward zero) and ``visible = v > 0.5 and (x, y) inside the map``.
"""
from __future__ import annotations

from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from .. import ops
from .base import Codec, as_size, check_flip_index, flip_maps, keypoints_and_visibility


class AEOutputs(NamedTuple):
    """One resolution of an associative-embedding network: ``heatmaps (B, K, h, w)`` and
    ``tags (B, K * L, h, w)`` in mmpose's layout (channel ``l * K + k``); ``(B, 0, h, w)`` at a
    resolution that predicts heatmaps only (HigherHRNet's 1/2-resolution output)."""
    heatmaps: Tensor
    tags: Tensor


def has_tags(outputs: AEOutputs) -> bool:
    return outputs.tags is not None and outputs.tags.shape[1] > 0


_MATCHING = ("hungarian", "greedy")


def _scale_factor(input_size, map_size, udp: bool) -> Tuple[float, float]:
    """mmpose's float32 ``scale_factor`` between input pixels and map pixels."""
    i, m = np.asarray(input_size, np.float64), np.asarray(map_size, np.float64)
    s = (i - 1) / np.maximum(m - 1, 1) if udp else i / m
    return tuple(float(v) for v in s.astype(np.float32))


class AssociativeEmbedding(Codec):
    """Heatmaps and keypoint indices for the tag loss; decoding by tag grouping.

    ``input_size`` / ``heatmap_size`` are ``(W, H)``; ``sigma`` defaults to mmpose's
    ``sqrt(W * H) / 64`` of the heatmap. ``extra_heatmap_sizes`` adds heatmap targets at
    further resolutions (``heatmaps_1``, ``heatmaps_2``, ... drawn with the same ``sigma``, as
    HigherHRNet's multi-resolution supervision); keypoint indices are at ``heatmap_size``, the
    resolution of the tags.

    ``decode`` takes :class:`AEOutputs` at any resolution (the heads upsample to the input
    size first, as mmpose's ``restore_heatmap_size`` and HigherHRNet's ``PROJECT2IMAGE``) and
    scales the grouped keypoints by that resolution's scale factor. Grouping options are
    mmpose's ``decode_*`` ones, passed to :func:`pyhpe.ops.ae_group`: ``decode_keypoint_order``
    (default 0..K-1), ``decode_topk``, ``decode_nms_kernel``, ``decode_keypoint_thr``,
    ``decode_tag_thr``, ``decode_max_instances``, ``decode_center_shift``,
    ``decode_gaussian_kernel`` (the DARK-UDP refinement's blur with ``use_udp``; otherwise the
    quarter-pixel refinement) and ``decode_matching`` ('hungarian' as mmpose and the official
    code, or 'greedy').
    """

    name = "associative_embedding"
    #: decode groups people (per-image lists; only the raw outputs export)
    groups_people = True

    def __init__(self, input_size=(256, 256), heatmap_size=(64, 64), sigma: Optional[float] = None,
                 use_udp: bool = False, extra_heatmap_sizes: Sequence = (),
                 decode_keypoint_order: Sequence[int] = (), decode_nms_kernel: int = 5,
                 decode_gaussian_kernel: int = 3, decode_keypoint_thr: float = 0.1,
                 decode_tag_thr: float = 1.0, decode_topk: int = 30,
                 decode_center_shift: float = 0.0, decode_max_instances: Optional[int] = None,
                 decode_matching: str = "hungarian"):
        who = "AssociativeEmbedding"
        self.input_size = as_size(input_size, "input_size", who)
        self.heatmap_size = as_size(heatmap_size, "heatmap_size", who)
        self.extra_heatmap_sizes = [as_size(s, "extra_heatmap_sizes", who)
                                    for s in extra_heatmap_sizes]
        self.use_udp = bool(use_udp)
        if sigma is None:
            sigma = (self.heatmap_size[0] * self.heatmap_size[1]) ** 0.5 / 64
        self.sigma = float(sigma)
        if not self.sigma > 0:
            raise ValueError(f"{who}: 'sigma' must be positive, got {sigma}")
        self.decode_keypoint_order = [int(k) for k in decode_keypoint_order]
        if len(set(self.decode_keypoint_order)) != len(self.decode_keypoint_order):
            raise ValueError(f"{who}: 'decode_keypoint_order' repeats a keypoint: "
                             f"{self.decode_keypoint_order}")
        self.decode_nms_kernel = int(decode_nms_kernel)
        self.decode_gaussian_kernel = int(decode_gaussian_kernel)
        for name in ("decode_nms_kernel", "decode_gaussian_kernel"):
            v = getattr(self, name)
            if v < 1 or v % 2 == 0:
                raise ValueError(f"{who}: '{name}' must be a positive odd int, got {v}")
        self.decode_keypoint_thr = float(decode_keypoint_thr)
        self.decode_tag_thr = float(decode_tag_thr)
        self.decode_topk = int(decode_topk)
        if self.decode_topk < 1:
            raise ValueError(f"{who}: 'decode_topk' must be >= 1, got {decode_topk}")
        self.decode_center_shift = float(decode_center_shift)
        self.decode_max_instances = None if decode_max_instances is None else int(decode_max_instances)
        if decode_matching not in _MATCHING:
            raise ValueError(f"{who}: 'decode_matching' must be one of {_MATCHING}, got "
                             f"{decode_matching!r}")
        self.decode_matching = decode_matching
        self.scale_factor = _scale_factor(self.input_size, self.heatmap_size, self.use_udp)

    @property
    def stride(self) -> float:
        return self.input_size[0] / self.heatmap_size[0]

    @property
    def heatmap_sizes(self) -> List[Tuple[int, int]]:
        """Every resolution with a heatmap target: ``heatmap_size`` then the extra ones."""
        return [self.heatmap_size, *self.extra_heatmap_sizes]

    # ---------------------------------------------------------------------------- encode
    def encode(self, keypoints: Tensor, visibility: Optional[Tensor] = None, **meta
               ) -> Dict[str, Tensor]:
        """``(B, N, K, 2)`` input-pixel keypoints (and COCO visibility) -> ``heatmaps``
        ``(B, K, H, W)`` (+ ``heatmaps_i`` of the extra sizes), ``keypoint_indices``
        ``(B, N, K, 2)`` int64 and ``keypoint_weights`` ``(B, N, K)``. Single-person
        ``(B, K, 2)`` keypoints are one person per image (weights ``(B, K)``)."""
        kp, vis = keypoints_and_visibility(keypoints, visibility, "AssociativeEmbedding.encode")
        single = kp.dim() == 3
        if single:
            kp, vis = kp.unsqueeze(1), vis.unsqueeze(1)
        encoder = ops.udp_heatmaps if self.use_udp else ops.msra_heatmaps
        out: Dict[str, Tensor] = {}
        for i, size in enumerate(self.heatmap_sizes):
            scale = torch.tensor(_scale_factor(self.input_size, size, self.use_udp),
                                 dtype=torch.float32, device=kp.device)
            kp_hm = kp / scale
            hm, weights = encoder(kp_hm, vis, size, sigma=self.sigma)
            if i == 0:
                out["heatmaps"] = hm
                out["keypoint_weights"] = weights[:, 0] if single else weights
                out["keypoint_indices"] = self.keypoint_indices(kp_hm, vis)
            else:
                out[f"heatmaps_{i}"] = hm
        return out

    def keypoint_indices(self, keypoints_hm: Tensor, visibility: Tensor) -> Tensor:
        """``(B, N, K, 2)`` heatmap-pixel keypoints -> ``(B, N, K, 2)`` int64
        ``(y * W + x, visible)`` as mmpose's ``_encode_keypoint_indices``."""
        w, h = self.heatmap_size
        xy = torch.trunc(keypoints_hm + 0.5).to(torch.int64)
        x, y = xy[..., 0], xy[..., 1]
        inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        return torch.stack([y * w + x, ((visibility > 0.5) & inside).to(torch.int64)], -1)

    # ---------------------------------------------------------------------------- decode
    def decode_instances(self, outputs: AEOutputs, num_keypoints: Optional[int] = None
                         ) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
        """Per image: keypoints ``(P, K, 2)`` input pixels, keypoint scores ``(P, K)`` and
        instance scores ``(P,)`` (mmpose: the mean grouped keypoint score before filling
        missing keypoints)."""
        heatmaps, tags = outputs
        if not has_tags(outputs):
            raise ValueError("AssociativeEmbedding.decode: the outputs carry no tags")
        heatmaps, tags = heatmaps.detach().float(), tags.detach().float()
        K = heatmaps.shape[1] if num_keypoints is None else int(num_keypoints)
        heatmaps = heatmaps[:, :K]
        order = self.decode_keypoint_order or None
        topk = min(self.decode_topk, heatmaps.shape[-1] * heatmaps.shape[-2])
        groups = ops.ae_group(heatmaps, tags, keypoint_order=order, topk=topk,
                              nms_kernel=self.decode_nms_kernel,
                              keypoint_threshold=self.decode_keypoint_thr,
                              tag_threshold=self.decode_tag_thr,
                              max_instances=self.decode_max_instances,
                              matching=self.decode_matching,
                              refine="dark_udp" if self.use_udp else "quarter",
                              blur_kernel=self.decode_gaussian_kernel,
                              center_shift=self.decode_center_shift, fill_missing=True)
        map_size = (heatmaps.shape[-1], heatmaps.shape[-2])
        scale = torch.tensor(_scale_factor(self.input_size, map_size, self.use_udp),
                             dtype=torch.float32, device=groups.keypoints.device)
        keypoints, scores, instance_scores = [], [], []
        for b in range(heatmaps.shape[0]):
            n = int(groups.num_instances[b])
            keypoints.append(groups.keypoints[b, :n].float() * scale)
            scores.append(groups.keypoint_scores[b, :n].float())
            instance_scores.append(groups.instance_scores[b, :n].float())
        return keypoints, scores, instance_scores

    def decode(self, outputs: AEOutputs, **meta) -> Tuple[List[Tensor], List[Tensor]]:
        keypoints, scores, _ = self.decode_instances(outputs, meta.get("num_keypoints"))
        return keypoints, scores

    # ---------------------------------------------------------------------------- flip
    def flip_back(self, outputs_flipped: AEOutputs, flip_index: Sequence[int]) -> AEOutputs:
        """Mirror the maps of a flipped input back: heatmap channels by ``flip_index``, tag
        channels ``l * K + k`` by ``flip_index`` within each tag dimension (mmpose's
        ``_flip_tags`` with ``tag_per_keypoint``; a single shared tag map is only mirrored).
        No sub-pixel shift, as mmpose's AE test config (``shift_heatmap=False``) and the
        official HigherHRNet inference."""
        hms, tags = outputs_flipped
        K = hms.shape[1]
        idx = check_flip_index(flip_index, K, "AssociativeEmbedding.flip_back")
        back_hm = flip_maps(hms, idx, 0.0)
        if not has_tags(outputs_flipped):
            return AEOutputs(back_hm, tags)
        C = tags.shape[1]
        if C % K == 0:
            L = C // K
            channels = [l * K + idx[k] for l in range(L) for k in range(K)]
        else:
            channels = list(range(C))
        return AEOutputs(back_hm, flip_maps(tags, channels, 0.0))

    def to_config(self) -> dict:
        return {"name": self.name, "input_size": list(self.input_size),
                "heatmap_size": list(self.heatmap_size), "sigma": self.sigma,
                "use_udp": self.use_udp,
                "extra_heatmap_sizes": [list(s) for s in self.extra_heatmap_sizes],
                "decode_keypoint_order": list(self.decode_keypoint_order),
                "decode_nms_kernel": self.decode_nms_kernel,
                "decode_gaussian_kernel": self.decode_gaussian_kernel,
                "decode_keypoint_thr": self.decode_keypoint_thr,
                "decode_tag_thr": self.decode_tag_thr, "decode_topk": self.decode_topk,
                "decode_center_shift": self.decode_center_shift,
                "decode_max_instances": self.decode_max_instances,
                "decode_matching": self.decode_matching}


__all__ = ["AEOutputs", "AssociativeEmbedding", "has_tags"]
