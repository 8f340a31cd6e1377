"""OpenPose bottom-up grouping: part peaks, PAF pair scores, greedy/Hungarian assembly.

Ops: ``torch.ops.pyhpe.find_peaks``, ``paf_scores`` and ``group_poses``; the pipeline
:func:`paf_group` chains them. Coordinates are (x, y) in heatmap pixels, pixel
centres at integer coordinates (OpenPose's peaks without its +0.5 "Matlab" offset).

Semantics copy OpenPose (CMU-Perceptual-Computing-Lab/openpose, src/openpose/net):
``nmsBase`` (peaks), ``bodyPartConnectorBase`` getScoreAB / the CUDA ``process`` with its
distance prior (pair scores) and ``connectBodyPartsCpu`` = createPeopleVector +
removePeopleBelowThresholds + peopleVectorToPeopleArray (grouping). The pure-Python oracle is
:mod:`pyhpe.reference.paf`.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import torch

from ._common import as_float_tensor, float_option, int_option
from ._types import GroupedPoses, Peaks, Poses

#: OpenPose COCO-18 parts: nose, neck, r_sho, r_elb, r_wri, l_sho, l_elb, l_wri, r_hip, r_knee,
#: r_ank, l_hip, l_knee, l_ank, r_eye, l_eye, r_ear, l_ear (getPosePartPairs(COCO_18)).
COCO18_LIMBS = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
                (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
                (2, 16), (5, 17))
#: OpenPose's PAF (x, y) channels of each COCO-18 limb within its 38 PAF maps
#: (getPoseMapIndex(COCO_18)).
COCO18_PAF_CHANNELS = ((12, 13), (20, 21), (14, 15), (16, 17), (22, 23), (24, 25), (0, 1),
                       (2, 3), (4, 5), (6, 7), (8, 9), (10, 11), (28, 29), (30, 31), (34, 35),
                       (32, 33), (36, 37), (18, 19), (26, 27))
#: COCO-17 (nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles) as a tree rooted
#: at the left shoulder, ordered so that OpenPose's greedy assembly grows people outwards.
#: PAF channels (2l, 2l + 1).
COCO17_LIMBS = ((5, 6), (5, 7), (7, 9), (6, 8), (8, 10), (5, 11), (11, 13), (13, 15), (6, 12),
                (12, 14), (14, 16), (5, 0), (0, 1), (0, 2), (1, 3), (2, 4))

SKELETONS = {
    "coco18": (COCO18_LIMBS, COCO18_PAF_CHANNELS),
    "coco17": (COCO17_LIMBS, None),
}


_INT32_MAX = 2 ** 31 - 1
#: Most samples per pair :func:`paf_scores` takes (OpenPose uses 5 to 25).
MAX_NUM_SAMPLES = 2 ** 16


@torch.library.register_fake("pyhpe::find_peaks")
def _find_peaks_fake(heatmaps, threshold=0.05, max_peaks=64, refine_radius=3, border="cpu",
                     two_pass=False):
    torch._check(heatmaps.dim() == 4, lambda: "pyhpe.find_peaks: 'heatmaps' must be (B, K, H, W)")
    B, K = heatmaps.shape[0], heatmaps.shape[1]
    return (heatmaps.new_empty((B, K, max_peaks, 3)),
            heatmaps.new_empty((B, K), dtype=torch.int64))


@torch.library.register_fake("pyhpe::paf_scores")
def _paf_scores_fake(pafs, peaks, counts, limbs, paf_channels, num_samples=10,
                     inter_threshold=0.05, min_fraction=0.95, distance_prior=True,
                     prior_score=0.05):
    torch._check(peaks.dim() == 4, lambda: "pyhpe.paf_scores: 'peaks' must be (B, K, M, 3)")
    M = peaks.shape[2]
    return pafs.new_empty((pafs.shape[0], limbs.shape[0], M, M))


@torch.library.register_fake("pyhpe::group_poses")
def _group_poses_fake(peaks, counts, scores, limbs, redundant, min_parts=3, min_mean_score=0.2,
                      method="greedy", max_persons=-1, dedupe_singletons=True, assembly="cpu"):
    ctx = torch.library.get_ctx()
    P = ctx.new_dynamic_size()
    B, K = peaks.shape[0], peaks.shape[1]
    return (peaks.new_empty((B, P, K, 3)), peaks.new_empty((B, P)),
            peaks.new_empty((B,), dtype=torch.int64),
            peaks.new_empty((B, P, K), dtype=torch.int64))


def find_peaks(heatmaps, *, threshold: float = 0.05, max_peaks: int = 64, refine: bool = True,
               refine_radius: int = 3, border: str = "cpu", two_pass: bool = False) -> Peaks:
    """Part candidates of every heatmap, OpenPose ``nmsBase`` semantics.

    ``(B, K, H, W) ->`` :class:`Peaks` ``(peaks (B, K, max_peaks, 3) [x, y, score],
    counts (B, K) int64)``.
    A peak is a pixel with value > ``threshold`` that is a 3x3 local maximum under OpenPose's
    border rules: ``border='cpu'`` (nmsRegisterKernelCPU, default) is a strict maximum for
    2 <= x < W-2, 2 <= y < H-2, a non-strict one on the first inner ring (neighbours outside
    the map count as ``threshold``) and never on the rest of the outer border;
    ``border='gpu'`` (OpenPose's CUDA nmsRegisterKernel) is a strict maximum anywhere but
    the outer border. Peaks are numbered in raster order and the first ``max_peaks`` kept;
    the rest of each row is zero padding. With ``refine`` the position is OpenPose's
    nmsAccuratePeakPosition: the centroid of the positive values in the
    (2r+1) x (2r+1) window around the peak, r = ``refine_radius`` (OpenPose: 3, a 7x7 window;
    1 gives a 3x3 window, any radius up to 2**31 - 1 is clipped to the map); the score is the
    heatmap value at the peak pixel. Where OpenPose's centroid divides by zero or infinity (a
    +inf pixel in the window, or no positive value when ``threshold`` < 0) the peak keeps its
    integer position. NaN pixels are never peaks and never weigh in the centroid (a pixel
    next to a NaN is no strict maximum, as in OpenPose).
    ``threshold`` must be finite; ``max_peaks`` (at most 2**31 - 1, and the output at most
    2**31 - 1 elements) and ``refine_radius`` must be integers (TypeError/ValueError naming
    the argument otherwise). Not differentiable: an input that requires grad under grad mode
    raises a RuntimeError.
    GPU: one thread per pixel flags peaks, a per-channel running count compacts them
    (``two_pass=True`` runs that form on the CPU too, to validate it; same results).
    """
    op = "pyhpe.find_peaks"
    heatmaps = as_float_tensor(heatmaps, "heatmaps")
    if heatmaps.dim() != 4:
        raise ValueError(f"{op}: 'heatmaps' must have shape (B, K, H, W), got "
                         f"shape {tuple(heatmaps.shape)}")
    threshold = float_option(op, threshold, "threshold", finite=True)
    max_peaks = int_option(op, max_peaks, "max_peaks", 0, _INT32_MAX)
    refine_radius = int_option(op, refine_radius, "refine_radius", 0, _INT32_MAX)
    return Peaks(*torch.ops.pyhpe.find_peaks(heatmaps, threshold, max_peaks,
                                             refine_radius if refine else -1, border,
                                             bool(two_pass)))


def _index_pairs(x, name: str, device, op: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        t = x
    else:
        try:
            t = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError) as e:
            raise TypeError(f"{op}: '{name}' must be (L, 2) integer index pairs, got "
                            f"{type(x).__name__}: {e}") from None
        if t.numel() == 0 and t.dim() == 1:
            t = torch.zeros(0, 2, dtype=torch.int64)  # [] is zero pairs
    if t.dim() != 2 or t.shape[-1] != 2:
        raise ValueError(f"{op}: '{name}' must have shape (L, 2), got shape {tuple(t.shape)}")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{op}: '{name}' must hold integer indices, got dtype {t.dtype}")
    return t.to(device=device, dtype=torch.int64)


def paf_scores(pafs, peaks, counts, limbs, *, num_samples: Optional[int] = 10,
               inter_threshold: float = 0.05, min_fraction: float = 0.95, paf_channels=None,
               distance_prior: bool = True, prior_score: float = 0.05) -> torch.Tensor:
    """PAF line-integral score of every candidate pair of every limb (OpenPose getScoreAB).

    pafs ``(B, 2L', H, W)``, peaks ``(B, K, M, 3)``, counts ``(B, K)``, limbs ``(L, 2)`` part
    indices (A, B) ``-> scores (B, L, M, M)``, ``scores[b, l, i, j]`` for peak i of part A and
    peak j of part B. The PAF of limb l is channels ``paf_channels[l] = (x, y)`` (default
    ``(2l, 2l+1)``; OpenPose COCO-18: :data:`COCO18_PAF_CHANNELS`).

    ``num_samples`` points A + m(B-A)/n, m = 0..n-1, are rounded (int(v + 0.5)) and clamped
    into the map; ``num_samples=None`` uses OpenPose's adaptive n = clip(round(sqrt(5 *
    max(|dx|, |dy|))), 5, 25). A sample counts when the PAF projected on the unit A->B vector
    is > ``inter_threshold``; the score is their mean when count/n > ``min_fraction`` (OpenPose
    interMinAboveThreshold). Otherwise, with ``distance_prior`` (OpenPose's CUDA scorer), parts
    closer than sqrt(H*W)/150 pixels score ``prior_score`` + 1e-6 (OpenPose passes its NMS
    threshold). **Invalid pairs are -1**: failed pairs, coincident parts and the padding
    beyond ``counts``. Valid scores are > ``inter_threshold`` (or the prior score), so with
    the default thresholds > 0; :func:`group_poses` takes pairs scoring > 1e-6.
    ``num_samples`` is None or an integer in [1, :data:`MAX_NUM_SAMPLES`]; ``min_fraction``
    lies in [0, 1] (below 0 a pair without any sample above the threshold would score 0/0);
    thresholds must be finite; ``counts`` must lie in [0, M]; the output holds at most
    2**31 - 1 elements. Errors name the argument. Not differentiable (see :func:`find_peaks`).
    GPU: one thread per (b, l, i, j); CPU: the same math per output row.
    """
    op = "pyhpe.paf_scores"
    pafs = as_float_tensor(pafs, "pafs")
    peaks = as_float_tensor(peaks, "peaks", like=pafs)
    counts = torch.as_tensor(counts, device=pafs.device)
    limbs_t = _index_pairs(limbs, "limbs", pafs.device, op)
    if paf_channels is None:
        L = limbs_t.shape[0]
        channels = torch.arange(2 * L, dtype=torch.int64, device=pafs.device).view(L, 2)
    else:
        channels = _index_pairs(paf_channels, "paf_channels", pafs.device, op)
    n = 0 if num_samples is None else int_option(op, num_samples, "num_samples", 1,
                                                  MAX_NUM_SAMPLES)
    inter_threshold = float_option(op, inter_threshold, "inter_threshold", finite=True)
    min_fraction = float_option(op, min_fraction, "min_fraction", finite=True)
    if not 0.0 <= min_fraction <= 1.0:
        raise ValueError(f"{op}: 'min_fraction' must lie in [0, 1], got {min_fraction}")
    prior_score = float_option(op, prior_score, "prior_score", finite=True)
    return torch.ops.pyhpe.paf_scores(pafs, peaks, counts, limbs_t, channels, n,
                                      inter_threshold, min_fraction, bool(distance_prior),
                                      prior_score)


def _redundant_limbs(K: int, L: int, redundant_limbs) -> torch.Tensor:
    flags = torch.zeros(L, dtype=torch.bool)
    if redundant_limbs is None:
        # OpenPose's ear-shoulder pairs, selected by the number of parts as it does.
        if K == 18:
            redundant_limbs = (17, 18)
        elif K in (19, 25, 59, 65):
            redundant_limbs = (18, 19)
        else:
            redundant_limbs = ()
    for index in redundant_limbs:
        if 0 <= index < L:
            flags[index] = True
    return flags


def group_poses(peaks, counts, scores, limbs, *, min_parts: int = 3,
                min_mean_score: float = 0.2, method: str = "greedy",
                max_persons: Optional[int] = None,
                redundant_limbs: Optional[Sequence[int]] = None,
                assembly: str = "cpu") -> GroupedPoses:
    """Assemble people from peaks and pair scores (OpenPose connectBodyPartsCpu).

    peaks ``(B, K, M, 3)``, counts ``(B, K)``, scores ``(B, L, M, M)`` (from
    :func:`paf_scores`; a pair is a candidate when its score > 1e-6), limbs ``(L, 2)`` ->
    :class:`GroupedPoses` ``(keypoints (B, P, K, 3)`` [x, y, score] (missing parts and padding
    are 0), ``scores (B, P)``, ``counts (B,)``, ``peak_indices (B, P, K)`` the peak index of
    every part (-1 where missing)); ``.per_image()`` drops the padding.

    Per limb, in order: the candidates sorted by (score, i, j) descending are matched greedily
    (``method='greedy'``: each peak once, at most min(nA, nB) pairs) or by a maximum-weight
    assignment (``'hungarian'``, then kept in the same descending order). The first limb
    creates people; a connection whose part A is in a person adds part B to it, else creates
    a person; the ``redundant_limbs`` (OpenPose's ear-shoulder pairs: default (17, 18) when
    K == 18) only fill a missing end of an existing person; a limb where one part has no
    peak adds its other part's peaks as one-part people (not twice, except for K == 15 as
    OpenPose's MPI). A person's score is the sum of its part scores and connection scores;
    people with >= ``min_parts`` parts and score/parts >= ``min_mean_score`` are kept in
    creation order (the first ``max_persons``), and their reported score is the sum / (K+L)
    (OpenPose poseScores). OpenPose's own defaults are min_parts=3, min_mean_score=0.4.

    ``assembly='gpu'`` is instead the assembly of OpenPose's connectBodyPartsGpu
    (pafPtrIntoVector + pafVectorIntoPeopleVector; greedy only): every candidate connection of
    every limb, sorted by score + 0.1 (score_A + score_B), either creates a person, extends the
    person holding one of its ends (if that person lacks the other part), adds its score to
    the person holding both, or merges the two people holding its ends when their parts are
    disjoint. Same filter and scores (BODY_25 feet rules as that build).
    Runs on the host (sequential per image, parallel over images) for any device.
    ``min_parts`` (>= 0) and ``max_persons`` (>= 0 or None) must be integers and
    ``min_mean_score`` finite; errors name the argument. Not differentiable.
    """
    op = "pyhpe.group_poses"
    peaks = as_float_tensor(peaks, "peaks")
    counts = torch.as_tensor(counts, device=peaks.device)
    scores = as_float_tensor(scores, "scores", like=peaks)
    limbs_t = _index_pairs(limbs, "limbs", peaks.device, op)
    if peaks.dim() != 4:
        raise ValueError(f"{op}: 'peaks' must have shape (B, K, M, 3), got "
                         f"shape {tuple(peaks.shape)}")
    min_parts = int_option(op, min_parts, "min_parts", 0, _INT32_MAX)
    min_mean_score = float_option(op, min_mean_score, "min_mean_score", finite=True)
    max_persons = (-1 if max_persons is None
                   else int_option(op, max_persons, "max_persons", 0, 2 ** 63 - 1))
    K, L = peaks.shape[1], limbs_t.shape[0]
    redundant = _redundant_limbs(K, L, redundant_limbs).to(peaks.device)
    return GroupedPoses(*torch.ops.pyhpe.group_poses(
        peaks, counts, scores, limbs_t, redundant, min_parts, min_mean_score,
        method, max_persons, K != 15, assembly))


def resolve_skeleton(skeleton, paf_channels=None):
    """(limbs, paf_channels) of 'coco18', 'coco17' or custom limbs ``[(A, B), ...]``."""
    if isinstance(skeleton, str):
        if skeleton not in SKELETONS:
            raise ValueError(f"pyhpe.paf_group: unknown skeleton '{skeleton}', expected one of "
                             f"{sorted(SKELETONS)} or a list of (part A, part B) limbs")
        limbs, channels = SKELETONS[skeleton]
        return limbs, channels if paf_channels is None else paf_channels
    limbs = _index_pairs(skeleton, "skeleton", "cpu", "pyhpe.paf_group")
    if limbs.shape[0] == 0:
        raise ValueError("pyhpe.paf_group: 'skeleton' must hold at least one (part A, part B) "
                         "limb, got none")
    if bool((limbs < 0).any()):
        raise ValueError(f"pyhpe.paf_group: 'skeleton' part indices must be >= 0, got "
                         f"{limbs.tolist()}")
    return [tuple(pair) for pair in limbs.tolist()], paf_channels


def paf_group(heatmaps, pafs, skeleton: Union[str, Sequence[Tuple[int, int]]] = "coco18", *,
              num_parts: Optional[int] = None, threshold: float = 0.05, max_peaks: int = 64,
              refine: bool = True, paf_channels=None, num_samples: Optional[int] = 10,
              inter_threshold: float = 0.05, min_fraction: float = 0.95,
              distance_prior: bool = True, min_parts: int = 3, min_mean_score: float = 0.2,
              method: str = "greedy", max_persons: Optional[int] = None,
              assembly: str = "cpu") -> List[Poses]:
    """Whole OpenPose pipeline: heatmaps ``(B, K[+1], H, W)`` and pafs ``(B, 2L, H, W)`` to a
    list of B :class:`Poses` ``(keypoints (P_b, K, 3), scores (P_b,))`` (on the host).

    ``skeleton`` is 'coco18' (OpenPose COCO-18 limbs and PAF channel order), 'coco17' or a
    list of (part A, part B) limbs (PAF channels (2l, 2l+1) unless ``paf_channels``). Extra
    heatmap channels beyond the K parts (OpenPose's background) are ignored; K is
    ``num_parts`` or 1 + the largest part index of the skeleton. The distance prior uses the
    peak ``threshold`` as OpenPose does. See :func:`find_peaks`, :func:`paf_scores`,
    :func:`group_poses`.
    """
    limbs, channels = resolve_skeleton(skeleton, paf_channels)
    heatmaps = as_float_tensor(heatmaps, "heatmaps")
    pafs = as_float_tensor(pafs, "pafs", like=heatmaps)
    unbatched = heatmaps.dim() == 3
    if unbatched:
        heatmaps, pafs = heatmaps.unsqueeze(0), pafs.unsqueeze(0)
    K = (1 + max(max(a, b) for a, b in limbs) if num_parts is None
         else int_option("pyhpe.paf_group", num_parts, "num_parts", 1, _INT32_MAX))
    if heatmaps.dim() != 4 or heatmaps.shape[1] < K:
        raise ValueError(f"pyhpe.paf_group: 'heatmaps' must have shape (B, K, H, W) with "
                         f"K >= {K}, got shape {tuple(heatmaps.shape)}")
    peaks, counts = find_peaks(heatmaps[:, :K], threshold=threshold, max_peaks=max_peaks,
                               refine=refine)
    scores = paf_scores(pafs, peaks, counts, limbs, num_samples=num_samples,
                        inter_threshold=inter_threshold, min_fraction=min_fraction,
                        paf_channels=channels, distance_prior=distance_prior,
                        prior_score=threshold)
    return group_poses(peaks, counts, scores, limbs, min_parts=min_parts,
                       min_mean_score=min_mean_score, method=method, max_persons=max_persons,
                       assembly=assembly).per_image()


class PAFGrouper(torch.nn.Module):
    """:func:`paf_group` with its skeleton and thresholds fixed at construction.

    ``forward(heatmaps (B, K[+1], H, W), pafs (B, C, H, W))`` returns the list of B
    :class:`Poses` ``(keypoints (P_b, K, 3), scores (P_b,))``. Keyword arguments are those of
    :func:`paf_group`.
    """

    def __init__(self, skeleton: Union[str, Sequence[Tuple[int, int]]] = "coco18", **options):
        super().__init__()
        resolve_skeleton(skeleton, options.get("paf_channels"))  # fail early on a bad name
        self.skeleton = skeleton
        self.options = options

    def forward(self, heatmaps: torch.Tensor, pafs: torch.Tensor):
        return paf_group(heatmaps, pafs, self.skeleton, **self.options)

    def extra_repr(self) -> str:
        name = self.skeleton if isinstance(self.skeleton, str) else f"{len(self.skeleton)} limbs"
        return f"skeleton={name}, " + ", ".join(f"{k}={v}" for k, v in self.options.items())


__all__ = ["COCO17_LIMBS", "PAFGrouper", "COCO18_LIMBS", "COCO18_PAF_CHANNELS", "SKELETONS", "find_peaks",
           "group_poses", "paf_group", "paf_scores", "resolve_skeleton"]
