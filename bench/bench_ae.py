"""Associative Embedding decoding: pyhpe.ops.ae_group vs mmpose's AssociativeEmbedding.

Scene: 30 people, 17 COCO keypoints, 128 x 128 heatmaps (a 512 x 512 input at stride 4, as
HigherHRNet / mmpose's AE configs decode), tags with L = 1 (one tag map per keypoint) and
L = 2 (flip-test concatenation), float32, one image. Both sides run the same decoder: heatmap
NMS, top-30 per keypoint, Munkres grouping in mmpose's COCO keypoint order, quarter-pixel
refinement and fill-missing; max 30 instances. The baseline is mmpose 1.3.2's
``AssociativeEmbedding.batch_decode`` (run from ``/tmp/mmref`` or ``$PYHPE_MMPOSE_PATH`` with
its import stubs; skipped with the reason when it cannot be imported), scale factor 1, with
the classic munkres 1.1.x first on the path for identical results (munkres 3.x gives the
same optimal assignment costs but other tie-breaks). The
numpy oracle (pyhpe.reference.ae) is timed too, as the always-available baseline. Each
benchmark checks first that both sides find the same 30 people.

  python -m pytest bench/bench_ae.py --benchmark-only -q
"""
import os
import sys

import numpy as np
import pytest
import torch

import pyhpe.ops as ops
from pyhpe.reference import ae as ref
from test_ae import crowd

K, H, W, PEOPLE, TOPK = 17, 128, 128, 30, 30
ORDER = [0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16]  # mmpose's AE configs
MMREF = os.environ.get("PYHPE_MMPOSE_PATH", "/tmp/mmref")
STUBS = os.environ.get("PYHPE_MMPOSE_STUBS",
                       "/work/shared/tools/mmpose-reference/mmpose_stubs.py")


def _mmpose_codec():
    try:
        if os.path.isdir(MMREF) and MMREF not in sys.path:
            sys.path.append(MMREF)
        if os.path.exists(STUBS):
            exec(open(STUBS).read(), {})
        from mmpose.codecs import AssociativeEmbedding
    except Exception as e:  # noqa: BLE001 - any import failure means "not available"
        return None, f"mmpose not importable: {e!r}"
    codec = AssociativeEmbedding(input_size=(W * 4, H * 4), heatmap_size=(W, H), sigma=2,
                                 decode_keypoint_order=ORDER, decode_topk=TOPK,
                                 decode_max_instances=PEOPLE)
    codec.scale_factor = np.ones(2, dtype=np.float32)
    return codec, ""


@pytest.fixture(scope="module", params=[1, 2], ids=["L1", "L2"])
def scene(request):
    L = request.param
    hm, tags = crowd(np.random.default_rng(10 + L), 1, K, H, W, PEOPLE, L, tag_step=2.0,
                     sigma=2.0, dropout=0.1)
    hm_t, tags_t = torch.from_numpy(hm), torch.from_numpy(tags)
    kw = dict(keypoint_order=ORDER, topk=TOPK, max_instances=PEOPLE)
    ours = ops.ae_group(hm_t, tags_t, **kw)
    kp, ks, _ = ref.ae_group(hm, tags, **kw)
    assert ours.num_instances.item() == PEOPLE == kp[0].shape[0]
    np.testing.assert_allclose(ours.keypoints[0].numpy(), kp[0], atol=1e-6)
    np.testing.assert_allclose(ours.keypoint_scores[0].numpy(), ks[0], atol=1e-6)
    return dict(L=L, hm=hm, tags=tags, hm_t=hm_t, tags_t=tags_t, kw=kw)


def test_ae_group_pyhpe(benchmark, scene):
    benchmark.group = f"ae decode 30 people 17x128x128 L={scene['L']}"
    torch.set_num_threads(1)
    out = benchmark(ops.ae_group, scene["hm_t"], scene["tags_t"], **scene["kw"])
    assert out.num_instances.item() == PEOPLE


def test_ae_group_mmpose(benchmark, scene):
    benchmark.group = f"ae decode 30 people 17x128x128 L={scene['L']}"
    codec, why = _mmpose_codec()
    if codec is None:
        pytest.skip(why)
    torch.set_num_threads(1)
    kp, ks, _ = codec.batch_decode(scene["hm_t"].clone(), scene["tags_t"].clone())
    ours = ops.ae_group(scene["hm_t"], scene["tags_t"], **scene["kw"])
    assert kp[0].shape[0] == PEOPLE
    import munkres
    if getattr(munkres, "__version__", "").startswith("1.1"):
        # Same Munkres as ours; munkres 3.x reaches the same optimal costs but breaks ties
        # between equal-cost assignments differently.
        np.testing.assert_allclose(ours.keypoints[0].numpy(), kp[0], atol=1e-6)
    benchmark.pedantic(codec.batch_decode, (scene["hm_t"], scene["tags_t"]), rounds=5,
                       iterations=1, warmup_rounds=1)


def test_ae_group_numpy_reference(benchmark, scene):
    benchmark.group = f"ae decode 30 people 17x128x128 L={scene['L']}"
    benchmark.pedantic(ref.ae_group, (scene["hm"], scene["tags"]), scene["kw"], rounds=3,
                       iterations=1)
