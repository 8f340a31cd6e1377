"""AID (information-dropping augmentation) and the 2-D bone loss as options of the top-down
pipeline."""
import numpy as np
import pytest
import torch

from pyhpe.data import SyntheticPoseDataset, TopDownAugment, TopDownDataset, records_from_coco
from pyhpe.data.transforms import AID_FILL_BGR, sample_aid_regions
from pyhpe.engine import Trainer
from pyhpe.models.heads.losses import bone_vector_loss
from pyhpe.tasks import build_task

QUIET = lambda *a: None  # noqa: E731
torch.set_num_threads(1)


def _topdown(out_dir, model=None, augment=None, steps=120, lr=4e-3):
    cfg = {"task": "topdown", "input_size": [48, 64], "keypoints": "coco17",
           "model": model or {"name": "simple_baseline", "config": "tiny"},
           "codec": {"name": "msra", "heatmap_size": [12, 16], "sigma": 1.0},
           "data": {"type": "synthetic", "num_images": 64, "val_images": 8, "image_size": 96,
                    "seed": 0},
           "train": {"epochs": 1000, "max_steps": steps, "batch_size": 16, "lr": lr,
                     "warmup_steps": 10, "eval_every": 0, "progress": False, "seed": 0,
                     "log_every": 5, "device": "cpu", "out_dir": str(out_dir)}}
    if augment is not None:
        cfg["augment"] = augment
    return cfg


def _pair(aid, idx=3, epoch=0):
    """The same crop with and without AID (same seed: identical geometry)."""
    src = SyntheticPoseDataset(6, seed=0, size=(96, 96))
    recs = records_from_coco(src.coco_dict())
    base = dict(rot_factor=20, half_body_prob=0.0)
    out = []
    for extra in ({}, aid):
        ds = TopDownDataset(recs, src.image_by_id, input_size=(48, 64),
                            augment=TopDownAugment(**base, **extra), seed=5)
        ds.set_epoch(epoch)
        out.append(ds[idx])
    return out, recs


@pytest.mark.parametrize("mode", ["cutout", "hide_and_seek"])
def test_aid_regions_where_and_as_large_as_configured(mode):
    aid = {"aid_prob": 1.0, "aid_mode": mode, "aid_cutout_size": 0.5, "aid_grid_sizes": [0.25]}
    (plain, dropped), _ = _pair(aid)
    # keypoints and visibility untouched, geometry identical
    assert torch.equal(plain["keypoints"], dropped["keypoints"])
    assert torch.equal(plain["visibility"], dropped["visibility"])
    assert torch.equal(plain["center"], dropped["center"]) and torch.equal(plain["scale"], dropped["scale"])
    # re-draw the regions from the same rng stream: after the geometric draws
    aug = TopDownAugment(rot_factor=20, half_body_prob=0.0, **aid)
    src = SyntheticPoseDataset(6, seed=0, size=(96, 96))
    rec = records_from_coco(src.coco_dict())[3]
    rng = np.random.default_rng([5, 0, 3])
    from pyhpe.data.transforms import bbox_xywh_to_center_scale
    c, s = bbox_xywh_to_center_scale(rec["bbox"], 48 / 64, 1.25)
    TopDownAugment(rot_factor=20, half_body_prob=0.0)(rng, src.image_by_id(rec["image_id"]),
                                                     rec["keypoints"], rec["visibility"], c, s,
                                                     TopDownDataset([], None).kset, 48 / 64)
    regions = aug.aid_regions(rng, 48 / 64)
    assert len(regions) > 0
    if mode == "cutout":
        (x0, y0, x1, y1), = regions
        unclipped = 0 < x0 and x1 < 1 and 0 < y0 and y1 < 1
        if unclipped:   # a square of 0.5 x the shorter side (48 px): 24 x 24 input pixels
            assert abs((x1 - x0) * 48 - 24) < 1e-6 and abs((y1 - y0) * 64 - 24) < 1e-6
    else:
        w = regions[:, 2] - regions[:, 0]
        assert np.all(w * 48 <= 12 + 1e-6)   # cells of 0.25 x 48 px
    inside = np.zeros((64, 48), bool)
    near = np.zeros((64, 48), bool)
    for x0, y0, x1, y1 in regions:
        X0, X1, Y0, Y1 = x0 * 48, x1 * 48, y0 * 64, y1 * 64
        inside[int(np.ceil(Y0 + 1)):int(np.floor(Y1 - 1)), int(np.ceil(X0 + 1)):int(np.floor(X1 - 1))] = True
        near[max(0, int(Y0) - 2):int(np.ceil(Y1)) + 2, max(0, int(X0) - 2):int(np.ceil(X1)) + 2] = True
    a, b = plain["image"].numpy(), dropped["image"].numpy()
    # the crop's part beyond the source image is the warp's black border either way
    import cv2
    in_image = cv2.erode(np.any(a != 0, -1).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    inside &= in_image
    assert inside.sum() > 20
    assert np.all(b[inside] == np.array(AID_FILL_BGR, np.uint8))      # dropped where said
    changed = np.any(a != b, axis=-1)
    assert not np.any(changed & ~near)                                  # nowhere else
    # deterministic per (seed, epoch, index); another epoch draws another drop
    (_, again), _ = _pair(aid)
    assert torch.equal(again["image"], dropped["image"])
    (_, other), _ = _pair(aid, epoch=1)
    assert not torch.equal(other["image"], dropped["image"])


def test_aid_off_changes_nothing_and_probability_and_errors():
    (plain, same), _ = _pair({"aid_prob": 0.0})
    assert torch.equal(plain["image"], same["image"])
    rng = np.random.default_rng(0)
    aug = TopDownAugment(aid_prob=0.3)
    hits = np.mean([len(aug.aid_regions(rng, 0.75)) > 0 for _ in range(2000)])
    assert abs(hits - 0.3) < 0.04
    r = sample_aid_regions(np.random.default_rng(1), 0.75, "hide_and_seek", grid_sizes=[0.5],
                           hide_prob=1.0)
    assert len(r) == 2 * 3   # 0.5 x 48 = 24 px cells: 2 columns, 3 rows (64 / 24, ceil)
    for bad in ({"aid_prob": 2}, {"aid_mode": "mixup"}, {"aid_cutout_size": 0},
                {"aid_grid_sizes": []}):
        with pytest.raises(ValueError):
            TopDownAugment(**bad)


def test_training_with_aid_learns(tmp_path):
    aug = {"rot_factor": 20, "half_body_prob": 0.1, "aid_prob": 0.5, "aid_mode": "cutout",
           "aid_cutout_size": 0.4}
    trainer = Trainer(build_task(_topdown(tmp_path, augment=aug)), log=QUIET)
    before = trainer.evaluate()["AP"]
    result = trainer.fit()
    after = result["metrics"]["AP"]
    assert after > before and after >= 0.03, (before, after)


# ------------------------------------------------------------------------------ bone loss
def test_bone_loss_zero_positive_and_gradcheck():
    torch.manual_seed(0)
    bones = [(0, 1), (1, 2), (2, 3)]
    t = torch.rand(2, 4, 2, dtype=torch.float64)
    w = torch.ones(2, 4, dtype=torch.float64)
    assert bone_vector_loss(t.clone(), t, bones, w).item() == 0.0
    assert bone_vector_loss(t + 0.3, t, bones, w).item() < 1e-12   # translation: same limbs
    p = (t + 0.1 * torch.randn_like(t)).requires_grad_()
    assert bone_vector_loss(p, t, bones, w).item() > 0
    assert torch.autograd.gradcheck(lambda x: bone_vector_loss(x, t, bones, w), (p,))
    w[0, 1] = 0   # bones touching an unlabelled keypoint do not count
    q = t.clone()
    q[0, 1] += 5
    assert bone_vector_loss(q, t, bones, w).item() == 0.0
    # through a heatmap head: soft-argmax decoded, differentiable end to end (float64)
    from pyhpe.models import build_model
    from pyhpe.codecs import build_codec
    codec = build_codec("msra", input_size=[16, 16], heatmap_size=[4, 4], sigma=1.0)
    head = build_model("simple_baseline", "tiny", num_keypoints=4, codec=codec,
                       input_size=(16, 16)).head.double()
    head.set_bone_loss(1.0, bones, beta=2.0)
    maps = torch.randn(1, 4, 4, 4, dtype=torch.float64, requires_grad=True)
    gt = torch.rand(1, 4, 2, dtype=torch.float64)
    tg = {"keypoints_frac": gt, "keypoint_weights": torch.ones(1, 4, dtype=torch.float64)}
    assert torch.autograd.gradcheck(lambda m: head.bone_loss(m, tg), (maps,))


@pytest.mark.parametrize("kind", ["heatmap", "regression"])
def test_training_with_bone_loss_learns(tmp_path, kind):
    if kind == "heatmap":
        model = {"name": "simple_baseline", "config": "tiny", "bone_weight": 0.1}
        cfg = _topdown(tmp_path, model=model)
    else:
        model = {"name": "deeppose", "config": "tiny", "num_stages": 1, "bone_weight": 0.5}
        cfg = _topdown(tmp_path, model=model)
        cfg["codec"] = {"name": "regression"}
    task = build_task(cfg)
    trainer = Trainer(task, log=QUIET)
    assert task.build_model().head.bone_weight > 0
    before = trainer.evaluate()["AP"]
    result = trainer.fit()
    after = result["metrics"]["AP"]
    hist = result["history"]
    assert "loss_bone" in hist[-1] and hist[-1]["loss_bone"] < hist[0]["loss_bone"], hist
    assert after > before and after >= 0.03, (before, after)
