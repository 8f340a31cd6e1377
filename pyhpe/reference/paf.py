"""Pure-Python oracle of OpenPose's bottom-up grouping (and a small scene renderer).

A faithful reimplementation, loop for loop, of OpenPose (CMU-Perceptual-Computing-Lab/openpose,
src/openpose/net): ``nmsRegisterKernelCPU`` / CUDA ``nmsRegisterKernel`` and
``nmsAccuratePeakPosition`` (nmsBase), ``getScoreAB`` with the distance prior of the CUDA
``process`` (bodyPartConnectorBase), and ``connectBodyPartsCpu``: createPeopleVector on
precomputed pair scores, removePeopleBelowThresholds and peopleVectorToPeopleArray (and, with
``assembly='gpu'``, the pafPtrIntoVector + pafVectorIntoPeopleVector assembly of
``connectBodyPartsGpu``, which merges people).
Source read: bodyPartConnectorBase.cpp at OpenPose commit 2c3fcc6 (person score = sum / (K + L),
people capped at the first ``max_persons``); some later versions multiply by 1 / (K + L)
instead (last-bit differences in float32) and drop the cap; the scoring, matching and
assembly are the same. Peaks: nmsBase.cpp/.cu (the refinement window is +-3 pixels).
Arithmetic runs in the input's numpy dtype (float32 or float64) in OpenPose's operation order,
so the ops in :mod:`pyhpe.ops.paf` must agree with it exactly. It doubles as the pure-Python
baseline of bench/bench_paf.py and as the documented fallback.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import numpy as np

INVALID = -1.0


# --------------------------------------------------------------------------------------------
# Peaks (nmsBase)

def _is_peak(m, W, H, x, y, thr, border):
    v = m[y, x]
    if not v > thr:
        return False
    if border == "gpu":
        if not (0 < x < W - 1 and 0 < y < H - 1):
            return False
        return all(v > m[y + dy, x + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dx or dy)
    if 1 < x < W - 2 and 1 < y < H - 2:
        return all(v > m[y + dy, x + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dx or dy)
    if x == 1 or x == W - 2 or y == 1 or y == H - 2:
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if not (dx or dy):
                    continue
                xx, yy = x + dx, y + dy
                n = m[yy, xx] if (0 <= xx < W and 0 <= yy < H) else thr
                if not v >= n:
                    return False
        return True
    return False


def _accurate_peak(m, W, H, x, y, radius, dt):
    """nmsAccuratePeakPosition. pyhpe's definitions where OpenPose would divide by zero or
    infinity: a window whose weighted sums are not finite (an inf pixel) or that holds no
    positive value keeps the integer position. The window is clipped to the map first."""
    if radius < 0:
        return dt(x), dt(y), m[y, x]
    x_acc = dt(0)
    y_acc = dt(0)
    s_acc = dt(0)
    for yy in range(max(y - radius, 0), min(y + radius, H - 1) + 1):
        for xx in range(max(x - radius, 0), min(x + radius, W - 1) + 1):
            s = m[yy, xx]
            if s > 0:
                x_acc = x_acc + dt(xx) * s
                y_acc = y_acc + dt(yy) * s
                s_acc = s_acc + s
    if not (s_acc > 0 and np.isfinite(x_acc) and np.isfinite(y_acc) and np.isfinite(s_acc)):
        return dt(x), dt(y), m[y, x]
    return x_acc / s_acc, y_acc / s_acc, m[y, x]


def find_peaks(heatmaps, threshold=0.05, max_peaks=64, refine_radius=3, border="cpu"):
    """(B, K, H, W) -> peaks (B, K, M, 3), counts (B, K): OpenPose nmsCpu per channel."""
    hm = np.asarray(heatmaps)
    dt = hm.dtype.type
    B, K, H, W = hm.shape
    thr = dt(threshold)
    peaks = np.zeros((B, K, max_peaks, 3), dtype=hm.dtype)
    counts = np.zeros((B, K), dtype=np.int64)
    for b in range(B):
        for k in range(K):
            m = hm[b, k]
            n = 0
            # Only pixels above the threshold can be peaks; visit them in raster order.
            ys, xs = np.nonzero(m > thr)
            for y, x in zip(ys.tolist(), xs.tolist()):
                if n >= max_peaks:
                    break
                if _is_peak(m, W, H, x, y, thr, border):
                    peaks[b, k, n] = _accurate_peak(m, W, H, x, y, refine_radius, dt)
                    n += 1
            counts[b, k] = n
    return peaks, counts


# --------------------------------------------------------------------------------------------
# Pair scores (getScoreAB + the distance prior of the CUDA `process`)

def _clamped_round(v, hi):
    """min(max(int(v + 0.5), 0), hi), also for infinite or NaN v (NaN -> 0)."""
    r = v + type(v)(0.5)
    if not r > 0:
        return 0
    if r >= hi:
        return hi
    return int(r)


def score_ab(pa, pb, map_x, map_y, num_samples=10, inter_threshold=0.05, min_fraction=0.95,
             distance_prior=True, prior_score=0.05):
    dt = map_x.dtype.type
    H, W = map_x.shape
    dx = dt(pb[0]) - dt(pa[0])
    dy = dt(pb[1]) - dt(pa[1])
    if num_samples is None or num_samples <= 0:
        vmax = max(abs(dx), abs(dy))
        n = max(5, _clamped_round(np.sqrt(dt(5) * vmax), 25))
    else:
        n = int(num_samples)
    norm = np.sqrt(dx * dx + dy * dy)
    if not norm > dt(1e-6):
        return INVALID
    ux, uy = dx / norm, dy / norm
    step_x, step_y = dx / dt(n), dy / dt(n)
    total = dt(0)
    count = 0
    for m in range(n):
        sx = _clamped_round(dt(pa[0]) + dt(m) * step_x, W - 1)
        sy = _clamped_round(dt(pa[1]) + dt(m) * step_y, H - 1)
        s = ux * map_x[sy, sx] + uy * map_y[sy, sx]
        if s > dt(inter_threshold):
            total = total + s
            count += 1
    if dt(count) / dt(n) > dt(min_fraction):
        return float(total / dt(count))
    if distance_prior and norm < np.sqrt(dt(W) * dt(H)) / dt(150):
        return float(dt(prior_score) + dt(1e-6))
    return INVALID


def paf_scores(pafs, peaks, counts, limbs, num_samples=10, inter_threshold=0.05,
               min_fraction=0.95, paf_channels=None, distance_prior=True, prior_score=0.05):
    """(B, C, H, W), (B, K, M, 3), (B, K), (L, 2) -> (B, L, M, M), invalid pairs -1."""
    pafs = np.asarray(pafs)
    peaks = np.asarray(peaks)
    B, M = peaks.shape[0], peaks.shape[2]
    L = len(limbs)
    if paf_channels is None:
        paf_channels = [(2 * l, 2 * l + 1) for l in range(L)]
    out = np.full((B, L, M, M), INVALID, dtype=pafs.dtype)
    for b in range(B):
        for l, (a, c) in enumerate(limbs):
            cx, cy = paf_channels[l]
            for i in range(int(counts[b][a])):
                for j in range(int(counts[b][c])):
                    out[b, l, i, j] = score_ab(peaks[b, a, i], peaks[b, c, j], pafs[b, cx],
                                               pafs[b, cy], num_samples, inter_threshold,
                                               min_fraction, distance_prior, prior_score)
    return out


# --------------------------------------------------------------------------------------------
# Grouping (connectBodyPartsCpu)

def _default_redundant(K):
    if K == 18:
        return (17, 18)
    if K in (19, 25, 59, 65):
        return (18, 19)
    return ()


def _hungarian_pairs(cands, na, nb):
    from scipy.optimize import linear_sum_assignment
    w = np.zeros((na, nb))
    for s, i, j in cands:
        w[i - 1, j - 1] = s
    rows, cols = linear_sum_assignment(w, maximize=True)
    taken = {(int(r) + 1, int(c) + 1) for r, c in zip(rows, cols)}
    return [(i, j, s) for s, i, j in cands if (i, j) in taken]


def _assemble_globally(peaks, counts, scores, limbs):
    """pafPtrIntoVector + pafVectorIntoPeopleVector (OpenPose's GPU-build assembly)."""
    dt = peaks.dtype.type
    K, M = peaks.shape[:2]

    def pscore(part, number):
        return peaks[part, number - 1, 2]

    conns = []
    for l, (pa, pb) in enumerate(limbs):
        for i in range(int(counts[pa])):
            for j in range(int(counts[pb])):
                s = scores[l, i, j]
                if s > dt(1e-6):
                    total = s + dt(0.1) * pscore(pa, i + 1) + dt(0.1) * pscore(pb, j + 1)
                    conns.append((total, s, l, i + 1, j + 1))
    conns.sort(reverse=True)
    people = []
    removed = []
    assigned = {}
    for _, paf, l, i, j in conns:
        pa, pb = limbs[l]
        ka, kb = (pa, i), (pb, j)
        a_own, b_own = assigned.get(ka, -1), assigned.get(kb, -1)
        if a_own < 0 and b_own < 0:
            parts = [0] * K
            parts[pa], parts[pb] = i, j
            assigned[ka] = assigned[kb] = len(people)
            people.append([parts, 2, pscore(pa, i) + pscore(pb, j) + paf])
            removed.append(False)
        elif (a_own >= 0) != (b_own >= 0):
            owner = a_own if a_own >= 0 else b_own
            part, number, key = (pb, j, kb) if a_own >= 0 else (pa, i, ka)
            p = people[owner]
            if p[0][part] == 0:
                p[0][part] = number
                p[1] += 1
                p[2] = p[2] + (pscore(part, number) + paf)
                assigned[key] = owner
        elif a_own == b_own:
            people[a_own][2] = people[a_own][2] + paf
        else:
            first, second = min(a_own, b_own), max(a_own, b_own)
            p1, p2 = people[first], people[second]
            if not any(x > 0 and y > 0 for x, y in zip(p1[0], p2[0])):
                p1[0] = [x if x != 0 else y for x, y in zip(p1[0], p2[0])]
                p1[1] += p2[1]
                p1[2] = p1[2] + (p2[2] + paf)
                removed[second] = True
                for key, owner in assigned.items():
                    if owner == second:
                        assigned[key] = first
    return [p for p, gone in zip(people, removed) if not gone]


def _filter_people(people, K, L, dt, min_parts, min_mean_score, max_persons, assembly):
    def run(maximize_positives):
        out_parts, out_scores = [], []
        for parts, count, score in (people if max_persons != 0 else []):
            counter = count
            if K == 25 and not maximize_positives:
                feet = sum(parts[k] > 0 for k in range(19, 25))
                counter -= feet
                if assembly == "gpu" and feet > 0 and counter <= 4:
                    continue
            if counter >= min_parts and score / dt(counter) >= dt(min_mean_score):
                out_parts.append([v - 1 for v in parts])
                out_scores.append(score / dt(K + L))
                if max_persons is not None and len(out_scores) == max_persons:
                    break
        return out_parts, out_scores

    out_parts, out_scores = run(False)
    if not out_scores and assembly == "gpu" and K == 25:
        out_parts, out_scores = run(True)
    return (np.asarray(out_parts, dtype=np.int64).reshape(-1, K),
            np.asarray(out_scores, dtype=dt))


def group_image(peaks, counts, scores, limbs, min_parts=3, min_mean_score=0.2, method="greedy",
                max_persons=None, redundant_limbs=None, assembly="cpu"):
    """One image: peaks (K, M, 3), counts (K,), scores (L, M, M) -> (parts (P, K) peak indices
    with -1 where missing, person scores (P,)), OpenPose's order."""
    peaks = np.asarray(peaks)
    dt = peaks.dtype.type
    K = peaks.shape[0]
    L = len(limbs)
    if assembly == "gpu":
        people = _assemble_globally(peaks, counts, np.asarray(scores), limbs)
        return _filter_people(people, K, L, dt, min_parts, min_mean_score, max_persons, "gpu")
    redundant = set(_default_redundant(K) if redundant_limbs is None else redundant_limbs)
    people = []  # [parts (1-based peak numbers, 0 missing), count, score]

    def pscore(part, number):
        return peaks[part, number - 1, 2]

    for l, (pa, pb) in enumerate(limbs):
        na, nb = int(counts[pa]), int(counts[pb])
        if na == 0 or nb == 0:
            part, n = (pb, nb) if na == 0 else (pa, na)
            for i in range(1, n + 1):
                if K != 15 and any(p[0][part] == i for p in people):
                    continue
                parts = [0] * K
                parts[part] = i
                people.append([parts, 1, pscore(part, i)])
            continue
        s = scores[l]
        cands = [(float(s[i, j]), i + 1, j + 1) for i in range(na) for j in range(nb)
                 if s[i, j] > dt(1e-6)]
        cands.sort(reverse=True)
        if method == "hungarian":
            chosen = _hungarian_pairs(cands, na, nb) if cands else []
        else:
            chosen = []
            occ_a, occ_b = [False] * na, [False] * nb
            for sc, i, j in cands:
                if occ_a[i - 1] or occ_b[j - 1]:
                    continue
                chosen.append((i, j, sc))
                if len(chosen) == min(na, nb):
                    break
                occ_a[i - 1] = occ_b[j - 1] = True
        if not chosen:
            continue
        if l == 0:
            for i, j, sc in chosen:
                parts = [0] * K
                parts[pa], parts[pb] = i, j
                # T + T, then promoted to double with the connection score, stored as T.
                people.append([parts, 2, dt(float(pscore(pa, i) + pscore(pb, j)) + sc)])
        elif l in redundant:
            for i, j, _ in chosen:
                for p in people:
                    if p[0][pa] == i and p[0][pb] == 0:
                        p[0][pb] = j
                    elif p[0][pb] == j and p[0][pa] == 0:
                        p[0][pa] = i
        else:
            for i, j, sc in chosen:
                sc = dt(sc)
                for p in people:
                    if p[0][pa] == i:
                        p[0][pb] = j
                        p[1] += 1
                        p[2] = p[2] + (pscore(pb, j) + sc)
                        break
                else:
                    parts = [0] * K
                    parts[pa], parts[pb] = i, j
                    people.append([parts, 2, pscore(pa, i) + pscore(pb, j) + sc])
    return _filter_people(people, K, L, dt, min_parts, min_mean_score, max_persons, "cpu")


def group_poses(peaks, counts, scores, limbs, min_parts=3, min_mean_score=0.2, method="greedy",
                max_persons=None, redundant_limbs=None, assembly="cpu"):
    """Batched :func:`group_image`: list of B (parts (P, K), scores (P,))."""
    return [group_image(peaks[b], counts[b], scores[b], limbs, min_parts, min_mean_score,
                        method, max_persons, redundant_limbs, assembly)
            for b in range(len(peaks))]


def keypoints_of(peaks, parts):
    """(K, M, 3) peaks and (P, K) indices -> (P, K, 3) keypoints, 0 where missing."""
    P, K = parts.shape
    out = np.zeros((P, K, 3), dtype=peaks.dtype)
    for p in range(P):
        for k in range(K):
            if parts[p, k] >= 0:
                out[p, k] = peaks[k, parts[p, k]]
    return out


def openpose_pipeline(heatmaps, pafs, limbs, paf_channels=None, threshold=0.05, max_peaks=64,
                      refine_radius=3, num_samples=10, inter_threshold=0.05, min_fraction=0.95,
                      min_parts=3, min_mean_score=0.2, method="greedy", assembly="cpu"):
    """Heatmaps (B, K, H, W) + PAFs -> list of B (keypoints (P, K, 3), scores (P,))."""
    peaks, counts = find_peaks(heatmaps, threshold, max_peaks, refine_radius)
    scores = paf_scores(pafs, peaks, counts, limbs, num_samples, inter_threshold, min_fraction,
                        paf_channels, True, threshold)
    grouped = group_poses(peaks, counts, scores, limbs, min_parts, min_mean_score, method,
                          assembly=assembly)
    return [(keypoints_of(peaks[b], parts), sc) for b, (parts, sc) in enumerate(grouped)]


# --------------------------------------------------------------------------------------------
# Synthetic scenes

#: A standing COCO-18 person, neck at the origin, about one unit tall.
COCO18_TEMPLATE = np.array([
    (0.0, -0.12), (0.0, 0.0), (-0.12, 0.0), (-0.16, 0.17), (-0.18, 0.32), (0.12, 0.0),
    (0.16, 0.17), (0.18, 0.32), (-0.08, 0.38), (-0.09, 0.62), (-0.10, 0.85), (0.08, 0.38),
    (0.09, 0.62), (0.10, 0.85), (-0.035, -0.16), (0.035, -0.16), (-0.07, -0.14),
    (0.07, -0.14)])
#: COCO-17 keypoint k is COCO-18 part COCO18_OF_COCO17[k].
COCO18_OF_COCO17 = (0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10)


def random_people(rng, num_people, height, width, parts="coco18", grid=None, jitter=0.08):
    """Non-overlapping people on a grid of cells: (P, K, 2) float64 keypoints in pixels."""
    if grid is None:
        cols = int(math.ceil(math.sqrt(num_people * width / height)))
        rows = int(math.ceil(num_people / cols))
    else:
        rows, cols = grid
    ch, cw = height / rows, width / cols
    cells = rng.permutation(rows * cols)[:num_people]
    people = []
    for cell in cells:
        r, c = divmod(int(cell), cols)
        size = min(ch / 1.15, cw / 0.5) * rng.uniform(0.75, 0.9)
        pose = COCO18_TEMPLATE + rng.normal(0.0, jitter / 4, COCO18_TEMPLATE.shape)
        if rng.random() < 0.5:
            pose[:, 0] = -pose[:, 0]  # seen from the back: left and right swap sides
        cx = (c + 0.5) * cw + rng.uniform(-0.05, 0.05) * cw
        cy = r * ch + 0.2 * ch + rng.uniform(-0.02, 0.02) * ch
        people.append(np.stack([cx + pose[:, 0] * size, cy + pose[:, 1] * size], axis=1))
    people = np.asarray(people, dtype=np.float64).reshape(-1, 18, 2)
    if parts == "coco17":
        people = people[:, list(COCO18_OF_COCO17)]
    return people


def render_scene(people, height, width, limbs, paf_channels=None, sigma=1.5, paf_width=1.5,
                 dtype=np.float32):
    """Heatmaps (K, H, W): max of Gaussians; PAFs (2L, H, W): unit limb vectors within
    ``paf_width`` of each limb segment, averaged where people overlap (OpenPose's targets)."""
    people = np.asarray(people, dtype=np.float64)
    P, K = people.shape[:2]
    L = len(limbs)
    if paf_channels is None:
        paf_channels = [(2 * l, 2 * l + 1) for l in range(L)]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    heatmaps = np.zeros((K, height, width))
    for p in range(P):
        for k in range(K):
            x, y = people[p, k]
            heatmaps[k] = np.maximum(heatmaps[k], np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2)))
    pafs = np.zeros((2 * L, height, width))
    for l, (a, b) in enumerate(limbs):
        acc = np.zeros((2, height, width))
        hits = np.zeros((height, width))
        for p in range(P):
            (xa, ya), (xb, yb) = people[p, a], people[p, b]
            v = np.array([xb - xa, yb - ya])
            length = np.linalg.norm(v)
            if length < 1e-9:
                continue
            u = v / length
            along = (xs - xa) * u[0] + (ys - ya) * u[1]
            across = np.abs((xs - xa) * u[1] - (ys - ya) * u[0])
            mask = (along >= -paf_width) & (along <= length + paf_width) & (across <= paf_width)
            acc[0][mask] += u[0]
            acc[1][mask] += u[1]
            hits[mask] += 1
        nz = hits > 0
        cx, cy = paf_channels[l]
        pafs[cx][nz] = acc[0][nz] / hits[nz]
        pafs[cy][nz] = acc[1][nz] / hits[nz]
    return heatmaps.astype(dtype), pafs.astype(dtype)


def render_batch(rng, batch, num_people, height, width, limbs, paf_channels=None,
                 parts="coco18", dtype=np.float32, **kw):
    """Seeded batch: people (B, P, K, 2), heatmaps (B, K, H, W), pafs (B, C, H, W)."""
    people, hms, pfs = [], [], []
    for _ in range(batch):
        pp = random_people(rng, num_people, height, width, parts)
        hm, pf = render_scene(pp, height, width, limbs, paf_channels, dtype=dtype, **kw)
        people.append(pp)
        hms.append(hm)
        pfs.append(pf)
    return np.stack(people), np.stack(hms), np.stack(pfs)


__all__ = ["COCO18_TEMPLATE", "find_peaks", "group_image", "group_poses", "keypoints_of",
           "openpose_pipeline", "paf_scores", "random_people", "render_batch", "render_scene",
           "score_ab"]
