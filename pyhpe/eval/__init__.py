"""Evaluation: COCO keypoint AP/AR identical to pycocotools (C++ core)."""
from .coco import (COCO_SIGMAS, COCOKeypointEval, faster_coco_eval_stats, pycocotools_eval,
                   pycocotools_stats)

__all__ = ["COCO_SIGMAS", "COCOKeypointEval", "faster_coco_eval_stats", "pycocotools_eval",
           "pycocotools_stats"]
