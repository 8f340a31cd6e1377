"""Keypoint sets, synthetic data, COCO/MPII readers, top-down geometry and bottom-up targets."""
import json

import numpy as np
import pytest
import torch

from pyhpe.data import (BottomUpDataset, CocoImageLoader, SyntheticPoseDataset, TopDownAugment,
                        TopDownDataset, affine_points, bbox_xywh_to_center_scale, collate_topdown,
                        flip_keypoints, get_warp_matrix, load_coco, mpii_to_coco,
                        normalize_images, paf_targets, records_from_coco, render_sample,
                        to_image_space)
from pyhpe.keypoints import COCO17, keypoint_set_from_coco


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_synthetic_is_deterministic_and_valid():
    a_img, a_ann = render_sample(3, 5)
    b_img, b_ann = render_sample(3, 5)
    c_img, _ = render_sample(3, 6)
    assert np.array_equal(a_img, b_img) and a_ann == b_ann and not np.array_equal(a_img, c_img)
    ds = SyntheticPoseDataset(6, seed=1, size=(96, 96), max_persons=3)
    coco = ds.coco_dict()
    assert len(coco["images"]) == 6 and len(coco["annotations"]) >= 6
    for ann in coco["annotations"]:
        k = np.asarray(ann["keypoints"]).reshape(17, 3)
        assert set(np.unique(k[:, 2])) <= {0, 1, 2}
        assert ann["num_keypoints"] == int((k[:, 2] > 0).sum())
        x, y, w, h = ann["bbox"]
        assert w > 0 and h > 0 and ann["area"] == pytest.approx(w * h)
        lab = k[k[:, 2] > 0]
        assert (lab[:, 0] >= 0).all() and (lab[:, 0] < 96).all()
    assert ds.image(0).shape == (96, 96, 3) and ds.image(0).dtype == np.uint8


def test_center_scale_and_warp():
    c, s = bbox_xywh_to_center_scale([10, 20, 30, 120], aspect_ratio=0.75, padding=1.25)
    np.testing.assert_allclose(c, [25, 80])
    np.testing.assert_allclose(s, [90 * 1.25, 120 * 1.25])
    mat = get_warp_matrix(c, s, 0.0, (48, 64))
    np.testing.assert_allclose(affine_points(c, mat), [24, 32], atol=1e-4)
    inv = get_warp_matrix(c, s, 30.0, (48, 64), inverse=True)
    fwd = get_warp_matrix(c, s, 30.0, (48, 64))
    p = np.array([[3.0, 7.0], [40.0, 50.0]])
    np.testing.assert_allclose(affine_points(affine_points(p, fwd), inv), p, atol=1e-3)
    # to_image_space is the inverse of the unrotated crop
    q = affine_points(p, mat)
    back = to_image_space(torch.tensor(q[None]), torch.tensor(c[None]), torch.tensor(s[None]), (48, 64))
    np.testing.assert_allclose(back[0].numpy(), p, atol=1e-3)


def test_flip_twice_is_identity():
    kp = np.random.default_rng(0).uniform(0, 100, (17, 2))
    vis = np.arange(17, dtype=np.float32)
    k1, v1 = flip_keypoints(kp, vis, 100, COCO17.flip_pairs)
    assert v1[1] == 2 and v1[2] == 1 and k1[0, 0] == pytest.approx(99 - kp[0, 0])
    k2, v2 = flip_keypoints(k1, v1, 100, COCO17.flip_pairs)
    np.testing.assert_allclose(k2, kp, atol=1e-4)
    np.testing.assert_array_equal(v2, vis)


def _tiny_coco():
    ds = SyntheticPoseDataset(4, seed=2, size=(96, 96))
    return ds, ds.coco_dict()


def test_topdown_dataset_items_and_augmentation():
    ds, coco = _tiny_coco()
    recs = records_from_coco(coco)
    plain = TopDownDataset(recs, ds.image_by_id, input_size=(48, 64))
    item = plain[0]
    assert item["image"].shape == (64, 48, 3) and item["keypoints"].shape == (17, 2)
    # without augmentation, keypoints map back to the annotation exactly
    back = to_image_space(item["keypoints"][None], item["center"][None], item["scale"][None], (48, 64))
    np.testing.assert_allclose(back[0].numpy(), recs[0]["keypoints"], atol=1e-3)
    aug = TopDownDataset(recs, ds.image_by_id, input_size=(48, 64), augment=TopDownAugment(), seed=1)
    a1, a2 = aug[1], aug[1]
    assert torch.equal(a1["image"], a2["image"])  # same (seed, epoch, index) -> same sample
    aug.set_epoch(1)
    assert not torch.equal(a1["image"], aug[1]["image"])
    batch = collate_topdown([plain[i] for i in range(len(plain))])
    x = normalize_images(batch["image"])
    assert x.shape == (len(plain), 3, 64, 48) and x.dtype == torch.float32


def test_topdown_targets_with_codec():
    from pyhpe.codecs import MSRAHeatmap
    ds, coco = _tiny_coco()
    codec = MSRAHeatmap((48, 64), (12, 16), sigma=1.0)
    td = TopDownDataset(records_from_coco(coco), ds.image_by_id, input_size=(48, 64), codec=codec)
    item = td[0]
    assert item["heatmaps"].shape == (17, 16, 12) and item["weights"].shape == (17,)
    assert float(item["heatmaps"].max()) == pytest.approx(1.0)


def test_coco_and_mpii_readers(tmp_path):
    import cv2
    ds, coco = _tiny_coco()
    for im in coco["images"]:
        cv2.imwrite(str(tmp_path / im["file_name"]), ds.image_by_id(im["id"]))
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(coco))
    data = load_coco(str(path))
    assert keypoint_set_from_coco(data) is COCO17
    loader = CocoImageLoader(data, str(tmp_path))
    assert np.array_equal(loader(1), ds.image(0))
    with pytest.raises(ValueError, match="annotations"):
        load_coco({"images": [], "categories": []})
    mp = [{"image": "a.jpg", "center": [101.0, 201.0], "scale": 1.0,
           "joints": [[11.0, 21.0]] * 16, "joints_vis": [1] * 15 + [0]}]
    c = mpii_to_coco(mp)
    ann = c["annotations"][0]
    k = np.asarray(ann["keypoints"]).reshape(16, 3)
    np.testing.assert_allclose(k[0], [10, 20, 2])
    assert k[15, 2] == 0 and ann["num_keypoints"] == 15
    np.testing.assert_allclose(ann["bbox"][2], 250.0)
    np.testing.assert_allclose(ann["bbox"][1] + 125.0, 200.0 + 15.0)


def test_bottomup_dataset_and_pafs():
    ds = SyntheticPoseDataset(2, seed=4, size=(96, 96), max_persons=3)
    bu = BottomUpDataset(ds.coco_dict(), ds.image_by_id, input_size=(64, 64), heatmap_size=(16, 16),
                         sigma=1.0, train=True)
    item = bu[0]
    assert item["image"].shape == (64, 64, 3)
    assert item["heatmaps"].shape == (17, 16, 16) and item["pafs"].shape == (38, 16, 16)
    kp = torch.tensor([[[2.0, 8.0], [12.0, 8.0]]])
    paf = paf_targets(kp, torch.ones(1, 2), [(0, 1)], (16, 16), width=1.0)
    assert paf[0, 8, 5] == pytest.approx(1.0) and paf[1, 8, 5] == 0.0
    assert paf[0, 2, 5] == 0.0 and paf[0, 8, 14] == 0.0
