"""pyhpe.testing: the timing helpers, the speed tables and their baselines."""
import numpy as np
import pytest
import torch

import pyhpe.ops as ops
from pyhpe.keypoints import COCO_SIGMAS
from pyhpe.testing import evaluator_table, median_time, speed_table, synthetic_keypoint_eval_set
from pyhpe.testing import baselines

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_median_time_calls_and_syncs():
    calls, syncs = [], []
    t = median_time(lambda: calls.append(1), repeat=3, min_time=0.0, sync=lambda: syncs.append(1))
    assert t >= 0 and len(calls) == len(syncs) == 4  # one warm-up call and one per round


def test_speed_table_rows():
    lines = []
    rows = speed_table(lambda *a: lines.append(" ".join(map(str, a))), num_images=3)
    assert [r["op"] for r in rows] == ["oks_matrix", "msra_heatmaps", "argmax_decode",
                                       "dark_decode"]
    for r in rows:
        assert r["base_ms"] > 0
        assert r["ours_ms"] is not None or "note" in r or getattr(ops, r["op"], None) is None
    assert any("kernel speed" in line for line in lines)


def test_baselines_compute_what_the_kernels_compute():
    """The timing baselines are fair: they produce the kernels' results."""
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 200, (2, 4, 17, 3))
    gt[..., 2] = 2
    dt = gt[:, [0, 1, 2]].copy()
    dt[..., :2] += rng.normal(0, 5, dt[..., :2].shape)
    areas = rng.uniform(500, 20000, (2, 4))
    ours = ops.oks_matrix(torch.from_numpy(dt), torch.from_numpy(gt), torch.from_numpy(areas))
    np.testing.assert_allclose(baselines.numpy_oks_matrix(dt, gt, areas, COCO_SIGMAS),
                               ours.numpy(), rtol=1e-10, atol=1e-12)
    kp = torch.tensor([[[[5.3, 7.6], [20.0, 3.2]]]])
    vis = torch.ones(1, 1, 2)
    hm, w = baselines.msra_heatmaps_torch(kp, vis, (24, 16), 2.0)
    res = ops.msra_heatmaps(kp, vis, (24, 16), sigma=2.0)
    np.testing.assert_allclose(hm.numpy(), res[0].numpy(), atol=1e-6)
    coords, scores = baselines.argmax_decode_torch(hm, True)
    dec = ops.argmax_decode(hm, quarter_offset=True)
    np.testing.assert_allclose(coords.numpy(), dec[0].numpy(), atol=1e-6)


def test_evaluator_table_agrees():
    rows = evaluator_table(num_images=8, seed=1, references=True)
    assert rows[0][0] == "pyhpe"
    for name, sec, stats in rows:
        assert sec > 0 and len(stats) == 10
        if name == "pycocotools":
            assert np.array_equal(stats, rows[0][2])


def test_synthetic_eval_set_is_seeded():
    a = synthetic_keypoint_eval_set(5, 3)
    b = synthetic_keypoint_eval_set(5, 3)
    assert a == b and a != synthetic_keypoint_eval_set(5, 4)
