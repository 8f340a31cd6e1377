"""Associative Embedding grouping (torch.ops.pyhpe.ae_group).

The bottom-up decoder of Associative Embedding (Newell et al., NeurIPS 2017) as mmpose 1.x
runs it (``AssociativeEmbedding.batch_decode``): heatmap NMS, per-keypoint top-k candidates,
greedy-in-keypoint-order grouping by tag distance with a Hungarian (Munkres) or greedy
assignment per keypoint, sub-pixel refinement and filling of missing keypoints. The numpy
oracle is :mod:`pyhpe.reference.ae`.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from ._common import as_float_tensor, float_option, int_option
from ._types import AEGroups

_OP = "pyhpe.ae_group"
_MATCHING = ("hungarian", "greedy")
_REFINE = ("none", "quarter", "dark_udp")


def _num_groups(K: int, topk: int, max_instances: Optional[int]) -> int:
    return K * topk if max_instances is None else max_instances


@torch.library.register_fake("pyhpe::ae_group")
def _ae_group_fake(heatmaps, tags, keypoint_order, topk=30, nms_kernel=5, keypoint_threshold=0.1,
                   tag_threshold=1.0, max_instances=None, matching="hungarian", refine="quarter",
                   blur_kernel=3, center_shift=0.0, fill_missing=True):
    torch._check(heatmaps.dim() == 4, lambda: f"{_OP}: 'heatmaps' must be (B, K, H, W)")
    B, K = heatmaps.shape[0], heatmaps.shape[1]
    N = _num_groups(K, topk, max_instances)
    f32 = dict(dtype=torch.float32)
    return (heatmaps.new_empty((B, N, K, 2), **f32), heatmaps.new_empty((B, N, K), **f32),
            heatmaps.new_empty((B, N), **f32), heatmaps.new_empty((B,), dtype=torch.int64))


def _keypoint_order(keypoint_order, K: int):
    if keypoint_order is None:
        return list(range(K))
    if isinstance(keypoint_order, (str, bytes)) or not hasattr(keypoint_order, "__iter__"):
        raise TypeError(f"{_OP}: 'keypoint_order' must be a sequence of keypoint indices, got "
                        f"{keypoint_order!r}")
    if isinstance(keypoint_order, torch.Tensor):
        keypoint_order = keypoint_order.tolist()
    order = [int_option(_OP, v, f"keypoint_order[{i}]") for i, v in enumerate(keypoint_order)]
    if sorted(order) != list(range(K)):
        raise ValueError(f"{_OP}: 'keypoint_order' must be a permutation of range(K={K}), got "
                         f"{order}")
    return order


def _choice(value, name: str, allowed) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{_OP}: '{name}' must be one of {', '.join(map(repr, allowed))}, got "
                         f"{value!r}")
    return value


def ae_group(heatmaps, tags, *, keypoint_order: Optional[Sequence[int]] = None, topk: int = 30,
             nms_kernel: int = 5, keypoint_threshold: float = 0.1, tag_threshold: float = 1.0,
             max_instances: Optional[int] = None, matching: str = "hungarian",
             refine: str = "quarter", blur_kernel: int = 3, center_shift: float = 0.0,
             fill_missing: bool = True) -> AEGroups:
    """Group keypoint candidates into people by their associative-embedding tags.

    ``heatmaps (B, K, H, W), tags (B, K*L, H, W) ->`` :class:`AEGroups`
    ``(keypoints (B, N, K, 2) float32 (x, y), keypoint_scores (B, N, K), instance_scores
    (B, N), num_instances (B,) int64)``, coordinates in heatmap pixels (pixel centres at
    integers; the codec scales them to the image). Tag channel ``l*K + k`` is tag dimension
    ``l`` of keypoint ``k`` (mmpose's layout: ``L = 2`` after concatenating flip-test tags).
    ``N`` is static: ``max_instances`` if given, else ``K * topk``; rows
    ``n >= num_instances[b]`` are zero. The maps are read in float32.

    Semantics of mmpose 1.3.2 ``AssociativeEmbedding.batch_decode``:

    1. NMS: a pixel keeps its value where it equals the maximum of its ``nms_kernel`` x
       ``nms_kernel`` window (max-pool equality), else 0; per keypoint the ``topk`` largest
       values are candidates (equal values in pixel order), those ``> keypoint_threshold``
       are kept.
    2. Grouping, keypoints in ``keypoint_order`` (default ``range(K)``): the first keypoint
       with candidates opens one group per candidate; each later keypoint's candidates are
       assigned to the existing groups on the cost ``round(||tag - group mean tag||) * 100 -
       value`` (float64). ``matching="hungarian"``: the munkres package's Munkres (classic
       1.1.x algorithm, ties resolved as it does; munkres 3.x finds assignments of the same
       cost but breaks ties otherwise; missing columns padded with 1e10);
       ``"greedy"`` (not in mmpose or the official code, which only use Munkres):
       repeatedly the cheapest remaining (candidate, group) pair among those whose unrounded
       distance is below ``tag_threshold`` (ties: lower candidate, then lower group). A pair whose unrounded distance is ``>= tag_threshold``
       and an unassigned candidate open a new group. Groups are keyed, as in mmpose, by the
       first tag value of their first candidate (a new candidate with an equal key lands in
       that group and restarts its tag list). Groups are kept in creation order, the first
       ``max_instances``.
    3. ``instance_scores``: the mean keypoint score (0 for missing keypoints) before step 5.
    4. Refinement of every keypoint: ``"quarter"`` (mmpose refine_keypoints: +-0.25 px towards
       the higher neighbour per axis), ``"dark_udp"`` (refine_keypoints_dark_udp with a
       ``blur_kernel`` Gaussian blur; as in mmpose, step 5 then uses the modulated
       log-heatmaps) or ``"none"``; then ``center_shift`` is added to detected keypoints.
    5. ``fill_missing``: each missing keypoint goes to the argmin over the map of
       ``round(||tag map - instance tag||) * 100 - heatmap`` (instance tag: mean tag at its
       detected keypoints), scored by the heatmap there (mmpose _fill_missing_keypoints);
       otherwise missing keypoints are (0, 0) with score 0.

    Options are validated (``pyhpe.ae_group:`` errors naming the argument): ``topk`` in
    [1, H*W], ``K * topk <= 8192``, ``nms_kernel`` and ``blur_kernel`` odd (``blur_kernel``
    in [3, 127]), finite thresholds and shift; maps holding NaN or infinity are rejected.
    Not differentiable: inputs that require grad under grad mode raise a RuntimeError.
    CPU: images in parallel. CUDA: NMS, top-k, the fill-missing search and the dark-UDP
    modulation run on the device in parallel, the grouping of each image in one device
    thread (the same header code as the CPU).
    """
    heatmaps = as_float_tensor(heatmaps, "heatmaps")
    tags = as_float_tensor(tags, "tags", like=heatmaps if not isinstance(tags, torch.Tensor)
                           else None)
    if heatmaps.dim() != 4:
        raise ValueError(f"{_OP}: 'heatmaps' must have shape (B, K, H, W), got shape "
                         f"{tuple(heatmaps.shape)}")
    K = heatmaps.shape[1]
    order = _keypoint_order(keypoint_order, K)
    topk = int_option(_OP, topk, "topk", 1)
    nms_kernel = int_option(_OP, nms_kernel, "nms_kernel", 1)
    blur_kernel = int_option(_OP, blur_kernel, "blur_kernel")
    keypoint_threshold = float_option(_OP, keypoint_threshold, "keypoint_threshold", finite=True)
    tag_threshold = float_option(_OP, tag_threshold, "tag_threshold", finite=True)
    center_shift = float_option(_OP, center_shift, "center_shift", finite=True)
    if max_instances is not None:
        max_instances = int_option(_OP, max_instances, "max_instances", 0)
    matching = _choice(matching, "matching", _MATCHING)
    refine = _choice(refine, "refine", _REFINE)
    if not isinstance(fill_missing, bool):
        raise TypeError(f"{_OP}: 'fill_missing' must be a bool, got {fill_missing!r}")
    if heatmaps.dim() != 4 or tags.dim() != 4 or tags.shape[0] != heatmaps.shape[0] or \
            tags.shape[2:] != heatmaps.shape[2:] or (K and tags.shape[1] % K) or \
            (K == 0 and tags.shape[1]):
        raise ValueError(f"{_OP}: 'tags' must have shape (B, K*L, H, W) for 'heatmaps' of shape "
                         f"{tuple(heatmaps.shape)}, got shape {tuple(tags.shape)}")
    out = torch.ops.pyhpe.ae_group(heatmaps, tags, order, topk, nms_kernel, keypoint_threshold,
                                   tag_threshold, max_instances, matching, refine, blur_kernel,
                                   center_shift, fill_missing)
    return AEGroups(*out)
