"""Evaluation: COCO keypoint AP/AR identical to pycocotools (C++ core) and its xtcocotools
variants (no-area OKS, CrowdPose, COCO-WholeBody), one entry point for results files
(:func:`evaluate_coco_file`), PCK/PCKh/PCP, the MPJPE family and each dataset's official
metric (:mod:`pyhpe.eval.metrics`: MPII PCKh table, Human3.6M per action, MPI-INF-3DHP
PCK3D/AUC, CMU Panoptic MPJPE/AP, PoseTrack18 AP per joint). The reference evaluators
themselves (pycocotools, xtcocotools, faster-coco-eval) are wrapped in :mod:`pyhpe.testing`."""
from .coco import COCO_STAT_NAMES, EVAL_MODES, COCOKeypointEval, coco_keypoint_stats
from .cocofile import (DEFAULT_MODES, FILE_MODES, REFERENCES, WHOLEBODY_PARTS,
                       evaluate_coco_file, evaluate_wholebody, format_eval_report,
                       wholebody_part_inputs)
from .metrics import (MPII_PCKH_ROWS, POSETRACK_AP_ROWS, POSETRACK_JOINTS, auc3d, h36m_action,
                      load_mpii_gt_mat,
                      mpi_inf_3dhp_metrics, mpii_head_sizes, mpii_pckh, mpjpe, mpjpe_by_action,
                      multiperson_mpjpe_ap, n_mpjpe, normalized_distances, p_mpjpe, pck3d,
                      pck_accuracy, pckh_accuracy, pcp_accuracy, posetrack18_ap,
                      similarity_transform)

__all__ = ["COCO_STAT_NAMES", "DEFAULT_MODES", "EVAL_MODES", "FILE_MODES", "MPII_PCKH_ROWS",
           "POSETRACK_AP_ROWS", "POSETRACK_JOINTS", "REFERENCES", "WHOLEBODY_PARTS",
           "COCOKeypointEval", "auc3d", "coco_keypoint_stats", "evaluate_coco_file",
           "evaluate_wholebody", "format_eval_report", "h36m_action", "load_mpii_gt_mat",
           "mpi_inf_3dhp_metrics",
           "mpii_head_sizes", "mpii_pckh", "mpjpe", "mpjpe_by_action", "multiperson_mpjpe_ap",
           "n_mpjpe", "normalized_distances", "p_mpjpe", "pck3d", "pck_accuracy",
           "pckh_accuracy", "pcp_accuracy", "posetrack18_ap", "similarity_transform",
           "wholebody_part_inputs"]
