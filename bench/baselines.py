"""Vectorized torch baselines of the target and decode kernels, for the speed comparisons
(tools/gpu_bench.py, the bench_* files): what a pipeline without pyhpe would run on the same
device.

They follow mmpose's semantics (mmpose/codecs/utils/gaussian_heatmap.py, post_processing.py
and refinement.py): integer-centred truncated Gaussians, argmax with the quarter-pixel
offset, and DARK's Taylor refinement. They are baselines for timing, not oracles: the exact
references the tests compare against are in :mod:`pyhpe.reference`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def msra_heatmaps_torch(keypoints: torch.Tensor, visibility: torch.Tensor, heatmap_size, sigma: float):
    """``(B, N, K, 2), (B, N, K) -> (B, K, H, W), (B, N, K)``; max over the N instances.

    mmpose ``generate_gaussian_heatmaps``: centre ``mu = int(kp + 0.5)``, Gaussian truncated at
    ``3 sigma``; instances whose window misses the map, or with visibility < 0.5, get weight 0.
    """
    W, H = int(heatmap_size[0]), int(heatmap_size[1])
    kp = keypoints.to(torch.float32)
    B, N, K, _ = kp.shape
    radius = sigma * 3
    mu = torch.floor(kp + 0.5)  # keypoints are >= -0.5 where it matters; floor == int() there
    mu = torch.where(kp + 0.5 >= 0, mu, torch.trunc(kp + 0.5))
    left, top = torch.trunc(mu[..., 0] - radius), torch.trunc(mu[..., 1] - radius)
    right, bottom = torch.trunc(mu[..., 0] + radius + 1), torch.trunc(mu[..., 1] + radius + 1)
    valid = (visibility.to(kp.device) >= 0.5) & ~((left >= W) | (top >= H) | (right < 0) | (bottom < 0))
    weights = valid.to(torch.float32)
    xs = torch.arange(W, device=kp.device, dtype=torch.float32)
    ys = torch.arange(H, device=kp.device, dtype=torch.float32)
    dx = xs.view(1, 1, 1, 1, W) - mu[..., 0].unsqueeze(-1).unsqueeze(-1)  # B,N,K,1,W
    dy = ys.view(1, 1, 1, H, 1) - mu[..., 1].unsqueeze(-1).unsqueeze(-1)  # B,N,K,H,1
    inx = (xs.view(1, 1, 1, 1, W) >= left[..., None, None]) & (xs.view(1, 1, 1, 1, W) < right[..., None, None])
    iny = (ys.view(1, 1, 1, H, 1) >= top[..., None, None]) & (ys.view(1, 1, 1, H, 1) < bottom[..., None, None])
    g = torch.exp(-(dx * dx) / (2 * sigma ** 2)) * inx * torch.exp(-(dy * dy) / (2 * sigma ** 2)) * iny
    g = g * valid[..., None, None]
    heatmaps = g.amax(dim=1) if N > 0 else kp.new_zeros((B, K, H, W))
    return heatmaps, weights


def argmax_decode_torch(heatmaps: torch.Tensor, quarter_offset: bool = True):
    """``(B, K, H, W) -> (B, K, 2), (B, K)``: argmax (x, y) and its value; -1 where max <= 0.

    With ``quarter_offset`` each coordinate moves 0.25 px towards the higher neighbour
    (HRNet ``get_final_preds``: only when ``1 < x < W - 1 and 1 < y < H - 1``).
    """
    B, K, H, W = heatmaps.shape
    flat = heatmaps.reshape(B, K, H * W)
    scores, idx = flat.max(dim=-1)
    x = (idx % W).to(heatmaps.dtype)
    y = (idx // W).to(heatmaps.dtype)
    coords = torch.stack([x, y], dim=-1)
    if quarter_offset and H * W > 0:
        xi, yi = idx % W, idx // W
        hm = heatmaps
        def at(yy, xx):
            yy = yy.clamp(0, H - 1)
            xx = xx.clamp(0, W - 1)
            return hm.reshape(B, K, -1).gather(-1, (yy * W + xx).unsqueeze(-1)).squeeze(-1)
        dx = at(yi, xi + 1) - at(yi, xi - 1)
        dy = at(yi + 1, xi) - at(yi - 1, xi)
        # HRNet get_final_preds / mmpose 0.x: both axes only when 1 < x < W-1 and 1 < y < H-1
        ok = (xi > 1) & (xi < W - 1) & (yi > 1) & (yi < H - 1) & (scores > 0)
        coords = coords + 0.25 * torch.stack([torch.sign(dx), torch.sign(dy)], dim=-1) * ok.unsqueeze(-1)
    coords = torch.where((scores > 0).unsqueeze(-1), coords, torch.full_like(coords, -1.0))
    return coords, scores


def gaussian_blur_keep_max(heatmaps: torch.Tensor, kernel: int = 11) -> torch.Tensor:
    """DarkPose's ``gaussian_blur``: blur each map (sigma from cv2's rule), rescale to the old max."""
    B, K, H, W = heatmaps.shape
    sigma = 0.3 * ((kernel - 1) * 0.5 - 1) + 0.8
    r = kernel // 2
    t = torch.arange(kernel, dtype=heatmaps.dtype, device=heatmaps.device) - r
    g = torch.exp(-t * t / (2 * sigma * sigma))
    g = g / g.sum()
    x = heatmaps.reshape(B * K, 1, H, W)
    orig_max = x.amax(dim=(2, 3), keepdim=True)
    x = F.pad(x, (r, r, r, r), mode="constant")
    x = F.conv2d(x, g.view(1, 1, 1, -1))
    x = F.conv2d(x, g.view(1, 1, -1, 1))
    new_max = x.amax(dim=(2, 3), keepdim=True).clamp_min(1e-12)
    x = x * orig_max / new_max
    return x.reshape(B, K, H, W)


def dark_decode_torch(heatmaps: torch.Tensor, kernel: int = 11):
    """DARK (Zhang et al. 2020): argmax, then a second-order Taylor step on the log of the
    blurred heatmap. ``(B, K, H, W) -> (B, K, 2), (B, K)``."""
    B, K, H, W = heatmaps.shape
    coords, scores = argmax_decode_torch(heatmaps, quarter_offset=False)
    hm = gaussian_blur_keep_max(heatmaps, kernel).clamp_min(1e-10).log()
    px, py = coords[..., 0].long(), coords[..., 1].long()
    ok = (px > 1) & (px < W - 2) & (py > 1) & (py < H - 2) & (scores > 0)
    flat = hm.reshape(B, K, -1)
    def at(dy, dx):
        yy = (py + dy).clamp(0, H - 1)
        xx = (px + dx).clamp(0, W - 1)
        return flat.gather(-1, (yy * W + xx).unsqueeze(-1)).squeeze(-1)
    c = at(0, 0)
    dx = 0.5 * (at(0, 1) - at(0, -1))
    dy = 0.5 * (at(1, 0) - at(-1, 0))
    dxx = 0.25 * (at(0, 2) - 2 * c + at(0, -2))
    dxy = 0.25 * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
    dyy = 0.25 * (at(2, 0) - 2 * c + at(-2, 0))
    det = dxx * dyy - dxy * dxy
    okd = ok & (det.abs() > 1e-12)
    safe = torch.where(okd, det, torch.ones_like(det))
    ox = -(dyy * dx - dxy * dy) / safe
    oy = -(-dxy * dx + dxx * dy) / safe
    off = torch.stack([ox, oy], -1) * okd.unsqueeze(-1)
    return coords + off, scores
