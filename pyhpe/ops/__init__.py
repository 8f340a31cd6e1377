from .oks import oks_matrix, oks_matrix_ragged  # noqa: F401
from .paf import find_peaks, group_poses, paf_group, paf_scores  # noqa: F401
from .nms import oks_nms, pose_nms_alphapose, soft_oks_nms  # noqa: F401
from .heatmap import msra_heatmaps, paf_targets, simcc_labels, udp_heatmaps, unbiased_heatmaps  # noqa: F401
from .decode import (affine_transform_points, argmax_decode, dark_decode,  # noqa: F401
                     debiased_soft_argmax, dsnt, simcc_decode, soft_argmax, transform_preds)
