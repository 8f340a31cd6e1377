"""AID (information-dropping augmentation) and the 2-D bone loss as options of the top-down
pipeline."""
import cv2
import numpy as np
import pytest
import torch

from pyhpe.data import SyntheticPoseDataset, TopDownAugment, TopDownDataset, records_from_coco
from pyhpe.data.transforms import AID_GRID_SIZES, bbox_xywh_to_center_scale, sample_aid_regions
from pyhpe.keypoints import get_keypoint_set
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


FILL = (104, 116, 124)   # not the warp's black border, so the drop is visible everywhere


def _regions(aid, idx=3, epoch=0):
    """The regions the dataset's augment drew: the same rng stream, re-drawn after the
    geometric draws."""
    src = SyntheticPoseDataset(6, seed=0, size=(96, 96))
    rec = records_from_coco(src.coco_dict())[idx]
    rng = np.random.default_rng([5, epoch, idx])
    c, s = bbox_xywh_to_center_scale(rec["bbox"], 48 / 64, 1.25)
    TopDownAugment(rot_factor=20, half_body_prob=0.0)(
        rng, src.image_by_id(rec["image_id"]), rec["keypoints"], rec["visibility"], c, s,
        get_keypoint_set("coco17"), 48 / 64)
    return TopDownAugment(rot_factor=20, half_body_prob=0.0, **aid).aid_regions(rng, 48 / 64)


@pytest.mark.parametrize("mode", ["cutout", "hide_and_seek"])
@pytest.mark.parametrize("idx", [1, 3])
def test_aid_regions_where_and_as_large_as_configured(mode, idx):
    aid = {"aid_prob": 1.0, "aid_mode": mode, "aid_radius_factor": 0.2, "aid_num_patch": 2,
           "aid_grid_sizes": [0.25], "aid_fill": FILL}
    (plain, dropped), _ = _pair(aid, idx=idx)
    # keypoints and visibility untouched, geometry identical
    assert torch.equal(plain["keypoints"], dropped["keypoints"])
    assert torch.equal(plain["visibility"], dropped["visibility"])
    assert torch.equal(plain["center"], dropped["center"]) and torch.equal(plain["scale"], dropped["scale"])
    regions = _regions(aid, idx=idx)
    if mode == "cutout":   # official Cutout: radii radius_factor * (1 + U(0, 1)) * W per axis
        assert len(regions.ellipses) == 2 and len(regions.rects) == 0
        rx_px, ry_px = regions.ellipses[:, 2] * 48, regions.ellipses[:, 3] * 64
        for r in (rx_px, ry_px):
            assert np.all((r >= 0.2 * 48 - 1e-9) & (r <= 0.4 * 48 + 1e-9))
    else:                  # cells of 0.25 x 48 = 12 input pixels, about half of them hidden
        assert len(regions.ellipses) == 0 and 0 < len(regions.rects) < 4 * 6
        w, h = (regions.rects[:, 2] - regions.rects[:, 0]) * 48, (regions.rects[:, 3] - regions.rects[:, 1]) * 64
        assert np.allclose(w, 12) and np.allclose(h[regions.rects[:, 3] < 1], 12)
    mask = regions.mask((48, 64))
    # the crop interpolates the source image: edges blur over one source pixel
    m = int(np.ceil(48 / float(plain["scale"][0]))) + 1
    band = np.ones((2 * m + 1, 2 * m + 1), np.uint8)
    inside = cv2.erode(mask.astype(np.uint8), band) > 0
    near = cv2.dilate(mask.astype(np.uint8), band) > 0
    a, b = plain["image"].numpy(), dropped["image"].numpy()
    # the crop's part beyond the source image stays the warp's black border
    in_image = cv2.erode(np.any(a != 0, -1).astype(np.uint8), band) > 0
    inside &= in_image
    assert inside.sum() > 20
    assert np.all(b[inside] == np.array(FILL, np.uint8))          # dropped where said
    changed = np.any(a != b, axis=-1)
    assert not np.any(changed & ~near)                              # and nowhere else
    filled = np.all(b == np.array(FILL, np.uint8), -1)
    area = (mask & in_image).sum()                                  # as large as said
    assert inside.sum() <= (filled & in_image).sum() and (filled & in_image & ~near).sum() == 0
    assert abs((filled & in_image).sum() - area) <= 0.25 * area, ((filled & in_image).sum(), area)
    # deterministic per (seed, epoch, index); another epoch draws another drop
    (_, again), _ = _pair(aid, idx=idx)
    assert torch.equal(again["image"], dropped["image"])
    (_, other), _ = _pair(aid, idx=idx, epoch=1)
    assert not torch.equal(other["image"], dropped["image"])


def test_aid_off_probability_defaults_and_errors():
    (plain, same), _ = _pair({"aid_prob": 0.0})
    assert torch.equal(plain["image"], same["image"])
    rng = np.random.default_rng(0)
    aug = TopDownAugment(aid_prob=0.3)
    hits = np.mean([len(aug.aid_regions(rng, 0.75)) > 0 for _ in range(2000)])
    assert abs(hits - 0.3) < 0.04
    # the official defaults: one ellipse (radius factor 0.2); grids of 0/16/32/44 px of 192
    d = TopDownAugment(aid_prob=1.0)
    assert (d.aid_mode, d.aid_radius_factor, d.aid_num_patch, d.aid_hide_prob, d.aid_fill) == \
        ("cutout", 0.2, 1, 0.5, (0, 0, 0))
    assert np.allclose(np.array(AID_GRID_SIZES) * 192, [0, 16, 32, 44])
    assert len(sample_aid_regions(rng, 0.75, "hide_and_seek", grid_sizes=[0.0])) == 0
    r = sample_aid_regions(np.random.default_rng(1), 0.75, "hide_and_seek", grid_sizes=[0.5],
                           hide_prob=1.0)
    assert len(r) == 2 * 3 and r.mask((48, 64)).all()   # 24 px cells: 2 columns, 3 rows
    for bad in ({"aid_prob": 2}, {"aid_mode": "mixup"}, {"aid_radius_factor": 0},
                {"aid_grid_sizes": []}, {"aid_num_patch": 0}, {"aid_fill": [0]}):
        with pytest.raises(ValueError):
            TopDownAugment(**bad)


# measured (seed 0, 120 steps, 64 images): plain 0.34 AP; AID cutout (prob 1) 0.24; AID
# hide-and-seek 0.16 (dropping slows learning: AID trains longer); bone loss heatmap 0.34,
# regression 0.28. Floors leave room for other platforms.
def test_training_with_aid_learns(tmp_path):
    aug = {"rot_factor": 20, "half_body_prob": 0.1, "aid_prob": 1.0, "aid_mode": "cutout"}
    trainer = Trainer(build_task(_topdown(tmp_path, augment=aug)), log=QUIET)
    before = trainer.evaluate()["AP"]
    result = trainer.fit()
    after = result["metrics"]["AP"]
    assert after > before and after >= 0.08, (before, after)


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
    assert torch.autograd.gradcheck(lambda m: head.limb_loss(m, tg), (maps,))


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
    assert task.build_model().head.limb_weight > 0
    before = trainer.evaluate()["AP"]
    result = trainer.fit()
    after = result["metrics"]["AP"]
    hist = result["history"]
    assert "loss_bone" in hist[-1] and hist[-1]["loss_bone"] < hist[0]["loss_bone"], hist
    assert after > before and after >= 0.1, (before, after)


@pytest.mark.parametrize("kind", ["msra", "udp", "integral", "simcc", "regression"])
def test_bone_loss_on_every_topdown_head(tmp_path, kind):
    """``model.bone_weight`` reaches every head kind: one batch gives a finite positive
    ``loss_bone`` with gradients into the network; bone_weight 0 adds nothing."""
    codecs = {"msra": {"name": "msra", "heatmap_size": [12, 16], "sigma": 1.0},
              "udp": {"name": "udp", "heatmap_size": [12, 16], "sigma": 1.0},
              "integral": {"name": "integral", "heatmap_size": [12, 16], "method": "ipr"},
              "simcc": {"name": "simcc", "sigma": [2.0, 2.0]},
              "regression": {"name": "regression"}}
    models = {"simcc": {"name": "rtmpose", "config": "tiny", "widths": [16, 32, 48, 64],
                        "stem_channels": 16},
              "regression": {"name": "deeppose", "config": "tiny", "num_stages": 1}}
    model = dict(models.get(kind, {"name": "simple_baseline", "config": "tiny"}), bone_weight=0.5)
    cfg = _topdown(tmp_path, model=model)
    cfg["codec"] = codecs[kind]
    task = build_task(cfg)
    net = task.build_model()
    assert net.head.limbs == [tuple(b) for b in task.kset.skeleton]
    batch = task.collate([task.train_dataset()[i] for i in range(4)])
    inputs, targets = task.prepare(batch, "cpu")
    losses = net(inputs, targets)
    assert "loss_bone" in losses and torch.isfinite(losses["loss_bone"]) and losses["loss_bone"] > 0
    losses["loss_bone"].backward()
    grads = [p.grad for p in net.head.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    cfg["model"] = dict(model, bone_weight=0.0)
    task0 = build_task(cfg)
    net0 = task0.build_model()
    assert "loss_bone" not in net0(*task0.prepare(batch, "cpu"))


def test_bone_loss_config_errors(tmp_path):
    from pyhpe.engine import ConfigError
    with pytest.raises(ConfigError, match="bone_weight must be >= 0"):
        build_task(_topdown(tmp_path, model={"name": "simple_baseline", "config": "tiny",
                                             "bone_weight": -1})).build_model()
    net = build_task(_topdown(tmp_path, model={"name": "simple_baseline", "config": "tiny",
                                               "bone_weight": 1, "bones": [[0, 1]]})).build_model()
    assert net.head.limbs == [(0, 1)]
