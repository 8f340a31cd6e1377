"""2-D -> 3-D pose lifting with SimpleBaseline-3D (Martinez et al. 2017).

Data:

* ``--data synthetic`` (default): 3-D poses of the synthetic kinematic model
  (:func:`pyhpe.data.synthetic.random_pose_3d`, COCO-17 joints, metres) seen by random
  pinhole cameras (yaw all round, pitch, distance, lateral offset); inputs are the projected
  pixels (optionally with Gaussian noise), targets the camera-frame joints relative to the
  hip centre, in millimetres.
* ``--data h36m``: Human3.6M in the VideoPose3D layout (``data_3d_h36m.npz`` with
  ``positions_3d[subject][action]`` (T, 32 or 17, 3) world metres, and
  ``data_2d_h36m_<kind>.npz`` with ``positions_2d[subject][action][camera]`` (T, 17, 2)
  pixels), 17-joint skeleton (root = hip, joint 0). Camera-frame 3-D comes from a camera fitted
  to the 2-D/3-D correspondences of each (subject, action, camera) (DLT + RQ decomposition),
  so no extrinsics file is needed; ``positions_3d`` may also hold per-camera camera-frame
  arrays directly. Protocol #1 split: train S1 S5 S6 S7 S8, test S9 S11.

Inputs and targets are standardised per coordinate with training-set statistics (Martinez);
2-D inputs are centred on the root by default. Loss: MSE on standardised targets, plus
optionally the bone-length loss ``|| |pred bone| - |gt bone| ||_1`` (metres). Metrics: MPJPE,
P-MPJPE (Procrustes-aligned) and N-MPJPE in mm (:mod:`pyhpe.eval.metrics`).

``python -m pyhpe.tasks lift3d --epochs 30`` or
``python -m pyhpe.tasks lift3d --data h36m --h36m-3d data_3d_h36m.npz --h36m-2d data_2d_h36m_gt.npz``.
"""
from __future__ import annotations

import argparse
import math
import os
import time
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from ..data.synthetic import _rot
from ._common import Logger, add_common_args, fit, save_run, setup

#: VideoPose3D keeps these 17 of Human3.6M's 32 mocap joints (Human36mDataset.remove_joints).
H36M_KEEP_32 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
H36M_NAMES = ("hip", "right_hip", "right_knee", "right_foot", "left_hip", "left_knee",
              "left_foot", "spine", "thorax", "neck_nose", "head", "left_shoulder",
              "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist")
#: Parent of each joint of the 17-joint skeleton (VideoPose3D h36m_skeleton after removal).
H36M_PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
H36M_BONES = tuple((p, j) for j, p in enumerate(H36M_PARENTS) if p >= 0)
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
    from ..data.safe_npz import load_npz_member
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


# ---------------------------------------------------------------------------- synthetic
def synthetic_lifting_data(num: int, seed: int = 0, noise_2d: float = 0.0, difficulty: float = 1.0,
                           focal: float = 1000.0, image_size: int = 1000):
    """Random 3-D poses (COCO-17) seen by random cameras -> (pose_2d (N, 17, 2) pixels,
    pose_3d (N, 17, 3) camera frame (x right, y down, z forward) relative to the hip centre,
    mm)."""
    from ..data.synthetic import random_pose_3d
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


def _coco_bones():
    from ..data.keypoints import COCO_SKELETON
    return tuple(COCO_SKELETON)


# ---------------------------------------------------------------------------- training
class Standardizer:
    """Per-coordinate mean/std of the training set (std floored, e.g. the zero root)."""

    def __init__(self, data: np.ndarray):
        self.mean = data.mean(0).astype(np.float32)
        self.std = np.maximum(data.std(0), 1e-3).astype(np.float32)

    def __call__(self, x):
        return (x - self.mean) / self.std

    def inverse(self, x):
        if isinstance(x, torch.Tensor):
            return x * torch.as_tensor(self.std, device=x.device) + torch.as_tensor(self.mean, device=x.device)
        return x * self.std + self.mean


def prepare_inputs(pose_2d: np.ndarray, root: Sequence[int], center: bool = True) -> np.ndarray:
    """Root-centre 2-D inputs (root = mean of the ``root`` joints)."""
    if not center:
        return pose_2d
    return pose_2d - pose_2d[:, list(root)].mean(1, keepdims=True)


def bone_length_loss(pred: torch.Tensor, target: torch.Tensor, bones) -> torch.Tensor:
    """Mean absolute difference of bone lengths, ``(B, K, 3)`` each."""
    idx = torch.as_tensor(bones, device=pred.device)
    lp = (pred[:, idx[:, 0]] - pred[:, idx[:, 1]]).norm(dim=-1)
    lt = (target[:, idx[:, 0]] - target[:, idx[:, 1]]).norm(dim=-1)
    return (lp - lt).abs().mean()


@torch.no_grad()
def predict(model, inputs: np.ndarray, in_norm: Standardizer, out_norm: Standardizer, device,
            batch_size: int = 1024) -> np.ndarray:
    model.eval()
    out = []
    x_all = torch.from_numpy(in_norm(inputs).astype(np.float32))
    for i in range(0, len(x_all), batch_size):
        y = model(x_all[i:i + batch_size].to(device)).float().cpu().numpy()
        out.append(out_norm.inverse(y.reshape(len(y), -1)).reshape(y.shape))
    return np.concatenate(out) if out else np.zeros((0,) + (inputs.shape[1], 3), np.float32)


def evaluate(pred: np.ndarray, gt: np.ndarray, actions: Optional[np.ndarray] = None) -> Dict:
    """MPJPE, P-MPJPE, N-MPJPE (mm); per action (mean over actions too) when given."""
    from ..eval.metrics import mpjpe, n_mpjpe, p_mpjpe
    out = {"mpjpe": mpjpe(pred, gt), "p_mpjpe": p_mpjpe(pred, gt), "n_mpjpe": n_mpjpe(pred, gt),
           "num_samples": int(len(gt))}
    if actions is not None and len(actions):
        per = {}
        for a in sorted(set(actions.tolist())):
            m = actions == a
            per[a] = {"mpjpe": mpjpe(pred[m], gt[m]), "p_mpjpe": p_mpjpe(pred[m], gt[m])}
        out["per_action"] = per
        out["mpjpe_action_mean"] = float(np.mean([v["mpjpe"] for v in per.values()]))
        out["p_mpjpe_action_mean"] = float(np.mean([v["p_mpjpe"] for v in per.values()]))
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pyhpe.tasks lift3d", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p, epochs=30, batch_size=64, lr=1e-3, out="runs/lift3d")
    p.add_argument("--data", default="synthetic", choices=["synthetic", "h36m"])
    p.add_argument("--h36m-3d", default=None, help="data_3d_h36m.npz (VideoPose3D layout)")
    p.add_argument("--h36m-2d", default=None, help="data_2d_h36m_<gt|cpn_ft_h36m_dbb|...>.npz")
    p.add_argument("--h36m-camera-2d", default=None,
                   help="2-D file (H36M joint order, e.g. data_2d_h36m_gt.npz) to fit the cameras "
                        "with, when --h36m-2d holds detections in another joint order")
    p.add_argument("--train-subjects", default=",".join(H36M_TRAIN_SUBJECTS))
    p.add_argument("--test-subjects", default=",".join(H36M_TEST_SUBJECTS))
    p.add_argument("--downsample", type=int, default=1, help="keep every n-th H36M frame")
    p.add_argument("--train-samples", type=int, default=20000, help="synthetic training poses")
    p.add_argument("--test-samples", type=int, default=2000, help="synthetic test poses")
    p.add_argument("--noise-2d", type=float, default=0.0, help="Gaussian 2-D noise (pixels)")
    p.add_argument("--no-center-2d", action="store_true", help="do not root-centre the 2-D input")
    p.add_argument("--config", default="paper", choices=["paper", "tiny"], help="lifter config")
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--blocks", type=int, default=None)
    p.add_argument("--dropout", type=float, default=None)
    p.add_argument("--bone-loss", type=float, default=0.0, help="weight of the bone-length loss")
    p.add_argument("--grad-clip", type=float, default=1.0)
    return p


def run(argv: Optional[Sequence[str]] = None) -> Dict:
    """Train and evaluate a lifter; returns metrics (and writes model.pth, metrics.json,
    log.csv under ``--out``)."""
    from ..models import build_model
    args = build_parser().parse_args(list(argv or []))
    log = Logger(args.quiet)
    device = setup(args)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    test_actions = None
    if args.data == "h36m":
        if not (args.h36m_3d and args.h36m_2d):
            raise SystemExit("lift3d: --data h36m needs --h36m-3d and --h36m-2d")
        train_s = [s for s in args.train_subjects.split(",") if s]
        test_s = [s for s in args.test_subjects.split(",") if s]
        cam = args.h36m_camera_2d
        tr2, tr3, _ = h36m_arrays(load_h36m_npz(args.h36m_3d, args.h36m_2d, train_s, camera_2d=cam),
                                  args.downsample)
        te2, te3, test_actions = h36m_arrays(
            load_h36m_npz(args.h36m_3d, args.h36m_2d, test_s, camera_2d=cam), args.downsample)
        root, bones = (0,), H36M_BONES
    else:
        tr2, tr3 = synthetic_lifting_data(args.train_samples, args.seed, args.noise_2d)
        te2, te3 = synthetic_lifting_data(args.test_samples, args.seed + 7919, args.noise_2d)
        root, bones = (11, 12), _coco_bones()
    log(f"lift3d data: {len(tr2)} train / {len(te2)} test poses ({time.time() - t0:.1f}s)")
    center = not args.no_center_2d
    tr_in, te_in = prepare_inputs(tr2, root, center), prepare_inputs(te2, root, center)
    K = tr2.shape[1]
    in_norm = Standardizer(tr_in.reshape(len(tr_in), -1))
    out_norm = Standardizer(tr3.reshape(len(tr3), -1))
    overrides = {k: v for k, v in (("width", args.width), ("num_blocks", args.blocks),
                                   ("dropout", args.dropout)) if v is not None}
    model = build_model("simple_baseline_3d", args.config, num_keypoints=K, **overrides).to(device)
    x_train = torch.from_numpy(in_norm(tr_in.reshape(len(tr_in), -1)).astype(np.float32)).view(-1, K, 2)
    y_train = torch.from_numpy(out_norm(tr3.reshape(len(tr3), -1)).astype(np.float32)).view(-1, K, 3)
    std = torch.as_tensor(out_norm.std, device=device).view(K, 3)
    mean = torch.as_tensor(out_norm.mean, device=device).view(K, 3)
    bs = min(args.batch_size, len(x_train))

    def batches(epoch):
        g = torch.Generator().manual_seed(args.seed * 1000003 + epoch)
        perm = torch.randperm(len(x_train), generator=g)
        for i in range(0, len(perm) - bs + 1, bs):
            j = perm[i:i + bs]
            yield x_train[j], y_train[j]

    def loss_fn(net, batch):
        x, y = batch[0].to(device), batch[1].to(device)
        pred = net(x)
        loss = torch.nn.functional.mse_loss(pred, y)
        parts = {"loss_mse": loss.detach()}
        if args.bone_loss > 0:
            # bone lengths in metres from de-standardised poses
            lb = bone_length_loss((pred * std + mean) / 1000.0, (y * std + mean) / 1000.0, bones)
            loss = loss + args.bone_loss * lb
            parts["loss_bone"] = lb.detach()
        return loss, parts

    t_train = time.time()
    history = fit(model, batches, loss_fn, epochs=args.epochs, steps_per_epoch=len(x_train) // bs,
                  lr=args.lr, weight_decay=args.weight_decay, max_steps=args.max_steps,
                  time_budget=args.time_budget, device=device, log=log,
                  grad_clip=args.grad_clip)
    train_s = time.time() - t_train
    pred = predict(model, te_in.reshape(len(te_in), -1), in_norm, out_norm, device).reshape(-1, K, 3)
    metrics = evaluate(pred, te3, test_actions)
    log(f"lift3d test: MPJPE {metrics['mpjpe']:.1f} mm, P-MPJPE {metrics['p_mpjpe']:.1f} mm, "
        f"N-MPJPE {metrics['n_mpjpe']:.1f} mm over {metrics['num_samples']} poses")
    torch.save({"model": model.state_dict(), "config": args.config, "overrides": overrides,
                "num_keypoints": K, "in_mean": torch.from_numpy(in_norm.mean),
                "in_std": torch.from_numpy(in_norm.std), "out_mean": torch.from_numpy(out_norm.mean),
                "out_std": torch.from_numpy(out_norm.std), "root": list(root),
                "center_2d": center}, os.path.join(args.out, "model.pth"))
    out = save_run(args.out, {"task": "lift3d", "data": args.data, "metrics": metrics,
                              "train_s": train_s}, history, args=args)
    out["pred"] = pred
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    run(argv)
    return 0


__all__ = ["H36M_BONES", "H36M_KEEP_32", "H36M_NAMES", "H36M_PARENTS", "Standardizer",
           "bone_length_loss", "evaluate", "fit_camera", "h36m_arrays", "load_h36m_npz", "main",
           "predict", "prepare_inputs", "run", "synthetic_lifting_data"]
