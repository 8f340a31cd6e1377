"""Evaluation: COCO keypoint AP/AR identical to pycocotools (C++ core), PCK/PCKh/PCP and
the MPJPE family (:mod:`pyhpe.eval.metrics`). The reference evaluators themselves
(pycocotools, faster-coco-eval) are wrapped in :mod:`pyhpe.testing`."""
from .coco import COCO_STAT_NAMES, EVAL_MODES, COCOKeypointEval, coco_keypoint_stats
from .metrics import (mpjpe, n_mpjpe, normalized_distances, p_mpjpe, pck_accuracy, pckh_accuracy,
                      pcp_accuracy, similarity_transform)

__all__ = ["COCO_STAT_NAMES", "EVAL_MODES", "COCOKeypointEval", "coco_keypoint_stats", "mpjpe", "n_mpjpe",
           "normalized_distances", "p_mpjpe", "pck_accuracy", "pckh_accuracy", "pcp_accuracy",
           "similarity_transform"]
