"""Helpers for tests, benchmarks and the demo (not used by the library itself): synthetic
COCO evaluation data, the reference evaluators (pycocotools, xtcocotools, faster-coco-eval), timing and
the speed tables with their vectorised baselines."""
from .cocoeval import (faster_coco_eval_stats, pycocotools_eval, pycocotools_stats,
                       xtcocotools_available, xtcocotools_eval, xtcocotools_stats)
from .speed import evaluator_table, median_time, print_evaluator_table, speed_table
from .synthetic_eval import synthetic_keypoint_eval_set

__all__ = ["evaluator_table", "faster_coco_eval_stats", "median_time", "print_evaluator_table",
           "pycocotools_eval", "pycocotools_stats", "speed_table", "synthetic_keypoint_eval_set",
           "xtcocotools_available", "xtcocotools_eval", "xtcocotools_stats"]
