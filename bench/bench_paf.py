"""OpenPose bottom-up grouping: pyhpe ops vs the pure-Python OpenPose port.

Crowded scene: 30 rendered COCO-18 people on a 368 x 656 map (OpenPose resizes its outputs to
the network input before NMS), float32. The baseline is pyhpe.reference.paf, a loop-for-loop
port of OpenPose's CPU code (peaks visit only pixels above the threshold, so it is the
favourable kind of pure-Python port). Every benchmark checks first that both sides find the
same 30 people.

  python -m pytest bench/bench_paf.py --benchmark-only -q
"""
import numpy as np
import pytest
import torch

import pyhpe.ops as ops
from pyhpe.ops.paf import COCO18_LIMBS, COCO18_PAF_CHANNELS
from pyhpe.reference import paf as ref

H, W, PEOPLE = 368, 656, 30


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(0)
    people, hm, pf = ref.render_batch(rng, 1, PEOPLE, H, W, COCO18_LIMBS, COCO18_PAF_CHANNELS)
    hm_t, pf_t = torch.from_numpy(hm), torch.from_numpy(pf)
    ours = ops.paf_group(hm_t, pf_t, "coco18")
    want = ref.openpose_pipeline(hm, pf, COCO18_LIMBS, COCO18_PAF_CHANNELS)
    assert ours[0][0].shape[0] == PEOPLE
    np.testing.assert_array_equal(ours[0][0].numpy(), want[0][0])
    np.testing.assert_array_equal(ours[0][1].numpy(), want[0][1])
    peaks, counts = ops.find_peaks(hm_t)
    scores = ops.paf_scores(pf_t, peaks, counts, COCO18_LIMBS, paf_channels=COCO18_PAF_CHANNELS)
    return dict(hm=hm, pf=pf, hm_t=hm_t, pf_t=pf_t, peaks=peaks, counts=counts, scores=scores)


@pytest.mark.benchmark(group="paf_pipeline 30 people 368x656")
def test_pipeline_pyhpe(benchmark, scene):
    out = benchmark(ops.paf_group, scene["hm_t"], scene["pf_t"], "coco18")
    assert out[0][0].shape[0] == PEOPLE


@pytest.mark.benchmark(group="paf_pipeline 30 people 368x656")
def test_pipeline_python_openpose(benchmark, scene):
    out = benchmark.pedantic(ref.openpose_pipeline, (scene["hm"], scene["pf"], COCO18_LIMBS,
                                                     COCO18_PAF_CHANNELS), rounds=3, iterations=1)
    assert out[0][0].shape[0] == PEOPLE


@pytest.mark.benchmark(group="find_peaks (1, 18, 368, 656)")
def test_find_peaks_pyhpe(benchmark, scene):
    benchmark(ops.find_peaks, scene["hm_t"])


@pytest.mark.benchmark(group="find_peaks (1, 18, 368, 656)")
def test_find_peaks_python_openpose(benchmark, scene):
    benchmark.pedantic(ref.find_peaks, (scene["hm"],), rounds=3, iterations=1)


@pytest.mark.benchmark(group="find_peaks (1, 18, 368, 656)")
def test_find_peaks_memory_floor(benchmark, scene):
    # Reading the maps once: a lower bound for any peak finder.
    benchmark(torch.amax, scene["hm_t"], (2, 3))


@pytest.mark.benchmark(group="paf_scores 19 limbs, 30x30 candidates")
def test_paf_scores_pyhpe(benchmark, scene):
    benchmark(ops.paf_scores, scene["pf_t"], scene["peaks"], scene["counts"], COCO18_LIMBS,
              paf_channels=COCO18_PAF_CHANNELS)


@pytest.mark.benchmark(group="paf_scores 19 limbs, 30x30 candidates")
def test_paf_scores_python_openpose(benchmark, scene):
    benchmark.pedantic(ref.paf_scores, (scene["pf"], scene["peaks"].numpy(), scene["counts"].numpy(),
                                        COCO18_LIMBS),
                       dict(paf_channels=COCO18_PAF_CHANNELS), rounds=3, iterations=1)


@pytest.mark.benchmark(group="group_poses 30 people")
def test_group_poses_pyhpe(benchmark, scene):
    benchmark(ops.group_poses, scene["peaks"], scene["counts"], scene["scores"], COCO18_LIMBS)


@pytest.mark.benchmark(group="group_poses 30 people")
def test_group_poses_python_openpose(benchmark, scene):
    benchmark.pedantic(ref.group_poses, (scene["peaks"].numpy(), scene["counts"].numpy(),
                                         scene["scores"].numpy(), COCO18_LIMBS),
                       rounds=5, iterations=1)


@pytest.mark.benchmark(group="group_poses 30 people, assembly='gpu' (merging)")
def test_group_poses_gpu_assembly_pyhpe(benchmark, scene):
    benchmark(ops.group_poses, scene["peaks"], scene["counts"], scene["scores"], COCO18_LIMBS,
              assembly="gpu")


@pytest.mark.benchmark(group="group_poses 30 people, assembly='gpu' (merging)")
def test_group_poses_gpu_assembly_python_openpose(benchmark, scene):
    benchmark.pedantic(ref.group_poses, (scene["peaks"].numpy(), scene["counts"].numpy(),
                                         scene["scores"].numpy(), COCO18_LIMBS),
                       dict(assembly="gpu"), rounds=5, iterations=1)
