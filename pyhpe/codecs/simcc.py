"""SimCC codec (Li et al. 2022, RTMPose): per-axis 1-D classification with label smoothing."""
from __future__ import annotations

from typing import Tuple

import numpy as np
import torch


class SimCCLabel:
    """Encode keypoints as per-axis Gaussian labels; decode by per-axis argmax.

    ``input_size=(W, H)``; bins per axis are ``round(size * split_ratio)``. Labels follow mmpose
    ``SimCCLabel(smoothing_type='gaussian')``: ``exp(-(i - mu)^2 / (2 sigma^2))`` with
    ``mu = x * split_ratio`` (not rounded), optionally normalised to sum 1; keypoints with
    visibility < 0.5 or outside the bins get weight 0. Decoding takes the argmax of each axis,
    divides by ``split_ratio``, and scores are the smaller of the two maxima
    (mmpose ``get_simcc_maximum``).
    """

    def __init__(self, input_size=(48, 64), sigma=(4.9, 5.66), split_ratio: float = 2.0,
                 normalize: bool = False):
        self.input_size = tuple(int(v) for v in input_size)
        self.sigma = tuple(float(s) for s in (sigma if np.ndim(sigma) else (sigma, sigma)))
        self.split_ratio = float(split_ratio)
        self.normalize = bool(normalize)
        self.bins = (int(round(self.input_size[0] * self.split_ratio)),
                     int(round(self.input_size[1] * self.split_ratio)))

    def encode(self, keypoints, visibility=None) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(..., K, 2)`` input-pixel keypoints -> x labels ``(..., K, Wx)``, y labels
        ``(..., K, Wy)``, weights ``(..., K)``."""
        kp = torch.as_tensor(np.asarray(keypoints) if not isinstance(keypoints, torch.Tensor)
                             else keypoints, dtype=torch.float32)
        if kp.shape[-1] != 2:
            raise ValueError(f"SimCCLabel.encode: 'keypoints' must end in 2, got {tuple(kp.shape)}")
        vis = torch.ones(kp.shape[:-1]) if visibility is None else torch.as_tensor(visibility, dtype=torch.float32)
        mu = kp * self.split_ratio
        wx, wy = self.bins
        ix = torch.arange(wx, dtype=torch.float32)
        iy = torch.arange(wy, dtype=torch.float32)
        lx = torch.exp(-((ix - mu[..., 0:1]) ** 2) / (2 * self.sigma[0] ** 2))
        ly = torch.exp(-((iy - mu[..., 1:2]) ** 2) / (2 * self.sigma[1] ** 2))
        inside = (mu[..., 0] >= 0) & (mu[..., 0] < wx) & (mu[..., 1] >= 0) & (mu[..., 1] < wy)
        weights = ((vis >= 0.5) & inside).to(torch.float32)
        if self.normalize:
            lx = lx / lx.sum(-1, keepdim=True).clamp_min(1e-12)
            ly = ly / ly.sum(-1, keepdim=True).clamp_min(1e-12)
        return lx * weights[..., None], ly * weights[..., None], weights

    def decode(self, simcc_x: torch.Tensor, simcc_y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(B, K, Wx), (B, K, Wy) -> (B, K, 2)`` input-pixel coordinates, ``(B, K)`` scores
        (-1 coordinates where the score is <= 0)."""
        vx, ix = simcc_x.detach().float().max(-1)
        vy, iy = simcc_y.detach().float().max(-1)
        coords = torch.stack([ix.float(), iy.float()], -1) / self.split_ratio
        scores = torch.minimum(vx, vy)
        coords = torch.where((scores > 0).unsqueeze(-1), coords, torch.full_like(coords, -1.0))
        return coords, scores
