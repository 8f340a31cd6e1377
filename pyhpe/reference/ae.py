"""Numpy oracle of Associative Embedding grouping (torch.ops.pyhpe.ae_group).

A port of mmpose 1.3.2 ``AssociativeEmbedding.batch_decode`` (codecs/associative_embedding.py)
with its helpers (``batch_heatmap_nms``, ``_get_batch_topk``, ``_group_keypoints_by_tags``,
``refine_keypoints``, ``refine_keypoints_dark_udp``, ``_fill_missing_keypoints``), written
for pyhpe and returning coordinates in heatmap pixels (no ``scale_factor``). The dtypes of
every intermediate follow mmpose (float64 candidate rows and cost matrices, float32 tag
means and keypoints), so that rounding at the ``round(distance)`` steps matches.

* :func:`munkres` is the classic ``munkres`` package's ``Munkres.compute`` (Brian Clapper's
  1.1.x, the one mmpose and the official pose-ae-train code import), re-implemented step by
  step so that ties resolve exactly as there: zero padding to square, row reduction,
  row-major starring, the cyclic "last uncovered zero of the first row" search of step 4,
  and step 6 adding to covered rows before subtracting from uncovered columns.
* :func:`greedy_match` is the alternative ``matching="greedy"`` rule. mmpose (0.x and 1.x)
  and the official code only use Munkres; the greedy rule here is: among the pairs (new
  candidate, existing group) whose unrounded tag distance is below ``tag_thr``, repeatedly
  take the one with the smallest cost ``round(dist) * 100 - val`` (ties: lower candidate
  row, then lower group column), remove its row and column, until none is left.
* Top-k ties (equal heatmap values) are taken in pixel order (value descending, index
  ascending); torch.topk leaves their order unspecified.
* ``refine="dark_udp"`` modulates the heatmaps in place in mmpose (gaussian_blur, clip to
  [1e-3, 50], log), so its fill-missing step searches, and scores with, the modulated maps;
  this port does the same.
"""
from __future__ import annotations

import sys
from typing import List, Optional, Sequence, Tuple

import numpy as np

# ---- Munkres (the munkres package's Hungarian algorithm) -------------------------------

_MAXSIZE = float(sys.maxsize)  # munkres starts its minimum search at sys.maxsize


def munkres(cost: np.ndarray) -> List[Tuple[int, int]]:
    """``Munkres().compute(cost)`` of the munkres package: the (row, col) pairs of a minimum
    assignment, rows in order; a rectangular matrix is padded with zeros to square and only
    pairs inside the original matrix are returned."""
    cost = np.asarray(cost, dtype=np.float64)
    rows, cols = cost.shape
    n = max(rows, cols)
    if n == 0:
        return []
    C = np.zeros((n, n), dtype=np.float64)
    C[:rows, :cols] = cost
    C = [list(map(float, r)) for r in C]  # python floats: IEEE double, one op at a time
    row_cov = [False] * n
    col_cov = [False] * n
    marked = [[0] * n for _ in range(n)]

    # step 1: row reduction
    for i in range(n):
        m = min(C[i])
        for j in range(n):
            C[i][j] -= m
    # step 2: star zeros row by row
    for i in range(n):
        for j in range(n):
            if C[i][j] == 0 and not col_cov[j] and not row_cov[i]:
                marked[i][j] = 1
                col_cov[j] = row_cov[i] = True
                break
    row_cov = [False] * n
    col_cov = [False] * n

    def find_a_zero(i0, j0):
        # the first row (cyclic from i0) with an uncovered zero; in it the LAST such column
        # in cyclic order from j0 (munkres keeps scanning the row after a hit)
        i = i0
        while True:
            if not row_cov[i]:
                col = -1
                j = j0
                while True:
                    if C[i][j] == 0 and not col_cov[j]:
                        col = j
                    j = (j + 1) % n
                    if j == j0:
                        break
                if col >= 0:
                    return i, col
            i = (i + 1) % n
            if i == i0:
                return -1, -1

    step = 3
    while True:
        if step == 3:
            count = 0
            for i in range(n):
                for j in range(n):
                    if marked[i][j] == 1 and not col_cov[j]:
                        col_cov[j] = True
                        count += 1
            if count >= n:
                break
            step = 4
        elif step == 4:
            row, col = 0, 0
            while True:
                row, col = find_a_zero(row, col)
                if row < 0:
                    step = 6
                    break
                marked[row][col] = 2
                star = next((j for j in range(n) if marked[row][j] == 1), -1)
                if star >= 0:
                    col = star
                    row_cov[row] = True
                    col_cov[col] = False
                else:
                    z0 = (row, col)
                    step = 5
                    break
        elif step == 5:
            path = [z0]
            while True:
                r = next((i for i in range(n) if marked[i][path[-1][1]] == 1), -1)
                if r < 0:
                    break
                path.append((r, path[-1][1]))
                c = next((j for j in range(n) if marked[r][j] == 2), -1)
                path.append((r, c))
            for (r, c) in path:
                marked[r][c] = 0 if marked[r][c] == 1 else 1
            row_cov = [False] * n
            col_cov = [False] * n
            for i in range(n):
                for j in range(n):
                    if marked[i][j] == 2:
                        marked[i][j] = 0
            step = 3
        else:  # step 6
            minval = _MAXSIZE
            for i in range(n):
                if row_cov[i]:
                    continue
                for j in range(n):
                    if not col_cov[j] and minval > C[i][j]:
                        minval = C[i][j]
            for i in range(n):
                for j in range(n):
                    if row_cov[i]:
                        C[i][j] += minval
                    if not col_cov[j]:
                        C[i][j] -= minval
            step = 4
    return [(i, j) for i in range(rows) for j in range(cols) if marked[i][j] == 1]


def greedy_match(cost: np.ndarray, dist: np.ndarray, tag_thr: float) -> List[Tuple[int, int]]:
    """The greedy rule (see the module docstring): (row, col) pairs in row order, over the
    first ``dist.shape[1]`` columns of ``cost``; pairs need ``dist < tag_thr``."""
    rows, cols = dist.shape
    row_used = [False] * rows
    col_used = [False] * cols
    pairs = []
    order = sorted(((cost[r, c], r, c) for r in range(rows) for c in range(cols)
                    if dist[r, c] < tag_thr))
    for _, r, c in order:
        if not row_used[r] and not col_used[c]:
            row_used[r] = col_used[c] = True
            pairs.append((r, c))
    return sorted(pairs)


# ---- heatmap NMS and top-k -------------------------------------------------------------


def heatmap_nms(heatmaps: np.ndarray, kernel: int) -> np.ndarray:
    """batch_heatmap_nms on (..., H, W): keep values equal to their kernel x kernel maximum
    (max_pool2d with -inf padding), zero elsewhere (h * 0.0, as mmpose multiplies)."""
    r = (kernel - 1) // 2
    H, W = heatmaps.shape[-2:]
    pad = np.full(heatmaps.shape[:-2] + (H + 2 * r, W + 2 * r), -np.inf, heatmaps.dtype)
    pad[..., r:r + H, r:r + W] = heatmaps
    mx = np.full_like(heatmaps, -np.inf)
    for dy in range(kernel):
        for dx in range(kernel):
            np.maximum(mx, pad[..., dy:dy + H, dx:dx + W], out=mx)
    return heatmaps * (heatmaps == mx).astype(heatmaps.dtype)


def topk_candidates(heatmaps: np.ndarray, tags: np.ndarray, topk: int, nms_kernel: int):
    """_get_batch_topk on NMS'd maps for one image: vals (K, T) float32, tags (K, T, L)
    float32, locs (K, T, 2) int64 [x, y]; ties in pixel order."""
    K, H, W = heatmaps.shape
    L = tags.shape[0] // K
    peaks = heatmap_nms(heatmaps, nms_kernel).reshape(K, H * W)
    idx = np.argsort(-peaks, axis=1, kind="stable")[:, :topk]
    vals = np.take_along_axis(peaks, idx, axis=1)
    t = tags.reshape(L, K, H * W)
    cand_tags = np.stack([np.take_along_axis(t[l], idx, axis=1) for l in range(L)], axis=-1)
    locs = np.stack([idx % W, idx // W], axis=-1).astype(np.int64)
    return vals, cand_tags, locs


# ---- grouping ----------------------------------------------------------------------------


def group_keypoints_by_tags(vals, tags, locs, keypoint_order, val_thr, tag_thr=1.0,
                            max_groups=None, matching="hungarian") -> np.ndarray:
    """_group_keypoints_by_tags: (G, K, 3) float32 [x, y, val], groups in creation order
    (a dict keyed by the first tag value of the group's first candidate, as mmpose)."""
    K, M, D = locs.shape
    tag_k, loc_k, val_k = tags, locs, vals
    default_ = np.zeros((K, 3 + tag_k.shape[2]), dtype=np.float32)
    joint_dict: dict = {}
    tag_dict: dict = {}
    for i in range(K):
        idx = keypoint_order[i]
        tags = tag_k[idx]
        joints = np.concatenate((loc_k[idx], val_k[idx, :, None], tags), 1)  # float64
        mask = joints[:, 2] > val_thr
        tags = tags[mask]
        joints = joints[mask]
        if joints.shape[0] == 0:
            continue
        if i == 0 or len(joint_dict) == 0:
            for tag, joint in zip(tags, joints):
                key = tag[0]
                joint_dict.setdefault(key, np.copy(default_))[idx] = joint
                tag_dict[key] = [tag]
            continue
        grouped_keys = list(joint_dict.keys())
        grouped_tags = [np.mean(tag_dict[g], axis=0) for g in grouped_keys]
        diff = joints[:, None, 3:] - np.array(grouped_tags)[None, :, :]
        diff_normed = np.linalg.norm(diff, ord=2, axis=2)
        diff_saved = np.copy(diff_normed)
        diff_normed = np.round(diff_normed) * 100 - joints[:, 2:3]
        num_added, num_grouped = diff.shape[0], diff.shape[1]
        if matching == "hungarian":
            if num_added > num_grouped:
                diff_normed = np.concatenate(
                    (diff_normed, np.zeros((num_added, num_added - num_grouped),
                                           dtype=np.float32) + 1e10), axis=1)
            pairs = munkres(diff_normed)
        else:
            pairs = greedy_match(diff_normed, diff_saved, tag_thr)
            matched = {r for r, _ in pairs}
            pairs = sorted(pairs + [(r, num_grouped) for r in range(num_added)
                                    if r not in matched])
        for row, col in pairs:
            if row < num_added and col < num_grouped and diff_saved[row][col] < tag_thr:
                key = grouped_keys[col]
                joint_dict[key][idx] = joints[row]
                tag_dict[key].append(tags[row])
            else:
                key = tags[row][0]
                joint_dict.setdefault(key, np.copy(default_))[idx] = joints[row]
                tag_dict[key] = [tags[row]]
    keys = list(joint_dict.keys())[:max_groups]
    if keys:
        return np.array([joint_dict[k] for k in keys]).astype(np.float32)[..., :D + 1]
    return np.empty((0, K, D + 1), dtype=np.float32)


# ---- refinement and fill-missing -----------------------------------------------------------


def refine_keypoints(keypoints: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """mmpose 1.x refine_keypoints (in place): +-0.25 towards the higher neighbour per axis,
    x needs 1 < x < W - 1 and 0 < y < H, y needs 1 < y < H - 1 and 0 < x < W."""
    N, K = keypoints.shape[:2]
    H, W = heatmaps.shape[1:]
    for n in range(N):
        for k in range(K):
            x, y = keypoints[n, k, :2].astype(int)
            dx = dy = 0.
            if 1 < x < W - 1 and 0 < y < H:
                dx = heatmaps[k, y, x + 1] - heatmaps[k, y, x - 1]
            if 1 < y < H - 1 and 0 < x < W:
                dy = heatmaps[k, y + 1, x] - heatmaps[k, y - 1, x]
            keypoints[n, k] += np.sign([dx, dy], dtype=np.float32) * 0.25
    return keypoints


def modulate_dark_udp(heatmaps: np.ndarray, blur_kernel: int) -> np.ndarray:
    """gaussian_blur + clip [1e-3, 50] + log, in place (mmpose refine_keypoints_dark_udp)."""
    from .decode import gaussian_blur

    gaussian_blur(heatmaps, blur_kernel)
    np.clip(heatmaps, 1e-3, 50., heatmaps)
    np.log(heatmaps, heatmaps)
    return heatmaps


def refine_keypoints_dark_udp(keypoints: np.ndarray, modulated: np.ndarray) -> np.ndarray:
    """refine_keypoints_dark_udp's Newton step on already modulated maps (in place)."""
    N, K = keypoints.shape[:2]
    H, W = modulated.shape[1:]
    pad = np.pad(modulated, ((0, 0), (1, 1), (1, 1)), mode="edge").flatten()
    for n in range(N):
        index = keypoints[n, :, 0] + 1 + (keypoints[n, :, 1] + 1) * (W + 2)
        index += (W + 2) * (H + 2) * np.arange(0, K)
        index = index.astype(int).reshape(-1, 1)
        i_ = pad[index]
        ix1 = pad[index + 1]
        iy1 = pad[index + W + 2]
        ix1y1 = pad[index + W + 3]
        ix1_y1_ = pad[index - W - 3]
        ix1_ = pad[index - 1]
        iy1_ = pad[index - 2 - W]
        dx = 0.5 * (ix1 - ix1_)
        dy = 0.5 * (iy1 - iy1_)
        derivative = np.concatenate([dx, dy], axis=1).reshape(K, 2, 1)
        dxx = ix1 - 2 * i_ + ix1_
        dyy = iy1 - 2 * i_ + iy1_
        dxy = 0.5 * (ix1y1 - ix1 - iy1 + i_ + i_ - ix1_ - iy1_ + ix1_y1_)
        hessian = np.concatenate([dxx, dxy, dxy, dyy], axis=1).reshape(K, 2, 2)
        hessian = np.linalg.inv(hessian + np.finfo(np.float32).eps * np.eye(2))
        keypoints[n] -= np.einsum("imn,ink->imk", hessian, derivative).squeeze()
    return keypoints


def fill_missing_keypoints(keypoints, keypoint_scores, heatmaps, tags):
    """_fill_missing_keypoints (in place): a missing keypoint goes to the argmin of
    round(||tag map - instance tag||) * 100 - heatmap, scored by the heatmap there."""
    N, K = keypoints.shape[:2]
    H, W = heatmaps.shape[1:]
    L = tags.shape[0] // K
    keypoint_tags = [tags[k::K] for k in range(K)]
    for n in range(N):
        _tag = []
        for k in range(K):
            if keypoint_scores[n, k] > 0:
                x, y = keypoints[n, k, :2].astype(np.int64)
                x = np.clip(x, 0, W - 1)
                y = np.clip(y, 0, H - 1)
                _tag.append(keypoint_tags[k][:, y, x])
        with np.errstate(invalid="ignore", divide="ignore"):
            tag = (np.mean(_tag, axis=0) if _tag else np.full(L, np.nan, np.float32))
        tag = np.asarray(tag, np.float32).reshape(L, 1, 1)
        for k in range(K):
            if keypoint_scores[n, k] > 0:
                continue
            with np.errstate(invalid="ignore"):
                dist_map = np.linalg.norm(keypoint_tags[k] - tag, ord=2, axis=0)
                cost_map = np.round(dist_map) * 100 - heatmaps[k]
            y, x = np.unravel_index(np.argmin(cost_map), shape=(H, W))
            keypoints[n, k] = [x, y]
            keypoint_scores[n, k] = heatmaps[k, y, x]
    return keypoints, keypoint_scores


# ---- the whole decoder ---------------------------------------------------------------------


def ae_group(heatmaps: np.ndarray, tags: np.ndarray, *,
             keypoint_order: Optional[Sequence[int]] = None,
             topk: int = 30, nms_kernel: int = 5, keypoint_threshold: float = 0.1,
             tag_threshold: float = 1.0, max_instances: Optional[int] = None,
             matching: str = "hungarian", refine: str = "quarter", blur_kernel: int = 3,
             center_shift: float = 0.0, fill_missing: bool = True):
    """mmpose AssociativeEmbedding.batch_decode in heatmap pixels.

    heatmaps (B, K, H, W), tags (B, K*L, H, W) (channel l*K + k: tag dim l of keypoint k).
    Returns per-image lists: keypoints (N_b, K, 2) float32, keypoint_scores (N_b, K),
    instance_scores (N_b,) (mean keypoint score before fill-missing). With
    ``fill_missing=False`` missing keypoints are (0, 0) with score 0.
    """
    heatmaps = np.array(heatmaps, dtype=np.float32)  # a copy: dark_udp modulates in place
    tags = np.asarray(tags, dtype=np.float32)
    B, K, H, W = heatmaps.shape
    order = list(range(K)) if keypoint_order is None else list(keypoint_order)
    out_k, out_s, out_i = [], [], []
    for b in range(B):
        vals, ctags, locs = topk_candidates(heatmaps[b], tags[b], topk, nms_kernel)
        groups = group_keypoints_by_tags(vals, ctags, locs, order, keypoint_threshold,
                                         tag_threshold, max_instances, matching)
        hm = heatmaps[b]
        keypoints, scores = groups[..., :-1], groups[..., -1]
        instance_scores = scores.mean(axis=-1)
        if keypoints.size > 0:
            if refine == "dark_udp":
                modulate_dark_udp(hm, blur_kernel)
                keypoints = refine_keypoints_dark_udp(keypoints, hm)
            elif refine == "quarter":
                keypoints = refine_keypoints(keypoints, hm)
            shift = np.float32(center_shift)
            keypoints += shift * (scores > 0).astype(keypoints.dtype)[..., None]
            if fill_missing:
                keypoints, scores = fill_missing_keypoints(keypoints, scores, hm, tags[b])
            else:
                keypoints[scores <= 0] = 0
        out_k.append(keypoints)
        out_s.append(scores)
        out_i.append(instance_scores)
    return out_k, out_s, out_i
