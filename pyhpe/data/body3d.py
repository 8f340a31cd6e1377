"""Readers for the 3-D datasets: Human3.6M and MPI-INF-3DHP (mmpose's npz + cameras layout),
CMU Panoptic (``hdPose3d_stage1_coco19`` + calibration json) and AMASS / MoSh pose sequences.

They return arrays (dicts of numpy arrays and lists), never run pickled code (the cameras
``.pkl`` files are read by :func:`pyhpe.data.safe_npz.load_pickle_safely`) and refuse a file in
another format with an error naming it.

* :func:`read_h36m` / :func:`read_mpi_inf_3dhp`: ``imgname`` (N,), ``center`` (N, 2),
  ``scale`` (N,) (box side / 200), ``part`` (N, 17, 3) image pixels + visibility, ``S``
  (N, 17, 4) camera-frame metres + visibility; joints in :data:`pyhpe.keypoints.H36M17` /
  :data:`pyhpe.keypoints.MPI_INF_3DHP17` order. The image name gives subject, action /
  sequence, camera and frame; with the cameras file each frame gets its intrinsics (``f``,
  ``c``; H36M also ``k``, ``p``) and, where given, extrinsics (``R``, ``T``: world =
  ``R.T @ X_cam + T``, millimetres for H36M, as in mmpose's camera files).
* :func:`read_panoptic_body3d`: per frame the bodies' ids and ``joints19`` (x, y, z cm, world
  frame, confidence; -1 where a joint is missing), :data:`pyhpe.keypoints.PANOPTIC19` order;
  :func:`read_panoptic_calibration` and :func:`project_panoptic` (OpenCV model with distortion).
* :func:`read_amass`: SMPL(-H) axis-angle pose sequences from AMASS npz files (``poses``,
  ``betas``, ``trans``, ``mocap_framerate``, ``gender``) or mmpose's MoSh files (``pose``,
  ``shape``).
"""
from __future__ import annotations

import glob
import os
import re
import zipfile
from typing import Dict, List, Optional, Sequence

import numpy as np

from .jsonio import read_json
from .safe_npz import load_npz_member, load_pickle_safely


def _npz_arrays(path, keys: Sequence[str], who: str, optional: Sequence[str] = ()) -> Dict:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
    except FileNotFoundError:
        raise FileNotFoundError(f"{who}: no such file {str(path)!r}") from None
    except (zipfile.BadZipFile, OSError) as e:
        raise ValueError(f"{who}: {str(path)!r} is not an npz file ({e})") from e
    missing = [k for k in keys if k not in names]
    if missing:
        raise ValueError(f"{who}: {str(path)!r} lacks {missing} (has {sorted(names)}): not the "
                         f"expected npz layout")
    return {k: load_npz_member(str(path), k, who=who) for k in list(keys) + list(optional)
            if k in names}


def _check_body3d(d: Dict, k: int, who: str, path) -> None:
    n = len(d["imgname"])
    shapes = {"center": (n, 2), "scale": (n,), "part": (n, k, 3), "S": (n, k, 4)}
    for key, shape in shapes.items():
        if key in d and d[key].shape != shape:
            raise ValueError(f"{who}: {str(path)!r}: {key!r} has shape {d[key].shape}, expected "
                             f"{shape} ({k} joints)")


def _cameras(path, who: str) -> Dict:
    cams = load_pickle_safely(str(path), who=who)
    if not isinstance(cams, dict) or not all(isinstance(v, dict) for v in cams.values()):
        raise ValueError(f"{who}: {str(path)!r} is not a cameras file (a dict of per-camera "
                         f"dicts)")
    return cams


def _camera_arrays(cams: Dict, keys: List, who: str) -> Dict[str, np.ndarray]:
    """Stack each frame's camera parameters: f (N, 2), c (N, 2), and R (N, 3, 3), T (N, 3),
    k (N, 3), p (N, 2) where every camera has them."""
    missing = sorted({str(k) for k in keys if k not in cams})
    if missing:
        raise ValueError(f"{who}: the cameras file has no camera {missing[:5]}")
    out = {}
    for name, shape in (("f", (2,)), ("c", (2,)), ("R", (3, 3)), ("T", (3,)), ("k", (3,)),
                        ("p", (2,))):
        if all(name in cams[k] for k in keys):
            out[name] = np.stack([np.asarray(cams[k][name], np.float64).reshape(shape)
                                  for k in keys]) if keys else np.zeros((0,) + shape)
    if "f" not in out or "c" not in out:
        raise ValueError(f"{who}: the cameras file lacks the intrinsics 'f' and 'c'")
    out["w"] = np.array([float(cams[k].get("w", 0)) for k in keys])
    out["h"] = np.array([float(cams[k].get("h", 0)) for k in keys])
    return out


def project_pinhole(points: np.ndarray, f: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Camera-frame points ``(..., K, 3)`` -> pixels ``(..., K, 2)`` with focal ``f`` and
    centre ``c`` (``(..., 2)``, broadcast over K); no distortion."""
    p = np.asarray(points, np.float64)
    f = np.asarray(f, np.float64)[..., None, :]
    c = np.asarray(c, np.float64)[..., None, :]
    return f * p[..., :2] / p[..., 2:3] + c


def project_h36m(points: np.ndarray, f: np.ndarray, c: np.ndarray, k: np.ndarray,
                 p: np.ndarray) -> np.ndarray:
    """Camera-frame points ``(..., K, 3)`` -> pixels ``(..., K, 2)`` with Human3.6M's camera
    model: radial ``k`` (3,) and tangential ``p`` (2,) distortion (the dataset's
    ``ProjectPointRadial``); ``f``, ``c``, ``k``, ``p`` broadcast over K as ``(..., n)``."""
    X = np.asarray(points, np.float64)
    f, c, k, p = (np.asarray(v, np.float64)[..., None, :] for v in (f, c, k, p))
    xy = X[..., :2] / X[..., 2:3]
    r2 = (xy ** 2).sum(-1)
    radial = 1 + k[..., 0] * r2 + k[..., 1] * r2 ** 2 + k[..., 2] * r2 ** 3
    tan = p[..., 0] * xy[..., 1] + p[..., 1] * xy[..., 0]
    xyd = xy * (radial + tan)[..., None] + np.stack([p[..., 1], p[..., 0]], -1) * r2[..., None]
    return f * xyd + c


# ---------------------------------------------------------------------------- Human3.6M
_H36M_NAME = re.compile(r"(?:.*/)?(S\d+)_(.+)\.(\d+)_(\d+)\.\w+$")


def read_h36m(npz_path, cameras=None, image_root: Optional[str] = None) -> Dict:
    """Human3.6M in mmpose's npz layout (``test_h36m_body3d.npz`` / ``h36m_*.npz``: ``imgname``
    'S1/S1_Directions_1.54138969/S1_Directions_1.54138969_000001.jpg', ``center``, ``scale``,
    ``part`` (N, 17, 3), ``S`` (N, 17, 4)) with, given ``cameras`` (``cameras.pkl``: per
    (subject, camera id) ``R``, ``T``, ``f``, ``c``, ``k``, ``p``, ``w``, ``h``), each frame's
    camera. Adds ``subject``, ``action`` ('Directions_1'), ``camera`` ('54138969'), ``frame``
    (1-based, as in the name), ``image_path`` (under ``image_root``), and ``keypoints_2d``
    (N, 17, 2), ``keypoints_3d`` (N, 17, 3) camera-frame metres, ``visibility`` (N, 17)."""
    who = "read_h36m"
    d = _npz_arrays(npz_path, ("imgname", "part", "S"), who, optional=("center", "scale"))
    _check_body3d(d, 17, who, npz_path)
    meta = {"subject": [], "action": [], "camera": [], "frame": []}
    for name in d["imgname"]:
        m = _H36M_NAME.match(str(name))
        if not m:
            raise ValueError(f"{who}: image name {str(name)!r} is not 'S<n>_<action>.<camera>_"
                             f"<frame>.jpg'")
        for key, v in zip(meta, (m.group(1), m.group(2), m.group(3), int(m.group(4)))):
            meta[key].append(v)
    out = _frames(d, meta, image_root, "h36m17")
    if cameras is not None:
        cams = _cameras(cameras, who)
        keys = [(s, c) for s, c in zip(meta["subject"], meta["camera"])]
        out["cameras"] = _camera_arrays(cams, keys, who)
    return out


def _frames(d: Dict, meta: Dict, image_root: Optional[str], keypoint_set: str) -> Dict:
    """The common fields of mmpose's body-3d npz frames: the arrays, the per-frame ``meta``,
    ``keypoints_2d`` (pixels), ``keypoints_3d`` (camera-frame metres), ``visibility`` (labelled
    in both), ``image_path`` and the ``keypoint_set`` name."""
    out = dict(d)
    out.update({k: np.array(v) for k, v in meta.items()})
    out["keypoints_2d"] = d["part"][..., :2].astype(np.float64)
    out["keypoints_3d"] = d["S"][..., :3].astype(np.float64)
    out["visibility"] = np.minimum(d["part"][..., 2], d["S"][..., 3]).astype(np.float64)
    root = "" if image_root is None else str(image_root)
    out["image_path"] = np.array([os.path.join(root, str(n)) for n in d["imgname"]])
    out["keypoint_set"] = keypoint_set
    return out


# ---------------------------------------------------------------------------- MPI-INF-3DHP
_3DHP_TRAIN = re.compile(r"(?:.*/)?(S\d+)_(Seq\d+)_(Cam\d+)_(\d+)\.\w+$")
_3DHP_TEST = re.compile(r"(?:.*/)?(TS\d+)_(\d+)\.\w+$")


def read_mpi_inf_3dhp(npz_path, cameras=None, image_root: Optional[str] = None) -> Dict:
    """MPI-INF-3DHP in mmpose's npz layout (as :func:`read_h36m`; image names
    'S4_Seq2_Cam0_001033.jpg' (training) or 'TS1_002001.jpg' (test)) with, given ``cameras``
    (``cameras_train.pkl``: per 'S1_Seq1_Cam0' ``R``, ``T``, ``f``, ``c``; ``cameras_test.pkl``:
    per 'TS1' ``f``, ``c``), each frame's camera. Adds ``subject``, ``sequence`` ('' for test),
    ``camera`` (the cameras file's key), ``frame``, ``image_path``, ``keypoints_2d``,
    ``keypoints_3d`` (camera-frame metres), ``visibility``."""
    who = "read_mpi_inf_3dhp"
    d = _npz_arrays(npz_path, ("imgname", "part", "S"), who, optional=("center", "scale"))
    _check_body3d(d, 17, who, npz_path)
    meta = {"subject": [], "sequence": [], "camera": [], "frame": []}
    for name in d["imgname"]:
        name = str(name)
        m = _3DHP_TRAIN.match(name)
        if m:
            s, q, c, fr = m.groups()
            vals = (s, q, f"{s}_{q}_{c}", int(fr))
        else:
            m = _3DHP_TEST.match(name)
            if not m:
                raise ValueError(f"{who}: image name {name!r} is neither 'S<n>_Seq<n>_Cam<n>_"
                                 f"<frame>.jpg' nor 'TS<n>_<frame>.jpg'")
            vals = (m.group(1), "", m.group(1), int(m.group(2)))
        for key, v in zip(meta, vals):
            meta[key].append(v)
    out = _frames(d, meta, image_root, "mpi_inf_3dhp17")
    if cameras is not None:
        out["cameras"] = _camera_arrays(_cameras(cameras, who), list(meta["camera"]), who)
    return out


def body3d_to_coco(d: Dict) -> Dict:
    """A :func:`read_h36m` / :func:`read_mpi_inf_3dhp` result as a COCO dict for 2-D training
    and evaluation: one image per frame (``file_name`` = ``imgname``; ``width`` / ``height``
    from the cameras when read), one person per image with the square box of side
    ``scale * 200`` around ``center`` (mmpose's convention), ``keypoints`` from ``part``
    (visibility 2 where labelled) and ``keypoints_3d`` (K * 4: camera-frame metres and
    visibility) kept on the annotation; the category names the dataset's keypoint set."""
    from ..keypoints import get_keypoint_set
    kset = get_keypoint_set(d.get("keypoint_set", "h36m17"))
    n = len(d["imgname"])
    cams = d.get("cameras")
    images, anns = [], []
    for i in range(n):
        w = int(cams["w"][i]) if cams is not None else 0
        h = int(cams["h"][i]) if cams is not None else 0
        images.append({"id": i + 1, "file_name": str(d["imgname"][i]), "width": w, "height": h})
        kp = np.concatenate([d["keypoints_2d"][i], 2.0 * (d["visibility"][i] > 0)[:, None]], 1)
        if "center" in d and "scale" in d:
            side = float(d["scale"][i]) * 200.0
            cx, cy = (float(v) for v in d["center"][i])
            bbox = [cx - side / 2, cy - side / 2, side, side]
        else:
            lab = kp[kp[:, 2] > 0, :2]
            (x0, y0), (x1, y1) = lab.min(0), lab.max(0)
            bbox = [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
        s3 = np.concatenate([d["keypoints_3d"][i], d["visibility"][i][:, None]], 1)
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0,
                     "bbox": bbox, "area": bbox[2] * bbox[3],
                     "keypoints": kp.reshape(-1).tolist(),
                     "num_keypoints": int((kp[:, 2] > 0).sum()),
                     "keypoints_3d": s3.reshape(-1).tolist()})
    cat = {"id": 1, "name": "person", "supercategory": "person",
           "keypoints": list(kset.names), "skeleton": [[a + 1, b + 1] for a, b in kset.skeleton]}
    return {"images": images, "annotations": anns, "categories": [cat]}


def body3d_lifting_arrays(d: Dict):
    """A :func:`read_h36m` / :func:`read_mpi_inf_3dhp` result as lifting pairs: (pose_2d
    (N, K, 2) pixels, pose_3d (N, K, 3) root-relative millimetres, visibility (N, K), actions
    (N,): H36M's action without the sub-action number, 3DHP's subject) for
    :class:`pyhpe.data.LiftingDataset`."""
    from ..keypoints import get_keypoint_set
    kset = get_keypoint_set(d.get("keypoint_set", "h36m17"))
    root = kset.parents.index(-1)
    X = np.asarray(d["keypoints_3d"], np.float64)
    p3 = (X - X[:, root:root + 1]) * 1000.0
    if "action" in d:
        acts = np.array([re.sub(r"_\d+$", "", str(a)) for a in d["action"]])
    else:
        acts = np.asarray(d["subject"])
    return (np.asarray(d["keypoints_2d"], np.float32), p3.astype(np.float32),
            np.asarray(d["visibility"], np.float32), acts)


# ---------------------------------------------------------------------------- CMU Panoptic
def read_panoptic_calibration(path) -> Dict[str, Dict[str, np.ndarray]]:
    """A Panoptic ``calibration_<seq>.json`` -> ``{name ('00_03'): {"type", "resolution",
    "K" (3, 3), "dist" (5,), "R" (3, 3), "t" (3,) cm}}`` (world -> camera: ``R X + t``)."""
    who = "read_panoptic_calibration"
    data = read_json(path, who)
    if not isinstance(data, dict) or not isinstance(data.get("cameras"), list):
        raise ValueError(f"{who}: {str(path)!r} has no 'cameras' list: not a Panoptic "
                         f"calibration file")
    out = {}
    for cam in data["cameras"]:
        try:
            out[str(cam["name"])] = {
                "type": cam.get("type", ""), "resolution": tuple(cam.get("resolution", ())),
                "K": np.asarray(cam["K"], np.float64).reshape(3, 3),
                "dist": np.asarray(cam.get("distCoef", np.zeros(5)), np.float64).reshape(-1),
                "R": np.asarray(cam["R"], np.float64).reshape(3, 3),
                "t": np.asarray(cam["t"], np.float64).reshape(3)}
        except (KeyError, ValueError) as e:
            raise ValueError(f"{who}: camera {cam.get('name')!r} in {str(path)!r} lacks or has "
                             f"a malformed {e}") from e
    return out


def project_panoptic(points: np.ndarray, cam: Dict[str, np.ndarray]) -> np.ndarray:
    """World points ``(..., 3)`` (cm) -> pixels ``(..., 2)`` in ``cam`` (a
    :func:`read_panoptic_calibration` entry), OpenCV's model with k1 k2 p1 p2 k3 distortion
    (the panoptic toolbox's projectPoints)."""
    X = np.asarray(points, np.float64)
    Xc = X @ cam["R"].T + cam["t"]
    x, y = Xc[..., 0] / Xc[..., 2], Xc[..., 1] / Xc[..., 2]
    k = np.zeros(5)
    k[:min(5, len(cam["dist"]))] = cam["dist"][:5]
    r2 = x * x + y * y
    radial = 1 + k[0] * r2 + k[1] * r2 ** 2 + k[4] * r2 ** 3
    xd = x * radial + 2 * k[2] * x * y + k[3] * (r2 + 2 * x * x)
    yd = y * radial + k[2] * (r2 + 2 * y * y) + 2 * k[3] * x * y
    K = cam["K"]
    return np.stack([K[0, 0] * xd + K[0, 1] * yd + K[0, 2], K[1, 1] * yd + K[1, 2]], -1)


def read_panoptic_body3d(src) -> List[Dict]:
    """CMU Panoptic 3-D bodies: a ``hdPose3d_stage1_coco19`` folder, one ``body3DScene_*.json``
    or a list of them -> per frame (sorted) ``{"frame" (int, from the file name), "univTime",
    "ids" (P,), "joints" (P, 19, 3) world cm, "scores" (P, 19) (-1: missing joint)}`` in
    :data:`pyhpe.keypoints.PANOPTIC19` order."""
    who = "read_panoptic_body3d"
    if isinstance(src, (list, tuple)):
        files = [str(s) for s in src]
    elif os.path.isdir(src):
        files = sorted(glob.glob(os.path.join(str(src), "body3DScene_*.json")))
        if not files:
            raise ValueError(f"{who}: folder {str(src)!r} holds no body3DScene_*.json files")
    else:
        files = [str(src)]
    frames = []
    for path in files:
        data = read_json(path, who)
        if not isinstance(data, dict) or "bodies" not in data:
            raise ValueError(f"{who}: {path!r} has no 'bodies': not a Panoptic body3DScene file")
        ids, joints = [], []
        for body in data["bodies"]:
            j = np.asarray(body.get("joints19", []), np.float64)
            if j.size != 19 * 4:
                raise ValueError(f"{who}: {path!r}: body {body.get('id')} has {j.size} values in "
                                 f"'joints19', expected 19 x 4 (x, y, z, confidence)")
            ids.append(int(body.get("id", len(ids))))
            joints.append(j.reshape(19, 4))
        j = np.stack(joints) if joints else np.zeros((0, 19, 4))
        m = re.search(r"(\d+)\.json$", path)
        frames.append({"frame": int(m.group(1)) if m else len(frames),
                       "univTime": float(data.get("univTime", np.nan)),
                       "ids": np.asarray(ids, np.int64), "joints": j[..., :3],
                       "scores": j[..., 3], "file": path})
    return sorted(frames, key=lambda fr: fr["frame"])


# ---------------------------------------------------------------------------- AMASS / MoSh
def read_amass(path) -> Dict:
    """An AMASS (``poses`` (T, 3J), ``betas``, ``trans`` (T, 3), ``mocap_framerate``,
    ``gender``) or MoSh (mmpose's ``pose`` (T, 72), ``shape`` (T, 10)) npz -> ``{"poses"
    (T, J, 3) axis-angle radians (SMPL: J = 24, SMPL-H: 52), "betas", "trans" (T, 3) or None,
    "fps" or None, "gender" or None}``."""
    who = "read_amass"
    try:
        with zipfile.ZipFile(path) as zf:
            names = {n[:-4] for n in zf.namelist() if n.endswith(".npy")}
    except FileNotFoundError:
        raise FileNotFoundError(f"{who}: no such file {str(path)!r}") from None
    except (zipfile.BadZipFile, OSError) as e:
        raise ValueError(f"{who}: {str(path)!r} is not an npz file ({e})") from e
    pose_key = "poses" if "poses" in names else "pose" if "pose" in names else None
    if pose_key is None:
        raise ValueError(f"{who}: {str(path)!r} has neither 'poses' (AMASS) nor 'pose' (MoSh) "
                         f"(has {sorted(names)})")
    get = lambda k: load_npz_member(str(path), k, who=who) if k in names else None  # noqa: E731
    poses = np.asarray(get(pose_key), np.float64)
    if poses.ndim != 2 or poses.shape[1] % 3:
        raise ValueError(f"{who}: {pose_key!r} in {str(path)!r} has shape {poses.shape}, "
                         f"expected (frames, 3 * joints)")
    betas = get("betas") if "betas" in names else get("shape")
    trans = get("trans")
    if trans is not None and np.shape(trans) != (len(poses), 3):
        raise ValueError(f"{who}: 'trans' has shape {np.shape(trans)}, expected "
                         f"({len(poses)}, 3)")
    fps = get("mocap_framerate")
    gender = get("gender")
    return {"poses": poses.reshape(len(poses), -1, 3),
            "betas": None if betas is None else np.asarray(betas, np.float64),
            "trans": None if trans is None else np.asarray(trans, np.float64),
            "fps": None if fps is None else float(np.asarray(fps)),
            "gender": None if gender is None else str(np.asarray(gender))}


__all__ = ["body3d_lifting_arrays", "body3d_to_coco", "project_h36m", "project_panoptic",
           "project_pinhole",
           "read_amass", "read_h36m", "read_mpi_inf_3dhp", "read_panoptic_body3d",
           "read_panoptic_calibration"]
