"""Reference (oracle) implementations of the heatmap target generators.

Two kinds live here:

* ``mmpose_*``: faithful numpy reimplementations of the mmpose functions, one image at a
  time, with the same loops, dtypes and operation order (so numpy's promotion rules give the
  same float32 bits): ``generate_gaussian_heatmaps``, ``generate_udp_gaussian_heatmaps``,
  ``generate_unbiased_gaussian_heatmaps`` (mmpose/codecs/utils/gaussian_heatmap.py),
  ``SimCCLabel._generate_gaussian`` (mmpose/codecs/simcc_label.py) and 0.x
  ``PAFGenerator`` (mmpose/datasets/pipelines/bottom_up_transform.py). They are the test
  oracles of :mod:`pyhpe.ops.heatmap` and the "mmpose-style numpy loop" benchmark baseline.
  Extensions over mmpose are opt-in and named (per-(n, k) sigma, skipping zero-length limbs,
  the soft PAF mode).
* ``*_torch``: vectorized pure-torch versions over a whole batch (a fallback that needs no
  compiled extension, and a benchmark baseline).
"""
from __future__ import annotations

from itertools import product

import numpy as np
import torch


def _sigma_at(sigma, n: int, k: int) -> float:
    """mmpose indexes sigma per instance; (N, K) arrays are our per-keypoint extension."""
    if np.ndim(sigma) == 0:
        return float(sigma)
    s = np.asarray(sigma)
    return float(s[n]) if s.ndim == 1 else float(s[n, k])


def _window_bounds(mu, radius):
    left, top = (mu - radius).astype(np.int64)
    right, bottom = (mu + radius + 1).astype(np.int64)
    return left, top, right, bottom


def _paste_max(heatmap, gaussian, left, top, right, bottom, W, H):
    """np.maximum of the in-map part of a window-sized gaussian into heatmap (in place)."""
    gx0, gx1 = max(0, -left), min(W, right) - left
    gy0, gy1 = max(0, -top), min(H, bottom) - top
    hx0, hx1 = max(0, left), min(W, right)
    hy0, hy1 = max(0, top), min(H, bottom)
    region = heatmap[hy0:hy1, hx0:hx1]
    np.maximum(region, gaussian[gy0:gy1, gx0:gx1], out=region)


def mmpose_gaussian_heatmaps(heatmap_size, keypoints, keypoints_visible, sigma):
    """mmpose ``generate_gaussian_heatmaps``: (N, K, D) -> (K, H, W) float32, (N, K)."""
    N, K = keypoints.shape[:2]
    W, H = heatmap_size
    heatmaps = np.zeros((K, H, W), dtype=np.float32)
    weights = keypoints_visible.copy()
    for n, k in product(range(N), range(K)):
        if keypoints_visible[n, k] < 0.5:
            continue
        s = _sigma_at(sigma, n, k)
        radius = s * 3
        size = 2 * radius + 1
        grid_x = np.arange(0, size, 1, dtype=np.float32)
        grid_y = grid_x[:, None]
        centre = size // 2
        mu = (keypoints[n, k, :2] + 0.5).astype(np.int64)
        left, top, right, bottom = _window_bounds(mu, radius)
        if left >= W or top >= H or right < 0 or bottom < 0:
            weights[n, k] = 0
            continue
        gaussian = np.exp(-((grid_x - centre)**2 + (grid_y - centre)**2) / (2 * s**2))
        _paste_max(heatmaps[k], gaussian, left, top, right, bottom, W, H)
    return heatmaps, weights


def mmpose_udp_gaussian_heatmaps(heatmap_size, keypoints, keypoints_visible, sigma):
    """mmpose ``generate_udp_gaussian_heatmaps``: (N, K, D) -> (K, H, W) float32, (N, K)."""
    N, K = keypoints.shape[:2]
    W, H = heatmap_size
    heatmaps = np.zeros((K, H, W), dtype=np.float32)
    weights = keypoints_visible.copy()
    for n, k in product(range(N), range(K)):
        if keypoints_visible[n, k] < 0.5:
            continue
        s = _sigma_at(sigma, n, k)
        radius = s * 3
        size = 2 * radius + 1
        grid_x = np.arange(0, size, 1, dtype=np.float32)
        grid_y = grid_x[:, None]
        mu = (keypoints[n, k, :2] + 0.5).astype(np.int64)
        left, top, right, bottom = _window_bounds(mu, radius)
        if left >= W or top >= H or right < 0 or bottom < 0:
            weights[n, k] = 0
            continue
        exact = keypoints[n, k, :2]
        cx = cy = size // 2
        cx += exact[0] - mu[0]  # np.float32 - np.int64: float64, so the rest is float64
        cy += exact[1] - mu[1]
        gaussian = np.exp(-((grid_x - cx)**2 + (grid_y - cy)**2) / (2 * s**2))
        _paste_max(heatmaps[k], gaussian, left, top, right, bottom, W, H)
    return heatmaps, weights


def mmpose_unbiased_gaussian_heatmaps(heatmap_size, keypoints, keypoints_visible, sigma):
    """mmpose ``generate_unbiased_gaussian_heatmaps`` (DARK): (N, K, D) -> (K, H, W), (N, K)."""
    N, K = keypoints.shape[:2]
    W, H = heatmap_size
    heatmaps = np.zeros((K, H, W), dtype=np.float32)
    weights = keypoints_visible.copy()
    grid_x = np.arange(0, W, 1, dtype=np.float32)
    grid_y = np.arange(0, H, 1, dtype=np.float32)[:, None]
    for n, k in product(range(N), range(K)):
        if keypoints_visible[n, k] < 0.5:
            continue
        s = _sigma_at(sigma, n, k)
        radius = s * 3
        mu = keypoints[n, k, :2]
        left, top = mu - radius
        right, bottom = mu + radius + 1
        if left >= W or top >= H or right < 0 or bottom < 0:
            weights[n, k] = 0
            continue
        gaussian = np.exp(-((grid_x - mu[0])**2 + (grid_y - mu[1])**2) / (2 * s**2))
        np.maximum(gaussian, heatmaps[k], out=heatmaps[k])
    return heatmaps, weights


def mmpose_simcc_gaussian(keypoints, keypoints_visible, input_size, sigma=6.0,
                          simcc_split_ratio=2.0, normalize=True):
    """mmpose ``SimCCLabel(smoothing_type='gaussian')``.encode: (N, K, D) -> (N, K, Wx),
    (N, K, Wy), (N, K)."""
    sigma = np.array([sigma, sigma]) if np.ndim(sigma) == 0 else np.array(sigma)
    N, K = keypoints.shape[:2]
    w, h = input_size
    Wx = np.around(w * simcc_split_ratio).astype(int)
    Wy = np.around(h * simcc_split_ratio).astype(int)
    split = np.around(keypoints[..., :2].copy() * simcc_split_ratio).astype(np.int64)
    weights = keypoints_visible.copy()
    target_x = np.zeros((N, K, Wx), dtype=np.float32)
    target_y = np.zeros((N, K, Wy), dtype=np.float32)
    radius = sigma * 3
    grid_x = np.arange(0, Wx, 1, dtype=np.float32)
    grid_y = np.arange(0, Wy, 1, dtype=np.float32)
    for n, k in product(range(N), range(K)):
        if keypoints_visible[n, k] < 0.5:
            continue
        mu = split[n, k]
        left, top = mu - radius
        right, bottom = mu + radius + 1
        if left >= Wx or top >= Wy or right < 0 or bottom < 0:
            weights[n, k] = 0
            continue
        mu_x, mu_y = mu
        target_x[n, k] = np.exp(-((grid_x - mu_x)**2) / (2 * sigma[0]**2))
        target_y[n, k] = np.exp(-((grid_y - mu_y)**2) / (2 * sigma[1]**2))
    if normalize:
        norm = sigma * np.sqrt(np.pi * 2)
        target_x /= norm[0]
        target_y /= norm[1]
    return target_x, target_y, weights


def mmpose_paf(heatmap_size, joints, skeleton, limb_width=1.0, skip_zero_length=True,
               mode="hard"):
    """mmpose 0.x ``PAFGenerator``: joints (N, K, 3) (x, y, v) -> pafs (2L, H, W), counts
    (L, H, W) float32.

    ``skip_zero_length=False`` is mmpose exactly (a zero-length limb counts with a zero
    vector over its box); True is pyhpe's behaviour. ``mode='soft'`` is pyhpe's extension:
    weight ``exp(-d²/2w²)`` within 3 widths, field ``sum / max(Σweights, 1)``.
    """
    W, H = heatmap_size
    L = len(skeleton)
    pafs = np.zeros((2 * L, H, W), dtype=np.float32)
    counts = np.zeros((L, H, W), dtype=np.float32)
    for idx, (a, b) in enumerate(skeleton):
        count = np.zeros((H, W), dtype=np.float32)
        for p in joints:
            src, dst = p[a], p[b]
            if not (src[2] > 0 and dst[2] > 0):
                continue
            src, dst = src[:2], dst[:2]
            vec = dst - src
            norm = np.linalg.norm(vec)
            if norm == 0:
                if skip_zero_length:
                    continue
                unit = np.zeros(2, dtype=np.float32)
            else:
                unit = vec / norm
            reach = limb_width if mode == "hard" else 3 * limb_width
            x0 = max(np.floor(min(src[0], dst[0]) - np.float32(reach)), 0)
            x1 = min(np.ceil(max(src[0], dst[0]) + np.float32(reach)), W - 1)
            y0 = max(np.floor(min(src[1], dst[1]) - np.float32(reach)), 0)
            y1 = min(np.ceil(max(src[1], dst[1]) + np.float32(reach)), H - 1)
            xs = list(range(int(x0), int(x1 + 1)))
            ys = list(range(int(y0), int(y1 + 1)))
            if not xs or not ys:
                continue
            xx, yy = np.meshgrid(xs, ys)
            dist = np.abs((xx - src[0]) * unit[1] - (yy - src[1]) * unit[0])
            if mode == "hard":
                inside = dist < limb_width
                mask = np.zeros((H, W), dtype=bool)
                mask[yy, xx] = inside
                pafs[2 * idx, mask] += unit[0]
                pafs[2 * idx + 1, mask] += unit[1]
                count += mask
            else:
                g = np.where(dist < 3 * limb_width,
                             np.exp(-(dist * dist) / (2.0 * (limb_width * limb_width))), 0.0)
                g = g.astype(np.float32)
                gmap = np.zeros((H, W), dtype=np.float32)
                gmap[yy, xx] = g
                pafs[2 * idx] += gmap * unit[0]
                pafs[2 * idx + 1] += gmap * unit[1]
                count += gmap
        pafs[2 * idx:2 * idx + 2] /= np.maximum(count, 1)
        counts[idx] = count
    return pafs, counts


# ---------------------------------------------------------------------------------------
# batched drivers over the per-image functions (the "mmpose-style numpy loop")
# ---------------------------------------------------------------------------------------

_MMPOSE_GAUSSIAN = {
    "msra": mmpose_gaussian_heatmaps,
    "udp": mmpose_udp_gaussian_heatmaps,
    "unbiased": mmpose_unbiased_gaussian_heatmaps,
}


def gaussian_heatmaps_numpy(keypoints, visibility, heatmap_size, sigma=2.0, encoding="msra"):
    """Loop the mmpose function over a batch: (B, N, K, 2) -> (B, K, H, W), (B, N, K).

    ``sigma`` is a float, or a (B, N) / (B, N, K) array (row b is passed to image b).
    """
    fn = _MMPOSE_GAUSSIAN[encoding]
    kp = np.asarray(keypoints)
    vis = np.asarray(visibility)
    maps, weights = [], []
    for b in range(kp.shape[0]):
        s = sigma if np.ndim(sigma) == 0 else np.asarray(sigma)[b]
        m, w = fn(heatmap_size, kp[b], vis[b], s)
        maps.append(m)
        weights.append(w)
    W, H = heatmap_size
    if not maps:
        return (np.zeros((0, kp.shape[2], H, W), np.float32),
                np.zeros((0,) + kp.shape[1:3], vis.dtype))
    return np.stack(maps), np.stack(weights)


def paf_targets_numpy(keypoints, visibility, limbs, heatmap_size, limb_width=1.0, mode="hard",
                      skip_zero_length=True):
    """Loop :func:`mmpose_paf` over a batch: (B, N, K, 2) -> (B, 2L, H, W), (B, L, H, W)."""
    kp = np.asarray(keypoints)
    vis = np.asarray(visibility)
    W, H = heatmap_size
    skeleton = [tuple(int(v) for v in lm) for lm in np.asarray(limbs).reshape(-1, 2)]
    pafs, counts = [], []
    for b in range(kp.shape[0]):
        joints = np.concatenate([kp[b, ..., :2], vis[b, ..., None]], axis=-1)
        p, c = mmpose_paf(heatmap_size, joints, skeleton, limb_width, skip_zero_length, mode)
        pafs.append(p)
        counts.append(c)
    if not pafs:
        L = len(skeleton)
        return np.zeros((0, 2 * L, H, W), np.float32), np.zeros((0, L, H, W), np.float32)
    return np.stack(pafs), np.stack(counts)


# ---------------------------------------------------------------------------------------
# vectorized torch versions (whole batch at once)
# ---------------------------------------------------------------------------------------

def gaussian_heatmaps_torch(keypoints: torch.Tensor, visibility: torch.Tensor, heatmap_size,
                            sigma=2.0, encoding: str = "msra"):
    """Vectorized torch equivalent of the mmpose encoders (same windows and weights):
    (B, N, K, 2) -> (B, K, H, W), (B, N, K); memory O(B·N·K·H·W)."""
    W, H = heatmap_size
    kp = keypoints[..., :2]
    dtype, device = kp.dtype, kp.device
    B, N, K = kp.shape[:3]
    sig = torch.as_tensor(sigma, dtype=torch.float64, device=device)
    if sig.dim() == 0:
        sig = sig.reshape(1, 1, 1)
    elif sig.dim() == 1:  # per keypoint
        sig = sig.reshape(1, 1, -1)
    elif sig.dim() == 2:  # per instance
        sig = sig[..., None]
    sig = sig.expand(B, N, K)
    radius = sig * 3
    visible = visibility >= 0.5
    xs = torch.arange(W, device=device)
    ys = torch.arange(H, device=device)
    if encoding == "unbiased":
        r = radius.to(dtype)
        kx, ky = kp[..., 0], kp[..., 1]
        miss = (kx - r >= W) | (ky - r >= H) | (kx + r + 1 < 0) | (ky + r + 1 < 0)
        dx2 = (xs.to(dtype) - kx[..., None]) ** 2
        dy2 = (ys.to(dtype) - ky[..., None]) ** 2
        inside_x = torch.ones_like(dx2, dtype=torch.bool)
        inside_y = torch.ones_like(dy2, dtype=torch.bool)
        denom = (2 * sig * sig).to(dtype)
    else:
        mu = (kp + 0.5).to(torch.int64)
        lo = (mu.double() - radius[..., None]).to(torch.int64)
        hi = (mu.double() + radius[..., None] + 1).to(torch.int64)
        miss = (lo[..., 0] >= W) | (lo[..., 1] >= H) | (hi[..., 0] < 0) | (hi[..., 1] < 0)
        centre = torch.floor((2 * radius + 1) / 2)
        work = torch.float64 if encoding == "udp" else dtype
        cx = centre.clone()
        cy = centre.clone()
        if encoding == "udp":
            cx = cx + (kp[..., 0].double() - mu[..., 0].double())
            cy = cy + (kp[..., 1].double() - mu[..., 1].double())
        gx = (xs - lo[..., 0:1]).to(work) - cx[..., None].to(work)
        gy = (ys - lo[..., 1:2]).to(work) - cy[..., None].to(work)
        dx2, dy2 = gx * gx, gy * gy
        inside_x = (xs >= lo[..., 0:1]) & (xs < hi[..., 0:1])
        inside_y = (ys >= lo[..., 1:2]) & (ys < hi[..., 1:2])
        denom = (2 * sig * sig).to(work)
    active = visible & ~miss
    g = torch.exp(-(dx2[..., None, :] + dy2[..., :, None]) / denom[..., None, None]).to(dtype)
    mask = inside_x[..., None, :] & inside_y[..., :, None] & active[..., None, None]
    g = torch.where(mask, g, torch.zeros((), dtype=dtype, device=device))
    heatmaps = g.amax(dim=1) if N else torch.zeros((B, K, H, W), dtype=dtype, device=device)
    weights = torch.where(visible & miss, torch.zeros_like(visibility), visibility)
    return heatmaps, weights


def simcc_labels_torch(keypoints: torch.Tensor, visibility: torch.Tensor, input_size,
                       sigma=(6.0, 6.0), split_ratio: float = 2.0,
                       normalize: bool = False):
    """Vectorized torch SimCC labels (mmpose gaussian mode): (B, K, 2) -> (B, K, Wx),
    (B, K, Wy), (B, K). Labels are computed in float64 and rounded, as numpy 2 does."""
    sx, sy = (float(sigma), float(sigma)) if np.ndim(sigma) == 0 else map(float, sigma)
    w, h = input_size
    dtype, device = keypoints.dtype, keypoints.device
    lengths = (int(round(w * split_ratio)), int(round(h * split_ratio)))
    centre = torch.round(keypoints[..., :2] * split_ratio).to(torch.int64)  # half-even
    labelled = visibility >= 0.5
    miss = torch.zeros_like(labelled)
    labels = []
    for axis, (length, s) in enumerate(zip(lengths, (sx, sy))):
        mu = centre[..., axis].double()
        miss = miss | (mu - 3 * s >= length) | (mu + 3 * s + 1 < 0)
        d = torch.arange(length, dtype=torch.float64, device=device) - mu[..., None]
        lab = torch.exp(-(d * d) / (2 * (s * s))).to(dtype)
        if normalize:
            lab = (lab.double() / (s * np.sqrt(np.pi * 2))).to(dtype)
        labels.append(lab)
    active = (labelled & ~miss)[..., None]
    zero = torch.zeros((), dtype=dtype, device=device)
    weights = torch.where(labelled & miss, torch.zeros_like(visibility), visibility)
    return torch.where(active, labels[0], zero), torch.where(active, labels[1], zero), weights


def paf_targets_torch(keypoints: torch.Tensor, visibility: torch.Tensor, limbs, heatmap_size,
                      limb_width: float = 1.0, mode: str = "hard"):
    """Vectorized torch PAFs with pyhpe's semantics (mmpose 0.x PAFGenerator, zero-length
    limbs skipped; 'soft' as in :func:`mmpose_paf`): (B, N, K, 2) -> (B, 2L, H, W),
    (B, L, H, W). Memory O(B·N·L·H·W) in float64."""
    W, H = heatmap_size
    dtype, device = keypoints.dtype, keypoints.device
    lim = torch.as_tensor(limbs, dtype=torch.int64, device=device).reshape(-1, 2)
    B, L = keypoints.shape[0], lim.shape[0]
    src, dst = keypoints[:, :, lim[:, 0], :2], keypoints[:, :, lim[:, 1], :2]  # (B, N, L, 2)
    vec = dst - src
    norm = torch.sqrt(vec[..., 0] * vec[..., 0] + vec[..., 1] * vec[..., 1])
    active = (visibility[:, :, lim[:, 0]] > 0) & (visibility[:, :, lim[:, 1]] > 0) & (norm > 0)
    unit = vec / torch.where(norm > 0, norm, torch.ones_like(norm))[..., None]
    reach = torch.tensor(limb_width if mode == "hard" else 3 * limb_width, dtype=dtype)
    lo = torch.floor(torch.minimum(src, dst) - reach).clamp(min=0)
    hi = torch.ceil(torch.maximum(src, dst) + reach)
    hi = torch.minimum(hi, torch.tensor([W - 1, H - 1], dtype=dtype, device=device))
    xs = torch.arange(W, device=device, dtype=torch.float64)
    ys = torch.arange(H, device=device, dtype=torch.float64)
    in_x = (xs >= lo[..., 0:1].double()) & (xs <= hi[..., 0:1].double())
    in_y = (ys >= lo[..., 1:2].double()) & (ys <= hi[..., 1:2].double())
    dx = xs - src[..., 0:1].double()
    dy = ys - src[..., 1:2].double()
    dist = (dx[..., None, :] * unit[..., 1, None, None].double()
            - dy[..., :, None] * unit[..., 0, None, None].double()).abs()
    inside = in_x[..., None, :] & in_y[..., :, None] & active[..., None, None]
    if mode == "hard":
        weight = (inside & (dist < limb_width)).to(dtype)
    else:
        g = torch.exp(-(dist * dist) / (2.0 * (limb_width * limb_width))).to(dtype)
        weight = torch.where(inside & (dist < 3 * limb_width), g, torch.zeros((), dtype=dtype))
    count = weight.sum(dim=1)  # (B, L, H, W)
    sums = (weight[:, :, :, None] * unit[..., None, None]).sum(dim=1)  # (B, L, 2, H, W)
    pafs = sums / count.clamp(min=1)[:, :, None]
    return pafs.reshape(B, 2 * L, H, W), count


__all__ = [
    "mmpose_gaussian_heatmaps", "mmpose_udp_gaussian_heatmaps",
    "mmpose_unbiased_gaussian_heatmaps", "mmpose_simcc_gaussian", "mmpose_paf",
    "gaussian_heatmaps_numpy", "paf_targets_numpy", "gaussian_heatmaps_torch",
    "simcc_labels_torch", "paf_targets_torch",
]
