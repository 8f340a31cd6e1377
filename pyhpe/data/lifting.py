"""Lifting data: Human3.6M in the VideoPose3D npz layout and synthetic 2-D/3-D pose pairs.

* :func:`load_h36m_npz` reads ``data_3d_h36m.npz`` (``positions_3d[subject][action]``
  (T, 32 or 17, 3) world metres) and ``data_2d_h36m_<kind>.npz``
  (``positions_2d[subject][action][camera]`` (T, 17, 2) pixels), 17-joint skeleton
  (:data:`pyhpe.keypoints.H36M17`, root = hip, joint 0). Camera-frame 3-D comes from a camera
  fitted to the 2-D/3-D correspondences of each (subject, action, camera) (:func:`fit_camera`,
  DLT + RQ decomposition), so no extrinsics file is needed; ``positions_3d`` may also hold
  per-camera camera-frame arrays directly. Protocol #1 split: train S1 S5 S6 S7 S8, test S9 S11.
* :func:`synthetic_lifting_data`: 3-D poses of the synthetic kinematic model
  (:func:`pyhpe.data.synthetic.random_pose_3d`, COCO-17 joints) seen by random pinhole
  cameras (yaw all round, pitch, distance, lateral offset).
* :class:`LiftingDataset`: items ``keypoints`` (K, 2) pixels, ``visibility`` (K,) and
  ``keypoints_3d`` (K, 3) root-relative millimetres; no targets (the lift3d codec normalises
  the collated batch).
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from ..keypoints import H36M_KEEP_32
from .synthetic import _rot, random_pose_3d

H36M_TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")
H36M_TEST_SUBJECTS = ("S9", "S11")


# ---------------------------------------------------------------------------- cameras
def _hartley(points: np.ndarray) -> np.ndarray:
    """Similarity T (D+1, D+1) moving points to the origin with mean norm sqrt(D)."""
    d = points.shape[1]
    mu = points.mean(0)
    scale = math.sqrt(d) / max(np.linalg.norm(points - mu, axis=1).mean(), 1e-12)
    T = np.eye(d + 1)
    T[:d, :d] *= scale
    T[:d, d] = -scale * mu
    return T


def _rq(M: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """M = K @ R with K upper triangular (positive diagonal) and R orthonormal."""
    flip = np.flipud(np.eye(3))
    Q, U = np.linalg.qr((flip @ M).T)
    K = flip @ U.T @ flip
    R = flip @ Q.T
    S = np.diag(np.sign(np.diag(K)))
    return K @ S, S @ R


def fit_camera(points_3d: np.ndarray, points_2d: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pinhole camera ``x ~ K (R X + t)`` from >= 6 correspondences by the normalised DLT.

    points_3d ``(N, 3)``, points_2d ``(N, 2)`` pixels -> K ``(3, 3)`` (K[2, 2] = 1), R ``(3, 3)``
    (a rotation), t ``(3,)``, with the points in front of the camera (positive depth).
    Lens distortion is not modelled (it barely moves the fitted rotation).
    """
    X = np.asarray(points_3d, np.float64).reshape(-1, 3)
    x = np.asarray(points_2d, np.float64).reshape(-1, 2)
    ok = np.isfinite(X).all(1) & np.isfinite(x).all(1)
    X, x = X[ok], x[ok]
    if len(X) < 6:
        raise ValueError(f"fit_camera: need >= 6 finite correspondences, got {len(X)}")
    T3, T2 = _hartley(X), _hartley(x)
    Xn = (np.c_[X, np.ones(len(X))] @ T3.T)
    xn = (np.c_[x, np.ones(len(x))] @ T2.T)
    A = np.zeros((2 * len(X), 12))
    A[0::2, 0:4] = Xn
    A[0::2, 8:12] = -xn[:, 0:1] * Xn
    A[1::2, 4:8] = Xn
    A[1::2, 8:12] = -xn[:, 1:2] * Xn
    P = np.linalg.svd(A, full_matrices=False)[2][-1].reshape(3, 4)
    P = np.linalg.inv(T2) @ P @ T3
    if np.linalg.det(P[:, :3]) < 0:
        P = -P
    K, R = _rq(P[:, :3])
    t = np.linalg.solve(K, P[:, 3])
    return K / K[2, 2], R, t


# ---------------------------------------------------------------------------- Human3.6M
def _npz_dict(path: str, key: str) -> Dict:
    from .safe_npz import load_npz_member
    obj = load_npz_member(path, key, who="load_h36m_npz")
    return obj.item() if obj.dtype == object and obj.shape == () else obj


def load_h36m_npz(path_3d: str, path_2d: str, subjects: Optional[Sequence[str]] = None,
                  max_fit_frames: int = 500, camera_2d: Optional[str] = None
                  ) -> Dict[Tuple[str, str, int], Tuple[np.ndarray, np.ndarray]]:
    """Human3.6M in the VideoPose3D npz layout -> ``{(subject, action, camera): (pose_2d
    (T, 17, 2) pixels, pose_3d (T, 17, 3) camera frame, metres)}``.

    ``positions_3d[s][a]`` is world (T, 32, 3) (the 17 VideoPose3D joints are kept) or
    (T, 17, 3), or a list of per-camera camera-frame arrays; ``positions_2d[s][a]`` is a list
    of per-camera (T, 17, 2) arrays. Sequences are cut to the shorter of the two (VideoPose3D
    does the same for detections longer than the mocap). World poses are moved to each
    camera's frame with :func:`fit_camera` on up to ``max_fit_frames`` frames, using the 2-D
    of ``camera_2d`` when given: pass the ground-truth 2-D file there when ``path_2d`` holds
    detections in another joint order (e.g. VideoPose3D's COCO-ordered Detectron files).
    """
    pos3d, pos2d = _npz_dict(path_3d, "positions_3d"), _npz_dict(path_2d, "positions_2d")
    cam2d = pos2d if camera_2d is None else _npz_dict(camera_2d, "positions_2d")
    out = {}
    for s in sorted(pos2d):
        if subjects is not None and s not in subjects:
            continue
        if s not in pos3d:
            continue
        for a in sorted(pos2d[s]):
            if a not in pos3d[s]:
                continue
            world = pos3d[s][a]
            per_camera = isinstance(world, (list, tuple)) or np.asarray(world).ndim == 4
            for c, kp2d in enumerate(pos2d[s][a]):
                kp2d = np.asarray(kp2d, np.float64)[..., :2]
                X = np.asarray(world[c] if per_camera else world, np.float64)
                if X.shape[1] == 32:
                    X = X[:, list(H36M_KEEP_32)]
                if X.shape[1] != 17 or kp2d.shape[1] != 17:
                    raise ValueError(f"load_h36m_npz: {s}/{a} camera {c}: expected 17 joints "
                                     f"(or 32 in 3-D), got 3-D {X.shape} and 2-D {kp2d.shape}")
                T = min(len(X), len(kp2d))
                X, kp2d = X[:T], kp2d[:T]
                if not per_camera:
                    ref = np.asarray(cam2d[s][a][c], np.float64)[:T, :, :2]
                    Xf = X[:len(ref)]
                    step = max(len(ref) // max_fit_frames, 1)
                    _, R, t = fit_camera(Xf[::step].reshape(-1, 3), ref[::step].reshape(-1, 2))
                    X = X @ R.T + t
                out[(s, a, c)] = (kp2d, X)
    if not out:
        raise ValueError(f"load_h36m_npz: no (subject, action) present in both {path_3d!r} and "
                         f"{path_2d!r}" + (f" for subjects {list(subjects)}" if subjects else ""))
    return out


def h36m_arrays(sequences: Dict, downsample: int = 1):
    """Concatenate sequences -> (pose_2d (N, 17, 2), root-relative pose_3d (N, 17, 3) in mm,
    action names (N,))."""
    p2, p3, acts = [], [], []
    for (s, a, c), (x2, x3) in sorted(sequences.items()):
        x2, x3 = x2[::downsample], x3[::downsample]
        p2.append(x2)
        p3.append((x3 - x3[:, :1]) * 1000.0)
        acts += [a.split(" ")[0]] * len(x2)
    return np.concatenate(p2).astype(np.float32), np.concatenate(p3).astype(np.float32), np.array(acts)


def fit_intrinsics(pose_2d: np.ndarray, pose_3d: np.ndarray) -> np.ndarray:
    """Pinhole intrinsics ``(fx, fy, cx, cy)`` of camera-frame joints ``(..., 3)`` and their
    pixels ``(..., 2)`` by linear least squares (``u = fx X / Z + cx``, ``v = fy Y / Z + cy``)."""
    x = np.asarray(pose_2d, np.float64).reshape(-1, 2)
    X = np.asarray(pose_3d, np.float64).reshape(-1, 3)
    ok = np.isfinite(x).all(1) & np.isfinite(X).all(1) & (X[:, 2] > 0)
    if ok.sum() < 2:
        raise ValueError(f"fit_intrinsics: need >= 2 finite points in front of the camera, "
                         f"got {int(ok.sum())}")
    x, X = x[ok], X[ok]
    out = []
    for d in (0, 1):
        A = np.stack([X[:, d] / X[:, 2], np.ones(len(X))], 1)
        out.append(np.linalg.lstsq(A, x[:, d], rcond=None)[0])
    return np.array([out[0][0], out[1][0], out[0][1], out[1][1]])


def h36m_camera_arrays(sequences: Dict, downsample: int = 1):
    """The cameras of :func:`h36m_arrays`' poses (same order): ``camera`` (N, 4) fx fy cx cy
    (:func:`fit_intrinsics` per sequence) and ``root_3d`` (N, 3) the camera-frame hip, mm."""
    cams, roots = [], []
    for key, (x2, x3) in sorted(sequences.items()):
        x2, x3 = x2[::downsample], x3[::downsample]
        cams.append(np.broadcast_to(fit_intrinsics(x2, x3), (len(x2), 4)))
        roots.append(x3[:, 0] * 1000.0)
    return np.concatenate(cams).astype(np.float32), np.concatenate(roots).astype(np.float32)


# ---------------------------------------------------------------------------- synthetic
def synthetic_lifting_data(num: int, seed: int = 0, noise_2d: float = 0.0, difficulty: float = 1.0,
                           focal: float = 1000.0, image_size: int = 1000):
    """Random 3-D poses (COCO-17) seen by random cameras -> (pose_2d (N, 17, 2) pixels,
    pose_3d (N, 17, 3) camera frame (x right, y down, z forward) relative to the hip centre,
    mm)."""
    rng = np.random.default_rng([int(seed), 31337])
    p2 = np.zeros((num, 17, 2))
    p3 = np.zeros((num, 17, 3))
    to_cam = np.diag([-1.0, -1.0, 1.0])  # body (left, up, forward) -> camera (right, down, away)
    for i in range(num):
        J, _ = random_pose_3d(rng, difficulty)
        R = _rot("x", rng.uniform(-0.35, 0.35)) @ _rot("y", rng.uniform(-math.pi, math.pi))
        t = np.array([rng.uniform(-0.8, 0.8), rng.uniform(-0.4, 0.4), rng.uniform(3.5, 7.0)])
        # the body's forward axis maps to the camera's +z when yaw is 0 (seen from behind)
        Xc = (J @ R.T) @ to_cam.T + t
        p2[i] = focal * Xc[:, :2] / Xc[:, 2:3] + image_size / 2
        root = (Xc[11] + Xc[12]) / 2
        p3[i] = (Xc - root) * 1000.0
    if noise_2d > 0:
        p2 += rng.normal(0.0, noise_2d, size=p2.shape)
    return p2.astype(np.float32), p3.astype(np.float32)


class LiftingDataset(torch.utils.data.Dataset):
    """2-D/3-D pose pairs: ``pose_2d`` ``(N, K, 2)`` pixels, ``pose_3d`` ``(N, K, 3)`` mm
    (root-relative), optional ``visibility`` ``(N, K)`` (default 1) and ``actions`` ``(N,)``
    (kept on the dataset for per-action metrics), and where the cameras are known ``camera``
    ``(N, 4)`` (fx, fy, cx, cy pixels) with ``root_3d`` ``(N, 3)`` (the root joint in the
    camera frame, mm: ``pose_3d + root_3d`` projects to ``pose_2d``). Items: ``keypoints``,
    ``visibility``, ``keypoints_3d``, ``index`` (and ``camera``, ``root_3d``); the default
    collate stacks them."""

    def __init__(self, pose_2d: np.ndarray, pose_3d: np.ndarray,
                 visibility: Optional[np.ndarray] = None, actions: Optional[np.ndarray] = None,
                 camera: Optional[np.ndarray] = None, root_3d: Optional[np.ndarray] = None):
        p2 = np.asarray(pose_2d, np.float32)
        p3 = np.asarray(pose_3d, np.float32)
        if p2.ndim != 3 or p2.shape[-1] != 2 or p3.shape != p2.shape[:2] + (3,):
            raise ValueError(f"LiftingDataset: expected pose_2d (N, K, 2) and pose_3d (N, K, 3), "
                             f"got {p2.shape} and {p3.shape}")
        vis = np.ones(p2.shape[:2], np.float32) if visibility is None else \
            np.asarray(visibility, np.float32)
        if vis.shape != p2.shape[:2]:
            raise ValueError(f"LiftingDataset: 'visibility' must be {p2.shape[:2]}, got {vis.shape}")
        if actions is not None and len(actions) != len(p2):
            raise ValueError(f"LiftingDataset: 'actions' must have {len(p2)} entries, "
                             f"got {len(actions)}")
        self.pose_2d, self.pose_3d = torch.from_numpy(p2), torch.from_numpy(p3)
        self.visibility = torch.from_numpy(vis)
        self.actions = None if actions is None else np.asarray(actions)
        if (camera is None) != (root_3d is None):
            raise ValueError("LiftingDataset: 'camera' and 'root_3d' go together")
        self.camera = self.root_3d = None
        if camera is not None:
            cam = np.asarray(camera, np.float32)
            root = np.asarray(root_3d, np.float32)
            if cam.shape != (len(p2), 4) or root.shape != (len(p2), 3):
                raise ValueError(f"LiftingDataset: 'camera' must be ({len(p2)}, 4) (fx, fy, cx, "
                                 f"cy) and 'root_3d' ({len(p2)}, 3), got {cam.shape} and "
                                 f"{root.shape}")
            self.camera, self.root_3d = torch.from_numpy(cam), torch.from_numpy(root)

    def __len__(self):
        return len(self.pose_2d)

    def __getitem__(self, idx: int) -> Dict:
        item = {"keypoints": self.pose_2d[idx], "visibility": self.visibility[idx],
                "keypoints_3d": self.pose_3d[idx], "index": int(idx)}
        if self.camera is not None:
            item["camera"], item["root_3d"] = self.camera[idx], self.root_3d[idx]
        return item


__all__ = ["H36M_TEST_SUBJECTS", "H36M_TRAIN_SUBJECTS", "LiftingDataset", "fit_camera",
           "fit_intrinsics", "h36m_arrays", "h36m_camera_arrays", "load_h36m_npz",
           "synthetic_lifting_data"]
