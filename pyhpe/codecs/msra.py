"""MSRA Gaussian-heatmap codec (SimpleBaseline / HRNet), optionally with DARK decoding."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
import torch

from ._fallback import (argmax_decode_torch, dark_decode_torch, get_op, msra_heatmaps_torch)


def _as_tensor(x, dtype=torch.float32):
    if isinstance(x, torch.Tensor):
        return x.to(dtype)
    return torch.as_tensor(np.asarray(x), dtype=dtype)


class MSRAHeatmap:
    """Encode keypoints into Gaussian heatmaps and decode heatmaps back to keypoints.

    Coordinates: ``input_size=(W, H)`` of the network input and ``heatmap_size=(W, H)``; keypoints
    are (x, y) in input pixels, scaled to heatmap pixels by ``heatmap_size / input_size``
    (mmpose ``MSRAHeatmap``). Decoding is argmax + quarter offset (``unbiased=False``) or DARK
    (``unbiased=True``). Uses ``pyhpe.ops.msra_heatmaps`` / ``argmax_decode`` / ``dark_decode``
    when those kernels are built, and vectorized torch fallbacks otherwise.
    """

    def __init__(self, input_size=(48, 64), heatmap_size=(24, 32), sigma: float = 2.0,
                 unbiased: bool = False, blur_kernel_size: int = 11):
        self.input_size = tuple(int(v) for v in input_size)
        self.heatmap_size = tuple(int(v) for v in heatmap_size)
        self.sigma = float(sigma)
        self.unbiased = bool(unbiased)
        self.blur_kernel_size = int(blur_kernel_size)
        self.scale_factor = np.array(self.input_size, np.float32) / np.array(self.heatmap_size, np.float32)

    # -- encoding ---------------------------------------------------------------------------
    def encode(self, keypoints, visibility=None) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(N, K, 2)`` or ``(B, N, K, 2)`` input-pixel keypoints -> heatmaps ``([B,] K, H, W)``
        and keypoint weights ``([B,] N, K)``."""
        kp = _as_tensor(keypoints)
        unbatched = kp.dim() == 3
        if unbatched:
            kp = kp.unsqueeze(0)
        if kp.dim() != 4 or kp.shape[-1] != 2:
            raise ValueError(f"MSRAHeatmap.encode: 'keypoints' must be (N, K, 2) or (B, N, K, 2), "
                             f"got {tuple(kp.shape)}")
        vis = torch.ones(kp.shape[:-1]) if visibility is None else _as_tensor(visibility)
        if unbatched and visibility is not None:
            vis = vis.unsqueeze(0)
        vis = vis.to(kp.device)
        kp_hm = kp / torch.as_tensor(self.scale_factor, device=kp.device)
        op = get_op("msra_heatmaps")
        if op is not None:
            heatmaps, weights = op(kp_hm, vis, self.heatmap_size, self.sigma)
        else:
            heatmaps, weights = msra_heatmaps_torch(kp_hm, vis, self.heatmap_size, self.sigma)
        if unbatched:
            return heatmaps[0], weights[0]
        return heatmaps, weights

    # -- decoding ---------------------------------------------------------------------------
    def decode_heatmap_space(self, heatmaps: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(B, K, H, W) -> (B, K, 2)`` heatmap-pixel coordinates and ``(B, K)`` scores."""
        if heatmaps.dim() != 4:
            raise ValueError(f"MSRAHeatmap.decode: 'heatmaps' must be (B, K, H, W), "
                             f"got {tuple(heatmaps.shape)}")
        hm = heatmaps.detach().float()
        if self.unbiased:
            op = get_op("dark_decode")
            if op is not None:
                return op(hm, kernel=self.blur_kernel_size)
            return dark_decode_torch(hm, self.blur_kernel_size)
        op = get_op("argmax_decode")
        if op is not None:
            return op(hm, quarter_offset=True)
        return argmax_decode_torch(hm, quarter_offset=True)

    def decode(self, heatmaps: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(B, K, H, W) -> (B, K, 2)`` input-pixel coordinates and ``(B, K)`` scores."""
        coords, scores = self.decode_heatmap_space(heatmaps)
        return coords * torch.as_tensor(self.scale_factor, device=coords.device), scores
