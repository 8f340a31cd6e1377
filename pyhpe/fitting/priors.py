"""The terms of the SMPLify / SMPLify-X objective, as torch functions and modules.

* :func:`gmof` -- the Geman-McClure robust penalty ``rho(r) = sigma^2 r^2 / (sigma^2 + r^2)``
  (per coordinate, as in both official codes; ``sigma`` = 100 px).
* :class:`MaxMixturePrior` -- SMPLify's mixture-of-Gaussians pose prior (fitted to CMU poses,
  ``gmm_08.pkl`` from the SMPLify release -- licensed, passed by path) evaluated as the official
  max-mixture approximation: ``min_m 0.5 (x - mu_m)^T Sigma_m^-1 (x - mu_m)
  - log(w_m / ((2 pi)^(D/2) sqrt(det Sigma_m / min_m' det Sigma_m')))``.
* :func:`l2_prior` -- the shape prior ``||beta||^2`` (and the fallback pose prior).
* :func:`angle_prior` -- the elbow / knee bending prior ``exp(s_i theta_i)^2`` on the bending
  axis-angle components (elbows about y with opposite signs, knees about x), which grows
  exponentially as a joint bends the unnatural way.
* :class:`SphereCollision` -- the interpenetration term. SMPLify approximates the body by
  capsules whose radii are regressed from the shape, replaces each capsule by spheres and
  penalises ``sum exp(-||C_i - C_j||^2 / (sigma_i^2 + sigma_j^2))`` over spheres of
  incompatible parts with ``sigma = r / 3``. SMPLify-X replaces it by a BVH search over mesh
  triangles with a cone distance field, a compiled CUDA extension. Here: spheres along the
  bones of the posed skeleton, radii measured once from the model's own template mesh (the
  median distance of each part's vertices to its bone) instead of the capsule regressor from
  the SMPLify release, and the pairs that are incompatible = parts not adjacent in the tree and
  not overlapping already in the rest pose. No compiled code; used for both methods. (SMPLify
  takes this term's derivative with respect to the pose only; here the sphere centres follow
  the joints, so the shape also receives its gradient.)
"""
from __future__ import annotations

import os
import pickle
import zipfile
from typing import Dict, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pyhpe.data.safe_npz import _NumpyOnlyUnpickler

from .body_model import _unpickle


def gmof(residual: torch.Tensor, sigma: float) -> torch.Tensor:
    """Geman-McClure: ``sigma^2 r^2 / (sigma^2 + r^2)`` elementwise (bounded by ``sigma^2``)."""
    sq = residual * residual
    s2 = float(sigma) ** 2
    return s2 * sq / (sq + s2)


def l2_prior(x: torch.Tensor) -> torch.Tensor:
    """``sum x^2`` over the last dimension -> (B,)."""
    return (x * x).sum(-1)


#: SMPLify's bending prior: flat body_pose (69) component and sign, per joint
#: (left elbow about y, right elbow about y, left knee about x, right knee about x)
ANGLE_PRIOR_INDICES = (52, 55, 9, 12)
ANGLE_PRIOR_SIGNS = (1.0, -1.0, -1.0, -1.0)


def angle_prior(body_pose: torch.Tensor) -> torch.Tensor:
    """``sum_i exp(s_i theta_i)^2`` over elbows and knees of ``body_pose`` (B, 69) -> (B,)."""
    idx = torch.as_tensor(ANGLE_PRIOR_INDICES, device=body_pose.device)
    signs = torch.as_tensor(ANGLE_PRIOR_SIGNS, dtype=body_pose.dtype, device=body_pose.device)
    return torch.exp(body_pose[:, idx] * signs).pow(2).sum(-1)


class _GMMUnpickler(_NumpyOnlyUnpickler):
    def find_class(self, module, name):
        if (module, name) == ("_codecs", "encode"):
            return pickle.Unpickler.find_class(self, module, name)
        return super().find_class(module, name)


def read_gmm(path) -> Dict[str, np.ndarray]:
    """``{"means" (M, D), "covars" (M, D, D), "weights" (M,)}`` from SMPLify's ``gmm_08.pkl``
    (a pickled dict, read with a restricted unpickler) or an ``.npz`` with those arrays."""
    who = "pyhpe.fitting.read_gmm"
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{who}: pose prior file {path!r} does not exist (SMPLify's "
                                f"gmm_08.pkl comes with the SMPLify release; pyhpe never "
                                f"downloads it)")
    if zipfile.is_zipfile(path):
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    else:
        data = _unpickle(path, who, _GMMUnpickler)
    if not isinstance(data, dict) or not all(k in data for k in ("means", "covars", "weights")):
        raise ValueError(f"{who}: {path!r} is not a dict with 'means', 'covars', 'weights'")
    out = {k: np.asarray(data[k], np.float64) for k in ("means", "covars", "weights")}
    M, D = out["means"].shape
    if out["covars"].shape != (M, D, D) or out["weights"].shape != (M,):
        raise ValueError(f"{who}: {path!r}: means {out['means'].shape}, covars "
                         f"{out['covars'].shape}, weights {out['weights'].shape} do not agree")
    return out


class MaxMixturePrior(nn.Module):
    """SMPLify's max-mixture Gaussian pose prior on ``body_pose`` (B, D) -> (B,) energies.

    ``forward(x) = min_m [0.5 (x - mu_m)^T P_m (x - mu_m) - log w_m + (D/2) log(2 pi)
    + 0.5 (log det Sigma_m - min_m' log det Sigma_m')]`` -- the official code's merged form
    (the determinant normalised by the smallest one)."""

    def __init__(self, means, covars, weights, dtype=torch.float32):
        super().__init__()
        means = np.asarray(means, np.float64)
        covars = np.asarray(covars, np.float64)
        weights = np.asarray(weights, np.float64)
        if means.ndim != 2 or covars.shape != means.shape + (means.shape[1],) or \
                weights.shape != means.shape[:1]:
            raise ValueError(f"pyhpe.fitting.MaxMixturePrior: means {means.shape}, covars "
                             f"{covars.shape}, weights {weights.shape} do not agree")
        if not (weights > 0).all():
            raise ValueError("pyhpe.fitting.MaxMixturePrior: weights must be positive")
        logdet = np.array([np.linalg.slogdet(c)[1] for c in covars])
        D = means.shape[1]
        const = -np.log(weights) + 0.5 * D * np.log(2 * np.pi) + 0.5 * (logdet - logdet.min())
        self.register_buffer("means", torch.tensor(means, dtype=dtype))
        self.register_buffer("precisions", torch.tensor(np.linalg.inv(covars), dtype=dtype))
        self.register_buffer("const", torch.tensor(const, dtype=dtype))
        self.register_buffer("weights", torch.tensor(weights, dtype=dtype))

    @classmethod
    def from_file(cls, path, dtype=torch.float32) -> "MaxMixturePrior":
        g = read_gmm(path)
        return cls(g["means"], g["covars"], g["weights"], dtype=dtype)

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def mean(self) -> torch.Tensor:
        """The mixture's mean pose (D,): ``sum_m w_m mu_m`` (SMPLify's initial pose)."""
        return (self.weights / self.weights.sum()) @ self.means

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = x.unsqueeze(1) - self.means                                  # (B, M, D)
        quad = torch.einsum("bmi,mij,bmj->bm", d, self.precisions, d)
        return (0.5 * quad + self.const).min(dim=1).values


#: bones (joint, child) carrying collision spheres: torso, head, legs, feet, arms, hands
COLLISION_BONES = ((0, 3), (3, 6), (6, 9), (9, 12), (12, 15), (1, 4), (4, 7), (2, 5), (5, 8),
                   (7, 10), (8, 11), (16, 18), (18, 20), (17, 19), (19, 21), (20, 22), (21, 23))


class SphereCollision(nn.Module):
    """Interpenetration energy of spheres placed along the bones (see the module docstring).

    Built from a :class:`~pyhpe.fitting.body_model.BodyModel`: ``spheres`` per bone at
    evenly spaced fractions, radius = median distance of the bone's vertices (dominant skinning
    weight on the bone's joint) to the bone segment in the template. ``forward(joints (B, >=24,
    3))`` -> (B, P) overlaps ``g_ij = exp(-||C_i - C_j||^2 / (sigma_i^2 + sigma_j^2))`` of the
    P incompatible pairs, ``sigma = r / 3``; the objective adds ``sum g_ij^2`` (SMPLify's
    release minimises the squared norm of this vector)."""

    def __init__(self, body_model, spheres: int = 3, bones: Sequence = COLLISION_BONES,
                 parents: Optional[Sequence[int]] = None, rest_threshold: float = 1e-2):
        super().__init__()
        smpl = body_model.smpl
        parents = list(body_model.parents if parents is None else parents)
        with torch.no_grad():
            v = smpl.v_template.double()
            J = (smpl.J_regressor.double() @ v)
            owner = smpl.lbs_weights.argmax(dim=1)
            radii = []
            for a, b in bones:
                seg = J[b] - J[a]
                pts = v[owner == a]
                if len(pts) == 0:
                    radii.append(0.05 * float(seg.norm()))
                    continue
                t = ((pts - J[a]) @ seg / seg.dot(seg).clamp_min(1e-12)).clamp(0, 1)
                dist = (pts - (J[a] + t[:, None] * seg)).norm(dim=1)
                radii.append(float(dist.median()))
        fr = (torch.arange(spheres, dtype=torch.float64) + 0.5) / spheres
        bone_of = torch.arange(len(bones)).repeat_interleave(spheres)
        self.register_buffer("start", torch.tensor([a for a, _ in bones]).repeat_interleave(
            spheres), persistent=False)
        self.register_buffer("end", torch.tensor([b for _, b in bones]).repeat_interleave(
            spheres), persistent=False)
        self.register_buffer("frac", fr.repeat(len(bones)).float(), persistent=False)
        sigma = torch.tensor(radii, dtype=torch.float64).repeat_interleave(spheres) / 3.0
        # adjacency of bones: sharing a joint, or one's joint is the other's parent joint
        joints_of = [{a, b} for a, b in bones]
        near = [s | {parents[a]} for s, (a, _) in zip(joints_of, bones)]
        n = len(bone_of)
        with torch.no_grad():
            centers = self._centers(J.float()[None])[0].double()
            d2 = ((centers[:, None] - centers[None]) ** 2).sum(-1)
            s2 = sigma[:, None] ** 2 + sigma[None] ** 2
            rest = torch.exp(-d2 / s2)
        pairs = []
        for i in range(n):
            for k in range(i + 1, n):
                bi, bk = int(bone_of[i]), int(bone_of[k])
                if bi == bk or joints_of[bi] & near[bk] or joints_of[bk] & near[bi]:
                    continue
                if rest[i, k] > rest_threshold:
                    continue
                pairs.append((i, k))
        pairs = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2)
        self.register_buffer("pairs", pairs, persistent=False)
        self.register_buffer("s2", (s2[pairs[:, 0], pairs[:, 1]]).float(), persistent=False)
        self.radii = radii

    def _centers(self, joints):
        a = joints[:, self.start]
        b = joints[:, self.end]
        return a + self.frac.to(joints.dtype)[None, :, None] * (b - a)

    def forward(self, joints: torch.Tensor) -> torch.Tensor:
        c = self._centers(joints)
        d2 = ((c[:, self.pairs[:, 0]] - c[:, self.pairs[:, 1]]) ** 2).sum(-1)
        return torch.exp(-d2 / self.s2.to(joints.dtype))


def rotmat_to_axis_angle(R: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) -> axis-angle (..., 3), differentiable (via the unit
    quaternion of the largest of its four candidate components)."""
    m = R.reshape(-1, 3, 3)
    r00, r11, r22 = m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]
    cand = torch.stack([1 + r00 + r11 + r22, 1 + r00 - r11 - r22, 1 - r00 + r11 - r22,
                        1 - r00 - r11 + r22], 1)
    k = cand.argmax(1)
    s = 2 * cand.gather(1, k[:, None]).clamp_min(1e-12).sqrt()[:, 0]        # 4 * |q_k|
    a21, a12 = m[:, 2, 1], m[:, 1, 2]
    a02, a20 = m[:, 0, 2], m[:, 2, 0]
    a10, a01 = m[:, 1, 0], m[:, 0, 1]
    q = torch.stack([
        torch.stack([s / 4, (a21 - a12) / s, (a02 - a20) / s, (a10 - a01) / s], 1),
        torch.stack([(a21 - a12) / s, s / 4, (a01 + a10) / s, (a02 + a20) / s], 1),
        torch.stack([(a02 - a20) / s, (a01 + a10) / s, s / 4, (a12 + a21) / s], 1),
        torch.stack([(a10 - a01) / s, (a02 + a20) / s, (a12 + a21) / s, s / 4], 1)], 1)
    q = q[torch.arange(len(m), device=m.device), k]                       # (N, 4) w, x, y, z
    q = q * torch.where(q[:, :1] < 0, -1.0, 1.0).to(q.dtype)
    v = q[:, 1:]
    n = v.norm(dim=1, keepdim=True)
    w = q[:, :1]
    small = n < 1e-8
    factor = torch.where(small, 2.0 / w.clamp_min(1e-12),
                         2 * torch.atan2(n, w) / torch.where(small, torch.ones_like(n), n))
    return (v * factor).reshape(R.shape[:-2] + (3,))


class VPoserDecoder(nn.Module):
    """The decoder of VPoser v1 (SMPLify-X's pose prior): latent ``z`` (B, 32) -> body pose
    (B, 63) axis-angle of SMPL's joints 1..21 through two 512-unit leaky-ReLU (0.2) layers and
    the continuous 6-D rotation representation (Gram-Schmidt of two 3-vectors). SMPLify-X
    optimises ``z`` with the prior energy ``||z||^2``.

    The trained weights are licensed (https://smpl-x.is.tue.mpg.de) and never downloaded:
    :meth:`from_checkpoint` reads the user's VPoser v1 snapshot (``*.pt`` state dict, keys
    ``bodyprior_dec_fc1/fc2/out``; the encoder is not needed)."""

    def __init__(self, latent_dim: int = 32, hidden: int = 512, num_joints: int = 21):
        super().__init__()
        self.latent_dim, self.num_joints = latent_dim, num_joints
        self.bodyprior_dec_fc1 = nn.Linear(latent_dim, hidden)
        self.bodyprior_dec_fc2 = nn.Linear(hidden, hidden)
        self.bodyprior_dec_out = nn.Linear(hidden, num_joints * 6)

    @classmethod
    def from_checkpoint(cls, path, dtype=torch.float32) -> "VPoserDecoder":
        who = "pyhpe.fitting.VPoserDecoder"
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{who}: VPoser snapshot {path!r} does not exist (VPoser "
                                    f"weights are licensed and never downloaded)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:                      # noqa: BLE001 - any unreadable file
            raise ValueError(f"{who}: cannot read {path!r} as a state dict: {e}") from e
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        dec = {k.split("bodyprior_dec_", 1)[1]: v for k, v in state.items()
               if isinstance(k, str) and "bodyprior_dec_" in k} if isinstance(state, dict) else {}
        need = [f"{n}.{p}" for n in ("fc1", "fc2", "out") for p in ("weight", "bias")]
        if not all(k in dec for k in need):
            raise ValueError(f"{who}: {path!r} is not a VPoser v1 snapshot (needs "
                             f"bodyprior_dec_{{fc1,fc2,out}}.{{weight,bias}})")
        latent, hidden = dec["fc1.weight"].shape[1], dec["fc1.weight"].shape[0]
        joints = dec["out.weight"].shape[0] // 6
        model = cls(latent, hidden, joints)
        model.load_state_dict({"bodyprior_dec_" + k: dec[k] for k in need})
        return model.to(dtype).eval()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.bodyprior_dec_fc1(z), 0.2)
        x = F.leaky_relu(self.bodyprior_dec_fc2(x), 0.2)
        x = self.bodyprior_dec_out(x).reshape(-1, 3, 2)
        b1 = F.normalize(x[:, :, 0], dim=1)
        b2 = F.normalize(x[:, :, 1] - (b1 * x[:, :, 1]).sum(1, keepdim=True) * b1, dim=1)
        R = torch.stack([b1, b2, torch.cross(b1, b2, dim=1)], dim=-1)
        return rotmat_to_axis_angle(R).reshape(z.shape[0], self.num_joints * 3)


__all__ = ["ANGLE_PRIOR_INDICES", "ANGLE_PRIOR_SIGNS", "COLLISION_BONES", "MaxMixturePrior",
           "SphereCollision", "VPoserDecoder", "angle_prior", "gmof", "l2_prior", "read_gmm",
           "rotmat_to_axis_angle"]
