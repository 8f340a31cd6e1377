"""Pure numpy / torch oracles of the volume family (test oracles, benchmark baselines).

* :func:`soft_argmax_3d_numpy`: the softmax / sum / identity expectation over a (D, H, W)
  volume in float64 (max-subtracted softmax), optionally debiased (Gu et al. 2021 in 3-D);
* :func:`gaussian_volumes_numpy`: mmpose ``generate_gaussian_heatmaps`` (MSRA / HRNet)
  written for three axes, loop by loop, keeping numpy's float32 arithmetic;
* :func:`soft_argmax_3d_torch` / :func:`gaussian_volumes_torch`: the plain torch versions
  (softmax + weighted sums; a product of per-axis Gaussians masked to the window) that the
  benchmarks compare against.
"""
from __future__ import annotations

import numpy as np
import torch


def soft_argmax_3d_numpy(volumes, beta: float = 1.0, normalize: str = "softmax",
                         debias: bool = False) -> np.ndarray:
    """(B, K, D, H, W) -> (B, K, 3) (x, y, z) in voxels, computed in float64."""
    v = np.asarray(volumes, dtype=np.float64)
    B, K, D, H, W = v.shape
    flat = v.reshape(B, K, -1)
    if normalize == "softmax":
        z = beta * flat
        z = z - z.max(axis=-1, keepdims=True)
        e = np.exp(z)
        p = e / e.sum(-1, keepdims=True)
    elif normalize == "sum":
        p = flat / flat.sum(-1, keepdims=True)
    elif normalize == "none":
        p = flat
    else:
        raise ValueError(normalize)
    zz, yy, xx = np.meshgrid(np.arange(D), np.arange(H), np.arange(W), indexing="ij")
    grid = np.stack([xx.ravel(), yy.ravel(), zz.ravel()], -1).astype(np.float64)  # (N, 3)
    coords = p @ grid
    if debias:
        # C = mean(exp(beta v)); J = C / (C - 1) (J~ - c / C)
        m = (beta * flat).max(-1, keepdims=True)
        C = np.exp(beta * flat - m).mean(-1) * np.exp(m[..., 0])
        c = np.array([(W - 1) / 2, (H - 1) / 2, (D - 1) / 2])
        coords = (C / (C - 1))[..., None] * (coords - c / C[..., None])
    return coords


def gaussian_volumes_numpy(volume_size, keypoints, keypoints_visible, sigma):
    """mmpose ``generate_gaussian_heatmaps`` for one sample, in three axes.

    ``volume_size (W, H, D)``, keypoints ``(N, K, 3)``, visibility ``(N, K)``, sigma a float
    or one per instance -> volumes ``(K, D, H, W)`` (max over the N instances; the
    keypoints' float dtype, float32 as mmpose for float32 input) and weights ``(N, K)``.
    """
    keypoints = np.asarray(keypoints)
    N, K, _ = keypoints.shape
    W, H, D = volume_size
    dtype = np.float64 if keypoints.dtype == np.float64 else np.float32
    volumes = np.zeros((K, D, H, W), dtype=dtype)
    weights = np.asarray(keypoints_visible).copy()
    if isinstance(sigma, (int, float)):
        sigma = (sigma,) * N
    for n in range(N):
        radius = sigma[n] * 3
        size = 2 * radius + 1
        x = np.arange(0, size, 1, dtype=dtype)
        y = x[:, None]
        z = x[:, None, None]
        x0 = size // 2
        for k in range(K):
            if keypoints_visible[n, k] < 0.5:
                continue
            kp = keypoints[n, k, :3]
            if not np.all(np.isfinite(kp)):
                weights[n, k] = 0
                continue
            mu = (kp + dtype(0.5)).astype(np.int64)
            lo = (mu - radius).astype(np.int64)
            hi = (mu + radius + 1).astype(np.int64)
            if np.any(lo >= np.array([W, H, D])) or np.any(hi < 0):
                weights[n, k] = 0
                continue
            g = np.exp(-((x - x0) ** 2 + (y - x0) ** 2 + (z - x0) ** 2) / (2 * sigma[n] ** 2))
            g = g.astype(dtype)
            gx = slice(max(0, -lo[0]), min(W, hi[0]) - lo[0])
            gy = slice(max(0, -lo[1]), min(H, hi[1]) - lo[1])
            gz = slice(max(0, -lo[2]), min(D, hi[2]) - lo[2])
            vx = slice(max(0, lo[0]), min(W, hi[0]))
            vy = slice(max(0, lo[1]), min(H, hi[1]))
            vz = slice(max(0, lo[2]), min(D, hi[2]))
            region = volumes[k, vz, vy, vx]
            np.maximum(region, g[gz, gy, gx], out=region)
    return volumes, weights


def gaussian_volumes_batch_numpy(keypoints, visibility, volume_size, sigma=2.0):
    """Loop :func:`gaussian_volumes_numpy` over a batch, one instance per sample:
    ``(B, K, 3) -> (B, K, D, H, W), (B, K)``; sigma a float, ``(K,)`` or ``(B, K)``."""
    kp = np.asarray(keypoints)
    vis = np.asarray(visibility)
    W, H, D = volume_size
    B, K = kp.shape[:2]
    sig = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (B, K))
    dtype = np.float64 if kp.dtype == np.float64 else np.float32
    volumes = np.zeros((B, K, D, H, W), dtype)
    weights = vis.copy()
    for b in range(B):
        for k in range(K):  # one keypoint at a time: sigma may differ per keypoint
            v, w = gaussian_volumes_numpy((W, H, D), kp[b:b + 1, k:k + 1], vis[b:b + 1, k:k + 1],
                                          (float(sig[b, k]),))
            volumes[b, k] = v[0]
            weights[b, k] = w[0, 0]
    return volumes, weights


# ---- plain torch versions (benchmark baselines, parity) ----------------------------------


def soft_argmax_3d_torch(volumes: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """softmax over D*H*W, then the three weighted sums: (B, K, D, H, W) -> (B, K, 3)."""
    B, K, D, H, W = volumes.shape
    p = torch.softmax(beta * volumes.reshape(B, K, -1), dim=-1).view(B, K, D, H, W)
    dt, dev = volumes.dtype, volumes.device
    x = (p.sum((2, 3)) * torch.arange(W, dtype=dt, device=dev)).sum(-1)
    y = (p.sum((2, 4)) * torch.arange(H, dtype=dt, device=dev)).sum(-1)
    z = (p.sum((3, 4)) * torch.arange(D, dtype=dt, device=dev)).sum(-1)
    return torch.stack([x, y, z], dim=-1)


def gaussian_volumes_torch(keypoints: torch.Tensor, visibility: torch.Tensor, volume_size,
                           sigma: float = 2.0):
    """Torch construction with the same windows and weights, as the product of three 1-D
    Gaussians (within float rounding of the exp of the summed squares):
    ``(B, K, 3) -> (B, K, D, H, W), (B, K)``."""
    W, H, D = volume_size
    kp = keypoints[..., :3]
    dt, dev = kp.dtype, kp.device
    radius = 3.0 * sigma
    mu = (kp + 0.5).to(torch.int64)
    lo = (mu.double() - radius).to(torch.int64)
    hi = (mu.double() + radius + 1).to(torch.int64)
    sizes = torch.tensor([W, H, D], device=dev)
    miss = ((lo >= sizes) | (hi < 0)).any(-1) | ~torch.isfinite(kp).all(-1)
    visible = visibility >= 0.5
    weights = torch.where(visible & miss, torch.zeros_like(visibility), visibility)
    centre = float(np.floor((2 * radius + 1) / 2))
    keep = (visible & ~miss).to(dt)
    factors = []
    for a, n in enumerate((W, H, D)):  # separable: one 1-D Gaussian per axis, 0 off the window
        r = torch.arange(n, device=dev)
        d = (r - lo[..., a:a + 1]).to(dt) - centre  # (B, K, n)
        inside = (r >= lo[..., a:a + 1]) & (r < hi[..., a:a + 1])
        g = torch.exp(-(d * d) / (2 * sigma * sigma))
        factors.append(torch.where(inside, g, torch.zeros((), dtype=dt, device=dev)))
    gx, gy, gz = factors
    gz = gz * keep[..., None]
    volumes = gz[..., :, None, None] * gy[..., None, :, None] * gx[..., None, None, :]
    return volumes, weights
