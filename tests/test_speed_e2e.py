"""The fast paths of the top-down pipeline give what the plain paths give: the batch fetch
of TopDownDataset (one decode per image, crops warped into the batch) equals item-by-item
fetching, the image-grouped sampler keeps each image's people together, the Inferencer's
batched inference (flip test in the same forward, channels_last, one vectorised
post-processing and OKS-NMS over all images) equals the per-image task prediction, and
pyhpe's HRNet-W32 with mmpose-layout weights loaded through ``load_pretrained`` gives
mmpose's keypoints (recorded by tests/data/record_mmpose_topdown.py) within 1e-3 px, also
with the flip test (codec ``flip_shift='mmpose'``)."""
import json
import os

import cv2
import numpy as np
import pytest
import torch

from pyhpe.apis import load_pretrained
from pyhpe.apis.inferencer import Inferencer, topdown_postprocess
from pyhpe.apis.pretrained import synthetic_state_dict
from pyhpe.data import (CocoImageLoader, SyntheticPoseDataset, TopDownAugment, collate_topdown,
                        records_from_boxes, records_from_coco)
from pyhpe.data.topdown import ImageGroupedSampler, TopDownDataset
from pyhpe.data.transforms import flip_image
from pyhpe.tasks import build_task
from pyhpe.tasks.topdown import apply_oks_nms, predict_topdown, simulate_detections

pytestmark = pytest.mark.usefixtures("one_torch_thread")
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
QUIET = lambda *a: None  # noqa: E731


def _ochuman():
    with open(os.path.join(DATA, "ochuman_sample.json")) as f:
        coco = json.load(f)
    return coco, CocoImageLoader(coco, os.path.join(DATA, "ochuman"))


def _items_equal(a, b):
    assert set(a) == set(b)
    for k in a:
        if isinstance(a[k], torch.Tensor):
            assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k
        else:
            assert a[k] == b[k], k


@pytest.mark.parametrize("udp", [False, True])
def test_batch_fetch_equals_item_fetch_on_real_images(udp):
    coco, loader = _ochuman()
    recs = records_from_coco(coco) * 2          # each image's people twice in a batch
    decoded = []
    counting = lambda image_id: decoded.append(image_id) or loader(image_id)  # noqa: E731
    ds = TopDownDataset(recs, counting, "coco17", (192, 256), seed=3, udp=udp,
                        augment=TopDownAugment(flip_prob=0.5, rot_factor=40, half_body_prob=0.3))
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        idx = [7, 0, 3, 5, 1, 9, 2]
        decoded.clear()
        batch = ds.__getitems__(idx)
        assert len(decoded) == len({recs[i]["image_id"] for i in idx})   # one decode per image
        singles = [ds[i] for i in idx]
        for got, want in zip(batch, singles):
            _items_equal(got, want)
        stacked = collate_topdown(batch)
        want = collate_topdown(singles)
        _items_equal(stacked, want)


def test_dataloader_uses_the_batch_fetch_and_grouped_order():
    coco, loader = _ochuman()
    recs = records_from_coco(coco)
    ds = TopDownDataset(recs, loader, "coco17", (48, 64), augment=TopDownAugment(), seed=1)
    sampler = ImageGroupedSampler(recs, seed=4)
    order = list(sampler)
    assert sorted(order) == list(range(len(recs)))
    ids = [recs[i]["image_id"] for i in order]
    assert len([k for k in range(len(ids)) if k == 0 or ids[k] != ids[k - 1]]) == len(
        {r["image_id"] for r in recs})                 # each image's people contiguous
    sampler.set_epoch(1)
    assert sorted(sampler) == list(range(len(recs)))
    dl = torch.utils.data.DataLoader(ds, batch_size=3, sampler=sampler, collate_fn=collate_topdown)
    batches = list(dl)
    got = torch.cat([b["index"] for b in batches]).tolist()
    assert got == list(sampler)
    for b in batches:
        want = collate_topdown([ds[int(i)] for i in b["index"]])
        _items_equal(b, want)


def test_flip_image_is_the_mirrored_copy():
    img = np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    for a in (img, img[..., 0], img[:, 5:40], np.zeros((4, 0, 3), np.uint8),
              np.random.default_rng(1).random((9, 7, 6))):
        f = flip_image(a)
        assert f.flags.c_contiguous and np.array_equal(f, a[:, ::-1])


def _tiny_topdown(udp=False):
    cfg = {"task": "topdown", "keypoints": "coco17", "input_size": [48, 64],
           "model": {"name": "simple_baseline", "config": "tiny"},
           "codec": ({"name": "udp", "heatmap_size": [12, 16], "sigma": 1.0} if udp else
                     {"name": "msra", "heatmap_size": [12, 16], "sigma": 1.0}),
           "train": {"device": "cpu"}}
    torch.manual_seed(0)
    task = build_task(cfg)
    return task, task.build_model().eval()


@pytest.mark.parametrize("udp", [False, True])
@pytest.mark.parametrize("fast", [False, True])
def test_batched_inference_equals_per_image_prediction(udp, fast):
    """Several images with detector boxes (duplicates among them): the batched Inferencer
    gives the per-image task prediction + OKS-NMS, pose for pose."""
    src = SyntheticPoseDataset(5, seed=7, size=(96, 96), max_persons=3)
    gt = src.coco_dict()
    dets = simulate_detections(gt, seed=1)
    task, model = _tiny_topdown(udp)
    inf = Inferencer.from_task(task, model, device="cpu", log=QUIET, batch_size=4,
                               channels_last=fast, fuse_bn=fast)
    assert (inf._net is not model) == fast          # the folded copy; the model is unchanged
    bns = lambda m: sum(isinstance(x, torch.nn.BatchNorm2d) for x in m.modules())  # noqa: E731
    assert bns(model) > 0
    if fast:   # the BatchNorms after convolutions folded (those after deconvolutions stay)
        assert bns(inf._net) < bns(model)
    images = [src.image_by_id(im["id"]) for im in gt["images"]]
    ids = [im["id"] for im in gt["images"]]
    boxes = [[d for d in dets if d["image_id"] == i] for i in ids]
    got = inf.predict_images(images, boxes, ids)
    assert sum(map(len, got)) > 0
    for image, bxs, image_id, res in zip(images, boxes, ids, got):
        ds = TopDownDataset(records_from_boxes([dict(b, image_id=image_id) for b in bxs], 17),
                            lambda _i, im=image: im, "coco17", (48, 64), udp=udp)
        want = apply_oks_nms(predict_topdown(model.float(), ds, flip_test=True), 0.9,
                             task.kset.sigmas, 0.2) if len(ds) else []
        assert len(res) == len(want)
        for r, w in zip(res, want):
            assert r["image_id"] == w["image_id"] and r["bbox"] == pytest.approx(w["bbox"])
            np.testing.assert_allclose(r["keypoints"], w["keypoints"], rtol=1e-4, atol=1e-3)
            assert r["score"] == pytest.approx(w["score"], rel=1e-5)
    # one image through predict_image gives the same
    one = inf.predict_image(images[0], boxes[0], ids[0])
    assert [r["keypoints"] for r in one] == [r["keypoints"] for r in got[0]]


def test_postprocess_empty_and_without_nms():
    kps, final, keep = topdown_postprocess(torch.zeros(0, 17, 2), torch.zeros(0, 17),
                                           torch.zeros(0, 2), torch.ones(0, 2), torch.zeros(0),
                                           torch.zeros(0), (48, 64))
    assert kps.shape == (0, 17, 3) and len(final) == 0 and len(keep) == 0
    c = torch.full((2, 17, 2), 10.0)
    s = torch.tensor([[0.5] * 17, [0.1] * 17])
    kps, final, keep = topdown_postprocess(c, s, torch.tensor([[50.0, 60.0]] * 2),
                                           torch.tensor([[48.0, 64.0]] * 2),
                                           torch.tensor([1.0, 1.0]), torch.tensor([10.0, 10.0]),
                                           (48, 64), nms_thr=None)
    assert keep.tolist() == [0, 1]
    np.testing.assert_allclose(final, [0.5, 0.0])          # no keypoint above 0.2: score 0
    np.testing.assert_allclose(kps[0, 0, :2], [10 + 50 - 24, 10 + 60 - 32])


@pytest.mark.parametrize("flip", [False, True], ids=["plain", "flip_test"])
def test_hrnet_w32_keypoints_equal_mmpose_recorded(flip):
    """pyhpe's HRNet-W32 with the mmpose checkpoint's (deterministic) weights on OCHuman
    boxes: mmpose's image keypoints within 1e-3 px, scores to float32 summation order. With
    the flip test, the codec's ``flip_shift='mmpose'`` (one whole pixel, mmpose's
    ``shift_heatmap=True``) gives mmpose's flip-test keypoints; the default exact shift
    does not (the recorded maps come from noise weights, so their maxima move with it)."""
    ref = np.load(os.path.join(DATA, "mmpose_hrnet_w32_topdown.npz"))
    with open(os.path.join(DATA, "manifests", "hrnet_w32_mmpose.json")) as f:
        sd = synthetic_state_dict(json.load(f)["keys"])
    image = cv2.imread(os.path.join(DATA, "ochuman", "000817.jpg"), cv2.IMREAD_COLOR)
    boxes = [{"bbox": b.tolist(), "score": 1.0} for b in ref["boxes"]]
    suffix = "_flip" if flip else ""

    def run(flip_shift):
        task = build_task({"task": "topdown", "keypoints": "coco17", "input_size": [192, 256],
                           "model": {"name": "hrnet", "config": "w32"},
                           "codec": {"name": "msra", "heatmap_size": [48, 64], "sigma": 2.0,
                                     "flip_shift": flip_shift},
                           "train": {"device": "cpu"}})
        model = task.build_model()
        report = load_pretrained(model, sd, layout="mmpose")
        assert report.layout == "mmpose"
        inf = Inferencer.from_task(task, model.eval(), device="cpu", flip_test=flip,
                                   nms_thr=None, channels_last=True, fuse_bn=True, log=QUIET)
        res = inf.predict_image(image, boxes, 817)
        assert len(res) == len(ref["keypoints" + suffix]) == 4
        return np.array([r["keypoints"] for r in res]).reshape(4, 17, 3)

    kps = run("mmpose")
    np.testing.assert_allclose(kps[..., :2], ref["keypoints" + suffix], rtol=0, atol=1e-3)
    for got, want in zip(kps[..., 2], ref["scores" + suffix]):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * np.abs(want).max())
    if flip:
        exact = run("exact")
        assert np.abs(exact[..., :2] - ref["keypoints_flip"]).max() > 0.01


def test_flip_shift_option():
    """``flip_shift='mmpose'``: mmpose's ``flip_heatmaps(shift_heatmap=True)`` (mirror, swap
    the symmetric channels, move one whole pixel right, first column kept); 'exact' moves by
    ``1 - 1/stride``; the option round-trips through to_config and is validated."""
    from pyhpe.codecs import build_codec
    from pyhpe.engine import ConfigError
    from pyhpe.keypoints import get_keypoint_set
    idx = get_keypoint_set("coco17").flip_index()
    hm = torch.randn(2, 17, 16, 12, generator=torch.Generator().manual_seed(0))
    want = hm.flip(-1)[:, idx].clone()
    want[..., 1:] = want[..., :-1].clone()
    for name in ("msra", "unbiased"):
        mm = build_codec(name, input_size=(48, 64), heatmap_size=(12, 16), flip_shift="mmpose")
        assert torch.equal(mm.flip_back(hm, idx), want)
        assert build_codec(**mm.to_config()) == mm and mm.to_config()["flip_shift"] == "mmpose"
        exact = build_codec(name, input_size=(48, 64), heatmap_size=(12, 16))
        assert exact.flip_shift == "exact" and exact._flip_shift() == pytest.approx(0.75)
        assert not torch.allclose(exact.flip_back(hm, idx), want)
    with pytest.raises(ValueError, match="flip_shift"):
        build_codec("msra", flip_shift="one_pixel")
    with pytest.raises(ConfigError, match="flip_shift"):
        build_task({"task": "topdown", "codec": {"name": "msra", "flip_shift": "x"}}).codec


class _Blocks(torch.nn.Module):
    """Every pattern the pointwise fusion handles, and ones it must leave alone."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.relu = torch.nn.ReLU(inplace=True)
        self.a = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.b = torch.nn.Conv2d(8, 8, 1)
        self.c = torch.nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.d = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.e = torch.nn.Conv2d(8, 4, 1)

    def forward(self, x):
        x = self.relu(self.stem(x))                   # conv -> ReLU module
        y = self.relu(self.a(x) + x)                  # conv + other -> ReLU (residual)
        y = x + self.b(y)                             # other + conv, no ReLU
        z = torch.relu(self.c(y))                     # grouped conv -> torch.relu
        w = self.d(z)
        return self.e(w) * 2, w.mean()                # d has two uses: kept; e alone


def test_conv_pointwise_fusion_equals_the_separate_ops():
    """Conv2d + add and / or ReLU become one oneDNN call on the CPU, with the separate ops'
    outputs; with autograd the module runs the separate ops (gradients flow)."""
    from pyhpe.apis.inferencer import _ConvPointwise, _has_conv_pointwise, fuse_conv_pointwise
    if not _has_conv_pointwise():
        pytest.skip("this torch has no oneDNN fused convolution")
    torch.manual_seed(0)
    model = _Blocks().eval()
    x = torch.randn(2, 3, 33, 25)
    with torch.no_grad():
        want = model(x)
    gm = fuse_conv_pointwise(torch.fx.symbolic_trace(model))
    fused = [m for m in gm.modules() if isinstance(m, _ConvPointwise)]
    assert [(m.add, m.relu) for m in fused] == [(False, True), (True, True), (True, False),
                                                (False, True), (False, False)]
    for fmt in (torch.contiguous_format, torch.channels_last):
        gm = gm.to(memory_format=fmt)
        with torch.inference_mode():
            got = gm(x.contiguous(memory_format=fmt))
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)
    xg = x.clone().requires_grad_(True)
    out = gm(xg)[0].sum()
    out.backward()
    assert xg.grad is not None and torch.isfinite(xg.grad).all()
    assert fuse_conv_pointwise(model) is model                  # not a GraphModule: unchanged


def test_inferencer_on_cpu_runs_fused_pointwise_convolutions():
    from pyhpe.apis.inferencer import _ConvPointwise, _has_conv_pointwise
    task = build_task({"task": "topdown", "keypoints": "coco17", "input_size": [48, 64],
                       "model": {"name": "simple_baseline", "config": "tiny"},
                       "codec": {"name": "msra", "heatmap_size": [12, 16], "sigma": 2.0},
                       "train": {"device": "cpu"}})
    inf = Inferencer(task=task, device="cpu", log=lambda *a: None)
    assert inf.batch_size == 4                                  # 8 crops a pass with flip
    n = sum(isinstance(m, _ConvPointwise) for m in inf._net.modules())
    assert (n > 0) == _has_conv_pointwise()
