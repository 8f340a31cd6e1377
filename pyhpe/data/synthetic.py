"""Built-in synthetic pose dataset: rendered articulated figures in COCO-17 layout.

Every image is rendered from a random 3-D kinematic skeleton (bone lengths, joint angles, body
yaw/pitch/roll) projected by a pinhole camera, drawn over a random background (flat, gradient,
low-frequency noise or clutter), with optional box occluders and several persons per image.
Limbs carry fixed side-specific colours (as clothing would) so left/right is learnable.
Each image depends only on ``(seed, index)``, so any subset is reproducible and renders lazily.

Annotations follow the COCO keypoint format: ``v=2`` visible, ``v=1`` labelled but occluded
(hidden by an occluder, another person, or the back of the head), ``v=0`` outside the image.
``area`` (the OKS scale) is the area of the tight box around the rendered silhouette, as in
COCO-format datasets without masks (CrowdPose, OCHuman); ``area_mode='silhouette'`` uses the
silhouette's pixel count instead (COCO's segmentation area; much stricter for stick figures).
"""
from __future__ import annotations

import math
from typing import Dict, List, Tuple

import cv2
import numpy as np

from ..keypoints import COCO17, COCO_NAMES

# Body frame: X = the person's left, Y = up, Z = the direction the person faces (metres).
_LIMBS = [  # (a, b, colour BGR, thickness in metres)
    (5, 7, (40, 40, 220), 0.09), (7, 9, (60, 140, 255), 0.075),      # left arm: red, orange
    (6, 8, (220, 80, 30), 0.09), (8, 10, (230, 220, 40), 0.075),     # right arm: blue, cyan
    (11, 13, (40, 200, 40), 0.12), (13, 15, (140, 255, 160), 0.10),  # left leg: greens
    (12, 14, (200, 40, 200), 0.12), (14, 16, (255, 160, 230), 0.10),  # right leg: magentas
]
_FACE_COLOURS = {0: (30, 30, 200), 1: (0, 220, 255), 2: (255, 120, 0), 3: (0, 140, 255),
                 4: (200, 100, 40)}


def _rot(axis: str, a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def random_pose_3d(rng: np.random.Generator, difficulty: float = 1.0) -> Tuple[np.ndarray, dict]:
    """A random 17-joint 3-D pose (body frame, metres, pelvis at the origin) and body sizes."""
    d = difficulty
    s = rng.uniform(0.85, 1.15)
    sh_w, hip_w = 0.19 * s * rng.uniform(0.9, 1.1), 0.11 * s * rng.uniform(0.9, 1.1)
    torso = 0.52 * s * rng.uniform(0.92, 1.08)
    up_arm, fore, thigh, shin = (0.29 * s, 0.26 * s, 0.43 * s, 0.42 * s)
    head_r = 0.12 * s
    lean = _rot("x", rng.uniform(-0.25, 0.35) * d) @ _rot("z", rng.uniform(-0.15, 0.15) * d)
    J = np.zeros((17, 3))
    J[11], J[12] = [hip_w, 0, 0], [-hip_w, 0, 0]
    neck = lean @ np.array([0, torso + 0.04 * s, 0])
    J[5] = lean @ np.array([sh_w, torso, 0])
    J[6] = lean @ np.array([-sh_w, torso, 0])
    head_c = neck + lean @ np.array([0, 0.1 * s + head_r, 0])
    head_rot = lean @ _rot("y", rng.uniform(-0.5, 0.5) * d) @ _rot("x", rng.uniform(-0.3, 0.3) * d)
    J[0] = head_c + head_rot @ np.array([0, -0.02, 0.95 * head_r])
    J[1] = head_c + head_rot @ np.array([0.42 * head_r, 0.25 * head_r, 0.8 * head_r])
    J[2] = head_c + head_rot @ np.array([-0.42 * head_r, 0.25 * head_r, 0.8 * head_r])
    J[3] = head_c + head_rot @ np.array([0.98 * head_r, 0.05 * head_r, -0.1 * head_r])
    J[4] = head_c + head_rot @ np.array([-0.98 * head_r, 0.05 * head_r, -0.1 * head_r])
    for side, (sh, el, wr) in ((1, (5, 7, 9)), (-1, (6, 8, 10))):
        # arm hangs down, then abducts (about Z), flexes (about X); elbow bends forward
        R = lean @ _rot("z", side * rng.uniform(0.05, 1.9 * d)) @ _rot("x", -rng.uniform(-0.6, 1.6) * d)
        J[el] = J[sh] + R @ np.array([0, -up_arm, 0])
        R2 = R @ _rot("x", -rng.uniform(0, 2.2) * d)
        J[wr] = J[el] + R2 @ np.array([0, -fore, 0])
    for side, (hp, kn, an) in ((1, (11, 13, 15)), (-1, (12, 14, 16))):
        R = _rot("z", side * rng.uniform(-0.05, 0.5) * d) @ _rot("x", -rng.uniform(-0.4, 1.2) * d)
        J[kn] = J[hp] + R @ np.array([0, -thigh, 0])
        R2 = R @ _rot("x", rng.uniform(0, 1.8) * d)
        J[an] = J[kn] + R2 @ np.array([0, -shin, 0])
    return J, {"head_center": head_c, "head_r": head_r, "head_rot": head_rot, "scale": s}


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    kind = rng.integers(0, 4)
    base = rng.uniform(40, 220, size=3)
    if kind == 0:
        img = np.broadcast_to(base, (h, w, 3)).copy()
    elif kind == 1:
        other = rng.uniform(40, 220, size=3)
        t = np.linspace(0, 1, h if rng.random() < 0.5 else w)
        ramp = base[None] * (1 - t[:, None]) + other[None] * t[:, None]
        img = (np.broadcast_to(ramp[:, None, :], (h, w, 3)) if len(t) == h
               else np.broadcast_to(ramp[None, :, :], (h, w, 3))).copy()
    elif kind == 2:
        small = rng.uniform(30, 230, size=(rng.integers(3, 8), rng.integers(3, 8), 3))
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    else:
        img = np.broadcast_to(base, (h, w, 3)).copy()
        for _ in range(rng.integers(3, 12)):
            c = tuple(float(v) for v in rng.uniform(30, 230, size=3))
            p = rng.uniform(0, 1, size=2) * [w, h]
            if rng.random() < 0.5:
                q = p + rng.uniform(-0.4, 0.4, size=2) * [w, h]
                cv2.rectangle(img, tuple(int(v) for v in p), tuple(int(v) for v in q), c, -1)
            else:
                _draw(cv2.circle, img, tuple(int(v) for v in p), int(rng.uniform(0.03, 0.2) * w), c, -1)
    img = img + rng.normal(0, rng.uniform(0, 12), size=(h, w, 1))
    return np.clip(img, 0, 255).astype(np.float32)


class _NullCanvas:
    """Stands in for an image when only the silhouette mask is wanted."""


def _draw(fn, img, *args):
    if not isinstance(img, _NullCanvas):
        fn(img, *args)


class _Person:
    def __init__(self, rng, img_w, img_h, rel_height, cx, foot_y, difficulty):
        J, info = random_pose_3d(rng, difficulty)
        yaw = rng.uniform(-1.2, 1.2) * difficulty
        R = _rot("y", yaw) @ _rot("x", rng.uniform(-0.15, 0.15)) @ _rot("z", rng.uniform(-0.12, 0.12) * difficulty)
        M = np.diag([1.0, 1.0, -1.0])  # body (left, up, forward) -> camera (right, up, into scene)
        dist = rng.uniform(4.0, 7.0)
        Pc = (J @ R.T) @ M.T + np.array([0, 0, dist])
        self.head_c = (info["head_center"] @ R.T) @ M.T + np.array([0, 0, dist])
        # faces/ears turned away from the camera are labelled but not visible
        fwd = (M @ R @ info["head_rot"] @ np.array([0, 0, 1.0]))
        left = (M @ R @ info["head_rot"] @ np.array([1.0, 0, 0]))
        toward_cam = -fwd[2]
        self.facing = {0: toward_cam > 0.0, 1: toward_cam > -0.05, 2: toward_cam > -0.05,
                       3: (-left[2]) > -0.35, 4: (left[2]) > -0.35}
        # pinhole projection; focal length so the figure spans rel_height of the image
        ys = Pc[:, 1] / Pc[:, 2]
        span = max(ys.max() - ys.min(), 1e-3) * 1.12
        f = rel_height * img_h / span
        u = f * Pc[:, 0] / Pc[:, 2]
        v = -f * Pc[:, 1] / Pc[:, 2]
        u += cx - (u.max() + u.min()) / 2
        v += foot_y - v.max()
        self.kp = np.stack([u, v], 1)
        self.depth = Pc[:, 2]
        self.f_over_z = f / dist
        hc = self.head_c
        self.head_uv = np.array([f * hc[0] / hc[2], -f * hc[1] / hc[2]]) + \
            (self.kp[0] - np.array([f * Pc[0, 0] / Pc[0, 2], -f * Pc[0, 1] / Pc[0, 2]]))
        self.head_px = info["head_r"] * self.f_over_z
        self.torso_colour = tuple(float(c) for c in rng.uniform(60, 200, size=3))
        self.skin = tuple(float(c) for c in np.array([140, 170, 220]) * rng.uniform(0.6, 1.05))

    def draw(self, img, mask, pid):
        """Draw into ``img`` (skipped when None) and write ``pid`` into ``mask``."""
        if img is None:
            img = _NullCanvas()
        fz = self.f_over_z
        prims = []  # (depth, kind, data)
        for a, b, col, th in _LIMBS:
            prims.append(((self.depth[a] + self.depth[b]) / 2, "limb", (a, b, col, th)))
        prims.append(((self.depth[[5, 6, 11, 12]].mean()), "torso", None))
        prims.append((self.head_c[2], "head", None))
        prims.sort(key=lambda p: -p[0])
        for _, kind, data in prims:
            if kind == "limb":
                a, b, col, th = data
                t = max(1, int(round(th * fz)))
                pa, pb = self._pt(self.kp[a]), self._pt(self.kp[b])
                _draw(cv2.line, img, pa, pb, col, t, cv2.LINE_AA)
                cv2.line(mask, pa, pb, pid, t)
                r = max(1, t // 2)
                _draw(cv2.circle, img, pb, r, col, -1, cv2.LINE_AA)
                cv2.circle(mask, pb, r, pid, -1)
            elif kind == "torso":
                poly = np.array([self._pt(self.kp[i]) for i in (5, 6, 12, 11)], np.int32)
                _draw(cv2.fillConvexPoly, img, poly, self.torso_colour, cv2.LINE_AA)
                cv2.fillConvexPoly(mask, poly, pid)
                t = max(1, int(round(0.07 * fz)))
                neck = self._pt((self.kp[5] + self.kp[6]) / 2)
                _draw(cv2.line, img, neck, self._pt(self.head_uv), self.skin, t, cv2.LINE_AA)
                cv2.line(mask, neck, self._pt(self.head_uv), pid, t)
            else:
                c, r = self._pt(self.head_uv), max(2, int(round(self.head_px)))
                _draw(cv2.circle, img, c, r, self.skin, -1, cv2.LINE_AA)
                cv2.circle(mask, c, r, pid, -1)
                dot = max(1, int(round(self.head_px * 0.16)))
                for k in (3, 4, 1, 2, 0):
                    if self.facing[k]:
                        _draw(cv2.circle, img, self._pt(self.kp[k]), dot, _FACE_COLOURS[k], -1, cv2.LINE_AA)

    @staticmethod
    def _pt(p):
        return int(round(float(p[0]))), int(round(float(p[1])))


def render_sample(seed: int, index: int, size: Tuple[int, int] = (192, 192), max_persons: int = 1,
                  occlusion: float = 0.25, difficulty: float = 1.0,
                  area_mode: str = "bbox") -> Tuple[np.ndarray, List[Dict]]:
    """Render one image (H, W, 3) uint8 BGR and its person annotations (COCO keypoint dicts)."""
    rng = np.random.default_rng([int(seed), int(index)])
    w, h = size
    img = _background(rng, h, w)
    mask = np.zeros((h, w), np.int32)
    n = 1 if max_persons <= 1 else int(rng.integers(1, max_persons + 1))
    persons = []
    for p in range(n):
        rel = rng.uniform(0.6, 0.9) if n == 1 else rng.uniform(0.3, 0.65)
        cx = rng.uniform(0.35, 0.65) * w if n == 1 else rng.uniform(0.15, 0.85) * w
        foot = rng.uniform(0.88, 0.97) * h
        persons.append(_Person(rng, w, h, rel, cx, foot, difficulty))
    order = sorted(range(n), key=lambda i: -persons[i].depth.mean() if n > 1 else 0)
    if n > 1:  # smaller figures are farther away
        order = sorted(range(n), key=lambda i: persons[i].head_px)
    silhouettes = []
    for i in order:
        own = np.zeros((h, w), np.int32)
        persons[i].draw(img, mask, i + 1)
        persons[i].draw(None, own, 1)
        silhouettes.append((i, own))
    if rng.random() < occlusion:
        for _ in range(int(rng.integers(1, 3))):
            pi = persons[int(rng.integers(0, n))]
            lo, hi = pi.kp.min(0), pi.kp.max(0)
            ext = hi - lo
            wh = rng.uniform(0.2, 0.45, size=2) * np.maximum(ext, 8)
            p0 = lo + rng.uniform(0, 1, size=2) * ext - wh / 2
            c = tuple(float(v) for v in rng.uniform(30, 230, size=3))
            p0i, p1i = tuple(int(v) for v in p0), tuple(int(v) for v in p0 + wh)
            cv2.rectangle(img, p0i, p1i, c, -1)
            cv2.rectangle(mask, p0i, p1i, -1, -1)
    img = np.clip(img + rng.normal(0, 3, size=img.shape), 0, 255).astype(np.uint8)
    anns = []
    sil = dict(silhouettes)
    for i, p in enumerate(persons):
        kps = np.zeros((17, 3))
        for k in range(17):
            x, y = p.kp[k]
            if not (0 <= x < w and 0 <= y < h):
                kps[k] = (0, 0, 0)
                continue
            xi, yi = min(int(x), w - 1), min(int(y), h - 1)
            vis = 2 if (mask[yi, xi] == i + 1 and p.facing.get(k, True)) else 1
            kps[k] = (x, y, vis)
        own = sil[i]
        ys, xs = np.nonzero(own)
        if len(xs) == 0 or (kps[:, 2] > 0).sum() == 0:
            continue
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        anns.append({"keypoints": [float(v) for v in kps.reshape(-1)],
                     "num_keypoints": int((kps[:, 2] > 0).sum()),
                     "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                     "area": float(len(xs)) if area_mode == "silhouette" else float((x1 - x0) * (y1 - y0)),
                     "iscrowd": 0, "category_id": 1})
    return img, anns


class SyntheticPoseDataset:
    """A deterministic synthetic COCO-17 dataset held in memory.

    ``images[i]`` is an (H, W, 3) uint8 BGR array; :meth:`coco_dict` gives the annotations in
    pycocotools format (image ids are ``i + 1``), usable as evaluation ground truth.
    """

    def __init__(self, num_images: int = 100, seed: int = 0, size: Tuple[int, int] = (192, 192),
                 max_persons: int = 1, occlusion: float = 0.25, difficulty: float = 1.0,
                 lazy: bool = False, area_mode: str = "bbox"):
        self.num_images, self.seed, self.size = int(num_images), int(seed), tuple(size)
        self.max_persons, self.occlusion, self.difficulty = max_persons, occlusion, difficulty
        self.area_mode = area_mode
        self.keypoint_set = COCO17
        self._cache: Dict[int, Tuple[np.ndarray, List[Dict]]] = {}
        if not lazy:
            for i in range(self.num_images):
                self._get(i)

    def _get(self, i: int):
        if i not in self._cache:
            self._cache[i] = render_sample(self.seed, i, self.size, self.max_persons,
                                           self.occlusion, self.difficulty, self.area_mode)
        return self._cache[i]

    def __len__(self):
        return self.num_images

    def image(self, i: int) -> np.ndarray:
        return self._get(i)[0]

    def image_by_id(self, image_id: int) -> np.ndarray:
        return self.image(image_id - 1)

    def annotations(self, i: int) -> List[Dict]:
        return self._get(i)[1]

    def coco_dict(self) -> Dict:
        images, anns = [], []
        aid = 1
        for i in range(self.num_images):
            img, a = self._get(i)
            images.append({"id": i + 1, "file_name": f"synthetic_{self.seed}_{i:06d}.png",
                           "height": img.shape[0], "width": img.shape[1]})
            for ann in a:
                anns.append(dict(ann, id=aid, image_id=i + 1))
                aid += 1
        cat = {"id": 1, "name": "person", "supercategory": "person", "keypoints": list(COCO_NAMES),
               "skeleton": [[a + 1, b + 1] for a, b in COCO17.skeleton]}
        return {"images": images, "annotations": anns, "categories": [cat],
                "info": {"description": f"pyhpe synthetic figures (seed {self.seed})"}}
