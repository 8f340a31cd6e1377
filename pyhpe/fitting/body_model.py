"""The SMPL body model through ``smplx`` (PyPI), loaded from a file the user passes.

The SMPL model files are licensed (https://smpl.is.tue.mpg.de): pyhpe never downloads them and
never reaches the network; :func:`load_body_model` reads the path it is given, in the official
layouts:

* ``.pkl`` -- SMPL's release (``basicModel_neutral_lbs_10_207_0_v1.0.0.pkl``, ``SMPL_NEUTRAL.pkl``
  ...): a pickled dict of ``v_template`` (V, 3), ``shapedirs`` (V, 3, S), ``posedirs``
  (V, 3, 207), ``J_regressor`` (24, V; a ``scipy.sparse`` matrix in the release), ``weights``
  (V, 24), ``kintree_table`` (2, 24), ``f`` (F, 3). It is unpickled with a restricted unpickler
  (numpy arrays, scipy sparse matrices, plain containers); files that still hold ``chumpy``
  objects are refused with a pointer to smplx's ``tools/clean_ch.py``.
* ``.npz`` -- the same arrays saved with ``np.savez`` (read with ``allow_pickle=False``).

The arrays go to ``smplx.SMPL`` through its ``data_struct`` argument, so smplx's own
``pickle.load`` of the path never runs. :func:`write_synthetic_smpl` writes a small model in the
same layout (a stick figure of rings of vertices around SMPL's 24-joint tree) for tests and
examples.

Joints: the 24 SMPL joints followed by 5 face points read off vertices (nose, right eye, left
eye, right ear, left ear; smplx's ``VertexJointSelector``), 29 in all. :data:`KEYPOINT_MAPS`
maps them to keypoint layouts (``coco`` 17, ``smpl`` 24).
"""
from __future__ import annotations

import contextlib
import io
import os
import pickle
import zipfile
from typing import Dict, Optional

import numpy as np
import torch
from torch import nn

from pyhpe.data.safe_npz import _NumpyOnlyUnpickler

SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
SMPL_JOINT_NAMES = ("pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee",
                    "spine2", "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot",
                    "neck", "left_collar", "right_collar", "head", "left_shoulder",
                    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                    "left_hand", "right_hand")
FACE_POINTS = ("nose", "reye", "leye", "rear", "lear")          # model joints 24..28
NUM_MODEL_JOINTS = 24 + len(FACE_POINTS)

#: keypoint layout -> model joint index per keypoint (the order of the 2-D input)
KEYPOINT_MAPS: Dict[str, tuple] = {
    # COCO-17: nose, eyes, ears (vertex points), shoulders, elbows, wrists, hips, knees, ankles
    "coco": (24, 26, 25, 28, 27, 16, 17, 18, 19, 20, 21, 1, 2, 4, 5, 7, 8),
    "smpl": tuple(range(24)),
}
#: per layout: (left shoulder, right shoulder, left hip, right hip) keypoint indices -- the
#: torso used by the camera initialisation (lengths shoulder->hip, as SMPLify / SMPLify-X)
TORSO_KEYPOINTS: Dict[str, tuple] = {"coco": (5, 6, 11, 12), "smpl": (16, 17, 1, 2)}

_SPARSE_MODULES = ("scipy.sparse.csc", "scipy.sparse._csc", "scipy.sparse.csr",
                   "scipy.sparse._csr", "scipy.sparse._arrays")


class _ModelUnpickler(_NumpyOnlyUnpickler):
    """Numpy arrays, plain containers and scipy sparse matrices; nothing else."""

    def find_class(self, module, name):
        if module in _SPARSE_MODULES and name in ("csc_matrix", "csr_matrix", "csc_array",
                                                  "csr_array"):
            return super(_NumpyOnlyUnpickler, self).find_class(module, name)
        if (module, name) == ("_codecs", "encode"):     # protocol-2 bytes (str -> latin1)
            return super(_NumpyOnlyUnpickler, self).find_class(module, name)
        if module.startswith("chumpy"):
            raise pickle.UnpicklingError(
                "the file holds chumpy objects (the original SMPL release); convert it once with "
                "smplx's tools/clean_ch.py (or save its arrays with np.savez) and pass that file")
        return super().find_class(module, name)


_REQUIRED = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
#: what a damaged or foreign pickle raises while it is read
_READ_ERRORS = (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError,
                TypeError, IndexError, KeyError)


def _unpickle(path, who: str, unpickler):
    """The object of the pickle file ``path`` read by the restricted ``unpickler`` class; a
    ``ValueError`` naming ``who`` when it cannot be read."""
    with open(path, "rb") as f:
        try:
            return unpickler(f, encoding="latin1").load()
        except _READ_ERRORS as e:
            raise ValueError(f"{who}: cannot read {path!r}: {e}") from e


def _check_shapes(arrays: Dict[str, np.ndarray], checks: Dict[str, tuple], who: str, path,
                  layout: str) -> None:
    """Raise a ``ValueError`` when an array's shape differs from ``checks[name]`` (``None``:
    any size on that axis)."""
    for k, want in checks.items():
        got = arrays[k].shape
        if len(got) != len(want) or any(w is not None and w != g for w, g in zip(want, got)):
            raise ValueError(f"{who}: {path!r}: {k!r} has shape {got}, expected "
                             f"{tuple('*' if w is None else w for w in want)} ({layout} layout)")


def _ring_points(center, axis, r, n: int) -> np.ndarray:
    """``n`` points on the circle of radius ``r`` around ``center`` normal to ``axis``
    (the synthetic models' vertices)."""
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    axis = axis / (np.linalg.norm(axis) + 1e-12)
    a = np.array([0.0, 0.0, 1.0]) if abs(axis[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = np.cross(axis, a)
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    return center + r * (np.cos(ang)[:, None] * u + np.sin(ang)[:, None] * v)


def _shape_fields(v_template: np.ndarray, num_betas: int, num_dirs: int, rng) -> np.ndarray:
    """``(V, 3, num_dirs)`` shape directions of the synthetic models, the first ``num_betas``
    filled: overall scale, height, width, then small random linear fields."""
    shapedirs = np.zeros((len(v_template), 3, num_dirs))
    fields = [np.eye(3) * 0.06, np.diag([0.0, 0.05, 0.0]), np.diag([0.05, 0.0, 0.03])]
    for k in range(num_betas):
        A = fields[k] if k < len(fields) else rng.normal(0, 0.01, (3, 3))
        shapedirs[:, :, k] = v_template @ A.T
    return shapedirs


def _model_path(who: str, path, model: str, url: str, example: str) -> str:
    """``path`` of a licensed ``model`` file (``url``), checked to name an existing file."""
    if path is None or str(path) == "":
        raise ValueError(f"{who}: model_path is required: pass the path of your {model} model "
                         f"file (licensed: {url}; pyhpe never downloads it)")
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{who}: model_path {path!r} is a folder; pass the model file itself "
                         f"(e.g. {example})")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{who}: model_path {path!r} does not exist (the {model} model "
                                f"files are licensed and never downloaded: download them from "
                                f"{url} and pass their path)")
    return path


def read_model_file(path) -> Dict[str, np.ndarray]:
    """The arrays of an SMPL model file (``.pkl`` or ``.npz``, see the module docstring),
    checked for the official layout. Never touches the network."""
    who = "pyhpe.fitting.read_model_file"
    path = _model_path(who, path, "SMPL", "https://smpl.is.tue.mpg.de", "SMPL_NEUTRAL.pkl")
    if zipfile.is_zipfile(path):
        with np.load(path, allow_pickle=False) as z:
            try:
                data = {k: z[k] for k in z.files}
            except ValueError as e:
                raise ValueError(f"{who}: {path!r}: {e} (object arrays are not read)") from e
    else:
        data = _unpickle(path, who, _ModelUnpickler)
        if not isinstance(data, dict):
            raise ValueError(f"{who}: {path!r} holds a {type(data).__name__}, not the dict of "
                             f"an SMPL model file")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ValueError(f"{who}: {path!r} lacks {missing} (an SMPL model file has "
                         f"{list(_REQUIRED)})")
    out = {}
    for k in _REQUIRED:
        v = data[k]
        if hasattr(v, "toarray"):               # scipy sparse J_regressor
            v = v.toarray()
        out[k] = np.asarray(v)
    V = out["v_template"].shape[0]
    checks = {"v_template": (V, 3), "shapedirs": (V, 3, None), "posedirs": (V, 3, 207),
              "J_regressor": (24, V), "weights": (V, 24), "kintree_table": (2, 24),
              "f": (None, 3)}
    _check_shapes(out, checks, who, path, "SMPL")
    return out


class BodyModel(nn.Module):
    """SMPL (``smplx.SMPL``) with its joints in pyhpe's order: 24 SMPL joints + 5 face points.

    ``forward(global_orient (B, 3), body_pose (B, 69), betas (B, S), transl (B, 3))`` ->
    ``(vertices (B, V, 3), joints (B, 29, 3))``; axis-angle radians, metres, the model's frame
    (y up, z forward) moved by ``transl``."""

    model_type = "smpl"
    body_pose_dim = 69
    num_joints = NUM_MODEL_JOINTS
    keypoint_maps = KEYPOINT_MAPS
    torso_keypoints = TORSO_KEYPOINTS
    keypoint_parts: Dict[str, Dict[str, tuple]] = {}
    default_ignore: Dict[str, tuple] = {}

    def __init__(self, arrays: Dict[str, np.ndarray], num_betas: int = 10,
                 vertex_ids: Optional[Dict[str, int]] = None, dtype=torch.float32):
        super().__init__()
        try:
            import smplx
        except ImportError as e:                 # pragma: no cover - optional dependency
            raise ImportError("pyhpe.fitting needs the body model package: pip install smplx "
                              "(or pip install pyhpe[smpl])") from e
        from smplx.utils import Struct
        from smplx.vertex_ids import vertex_ids as SMPLX_VERTEX_IDS
        V = arrays["v_template"].shape[0]
        if vertex_ids is None:
            if V != 6890:
                raise ValueError(f"pyhpe.fitting.BodyModel: the model has {V} vertices, not "
                                 f"SMPL's 6890: pass vertex_ids={{'nose', 'reye', 'leye', 'rear', "
                                 f"'lear'}} for its face points")
            vertex_ids = SMPLX_VERTEX_IDS["smplh"]
        missing = [k for k in FACE_POINTS if k not in vertex_ids]
        if missing:
            raise ValueError(f"pyhpe.fitting.BodyModel: vertex_ids lacks {missing}")
        bad = [k for k in FACE_POINTS if not 0 <= int(vertex_ids[k]) < V]
        if bad:
            raise ValueError(f"pyhpe.fitting.BodyModel: vertex_ids {bad} are outside the "
                             f"model's {V} vertices")
        num_betas = int(min(num_betas, arrays["shapedirs"].shape[-1]))
        struct = Struct(**arrays)
        with contextlib.redirect_stdout(io.StringIO()):    # smplx prints a 10-betas note
            self.smpl = smplx.SMPL("", data_struct=struct, num_betas=num_betas,
                                   create_betas=False, create_global_orient=False,
                                   create_body_pose=False, create_transl=False,
                                   vertex_ids={k: int(vertex_ids[k]) for k in FACE_POINTS},
                                   use_hands=False, use_feet_keypoints=False, dtype=dtype)
        self.num_betas = num_betas
        self.num_vertices = V
        self.parents = tuple(int(p) for p in SMPL_PARENTS)
        self.register_buffer("faces", torch.as_tensor(arrays["f"].astype(np.int64)),
                             persistent=False)

    @property
    def dtype(self):
        return self.smpl.v_template.dtype

    def forward(self, global_orient, body_pose, betas, transl):
        out = self.smpl(global_orient=global_orient, body_pose=body_pose, betas=betas,
                        transl=transl, return_verts=True)
        return out.vertices, out.joints

    def keypoint_map(self, layout: str) -> tuple:
        """Model joint per keypoint of ``layout``."""
        return tuple(self.keypoint_maps[layout])

    def rest_joints(self, betas=None):
        """Joints (24, 3) of the rest pose for ``betas`` (S,) (default: the template)."""
        v = self.smpl.v_template
        if betas is not None:
            v = v + torch.einsum("vcs,s->vc", self.smpl.shapedirs, betas)
        return self.smpl.J_regressor @ v


def load_body_model(model_path, *, num_betas: int = 10,
                    vertex_ids: Optional[Dict[str, int]] = None, dtype=torch.float32,
                    device=None) -> BodyModel:
    """A :class:`BodyModel` from an SMPL model file (see :func:`read_model_file`).

    ``vertex_ids``: the face points' vertices (``nose``, ``reye``, ``leye``, ``rear``,
    ``lear``); default smplx's for SMPL's 6890-vertex topology (required otherwise)."""
    model = BodyModel(read_model_file(model_path), num_betas=num_betas, vertex_ids=vertex_ids,
                      dtype=dtype)
    return model.to(device) if device is not None else model


# ------------------------------------------------------------------ a small synthetic model
# rest joint positions of a stick figure on SMPL's tree (metres, y up, +x the body's left)
_REST_JOINTS = np.array([
    [0.00, 0.00, 0.00], [0.07, -0.09, 0.00], [-0.07, -0.09, 0.00], [0.00, 0.11, -0.01],
    [0.10, -0.48, 0.01], [-0.10, -0.48, 0.01], [0.00, 0.25, 0.01], [0.09, -0.88, -0.03],
    [-0.09, -0.88, -0.03], [0.00, 0.31, 0.02], [0.11, -0.94, 0.10], [-0.11, -0.94, 0.10],
    [0.00, 0.53, 0.00], [0.08, 0.44, 0.00], [-0.08, 0.44, 0.00], [0.00, 0.62, 0.04],
    [0.18, 0.46, -0.01], [-0.18, 0.46, -0.01], [0.44, 0.46, -0.03], [-0.44, 0.46, -0.03],
    [0.69, 0.46, -0.02], [-0.69, 0.46, -0.02], [0.78, 0.46, -0.02], [-0.78, 0.46, -0.02]])


def write_synthetic_smpl(path, *, num_betas: int = 10, ring: int = 6, seed: int = 0) -> Dict:
    """Write a small SMPL-layout model file (``.npz`` or ``.pkl`` by the suffix) and return
    ``{"vertex_ids": {...face points...}, "num_vertices": V}``.

    Vertices are rings of ``ring`` points around each joint and at two places along each bone
    (skinned to the bone's joint, blended at the joints), five face points on the head; the
    joint regressor averages each joint's ring, so it reproduces the joints exactly. Shape
    directions: overall scale, height, width, limb length, then small random linear fields;
    pose directions small random. Not a human body: a test fixture in the official format."""
    rng = np.random.default_rng(seed)
    J = _REST_JOINTS
    parents = np.array(SMPL_PARENTS)
    children = {j: [c for c in range(24) if parents[c] == j] for j in range(24)}
    radius = np.full(24, 0.05)
    radius[[0, 3, 6, 9]] = 0.12
    radius[[1, 2, 4, 5]] = 0.07
    radius[[16, 17, 18, 19, 20, 21, 22, 23]] = 0.04
    radius[15] = 0.09
    verts, weights, jreg_rows = [], [], []

    def ring_points(center, axis, r):
        return _ring_points(center, axis, r, ring)

    def add(points, w):
        start = len(verts)
        verts.extend(points)
        weights.extend([w] * len(points))
        return list(range(start, start + len(points)))

    for j in range(24):                                     # a ring around each joint
        p = parents[j]
        axis = J[j] - J[p] if p >= 0 else np.array([0.0, 1.0, 0.0])
        w = np.zeros(24)
        if p >= 0 and children[j]:
            w[p], w[j] = 0.5, 0.5
        else:
            w[j] = 1.0
        jreg_rows.append(add(ring_points(J[j], axis, radius[j]), w))
    for j in range(24):                                     # two rings along each bone
        for c in children[j]:
            w = np.zeros(24)
            w[j] = 1.0
            for t in (0.33, 0.67):
                add(ring_points(J[j] + t * (J[c] - J[j]), J[c] - J[j],
                                0.5 * (radius[j] + radius[c])), w)
    head = np.zeros(24)
    head[15] = 1.0
    face = {"nose": [0.0, 0.66, 0.13], "reye": [-0.035, 0.70, 0.11],
            "leye": [0.035, 0.70, 0.11], "rear": [-0.08, 0.67, 0.03],
            "lear": [0.08, 0.67, 0.03]}
    vertex_ids = {k: add([np.array(v)], head)[0] for k, v in face.items()}
    v_template = np.asarray(verts, np.float64)
    V = len(v_template)
    J_regressor = np.zeros((24, V))
    for j, rows in enumerate(jreg_rows):
        J_regressor[j, rows] = 1.0 / len(rows)
    shapedirs = _shape_fields(v_template, num_betas, num_betas, rng)
    if num_betas > 3:                                       # limb length: |x| stretches arms
        shapedirs[:, 0, 3] = 0.05 * np.sign(v_template[:, 0]) * np.maximum(
            np.abs(v_template[:, 0]) - 0.15, 0.0)
    posedirs = rng.normal(0, 1e-3, (V, 3, 207))
    faces = []
    for rows in jreg_rows:                                  # a fan per joint ring
        faces.extend([rows[0], rows[i], rows[i + 1]] for i in range(1, len(rows) - 1))
    kintree = np.stack([np.where(parents < 0, 4294967295, parents), np.arange(24)]).astype(
        np.int64)
    arrays = {"v_template": v_template, "shapedirs": shapedirs, "posedirs": posedirs,
              "J_regressor": J_regressor, "weights": np.asarray(weights), "kintree_table": kintree,
              "f": np.asarray(faces, np.int64)}
    path = os.fspath(path)
    if path.endswith(".pkl"):
        try:                                                # the release's sparse regressor
            import scipy.sparse
            arrays["J_regressor"] = scipy.sparse.csc_matrix(J_regressor)
        except ImportError:                                 # pragma: no cover
            pass
        with open(path, "wb") as f:
            pickle.dump(arrays, f, protocol=2)
    else:
        np.savez(path, **arrays)
    return {"vertex_ids": vertex_ids, "num_vertices": V}


# ------------------------------------------------------------------ AMASS / MoSh sequences
def sequence_joints(model: BodyModel, poses, betas=None, trans=None, *, batch_size: int = 256):
    """Forward an AMASS / MoSh sequence (:func:`pyhpe.data.read_amass`'s ``poses`` (T, J, 3)
    axis-angle, ``betas`` (S,) or (T, S), ``trans`` (T, 3) or None) through the body model ->
    ``(joints (T, 29, 3), vertices (T, V, 3))`` as numpy, in the sequence's world frame.

    SMPL-H / SMPL-X poses (J = 52 / 55) keep their first 22 joints; SMPL's two hand joints are
    then zero (the finger articulation is not part of SMPL)."""
    poses = np.asarray(poses, np.float64)
    if poses.ndim == 2 and poses.shape[1] % 3 == 0:
        poses = poses.reshape(len(poses), -1, 3)
    if poses.ndim != 3 or poses.shape[2] != 3 or poses.shape[1] < 22:
        raise ValueError(f"pyhpe.fitting.sequence_joints: poses has shape {poses.shape}, "
                         f"expected (T, J >= 22, 3) axis-angle")
    T = len(poses)
    body = np.zeros((T, 24, 3))
    body[:, :22 if poses.shape[1] != 24 else 24] = poses[:, :22 if poses.shape[1] != 24 else 24]
    S = model.num_betas
    b = np.zeros((T, S))
    if betas is not None:
        betas = np.asarray(betas, np.float64)
        betas = np.broadcast_to(betas if betas.ndim == 2 else betas[None], (T, betas.shape[-1]))
        n = min(S, betas.shape[1])
        b[:, :n] = betas[:, :n]
    t = np.zeros((T, 3)) if trans is None else np.asarray(trans, np.float64).reshape(T, 3)
    dev, dt = model.smpl.v_template.device, model.dtype
    joints, verts = [], []
    with torch.no_grad():
        for s in range(0, T, batch_size):
            sl = slice(s, s + batch_size)
            f = lambda a: torch.as_tensor(a[sl], dtype=dt, device=dev)  # noqa: E731
            v, j = model(f(body[:, 0]), f(body[:, 1:].reshape(T, -1)), f(b), f(t))
            joints.append(j.cpu().numpy())
            verts.append(v.cpu().numpy())
    if not joints:
        return np.zeros((0, NUM_MODEL_JOINTS, 3)), np.zeros((0, model.num_vertices, 3))
    return np.concatenate(joints), np.concatenate(verts)


__all__ = ["BodyModel", "FACE_POINTS", "KEYPOINT_MAPS", "NUM_MODEL_JOINTS", "SMPL_JOINT_NAMES",
           "SMPL_PARENTS", "TORSO_KEYPOINTS", "load_body_model", "read_model_file",
           "sequence_joints", "write_synthetic_smpl"]
