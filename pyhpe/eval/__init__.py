"""Evaluation: COCO keypoint AP/AR identical to pycocotools (C++ core)."""
from .coco import (COCOKeypointEval, faster_coco_eval_stats, pycocotools_eval,
                   pycocotools_stats)

__all__ = ["COCOKeypointEval", "faster_coco_eval_stats", "pycocotools_eval",
           "pycocotools_stats"]
