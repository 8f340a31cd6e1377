"""Top-down geometry: boxes to centre/scale, affine crops, flips, half-body and augmentation.

Conventions follow mmpose 1.x: ``scale`` is the (w, h) of the crop region in image pixels
(box size times the padding, expanded to the input aspect ratio); the warp maps the region
centred at ``center`` rotated by ``rot`` degrees onto the ``(W, H)`` network input. The
plain warp maps the region's width onto ``W`` pixels (:func:`get_warp_matrix`); the unbiased
one (UDP, Huang et al. 2020) onto the ``W - 1`` pixel-centre spacing
(:func:`get_udp_warp_matrix`), so that pixel centres map onto pixel centres.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np


def bbox_xywh_to_center_scale(bbox, aspect_ratio: float, padding: float = 1.25):
    """``[x, y, w, h]`` -> centre ``(2,)``, scale ``(2,)`` with ``w / h == aspect_ratio``."""
    x, y, w, h = [float(v) for v in bbox[:4]]
    center = np.array([x + w * 0.5, y + h * 0.5], np.float32)
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    else:
        w = h * aspect_ratio
    return center, np.array([w, h], np.float32) * padding


def _rotate_point(pt, angle_rad):
    s, c = math.sin(angle_rad), math.cos(angle_rad)
    return np.array([pt[0] * c - pt[1] * s, pt[0] * s + pt[1] * c], np.float32)


def get_warp_matrix(center, scale, rot: float, output_size, inverse: bool = False) -> np.ndarray:
    """2x3 affine matrix from the image region to the output (or back when ``inverse``)
    (mmpose ``get_warp_matrix``: three point correspondences, centre, top-middle, and a third
    point at a right angle)."""
    center = np.asarray(center, np.float32)
    src_w = float(scale[0])
    dst_w, dst_h = float(output_size[0]), float(output_size[1])
    rot_rad = math.radians(rot)
    src_dir = _rotate_point(np.array([0.0, src_w * -0.5]), rot_rad)
    dst_dir = np.array([0.0, dst_w * -0.5], np.float32)
    src = np.zeros((3, 2), np.float32)
    dst = np.zeros((3, 2), np.float32)
    src[0], src[1] = center, center + src_dir
    dst[0], dst[1] = [dst_w * 0.5, dst_h * 0.5], np.array([dst_w * 0.5, dst_h * 0.5]) + dst_dir
    def third(a, b):
        d = a - b
        return b + np.array([-d[1], d[0]], np.float32)
    src[2], dst[2] = third(src[0], src[1]), third(dst[0], dst[1])
    if inverse:
        return cv2.getAffineTransform(dst, src)
    return cv2.getAffineTransform(src, dst)


def get_udp_warp_matrix(center, scale, rot: float, output_size) -> np.ndarray:
    """2x3 UDP affine from the image region to the output, as mmpose 1.x
    ``get_udp_warp_matrix``: ``x' = (W - 1) / scale_w * R(x - center) + (W - 1) / 2`` per axis,
    rotation ``rot`` degrees about ``center`` (float32, as mmpose builds it)."""
    cx, cy = float(center[0]), float(center[1])
    sw, sh = float(scale[0]), float(scale[1])
    rot_rad = math.radians(rot)
    cos, sin = math.cos(rot_rad), math.sin(rot_rad)
    scale_x = (float(output_size[0]) - 1) / sw
    scale_y = (float(output_size[1]) - 1) / sh
    mat = np.zeros((2, 3), np.float32)
    mat[0, 0] = cos * scale_x
    mat[0, 1] = -sin * scale_x
    mat[0, 2] = scale_x * (-cx * cos + cy * sin + 0.5 * sw)
    mat[1, 0] = sin * scale_y
    mat[1, 1] = cos * scale_y
    mat[1, 2] = scale_y * (-cx * sin - cy * cos + 0.5 * sh)
    return mat


def affine_points(points: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to ``(..., 2)`` points."""
    pts = np.asarray(points, np.float32)
    return pts @ mat[:, :2].T + mat[:, 2]


def crop_matrix(center, scale, rot, output_size, udp: bool = False) -> np.ndarray:
    """The crop's 2x3 matrix: :func:`get_udp_warp_matrix` when ``udp``, else
    :func:`get_warp_matrix`."""
    if udp:
        return get_udp_warp_matrix(center, scale, rot, output_size)
    return get_warp_matrix(center, scale, rot, output_size)


def crop(image: np.ndarray, center, scale, rot, output_size, udp: bool = False,
         out: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Affine crop of ``image`` to ``output_size=(W, H)``; returns the crop and the matrix
    (:func:`crop_matrix`). ``out``: an ``(H, W, C)`` uint8 array to write the crop into."""
    mat = crop_matrix(center, scale, rot, output_size, udp)
    size = (int(output_size[0]), int(output_size[1]))
    if out is not None:
        return cv2.warpAffine(image, mat, size, dst=out, flags=cv2.INTER_LINEAR), mat
    return cv2.warpAffine(image, mat, size, flags=cv2.INTER_LINEAR), mat


def flip_image(image: np.ndarray) -> np.ndarray:
    """The horizontally mirrored image as a new contiguous array (``cv2.flip``: ~50x faster
    than copying the reversed numpy view of a large image)."""
    image = np.asarray(image)
    if image.ndim in (2, 3) and (image.ndim == 2 or image.shape[2] <= 4) and image.size:
        return cv2.flip(np.ascontiguousarray(image), 1)
    return np.ascontiguousarray(image[:, ::-1])


def flip_keypoints(keypoints: np.ndarray, visibility: np.ndarray, image_width: float,
                   flip_pairs: Sequence[Tuple[int, int]]):
    """Horizontal flip about the image (``x' = W - 1 - x``) with left/right swapped."""
    kp = np.array(keypoints, np.float32, copy=True)
    vis = np.array(visibility, np.float32, copy=True)
    kp[..., 0] = image_width - 1 - kp[..., 0]
    for a, b in flip_pairs:
        kp[..., [a, b], :] = kp[..., [b, a], :]
        vis[..., [a, b]] = vis[..., [b, a]]
    return kp, vis


def half_body_center_scale(keypoints, visibility, upper_body, lower_body, aspect_ratio,
                           rng: np.random.Generator, padding: float = 1.5, min_keypoints: int = 2):
    """mmpose ``RandomHalfBody``: a box around the visible upper (or lower) body keypoints."""
    vis = np.asarray(visibility) > 0
    upper = [i for i in upper_body if vis[i]]
    lower = [i for i in lower_body if vis[i]]
    if rng.random() < 0.5 and len(upper) >= min_keypoints:
        sel = upper
    elif len(lower) >= min_keypoints:
        sel = lower
    else:
        sel = upper
    if len(sel) < min_keypoints:
        return None
    pts = np.asarray(keypoints)[sel]
    x0, y0 = pts.min(0)
    x1, y1 = pts.max(0)
    w, h = x1 - x0, y1 - y0
    center = np.array([(x0 + x1) / 2, (y0 + y1) / 2], np.float32)
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    else:
        w = h * aspect_ratio
    return center, np.array([w, h], np.float32) * padding


#: AID's dropping modes (Huang et al. 2020, the official mmpose-based code's ``Cutout`` and
#: ``HideAndSeek`` pipelines, applied to the affine crop before normalisation)
AID_MODES = ("cutout", "hide_and_seek")
#: the official hide-and-seek grid sizes (0, 16, 32, 44 input pixels of a 192-wide crop; the
#: official draw ``randint(0, len - 1)`` never picks its listed 56) as fractions of the width
AID_GRID_SIZES = (0.0, 16 / 192, 32 / 192, 44 / 192)


class AIDRegions(NamedTuple):
    """Dropped regions in fractions of the crop: ``ellipses`` ``(N, 4)`` as ``(cx, cy, rx,
    ry)`` (centre and radii; x in fractions of the width W, y of the height H) and ``rects``
    ``(M, 4)`` as ``(x0, y0, x1, y1)``."""
    ellipses: np.ndarray
    rects: np.ndarray

    def __len__(self):
        return len(self.ellipses) + len(self.rects)

    def mask(self, size) -> np.ndarray:
        """``(H, W)`` bool: the crop pixels (centres at integer coordinates) inside a region."""
        W, H = int(size[0]), int(size[1])
        ys, xs = np.mgrid[0:H, 0:W].astype(np.float64)
        m = np.zeros((H, W), bool)
        for cx, cy, rx, ry in self.ellipses:
            m |= ((xs - cx * W) / (rx * W)) ** 2 + ((ys - cy * H) / (ry * H)) ** 2 <= 1
        for x0, y0, x1, y1 in self.rects:
            m |= (xs >= x0 * W) & (xs < x1 * W) & (ys >= y0 * H) & (ys < y1 * H)
        return m


NO_AID_REGIONS = AIDRegions(np.zeros((0, 4)), np.zeros((0, 4)))


def sample_aid_regions(rng: np.random.Generator, aspect_ratio: float, mode: str = "cutout",
                       radius_factor: float = 0.2, num_patch: int = 1,
                       grid_sizes: Sequence[float] = AID_GRID_SIZES,
                       hide_prob: float = 0.5) -> AIDRegions:
    """AID's dropped regions of one crop whose ``W / H`` is ``aspect_ratio``, as the official
    code draws them.

    ``cutout``: ``num_patch`` ellipses, centre uniform over the crop, radii
    ``radius_factor * (1 + u) * W`` with ``u ~ U(0, 1)`` drawn per axis. ``hide_and_seek``:
    one grid size ``g`` (a fraction of W) drawn uniformly from ``grid_sizes`` (0: nothing
    hidden), the crop tiled by ``g W`` squares from the top-left, each hidden with
    probability ``hide_prob`` (the official code indexes rows by x, hiding only the top
    ``W x W`` square: this hides the whole crop's grid)."""
    if mode == "cutout":
        ell = []
        for _ in range(int(num_patch)):
            cx, cy = rng.random(), rng.random()
            r = radius_factor * (1 + rng.random(2))          # in units of W
            ell.append([cx, cy, r[0], r[1] * aspect_ratio])  # ry as a fraction of H
        return AIDRegions(np.asarray(ell, np.float64).reshape(-1, 4), np.zeros((0, 4)))
    if mode == "hide_and_seek":
        g = float(grid_sizes[int(rng.integers(len(grid_sizes)))])
        if g <= 0:
            return NO_AID_REGIONS
        gw, gh = g, g * aspect_ratio                         # the cell in fractions of W, H
        nx, ny = int(math.ceil(1.0 / gw - 1e-9)), int(math.ceil(1.0 / gh - 1e-9))
        hide = rng.random((ny, nx)) < hide_prob
        rects = [[i * gw, j * gh, min(1.0, (i + 1) * gw), min(1.0, (j + 1) * gh)]
                 for j, i in zip(*np.nonzero(hide))]
        return AIDRegions(np.zeros((0, 4)), np.asarray(rects, np.float64).reshape(-1, 4))
    raise ValueError(f"TopDownAugment: unknown aid_mode {mode!r}; use one of {AID_MODES}")


def drop_crop_regions(image: np.ndarray, regions: AIDRegions, center, scale, rot: float,
                      fill=(0, 0, 0)) -> np.ndarray:
    """Fill the crop-space ``regions`` of the crop ``(center, scale, rot)`` in the source
    ``image`` (a copy; the crop is a similarity transform of the image, so the regions map to
    rotated ellipses / rectangles there) so that the affine crop shows them filled with
    ``fill`` (the official code's 0) up to the interpolation of their edges. Keypoints are
    not touched."""
    if len(regions) == 0:
        return image
    out = np.array(image, copy=True)
    sw, sh = float(scale[0]), float(scale[1])
    inv = get_warp_matrix(center, scale, rot, (sw, sh), inverse=True)   # crop px at image scale
    shift = 4
    colour = tuple(int(v) for v in fill) if out.ndim == 3 else int(fill[0])
    t = np.linspace(0, 2 * math.pi, 64, endpoint=False)
    polys = [np.stack([(cx + rx * np.cos(t)) * sw, (cy + ry * np.sin(t)) * sh], -1)
             for cx, cy, rx, ry in regions.ellipses]
    # cells on the crop's edge reach past it, so that its edge pixels are dropped too
    rects = [[x0 - (x0 <= 0) * 0.1, y0 - (y0 <= 0) * 0.1, x1 + (x1 >= 1) * 0.1,
              y1 + (y1 >= 1) * 0.1] for x0, y0, x1, y1 in regions.rects]
    polys += [np.array([[x0 * sw, y0 * sh], [x1 * sw, y0 * sh], [x1 * sw, y1 * sh],
                        [x0 * sw, y1 * sh]]) for x0, y0, x1, y1 in rects]
    for poly in polys:
        pts = np.round(affine_points(poly.astype(np.float32), inv) * (1 << shift)).astype(np.int32)
        cv2.fillConvexPoly(out, pts, colour, lineType=cv2.LINE_8, shift=shift)
    return out


class TopDownAugment:
    """Random flip, half-body, scale and rotation for one instance (mmpose defaults), and
    optionally AID (Huang et al. 2020, augmentation by information dropping): with
    probability ``aid_prob`` the crop loses the regions of :func:`sample_aid_regions`
    (``aid_mode`` 'cutout': ``aid_num_patch`` ellipses of radius factor
    ``aid_radius_factor``; 'hide_and_seek': a grid of ``aid_grid_sizes`` cells, each hidden
    with ``aid_hide_prob``), filled with ``aid_fill`` (BGR; the official code's 0). The
    official settings are ``aid_prob=1`` with the defaults here. The drop is drawn after
    every other augmentation from the same ``rng``, so turning it on changes nothing else,
    and the keypoint annotations are never changed. AID trains for longer (the official
    top-down recipe: 150 epochs at Adam lr 3e-3, steps at 100 and 140)."""

    def __init__(self, flip_prob=0.5, half_body_prob=0.3, half_body_min_total=8,
                 scale_factor=(0.75, 1.25), rot_factor=40.0, rot_prob=0.6, shift_factor=0.16,
                 shift_prob=0.3, aid_prob=0.0, aid_mode="cutout", aid_radius_factor=0.2,
                 aid_num_patch=1, aid_grid_sizes=AID_GRID_SIZES, aid_hide_prob=0.5,
                 aid_fill=(0, 0, 0)):
        self.flip_prob, self.half_body_prob = flip_prob, half_body_prob
        self.half_body_min_total = half_body_min_total
        self.scale_factor, self.rot_factor, self.rot_prob = scale_factor, rot_factor, rot_prob
        self.shift_factor, self.shift_prob = shift_factor, shift_prob
        if not 0.0 <= float(aid_prob) <= 1.0:
            raise ValueError(f"TopDownAugment: aid_prob must be in [0, 1], got {aid_prob}")
        if aid_mode not in AID_MODES:
            raise ValueError(f"TopDownAugment: unknown aid_mode {aid_mode!r}; use one of {AID_MODES}")
        if not float(aid_radius_factor) > 0:
            raise ValueError(f"TopDownAugment: aid_radius_factor must be > 0, got {aid_radius_factor}")
        if int(aid_num_patch) < 1:
            raise ValueError(f"TopDownAugment: aid_num_patch must be >= 1, got {aid_num_patch}")
        if not aid_grid_sizes or any(not 0.0 <= float(g) <= 1.0 for g in aid_grid_sizes):
            raise ValueError(f"TopDownAugment: aid_grid_sizes must be fractions of the crop "
                             f"width in [0, 1], got {aid_grid_sizes}")
        if not 0.0 <= float(aid_hide_prob) <= 1.0:
            raise ValueError(f"TopDownAugment: aid_hide_prob must be in [0, 1], got {aid_hide_prob}")
        if len(aid_fill) != 3:
            raise ValueError(f"TopDownAugment: aid_fill must be 3 BGR values, got {aid_fill}")
        self.aid_prob, self.aid_mode = float(aid_prob), aid_mode
        self.aid_radius_factor, self.aid_num_patch = float(aid_radius_factor), int(aid_num_patch)
        self.aid_grid_sizes = tuple(float(g) for g in aid_grid_sizes)
        self.aid_hide_prob = float(aid_hide_prob)
        self.aid_fill = tuple(int(v) for v in aid_fill)

    def aid_regions(self, rng, aspect_ratio) -> AIDRegions:
        """The AID draw (after the geometric ones): the crop's dropped regions, maybe none."""
        if self.aid_prob <= 0 or rng.random() >= self.aid_prob:
            return NO_AID_REGIONS
        return sample_aid_regions(rng, aspect_ratio, self.aid_mode, self.aid_radius_factor,
                                  self.aid_num_patch, self.aid_grid_sizes, self.aid_hide_prob)

    def __call__(self, rng, image, keypoints, visibility, center, scale, kset, aspect_ratio):
        rot = 0.0
        if rng.random() < self.flip_prob:
            image = flip_image(image)
            keypoints, visibility = flip_keypoints(keypoints, visibility, image.shape[1], kset.flip_pairs)
            center = np.array([image.shape[1] - 1 - center[0], center[1]], np.float32)
        if (self.half_body_prob > 0 and (np.asarray(visibility) > 0).sum() > self.half_body_min_total
                and rng.random() < self.half_body_prob and kset.upper_body):
            hb = half_body_center_scale(keypoints, visibility, kset.upper_body, kset.lower_body,
                                        aspect_ratio, rng)
            if hb is not None:
                center, scale = hb
        if rng.random() < self.shift_prob:
            center = center + rng.uniform(-1, 1, size=2).astype(np.float32) * self.shift_factor * scale
        lo, hi = self.scale_factor
        scale = scale * float(np.clip(rng.normal() * 0.25 + 1.0, lo, hi))
        if rng.random() < self.rot_prob:
            rot = float(np.clip(rng.normal() * self.rot_factor, -2 * self.rot_factor, 2 * self.rot_factor))
        if self.aid_prob > 0:
            regions = self.aid_regions(rng, aspect_ratio)
            image = drop_crop_regions(np.ascontiguousarray(image), regions, center, scale, rot,
                                      self.aid_fill)
        return np.ascontiguousarray(image), keypoints, visibility, center, scale, rot
