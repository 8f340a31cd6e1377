"""Multi-level Gaussian heatmaps: one target per Gaussian width, for coarse-to-fine supervision
(CPN's GlobalNet / RefineNet, MSPN's units).

The official CPN (tf-cpn) and mmpose 0.x MSPN draw each level's target with
``cv2.GaussianBlur(kernel=(k, k))`` of a one-hot map, i.e. a Gaussian of
``sigma = 0.3 * ((k - 1) / 2 - 1) + 0.8`` (OpenCV's rule for ``sigma=0``) normalised to peak 1;
here each level is an MSRA Gaussian (peak 1, 3-sigma window) of that sigma made by the
pyhpe.ops kernel, one call per level. :func:`sigma_from_kernel` gives the rule.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
from torch import Tensor

from .heatmap import MSRAHeatmap


def sigma_from_kernel(k: int) -> float:
    """OpenCV's Gaussian sigma of a ``k x k`` kernel given ``sigma=0``."""
    return 0.3 * ((int(k) - 1) * 0.5 - 1) + 0.8


#: CPN 256x192 (tf-cpn gk15, gk11, gk9, gk7; GlobalNet coarse -> fine, RefineNet on the last)
CPN_SIGMAS = tuple(round(sigma_from_kernel(k), 4) for k in (15, 11, 9, 7))


class MultiLevelHeatmap(MSRAHeatmap):
    """``sigmas`` (one per level, coarse -> fine) MSRA heatmaps of one ``heatmap_size``.

    ``encode`` returns ``heatmaps`` ``(B, L, K, H, W)`` (level ``l`` drawn with ``sigmas[l]``)
    and ``keypoint_weights``; decoding, flip-back and export are the :class:`MSRAHeatmap` ones
    of the last (finest) level, whose sigma is ``self.sigma`` (``decode`` 'argmax' or 'dark').
    """

    name = "multilevel"

    def __init__(self, input_size=(192, 256), heatmap_size=(48, 64),
                 sigmas: Sequence[float] = CPN_SIGMAS, decode: str = "argmax",
                 blur_kernel_size: int = 11):
        try:
            sig = [float(s) for s in sigmas]
        except (TypeError, ValueError):
            raise ValueError(f"MultiLevelHeatmap: 'sigmas' must be a list of numbers, got "
                             f"{sigmas!r}") from None
        if not sig:
            raise ValueError("MultiLevelHeatmap: 'sigmas' must name at least one level")
        super().__init__(input_size, heatmap_size, sig[-1], decode, blur_kernel_size)
        self.levels = [MSRAHeatmap(input_size, heatmap_size, s, decode, blur_kernel_size)
                       for s in sig]
        self.sigmas = sig

    @property
    def num_levels(self) -> int:
        return len(self.levels)

    def encode(self, keypoints: Tensor, visibility: Optional[Tensor] = None, **meta
               ) -> Dict[str, Tensor]:
        maps, weights = [], None
        for codec in self.levels:
            t = codec.encode(keypoints, visibility)
            maps.append(t["heatmaps"])
            weights = t["keypoint_weights"] if weights is None else weights
        return {"heatmaps": torch.stack(maps, 1), "keypoint_weights": weights}

    def to_config(self) -> dict:
        return {"name": self.name, "input_size": list(self.input_size),
                "heatmap_size": list(self.heatmap_size), "sigmas": list(self.sigmas),
                "decode": self.decoding, "blur_kernel_size": self.blur_kernel_size}
