"""SCAI (Kan et al., ECCV 2022, "Self-Constrained Inference Optimization on Structural Groups
for Human Pose Estimation"): a self-correctable inference step for terminal (distal)
keypoints, usable on the output of any pose model.

The keypoints are partitioned into structural groups; in each group high-confidence *base*
(proximal) keypoints and one low-confidence *terminal* (distal) keypoint. Per group:

* the forward prediction network ``Phi``: base keypoints -> the terminal keypoint;
* the backward (verification) network ``Gamma``: the terminal keypoint and the other base
  keypoints -> the base keypoint next to the terminal one (elbow for the wrist, knee for the
  ankle, ...).

Training (``loss(keypoints, weights)`` on ground-truth poses): the forward error, the
backward error and the self-constraint (cycle) error ``Gamma(Phi(B), B') - b`` (L2).

Inference (``refine(keypoints, scores)``): each terminal keypoint whose score is below
``score_thr`` is moved, by ``steps`` gradient steps, to minimise the self-constraint loss
``|Gamma(t, B') - b|^2`` (the base keypoints, trusted, stay fixed) plus ``prior`` times
``|t - Phi(B)|^2``, within ``radius`` (fraction of the crop) of its heatmap prediction.

Simplifications (documented): the paper's networks work on heatmaps (with image features)
and its search runs on the terminal heatmap; here both networks are small MLPs on keypoint
coordinates in fractions of the input crop, relative to the group's first base keypoint, and
the optimisation is a gradient descent on the terminal coordinate. The grouping of COCO-17
(four limbs and two head sides, three bases + one terminal each) is this module's reading of
the paper's six groups. SCAI is not a registered model: it post-processes
any model's ``(B, K, 2)`` predictions. It needs real pose structure: on pyhpe's synthetic
figures (independent random limb angles) the terminal keypoint is not determined by the
bases, and the refinement did not help there (measured: terminal error 0.048 -> 0.060).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

# (base keypoints, terminal keypoint); the last base is the one the backward net rebuilds
COCO17_GROUPS: Tuple[Tuple[Tuple[int, ...], int], ...] = (
    ((11, 5, 7), 9),     # left arm: hip, shoulder, elbow -> wrist
    ((12, 6, 8), 10),    # right arm
    ((5, 11, 13), 15),   # left leg: shoulder, hip, knee -> ankle
    ((6, 12, 14), 16),   # right leg
    ((5, 0, 1), 3),      # left head: shoulder, nose, eye -> ear
    ((6, 0, 2), 4),      # right head
)


def _mlp(cin: int, cout: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(cin, hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, cout))


class SCAI(nn.Module):
    """Forward / backward networks per structural group (``groups``: ``[(bases, terminal)]``)
    on ``(B, K, 2)`` keypoints in fractions of the input crop."""

    def __init__(self, groups: Sequence = COCO17_GROUPS, hidden: int = 64):
        super().__init__()
        self.groups = [(tuple(int(i) for i in b), int(t)) for b, t in groups]
        self.forward_nets = nn.ModuleList(_mlp(2 * (len(b) - 1), 2, hidden) for b, _ in self.groups)
        self.backward_nets = nn.ModuleList(_mlp(2 * (len(b) - 1), 2, hidden) for b, _ in self.groups)

    # coordinates relative to the group's first base keypoint
    def predict_terminal(self, g: int, kp: Tensor) -> Tensor:
        bases, _ = self.groups[g]
        o = kp[:, bases[0]]
        rel = torch.cat([kp[:, i] - o for i in bases[1:]], dim=1)
        return self.forward_nets[g](rel) + o

    def reconstruct_base(self, g: int, kp: Tensor, terminal: Tensor) -> Tensor:
        bases, _ = self.groups[g]
        o = kp[:, bases[0]]
        rel = torch.cat([kp[:, i] - o for i in bases[1:-1]] + [terminal - o], dim=1)
        return self.backward_nets[g](rel) + o

    def loss(self, keypoints: Tensor, weights: Optional[Tensor] = None) -> dict:
        """Forward, backward and self-constraint L2 errors on ground-truth ``keypoints``
        (``weights`` (B, K): a group counts where all its keypoints are labelled)."""
        kp = keypoints.float()
        fwd = bwd = cyc = kp.new_zeros(())
        for g, (bases, term) in enumerate(self.groups):
            w = kp.new_ones(kp.shape[0]) if weights is None else \
                (weights[:, list(bases) + [term]] > 0).all(1).float()
            n = w.sum().clamp(min=1)
            t_hat = self.predict_terminal(g, kp)
            fwd = fwd + (((t_hat - kp[:, term]) ** 2).sum(1) * w).sum() / n
            bwd = bwd + (((self.reconstruct_base(g, kp, kp[:, term]) - kp[:, bases[-1]]) ** 2)
                         .sum(1) * w).sum() / n
            cyc = cyc + (((self.reconstruct_base(g, kp, t_hat) - kp[:, bases[-1]]) ** 2)
                         .sum(1) * w).sum() / n
        return {"loss_forward": fwd, "loss_backward": bwd, "loss_self": cyc}

    def self_constraint(self, keypoints: Tensor) -> Tensor:
        """``(B, G)`` self-constraint losses of the given poses."""
        return torch.stack([((self.reconstruct_base(g, keypoints, keypoints[:, t])
                              - keypoints[:, b[-1]]) ** 2).sum(1)
                            for g, (b, t) in enumerate(self.groups)], dim=1)

    def refine(self, keypoints: Tensor, scores: Optional[Tensor] = None, *,
               score_thr: float = 1.0, steps: int = 50, lr: float = 0.01, radius: float = 0.1,
               prior: float = 0.0) -> Tensor:
        """The keypoints with their low-confidence terminal keypoints optimised under the
        self-constraint loss (see the module docstring); the input is not modified."""
        kp = keypoints.detach().float()
        out = kp.clone()
        for p in self.parameters():
            p.requires_grad_(False)
        try:
            for g, (bases, term) in enumerate(self.groups):
                sel = torch.ones(kp.shape[0], dtype=torch.bool, device=kp.device) \
                    if scores is None else scores[:, term] < score_thr
                if not sel.any():
                    continue
                k = kp[sel]
                t0 = k[:, term].clone()
                t = t0.clone().requires_grad_(True)
                opt = torch.optim.Adam([t], lr=lr)
                with torch.no_grad():
                    phi = self.predict_terminal(g, k)
                for _ in range(steps):
                    opt.zero_grad()
                    obj = ((self.reconstruct_base(g, k, t) - k[:, bases[-1]]) ** 2).sum()
                    if prior:
                        obj = obj + prior * ((t - phi) ** 2).sum()
                    obj.backward()
                    opt.step()
                    with torch.no_grad():       # stay in the local window
                        t.copy_(t0 + (t - t0).clamp(-radius, radius))
                out[sel, term] = t.detach()
        finally:
            for p in self.parameters():
                p.requires_grad_(True)
        return out
