"""SCAI (Kan et al., ECCV 2022, "Self-Constrained Inference Optimization on Structural Groups
for Human Pose Estimation"): self-correctable inference of the distal (terminal) keypoints,
on the heatmaps of any top-down pose model.

The keypoints are partitioned into structural groups; in each group high-confidence *base*
(proximal) keypoints and one low-confidence *terminal* (distal) keypoint. Per group two
networks work on heatmaps:

* the forward prediction network ``Phi``: the base keypoints' heatmaps -> the terminal
  keypoint's heatmap;
* the backward (verification) network ``Gamma``: the terminal heatmap and the other bases'
  heatmaps -> the heatmap of the base next to the terminal (the elbow for the wrist, the
  knee for the ankle, ...), which feeds the terminal back through the proximal keypoint.

Training (:meth:`SCAI.loss` on heatmaps): the forward loss ``D(Phi(H_B), H_t)``, the backward
loss ``D(Gamma(H_t, H_B'), H_b)`` and the self-constraint loss
``D(Gamma(Phi(H_B), H_B'), H_b)``, ``D`` the KL divergence between the target heatmap
normalised to a distribution and the predicted map's spatial softmax (the softmax heads'
heatmap loss less the target's entropy: its gradient does not vanish when the prediction is
far from the target, unlike the MSE of two narrow Gaussians).

Inference (:meth:`SCAI.refine`): for every group whose terminal score is below
``score_thr`` the terminal heatmap itself is corrected by ``steps`` gradient steps (Adam,
the pixel values kept non-negative) that minimise the self-constraint loss
``D(Gamma(H_t, H_B'), H_b)`` (``H_b``, ``H_B'`` the model's own base heatmaps, trusted and
fixed) plus ``prior`` times ``D(Phi(H_B), H_t)``; only the pixels in a local window of
``radius`` heatmap pixels around the terminal's initial peak change (the paper's local
search). The corrected terminal is read out by the soft-argmax of its heatmap in that window
(:func:`local_soft_argmax`).

The networks (``network``), two kinds, both heatmap in / heatmap out:

* ``"conv"`` (:class:`_ConvMapNet`, the default): fully convolutional on the stacked input
  heatmaps, the paper's kind of network. The paper gives no layer table; this module's
  reading is a small encoder (a 3x3 and a 1x1 convolution on the maps and their CoordConv
  channels, map times x and map times y) average-pooled to a global code, and a
  1x1-convolution decoder giving the coefficients of a quadratic over the output pixel's
  coordinate channels: the output logit map. The coordinate channels are what lets so small
  a network learn the group's geometry from a few hundred poses in 100 Adam steps
  (structured synthetic poses, seeds 0-2: summed loss 52 -> ~2, correction of
  1.5-px-perturbed terminals 1.94 -> 0.67 px); an encoder-decoder of strided 3x3
  convolutions without them, tried first, fell only 52 -> 28 in that budget.
* ``"coord"`` (:class:`_MapNet`): each input heatmap read by a local soft-argmax (a
  differentiable, integral read-out), the locations relative to the group's first base
  through an MLP, the Gaussian logits ``-|p - mu|^2 / (2 sigma^2)`` of the predicted
  location rendered on the heatmap grid (seed 0: loss 345 -> 1.0, correction
  1.94 -> 0.56 px).

The
grouping of COCO-17 (four limbs and two head sides, three bases + one terminal each) is this
module's reading of the paper's six groups. SCAI is not a registered model: it post-processes
any model's ``(B, K, H, W)`` heatmaps, standalone or as the top-down task's ``model.scai``
option (:class:`SCAIOption`, :func:`attach_scai`): the networks then train jointly with the
pose network on the batches' ground-truth heatmaps and ``PoseModel.predict`` corrects the
low-confidence terminals between flip averaging and decoding.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
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


def _grid(h: int, w: int, like: Tensor):
    ys = torch.arange(h, device=like.device, dtype=like.dtype)
    xs = torch.arange(w, device=like.device, dtype=like.dtype)
    return ys, xs


def local_soft_argmax(maps: Tensor, radius: float, centers: Optional[Tensor] = None) -> Tensor:
    """``(N, C, H, W) -> (N, C, 2)`` ``(x, y)`` pixel locations: the mean of the
    non-negative heatmap inside the ``(2 radius + 1)``-wide square window around ``centers``
    (``(N, C, 2)``; default: each map's argmax). Differentiable in the map values."""
    n, c, h, w = maps.shape
    ys, xs = _grid(h, w, maps)
    if centers is None:
        idx = maps.detach().flatten(2).argmax(-1)
        centers = torch.stack([(idx % w).to(maps.dtype), torch.div(idx, w, rounding_mode="floor").to(maps.dtype)], -1)
    win = (((xs.view(1, 1, 1, w) - centers[..., 0, None, None]).abs() <= radius)
           & ((ys.view(1, 1, h, 1) - centers[..., 1, None, None]).abs() <= radius))
    p = maps.clamp_min(0) * win
    s = p.sum((-2, -1))
    # an empty window (all-zero map there) falls back to its center
    x = torch.where(s > 1e-12, (p.sum(-2) * xs).sum(-1) / s.clamp_min(1e-12), centers[..., 0])
    y = torch.where(s > 1e-12, (p.sum(-1) * ys).sum(-1) / s.clamp_min(1e-12), centers[..., 1])
    return torch.stack([x, y], -1)


def gaussian_logits(xy: Tensor, size: Tuple[int, int], sigma: float) -> Tensor:
    """``(N, 2)`` pixel locations -> ``(N, H, W)`` logits ``-|p - xy|^2 / (2 sigma^2)``
    (``exp`` of it: the unit-peak Gaussian heatmap)."""
    h, w = size
    ys, xs = _grid(h, w, xy)
    d2 = (xs.view(1, 1, w) - xy[:, 0, None, None]) ** 2 + (ys.view(1, h, 1) - xy[:, 1, None, None]) ** 2
    return -d2 / (2.0 * sigma ** 2)


def heatmap_kl(logits: Tensor, target: Tensor) -> Tensor:
    """``(N, H, W)`` logits and target heatmaps -> ``(N,)``: the KL divergence of the
    logits' spatial softmax from the target normalised to a distribution (the cross-entropy
    less the target's entropy: 0 for a perfect prediction)."""
    q = target.clamp_min(0).flatten(1)
    q = q / q.sum(1, keepdim=True).clamp_min(1e-12)
    return (q * (torch.log(q.clamp_min(1e-30)) - torch.log_softmax(logits.flatten(1), 1))).sum(1)


class _MapNet(nn.Module):
    """Heatmaps ``(N, n, H, W)`` -> Gaussian logits ``(N, H, W)`` of one keypoint: local
    soft-argmax read-out, an MLP on the locations relative to the first input (in units of
    the map size), the predicted location rendered back."""

    def __init__(self, n_in: int, hidden: int, sigma: float, radius: float):
        super().__init__()
        self.sigma, self.radius = float(sigma), float(radius)
        self.mlp = nn.Sequential(nn.Linear(2 * (n_in - 1), hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, 2))

    def from_locations(self, xy: Tensor, size: Tuple[int, int]) -> Tensor:
        """``(N, n, 2)`` pixel locations of the inputs -> the output's Gaussian logits."""
        h, w = size
        scale = xy.new_tensor([w, h])
        xy = xy / scale
        rel = (xy[:, 1:] - xy[:, :1]).flatten(1)
        return gaussian_logits((xy[:, 0] + self.mlp(rel)) * scale, size, self.sigma)

    def forward(self, maps: Tensor) -> Tensor:
        return self.from_locations(local_soft_argmax(maps, self.radius), maps.shape[-2:])


def _coords(n: int, h: int, w: int, like: Tensor) -> Tuple[Tensor, Tensor]:
    """CoordConv channels: ``(n, 1, h, w)`` x and y normalised to ``[-1, 1]``."""
    ys = torch.linspace(-1, 1, h, device=like.device, dtype=like.dtype).view(1, 1, h, 1)
    xs = torch.linspace(-1, 1, w, device=like.device, dtype=like.dtype).view(1, 1, 1, w)
    return xs.expand(n, 1, h, w), ys.expand(n, 1, h, w)


class _ConvMapNet(nn.Module):
    """Heatmaps ``(N, n, H, W)`` -> logits ``(N, H, W)`` of one keypoint, fully convolutional:

    * each input map normalised to unit mass (the networks read where a keypoint is, not how
      confident the model was) and stacked with its CoordConv channels, the map times the
      pixel's x and y in [-1, 1] (``3 n`` channels);
    * an encoder, a 3x3 and a 1x1 convolution, average-pooled over the map to a global code
      (the structural relation of a group spans the whole map, farther than any small
      receptive field; with the coordinate channels the pooled code sees the keypoints'
      locations);
    * a decoder of 1x1 convolutions on the code giving the six coefficients of a quadratic
      over the output pixel's coordinate channels ``(1, x, y, x^2, y^2, xy)``: the output
      logit map (a Gaussian blob, or any quadratic bump, wherever the code puts it)."""

    def __init__(self, n_in: int, hidden: int):
        super().__init__()
        c = hidden
        self.encoder = nn.Sequential(nn.Conv2d(3 * n_in, c, 3, padding=1), nn.ReLU(inplace=True),
                                     nn.Conv2d(c, c, 1))
        self.decoder = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(c, c, 1), nn.ReLU(inplace=True),
                                     nn.Conv2d(c, 6, 1))

    def forward(self, maps: Tensor) -> Tensor:
        n, _, h, w = maps.shape
        m = maps.clamp_min(0)
        m = m / m.flatten(2).sum(-1)[..., None, None].clamp_min(1e-12) * (h * w)
        xs, ys = _coords(n, h, w, maps)
        code = self.encoder(torch.cat([m, m * xs, m * ys], 1)).mean((-2, -1), keepdim=True)
        basis = torch.cat([torch.ones_like(xs), xs, ys, xs * xs, ys * ys, xs * ys], 1)
        return (self.decoder(code) * basis).sum(1)


#: the forward / backward network kinds of :class:`SCAI`
NETWORKS = ("conv", "coord")


class SCAI(nn.Module):
    """Forward (``Phi``) / backward (``Gamma``) heatmap networks per structural group
    (``groups``: ``[(bases, terminal)]``); ``sigma``: the Gaussian of the output maps (the
    codec's, in heatmap pixels); ``read_radius``: the half-width of the soft-argmax windows;
    ``network``: ``"conv"`` (default, :class:`_ConvMapNet`, fully convolutional heatmap to
    heatmap) or ``"coord"`` (:class:`_MapNet`, soft-argmax read-out + MLP)."""

    def __init__(self, groups: Sequence = COCO17_GROUPS, hidden: int = 64, sigma: float = 2.0,
                 read_radius: float = 3.0, network: str = "conv"):
        super().__init__()
        if network not in NETWORKS:
            raise ValueError(f"'network' must be one of {list(NETWORKS)}, got {network!r}")
        self.groups = [(tuple(int(i) for i in b), int(t)) for b, t in groups]
        self.sigma, self.read_radius, self.network = float(sigma), float(read_radius), network

        def make(n):
            return _ConvMapNet(n, hidden) if network == "conv" else _MapNet(n, hidden, sigma, read_radius)
        self.forward_nets = nn.ModuleList(make(len(b)) for b, _ in self.groups)
        self.backward_nets = nn.ModuleList(make(len(b)) for b, _ in self.groups)

    def predict_terminal(self, g: int, heatmaps: Tensor) -> Tensor:
        """``Phi_g``: ``(B, K, H, W)`` heatmaps -> the terminal's logits ``(B, H, W)``."""
        return self.forward_nets[g](heatmaps[:, list(self.groups[g][0])])

    def reconstruct_base(self, g: int, heatmaps: Tensor, terminal: Tensor,
                         terminal_xy: Optional[Tensor] = None) -> Tensor:
        """``Gamma_g``: the other bases' heatmaps and the terminal heatmap ``(B, H, W)`` -> the
        logits ``(B, H, W)`` of the base next to the terminal. ``terminal_xy`` ``(B, 2)``:
        the terminal's location when already read out (the inference search)."""
        bases = self.groups[g][0]
        if terminal_xy is None or self.network == "conv":
            return self.backward_nets[g](torch.cat([heatmaps[:, list(bases[:-1])], terminal[:, None]], 1))
        xy = local_soft_argmax(heatmaps[:, list(bases[:-1])], self.read_radius)
        return self.backward_nets[g].from_locations(torch.cat([xy, terminal_xy[:, None]], 1),
                                                    heatmaps.shape[-2:])

    def loss(self, heatmaps: Tensor, weights: Optional[Tensor] = None) -> dict:
        """Forward, backward and self-constraint heatmap losses on target ``heatmaps``
        ``(B, K, H, W)`` (``weights`` ``(B, K)``: a group counts where all its keypoints are
        labelled)."""
        hm = heatmaps.float()
        fwd = bwd = cyc = hm.new_zeros(())
        for g, (bases, term) in enumerate(self.groups):
            w = hm.new_ones(hm.shape[0]) if weights is None else \
                (weights[:, list(bases) + [term]] > 0).all(1).float()
            n = w.sum().clamp(min=1)
            t_logits = self.predict_terminal(g, hm)
            fwd = fwd + (heatmap_kl(t_logits, hm[:, term]) * w).sum() / n
            bwd = bwd + (heatmap_kl(self.reconstruct_base(g, hm, hm[:, term]), hm[:, bases[-1]])
                         * w).sum() / n
            # Phi's heatmap fed to Gamma (unit peak)
            t_map = torch.exp(t_logits - t_logits.flatten(1).amax(1)[:, None, None])
            cyc = cyc + (heatmap_kl(self.reconstruct_base(g, hm, t_map), hm[:, bases[-1]])
                         * w).sum() / n
        return {"loss_forward": fwd, "loss_backward": bwd, "loss_self": cyc}

    def self_constraint(self, heatmaps: Tensor) -> Tensor:
        """``(B, G)`` self-constraint losses of the given heatmaps."""
        hm = heatmaps.float()
        return torch.stack([heatmap_kl(self.reconstruct_base(g, hm, hm[:, t]), hm[:, b[-1]])
                            for g, (b, t) in enumerate(self.groups)], 1)

    def refine(self, heatmaps: Tensor, scores: Optional[Tensor] = None, *, score_thr: float = 1.0,
               steps: int = 50, lr: float = 0.05, radius: float = 4.0, prior: float = 0.0
               ) -> Tuple[Tensor, Tensor]:
        """Correct the low-confidence terminal heatmaps (see the module docstring).

        ``heatmaps`` ``(B, K, H, W)``, ``scores`` ``(B, K)`` (default: every terminal is
        corrected). Returns ``(heatmaps, terminals)``: the heatmaps with the corrected
        terminal maps (the input is not modified) and ``(B, G, 2)`` the terminals' ``(x, y)``
        heatmap-pixel locations read out of them (local soft-argmax; uncorrected terminals:
        read out of their unchanged maps)."""
        hm = heatmaps.detach().float()
        out = hm.clone()
        h, w = hm.shape[-2:]
        ys, xs = _grid(h, w, hm)
        term_idx = [t for _, t in self.groups]
        idx = hm[:, term_idx].flatten(2).argmax(-1)
        centers = torch.stack([(idx % w).to(hm.dtype), torch.div(idx, w, rounding_mode="floor").to(hm.dtype)], -1)
        req = [p.requires_grad for p in self.parameters()]
        for p in self.parameters():
            p.requires_grad_(False)
        try:
            for g, (bases, term) in enumerate(self.groups):
                sel = torch.ones(hm.shape[0], dtype=torch.bool, device=hm.device) \
                    if scores is None else scores[:, term] < score_thr
                if not sel.any():
                    continue
                k, c = hm[sel], centers[sel, g]
                win = (((xs.view(1, 1, w) - c[:, 0, None, None]).abs() <= radius)
                       & ((ys.view(1, h, 1) - c[:, 1, None, None]).abs() <= radius)).to(hm.dtype)
                t0 = k[:, term]
                t = t0.clone().requires_grad_(True)
                opt = torch.optim.Adam([t], lr=lr)
                with torch.no_grad():
                    phi = self.predict_terminal(g, k)
                    phi = torch.exp(phi - phi.flatten(1).amax(1)[:, None, None])
                base = k[:, bases[-1]]
                for _ in range(steps):
                    opt.zero_grad()
                    t_xy = local_soft_argmax(t[:, None], radius, c[:, None])[:, 0]
                    obj = heatmap_kl(self.reconstruct_base(g, k, t, t_xy), base).sum()
                    if prior:
                        obj = obj + prior * heatmap_kl(gaussian_logits(t_xy, (h, w), self.sigma),
                                                                  phi).sum()
                    obj.backward()
                    t.grad.mul_(win)                     # the local search window only
                    opt.step()
                    with torch.no_grad():
                        t.copy_(torch.where(win > 0, t.clamp_min(0), t0))
                out[sel, term] = t.detach()
        finally:
            for p, r in zip(self.parameters(), req):
                p.requires_grad_(r)
        read = local_soft_argmax(out[:, term_idx], radius, centers)
        return out, read


# ---------------------------------------------------------------------------- engine option
#: named structural groupings for ``model.scai.groups`` (indices into the keypoint set; the
#: COCO-17 grouping also fits the sets that start with COCO's 17 body keypoints)
SCAI_GROUPS = {"coco": COCO17_GROUPS}

_OPTION_KEYS = ("groups", "weight", "steps", "lr", "confidence", "radius", "prior", "hidden",
                "read_radius", "infer", "network")


class SCAIOption(nn.Module):
    """SCAI as an option of a heatmap :class:`~pyhpe.models.PoseModel` (the top-down task's
    ``model.scai``; :func:`attach_scai`).

    Training (:meth:`losses`): the forward / backward / self-constraint losses of the
    :class:`SCAI` networks on the batch's *ground-truth* target heatmaps, ``weight`` times
    each, named ``loss_scai_forward`` / ``loss_scai_backward`` / ``loss_scai_self``. The
    networks learn the structure of labelled poses, as the paper trains its prediction and
    verification networks; their inputs are labels, so no gradient of these losses reaches
    the pose network, and the pose network's loss does not train them: the two are trained
    jointly (one optimiser, one step) but independently. The paper's text describes the
    networks learning the keypoints' structural correlation during training; feeding them the
    labels rather than the pose network's maps (and so no gradient into the pose network) is
    this module's reading. ``weight`` (default 0.01) matters little to Adam, but the
    engine's gradient clipping is global: at weight 1 the SCAI gradients (KL losses of a few
    hundred at the start) would set the clip norm and shrink the pose network's step.

    Inference (:meth:`predict`, from ``PoseModel.predict`` when ``infer`` is on): the head's
    final heatmaps (flip-averaged when flip-testing) are decoded by the codec; the terminal
    keypoints whose score is below ``confidence`` are corrected by :meth:`SCAI.refine`
    (``steps`` Adam steps of rate ``lr`` on the terminal heatmap in a ``radius``-pixel window,
    minimising the self-constraint loss against the model's own base heatmaps, plus
    ``prior`` times the forward prediction's loss) and replaced by the corrected map's local
    soft-argmax, mapped to the input by the codec's heatmap-to-input scale. ``network``:
    the :class:`SCAI` networks' kind, ``"conv"`` (default) or ``"coord"``. Scores stay the
    model's (the correction moves a keypoint; it does not make it more certain)."""

    def __init__(self, groups, num_keypoints: int, sigma: float, *, weight: float = 0.01,
                 steps: int = 30, lr: float = 0.05, confidence: float = 0.3, radius: float = 4.0,
                 prior: float = 0.0, hidden: int = 64, read_radius: float = 3.0,
                 infer: bool = True, network: str = "conv"):
        super().__init__()
        if isinstance(groups, str):
            if groups not in SCAI_GROUPS:
                raise ValueError(f"'groups' must be one of {sorted(SCAI_GROUPS)} or a list of "
                                 f"[bases, terminal], got {groups!r}")
            groups = SCAI_GROUPS[groups]
        try:
            groups = [(tuple(int(i) for i in b), int(t)) for b, t in groups]
        except (TypeError, ValueError):
            raise ValueError(f"'groups': expected [[base, ...], terminal] pairs, got {groups!r}") from None
        if not groups:
            raise ValueError("'groups' is empty")
        for b, t in groups:
            if len(b) < 2:
                raise ValueError(f"'groups': a group needs at least two bases, got {list(b)}")
            if any(not 0 <= i < num_keypoints for i in (*b, t)) or t in b:
                raise ValueError(f"'groups': group {list(b)} -> {t} does not fit "
                                 f"{num_keypoints} keypoints (distinct indices < {num_keypoints})")
        for name, v, zero_ok in (("weight", weight, False), ("lr", lr, False),
                                 ("radius", radius, False), ("read_radius", read_radius, False),
                                 ("prior", prior, True)):
            if not (isinstance(v, (int, float)) and not isinstance(v, bool)
                    and (v >= 0 if zero_ok else v > 0) and v < float("inf")):
                raise ValueError(f"'{name}' must be a finite number {'>=' if zero_ok else '>'} 0, "
                                 f"got {v!r}")
        for name, v in (("steps", steps), ("hidden", hidden)):
            if not isinstance(v, int) or isinstance(v, bool) or v < (0 if name == "steps" else 1):
                raise ValueError(f"'{name}' must be an integer >= {0 if name == 'steps' else 1}, got {v!r}")
        if not isinstance(confidence, (int, float)) or isinstance(confidence, bool) \
                or not confidence == confidence:
            raise ValueError(f"'confidence' must be a number, got {confidence!r}")
        if not isinstance(infer, bool):
            raise ValueError(f"'infer' must be true or false, got {infer!r}")
        if network not in NETWORKS:
            raise ValueError(f"'network' must be one of {list(NETWORKS)}, got {network!r}")
        self.net = SCAI(groups, hidden=hidden, sigma=sigma, read_radius=read_radius,
                        network=network)
        self.weight, self.steps, self.lr = float(weight), int(steps), float(lr)
        self.confidence, self.radius, self.prior = float(confidence), float(radius), float(prior)
        self.infer = infer

    @property
    def terminals(self):
        return [t for _, t in self.net.groups]

    def losses(self, targets) -> dict:
        """``weight`` x the SCAI losses on ``targets['heatmaps']`` (detached)."""
        hm = targets["heatmaps"].detach()
        w = targets.get("keypoint_weights")
        losses = self.net.loss(hm, None if w is None else w.detach())
        return {"loss_scai_" + k[len("loss_"):]: self.weight * v for k, v in losses.items()}

    def correct(self, heatmaps: Tensor, scores: Tensor) -> Tuple[Tensor, Tensor]:
        """``(B, K, H, W)`` heatmaps and ``(B, K)`` scores -> ``(B, G, 2)`` heatmap-pixel
        locations of the corrected terminals and ``(B, G)`` which of them were corrected."""
        sel = scores[:, self.terminals] < self.confidence
        if not sel.any() or self.steps == 0:
            return heatmaps.new_zeros(heatmaps.shape[0], len(self.terminals), 2), torch.zeros_like(sel)
        # the search differentiates through the networks: grad on, full precision, and usable
        # under torch.inference_mode (the clones are ordinary tensors)
        with torch.inference_mode(False), torch.enable_grad(), \
                torch.autocast(heatmaps.device.type, enabled=False):
            _, xy = self.net.refine(heatmaps.float().clone(), scores.clone(),
                                    score_thr=self.confidence, steps=self.steps, lr=self.lr,
                                    radius=self.radius, prior=self.prior)
        return xy, sel

    def predict(self, head, outputs, flipped_outputs=None, flip_index=None):
        """``head.predict`` with the correction between flip averaging and decoding."""
        from .heads.base import average_outputs
        maps = head.final_outputs(outputs)
        if flipped_outputs is not None:
            maps = average_outputs(maps, head.codec.flip_back(head.final_outputs(flipped_outputs),
                                                               flip_index))
        keypoints, scores = head.codec.decode(maps)
        xy, sel = self.correct(maps.detach(), scores)
        if sel.any():
            scale = torch.tensor(head.codec.scale_factor, dtype=keypoints.dtype, device=keypoints.device)
            term = self.terminals
            keypoints = keypoints.clone()
            keypoints[:, term] = torch.where(sel[..., None], xy.to(keypoints.dtype) * scale,
                                             keypoints[:, term])
        return keypoints, scores


def attach_scai(model: nn.Module, spec: dict, num_keypoints: int) -> SCAIOption:
    """Validate ``spec`` (the ``model.scai`` config section, keys :data:`_OPTION_KEYS`;
    ``groups`` required) and attach a :class:`SCAIOption` as ``model.scai``; ``model`` must
    be a :class:`~pyhpe.models.PoseModel` with a heatmap head (msra / unbiased / udp codec,
    the standard prediction). Raises ``ValueError`` / ``TypeError`` naming the problem."""
    from ..codecs.heatmap import MSRAHeatmap
    from .heads.base import BaseHead
    from .pose_model import PoseModel
    if not isinstance(spec, dict):
        raise TypeError(f"expected an object of {list(_OPTION_KEYS)}, got {type(spec).__name__}")
    unknown = sorted(set(spec) - set(_OPTION_KEYS))
    if unknown:
        raise ValueError(f"unknown keys {unknown}; allowed: {list(_OPTION_KEYS)}")
    if "groups" not in spec:
        raise ValueError(f"'groups' is required ({sorted(SCAI_GROUPS)} or [[bases], terminal] pairs)")
    if not isinstance(model, PoseModel) or type(model).forward is not PoseModel.forward:
        raise ValueError(f"needs a PoseModel (backbone + head) with PoseModel's loss path, got "
                         f"{type(model).__name__}")
    head = model.head
    if not isinstance(head.codec, MSRAHeatmap) or type(head).predict is not BaseHead.predict:
        raise ValueError(f"needs a heatmap head with an msra / unbiased / udp codec, got "
                         f"{type(head).__name__} with the {getattr(head.codec, 'name', '?')!r} codec")
    opt = SCAIOption(spec["groups"], num_keypoints, head.codec.sigma,
                     **{k: v for k, v in spec.items() if k != "groups"})
    model.scai = opt
    return opt
