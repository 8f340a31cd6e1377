"""End-to-end COCO keypoint evaluation on a 5000-image synthetic set: pyhpe vs pycocotools
vs faster-coco-eval, each from the same in-memory GT dict and results list to the 10 stats.
All three must give identical stats (checked before timing)."""
import copy

import numpy as np
import pytest

from pyhpe.eval import COCOKeypointEval
from pyhpe.testing import faster_coco_eval_stats, pycocotools_stats, synthetic_keypoint_eval_set

NUM_IMAGES = 5000


@pytest.fixture(scope="module")
def dataset():
    return synthetic_keypoint_eval_set(NUM_IMAGES, 0)


def run_pyhpe(gt, dt):
    return COCOKeypointEval(gt, dt).run()


def run_pycocotools(gt, dt):
    return pycocotools_stats(gt, dt, copy_inputs=False)


def run_faster_coco_eval(gt, dt):
    return faster_coco_eval_stats(gt, dt, copy_inputs=False)


def fresh(dataset):
    # pycocotools and faster-coco-eval mutate their inputs (loadRes adds area/id/bbox).
    gt, dt = dataset
    return (copy.deepcopy(gt), copy.deepcopy(dt)), {}


def test_stats_identical(dataset):
    ours = run_pyhpe(*dataset)
    assert np.array_equal(ours, run_pycocotools(*fresh(dataset)[0]))
    assert np.array_equal(ours, run_faster_coco_eval(*fresh(dataset)[0]))


def test_pyhpe(benchmark, dataset):
    benchmark.pedantic(run_pyhpe, setup=lambda: fresh(dataset), rounds=10)


def test_faster_coco_eval(benchmark, dataset):
    pytest.importorskip("faster_coco_eval")
    benchmark.pedantic(run_faster_coco_eval, setup=lambda: fresh(dataset), rounds=5)


def test_pycocotools(benchmark, dataset):
    benchmark.pedantic(run_pycocotools, setup=lambda: fresh(dataset), rounds=1)
