"""Drawing takes its colours from the keypoint set."""
import numpy as np

from pyhpe.keypoints import COCO17, KeypointSet
from pyhpe.vis import draw_pose, save_grid


def test_draw_pose_uses_the_sets_colours(tmp_path):
    kset = KeypointSet("pair", ["a", "b"], [], [0.1, 0.1], [(0, 1)], colors=[(10, 20, 30)],
                       keypoint_colors=[(200, 0, 0), (0, 0, 200)])
    img = draw_pose(np.zeros((40, 40, 3), np.uint8), [[5, 20, 1], [35, 20, 1]], kset,
                    radius=3, thickness=3)
    assert tuple(img[20, 20]) == (10, 20, 30)          # limb midpoint: the limb colour
    assert tuple(img[20, 5]) == (200, 0, 0) and tuple(img[20, 35]) == (0, 0, 200)
    one = draw_pose(np.zeros((40, 40, 3), np.uint8), [[5, 20, 1], [35, 20, 1]], kset, thickness=3,
                    colour=(1, 2, 3))
    assert tuple(one[20, 20]) == (1, 2, 3)
    # low scores are skipped; COCO-17 draws on a copy
    base = np.zeros((64, 64, 3), np.uint8)
    kps = np.c_[np.random.default_rng(0).uniform(5, 60, (17, 2)), np.full(17, 0.1)]
    assert not draw_pose(base, kps, COCO17).any() and not base.any()
    save_grid([img, img], str(tmp_path / "g.png"), cols=2)
    assert (tmp_path / "g.png").stat().st_size > 0
