"""Pure numpy / torch oracles of the decode family (test oracles and documented fallback).

Faithful reimplementations of the reference functions, keeping their dtype behaviour
(float32 stays float32 where numpy keeps it) and quirks:

* HRNet ``get_max_preds`` / mmpose 0.x ``_get_max_preds``, the quarter-pixel shift of
  HRNet ``get_final_preds`` / mmpose 0.x ``keypoints_from_heatmaps``, and mmpose 1.x
  ``get_heatmap_maximum`` + ``refine_keypoints``;
* DarkPose / mmpose ``gaussian_blur`` (OpenCV), ``refine_keypoints_dark`` and
  ``refine_keypoints_dark_udp``;
* mmpose ``get_simcc_maximum``, ``gaussian_blur1d``, ``refine_simcc_dark`` and
  ``SimCCLabel.decode``;
* integral regression (softmax expectation), the debiased IPR of mmpose's
  ``IntegralRegressionHead`` and of the paper (Gu et al. 2021), dsntnn's ``dsnt``;
* mmpose 0.x ``transform_preds`` (with scale in pixels) and ``affine_transform``.
"""
from __future__ import annotations

import numpy as np
import torch

# ---- argmax -------------------------------------------------------------------------


def get_max_preds(heatmaps: np.ndarray):
    """mmpose 0.x _get_max_preds (HRNet get_max_preds with a -1 instead of a 0 sentinel):
    (N, K, H, W) -> preds (N, K, 2) float32, maxvals (N, K, 1)."""
    N, K, H, W = heatmaps.shape
    flat = heatmaps.reshape(N, K, H * W)
    idx = np.argmax(flat, axis=2).reshape(N, K, 1)
    maxvals = np.amax(flat, axis=2).reshape(N, K, 1)
    preds = np.tile(idx, (1, 1, 2)).astype(np.float32)
    preds[:, :, 0] = preds[:, :, 0] % W
    preds[:, :, 1] = np.floor(preds[:, :, 1] / W)
    mask = np.tile(maxvals > 0.0, (1, 1, 2))
    return np.where(mask, preds, -1).astype(np.float32), maxvals


def quarter_offset_hrnet(preds: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """HRNet get_final_preds / mmpose 0.x post_process='default' shift (in place)."""
    N, K, H, W = heatmaps.shape
    for n in range(N):
        for k in range(K):
            hm = heatmaps[n, k]
            px, py = int(preds[n, k, 0]), int(preds[n, k, 1])
            if 1 < px < W - 1 and 1 < py < H - 1:
                diff = np.array([hm[py, px + 1] - hm[py, px - 1], hm[py + 1, px] - hm[py - 1, px]])
                preds[n, k] += np.sign(diff) * 0.25
    return preds


def refine_keypoints_mmpose1(keypoints: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """mmpose 1.x refine_keypoints: keypoints (N, K, 2), heatmaps (K, H, W), per-axis rule."""
    N, K = keypoints.shape[:2]
    H, W = heatmaps.shape[1:]
    for n in range(N):
        for k in range(K):
            x, y = keypoints[n, k, :2].astype(int)
            dx = heatmaps[k, y, x + 1] - heatmaps[k, y, x - 1] if (1 < x < W - 1 and 0 < y < H) else 0.
            dy = heatmaps[k, y + 1, x] - heatmaps[k, y - 1, x] if (1 < y < H - 1 and 0 < x < W) else 0.
            keypoints[n, k] += np.sign([dx, dy], dtype=np.float32) * 0.25
    return keypoints


def argmax_decode(heatmaps: np.ndarray, quarter_offset: bool = True, offset_rule: str = "hrnet"):
    """(B, K, H, W) -> coords (B, K, 2) float32, scores (B, K), as pyhpe.ops.argmax_decode."""
    preds, maxvals = get_max_preds(heatmaps)
    if quarter_offset and offset_rule == "hrnet":
        preds = quarter_offset_hrnet(preds, heatmaps)
    elif quarter_offset:
        for b in range(heatmaps.shape[0]):
            preds[b:b + 1] = refine_keypoints_mmpose1(preds[b:b + 1], heatmaps[b])
    return preds, maxvals[..., 0]


# ---- DARK ---------------------------------------------------------------------------


def gaussian_blur(heatmaps: np.ndarray, kernel: int = 11) -> np.ndarray:
    """DarkPose / mmpose gaussian_blur on (K, H, W), in place: zero pad, cv2 blur, rescale."""
    import cv2

    assert kernel % 2 == 1
    border = (kernel - 1) // 2
    K, H, W = heatmaps.shape
    for k in range(K):
        origin_max = np.max(heatmaps[k])
        padded = np.zeros((H + 2 * border, W + 2 * border), dtype=heatmaps.dtype)
        padded[border:-border, border:-border] = heatmaps[k]
        padded = cv2.GaussianBlur(padded, (kernel, kernel), 0)
        heatmaps[k] = padded[border:-border, border:-border]
        with np.errstate(divide="ignore", invalid="ignore"):  # all-zero maps: 0 / 0 as mmpose
            heatmaps[k] *= origin_max / np.max(heatmaps[k])
    return heatmaps


def refine_keypoints_dark(keypoints: np.ndarray, heatmaps: np.ndarray, kernel: int) -> np.ndarray:
    """mmpose refine_keypoints_dark (DarkPose taylor): keypoints (N, K, 2), heatmaps (K, H, W)."""
    N, K = keypoints.shape[:2]
    H, W = heatmaps.shape[1:]
    hm = gaussian_blur(heatmaps.copy(), kernel)
    np.maximum(hm, 1e-10, out=hm)
    np.log(hm, out=hm)
    for n in range(N):
        for k in range(K):
            x, y = keypoints[n, k, :2].astype(int)
            if not (1 < x < W - 2 and 1 < y < H - 2):
                continue
            m = hm[k]
            dx = 0.5 * (m[y, x + 1] - m[y, x - 1])
            dy = 0.5 * (m[y + 1, x] - m[y - 1, x])
            dxx = 0.25 * (m[y, x + 2] - 2 * m[y, x] + m[y, x - 2])
            dxy = 0.25 * (m[y + 1, x + 1] - m[y - 1, x + 1] - m[y + 1, x - 1] + m[y - 1, x - 1])
            dyy = 0.25 * (m[y + 2, x] - 2 * m[y, x] + m[y - 2, x])
            if dxx * dyy - dxy ** 2 != 0:
                hess = np.array([[dxx, dxy], [dxy, dyy]])
                grad = np.array([[dx], [dy]])
                keypoints[n, k, :2] += (-np.linalg.inv(hess) @ grad)[:, 0]
    return keypoints


def refine_keypoints_dark_udp(keypoints: np.ndarray, heatmaps: np.ndarray,
                              kernel: int) -> np.ndarray:
    """mmpose 1.x refine_keypoints_dark_udp: keypoints (N, K, 2), heatmaps (K, H, W)."""
    N, K = keypoints.shape[:2]
    H, W = heatmaps.shape[1:]
    hm = gaussian_blur(heatmaps.copy(), kernel)
    np.clip(hm, 1e-3, 50., out=hm)
    np.log(hm, out=hm)
    flat = np.pad(hm, ((0, 0), (1, 1), (1, 1)), mode="edge").flatten()
    row = W + 2
    for n in range(N):
        index = keypoints[n, :, 0] + 1 + (keypoints[n, :, 1] + 1) * row
        index += row * (H + 2) * np.arange(0, K)
        index = index.astype(int).reshape(-1, 1)
        c = flat[index]
        xp, xm = flat[index + 1], flat[index - 1]
        yp, ym = flat[index + row], flat[index - row]
        xpyp, xmym = flat[index + row + 1], flat[index - row - 1]
        grad = np.concatenate([0.5 * (xp - xm), 0.5 * (yp - ym)], axis=1).reshape(K, 2, 1)
        dxx = xp - 2 * c + xm
        dyy = yp - 2 * c + ym
        dxy = 0.5 * (xpyp - xp - yp + c + c - xm - ym + xmym)
        hess = np.concatenate([dxx, dxy, dxy, dyy], axis=1).reshape(K, 2, 2)
        inv = np.linalg.inv(hess + np.finfo(np.float32).eps * np.eye(2))
        keypoints[n] -= np.einsum("imn,ink->imk", inv, grad).squeeze()
    return keypoints


def dark_decode(heatmaps: np.ndarray, kernel: int = 11, udp: bool = False):
    """(B, K, H, W) -> coords (B, K, 2), scores (B, K), as pyhpe.ops.dark_decode.

    mmpose 1.x per instance (get_heatmap_maximum + refinement); for UDP the sentinel maps
    (max <= 0) are left at -1 instead of reading outside the map like mmpose does.
    """
    preds, maxvals = get_max_preds(heatmaps)
    out = preds.copy()
    for b in range(heatmaps.shape[0]):
        kp = preds[b:b + 1].copy()
        if udp:
            kp = refine_keypoints_dark_udp(kp, heatmaps[b], kernel)
            valid = maxvals[b, :, 0] > 0
            out[b, valid] = kp[0, valid]
        else:
            out[b] = refine_keypoints_dark(kp, heatmaps[b], kernel)[0]
    return out, maxvals[..., 0]


# ---- SimCC --------------------------------------------------------------------------


def get_simcc_maximum(simcc_x: np.ndarray, simcc_y: np.ndarray):
    """mmpose get_simcc_maximum for (N, K, W*) inputs -> locs (N, K, 2) float32, vals (N, K)."""
    N, K, _ = simcc_x.shape
    sx, sy = simcc_x.reshape(N * K, -1), simcc_y.reshape(N * K, -1)
    locs = np.stack((np.argmax(sx, axis=1), np.argmax(sy, axis=1)), axis=-1).astype(np.float32)
    vx, vy = np.amax(sx, axis=1), np.amax(sy, axis=1)
    take_y = vx > vy
    vx[take_y] = vy[take_y]
    locs[vx <= 0.] = -1
    return locs.reshape(N, K, 2), vx.reshape(N, K)


def gaussian_blur1d(simcc: np.ndarray, kernel: int = 11) -> np.ndarray:
    """mmpose gaussian_blur1d on (N, K, W), in place."""
    import cv2

    assert kernel % 2 == 1
    border = (kernel - 1) // 2
    N, K, Wx = simcc.shape
    for n in range(N):
        for k in range(K):
            origin_max = np.max(simcc[n, k])
            padded = np.zeros((1, Wx + 2 * border), dtype=simcc.dtype)
            padded[0, border:-border] = simcc[n, k]
            padded = cv2.GaussianBlur(padded, (kernel, 1), 0)
            simcc[n, k] = padded[0, border:-border]
            with np.errstate(divide="ignore", invalid="ignore"):
                simcc[n, k] *= origin_max / np.max(simcc[n, k])
    return simcc


def refine_simcc_dark(keypoints: np.ndarray, simcc: np.ndarray, kernel: int) -> np.ndarray:
    """mmpose refine_simcc_dark: keypoints (N, K) one axis, simcc (N, K, W)."""
    N = simcc.shape[0]
    sm = gaussian_blur1d(simcc.copy(), kernel)
    np.clip(sm, 1e-3, 50., out=sm)
    np.log(sm, out=sm)
    sm = np.pad(sm, ((0, 0), (0, 0), (2, 2)), "edge")
    for n in range(N):
        px = (keypoints[n] + 2.5).astype(np.int64).reshape(-1, 1)
        v = [np.take_along_axis(sm[n], px + d, axis=1) for d in (-2, -1, 0, 1, 2)]
        dx = 0.5 * (v[3] - v[1])
        dxx = 1e-9 + 0.25 * (v[4] - 2 * v[2] + v[0])
        keypoints[n] -= (dx / dxx).reshape(-1)
    return keypoints


def simcc_decode(x_labels: np.ndarray, y_labels: np.ndarray, split_ratio: float = 2.0,
                 kernel_x: int = 0, kernel_y: int = 0):
    """mmpose SimCCLabel.decode (batched): kernel 0 = no DARK on that axis."""
    locs, vals = get_simcc_maximum(x_labels, y_labels)
    if kernel_x:
        locs[:, :, 0] = refine_simcc_dark(locs[:, :, 0].copy(), x_labels, kernel_x)
    if kernel_y:
        locs[:, :, 1] = refine_simcc_dark(locs[:, :, 1].copy(), y_labels, kernel_y)
    locs /= split_ratio
    return locs, vals


# ---- soft-argmax family (torch) -------------------------------------------------------


def _pixel_expectation(probs: torch.Tensor) -> torch.Tensor:
    H, W = probs.shape[-2:]
    xs = torch.arange(W, dtype=probs.dtype, device=probs.device)
    ys = torch.arange(H, dtype=probs.dtype, device=probs.device)
    return torch.stack([(probs.sum(-2) * xs).sum(-1), (probs.sum(-1) * ys).sum(-1)], dim=-1)


def soft_argmax(heatmaps: torch.Tensor, beta: float = 1.0, normalize: str = "softmax"):
    """Integral regression in pixel coordinates: (B, K, H, W) -> (B, K, 2)."""
    B, K, H, W = heatmaps.shape
    if normalize == "softmax":
        probs = torch.softmax(heatmaps.reshape(B, K, -1) * beta, dim=-1).reshape(B, K, H, W)
    elif normalize == "sum":
        probs = heatmaps / heatmaps.sum(dim=(-2, -1), keepdim=True)
    else:
        probs = heatmaps
    return _pixel_expectation(probs)


def debiased_soft_argmax_mmpose(feats: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """mmpose IntegralRegressionHead.forward (debias=True) on final-layer output, returned in
    mmpose's normalized [0, 1) units (x / W, y / H)."""
    B, N, H, W = feats.shape
    probs = torch.softmax((feats * beta).reshape(B, N, H * W), dim=2).reshape(B, N, H, W)
    lin_x = torch.arange(0.0, W, dtype=feats.dtype).reshape(1, 1, 1, W) / W
    lin_y = torch.arange(0.0, H, dtype=feats.dtype).reshape(1, 1, H, 1) / H
    pred_x = (probs * lin_x).reshape(B, N, -1).sum(2, keepdim=True)
    pred_y = (probs * lin_y).reshape(B, N, -1).sum(2, keepdim=True)
    C = feats.reshape(B, N, H * W).exp().sum(dim=2).reshape(B, N, 1)
    pred_x = C / (C - 1) * (pred_x - 1 / (2 * C))
    pred_y = C / (C - 1) * (pred_y - 1 / (2 * C))
    return torch.cat([pred_x, pred_y], dim=-1)


def debiased_soft_argmax_paper(heatmaps: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Gu et al. 2021 with C = mean(exp(beta h)), pixel grid, centre ((W-1)/2, (H-1)/2)."""
    B, K, H, W = heatmaps.shape
    J = soft_argmax(heatmaps, beta)
    C = (heatmaps * beta).exp().mean(dim=(-2, -1)).unsqueeze(-1)
    centre = torch.tensor([(W - 1) / 2, (H - 1) / 2], dtype=heatmaps.dtype)
    return C / (C - 1) * (J - centre / C)


def dsnt(heatmaps: torch.Tensor) -> torch.Tensor:
    """dsntnn.dsnt: sum h * normalized_linspace, (x, y) in (-1, 1)."""
    H, W = heatmaps.shape[-2:]
    xs = (torch.arange(W, dtype=heatmaps.dtype) * (2.0 / W)) - (W - 1.0) / W
    ys = (torch.arange(H, dtype=heatmaps.dtype) * (2.0 / H)) - (H - 1.0) / H
    return torch.stack([(heatmaps.sum(-2) * xs).sum(-1), (heatmaps.sum(-1) * ys).sum(-1)], -1)


# ---- back-transforms ------------------------------------------------------------------


def transform_preds(coords: np.ndarray, center, scale, output_size, use_udp: bool = False):
    """mmpose 0.x transform_preds for one instance, ``scale`` in pixels (no * 200)."""
    scale = np.asarray(scale)
    if use_udp:
        sx, sy = scale[0] / (output_size[0] - 1.0), scale[1] / (output_size[1] - 1.0)
    else:
        sx, sy = scale[0] / output_size[0], scale[1] / output_size[1]
    out = np.ones_like(coords)
    out[:, 0] = coords[:, 0] * sx + center[0] - scale[0] * 0.5
    out[:, 1] = coords[:, 1] * sy + center[1] - scale[1] * 0.5
    return out


def affine_transform(pt, trans):
    """mmpose affine_transform of one point by a 2x3 matrix."""
    return np.dot(trans, np.array([pt[0], pt[1], 1.0]))[:2]
