"""PoseAug (Gong et al., CVPR 2021): a learnable augmentor of 3-D poses trained jointly with a
2-D -> 3-D lifter.

The augmentor works on the kinematic chain of a keypoint set with ``parents`` (one root):

* bone decomposition ``X -> (unit bone vectors, bone lengths)`` and its inverse
  (:func:`bone_vectors`, :func:`compose_bones`, exact up to float rounding);
* **BA** (bone angle): an MLP of the root-relative pose and noise adds a residual to every
  bone's unit vector (re-normalised; the torso bones from the root to the first branching joint
  keep their direction, so BA cannot rotate the whole body); ``ba_diff = 1 - cos`` per bone;
* **BL** (bone length): an MLP of the pose, its bone lengths and noise gives one ratio per
  left/right-symmetric bone group, ``tanh * blr_tanh_limit`` (the last torso bone is fixed: the
  scale/depth ambiguity), lengths ``* (1 + ratio)``;
* **RT** (rotation, translation): an MLP gives an axis-angle rotation ``tanh * rot_range``
  about the root and a translation of the root (``tanh * trans_range`` mm, the depth kept
  at least ``min_depth``), and the posed body is projected through the sample's camera
  (pinhole ``fx fy cx cy``) to the 2-D input of the lifter.

Discriminators: :class:`KCSDiscriminator` (3-D, on the kinematic-chain-space matrices
``B B^T`` of the unit bone vectors of each leaf-to-root chain, one residual path per chain)
judges the BA poses; :class:`Pose2DDiscriminator` (the codec-standardised 2-D) judges the
projected RT poses. LSGAN losses (MSE to 1/0).

Augmentor loss: ``w_d2d * adv_2d + w_d3d * adv_3d + w_diff * (range loss of the mean BA
change, bounds ba_range_m +- ba_range_w; rectified L2 of the BL ratios beyond blr_limit)``
and, after ``warmup_steps``, the lifter-feedback difficulty loss: the ratio of the lifter's
per-pose error on the augmented pose to that on the original one should stay within
``hard_std`` of a target ratio that moves from ``hard_ratio[0]`` to ``hard_ratio[1]`` over
``ramp_steps`` (BA and RT separately, weights ``w_feedback_ba`` / ``w_feedback_rt``).

Schedule (:class:`PoseAugLifter`, one engine step): (1) update the augmentor with its own
Adam (the lifter and discriminators frozen), (2) every ``d_every`` steps update both
discriminators with their own Adam on real vs. (detached) augmented poses, (3) return the
lifter's loss on the real batch and, after ``warmup_steps``, on the valid augmented batch
(detached, in front of the camera); the engine steps the lifter. The official code alternates
whole epochs of augmentor training and lifter training on a buffer of augmented poses; here
the three updates alternate within each step. The official fake-pose pool and lens distortion
in the reprojection are left out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..engine.config import Config, ConfigError


# ---------------------------------------------------------------------------- kinematics
class KinematicChain:
    """The tree of a keypoint set: ``parents[j]`` (-1 for the one root). Bones are indexed by
    their child joints (:attr:`children`, in topological order)."""

    def __init__(self, parents: Sequence[int], flip_index: Optional[Sequence[int]] = None):
        parents = [int(p) for p in parents]
        roots = [j for j, p in enumerate(parents) if p < 0]
        if len(roots) != 1:
            raise ValueError(f"KinematicChain: need exactly one root (parent -1), got {roots}")
        self.parents, self.root, K = parents, roots[0], len(parents)
        order, seen = [self.root], {self.root}
        while len(order) < K:
            grown = [j for j in range(K) if j not in seen and parents[j] in seen]
            if not grown:
                raise ValueError("KinematicChain: 'parents' is not a tree (a cycle or a "
                                 "parent out of range)")
            order += grown
            seen.update(grown)
        self.children = order[1:]                    # bone b: parents[children[b]] -> children[b]
        self.bone_parents = [parents[j] for j in self.children]
        nb = len(self.children)
        bone_of = {j: b for b, j in enumerate(self.children)}
        # A[j, b] = 1 when bone b lies on the path root -> j: X = X_root + A @ bones
        A = torch.zeros(K, nb, dtype=torch.float64)
        for j in range(K):
            k = j
            while parents[k] >= 0:
                A[j, bone_of[k]] = 1.0
                k = parents[k]
        self.ancestors = A
        kids = {j: [c for c in range(K) if parents[c] == j] for j in range(K)}
        # torso: root -> the first joint with several children (other than the root)
        torso, j = [], self.root
        while True:
            nxt = [c for c in kids[j] if kids[c]]
            mid = [c for c in nxt if flip_index is None or int(flip_index[c]) == c]
            if j != self.root and len(kids[j]) > 1 or not mid:
                break
            j = mid[0]
            torso.append(bone_of[j])
            if len(kids[j]) > 1:
                break
        self.torso_bones = torso
        # left/right groups of bones (flip_index of the child joints)
        groups, gid = [], {}
        for b, j in enumerate(self.children):
            m = int(flip_index[j]) if flip_index is not None else j
            key = min(j, m)
            if key not in gid:
                gid[key] = len(groups)
                groups.append([])
            groups[gid[key]].append(b)
        self.bone_groups = groups
        # leaf -> root chains (the parts of the KCS discriminator)
        leaves = [j for j in range(K) if not kids[j]]
        self.chains = [[b for b in range(nb) if A[j, b] > 0] for j in leaves]

    @property
    def num_bones(self) -> int:
        return len(self.children)

    def group_matrix(self, device=None, dtype=torch.float32) -> Tensor:
        """``(num_groups, num_bones)`` 0/1: which group each bone's ratio comes from."""
        G = torch.zeros(len(self.bone_groups), self.num_bones, device=device, dtype=dtype)
        for g, bones in enumerate(self.bone_groups):
            G[g, bones] = 1
        return G


def bone_vectors(X: Tensor, chain: KinematicChain) -> Tensor:
    """Joints ``(B, K, 3)`` -> bone vectors ``(B, num_bones, 3)`` (child minus parent)."""
    return X[:, chain.children] - X[:, chain.bone_parents]


def decompose(X: Tensor, chain: KinematicChain, eps: float = 1e-9) -> Tuple[Tensor, Tensor]:
    """Joints ``(B, K, 3)`` -> unit bone vectors ``(B, nb, 3)`` and lengths ``(B, nb, 1)``."""
    b = bone_vectors(X, chain)
    length = b.norm(dim=-1, keepdim=True)
    return b / length.clamp_min(eps), length


def compose_bones(bones: Tensor, chain: KinematicChain, root: Optional[Tensor] = None) -> Tensor:
    """Bone vectors ``(B, nb, 3)`` (+ root position ``(B, 1, 3)``, default the origin) ->
    joints ``(B, K, 3)``: the inverse of :func:`bone_vectors`."""
    A = chain.ancestors.to(device=bones.device, dtype=bones.dtype)
    X = torch.einsum("kb,nbc->nkc", A, bones)
    return X if root is None else X + root


def axis_angle_to_matrix(r: Tensor) -> Tensor:
    """Axis-angle ``(B, 3)`` radians -> rotation matrices ``(B, 3, 3)`` (Rodrigues)."""
    theta = r.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    k = r / theta
    K = torch.zeros(r.shape[0], 3, 3, device=r.device, dtype=r.dtype)
    K[:, 0, 1], K[:, 0, 2] = -k[:, 2], k[:, 1]
    K[:, 1, 0], K[:, 1, 2] = k[:, 2], -k[:, 0]
    K[:, 2, 0], K[:, 2, 1] = -k[:, 1], k[:, 0]
    s, c = torch.sin(theta)[..., None], torch.cos(theta)[..., None]
    eye = torch.eye(3, device=r.device, dtype=r.dtype).expand_as(K)
    return eye + s * K + (1 - c) * (K @ K)


def project(X: Tensor, camera: Tensor) -> Tensor:
    """Camera-frame points ``(B, K, 3)`` mm -> pixels ``(B, K, 2)`` with ``camera`` ``(B, 4)``
    = fx, fy, cx, cy (pinhole)."""
    z = X[..., 2:3].clamp_min(1e-3)
    return X[..., :2] / z * camera[:, None, :2] + camera[:, None, 2:]


# ---------------------------------------------------------------------------- networks
class _Block(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(w, w), nn.BatchNorm1d(w), nn.LeakyReLU(),
                                  nn.Linear(w, w), nn.BatchNorm1d(w), nn.LeakyReLU())

    def forward(self, x):
        return self.body(x)     # the official blocks have no skip connection


def _mlp(cin, cout, width, stages):
    return nn.Sequential(nn.Linear(cin, width), nn.BatchNorm1d(width), nn.LeakyReLU(),
                         *[_Block(width) for _ in range(stages)], nn.Linear(width, cout))


@dataclass
class PoseAugConfig(Config):
    """The augmentor's architecture, losses and schedule (official defaults; see the module
    docstring). Lengths in mm, angles in radians; ``*_steps`` count engine steps."""
    width: int = 256
    num_stages: int = 2
    noise: int = 48
    kcs_width: int = 256
    d2d_width: int = 100
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    blr_tanh_limit: float = 0.2
    blr_limit: float = 0.1
    ba_range_m: float = 0.205
    ba_range_w: float = 0.165
    rot_range: float = math.pi
    trans_range: Tuple[float, float, float] = (500.0, 500.0, 1000.0)
    min_depth: float = 1000.0
    hard_ratio_ba: Tuple[float, float] = (3.0, 5.0)
    hard_std_ba: float = 2.0
    hard_ratio_rt: Tuple[float, float] = (17.0, 17.0)
    hard_std_rt: float = 15.0
    w_d2d: float = 1.0
    w_d3d: float = 6.0
    w_diff: float = 3.0
    w_feedback_ba: float = 0.1
    w_feedback_rt: float = 0.01
    warmup_steps: int = 0
    ramp_steps: int = 1000
    d_every: int = 2
    grad_clip: float = 1.0

    def __post_init__(self):
        for k in ("width", "noise", "kcs_width", "d2d_width", "d_every", "ramp_steps"):
            if getattr(self, k) < 1:
                raise ConfigError(f"poseaug.{k}: must be >= 1, got {getattr(self, k)}")
        if not 0 < self.blr_tanh_limit < 1:
            raise ConfigError(f"poseaug.blr_tanh_limit: must be in (0, 1), got {self.blr_tanh_limit}")
        if len(self.trans_range) != 3 or len(self.hard_ratio_ba) != 2 or len(self.hard_ratio_rt) != 2:
            raise ConfigError("poseaug: 'trans_range' takes 3 values, 'hard_ratio_*' 2")


POSEAUG_CONFIGS = {"paper": {}, "tiny": dict(width=32, num_stages=1, noise=8, kcs_width=32,
                                             d2d_width=32, lr_g=1e-3, lr_d=1e-3)}


class PoseAugmentor(nn.Module):
    """BA -> BL -> RT generator (see the module docstring). ``forward(X, root, camera)``
    with root-relative joints ``X`` ``(B, K, 3)`` mm, absolute root ``(B, 3)`` mm and camera
    ``(B, 4)`` -> dict ``pose_ba`` (B, K, 3) root-relative, ``ba_diff`` (B, nb), ``pose_bl``,
    ``blr`` (B, num_groups), ``pose_rt`` (B, K, 3) root-relative (rotated), ``root_rt``
    (B, 3) absolute, ``pose_2d_rt`` (B, K, 2) pixels, ``pose_2d_ba`` (pixels, original root)."""

    def __init__(self, chain: KinematicChain, cfg: PoseAugConfig):
        super().__init__()
        self.chain, self.cfg = chain, cfg
        K, nb, ng = len(chain.parents), chain.num_bones, len(chain.bone_groups)
        self.ba = _mlp(K * 3 + cfg.noise, nb * 3, cfg.width, cfg.num_stages)
        self.bl = _mlp(K * 3 + nb + cfg.noise, ng, cfg.width, cfg.num_stages)
        self.rt_r = _mlp(K * 3 + cfg.noise, 3, cfg.width, cfg.num_stages)   # rotation
        self.rt_t = _mlp(K * 3 + cfg.noise, 3, cfg.width, cfg.num_stages)   # translation
        keep = torch.ones(nb, 1)
        keep[chain.torso_bones] = 0
        self.register_buffer("angle_free", keep, persistent=False)
        gmask = torch.ones(ng)
        if chain.torso_bones:          # the last torso bone keeps its length (scale ambiguity)
            last = chain.torso_bones[-1]
            gmask[[g for g, bs in enumerate(chain.bone_groups) if last in bs]] = 0
        self.register_buffer("length_free", gmask, persistent=False)
        self.register_buffer("groups", chain.group_matrix(), persistent=False)
        self.register_buffer("trans_range", torch.tensor(cfg.trans_range, dtype=torch.float32),
                             persistent=False)
        self.scale = 1000.0           # mm -> m for the network inputs

    def _noise(self, x):
        return torch.randn(x.shape[0], self.cfg.noise, device=x.device, dtype=x.dtype)

    def forward(self, X: Tensor, root: Tensor, camera: Tensor) -> Dict[str, Tensor]:
        chain, cfg = self.chain, self.cfg
        X = X - X[:, chain.root:chain.root + 1]
        flat = X.reshape(X.shape[0], -1) / self.scale
        unit, length = decompose(X, chain)
        # BA: new bone directions, lengths unchanged
        d = self.ba(torch.cat([flat, self._noise(flat)], 1)).view_as(unit)
        new = unit + d
        new = new / new.norm(dim=-1, keepdim=True).clamp_min(1e-9)
        new = new * self.angle_free + unit * (1 - self.angle_free)
        ba_diff = 1 - (new * unit).sum(-1)
        pose_ba = compose_bones(new * length, chain)
        # BL: one length ratio per symmetric group
        blr = self.bl(torch.cat([flat, length[..., 0] / self.scale, self._noise(flat)], 1))
        blr = torch.tanh(blr * self.length_free) * cfg.blr_tanh_limit
        ratio = 1 + blr @ self.groups                         # (B, nb)
        pose_bl = compose_bones(new * length * ratio[..., None], chain)
        # RT: rotation about the root, translation of the root, projection
        r = self.rt_r(torch.cat([flat, self._noise(flat)], 1))
        t = self.rt_t(torch.cat([flat, self._noise(flat)], 1))
        R = axis_angle_to_matrix(torch.tanh(r) * cfg.rot_range)
        pose_rt = pose_bl @ R.transpose(1, 2)
        root_rt = root + torch.tanh(t) * self.trans_range
        root_rt = torch.cat([root_rt[:, :2], root_rt[:, 2:].clamp_min(cfg.min_depth)], 1)
        return {"pose_ba": pose_ba, "ba_diff": ba_diff, "pose_bl": pose_bl, "blr": blr,
                "bone_ratio": ratio, "pose_rt": pose_rt, "root_rt": root_rt,
                "pose_2d_ba": project(pose_ba + root[:, None], camera),
                "pose_2d_rt": project(pose_rt + root_rt[:, None], camera)}


class _KCSPath(nn.Module):
    def __init__(self, cin, width, mid=100):
        super().__init__()
        self.l1, self.l2, self.l3 = nn.Linear(cin, width), nn.Linear(width, width), nn.Linear(width, width)
        self.last, self.pred = nn.Linear(width, mid), nn.Linear(mid, 1)

    def forward(self, x):
        a = F.leaky_relu(self.l1(x))
        b = self.l3(F.leaky_relu(self.l2(a))) + a
        return self.pred(F.leaky_relu(self.last(b)))


class KCSDiscriminator(nn.Module):
    """3-D pose discriminator on kinematic-chain-space features (Wandt & Rosenhahn): for each
    leaf -> root chain, ``Psi = B B^T`` (``num_bones x num_bones``) of the unit bone vectors
    with the bones off the chain zeroed (bone angles only, as the official discriminator)
    through a residual MLP; ``(B, K, 3) -> (B, num_chains)`` scores."""

    def __init__(self, chain: KinematicChain, width: int = 256, mid: int = 100):
        super().__init__()
        self.chain = chain
        nb = chain.num_bones
        masks = torch.zeros(len(chain.chains), nb, 1)
        for i, bones in enumerate(chain.chains):
            masks[i, bones] = 1
        self.register_buffer("masks", masks, persistent=False)
        self.paths = nn.ModuleList(_KCSPath(nb * nb, width, mid) for _ in chain.chains)

    def forward(self, X: Tensor) -> Tensor:
        unit, _ = decompose(X, self.chain)
        out = []
        for mask, path in zip(self.masks, self.paths):
            b = unit * mask
            out.append(path((b @ b.transpose(1, 2)).flatten(1)))
        return torch.cat(out, 1)


class Pose2DDiscriminator(nn.Module):
    """2-D pose discriminator (the official residual MLP): ``(B, K, 2)`` -> ``(B, 1)``."""

    def __init__(self, num_keypoints: int, width: int = 100):
        super().__init__()
        self.l1, self.l2 = nn.Linear(num_keypoints * 2, width), nn.Linear(width, width)
        self.l3, self.l4 = nn.Linear(width, width), nn.Linear(width, width)
        self.last, self.pred = nn.Linear(width, width), nn.Linear(width, 1)

    def forward(self, x: Tensor) -> Tensor:
        d1 = F.leaky_relu(self.l1(x.flatten(1)))
        d2 = F.leaky_relu(self.l2(d1))
        d3 = F.leaky_relu(self.l3(d2) + d1)
        return self.pred(F.leaky_relu(self.last(self.l4(d3))))


# ---------------------------------------------------------------------------- losses
def range_loss(value: Tensor, center, width) -> Tensor:
    """Squared distance to ``center`` where it exceeds ``width`` (the official
    ``diff_range_loss``), averaged."""
    d = (value - center) ** 2
    return (d * (d > width ** 2)).mean()


def rectified_l2(value: Tensor, limit: float) -> Tensor:
    """``value ** 2`` where ``|value| > limit``, averaged (the official ``rectifiedL2loss``)."""
    d = value ** 2
    return (d * (d > limit ** 2)).mean()


def _lsgan(scores: Tensor, target: float) -> Tensor:
    return F.mse_loss(scores, torch.full_like(scores, target))


# ---------------------------------------------------------------------------- wrapper
class PoseAugLifter(nn.Module):
    """A lifter (:class:`~pyhpe.models.PoseModel` with a lift3d codec) trained with PoseAug.

    ``forward(inputs)`` / ``predict`` are the lifter's. ``forward(inputs, targets)`` in
    training mode runs one PoseAug step (module docstring) and returns the lifter's losses:
    ``loss_mse`` (real batch) and ``loss_mse_aug`` (augmented batch, after the warm-up).
    ``targets`` needs ``keypoints_3d`` (B, K, 3) root-relative mm, ``root_3d`` (B, 3) mm
    (the camera-frame root) and ``camera`` (B, 4) fx fy cx cy, besides the codec's targets.
    The augmentor's and discriminators' last losses are in :attr:`last_aug_losses`."""

    def __init__(self, lifter: nn.Module, chain: KinematicChain, cfg: PoseAugConfig):
        super().__init__()
        self.lifter, self.cfg, self.chain = lifter, cfg, chain
        K = len(chain.parents)
        self.augmentor = PoseAugmentor(chain, cfg)
        self.d3d = KCSDiscriminator(chain, cfg.kcs_width)
        self.d2d = Pose2DDiscriminator(K, cfg.d2d_width)
        self.register_buffer("aug_step", torch.zeros((), dtype=torch.long))
        self._opts = None
        self.last_aug_losses: Dict[str, float] = {}

    @property
    def codec(self):
        return self.lifter.codec

    @property
    def head(self):
        return self.lifter.head

    def predict(self, inputs, **kw):
        return self.lifter.predict(inputs, **kw)

    def _optimizers(self):
        if self._opts is None:
            c = self.cfg
            self._opts = (torch.optim.Adam(self.augmentor.parameters(), lr=c.lr_g),
                          torch.optim.Adam(self.d3d.parameters(), lr=c.lr_d),
                          torch.optim.Adam(self.d2d.parameters(), lr=c.lr_d))
        return self._opts

    def _lifter_error(self, pose_2d: Tensor, pose_3d: Tensor) -> Tensor:
        """Per-pose mean joint error (mm) of the lifter on pixels ``pose_2d`` against the
        root-relative ``pose_3d``."""
        codec = self.codec
        pred = codec.denormalize_3d(self.lifter(codec.normalize_2d(pose_2d)))
        return (pred - (pose_3d - codec._root(pose_3d))).norm(dim=-1).mean(-1)

    @staticmethod
    def _freeze(modules):
        """Turn off the gradients of ``modules``' parameters; returns those it turned off."""
        params = [p for m in modules for p in m.parameters() if p.requires_grad]
        for p in params:
            p.requires_grad_(False)
        return params

    def forward(self, inputs: Tensor, targets: Optional[Dict[str, Tensor]] = None):
        if targets is None:
            return self.lifter(inputs)
        if not self.training:
            return self.lifter(inputs, targets)
        for k in ("keypoints_3d", "root_3d", "camera"):
            if k not in targets:
                raise KeyError(f"PoseAugLifter: targets lack {k!r} (the lift3d task adds them "
                               f"when the data has cameras)")
        c, codec = self.cfg, self.codec
        step = int(self.aug_step)
        X, root, cam = targets["keypoints_3d"].float(), targets["root_3d"].float(), targets["camera"].float()
        real_2d = targets.get("keypoints_2d")
        if real_2d is None:       # the pixels of the real pose: its projection
            real_2d = project(X - X[:, self.chain.root:self.chain.root + 1] + root[:, None], cam)
        real_2d = real_2d.float()
        opt_g, opt_d3, opt_d2 = self._optimizers()
        frozen = [self.lifter, self.d3d, self.d2d]
        # the augmentor and discriminators step in float32 with their own optimizers (the
        # engine's autocast and gradient scaler belong to the lifter's step)
        with torch.enable_grad(), torch.autocast(X.device.type, enabled=False):
            # (1) augmentor
            frozen = self._freeze(frozen)
            g = self.augmentor(X, root, cam)
            adv3 = _lsgan(self.d3d(g["pose_ba"]), 1.0)
            adv2 = _lsgan(self.d2d(codec.normalize_2d(g["pose_2d_rt"])), 1.0)
            diff = range_loss(g["ba_diff"].mean(-1), c.ba_range_m, c.ba_range_w) + \
                rectified_l2(g["blr"], c.blr_limit)
            loss_g = c.w_d2d * adv2 + c.w_d3d * adv3 + c.w_diff * diff
            fb = torch.zeros((), device=X.device)
            if step >= c.warmup_steps:
                t = min((step - c.warmup_steps) / c.ramp_steps, 1.0)
                e0 = self._lifter_error(real_2d, X).detach().clamp_min(1e-3)
                for key2, key3, ratio, std, w in (
                        ("pose_2d_ba", "pose_ba", c.hard_ratio_ba, c.hard_std_ba, c.w_feedback_ba),
                        ("pose_2d_rt", "pose_rt", c.hard_ratio_rt, c.hard_std_rt, c.w_feedback_rt)):
                    target = ratio[0] + (ratio[1] - ratio[0]) * t
                    fb = fb + w * range_loss(self._lifter_error(g[key2], g[key3]) / e0, target, std)
                loss_g = loss_g + fb
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            nn.utils.clip_grad_norm_(self.augmentor.parameters(), c.grad_clip)
            opt_g.step()
            opt_g.zero_grad(set_to_none=True)
            for p in frozen:
                p.requires_grad_(True)
            # (2) discriminators
            logs = {"loss_g": float(loss_g.detach()), "loss_g_adv3d": float(adv3.detach()),
                    "loss_g_adv2d": float(adv2.detach()), "loss_g_diff": float(diff.detach()),
                    "loss_g_feedback": float(fb.detach())}
            if step % c.d_every == 0:
                fake3, fake2 = g["pose_ba"].detach(), codec.normalize_2d(g["pose_2d_rt"].detach())
                d3 = 0.5 * (_lsgan(self.d3d(X), 1.0) + _lsgan(self.d3d(fake3), 0.0))
                d2 = 0.5 * (_lsgan(self.d2d(codec.normalize_2d(real_2d)), 1.0)
                            + _lsgan(self.d2d(fake2), 0.0))
                for opt, loss, mod in ((opt_d3, d3, self.d3d), (opt_d2, d2, self.d2d)):
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    nn.utils.clip_grad_norm_(mod.parameters(), c.grad_clip)
                    opt.step()
                    opt.zero_grad(set_to_none=True)
                logs.update(loss_d3d=float(d3.detach()), loss_d2d=float(d2.detach()))
        for p in self.lifter.parameters():
            p.grad = None
        self.last_aug_losses = {**self.last_aug_losses, **logs}   # D: its last update
        self.aug_step += 1
        # (3) the lifter: real batch, then the valid augmented poses
        losses = self.lifter(inputs, targets)
        if step >= c.warmup_steps:
            X_aug = g["pose_rt"].detach()
            x_aug = g["pose_2d_rt"].detach()
            depth = X_aug[..., 2] + g["root_rt"].detach()[:, None, 2]
            ok = (depth > 0.1 * c.min_depth).all(1) & torch.isfinite(x_aug).all(-1).all(-1)
            if ok.any():
                enc = codec.encode(x_aug[ok], targets["keypoint_weights"][ok], keypoints_3d=X_aug[ok])
                aug = self.lifter(enc.pop("inputs"), enc)
                losses.update({f"{k}_aug": v for k, v in aug.items()})
        return losses


__all__ = ["KCSDiscriminator", "KinematicChain", "Pose2DDiscriminator", "PoseAugConfig",
           "PoseAugLifter", "PoseAugmentor", "POSEAUG_CONFIGS", "axis_angle_to_matrix",
           "bone_vectors", "compose_bones", "decompose", "project", "range_loss",
           "rectified_l2"]
