"""Synthetic data, COCO/MPII readers, top-down (plain and UDP) geometry, bottom-up batches."""
import json
import pathlib

import numpy as np
import pytest
import torch

from pyhpe.data import (BottomUpDataset, CocoImageLoader, SyntheticPoseDataset, TopDownAugment,
                        TopDownDataset, affine_points, bbox_xywh_to_center_scale,
                        bottomup_to_image_space, collate_bottomup, collate_topdown, crop,
                        flip_keypoints, get_udp_warp_matrix, get_warp_matrix, load_coco,
                        mpii_to_coco, normalize_images, records_from_coco, render_sample,
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


def test_normalize_images_is_the_broadcast_formula_bit_for_bit():
    """BGR uint8 (B, H, W, 3) -> RGB float32 (B, 3, H, W), (x - mean) / std per channel: the
    per-channel passes give exactly the float32 broadcast over the flipped, permuted copy."""
    from pyhpe.data.topdown import IMAGENET_MEAN_RGB, IMAGENET_STD_RGB
    img = torch.randint(0, 256, (3, 21, 13, 3), dtype=torch.uint8,
                        generator=torch.Generator().manual_seed(0))
    x = img.flip(-1).permute(0, 3, 1, 2).float()
    want = (x - torch.tensor(IMAGENET_MEAN_RGB).view(1, 3, 1, 1)) / torch.tensor(
        IMAGENET_STD_RGB).view(1, 3, 1, 1)
    got = normalize_images(img)
    assert got.is_contiguous() and got.dtype == torch.float32
    assert torch.equal(got, want)
    assert normalize_images(img[:0]).shape == (0, 3, 21, 13)


def test_topdown_items_carry_no_targets():
    ds, coco = _tiny_coco()
    item = TopDownDataset(records_from_coco(coco), ds.image_by_id, input_size=(48, 64))[0]
    assert set(item) == {"image", "keypoints", "visibility", "center", "scale", "image_id",
                         "score", "area", "index"}
    with pytest.raises(TypeError):
        TopDownDataset([], ds.image_by_id, codec=object())


def _mmpose_udp_warp_matrix(center, scale, rot, output_size):
    """mmpose 1.x ``get_udp_warp_matrix`` as written there (``input_size = center * 2``)."""
    import math
    input_size = center * 2
    rot_rad = np.deg2rad(rot)
    warp_mat = np.zeros((2, 3), dtype=np.float32)
    scale_x = (output_size[0] - 1) / scale[0]
    scale_y = (output_size[1] - 1) / scale[1]
    warp_mat[0, 0] = math.cos(rot_rad) * scale_x
    warp_mat[0, 1] = -math.sin(rot_rad) * scale_x
    warp_mat[0, 2] = scale_x * (-0.5 * input_size[0] * math.cos(rot_rad)
                                + 0.5 * input_size[1] * math.sin(rot_rad) + 0.5 * scale[0])
    warp_mat[1, 0] = math.sin(rot_rad) * scale_y
    warp_mat[1, 1] = math.cos(rot_rad) * scale_y
    warp_mat[1, 2] = scale_y * (-0.5 * input_size[0] * math.sin(rot_rad)
                                - 0.5 * input_size[1] * math.cos(rot_rad) + 0.5 * scale[1])
    return warp_mat


@pytest.mark.parametrize("rot", [0.0, 25.0, -140.0])
def test_udp_warp_matches_mmpose(rot):
    c, s = np.array([101.3, 57.25]), np.array([90.0, 120.0])
    ours = get_udp_warp_matrix(c, s, rot, (48, 64))
    ref = _mmpose_udp_warp_matrix(c, s, rot, (48, 64))
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-5)
    # the region's corners land on the outer pixel centres 0 and W-1 (unrotated)
    m = get_udp_warp_matrix(c, s, 0.0, (48, 64))
    np.testing.assert_allclose(affine_points(c - s / 2, m), [0, 0], atol=1e-4)
    np.testing.assert_allclose(affine_points(c + s / 2, m), [47, 63], atol=1e-4)


@pytest.mark.parametrize("udp", [False, True])
def test_crop_then_back_is_identity(udp):
    """to_image_space(..., udp=) inverts the crop of the same kind, for any box."""
    rng = np.random.default_rng(3)
    size = (48, 64)
    for _ in range(5):
        box = [rng.uniform(-20, 200), rng.uniform(-20, 200), rng.uniform(5, 150), rng.uniform(5, 150)]
        c, s = bbox_xywh_to_center_scale(box, size[0] / size[1], 1.25)
        p = rng.uniform(-50, 300, size=(17, 2))
        _, mat = crop(np.zeros((8, 8, 3), np.uint8), c, s, 0.0, size, udp=udp)
        q = affine_points(p, mat)
        back = to_image_space(torch.tensor(q[None], dtype=torch.float64),
                              torch.tensor(c[None]), torch.tensor(s[None]), size, udp=udp)
        np.testing.assert_allclose(back[0].numpy(), p, atol=2e-3 * max(1.0, float(s.max()) / 50))
    # the two conventions differ: mixing them is an error of scale/(W-1) - scale/W per pixel
    c, s = np.array([50.0, 50.0], np.float32), np.array([96.0, 128.0], np.float32)
    q = torch.tensor([[[47.0, 63.0]]])
    plain = to_image_space(q, torch.tensor(c[None]), torch.tensor(s[None]), size)
    unbiased = to_image_space(q, torch.tensor(c[None]), torch.tensor(s[None]), size, udp=True)
    np.testing.assert_allclose(unbiased[0, 0].numpy(), c + s / 2, atol=1e-4)
    assert not torch.allclose(plain, unbiased)


def test_topdown_udp_dataset_maps_back():
    ds, coco = _tiny_coco()
    recs = records_from_coco(coco)
    td = TopDownDataset(recs, ds.image_by_id, input_size=(48, 64), udp=True)
    for i in range(len(td)):
        item = td[i]
        back = to_image_space(item["keypoints"][None], item["center"][None], item["scale"][None],
                              (48, 64), udp=True)
        np.testing.assert_allclose(back[0].numpy(), recs[i]["keypoints"], atol=1e-3)
    # the UDP crop samples the image where its matrix says: the crop's centre pixel is the box centre
    plain = TopDownDataset(recs, ds.image_by_id, input_size=(48, 64))
    assert td[0]["image"].shape == plain[0]["image"].shape == (64, 48, 3)


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


def test_bottomup_dataset_items_and_collate():
    ds = SyntheticPoseDataset(3, seed=4, size=(96, 80), max_persons=3)
    coco = ds.coco_dict()
    bu = BottomUpDataset(coco, ds.image_by_id, input_size=(64, 64), train=True)
    item = bu[0]
    assert set(item) == {"image", "keypoints", "visibility", "center", "scale", "image_id"}
    n = item["keypoints"].shape[0]
    assert item["image"].shape == (64, 64, 3) and item["keypoints"].shape == (n, 17, 2)
    assert item["visibility"].shape == (n, 17)
    assert torch.equal(bu[0]["image"], item["image"])  # (seed, epoch, index) fixes the sample
    # collate pads persons to the batch maximum with visibility 0
    items = [bu[i] for i in range(len(bu))]
    items.append(dict(items[0], keypoints=torch.zeros(0, 17, 2), visibility=torch.zeros(0, 17)))
    batch = collate_bottomup(items)
    counts = [it["keypoints"].shape[0] for it in items]
    N = max(counts)
    assert batch["keypoints"].shape == (4, N, 17, 2) and batch["visibility"].shape == (4, N, 17)
    assert batch["image"].shape == (4, 64, 64, 3) and batch["num_persons"].tolist() == counts
    for b, m in enumerate(counts):
        assert torch.equal(batch["keypoints"][b, :m], items[b]["keypoints"])
        assert (batch["visibility"][b, m:] == 0).all() and (batch["keypoints"][b, m:] == 0).all()
    assert batch["center"].shape == (4, 2) and batch["scale"].shape == (4, 2)
    one_empty = collate_bottomup([items[-1]])
    assert one_empty["keypoints"].shape == (1, 1, 17, 2) and one_empty["visibility"].sum() == 0
    with pytest.raises(ValueError, match="empty"):
        collate_bottomup([])


def test_bottomup_evaluation_resize_maps_back():
    ds = SyntheticPoseDataset(2, seed=5, size=(120, 72), max_persons=2)
    coco = ds.coco_dict()
    bu = BottomUpDataset(coco, ds.image_by_id, input_size=(64, 48), train=False)
    for i, image_id in enumerate(bu.ids):
        item = bu[i]
        truth = np.array([np.asarray(a["keypoints"], np.float32).reshape(17, 3)[:, :2]
                          for a in bu.by_image[image_id]])
        back = bottomup_to_image_space(item["keypoints"].numpy(), (72, 120), (64, 48))
        np.testing.assert_allclose(back, truth, atol=1e-3)
        via_center_scale = to_image_space(item["keypoints"], item["center"].expand(len(truth), 2),
                                          item["scale"].expand(len(truth), 2), (64, 48))
        np.testing.assert_allclose(via_center_scale.numpy(), truth, atol=1e-3)


# A real MPII image and its annotation (mmpose's tests/data/mpii, Apache-2.0).
DATA = pathlib.Path(__file__).resolve().parent / "data"


def _real_mpii_dataset(udp):
    import cv2
    entries = [e for e in json.loads((DATA / "mpii_sample.json").read_text())
               if e["image"] == "052475643.jpg"]
    coco = mpii_to_coco(entries)
    image = cv2.imread(str(DATA / "mpii_052475643.jpg"), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (480, 854, 3)
    recs = records_from_coco(coco)
    return TopDownDataset(recs, lambda image_id: image, keypoint_set="mpii16",
                          input_size=(192, 256), udp=udp), recs, image


def _bilinear(image, x, y):
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    ax, ay = x - x0, y - y0
    patch = image[y0:y0 + 2, x0:x0 + 2].astype(np.float64)
    return ((1 - ay) * ((1 - ax) * patch[0, 0] + ax * patch[0, 1])
            + ay * ((1 - ax) * patch[1, 0] + ax * patch[1, 1]))


@pytest.mark.parametrize("udp", [False, True])
def test_real_image_crop_samples_where_to_image_space_says(udp):
    """Each crop pixel holds the image sampled at the point to_image_space maps it to, so the
    image warp and the keypoint map are one transform (plain and UDP)."""
    ds, recs, image = _real_mpii_dataset(udp)
    item = ds[0]
    crop_img = item["image"].numpy()
    assert crop_img.shape == (256, 192, 3)
    back = to_image_space(item["keypoints"][None].double(), item["center"][None].double(),
                          item["scale"][None].double(), ds.input_size, udp=udp)[0].numpy()
    np.testing.assert_allclose(back, recs[0]["keypoints"], atol=1e-3)
    rng = np.random.default_rng(0)
    q = np.c_[rng.integers(5, 187, 200), rng.integers(5, 251, 200)].astype(np.float64)
    p = to_image_space(torch.from_numpy(q[None]), item["center"][None].double(),
                       item["scale"][None].double(), ds.input_size, udp=udp)[0].numpy()
    inside = (p[:, 0] > 1) & (p[:, 0] < 852) & (p[:, 1] > 1) & (p[:, 1] < 478)
    assert inside.sum() > 100  # the box reaches past the image's lower edge
    errors = [np.abs(crop_img[int(qy), int(qx)] - _bilinear(image, px, py)).max()
              for (qx, qy), (px, py) in zip(q[inside], p[inside])]
    # cv2.warpAffine interpolates with 1/32-pixel fixed-point weights
    assert np.median(errors) <= 1 and np.percentile(errors, 95) <= 4, np.percentile(errors, 95)


def test_real_image_plain_and_udp_crops_differ_by_the_pixel_convention():
    plain, _, _ = _real_mpii_dataset(False)
    unbiased, _, _ = _real_mpii_dataset(True)
    a, b = plain[0], unbiased[0]
    assert torch.equal(a["center"], b["center"]) and torch.equal(a["scale"], b["scale"])
    # UDP maps the region onto pixel centres 0..W-1, the plain warp onto 0..W: measured from
    # the region's corner, input coordinates shrink by (W - 1) / W
    ka, kb = a["keypoints"].numpy(), b["keypoints"].numpy()
    np.testing.assert_allclose(kb, ka * np.array([191 / 192, 255 / 256]), atol=1e-3)
    assert np.abs(kb - ka).max() > 0.1


def test_record_table_rows_equal_the_records_and_hold_no_python_objects():
    from pyhpe.data import RecordTable
    _, coco = _tiny_coco()
    recs = records_from_coco(coco)
    recs[0]["ann_id"] = None                                     # a None among ints
    table = RecordTable(recs)
    assert len(table) == len(recs)
    for i, (row, rec) in enumerate(zip(table, recs)):
        assert list(row) == list(rec)
        for k in rec:
            assert type(row[k]) is type(rec[k]), k
            if isinstance(rec[k], np.ndarray):
                assert row[k].dtype == rec[k].dtype and np.array_equal(row[k], rec[k])
            else:
                assert row[k] == rec[k]
        assert table[i - len(recs)]["image_id"] == rec["image_id"]   # negative indices
    row = table[0]
    row["keypoints"][:] = -5                                     # rows are copies
    assert not np.array_equal(table[0]["keypoints"], row["keypoints"])
    assert [r["image_id"] for r in table[1:3]] == [r["image_id"] for r in recs[1:3]]
    with pytest.raises(IndexError):
        table[len(recs)]
    # every field but the one holding None is a plain numeric column
    for k in ("image_id", "bbox", "keypoints", "visibility", "area", "score"):
        assert table.column(k).dtype != object, k
    assert table.column("ann_id").dtype == object
    with pytest.raises(ValueError, match="same keys"):
        RecordTable([{"a": 1}, {"b": 2}])
    assert len(RecordTable([])) == 0
    ds = TopDownDataset(recs, lambda _i: np.zeros((8, 8, 3), np.uint8), input_size=(48, 64))
    assert isinstance(ds.records, RecordTable)
    assert ds.instance_image_ids() == [r["image_id"] for r in recs]


class _FreezeCount(torch.utils.data.Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        import gc
        return gc.get_freeze_count()


def test_trainer_workers_start_with_the_parent_heap_frozen():
    """The training loader forks its workers with the parent's objects frozen out of the
    garbage collector (their collections then never write to the shared pages); the parent
    unfreezes right after."""
    import gc
    from pyhpe.engine.trainer import _SharedHeapLoader
    keep = [{"x": [i]} for i in range(1000)]                   # parent containers
    loader = _SharedHeapLoader(_FreezeCount(), batch_size=None, num_workers=1)
    counts = list(loader)
    assert min(counts) >= len(keep)
    assert gc.get_freeze_count() == 0
