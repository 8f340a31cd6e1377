"""Top-down inference as a user runs it, pyhpe against mmpose 1.3.2 in the same run, with the
same HRNet-W32 weights: deterministic random weights of mmpose's checkpoint layout
(``tests/data/manifests/hrnet_w32_mmpose.json`` through ``synthetic_state_dict``), loaded
into mmpose's ``TopdownPoseEstimator`` (td-hm_hrnet-w32 COCO 256x192 config) as they are and
into pyhpe's model by the checkpoint import (``load_pretrained``, layout 'mmpose').

* end to end: image files + a detection list -> keypoints after rescoring and OKS-NMS (0.9).
  pyhpe: :class:`pyhpe.apis.Inferencer` (crops of all images batched, flip test in the same
  forward, channels_last, inference_mode, one vectorised post-processing and one OKS-NMS
  call). mmpose: ``mmpose.apis.inference_topdown`` per image, then its COCO metric's
  rescoring and ``oks_nms`` per image. Flip test on both sides (mmpose's config: heatmap
  flip with ``shift_heatmap``; pyhpe's codec with ``flip_shift='mmpose'``, the same whole
  pixel, instead of its default exact ``1 - 1/stride``).
* keypoint identity: the same crops without and with flip test: pyhpe's image keypoints
  equal mmpose's within 1e-3 px (``tests/test_speed_e2e.py`` checks the same against a
  recorded fixture without mmpose).
* post-processing alone: 64 instances (4 images x 16 boxes, duplicates among them) from
  heatmaps to kept poses: decode + back-transform + rescoring + OKS-NMS. pyhpe:
  ``codec.decode`` + :func:`pyhpe.apis.inferencer.topdown_postprocess`; mmpose: its own
  code, ``head.decode`` (per instance), ``TopdownPoseEstimator.add_pred_to_datasample``
  (back-transform into the data samples, built outside the timing), the COCO metric's
  rescoring loop and ``oks_nms`` per image; one thread on both sides.

mmpose runs when importable (``PYTHONPATH=/tmp/mmref`` and the reference harness stubs);
otherwise its cases skip with the reason. Images: the COCO-17 samples of tests/data (see
bench_pipeline.py), boxes: ``simulate_detections`` of their ground truth (jittered boxes,
duplicates, false positives).
"""
import json
import os

import numpy as np
import pytest
import torch

from bench_pipeline import DATA, combined_coco, import_mmpose

HERE = os.path.dirname(os.path.abspath(__file__))
MANIFEST = os.path.join(HERE, "..", "tests", "data", "manifests", "hrnet_w32_mmpose.json")
MMPOSE_CONFIG = "body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w32_8xb64-210e_coco-256x192.py"
THREADS = int(os.environ.get("PYHPE_BENCH_THREADS", "2"))
RESULTS = {}

TOPDOWN_HRNET_W32 = {"task": "topdown", "keypoints": "coco17", "input_size": [192, 256],
                     "model": {"name": "hrnet", "config": "w32"},
                     "codec": {"name": "msra", "heatmap_size": [48, 64], "sigma": 2.0,
                               "flip_shift": "mmpose"},
                     "train": {"device": "cpu"}}


def hrnet_w32_state_dict():
    """mmpose-layout HRNet-W32 weights, deterministic (seeded per key)."""
    from pyhpe.apis.pretrained import synthetic_state_dict
    with open(MANIFEST) as f:
        return synthetic_state_dict(json.load(f)["keys"])


def pyhpe_inferencer(state_dict, flip_test: bool = True, nms_thr=0.9, **kw):
    from pyhpe.apis import load_pretrained
    from pyhpe.apis.inferencer import Inferencer
    from pyhpe.tasks import build_task
    task = build_task(TOPDOWN_HRNET_W32)
    model = task.build_model()
    load_pretrained(model, state_dict, layout="mmpose")
    fast = kw.pop("fast", True)
    return Inferencer.from_task(task, model.eval(), device="cpu", flip_test=flip_test,
                                nms_thr=nms_thr, channels_last=fast, fuse_bn=fast,
                                log=lambda *a: None, **kw)


def mmpose_model(state_dict, flip_test: bool = True):
    m = import_mmpose()
    from mmpose.apis import init_model
    cfg = os.path.join(os.path.dirname(m.__file__), ".mim", "configs", MMPOSE_CONFIG)
    model = init_model(cfg, None, device="cpu")
    model.load_state_dict(state_dict, strict=True)
    model.test_cfg["flip_test"] = flip_test
    return model.eval()


def bench_inputs(num_images: int = int(os.environ.get("PYHPE_BENCH_E2E_IMAGES", "3"))):
    """(image paths, COCO GT dict with their ids, detection list) of the first
    ``num_images`` sample images (default the 3 OCHuman ones; 6 adds the PoseTrack18 frames)."""
    from pyhpe.tasks.topdown import simulate_detections
    coco = combined_coco(repeat=1)
    coco["images"] = coco["images"][:num_images]
    keep = {im["id"] for im in coco["images"]}
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in keep]
    paths = [os.path.join(DATA, im["file_name"]) for im in coco["images"]]
    dets = simulate_detections(coco, seed=0)
    return paths, coco, dets


# ----------------------------------------------------------------------------- mmpose side
def mmpose_infer(model, paths, coco, dets, nms_thr=0.9, score_thr=0.2, vis_thr=0.2):
    """mmpose's top-down inference on each image's boxes, then its COCO metric's rescoring
    and OKS-NMS per image: ``{image_id: [(keypoints (K, 3), score)]}`` (kept poses)."""
    from mmpose.apis import inference_topdown
    from mmpose.evaluation.functional import oks_nms
    sigmas = np.array(model.dataset_meta["sigmas"])
    ids = {os.path.join(DATA, im["file_name"]): im["id"] for im in coco["images"]}
    by_image = {}
    for d in dets:
        by_image.setdefault(d["image_id"], []).append(d)
    out = {}
    for path in paths:
        image_id = ids[path]
        boxes = by_image.get(image_id, [])
        if not boxes:
            out[image_id] = []
            continue
        xyxy = np.array([[b["bbox"][0], b["bbox"][1], b["bbox"][0] + b["bbox"][2],
                          b["bbox"][1] + b["bbox"][3]] for b in boxes], np.float32)
        samples = inference_topdown(model, path, xyxy, bbox_format="xyxy")
        insts = []
        for s, b in zip(samples, boxes):
            kp = s.pred_instances.keypoints[0]
            sc = s.pred_instances.keypoint_scores[0]
            valid = sc > score_thr
            mean = float(sc[valid].mean()) if valid.any() else 0.0
            insts.append({"keypoints": np.concatenate([kp, sc[:, None]], 1),
                          "score": float(b["score"]) * mean,
                          "area": float(b["bbox"][2] * b["bbox"][3])})
        keep = oks_nms(insts, nms_thr, sigmas) if nms_thr is not None else range(len(insts))
        out[image_id] = [(insts[k]["keypoints"], insts[k]["score"]) for k in keep]
    return out


def pyhpe_infer(inf, paths, coco, dets):
    res = inf(paths, boxes=dets, gt=coco, draw=False)
    out = {}
    for r in res.results:
        out.setdefault(r["image_id"], []).append(
            (np.asarray(r["keypoints"]).reshape(-1, 3), r["score"]))
    return out


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def threads():
    n = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield THREADS
    torch.set_num_threads(n)


@pytest.fixture
def one_thread():
    """Post-processing on one thread on both sides (mmpose's numpy is single-threaded; on a
    busy 2-core machine a 2-thread OpenMP region can wait ~30 ms for its second thread)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def weights(threads):
    return hrnet_w32_state_dict()


@pytest.fixture(scope="module")
def inputs():
    return bench_inputs()


# ----------------------------------------------------------------------------- identity
@pytest.mark.parametrize("flip", [False, True], ids=["plain", "flip_test"])
def test_keypoints_identical_to_mmpose(weights, inputs, flip):
    """Same crops, same weights, no NMS, without and with flip test (pyhpe's codec with
    ``flip_shift='mmpose'``): every box's image keypoints agree within 1e-3 px, the scores
    to float32 summation order."""
    mm = mmpose_model(weights, flip_test=flip)
    inf = pyhpe_inferencer(weights, flip_test=flip, nms_thr=None)
    paths, coco, dets = inputs
    paths, dets = paths[:2], [d for d in dets if d["image_id"] in (1, 2)]
    with torch.no_grad():
        a = mmpose_infer(mm, paths, coco, dets, nms_thr=None)
    b = pyhpe_infer(inf, paths, coco, dets)
    n, err = 0, 0.0
    for image_id, poses in a.items():
        assert len(poses) == len(b.get(image_id, []))
        for (ka, sa), (kb, sb) in zip(poses, b[image_id]):
            np.testing.assert_allclose(kb[:, :2], ka[:, :2], atol=1e-3, rtol=0)
            # heatmap maxima of random weights reach 1e10: float32 sums, relative to the largest
            np.testing.assert_allclose(kb[:, 2], ka[:, 2], rtol=0, atol=1e-4 * np.abs(ka[:, 2]).max())
            np.testing.assert_allclose(sb, sa, rtol=1e-4)
            err = max(err, float(np.abs(kb[:, :2] - ka[:, :2]).max()))
            n += 1
    assert n >= 3
    RESULTS["identity-flip" if flip else "identity"] = err


# ----------------------------------------------------------------------------- end to end
def _timed(benchmark, key, fn, n_images, rounds=4):
    fn()                                    # warm-up (oneDNN primitives, caches)
    benchmark.pedantic(fn, rounds=rounds, iterations=1)
    RESULTS[key] = n_images / benchmark.stats.stats.min
    benchmark.extra_info["images_per_s"] = round(RESULTS[key], 3)


def test_end_to_end_mmpose(benchmark, weights, inputs):
    mm = mmpose_model(weights)
    paths, coco, dets = inputs
    with torch.no_grad():
        _timed(benchmark, "e2e-mmpose", lambda: mmpose_infer(mm, paths, coco, dets), len(paths))


def test_end_to_end_pyhpe(benchmark, weights, inputs):
    inf = pyhpe_inferencer(weights)
    paths, coco, dets = inputs
    _timed(benchmark, "e2e-pyhpe", lambda: pyhpe_infer(inf, paths, coco, dets), len(paths))


def test_end_to_end_pyhpe_unfused_nchw(benchmark, weights, inputs):
    """The same without BatchNorm folding and channels_last (what batching, the flip in the
    same forward and the vectorised post-processing bring alone)."""
    inf = pyhpe_inferencer(weights, fast=False)
    paths, coco, dets = inputs
    _timed(benchmark, "e2e-pyhpe-nchw", lambda: pyhpe_infer(inf, paths, coco, dets), len(paths))


# ----------------------------------------------------------------------------- post-processing
def postprocess_inputs(num_images=4, per_image=16, K=17, seed=0):
    """Peaked 64x48 heatmaps of ``num_images * per_image`` crops (half of each image's boxes
    near-duplicates of the other half), their boxes, centres/scales and scores."""
    from pyhpe import ops
    from pyhpe.data.transforms import bbox_xywh_to_center_scale
    rng = np.random.default_rng(seed)
    N, half = num_images * per_image, per_image // 2
    kps, boxes = [], []
    for _ in range(num_images):      # each image: half the poses, then a near-duplicate of each
        base = rng.uniform([4, 4], [44, 60], size=(half, K, 2))
        kps += [base, base + rng.normal(0, 0.7, base.shape)]
        b = rng.uniform([0, 0, 60, 120], [500, 300, 160, 320], size=(half, 4))
        boxes += [b, b + rng.normal(0, 3, b.shape)]
    kp = np.concatenate(kps).astype(np.float32)
    boxes = np.concatenate(boxes)
    hm, _ = ops.msra_heatmaps(torch.from_numpy(kp)[:, None], torch.ones(N, 1, K), (48, 64),
                              sigma=2.0)
    hm = hm + 0.01 * torch.rand(hm.shape, generator=torch.Generator().manual_seed(seed))
    cs = [bbox_xywh_to_center_scale(b, 192 / 256, 1.25) for b in boxes]
    centers = np.stack([c for c, _ in cs]).astype(np.float32)
    scales = np.stack([s for _, s in cs]).astype(np.float32)
    box_scores = rng.uniform(0.5, 1.0, N)
    return hm.contiguous(), boxes, centers, scales, box_scores, num_images, per_image


def pyhpe_postprocess(codec, hm, boxes, centers, scales, box_scores, num_images, per_image,
                      sigmas):
    from pyhpe.apis.inferencer import topdown_postprocess
    coords, scores = codec.decode(hm)
    return topdown_postprocess(
        coords, scores, torch.from_numpy(centers), torch.from_numpy(scales),
        torch.from_numpy(box_scores), torch.from_numpy(boxes[:, 2] * boxes[:, 3]), (192, 256),
        image_offsets=torch.arange(0, num_images * per_image + 1, per_image), nms_thr=0.9,
        sigmas=sigmas, vis_thr=0.2)


def mmpose_samples(boxes, centers, scales, box_scores):
    """One ``PoseDataSample`` per crop as mmpose's test pipeline hands them to the model
    (metainfo ``input_center`` / ``input_scale`` / ``input_size``, the box and its score)."""
    from mmengine.structures import InstanceData
    from mmpose.structures import PoseDataSample
    out = []
    for i in range(len(boxes)):
        s = PoseDataSample(metainfo=dict(input_center=centers[i], input_scale=scales[i],
                                         input_size=(192, 256)))
        gt = InstanceData()
        x, y, w, h = boxes[i]
        gt.bboxes = np.array([[x, y, x + w, y + h]], np.float32)
        gt.bbox_scores = np.array([box_scores[i]], np.float32)
        s.gt_instances = gt
        out.append(s)
    return out


def mmpose_postprocess(head, hm, samples, areas, num_images, per_image, sigmas, score_thr=0.2):
    """mmpose's own code after the forward pass: ``head.decode`` (per instance),
    ``TopdownPoseEstimator.add_pred_to_datasample`` (back-transform into the data samples),
    the COCO metric's rescoring loop and ``oks_nms`` per image."""
    from mmpose.evaluation.functional import oks_nms
    from mmpose.models.pose_estimators import TopdownPoseEstimator
    preds = head.decode(hm)
    est = _Estimator()
    samples = TopdownPoseEstimator.add_pred_to_datasample(est, preds, None, samples)
    kept = []
    for g in range(num_images):
        insts = []
        for i in range(g * per_image, (g + 1) * per_image):
            p = samples[i].pred_instances
            sc = p.keypoint_scores[0]
            mean_kpt, valid = 0.0, 0
            for k in range(len(sc)):                 # the COCO metric's rescoring loop
                if sc[k] > score_thr:
                    mean_kpt += sc[k]
                    valid += 1
            if valid:
                mean_kpt /= valid
            insts.append({"keypoints": np.concatenate([p.keypoints[0], sc[:, None]], 1),
                          "score": float(p.bbox_scores[0]) * mean_kpt, "area": float(areas[i])})
        kept.append([g * per_image + k for k in oks_nms(insts, 0.9, sigmas, 0.2)])
    return kept


class _Estimator:
    """What ``add_pred_to_datasample`` reads of the estimator: its test config."""
    test_cfg = {}


@pytest.fixture(scope="module")
def post():
    return postprocess_inputs()




def test_postprocess_same_poses_kept(post):
    import_mmpose()
    from mmpose.registry import MODELS
    from pyhpe.codecs import build_codec
    from pyhpe.keypoints import get_keypoint_set
    head = _mmpose_head(MODELS)
    sigmas = get_keypoint_set("coco17").sigmas
    kps, final, keep = pyhpe_postprocess(build_codec("msra", input_size=(192, 256),
                                                     heatmap_size=(48, 64), sigma=2.0),
                                         *post, sigmas)
    hm, boxes, centers, scales, box_scores, ni, pi = post
    ref = mmpose_postprocess(head, hm, mmpose_samples(boxes, centers, scales, box_scores),
                             boxes[:, 2] * boxes[:, 3], ni, pi, np.asarray(sigmas))
    assert sorted(keep.tolist()) == sorted(i for g in ref for i in g)
    assert 0 < len(keep) < 64


def _mmpose_head(MODELS):
    return MODELS.build(dict(type="HeatmapHead", in_channels=32, out_channels=17,
                             deconv_out_channels=None,
                             decoder=dict(type="MSRAHeatmap", input_size=(192, 256),
                                          heatmap_size=(48, 64), sigma=2)))


def test_postprocess_mmpose(benchmark, post, one_thread):
    import_mmpose()
    from mmpose.registry import MODELS
    from pyhpe.keypoints import get_keypoint_set
    head = _mmpose_head(MODELS)
    sigmas = np.asarray(get_keypoint_set("coco17").sigmas)
    hm, boxes, centers, scales, box_scores, ni, pi = post

    def setup():     # fresh data samples each round (the back-transform writes into them)
        samples = mmpose_samples(boxes, centers, scales, box_scores)
        return (head, hm, samples, boxes[:, 2] * boxes[:, 3], ni, pi, sigmas), {}
    benchmark.pedantic(mmpose_postprocess, setup=setup, rounds=10, iterations=1)
    RESULTS["post-mmpose"] = benchmark.stats.stats.min


def test_postprocess_pyhpe(benchmark, post, one_thread):
    from pyhpe.codecs import build_codec
    from pyhpe.keypoints import get_keypoint_set
    codec = build_codec("msra", input_size=(192, 256), heatmap_size=(48, 64), sigma=2.0)
    sigmas = get_keypoint_set("coco17").sigmas
    benchmark.pedantic(pyhpe_postprocess, args=(codec,) + post + (sigmas,), rounds=200,
                       iterations=1, warmup_rounds=3)
    RESULTS["post-pyhpe"] = benchmark.stats.stats.min


def test_zz_summary():
    """The ratios of this run (printed; run with -s)."""
    if not RESULTS:
        pytest.skip("no benchmark ran")
    lines = []
    if "e2e-pyhpe" in RESULTS:
        mm = RESULTS.get("e2e-mmpose")
        for k in ("e2e-pyhpe", "e2e-pyhpe-nchw"):
            if k in RESULTS:
                lines.append(f"{k}: {RESULTS[k]:.3f} images/s"
                             + (f" = {RESULTS[k] / mm:.2f}x mmpose ({mm:.3f} images/s)" if mm else ""))
    if "post-pyhpe" in RESULTS:
        mm = RESULTS.get("post-mmpose")
        lines.append(f"post-processing 64 instances: pyhpe {RESULTS['post-pyhpe'] * 1e3:.3f} ms"
                     + (f", mmpose {mm * 1e3:.2f} ms = {mm / RESULTS['post-pyhpe']:.0f}x" if mm else ""))
    for k, what in (("identity", "without"), ("identity-flip", "with")):
        if k in RESULTS:
            lines.append(f"keypoints {what} flip test: max |pyhpe - mmpose| = {RESULTS[k]:.2e} px")
    print("\n" + "\n".join(lines))
