"""SMPLify (Bogo et al., ECCV 2016) and SMPLify-X (Pavlakos et al., CVPR 2019): the SMPL or
SMPL-X body model fitted to 2-D keypoints by minimising

``E = lambda_J^2 sum_k (w_k c_k)^2 rho_sigma(Pi(J_k) - x_k)            (data, Geman-McClure)
    + lambda_theta^2 E_pose(theta) + lambda_beta^2 ||beta||^2              (pose / shape priors)
    + lambda_a sum_{elbows, knees} exp(s_i theta_i)^2                       (bending prior)
    + lambda_sp sum_pairs g_ij^2``                                          (interpenetration)

in stages, through torch:

1. camera: the depth from similar triangles (focal length x mean 3-D / mean 2-D torso length,
   shoulder -> hip, of the initial model), then the translation and global orientation fitted
   to the torso keypoints with a depth regulariser ``lambda_d^2 (t_z - t_z^init)^2``; if the 2-D
   shoulders are closer than ``side_view_threshold`` px both the orientation and its rotation by
   180 degrees about the body's vertical axis are fitted and the lower final energy kept;
2. four stages over global orientation, body pose and shape with the official decreasing
   prior weights (pose 404, 404, 57.4, 4.78; shape 100, 50, 10, 5), the translation fixed.

``method`` picks the release whose conventions are used:

* ``"smplify"``: data weight 1, bending weight ``(0.317 lambda_theta)^2``, interpenetration
  weight ``1e3^2`` in every stage (the SMPLify release's residual weights, squared).
* ``"smplifyx"``: data weight ``1000 / image height``, bending weight ``3.17 lambda_theta``,
  interpenetration weights 0, 0, 0.01, 1 (SMPLify-X's ``fit_smpl.yaml``; there they weight a
  BVH mesh-penetration distance, here the sphere term), camera depth weight 100.

On SMPL-X (:class:`~pyhpe.fitting.smplx_model.SMPLXModel`, chosen from the model file) the
objective is SMPLify-X's full one: the data term over body, hand and face keypoints with
per-keypoint weights ``w_k`` (1 for the body; per stage the hand weights 0, 0, 0, 0.1, 2 and
the face weights 0, 0, 0, 0, 2 of ``fit_smplx.yaml``), plus

``lambda_h^2 (||A_l c_l||^2 + ||A_r c_r||^2) + lambda_e^2 ||psi||^2 + ||w_jaw * theta_jaw||^2``

with the hand poses the PCA coefficients ``c`` (12 of them, ``use_pca``; ``A`` the model's
components, the prior on the 45 axis-angle values they make, mean hand added by the model),
the expression ``psi`` (10) and the jaw pose with per-axis weights (opening about x weighted
10x less than the other axes), in five stages (pose / hand prior 404, 404, 57.4, 4.78, 4.78;
shape / expression 100, 50, 10, 5, 5; jaw (4040, 40400, 40400) ... (47.8, 478, 478)); the
hands, jaw and expression are optimised in every stage alongside the body (their keypoints
weigh in from stage 4 / 5). Layouts: OpenPose 118 / 135 and COCO-WholeBody 133
(:data:`~pyhpe.fitting.smplx_model.SMPLX_KEYPOINT_MAPS`); OpenPose's neck and hips are left out
of the data term by default (``joints_to_ign``). The MoG prior is applied to SMPL-X's 63-D body
pose as the marginal of its first 21 joints; VPoser decodes the 63-D body pose directly.

Pose priors: SMPLify's mixture of Gaussians (``pose_prior="gmm"`` with ``prior_path`` to the
release's ``gmm_08.pkl``); SMPLify-X's VPoser (``pose_prior="vposer"`` with ``vposer_path`` to
the user's VPoser v1 snapshot: the body pose is decoded from a 32-D latent ``z`` that is
optimised instead, with the prior energy ``||z||^2``, see
:class:`~pyhpe.fitting.priors.VPoserDecoder`); without either file ``pose_prior="l2"``
(``||theta||^2``, a fallback, not a paper's prior). Both weight files are licensed and never
downloaded. The interpenetration term is the sphere approximation of
:class:`~pyhpe.fitting.priors.SphereCollision` for both methods (no compiled extension).

The camera is a pinhole with focal length ``focal_length`` (5000 px in both releases) and
principal point the image centre, at the origin looking down +z with y down; the body starts
rotated by 180 degrees about x (upright, facing the camera)."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
import torch

from pyhpe.engine.config import Config, ConfigError

from .body_model import KEYPOINT_MAPS, BodyModel, load_body_model
from .priors import (COLLISION_BONES, MaxMixturePrior, SphereCollision, VPoserDecoder,
                     angle_prior, gmof, l2_prior, read_gmm)
from .smplx_model import (SMPLH_KEYPOINT_MAPS, SMPLX_KEYPOINT_MAPS, SMPLHModel, SMPLXModel,
                          model_file_type)

#: the official stage weights (SMPLify fit_3d.py; SMPLify-X fit_smpl.yaml)
POSE_WEIGHTS = (4.04e2, 4.04e2, 57.4, 4.78)
SHAPE_WEIGHTS = (1.0e2, 5.0e1, 1.0e1, 0.5e1)
COLLISION_WEIGHTS = {"smplify": (1e6, 1e6, 1e6, 1e6), "smplifyx": (0.0, 0.0, 0.01, 1.0)}
METHODS = ("smplify", "smplifyx")
MODEL_TYPES = ("smpl", "smplh", "smplx")

#: SMPL-X's five stages (SMPLify-X fit_smplx.yaml): body pose / shape / expression / hand pose
#: prior weights, jaw prior weights (about x, y, z), the hand and face keypoints' data weights
#: and the collision weights
SMPLX_STAGE_WEIGHTS = {
    "pose": (4.04e2, 4.04e2, 57.4, 4.78, 4.78),
    "shape": (1.0e2, 5.0e1, 1.0e1, 0.5e1, 0.5e1),
    "expr": (1.0e2, 5.0e1, 1.0e1, 0.5e1, 0.5e1),
    "hand_prior": (4.04e2, 4.04e2, 57.4, 4.78, 4.78),
    "jaw": ((4.04e3, 4.04e4, 4.04e4), (4.04e3, 4.04e4, 4.04e4), (574.0, 5740.0, 5740.0),
            (47.8, 478.0, 478.0), (47.8, 478.0, 478.0)),
    "hand": (0.0, 0.0, 0.0, 0.1, 2.0),
    "face": (0.0, 0.0, 0.0, 0.0, 2.0),
    "collision": {"smplify": (1e6,) * 5, "smplifyx": (0.0, 0.0, 0.0, 0.01, 1.0)},
}
#: every keypoint layout name (SMPL's and SMPL-X's)
LAYOUT_SIZES = {name: len(m) for maps in (KEYPOINT_MAPS, SMPLH_KEYPOINT_MAPS,
                                          SMPLX_KEYPOINT_MAPS)
                for name, m in maps.items()}
#: SMPL-X collision bones: SMPL's with the wrists' bones ending at the middle fingers' bases
SMPLX_COLLISION_BONES = tuple((a, {22: 28, 23: 43}.get(b, b)) for a, b in COLLISION_BONES)
SMPLH_COLLISION_BONES = tuple((a, {22: 25, 23: 40}.get(b, b)) for a, b in COLLISION_BONES)


@dataclass
class SMPLifyConfig(Config):
    """Options of :class:`SMPLify` (unknown keys are errors; ``None`` = the method's value)."""
    method: str = "smplifyx"
    keypoints: str = "coco"                 # layout of the 2-D input (KEYPOINT_MAPS,
                                            # SMPLX_KEYPOINT_MAPS)
    model_type: Optional[str] = None        # "smpl" | "smplx"; None: from the model file
    focal_length: float = 5000.0
    rho: float = 100.0                      # Geman-McClure sigma (px)
    pose_prior: str = "gmm"                 # "gmm" (prior_path), "vposer" (vposer_path), "l2"
    prior_path: Optional[str] = None
    vposer_path: Optional[str] = None
    num_betas: int = 10
    data_weight: Optional[float] = None
    pose_weights: Optional[List[float]] = None
    shape_weights: Optional[List[float]] = None
    bending_weights: Optional[List[float]] = None
    collision_weights: Optional[List[float]] = None
    # SMPL-X: per-stage weights (None: fit_smplx.yaml's) and the model's options
    hand_weights: Optional[List[float]] = None          # hand keypoints' data weight
    face_weights: Optional[List[float]] = None          # face keypoints' data weight
    hand_prior_weights: Optional[List[float]] = None
    expr_weights: Optional[List[float]] = None
    jaw_weights: Optional[List[List[float]]] = None     # (about x, y, z) per stage
    use_pca: bool = True
    num_pca_comps: int = 12
    num_expression: int = 10
    flat_hand_mean: bool = False
    use_face_contour: bool = False          # contour landmarks (their neck-angle bins jump)
    interpenetration: bool = True
    spheres_per_bone: int = 3
    depth_weight: float = 100.0
    camera_iterations: int = 30
    iterations: int = 30                    # L-BFGS iterations per step (Adam: steps per stage)
    lbfgs_steps: int = 30                   # L-BFGS steps per stage (SMPLify-X's maxiters)
    optimizer: str = "lbfgs"                # "lbfgs" (strong Wolfe line search) or "adam"
    lr: float = 1.0
    ftol: float = 1e-9                      # stop a stage on this relative energy change
    gtol: float = 1e-9                      # ... or when every gradient entry is below this
    side_view_threshold: float = 25.0
    use_confidence: bool = True
    ignore_keypoints: Optional[List[int]] = None    # None: the layout's (OpenPose: 1, 9, 12)
    vertex_ids: Optional[Dict[str, int]] = None
    dtype: str = "float32"

    def __post_init__(self):
        def bad(msg):
            raise ConfigError(f"SMPLifyConfig: {msg}")
        if self.method not in METHODS:
            bad(f"method {self.method!r}: use one of {list(METHODS)}")
        if self.keypoints not in LAYOUT_SIZES:
            bad(f"keypoints {self.keypoints!r}: use one of {sorted(LAYOUT_SIZES)}")
        if self.model_type is not None and self.model_type not in MODEL_TYPES:
            bad(f"model_type {self.model_type!r}: use one of {list(MODEL_TYPES)} or None")
        if self.pose_prior not in ("gmm", "vposer", "l2"):
            bad(f"pose_prior {self.pose_prior!r}: use 'gmm' (with prior_path), 'vposer' (with "
                f"vposer_path) or 'l2'")
        if self.pose_prior == "gmm" and not self.prior_path:
            bad("pose_prior 'gmm' needs prior_path (SMPLify's gmm_08.pkl), or use "
                "pose_prior='l2'")
        if self.pose_prior == "vposer" and not self.vposer_path:
            bad("pose_prior 'vposer' needs vposer_path (a VPoser v1 snapshot), or use "
                "pose_prior='gmm' / 'l2'")
        if self.optimizer not in ("lbfgs", "adam"):
            bad(f"optimizer {self.optimizer!r}: use 'lbfgs' or 'adam'")
        if self.dtype not in ("float32", "float64"):
            bad(f"dtype {self.dtype!r}: use 'float32' or 'float64'")
        for name in ("focal_length", "rho", "lr"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                bad(f"{name} must be a positive number, got {v!r}")
        for name in ("iterations", "camera_iterations", "lbfgs_steps", "num_betas",
                     "spheres_per_bone", "num_pca_comps", "num_expression"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                bad(f"{name} must be a non-negative integer")
        n = None
        for name in ("pose_weights", "shape_weights", "bending_weights", "collision_weights",
                     "hand_weights", "face_weights", "hand_prior_weights", "expr_weights"):
            v = getattr(self, name)
            if v is None:
                continue
            if not all(isinstance(x, (int, float)) and x >= 0 for x in v) or not v:
                bad(f"{name} must be a non-empty list of non-negative numbers")
            if n is not None and len(v) != n:
                bad("the per-stage weight lists must have the same length")
            n = len(v)
        if self.jaw_weights is not None:
            if not self.jaw_weights or not all(
                    len(w) == 3 and all(isinstance(x, (int, float)) and x >= 0 for x in w)
                    for w in self.jaw_weights):
                bad("jaw_weights must be a non-empty list of [x, y, z] non-negative weights")
            if n is not None and len(self.jaw_weights) != n:
                bad("the per-stage weight lists must have the same length")
        K = LAYOUT_SIZES[self.keypoints]
        if self.ignore_keypoints is not None and any(
                not isinstance(k, int) or not 0 <= k < K for k in self.ignore_keypoints):
            bad(f"ignore_keypoints must be indices in [0, {K})")

    def stage_weights(self, model_type: str = "smpl") -> List[Dict[str, float]]:
        """Per-stage energy weights (``lambda^2`` already applied where squared).

        ``model_type="smplx"``: five stages by default (fit_smplx.yaml) with the hand / face
        keypoint weights ``hand`` / ``face``, the hand pose, expression and jaw prior weights
        ``hand_prior``, ``expr`` (squared) and ``jaw`` (3 values, applied to the jaw pose
        before its squared norm, as SMPLify-X). With a stage count other than five the
        SMPL-X defaults are cut to it (priors: the first stages, hand / face weights: the
        last, so the final stage fits the hands and face)."""
        if model_type in ("smplx", "smplh"):
            X = SMPLX_STAGE_WEIGHTS
            pose = list(self.pose_weights or X["pose"])
            n = len(pose)
            if n > 5 and not all(getattr(self, k) is not None for k in (
                    "shape_weights", "hand_weights", "face_weights", "hand_prior_weights",
                    "expr_weights", "jaw_weights")):
                raise ConfigError("SMPLifyConfig: more than five stages need every per-stage "
                                  "weight list")
            shape = list(self.shape_weights or X["shape"][:n])
            coll = list(self.collision_weights or X["collision"][self.method][-n:])
            extra = {"hand": list(self.hand_weights or X["hand"][-n:]),
                     "face": list(self.face_weights or X["face"][-n:]),
                     "hand_prior": [w * w for w in (self.hand_prior_weights
                                                    or X["hand_prior"][:n])],
                     "expr": [w * w for w in (self.expr_weights or X["expr"][:n])],
                     "jaw": [tuple(w) for w in (self.jaw_weights or X["jaw"][:n])]}
        else:
            pose = list(self.pose_weights or POSE_WEIGHTS)
            n = len(pose)
            shape = list(self.shape_weights or SHAPE_WEIGHTS[:n])
            coll = list(self.collision_weights or COLLISION_WEIGHTS[self.method][:n])
            extra = {}
        if self.bending_weights is not None:
            bend = list(self.bending_weights)
        elif self.method == "smplify":
            bend = [(0.317 * w) ** 2 for w in pose]
        else:
            bend = [3.17 * w for w in pose]
        lens = {len(pose), len(shape), len(bend), len(coll)} | {len(v) for v in extra.values()}
        if len(lens) != 1:
            raise ConfigError("SMPLifyConfig: the per-stage weights (pose, shape, bending, "
                              "collision and for SMPL-X hand, face, hand prior, expression, "
                              "jaw) need one value per stage")
        if not self.interpenetration:
            coll = [0.0] * n
        out = [{"pose": p * p, "shape": s * s, "bending": b, "collision": c}
               for p, s, b, c in zip(pose, shape, bend, coll)]
        for k, v in extra.items():
            for d, x in zip(out, v):
                d[k] = x
        return out


@dataclass
class FitResult:
    """What :meth:`SMPLify.fit` returns (numpy arrays, batch first).

    ``joints`` (B, 29, 3) and ``vertices`` (B, V, 3) are in the camera frame (metres);
    ``keypoints_3d`` (B, K, 3) are the joints in the input layout, ``keypoints_2d`` (B, K, 2)
    their projections; ``stage_losses``: one dict per stage (``"camera"``, ``"stage1"`` ...)
    of the batch-summed energy terms at the stage's end; ``loss`` (B,) the final energies;
    ``flipped`` (B,) whether the 180-degree turned orientation won."""
    global_orient: np.ndarray
    body_pose: np.ndarray
    betas: np.ndarray
    transl: np.ndarray
    joints: np.ndarray
    vertices: np.ndarray
    keypoints_3d: np.ndarray
    keypoints_2d: np.ndarray
    stage_losses: List[Dict[str, float]]
    loss: np.ndarray
    flipped: np.ndarray
    #: SMPL-X only (None for SMPL): hand pose PCA coefficients (B, P) (45 axis-angle values
    #: without ``use_pca``), their axis-angle (B, 45) without the mean hand, jaw pose (B, 3),
    #: expression (B, E)
    left_hand_pose: Optional[np.ndarray] = None
    right_hand_pose: Optional[np.ndarray] = None
    left_hand_pose_aa: Optional[np.ndarray] = None
    right_hand_pose_aa: Optional[np.ndarray] = None
    jaw_pose: Optional[np.ndarray] = None
    expression: Optional[np.ndarray] = None




def _rotmat_to_aa(R: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) -> axis-angle (..., 3) via unit quaternions."""
    R = np.asarray(R, np.float64)
    m = R.reshape(-1, 3, 3)
    out = np.zeros((len(m), 3))
    for i, r in enumerate(m):
        tr = np.trace(r)
        cands = [tr, r[0, 0], r[1, 1], r[2, 2]]
        k = int(np.argmax(cands))
        if k == 0:
            w = math.sqrt(max(1 + tr, 0)) / 2
            q = np.array([w, (r[2, 1] - r[1, 2]) / (4 * w), (r[0, 2] - r[2, 0]) / (4 * w),
                          (r[1, 0] - r[0, 1]) / (4 * w)])
        else:
            a = k - 1
            b, c = (a + 1) % 3, (a + 2) % 3
            s = math.sqrt(max(1 + r[a, a] - r[b, b] - r[c, c], 0)) * 2
            q = np.zeros(4)
            q[0] = (r[c, b] - r[b, c]) / s
            q[1 + a] = s / 4
            q[1 + b] = (r[b, a] + r[a, b]) / s
            q[1 + c] = (r[c, a] + r[a, c]) / s
        if q[0] < 0:
            q = -q
        q /= np.linalg.norm(q)
        sin = np.linalg.norm(q[1:])
        angle = 2 * math.atan2(sin, q[0])
        out[i] = q[1:] / sin * angle if sin > 1e-12 else 2 * q[1:]
    return out.reshape(R.shape[:-2] + (3,))


def _aa_to_rotmat(aa: np.ndarray) -> np.ndarray:
    aa = np.asarray(aa, np.float64).reshape(-1, 3)
    out = np.zeros((len(aa), 3, 3))
    for i, v in enumerate(aa):
        th = np.linalg.norm(v)
        if th < 1e-12:
            out[i] = np.eye(3)
            continue
        k = v / th
        K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        out[i] = np.eye(3) + math.sin(th) * K + (1 - math.cos(th)) * K @ K
    return out


class SMPLify:
    """Fit SMPL or SMPL-X to 2-D keypoints (see the module docstring).

    ``SMPLify(model_path=..., prior_path=..., method="smplify"|"smplifyx", keypoints="coco",
    ...)`` -- keyword options are :class:`SMPLifyConfig` fields (or pass ``config=`` a dict /
    config); ``body_model=`` takes an already built :class:`BodyModel` /
    :class:`~pyhpe.fitting.smplx_model.SMPLXModel` instead of a path. The model type is read
    off the file (SMPL-X's hand and face arrays) unless ``model_type`` is given."""

    def __init__(self, model_path=None, *, config=None, body_model: Optional[BodyModel] = None,
                 device=None, **options):
        if config is not None and options:
            raise ConfigError("SMPLify: pass options either as config= or as keywords")
        opts = dict(config) if isinstance(config, dict) else options
        for key in ("prior_path", "vposer_path"):
            if isinstance(opts, dict) and isinstance(opts.get(key), os.PathLike):
                opts[key] = os.fspath(opts[key])
        self.cfg = SMPLifyConfig.from_dict(config if isinstance(config, SMPLifyConfig) else opts)
        self.dtype = torch.float32 if self.cfg.dtype == "float32" else torch.float64
        self.device = torch.device(device or "cpu")
        cfg = self.cfg
        if body_model is None:
            model_type = cfg.model_type or model_file_type(model_path)
            if model_type == "smplh":
                body_model = SMPLHModel(model_path, num_betas=cfg.num_betas,
                                        use_pca=cfg.use_pca, num_pca_comps=cfg.num_pca_comps,
                                        flat_hand_mean=cfg.flat_hand_mean,
                                        vertex_ids=cfg.vertex_ids, dtype=self.dtype)
            elif model_type == "smplx":
                body_model = SMPLXModel(model_path, num_betas=cfg.num_betas,
                                        num_expression=cfg.num_expression, use_pca=cfg.use_pca,
                                        num_pca_comps=cfg.num_pca_comps,
                                        flat_hand_mean=cfg.flat_hand_mean,
                                        use_face_contour=cfg.use_face_contour,
                                        vertex_ids=cfg.vertex_ids, dtype=self.dtype)
            else:
                body_model = load_body_model(model_path, num_betas=cfg.num_betas,
                                             vertex_ids=cfg.vertex_ids, dtype=self.dtype)
        self.model_type = getattr(body_model, "model_type", "smpl")
        if cfg.model_type is not None and cfg.model_type != self.model_type:
            raise ConfigError(f"SMPLify: model_type {cfg.model_type!r}, but the body model is "
                              f"{self.model_type!r}")
        self.is_smplx = self.model_type == "smplx"
        #: the model's parameters besides SMPL's -> size (hands: SMPL-H / SMPL-X, jaw and
        #: expression: SMPL-X)
        self.extra = dict(getattr(body_model, "extra_params", {}))
        if cfg.keypoints not in body_model.keypoint_maps:
            raise ConfigError(f"SMPLify: keypoints {cfg.keypoints!r} is not a layout of the "
                              f"{self.model_type} model: use one of "
                              f"{sorted(body_model.keypoint_maps)}")
        self.body_model = body_model.to(device=self.device, dtype=self.dtype)
        for p in self.body_model.parameters():
            p.requires_grad_(False)
        self.num_betas = self.body_model.num_betas
        self.pose_dim = self.body_model.body_pose_dim
        self.weights = cfg.stage_weights(self.model_type)
        if cfg.pose_prior == "gmm":
            g = read_gmm(cfg.prior_path)
            if g["means"].shape[1] == 69 and self.pose_dim == 63:
                # SMPL-X has no SMPL hand joints: the marginal of the first 21 joints
                g = {"means": g["means"][:, :63], "covars": g["covars"][:, :63, :63],
                     "weights": g["weights"]}
            self.pose_prior = MaxMixturePrior(g["means"], g["covars"], g["weights"],
                                              dtype=self.dtype)
            if self.pose_prior.dim != self.pose_dim:
                raise ValueError(f"SMPLify: the pose prior has dimension {self.pose_prior.dim}, "
                                 f"the {self.model_type} body pose {self.pose_dim}")
            self.pose_prior = self.pose_prior.to(self.device)
        else:
            self.pose_prior = None
        self.vposer = None
        if self.cfg.pose_prior == "vposer":
            self.vposer = VPoserDecoder.from_checkpoint(self.cfg.vposer_path, dtype=self.dtype)
            if self.vposer.num_joints != 21:
                raise ValueError(f"SMPLify: the VPoser decodes {self.vposer.num_joints} joints, "
                                 f"SMPL's body has 21 besides the hands")
            self.vposer = self.vposer.to(self.device)
            for p in self.vposer.parameters():
                p.requires_grad_(False)
        self.collision = None
        if cfg.interpenetration and any(w["collision"] > 0 for w in self.weights):
            bones = {"smplx": SMPLX_COLLISION_BONES, "smplh": SMPLH_COLLISION_BONES}.get(
                self.model_type, COLLISION_BONES)
            self.collision = SphereCollision(self.body_model, spheres=cfg.spheres_per_bone,
                                             bones=bones).to(self.device)
        kmap = torch.tensor(self.body_model.keypoint_map(cfg.keypoints), device=self.device)
        self.joint_map = kmap.clamp_min(0)
        #: keypoints with a model point (SMPL-X's face contour needs ``use_face_contour``)
        self.has_point = (kmap >= 0).to(self.dtype)
        self.torso = self.body_model.torso_keypoints[cfg.keypoints]
        parts = self.body_model.keypoint_parts.get(cfg.keypoints, {})
        self.hand_keypoints = list(parts.get("hand", ()))
        self.face_keypoints = list(parts.get("face", ()))
        self.ignore = list(cfg.ignore_keypoints if cfg.ignore_keypoints is not None else
                           self.body_model.default_ignore.get(cfg.keypoints, ()))
        if any(k >= len(kmap) for k in self.ignore):
            raise ConfigError(f"SMPLify: ignore_keypoints must be indices in [0, {len(kmap)})")

    def joint_weights(self, weights) -> torch.Tensor:
        """The per-keypoint data weights (K,) of a stage: 1 for the body, the stage's hand /
        face weight for those keypoints (SMPLify-X), 0 where the model has no point and for
        ``ignore_keypoints`` (SMPLify-X's ``joints_to_ign``: the camera fit still uses them)."""
        w = self.has_point.clone()
        if self.ignore:                 # left out of the data term (not of the camera's)
            w[self.ignore] = 0
        if self.hand_keypoints:
            w[self.hand_keypoints] *= float(weights.get("hand", 1.0))
        if self.face_keypoints:
            w[self.face_keypoints] *= float(weights.get("face", 1.0))
        return w

    def run_model(self, params):
        """``(vertices, joints)`` of the body model for a parameter dict (SMPL-X's hand, jaw
        and expression entries default to zero)."""
        args = (params["global_orient"], params["body_pose"], params["betas"], params["transl"])
        return self.body_model(*args, **{k: params.get(k) for k in self.extra})

    # ------------------------------------------------------------------ pieces
    def project(self, points, focal, center):
        """Pinhole projection of camera-frame points (B, N, 3) -> (B, N, 2) pixels."""
        z = points[..., 2:3].clamp_min(1e-3)
        return focal * points[..., :2] / z + center

    def pose_energy(self, params):
        """The pose prior (B,): MoG max-mixture, VPoser's ``||z||^2`` or ``||theta||^2``."""
        if self.vposer is not None:
            return l2_prior(params["pose_embedding"])
        if self.pose_prior is not None:
            return self.pose_prior(params["body_pose"])
        return l2_prior(params["body_pose"])

    def decode_pose(self, z):
        """VPoser latent (B, 32) -> body pose: SMPL's (B, 69) with the two hand joints zero,
        SMPL-X's (B, 63)."""
        pose = self.vposer(z)
        if self.pose_dim == 63:
            return pose
        return torch.cat([pose, pose.new_zeros(pose.shape[0], 6)], dim=1)

    def _with_pose(self, params):
        if self.vposer is not None:
            params = dict(params, body_pose=self.decode_pose(params["pose_embedding"]))
        return params

    def energy_terms(self, params, gt, conf, focal, center, data_weight, weights):
        """Per-sample energy terms (each (B,)) and the model output for ``params``."""
        params = self._with_pose(params)
        verts, joints = self.run_model(params)
        kp3d = joints[:, self.joint_map]
        proj = self.project(kp3d, focal, center)
        w = (self.joint_weights(weights) * conf)[..., None]
        data = data_weight ** 2 * (w ** 2 * gmof(proj - gt, self.cfg.rho)).sum((1, 2))
        terms = {"data": data,
                 "pose": weights["pose"] * self.pose_energy(params),
                 "shape": weights["shape"] * l2_prior(params["betas"]),
                 "bending": weights["bending"] * angle_prior(params["body_pose"])}
        bm = self.body_model
        if "left_hand_pose" in self.extra:
            terms["hand"] = weights["hand_prior"] * (
                l2_prior(bm.hand_pose_aa(params["left_hand_pose"], "left"))
                + l2_prior(bm.hand_pose_aa(params["right_hand_pose"], "right")))
        if "expression" in self.extra:
            terms["expression"] = weights["expr"] * l2_prior(params["expression"])
        if "jaw_pose" in self.extra:
            jw = torch.as_tensor(weights["jaw"], dtype=self.dtype, device=self.device)
            terms["jaw"] = l2_prior(params["jaw_pose"] * jw)
        if self.collision is not None and weights["collision"] > 0:
            terms["collision"] = weights["collision"] * self.collision(joints).pow(2).sum(-1)
        else:
            terms["collision"] = torch.zeros_like(data)
        return terms, (verts, joints, kp3d, proj)

    def _optimize(self, variables, closure_loss, iterations):
        """SMPLify-X's fitting loop: up to ``lbfgs_steps`` L-BFGS steps of ``iterations``
        iterations each (strong Wolfe line search), stopping on a relative energy change
        <= ``ftol``, gradients below ``gtol`` or a non-finite energy."""
        if iterations == 0 or not variables:
            return
        cfg = self.cfg
        if cfg.optimizer == "lbfgs":
            opt = torch.optim.LBFGS(variables, lr=cfg.lr, max_iter=iterations,
                                    tolerance_change=0.0, tolerance_grad=cfg.gtol,
                                    line_search_fn="strong_wolfe")

            def closure():
                opt.zero_grad()
                loss = closure_loss()
                loss.backward()
                return loss
            prev = None
            for _ in range(max(cfg.lbfgs_steps, 1)):
                v = float(opt.step(closure).detach())
                if not math.isfinite(v):
                    break
                if prev is not None and abs(prev - v) / max(abs(prev), abs(v), 1.0) <= cfg.ftol:
                    break
                if all(p.grad is None or float(p.grad.abs().max()) < cfg.gtol for p in variables):
                    break
                prev = v
        else:
            opt = torch.optim.Adam(variables, lr=self.cfg.lr)
            prev = None
            for _ in range(iterations):
                opt.zero_grad()
                loss = closure_loss()
                loss.backward()
                opt.step()
                v = float(loss.detach())
                if prev is not None and abs(prev - v) <= self.cfg.ftol * max(abs(prev), 1.0):
                    break
                prev = v

    def initial_depth(self, gt, conf, focal, body_pose, betas):
        """SMPLify's depth from similar triangles: ``f * mean 3-D torso length / mean 2-D torso
        length`` (left and right shoulder -> hip), per sample (B,)."""
        B = gt.shape[0]
        zero = torch.zeros(B, 3, dtype=self.dtype, device=self.device)
        _, joints = self.run_model({"global_orient": zero, "body_pose": body_pose,
                                    "betas": betas, "transl": zero})
        kp = joints[:, self.joint_map]
        ls, rs, lh, rh = self.torso
        l3 = torch.stack([(kp[:, ls] - kp[:, lh]).norm(dim=-1),
                          (kp[:, rs] - kp[:, rh]).norm(dim=-1)], 1)
        l2 = torch.stack([(gt[:, ls] - gt[:, lh]).norm(dim=-1),
                          (gt[:, rs] - gt[:, rh]).norm(dim=-1)], 1)
        valid = torch.stack([(conf[:, ls] > 0) & (conf[:, lh] > 0),
                             (conf[:, rs] > 0) & (conf[:, rh] > 0)], 1).to(self.dtype)
        h3 = (l3 * valid).sum(1) / valid.sum(1).clamp_min(1)
        h2 = (l2 * valid).sum(1) / valid.sum(1).clamp_min(1)
        depth = focal * h3 / h2.clamp_min(1e-6)
        # no torso visible: a person about 1/100 of the focal length away
        return torch.where(valid.sum(1) > 0, depth, torch.full_like(depth, float(focal) / 100))

    # ------------------------------------------------------------------ fit
    def fit(self, keypoints_2d, confidence=None, camera=None) -> FitResult:
        """Fit to ``keypoints_2d`` (B, K, 2) or (K, 2) pixels in the configured layout with
        ``confidence`` (B, K) (0 = missing). ``camera``: ``{"focal_length": f or (fx, fy),
        "center": (cx, cy), "image_size": (W, H)}`` -- ``center`` defaults to the image centre;
        one of them is required; ``focal_length`` defaults to the config's."""
        cfg = self.cfg
        gt = torch.as_tensor(np.asarray(keypoints_2d, np.float64), dtype=self.dtype,
                             device=self.device)
        if gt.ndim == 2:
            gt = gt[None]
        K = len(self.joint_map)
        if gt.ndim != 3 or gt.shape[1:] != (K, 2):
            raise ValueError(f"SMPLify.fit: keypoints_2d has shape {tuple(gt.shape)}, expected "
                             f"(B, {K}, 2) for the {cfg.keypoints!r} layout")
        B = gt.shape[0]
        if confidence is None or not cfg.use_confidence:
            conf = torch.ones(B, K, dtype=self.dtype, device=self.device)
        else:
            c = np.asarray(confidence, np.float64)
            if c.size != B * K:
                raise ValueError(f"SMPLify.fit: confidence has shape {c.shape}, expected "
                                 f"({B}, {K})")
            conf = torch.as_tensor(c.reshape(B, K), dtype=self.dtype, device=self.device)
        if B == 0:
            dt = np.float32 if self.dtype == torch.float32 else np.float64
            e = lambda *shape: np.zeros((0,) + shape, dt)  # noqa: E731
            extra = {k: e(n) for k, n in self.extra.items()}
            if "left_hand_pose" in self.extra:
                extra.update(left_hand_pose_aa=e(45), right_hand_pose_aa=e(45))
            return FitResult(global_orient=e(3), body_pose=e(self.pose_dim),
                             betas=e(self.num_betas), transl=e(3),
                             joints=e(self.body_model.num_joints, 3),
                             vertices=e(self.body_model.num_vertices, 3), keypoints_3d=e(K, 3),
                             keypoints_2d=e(K, 2), stage_losses=[], loss=e(),
                             flipped=np.zeros(0, bool), **extra)
        if not torch.isfinite(gt[conf > 0]).all() or not torch.isfinite(conf).all():
            raise ValueError("SMPLify.fit: keypoints_2d / confidence hold NaN or inf")
        gt = torch.nan_to_num(gt)
        camera = dict(camera or {})
        unknown = set(camera) - {"focal_length", "center", "image_size"}
        if unknown:
            raise ValueError(f"SMPLify.fit: unknown camera keys {sorted(unknown)}")
        f = camera.get("focal_length", cfg.focal_length)
        focal = torch.as_tensor(np.broadcast_to(np.asarray(f, np.float64), (2,)).copy(),
                                dtype=self.dtype, device=self.device)
        size = camera.get("image_size")
        center = camera.get("center")
        if center is None:
            if size is None:
                raise ValueError("SMPLify.fit: camera needs 'center' or 'image_size'")
            center = (size[0] / 2.0, size[1] / 2.0)
        center = torch.as_tensor(np.asarray(center, np.float64), dtype=self.dtype,
                                 device=self.device)
        height = float(size[1]) if size is not None else 2.0 * float(center[1])
        if cfg.data_weight is not None:
            data_weight = float(cfg.data_weight)
        else:
            data_weight = 1.0 if cfg.method == "smplify" else 1000.0 / height

        # initial pose: the prior's mean body pose, upright facing the camera
        z0 = None
        if self.vposer is not None:
            z0 = torch.zeros(B, self.vposer.latent_dim, dtype=self.dtype, device=self.device)
            with torch.no_grad():
                mean_pose = self.decode_pose(z0)
        elif self.pose_prior is not None:
            mean_pose = self.pose_prior.mean().detach()[None].expand(B, -1).clone()
        else:
            mean_pose = torch.zeros(B, self.pose_dim, dtype=self.dtype, device=self.device)
        betas0 = torch.zeros(B, self.num_betas, dtype=self.dtype, device=self.device)
        orient0 = torch.tensor([[math.pi, 0.0, 0.0]], dtype=self.dtype,
                               device=self.device).expand(B, 3).clone()
        with torch.no_grad():
            depth = self.initial_depth(gt, conf, focal.mean(), mean_pose, betas0)
        transl0 = torch.zeros(B, 3, dtype=self.dtype, device=self.device)
        transl0[:, 2] = depth
        stage_losses: List[Dict[str, float]] = []

        # 1. camera: translation + global orientation on the torso keypoints
        torso = list(self.torso)
        cam = {"global_orient": orient0.clone().requires_grad_(True),
               "transl": transl0.clone().requires_grad_(True)}

        def camera_loss(per_sample=False):
            _, joints = self.run_model({"global_orient": cam["global_orient"],
                                        "body_pose": mean_pose, "betas": betas0,
                                        "transl": cam["transl"]})
            proj = self.project(joints[:, self.joint_map[torso]], focal, center)
            vis = (conf[:, torso] > 0).to(self.dtype)[..., None]
            e = data_weight ** 2 * (vis * (proj - gt[:, torso]) ** 2).sum((1, 2)) + \
                cfg.depth_weight ** 2 * (cam["transl"][:, 2] - depth) ** 2
            return e if per_sample else e.sum()
        self._optimize(list(cam.values()), camera_loss, cfg.camera_iterations)
        with torch.no_grad():
            stage_losses.append({"stage": "camera", "total": float(camera_loss())})

        ls, rs = self.torso[0], self.torso[1]
        shoulder = (gt[:, ls] - gt[:, rs]).norm(dim=-1)
        try_flip = bool(((shoulder < cfg.side_view_threshold) & (conf[:, ls] > 0)
                         & (conf[:, rs] > 0)).any())
        orients = [cam["global_orient"].detach()]
        if try_flip:
            R = _aa_to_rotmat(orients[0].cpu().numpy())
            Ry = _aa_to_rotmat(np.array([0.0, math.pi, 0.0]))[0]
            orients.append(torch.as_tensor(_rotmat_to_aa(R @ Ry), dtype=self.dtype,
                                           device=self.device))
        transl = cam["transl"].detach()

        # 2. the staged fit of orientation, pose and shape
        runs = []
        for orient in orients:
            params = {"global_orient": orient.clone().requires_grad_(True),
                      "betas": betas0.clone().requires_grad_(True),
                      "transl": transl}
            if z0 is not None:
                params["pose_embedding"] = z0.clone().requires_grad_(True)
            else:
                params["body_pose"] = mean_pose.clone().requires_grad_(True)
            free = [params["global_orient"], params.get("pose_embedding", params.get("body_pose")),
                    params["betas"]]
            for k, n in self.extra.items():         # hands (PCA), jaw and expression
                params[k] = torch.zeros(B, n, dtype=self.dtype, device=self.device,
                                        requires_grad=True)
                free.append(params[k])
            losses = []
            for s, w in enumerate(self.weights):
                def total(w=w):
                    terms, _ = self.energy_terms(params, gt, conf, focal, center, data_weight, w)
                    return sum(terms.values()).sum()
                self._optimize(free, total, cfg.iterations)
                with torch.no_grad():
                    terms, out = self.energy_terms(params, gt, conf, focal, center,
                                                   data_weight, w)
                rec = {"stage": f"stage{s + 1}"}
                rec.update({k: float(v.sum()) for k, v in terms.items()})
                rec["total"] = float(sum(terms.values()).sum())
                losses.append(rec)
            per_sample = sum(terms.values())
            with torch.no_grad():
                params = self._with_pose(params)
            runs.append((params, losses, per_sample, out))

        best = torch.stack([r[2] for r in runs]).argmin(0)          # (B,) per-sample winner
        rows = torch.arange(B, device=best.device)

        def pick(get):
            return torch.stack([get(r) for r in runs])[best, rows]
        go = pick(lambda r: r[0]["global_orient"].detach())
        bp = pick(lambda r: r[0]["body_pose"].detach())
        be = pick(lambda r: r[0]["betas"].detach())
        verts = pick(lambda r: r[3][0])
        joints = pick(lambda r: r[3][1])
        kp3d = pick(lambda r: r[3][2])
        proj = pick(lambda r: r[3][3])
        loss = pick(lambda r: r[2])
        stage_losses.extend(runs[0][1] if len(runs) == 1 else
                            [dict(a, alternative=b["total"]) for a, b in zip(runs[0][1],
                                                                             runs[1][1])])
        np_ = lambda t: t.detach().cpu().numpy()  # noqa: E731
        extra = {}
        for k in self.extra:
            extra[k] = pick(lambda r, k=k: r[0][k].detach())
        if "left_hand_pose" in self.extra:
            with torch.no_grad():
                for side in ("left", "right"):
                    extra[f"{side}_hand_pose_aa"] = self.body_model.hand_pose_aa(
                        extra[f"{side}_hand_pose"], side)
        extra = {k: np_(v) for k, v in extra.items()}
        return FitResult(global_orient=np_(go), body_pose=np_(bp), betas=np_(be),
                         transl=np_(transl), joints=np_(joints), vertices=np_(verts),
                         keypoints_3d=np_(kp3d), keypoints_2d=np_(proj),
                         stage_losses=stage_losses, loss=np_(loss), flipped=np_(best > 0),
                         **extra)


__all__ = ["COLLISION_WEIGHTS", "FitResult", "POSE_WEIGHTS", "SHAPE_WEIGHTS", "SMPLX_STAGE_WEIGHTS",
           "SMPLify", "SMPLifyConfig"]
