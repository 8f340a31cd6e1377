"""SMPL-X (Pavlakos et al., CVPR 2019) through ``smplx`` (PyPI), loaded from the file the user
passes, with the keypoint layouts SMPLify-X fits: OpenPose body 25 + hands 2 x 21 + face 51
(+ 17 contour) and COCO-WholeBody 133.

The SMPL-X model files are licensed (https://smpl-x.is.tue.mpg.de): pyhpe never downloads
them. :class:`SMPLXModel` hands the path to ``smplx.SMPLX`` (the official ``SMPLX_*.npz`` /
``.pkl`` layout: ``v_template`` (V, 3), ``f``, ``shapedirs`` (V, 3, 10 + 10 or 300 + 100 betas
then expressions), ``posedirs`` (V, 3, 486), ``J_regressor`` (55, V), ``weights`` (V, 55),
``kintree_table`` (2, 55), ``hands_componentsl/r`` (45, 45), ``hands_meanl/r`` (45,),
``lmk_faces_idx`` (51,), ``lmk_bary_coords`` (51, 3), and for the face contour
``dynamic_lmk_faces_idx`` (79, 17), ``dynamic_lmk_bary_coords`` (79, 17, 3)) while smplx's
readers are restricted: its ``np.load`` runs with ``allow_pickle=False`` (object arrays such as
the release's ``joint2num`` / ``part2num`` dicts are skipped, smplx does not use them) and its
``pickle.load`` with the restricted unpickler of :mod:`.body_model`.

Model joints (smplx's order): the 55 skeleton joints (22 body, jaw, eyes, 15 per hand), then
vertex points nose, right eye, left eye, right ear, left ear (55..59), feet (left big toe,
small toe, heel, right ...; 60..65), finger tips (left thumb .. pinky, right ...; 66..75), the
51 face landmarks (76..126) and with ``use_face_contour`` the 17 contour landmarks (127..143).
:data:`SMPLX_KEYPOINT_MAPS` maps them to the input layouts (``-1``: no model point, weight 0).

:func:`write_synthetic_smplx` writes a small model (a few hundred vertices) in the official npz
layout that ``smplx.create(path, model_type="smplx")`` loads, for tests and examples.
"""
from __future__ import annotations

import contextlib
import io
import os
import pickle
import threading
import zipfile
from typing import Dict, Optional

import numpy as np
import torch
from torch import nn

from .body_model import (_READ_ERRORS, _check_shapes, _model_path, _ModelUnpickler,
                         _ring_points, _shape_fields)

# ------------------------------------------------------------------ keypoint layouts
#: OpenPose BODY_25 -> SMPL-X joints (SMPLify-X's ``smpl_to_openpose``; MidHip = pelvis,
#: Neck = neck joint; both and the hips are ignored by default as there)
OPENPOSE_BODY25 = (55, 12, 17, 19, 21, 16, 18, 20, 0, 2, 5, 8, 1, 4, 7, 56, 57, 58, 59, 60,
                   61, 62, 63, 64, 65)
#: a 21-point hand (OpenPose / COCO-WholeBody order: wrist, thumb 1-4, index 1-4, middle 1-4,
#: ring 1-4, pinky 1-4; the 4th point of each finger is its tip vertex)
OPENPOSE_LHAND = (20, 37, 38, 39, 66, 25, 26, 27, 67, 28, 29, 30, 68, 34, 35, 36, 69, 31, 32,
                  33, 70)
OPENPOSE_RHAND = (21, 52, 53, 54, 71, 40, 41, 42, 72, 43, 44, 45, 73, 49, 50, 51, 74, 46, 47,
                  48, 75)
#: the 51 inner face landmarks (68-point iBUG points 17..67: brows, nose, eyes, mouth)
FACE51 = tuple(range(76, 127))
#: the 17 contour landmarks (iBUG points 0..16), model points only with ``use_face_contour``
FACE_CONTOUR17 = tuple(range(127, 144))
#: COCO-17 body order -> SMPL-X (nose, eyes, ears are vertex points)
COCO17_SMPLX = (55, 57, 56, 59, 58, 16, 17, 18, 19, 20, 21, 1, 2, 4, 5, 7, 8)
#: COCO-WholeBody feet (left big toe, small toe, heel, right ...)
FEET6_SMPLX = (60, 61, 62, 63, 64, 65)

#: layout -> SMPL-X model point per keypoint, the order of the 2-D input. ``openpose118``:
#: OpenPose body 25, left hand 21, right hand 21, face 51 (SMPLify-X's input without the
#: contour); ``openpose135`` adds the 17 contour points; ``coco_wholebody`` (133): body 17,
#: feet 6, face 68 (contour 17 + inner 51), left hand 21, right hand 21; ``coco``: body 17.
SMPLX_KEYPOINT_MAPS: Dict[str, tuple] = {
    "coco": COCO17_SMPLX,
    "coco_wholebody": COCO17_SMPLX + FEET6_SMPLX + FACE_CONTOUR17 + FACE51 + OPENPOSE_LHAND
    + OPENPOSE_RHAND,
    "openpose118": OPENPOSE_BODY25 + OPENPOSE_LHAND + OPENPOSE_RHAND + FACE51,
    "openpose135": OPENPOSE_BODY25 + OPENPOSE_LHAND + OPENPOSE_RHAND + FACE51 + FACE_CONTOUR17,
}
#: per layout: (left shoulder, right shoulder, left hip, right hip) keypoint indices
SMPLX_TORSO_KEYPOINTS: Dict[str, tuple] = {"coco": (5, 6, 11, 12),
                                           "coco_wholebody": (5, 6, 11, 12),
                                           "openpose118": (5, 2, 12, 9),
                                           "openpose135": (5, 2, 12, 9)}
#: per layout: ``{"hand": [...], "face": [...]}`` keypoint indices weighted by the per-stage
#: hand / face joint weights (SMPLify-X's ``joint_weights[:, 25:67]`` / ``[:, 67:]``)
SMPLX_PARTS: Dict[str, Dict[str, tuple]] = {
    "coco": {"hand": (), "face": ()},
    "coco_wholebody": {"hand": tuple(range(91, 133)), "face": tuple(range(23, 91))},
    "openpose118": {"hand": tuple(range(25, 67)), "face": tuple(range(67, 118))},
    "openpose135": {"hand": tuple(range(25, 67)), "face": tuple(range(67, 135))},
}
#: keypoints SMPLify-X leaves out by default (OpenPose neck and hips: ``joints_to_ign``)
SMPLX_DEFAULT_IGNORE: Dict[str, tuple] = {"openpose118": (1, 9, 12), "openpose135": (1, 9, 12)}

#: the model's vertex points, in smplx's ``VertexJointSelector`` order
VERTEX_POINTS = ("nose", "reye", "leye", "rear", "lear", "LBigToe", "LSmallToe", "LHeel",
                 "RBigToe", "RSmallToe", "RHeel", "lthumb", "lindex", "lmiddle", "lring",
                 "lpinky", "rthumb", "rindex", "rmiddle", "rring", "rpinky")

_REQUIRED = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table",
             "f", "hands_componentsl", "hands_componentsr", "hands_meanl", "hands_meanr",
             "lmk_faces_idx", "lmk_bary_coords")
_CONTOUR = ("dynamic_lmk_faces_idx", "dynamic_lmk_bary_coords")


def _read_arrays(path) -> Dict[str, np.ndarray]:
    """The plain arrays of an npz (no unpickling; object arrays are skipped) or a pkl dict
    (restricted unpickler)."""
    if zipfile.is_zipfile(path):
        out = {}
        with np.load(path, allow_pickle=False) as z:
            for k in z.files:
                try:
                    out[k] = z[k]
                except ValueError:           # an object array (pickled): not read
                    continue
        return out
    with open(path, "rb") as f:
        data = _ModelUnpickler(f, encoding="latin1").load()
    if not isinstance(data, dict):
        raise ValueError(f"holds a {type(data).__name__}, not the dict of a model file")
    return data


def _check_pca(who: str, arrays, use_pca: bool, num_pca_comps: int) -> None:
    ncomp = arrays["hands_componentsl"].shape[0]
    if use_pca and not 0 < num_pca_comps <= ncomp:
        raise ValueError(f"{who}: num_pca_comps {num_pca_comps} outside [1, {ncomp}]")


def _zeros_like_batch(x: torch.Tensor):
    """``n -> zeros (B, n)`` in ``x``'s dtype and device, ``B = x.shape[0]``."""
    return lambda n: x.new_zeros(x.shape[0], n)


def read_smplx_file(path) -> Dict[str, np.ndarray]:
    """The arrays of an SMPL-X model file (``.npz`` / ``.pkl``), checked for the official
    layout (see the module docstring). Never touches the network."""
    who = "pyhpe.fitting.read_smplx_file"
    path = _model_path(who, path, "SMPL-X", "https://smpl-x.is.tue.mpg.de", "SMPLX_NEUTRAL.npz")
    try:
        data = _read_arrays(path)
    except _READ_ERRORS as e:
        raise ValueError(f"{who}: cannot read {path!r}: {e}") from e
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ValueError(f"{who}: {path!r} lacks {missing} (an SMPL-X model file has "
                         f"{list(_REQUIRED)})")
    out = {k: (v.toarray() if hasattr(v, "toarray") else np.asarray(v))
           for k, v in data.items() if k in _REQUIRED + _CONTOUR}
    V = out["v_template"].shape[0]
    checks = {"v_template": (V, 3), "shapedirs": (V, 3, None), "posedirs": (V, 3, 486),
              "J_regressor": (55, V), "weights": (V, 55), "kintree_table": (2, 55),
              "f": (None, 3), "hands_componentsl": (None, 45), "hands_componentsr": (None, 45),
              "hands_meanl": (45,), "hands_meanr": (45,), "lmk_faces_idx": (None,),
              "lmk_bary_coords": (None, 3)}
    _check_shapes(out, checks, who, path, "SMPL-X")
    if out["shapedirs"].shape[-1] < 20:
        raise ValueError(f"{who}: {path!r}: shapedirs has {out['shapedirs'].shape[-1]} "
                         f"components; SMPL-X's hold the betas then the expressions (>= 20)")
    return out


class _RestrictedNumpy:
    """numpy for smplx's reader: ``load`` never unpickles (see :func:`_read_arrays`)."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def load(path, *args, **kwargs):
        return _read_arrays(path)


class _RestrictedPickle:
    def __getattr__(self, name):
        return getattr(pickle, name)

    @staticmethod
    def load(f, encoding="latin1", **kwargs):
        return _ModelUnpickler(f, encoding=encoding).load()


_PATCH_LOCK = threading.Lock()


@contextlib.contextmanager
def _restricted_readers():
    import smplx.body_models as bm
    with _PATCH_LOCK:
        saved = bm.np, bm.pickle
        bm.np, bm.pickle = _RestrictedNumpy(), _RestrictedPickle()
        try:
            yield
        finally:
            bm.np, bm.pickle = saved


class SMPLXModel(nn.Module):
    """SMPL-X (``smplx.SMPLX``) with the joints of the module docstring.

    ``forward(global_orient (B, 3), body_pose (B, 63), betas (B, S), transl (B, 3),
    left_hand_pose (B, P), right_hand_pose (B, P), jaw_pose (B, 3), expression (B, E))`` ->
    ``(vertices (B, V, 3), joints (B, 127 or 144, 3))``; hand poses are ``P = num_pca_comps``
    PCA coefficients with ``use_pca`` (45 axis-angle values otherwise), added to the mean hand
    unless ``flat_hand_mean``; the eyes stay at rest.

    ``vertex_ids``: the model's vertex points (:data:`VERTEX_POINTS`); default smplx's for
    SMPL-X's 10475-vertex topology (required otherwise)."""

    model_type = "smplx"
    body_pose_dim = 63
    keypoint_maps = SMPLX_KEYPOINT_MAPS
    torso_keypoints = SMPLX_TORSO_KEYPOINTS
    keypoint_parts = SMPLX_PARTS
    default_ignore = SMPLX_DEFAULT_IGNORE

    def __init__(self, model_path, *, num_betas: int = 10, num_expression: int = 10,
                 use_pca: bool = True, num_pca_comps: int = 12, flat_hand_mean: bool = False,
                 use_face_contour: bool = False, vertex_ids: Optional[Dict[str, int]] = None,
                 dtype=torch.float32):
        super().__init__()
        try:
            import smplx
        except ImportError as e:                 # pragma: no cover - optional dependency
            raise ImportError("pyhpe.fitting needs the body model package: pip install smplx "
                              "(or pip install pyhpe[smpl])") from e
        from smplx.vertex_ids import vertex_ids as SMPLX_VERTEX_IDS
        who = "pyhpe.fitting.SMPLXModel"
        arrays = read_smplx_file(model_path)
        V = arrays["v_template"].shape[0]
        if use_face_contour and not all(k in arrays for k in _CONTOUR):
            raise ValueError(f"{who}: use_face_contour needs {list(_CONTOUR)} in the model file")
        if vertex_ids is None:
            if V != 10475:
                raise ValueError(f"{who}: the model has {V} vertices, not SMPL-X's 10475: pass "
                                 f"vertex_ids={{{', '.join(VERTEX_POINTS)}}}")
            vertex_ids = SMPLX_VERTEX_IDS["smplx"]
        missing = [k for k in VERTEX_POINTS if k not in vertex_ids]
        if missing:
            raise ValueError(f"{who}: vertex_ids lacks {missing}")
        bad = [k for k in VERTEX_POINTS if not 0 <= int(vertex_ids[k]) < V]
        if bad:
            raise ValueError(f"{who}: vertex_ids {bad} are outside the model's {V} vertices")
        _check_pca(who, arrays, use_pca, num_pca_comps)
        path = os.fspath(model_path)
        ext = "npz" if zipfile.is_zipfile(path) else "pkl"
        with contextlib.redirect_stdout(io.StringIO()), _restricted_readers():
            self.smpl = smplx.SMPLX(path, ext=ext, num_betas=num_betas,
                                    num_expression_coeffs=num_expression, use_pca=use_pca,
                                    num_pca_comps=num_pca_comps,
                                    flat_hand_mean=flat_hand_mean,
                                    use_face_contour=use_face_contour,
                                    create_global_orient=False, create_body_pose=False,
                                    create_betas=False, create_transl=False,
                                    create_left_hand_pose=False, create_right_hand_pose=False,
                                    create_expression=False, create_jaw_pose=False,
                                    create_leye_pose=False, create_reye_pose=False,
                                    dtype=dtype)
        sel = self.smpl.vertex_joint_selector
        sel.extra_joints_idxs = torch.tensor([int(vertex_ids[k]) for k in VERTEX_POINTS],
                                             dtype=torch.long)
        self._set_attributes(arrays, vertex_ids, use_pca, num_pca_comps,
                             int(self.smpl.num_expression_coeffs), use_face_contour,
                             127 + 17 * bool(use_face_contour))

    def _set_attributes(self, arrays, vertex_ids, use_pca: bool, num_pca_comps: int,
                        num_expression: int, use_face_contour: bool, num_joints: int) -> None:
        """What SMPL-X and SMPL-H models record once ``self.smpl`` is built."""
        self.vertex_ids = {k: int(vertex_ids[k]) for k in VERTEX_POINTS}
        self.num_betas = int(self.smpl.num_betas)
        self.num_expression = num_expression
        self.use_pca = bool(use_pca)
        self.hand_dim = int(num_pca_comps) if use_pca else 45
        self.use_face_contour = bool(use_face_contour)
        self.num_vertices = arrays["v_template"].shape[0]
        self.num_joints = num_joints
        self.parents = tuple(int(p) for p in self.smpl.parents)
        self.register_buffer("faces", torch.as_tensor(arrays["f"].astype(np.int64)),
                             persistent=False)

    @property
    def dtype(self):
        return self.smpl.v_template.dtype

    @property
    def extra_params(self) -> Dict[str, int]:
        """Parameters besides SMPL's -> size per sample."""
        return {"left_hand_pose": self.hand_dim, "right_hand_pose": self.hand_dim,
                "jaw_pose": 3, "expression": self.num_expression}

    def keypoint_map(self, layout: str) -> tuple:
        """Model point per keypoint of ``layout`` (-1: none, e.g. the contour without
        ``use_face_contour``)."""
        return tuple(-1 if j >= self.num_joints else j for j in self.keypoint_maps[layout])

    def hand_pose_aa(self, coeffs, side: str = "left"):
        """Hand pose coefficients (B, P) -> the 45 axis-angle values (without the mean hand)."""
        if not self.use_pca:
            return coeffs
        comps = self.smpl.left_hand_components if side == "left" else \
            self.smpl.right_hand_components
        return coeffs @ comps

    def forward(self, global_orient, body_pose, betas, transl, left_hand_pose=None,
                right_hand_pose=None, jaw_pose=None, expression=None):
        z = _zeros_like_batch(global_orient)
        return self._smpl_forward(
            global_orient, body_pose, betas, transl, left_hand_pose, right_hand_pose,
            jaw_pose=z(3) if jaw_pose is None else jaw_pose,
            expression=z(self.num_expression) if expression is None else expression,
            leye_pose=z(3), reye_pose=z(3))

    def _smpl_forward(self, global_orient, body_pose, betas, transl, left_hand_pose,
                      right_hand_pose, **extra):
        """``self.smpl``'s (vertices, joints); hand poses default to zeros."""
        z = _zeros_like_batch(global_orient)
        out = self.smpl(global_orient=global_orient, body_pose=body_pose, betas=betas,
                        transl=transl,
                        left_hand_pose=z(self.hand_dim) if left_hand_pose is None
                        else left_hand_pose,
                        right_hand_pose=z(self.hand_dim) if right_hand_pose is None
                        else right_hand_pose, **extra, return_verts=True)
        return out.vertices, out.joints


def load_smplx_model(model_path, *, device=None, **options) -> SMPLXModel:
    """An :class:`SMPLXModel` from an SMPL-X model file (options: its keyword arguments)."""
    model = SMPLXModel(model_path, **options)
    return model.to(device) if device is not None else model


def model_file_type(path) -> str:
    """``"smplx"`` (hand and face arrays), ``"smplh"`` (hand arrays) or ``"smpl"`` for a
    model file (``"smpl"`` too when it cannot be read: the SMPL reader then reports why)."""
    try:
        path = os.fspath(path)
        if zipfile.is_zipfile(path):
            with np.load(path, allow_pickle=False) as z:
                keys = set(z.files)
        else:
            with open(path, "rb") as f:
                data = _ModelUnpickler(f, encoding="latin1").load()
            keys = set(data) if isinstance(data, dict) else set()
    except Exception:                           # noqa: BLE001 - the SMPL reader reports it
        return "smpl"
    if "hands_componentsl" not in keys:
        return "smpl"
    return "smplx" if "lmk_faces_idx" in keys else "smplh"


def is_smplx_file(path) -> bool:
    """Whether a model file holds SMPL-X's hand and face arrays."""
    return model_file_type(path) == "smplx"


# ------------------------------------------------------------------ SMPL-H
#: SMPL-H (52 joints: 22 body, 15 per hand; then nose, right eye, left eye, right ear, left ear
#: 52..56, feet 57..62, finger tips 63..72): SMPLify-X's ``smpl_to_openpose`` for smplh
SMPLH_BODY25 = (52, 12, 17, 19, 21, 16, 18, 20, 0, 2, 5, 8, 1, 4, 7, 53, 54, 55, 56, 57, 58,
                59, 60, 61, 62)
SMPLH_LHAND = (20, 34, 35, 36, 63, 22, 23, 24, 64, 25, 26, 27, 65, 31, 32, 33, 66, 28, 29, 30,
               67)
SMPLH_RHAND = (21, 49, 50, 51, 68, 37, 38, 39, 69, 40, 41, 42, 70, 46, 47, 48, 71, 43, 44, 45,
               72)
SMPLH_COCO17 = (52, 54, 53, 56, 55, 16, 17, 18, 19, 20, 21, 1, 2, 4, 5, 7, 8)
#: SMPL-H layouts: ``openpose67`` (BODY_25 + hands, SMPLify-X's SMPL-H input), COCO-WholeBody
#: 133 (its face has no model points: weight 0) and COCO-17
SMPLH_KEYPOINT_MAPS: Dict[str, tuple] = {
    "coco": SMPLH_COCO17,
    "coco_wholebody": SMPLH_COCO17 + (57, 58, 59, 60, 61, 62) + (-1,) * 68 + SMPLH_LHAND
    + SMPLH_RHAND,
    "openpose67": SMPLH_BODY25 + SMPLH_LHAND + SMPLH_RHAND,
}
SMPLH_TORSO_KEYPOINTS = {"coco": (5, 6, 11, 12), "coco_wholebody": (5, 6, 11, 12),
                         "openpose67": (5, 2, 12, 9)}
SMPLH_PARTS = {"coco": {"hand": (), "face": ()},
               "coco_wholebody": {"hand": tuple(range(91, 133)), "face": ()},
               "openpose67": {"hand": tuple(range(25, 67)), "face": ()}}
SMPLH_VERTEX_POINTS = VERTEX_POINTS
_SMPLH_REQUIRED = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights",
                   "kintree_table", "f", "hands_componentsl", "hands_componentsr",
                   "hands_meanl", "hands_meanr")


def read_smplh_file(path) -> Dict[str, np.ndarray]:
    """The arrays of an SMPL-H model file (``.pkl`` / ``.npz``: SMPL's arrays for 52 joints
    plus the hand PCA ``hands_componentsl/r`` (45, 45), ``hands_meanl/r`` (45,))."""
    who = "pyhpe.fitting.read_smplh_file"
    if path is None or str(path) == "":
        raise ValueError(f"{who}: model_path is required (the SMPL-H model files are licensed "
                         f"and never downloaded)")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{who}: model_path {path!r} does not exist (the SMPL-H model "
                                f"files are licensed and never downloaded: pass their path)")
    try:
        data = _read_arrays(path)
    except _READ_ERRORS as e:
        raise ValueError(f"{who}: cannot read {path!r}: {e}") from e
    missing = [k for k in _SMPLH_REQUIRED if k not in data]
    if missing:
        raise ValueError(f"{who}: {path!r} lacks {missing}")
    out = {k: (data[k].toarray() if hasattr(data[k], "toarray") else np.asarray(data[k]))
           for k in _SMPLH_REQUIRED}
    V = out["v_template"].shape[0]
    checks = {"v_template": (V, 3), "shapedirs": (V, 3, None), "posedirs": (V, 3, 459),
              "J_regressor": (52, V), "weights": (V, 52), "kintree_table": (2, 52),
              "f": (None, 3), "hands_componentsl": (None, 45), "hands_componentsr": (None, 45),
              "hands_meanl": (45,), "hands_meanr": (45,)}
    _check_shapes(out, checks, who, path, "SMPL-H")
    return out


class SMPLHModel(SMPLXModel):
    """SMPL-H (``smplx.SMPLH``, built from the file's arrays): SMPL's body with MANO hands in
    PCA space, no face. ``forward(global_orient, body_pose (B, 63), betas, transl,
    left_hand_pose, right_hand_pose)`` -> ``(vertices, joints (B, 73, 3))``."""

    model_type = "smplh"
    keypoint_maps = SMPLH_KEYPOINT_MAPS
    torso_keypoints = SMPLH_TORSO_KEYPOINTS
    keypoint_parts = SMPLH_PARTS
    default_ignore = {"openpose67": (1, 9, 12)}

    def __init__(self, model_path, *, num_betas: int = 10, use_pca: bool = True,
                 num_pca_comps: int = 12, flat_hand_mean: bool = False,
                 vertex_ids: Optional[Dict[str, int]] = None, dtype=torch.float32):
        nn.Module.__init__(self)
        import smplx
        from smplx.utils import Struct
        from smplx.vertex_ids import vertex_ids as SMPLX_VERTEX_IDS
        who = "pyhpe.fitting.SMPLHModel"
        arrays = read_smplh_file(model_path)
        V = arrays["v_template"].shape[0]
        if vertex_ids is None:
            if V != 6890:
                raise ValueError(f"{who}: the model has {V} vertices, not SMPL-H's 6890: pass "
                                 f"vertex_ids={{{', '.join(VERTEX_POINTS)}}}")
            vertex_ids = SMPLX_VERTEX_IDS["smplh"]
        bad = [k for k in VERTEX_POINTS if k not in vertex_ids or
               not 0 <= int(vertex_ids[k]) < V]
        if bad:
            raise ValueError(f"{who}: vertex_ids {bad} are missing or outside the model's {V} "
                             f"vertices")
        _check_pca(who, arrays, use_pca, num_pca_comps)
        ids = {k: int(vertex_ids[k]) for k in VERTEX_POINTS}
        with contextlib.redirect_stdout(io.StringIO()):
            self.smpl = smplx.SMPLH("", data_struct=Struct(**arrays), num_betas=num_betas,
                                    use_pca=use_pca, num_pca_comps=num_pca_comps,
                                    flat_hand_mean=flat_hand_mean, vertex_ids=ids,
                                    create_global_orient=False, create_body_pose=False,
                                    create_betas=False, create_transl=False,
                                    create_left_hand_pose=False, create_right_hand_pose=False,
                                    dtype=dtype)
        self._set_attributes(arrays, ids, use_pca, num_pca_comps, 0, False, 73)

    @property
    def extra_params(self) -> Dict[str, int]:
        return {"left_hand_pose": self.hand_dim, "right_hand_pose": self.hand_dim}

    def forward(self, global_orient, body_pose, betas, transl, left_hand_pose=None,
                right_hand_pose=None):
        return self._smpl_forward(global_orient, body_pose, betas, transl, left_hand_pose,
                                  right_hand_pose)


# ------------------------------------------------------------------ a small synthetic model
def _smplx_rest():
    """Rest joints (55, 3) and parents of a stick-figure SMPL-X (metres, y up, +x left)."""
    from .body_model import _REST_JOINTS, SMPL_PARENTS
    J = np.zeros((55, 3))
    parents = np.zeros(55, np.int64)
    J[:22] = _REST_JOINTS[:22]
    parents[:22] = SMPL_PARENTS[:22]
    J[22], J[23], J[24] = [0.0, 0.60, 0.05], [0.035, 0.70, 0.09], [-0.035, 0.70, 0.09]
    parents[22:25] = 15
    # fingers in smplx's order: index, middle, pinky, ring, thumb (3 joints each)
    bases = {"index": (0.085, 0.0, 0.025), "middle": (0.09, 0.0, 0.005),
             "pinky": (0.075, 0.0, -0.035), "ring": (0.085, 0.0, -0.015),
             "thumb": (0.03, -0.01, 0.035)}
    step = {"index": (0.028, 0, 0), "middle": (0.030, 0, 0), "pinky": (0.020, 0, 0),
            "ring": (0.027, 0, 0), "thumb": (0.022, -0.004, 0.016)}
    tips = {}
    for side, wrist, start, sx in (("l", 20, 25, 1.0), ("r", 21, 40, -1.0)):
        j = start
        for finger in ("index", "middle", "pinky", "ring", "thumb"):
            b = np.array(bases[finger]) * [sx, 1, 1]
            s = np.array(step[finger]) * [sx, 1, 1]
            for k in range(3):
                J[j] = J[wrist] + b + k * s
                parents[j] = wrist if k == 0 else j - 1
                j += 1
            tips[side + finger] = (j - 1, J[j - 1] + 0.8 * s)
    return J, parents, tips


def write_synthetic_smplx(path, *, num_betas: int = 10, num_expression: int = 10,
                          ring: int = 6, seed: int = 0) -> Dict:
    """Write a small SMPL-X model file in the official npz layout (``smplx.create(path,
    model_type="smplx")`` loads it; hand PCA, landmarks and the dynamic contour included) and
    return ``{"vertex_ids": {...VERTEX_POINTS...}, "num_vertices": V}``.

    Rings of vertices around the 55 joints and along the bones (thinner for fingers), a grid
    of face vertices in front of the head (upper rows skinned to the head, lower rows to the
    jaw) carrying the 51 landmarks, the 17 contour landmarks (the same in every neck-angle
    bin, so the synthetic energy stays smooth) and the 10 expression directions;
    vertex points for nose, eyes, ears, toes, heels and finger tips. Hand PCA components: an
    orthonormal basis of the 45-D hand pose whose first directions curl all fingers; the mean
    hand slightly curled. Not a human body: a test fixture in the official format."""
    rng = np.random.default_rng(seed)
    J, parents, tips = _smplx_rest()
    children = {j: [c for c in range(55) if parents[c] == j] for j in range(55)}
    radius = np.full(55, 0.05)
    radius[[0, 3, 6, 9]] = 0.12
    radius[[1, 2, 4, 5]] = 0.07
    radius[[16, 17, 18, 19, 20, 21]] = 0.04
    radius[15] = 0.09
    radius[22:25] = 0.02
    radius[25:] = 0.008
    verts, weights, jreg_rows = [], [], []

    def add(points, w):
        start = len(verts)
        verts.extend(points)
        weights.extend([w] * len(points))
        return list(range(start, start + len(points)))

    def onehot(j, k=None, a=1.0):
        w = np.zeros(55)
        w[j] = a
        if k is not None:
            w[k] += 1.0 - a
        return w

    for j in range(55):
        p = parents[j]
        axis = J[j] - J[p] if p >= 0 else np.array([0.0, 1.0, 0.0])
        n = ring if j < 25 else 4
        w = onehot(j, p, 0.5) if p >= 0 and children[j] else onehot(j)
        jreg_rows.append(add(_ring_points(J[j], axis, radius[j], n), w))
    for j in range(55):
        for c in children[j]:
            if c in (22, 23, 24):
                continue
            n = ring if c < 25 else 4
            for t in ((0.33, 0.67) if c < 25 else (0.5,)):
                add(_ring_points(J[j] + t * (J[c] - J[j]), J[c] - J[j],
                                0.5 * (radius[j] + radius[c]), n), onehot(j))
    points = {"nose": ([0.0, 0.66, 0.13], onehot(15)), "reye": ([-0.035, 0.70, 0.11], onehot(15)),
              "leye": ([0.035, 0.70, 0.11], onehot(15)), "rear": ([-0.08, 0.67, 0.03], onehot(15)),
              "lear": ([0.08, 0.67, 0.03], onehot(15)),
              "LBigToe": (J[10] + [-0.02, -0.03, 0.07], onehot(10)),
              "LSmallToe": (J[10] + [0.04, -0.03, 0.05], onehot(10)),
              "LHeel": (J[7] + [0.0, -0.06, -0.06], onehot(7)),
              "RBigToe": (J[11] + [0.02, -0.03, 0.07], onehot(11)),
              "RSmallToe": (J[11] + [-0.04, -0.03, 0.05], onehot(11)),
              "RHeel": (J[8] + [0.0, -0.06, -0.06], onehot(8))}
    for name, (j, pos) in tips.items():
        points[name] = (pos, onehot(j))
    vertex_ids = {k: add([np.asarray(v, np.float64)], w)[0] for k, (v, w) in points.items()}
    # the face: a curved grid of vertices in front of the head, lower rows on the jaw
    nx, ny = 9, 8
    xs, ys = np.linspace(-0.07, 0.07, nx), np.linspace(0.56, 0.72, ny)
    grid = np.zeros((ny, nx), np.int64)
    for iy, y in enumerate(ys):
        a = float(np.clip((y - 0.58) / 0.06, 0.0, 1.0))          # 1 = head, 0 = jaw
        for ix, x in enumerate(xs):
            z = 0.115 - 3.0 * x * x
            grid[iy, ix] = add([np.array([x, y, z])], onehot(15, 22, a) if a < 1 else
                               onehot(15))[0]
    face_tris = []
    for iy in range(ny - 1):
        for ix in range(nx - 1):
            a, b, c, d = grid[iy, ix], grid[iy, ix + 1], grid[iy + 1, ix], grid[iy + 1, ix + 1]
            face_tris += [[a, b, d], [a, d, c]]
    v_template = np.asarray(verts, np.float64)
    V = len(v_template)
    faces = []
    for rows in jreg_rows:
        faces.extend([rows[0], rows[i], rows[i + 1]] for i in range(1, len(rows) - 1))
    first_face = len(faces)
    faces.extend(face_tris)
    faces = np.asarray(faces, np.int64)
    inner = np.arange(first_face, first_face + len(face_tris))
    border = [first_face + 2 * ((ny - 2) * (nx - 1) + ix) for ix in range(nx - 1)]     # chin row
    border = [first_face + 2 * (iy * (nx - 1)) + 1 for iy in range(ny - 1)] + border + \
        [first_face + 2 * (iy * (nx - 1) + nx - 2) for iy in range(ny - 1)]
    lmk_faces_idx = rng.choice(inner, 51, replace=False)
    bary = rng.dirichlet(np.ones(3), 51)
    contour = np.resize(np.asarray(border), 17)
    # one contour for all 79 neck-angle bins: smplx picks the bin by the head's turn, and a
    # contour that jumps between bins makes the energy discontinuous (line searches stall)
    dyn_faces = np.stack([contour] * 79)
    dyn_bary = np.broadcast_to(rng.dirichlet(np.ones(3), 17), (79, 17, 3)).copy()
    J_regressor = np.zeros((55, V))
    for j, rows in enumerate(jreg_rows):
        J_regressor[j, rows] = 1.0 / len(rows)
    shapedirs = _shape_fields(v_template, num_betas, num_betas + num_expression, rng)
    face_v = grid.ravel()
    for k in range(num_expression):                         # smooth fields on the face
        c = rng.normal(0, 1, (3, 3))
        rel = (v_template[face_v] - [0.0, 0.64, 0.11]) / 0.08
        shapedirs[face_v, :, num_betas + k] = 0.004 * (rel @ c.T + rng.normal(0, 0.3, 3))
    posedirs = rng.normal(0, 1e-3, (V, 3, 486))
    # hand PCA: the first directions curl the fingers (flexion about the hand's depth axis)
    comps = []
    for side in (1.0, -1.0):
        curl = np.zeros((15, 3))
        curl[:12, 2] = -side * 1.0                              # the four fingers
        curl[12:, 1] = side * 0.6                               # the thumb
        spread = np.zeros((15, 3))
        spread[[0, 3, 6, 9], 1] = [0.5, 0.1, -0.5, -0.2]
        M = np.concatenate([curl.reshape(1, 45), spread.reshape(1, 45),
                            rng.normal(0, 1, (43, 45))])
        q, _ = np.linalg.qr(M.T)
        comps.append(q.T * np.sign(np.diag(q.T @ M.T))[:, None])
    kintree = np.stack([np.where(parents < 0, 4294967295, parents), np.arange(55)]).astype(
        np.int64)
    arrays = {"v_template": v_template, "f": faces.astype(np.uint32),
              "shapedirs": shapedirs, "posedirs": posedirs, "J_regressor": J_regressor,
              "weights": np.asarray(weights), "kintree_table": kintree,
              "hands_componentsl": comps[0], "hands_componentsr": comps[1],
              "hands_meanl": 0.15 * comps[0][0], "hands_meanr": 0.15 * comps[1][0],
              "lmk_faces_idx": lmk_faces_idx.astype(np.int64), "lmk_bary_coords": bary,
              "dynamic_lmk_faces_idx": dyn_faces.astype(np.int64),
              "dynamic_lmk_bary_coords": dyn_bary}
    _save(path, arrays)
    return {"vertex_ids": vertex_ids, "num_vertices": V}


def _save(path, arrays):
    path = os.fspath(path)
    if path.endswith(".pkl"):
        with open(path, "wb") as f:
            pickle.dump(arrays, f, protocol=2)
    else:
        np.savez(path, **arrays)


def write_synthetic_smplh(path, *, num_betas: int = 10, seed: int = 0) -> Dict:
    """Write a small SMPL-H model file (``.npz`` / ``.pkl``): :func:`write_synthetic_smplx`'s
    figure without the jaw, eyes and face arrays (the jaw's skinning moved to the head), 52
    joints; returns ``{"vertex_ids", "num_vertices"}``."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        info = write_synthetic_smplx(os.path.join(tmp, "SMPLX_TMP.npz"), num_betas=num_betas,
                                     seed=seed)
        with np.load(os.path.join(tmp, "SMPLX_TMP.npz")) as z:
            x = {k: z[k] for k in z.files}
    keep = [j for j in range(55) if j not in (22, 23, 24)]
    new = {old: i for i, old in enumerate(keep)}
    weights = x["weights"].copy()
    weights[:, 15] += weights[:, 22:25].sum(1)
    parents = x["kintree_table"][0].astype(np.int64)
    kin = np.array([[4294967295 if parents[j] < 0 or parents[j] >= 4294967295 else
                     new[int(parents[j])] for j in keep], range(52)], np.int64)
    rng = np.random.default_rng(seed + 1)
    V = x["v_template"].shape[0]
    arrays = {"v_template": x["v_template"], "f": x["f"],
              "shapedirs": x["shapedirs"][:, :, :num_betas],
              "posedirs": rng.normal(0, 1e-3, (V, 3, 459)),
              "J_regressor": x["J_regressor"][keep], "weights": weights[:, keep],
              "kintree_table": kin}
    for k in ("hands_componentsl", "hands_componentsr", "hands_meanl", "hands_meanr"):
        arrays[k] = x[k]
    _save(path, arrays)
    return info


__all__ = ["FACE51", "FACE_CONTOUR17", "OPENPOSE_BODY25", "OPENPOSE_LHAND", "OPENPOSE_RHAND",
           "SMPLXModel", "SMPLX_KEYPOINT_MAPS", "SMPLX_PARTS", "SMPLX_TORSO_KEYPOINTS",
           "SMPLHModel", "SMPLH_KEYPOINT_MAPS", "VERTEX_POINTS", "is_smplx_file",
           "load_smplx_model", "model_file_type", "read_smplh_file", "read_smplx_file",
           "write_synthetic_smplh", "write_synthetic_smplx"]
