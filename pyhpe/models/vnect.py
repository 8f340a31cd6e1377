"""VNect (Mehta et al., SIGGRAPH 2017): real-time 3-D pose from one RGB camera.

Network (the paper's Fig. 5): ResNet-50 up to res4f (stride 16); res5a (1x1 512, 3x3 512,
1x1 1024, projection shortcut, stride 1) and res5b (1x1 256, 3x3 128, 1x1 256); a 4x4
stride-2 deconvolution to 128 channels and one to ``3K`` kinematic-parent-relative maps
``dX, dY, dZ`` whose bone-length map ``BL = sqrt(dX^2 + dY^2 + dZ^2)`` joins them; a 3x3
convolution (128) and a 1x1 convolution to ``4K`` maps: the heatmaps ``H`` and the location
maps ``X, Y, Z`` (stride 8; 46 x 46 at 368 x 368).

The model is a :class:`~pyhpe.models.pose_model.PoseModel`: :class:`VNectNet` and the head
:class:`~pyhpe.models.heads.body3d.VNectHead` (codec :class:`pyhpe.codecs.VNectCodec`), which
owns the loss and the read-out. Loss: heatmap L2 plus the location-map L2 weighted by the ground-truth heatmap,
``sum_j || H_j^GT * (X_j - x_j^GT) ||^2`` (and Y, Z): the location maps only have to hold the
joint's root-relative position around its 2-D peak. Read-out
(:func:`pyhpe.codecs.body3d.read_location_maps`): each joint's ``(x, y, z)`` at its heatmap
maximum.

Kinematic skeleton fitting (:func:`fit_skeleton`): the paper's per-frame energy
``E = w_IK E_IK + w_proj E_proj (+ w_smooth E_smooth)`` over the joint angles ``theta`` and the
global translation ``d`` of a skeleton with fixed bone lengths, ``E_IK = ||(P_G - d) - P_L||^2``
(``P_L`` the read-out), ``E_proj = ||Pi(P_G) - K||^2`` (``K`` the 2-D peaks in image pixels),
``E_smooth`` a previous frame's angles; ``d`` starts from the linear least-squares solution of
the projection of ``P_L``; optimised through torch (L-BFGS).
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..codecs.body3d import VNectCodec, project
from .common import ResNet, conv_bn_act
from .heads.body3d import VNectHead
from .pose_model import PoseModel


class _Bottleneck(nn.Module):
    """1x1 ``mid1`` -> 3x3 ``mid2`` -> 1x1 ``cout`` (BN, ReLU) with a projection shortcut where
    the width changes."""

    def __init__(self, cin, mid1, mid2, cout, shortcut=True):
        super().__init__()
        self.body = nn.Sequential(conv_bn_act(cin, mid1, 1), conv_bn_act(mid1, mid2, 3),
                                  conv_bn_act(mid2, cout, 1, act=False))
        self.short = None
        if shortcut:
            self.short = nn.Identity() if cin == cout else conv_bn_act(cin, cout, 1, act=False)

    def forward(self, x):
        y = self.body(x)
        return F.relu(y + self.short(x) if self.short is not None else y)


class VNectNet(nn.Module):
    """``(B, 3, H, W)`` (or ``{"image": ...}``) ``-> (heatmaps (B, K, h, w), location maps
    (B, K, 3, h, w))``."""

    def __init__(self, num_keypoints: int, backbone: ResNet, res5a=(512, 512, 1024),
                 res5b=(256, 128, 256), up_channels=128, final_channels=128):
        super().__init__()
        K = self.num_keypoints = int(num_keypoints)
        self.backbone = backbone
        self.res5a = _Bottleneck(backbone.out_channels, *res5a, shortcut=True)
        self.res5b = _Bottleneck(res5a[2], *res5b, shortcut=False)
        self.up = nn.Sequential(nn.ConvTranspose2d(res5b[2], up_channels, 4, 2, 1, bias=False),
                                nn.BatchNorm2d(up_channels), nn.ReLU(inplace=True))
        self.delta = nn.ConvTranspose2d(res5b[2], 3 * K, 4, 2, 1, bias=False)
        self.fuse = conv_bn_act(up_channels + 4 * K, final_channels, 3)
        self.out = nn.Conv2d(final_channels, 4 * K, 1)
        nn.init.normal_(self.out.weight, std=0.001)
        nn.init.zeros_(self.out.bias)

    def forward(self, image):
        if isinstance(image, dict):
            image = image["image"]
        f = self.res5b(self.res5a(self.backbone(image)))
        K = self.num_keypoints
        delta = self.delta(f)
        dx, dy, dz = delta[:, :K], delta[:, K:2 * K], delta[:, 2 * K:]
        bone = torch.sqrt(dx * dx + dy * dy + dz * dz + 1e-12)
        y = self.out(self.fuse(torch.cat([self.up(f), delta, bone], 1)))
        B, _, h, w = y.shape
        return y[:, :K], y[:, K:].reshape(B, 3, K, h, w).transpose(1, 2)


def build(num_keypoints=17, codec=None, *, input_size=(368, 368), depth=50, layers=(3, 4, 6),
          widths=(64, 128, 256), stem_channels=64, stem_pool=True, res5a=(512, 512, 1024),
          res5b=(256, 128, 256), up_channels=128, final_channels=128, location_weight=1.0,
          root_index=0, sigma=2.0, joint_weights=None) -> PoseModel:
    """VNect; without a codec: :class:`VNectCodec` at ``input_size`` and the maps' size."""
    backbone = ResNet(depth, list(layers), widths, "bottleneck", stem_channels, stem_pool, "conv7")
    if codec is None:
        stride = backbone.stride / 2
        codec = VNectCodec(input_size, tuple(int(round(int(v) / stride)) for v in input_size),
                           sigma, root_index)
    if not isinstance(codec, VNectCodec):
        raise TypeError(f"vnect: needs a VNectCodec, got {type(codec).__name__}")
    net = VNectNet(num_keypoints, backbone, res5a, res5b, up_channels, final_channels)
    return PoseModel(net, VNectHead(codec, location_weight, joint_weights=joint_weights))


CONFIGS = {
    # ResNet-50 to res4f, the paper's res5a / res5b widths and heads, 368 x 368 -> 46 x 46
    "paper": dict(input_size=(368, 368), depth=50, layers=(3, 4, 6), widths=(64, 128, 256)),
    "tiny": dict(input_size=(64, 64), layers=(1, 1, 1), widths=(8, 16, 32), stem_channels=8,
                 stem_pool=False, res5a=(32, 32, 64), res5b=(32, 16, 32), up_channels=16,
                 final_channels=16),
}


# ---------------------------------------------------------------------------- skeleton fitting
class SkeletonFit(NamedTuple):
    joints: Tensor        # (B, K, 3) camera-frame mm (the fitted global pose P_G)
    angles: Tensor        # (B, K, 3) axis-angle joint rotations (radians)
    translation: Tensor   # (B, 3) the root's camera-frame position d (mm)
    energy: Tensor        # (B,) the final energy


def _topological(parents: Sequence[int]) -> list:
    order, done = [], set()
    parents = [int(p) for p in parents]
    while len(order) < len(parents):
        added = False
        for j, p in enumerate(parents):
            if j not in done and (p < 0 or p in done):
                order.append(j)
                done.add(j)
                added = True
        if not added:
            raise ValueError("fit_skeleton: 'parents' is not a tree")
    return order


def _rotation(aa: Tensor) -> Tensor:
    """Axis-angle ``(..., 3)`` -> rotation matrices ``(..., 3, 3)`` (exp of the skew matrix)."""
    x, y, z = aa.unbind(-1)
    o = torch.zeros_like(x)
    skew = torch.stack([o, -z, y, z, o, -x, -y, x, o], -1).reshape(*aa.shape[:-1], 3, 3)
    return torch.linalg.matrix_exp(skew)


def forward_kinematics(angles: Tensor, offsets: Tensor, parents: Sequence[int]) -> Tensor:
    """Root-relative joints ``(B, K, 3)`` of a skeleton whose bone ``parent(j) -> j`` is
    ``offsets[:, j]`` (``(B, K, 3)``, rest pose, parent frame) and whose joint ``j`` rotates its
    children by ``angles[:, j]`` (axis-angle): ``R_j = R_parent(j) exp(angles_j)``,
    ``P_j = P_parent(j) + R_parent(j) offsets_j``; the root at 0 rotated by its own angle."""
    B, K, _ = offsets.shape
    R = _rotation(angles)
    glob: list = [None] * K
    pos: list = [None] * K
    for j in _topological(parents):
        p = int(parents[j])
        if p < 0:
            glob[j] = R[:, j]
            pos[j] = offsets.new_zeros(B, 3)
        else:
            pos[j] = pos[p] + (glob[p] @ offsets[:, j, :, None])[..., 0]
            glob[j] = glob[p] @ R[:, j]
    return torch.stack(pos, 1)


def solve_translation(pose_3d: Tensor, keypoints_2d: Tensor, camera: Tensor,
                      weights: Optional[Tensor] = None) -> Tensor:
    """The global translation ``d (B, 3)`` minimising the (linearised) reprojection error of
    ``pose_3d + d`` against ``keypoints_2d`` (pinhole ``camera (B, 4)``): per joint
    ``fx dx - (u - cx) dz = (u - cx) Z - fx X`` (and y), weighted least squares."""
    P, kp = pose_3d.double(), keypoints_2d.double()
    cam = camera.double()
    B, K, _ = P.shape
    w = P.new_ones(B, K) if weights is None else weights.double()
    f, c = cam[:, None, :2], cam[:, None, 2:]
    uc = kp - c
    A = P.new_zeros(B, K, 2, 3)
    A[..., 0, 0] = f[..., 0]
    A[..., 1, 1] = f[..., 1]
    A[..., :, 2] = -uc
    b = uc * P[..., 2:3] - f * P[..., :2]
    sw = w.sqrt()[..., None]
    A = (A * sw[..., None]).reshape(B, 2 * K, 3)
    b = (b * sw).reshape(B, 2 * K, 1)
    return torch.linalg.lstsq(A, b).solution[..., 0]


def fit_skeleton(pose_3d: Tensor, keypoints_2d: Tensor, camera: Tensor, parents: Sequence[int],
                 *, template: Optional[Tensor] = None, bone_lengths: Optional[Tensor] = None,
                 weights: Optional[Tensor] = None, previous_angles: Optional[Tensor] = None,
                 w_ik: float = 1.0, w_proj: float = 10.0, w_smooth: float = 0.0,
                 steps: int = 100) -> SkeletonFit:
    """VNect's kinematic skeleton fitting for a batch of frames (see the module docstring).

    ``pose_3d (B, K, 3)`` root-relative mm (the location-map read-out ``P_L``),
    ``keypoints_2d (B, K, 2)`` image pixels, ``camera (B, 4)`` pinhole; ``template`` ``(K, 3)``
    or ``(B, K, 3)`` the skeleton's rest pose (default: ``pose_3d``; its bone directions are
    the rest directions), ``bone_lengths (K,)`` or ``(B, K)`` mm (default: the template's;
    entry ``j`` is the bone ``parent(j) -> j``), ``weights (B, K)`` the 2-D confidences.
    Energies in mm^2 and px^2 per joint."""
    P_L = pose_3d.double()
    B, K, _ = P_L.shape
    kp = keypoints_2d.double()
    cam = camera.double()
    parents = [int(p) for p in parents]
    if len(parents) != K:
        raise ValueError(f"fit_skeleton: {len(parents)} parents for {K} joints")
    root = parents.index(-1)
    tmpl = P_L if template is None else torch.as_tensor(template).double().expand(B, K, 3)
    par = torch.tensor([p if p >= 0 else j for j, p in enumerate(parents)])
    bones = tmpl - tmpl[:, par]
    length = bones.norm(dim=-1)
    if bone_lengths is not None:
        length = torch.as_tensor(bone_lengths).double().expand(B, K)
    direction = bones / bones.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    offsets = (direction * length[..., None]).detach()
    w = P_L.new_ones(B, K) if weights is None else weights.double()
    d0 = solve_translation(P_L, kp, cam, w)
    angles = torch.zeros(B, K, 3, dtype=torch.float64, requires_grad=True)
    trans = (d0 / 1000.0).clone().requires_grad_(True)      # metres: better conditioned
    prev = None if previous_angles is None else previous_angles.double()

    def energy():
        P = forward_kinematics(angles, offsets, parents)
        P_G = P + trans[:, None] * 1000.0
        e_ik = ((P - P_L) ** 2).sum(-1).mean(-1)
        e_proj = (w * ((project(P_G, cam) - kp) ** 2).sum(-1)).mean(-1)
        e = w_ik * e_ik + w_proj * e_proj
        if prev is not None and w_smooth:
            e = e + w_smooth * ((angles - prev) ** 2).sum((-2, -1))
        return e, P_G

    opt = torch.optim.LBFGS([angles, trans], lr=1.0, max_iter=int(steps),
                            line_search_fn="strong_wolfe", tolerance_grad=1e-10,
                            tolerance_change=1e-14)

    def closure():
        opt.zero_grad()
        e, _ = energy()
        total = e.sum()
        total.backward()
        return total

    with torch.enable_grad():
        if steps > 0:
            opt.step(closure)
        e, P_G = energy()
    del root
    return SkeletonFit(P_G.detach(), angles.detach(), trans.detach() * 1000.0, e.detach())


__all__ = ["SkeletonFit", "VNectNet", "build", "fit_skeleton", "forward_kinematics",
           "solve_translation"]
