"""Typed wrappers over the ``torch.ops.pyhpe.*`` kernels (CPU and CUDA).

The contract every op here keeps:

* each wrapper has the name of the op it calls (``pyhpe.ops.msra_heatmaps`` calls
  ``torch.ops.pyhpe.msra_heatmaps``; ``out=`` goes to its ``.out`` overload); backward ops
  (``_soft_argmax_backward``, ...) and internal statistics are private;
* data tensors and the size come first, options are keyword-only; names are canonical
  across families (``keypoints, visibility``, ``sigmas`` for OKS sigmas, ``split_ratio``,
  sizes as ``(W, H)``);
* one return type per op, a named tuple from :mod:`pyhpe.ops._types` (no flags that change
  what is returned);
* errors are ValueError / TypeError / RuntimeError starting with ``pyhpe.<op>:`` and naming
  the argument;
* differentiable decoders (:func:`soft_argmax`, :func:`debiased_soft_argmax`, :func:`dsnt`)
  also come as modules (:class:`SoftArgmax2d`, :class:`DebiasedSoftArgmax2d`,
  :class:`DSNT2d`); every other op refuses inputs that require grad.
"""
from ._types import (AlphaPoseNMSResult, Decoded, GroupedPoses, HeatmapTargets,  # noqa: F401
                     NMSResult, PAFTargets, Peaks, Poses, RaggedOKS, RescoredPoses,
                     SimCCTargets)
from .oks import oks_matrix, oks_matrix_ragged  # noqa: F401
from .paf import PAFGrouper, find_peaks, group_poses, paf_group, paf_scores  # noqa: F401
from .nms import oks_nms, pose_nms_alphapose, soft_oks_nms  # noqa: F401
from .heatmap import msra_heatmaps, paf_targets, simcc_labels, udp_heatmaps, unbiased_heatmaps  # noqa: F401
from .decode import (DSNT2d, DebiasedSoftArgmax2d, SoftArgmax2d,  # noqa: F401
                     affine_transform_points, argmax_decode, dark_decode, debiased_soft_argmax,
                     dsnt, simcc_dark_kernel, simcc_decode, soft_argmax, topdown_rescore,
                     transform_preds)
from .ae import AEGroups, ae_group  # noqa: F401

__all__ = [
    "AEGroups", "ae_group", "AlphaPoseNMSResult", "DSNT2d", "Decoded", "DebiasedSoftArgmax2d", "GroupedPoses",
    "HeatmapTargets", "NMSResult", "PAFGrouper", "PAFTargets", "Peaks", "Poses", "RaggedOKS",
    "RescoredPoses",
    "SimCCTargets", "SoftArgmax2d", "affine_transform_points", "argmax_decode", "dark_decode",
    "debiased_soft_argmax", "dsnt", "find_peaks", "group_poses", "msra_heatmaps", "oks_matrix",
    "oks_matrix_ragged", "oks_nms", "paf_group", "paf_scores", "paf_targets",
    "pose_nms_alphapose", "simcc_dark_kernel", "simcc_decode", "simcc_labels", "soft_argmax",
    "soft_oks_nms", "topdown_rescore", "transform_preds", "udp_heatmaps", "unbiased_heatmaps",
]
from .volume import *  # noqa: F401,F403,E402  (SoftArgmax3d, soft_argmax_3d, gaussian_volumes, ...)
