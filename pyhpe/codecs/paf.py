"""Part Affinity Field codec (OpenPose; Cao et al. 2017): multi-person heatmaps (+ background)
and PAFs from the kernels, decoded by OpenPose's grouping (:func:`pyhpe.ops.paf_group`)."""
from __future__ import annotations

from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import ops
from .base import Codec, as_size, check_flip_index, flip_maps, keypoints_and_visibility

_ENCODERS = {"msra": ops.msra_heatmaps, "unbiased": ops.unbiased_heatmaps}


class PAFOutputs(NamedTuple):
    """One stage of a PAF network: ``heatmaps (B, K[+1], h, w)``, ``pafs (B, 2L, h, w)``."""
    heatmaps: Tensor
    pafs: Tensor


class PAFCodec(Codec):
    """Heatmaps ``(B, K + 1, h, w)`` (Gaussians of ``sigma`` map pixels, max over persons, and
    OpenPose's background ``1 - max`` when ``background``) and PAFs ``(B, 2L, h, w)`` (x, y
    per limb, half-width ``limb_width`` map pixels) for ``limbs`` (L (a, b) pairs, 0-based).

    ``heatmap_encoding``: 'msra' (integer centres) or 'unbiased' (sub-pixel centres).
    Decoding upsamples the maps ``upsample`` times (default: the stride), groups people with
    :func:`pyhpe.ops.paf_group` (``threshold``, ``min_parts``, ``min_mean_score``,
    ``max_persons``) and returns per-image lists; missing parts have score 0.
    """

    groups_people = True

    name = "paf"

    def __init__(self, input_size=(256, 256), heatmap_size=(64, 64), limbs=(), sigma: float = 1.5,
                 limb_width: float = 1.0, heatmap_encoding: str = "msra", background: bool = True,
                 upsample: Optional[int] = None, threshold: float = 0.1, min_parts: int = 3,
                 min_mean_score: float = 0.2, max_persons: Optional[int] = 20):
        self.input_size = as_size(input_size, "input_size", "PAFCodec")
        self.heatmap_size = as_size(heatmap_size, "heatmap_size", "PAFCodec")
        self.limbs = [tuple(int(v) for v in limb) for limb in limbs]
        if not self.limbs or any(len(l) != 2 or min(l) < 0 for l in self.limbs):
            raise ValueError(f"PAFCodec: 'limbs' must be a non-empty list of (a, b) keypoint "
                             f"index pairs, got {limbs!r}")
        if heatmap_encoding not in _ENCODERS:
            raise ValueError(f"PAFCodec: 'heatmap_encoding' must be one of {sorted(_ENCODERS)}, "
                             f"got {heatmap_encoding!r}")
        self.sigma, self.limb_width = float(sigma), float(limb_width)
        self.heatmap_encoding, self.background = heatmap_encoding, bool(background)
        self.upsample = None if upsample is None else int(upsample)
        self.threshold, self.min_parts = float(threshold), int(min_parts)
        self.min_mean_score = float(min_mean_score)
        self.max_persons = None if max_persons is None else int(max_persons)

    @property
    def stride(self) -> Tuple[float, float]:
        return (self.input_size[0] / self.heatmap_size[0], self.input_size[1] / self.heatmap_size[1])

    def encode(self, keypoints: Tensor, visibility: Optional[Tensor] = None, **meta
               ) -> Dict[str, Tensor]:
        """``(B, N, K, 2)`` (or ``(B, K, 2)``) input-pixel keypoints -> ``heatmaps``,
        ``pafs`` and ``keypoint_weights`` (shaped like the visibility)."""
        kp, vis = keypoints_and_visibility(keypoints, visibility, "PAFCodec.encode")
        single = kp.dim() == 3
        if single:
            kp, vis = kp.unsqueeze(1), vis.unsqueeze(1)
        kp_hm = kp / torch.tensor(self.stride, dtype=torch.float32, device=kp.device)
        hm, weights = _ENCODERS[self.heatmap_encoding](kp_hm, vis, self.heatmap_size, sigma=self.sigma)
        if self.background:
            hm = torch.cat([hm, (1.0 - hm.amax(1, keepdim=True)).clamp_(0.0, 1.0)], 1)
        pafs, _ = ops.paf_targets(kp_hm, vis, self.limbs, self.heatmap_size,
                                  limb_width=self.limb_width)
        return {"heatmaps": hm, "pafs": pafs, "keypoint_weights": weights[:, 0] if single else weights}

    def decode_instances(self, outputs, num_keypoints: Optional[int] = None
                         ) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
        """Per image: keypoints ``(P, K, 2)`` input pixels, keypoint scores ``(P, K)`` and
        person scores ``(P,)``."""
        hms, pafs = outputs
        hms, pafs = hms.detach().float(), pafs.detach().float()
        K = num_keypoints or hms.shape[1] - int(self.background)
        up = self.upsample if self.upsample is not None else max(int(round(self.stride[0])), 1)
        if up > 1:
            # (n - 1) * up + 1 samples with align_corners keep every map pixel centre on an
            # output pixel (q = up * j): a peak stays a strict maximum instead of a plateau
            size = ((hms.shape[-2] - 1) * up + 1, (hms.shape[-1] - 1) * up + 1)
            hms = F.interpolate(hms, size=size, mode="bilinear", align_corners=True)
            pafs = F.interpolate(pafs, size=size, mode="bilinear", align_corners=True)
        people = ops.paf_group(hms, pafs, self.limbs, num_parts=K, threshold=self.threshold,
                               min_parts=self.min_parts, min_mean_score=self.min_mean_score,
                               max_persons=self.max_persons)
        scale = torch.tensor(self.stride, dtype=torch.float32) / up
        keypoints, scores, person_scores = [], [], []
        for kps, ps in people:
            kps = kps.float()
            keypoints.append(kps[..., :2] * scale.to(kps.device))
            scores.append(kps[..., 2])
            person_scores.append(ps.float())
        return keypoints, scores, person_scores

    def decode(self, outputs, **meta) -> Tuple[List[Tensor], List[Tensor]]:
        keypoints, scores, _ = self.decode_instances(outputs, meta.get("num_keypoints"))
        return keypoints, scores

    def limb_flip(self, flip_index: Sequence[int]) -> List[Optional[Tuple[int, int]]]:
        """For each limb l: ``(l', sign)`` with limb l' of the mirrored pose carrying l's field
        (sign -1 where the pair is listed in the other direction), or None where the mirrored
        pair is no limb (an asymmetric skeleton such as the COCO-17 PAF tree)."""
        where = {}
        for j, (a, b) in enumerate(self.limbs):
            where[(a, b)] = (j, 1)
            where.setdefault((b, a), (j, -1))
        out = []
        for a, b in self.limbs:
            out.append(where.get((flip_index[a], flip_index[b])))
        return out

    def flip_back(self, outputs_flipped, flip_index: Sequence[int]) -> PAFOutputs:
        """Heatmaps as :class:`MSRAHeatmap` (the background stays last); each limb's field from
        its mirrored limb's channels, x negated. Limbs whose mirror is no limb get NaN fields
        (no flipped evidence: :class:`PAFHead` keeps the unflipped field there)."""
        hms, pafs = outputs_flipped
        K = hms.shape[1] - int(self.background)
        idx = check_flip_index(flip_index, K, "PAFCodec.flip_back")
        shift = 1.0 - 1.0 / self.stride[0]
        hm_idx = idx + list(range(K, hms.shape[1]))
        channels, signs = [], []
        for pair in self.limb_flip(idx):
            j, s = pair if pair is not None else (0, float("nan"))
            channels += [2 * j, 2 * j + 1]
            signs += [-s, s]   # mirroring negates x
        sign = torch.tensor(signs, dtype=pafs.dtype, device=pafs.device).view(1, -1, 1, 1)
        return PAFOutputs(flip_maps(hms, hm_idx, shift), flip_maps(pafs, channels, shift) * sign)

    def to_config(self) -> dict:
        return {"name": self.name, "input_size": list(self.input_size),
                "heatmap_size": list(self.heatmap_size), "limbs": [list(l) for l in self.limbs],
                "sigma": self.sigma, "limb_width": self.limb_width,
                "heatmap_encoding": self.heatmap_encoding, "background": self.background,
                "upsample": self.upsample, "threshold": self.threshold,
                "min_parts": self.min_parts, "min_mean_score": self.min_mean_score,
                "max_persons": self.max_persons}
