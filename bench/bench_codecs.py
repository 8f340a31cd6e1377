"""Target generation per training batch: a codec's ``encode`` on the collated batch (one kernel
call, as the engine runs it before each step) against mmpose's per-sample codec loop (what
its data pipeline runs for every sample of the batch), and the training step it belongs to.

Workloads (COCO-17):
* top-down heatmaps (msra / unbiased / udp), SimCC, integral (DSNT also makes its Gaussians),
  regression: B=64 crops of 192x256 (48x64 maps, sigma 2; SimCC split ratio 2);
* bottom-up PAF: B=16 images of 256x256, 6 people, 64x64 maps (heatmaps + background + PAFs);
* lifting: B=1024 2-D/3-D pose pairs;
* train-step: the demo's batch (B=32 crops of 48x64, 12x16 maps) -- encode vs the forward +
  backward of the demo SimpleBaseline on the same batch, i.e. the share of a training step
  spent making targets.

Run: python -m pytest bench/bench_codecs.py --benchmark-only -q
"""
import os

import numpy as np
import pytest
import torch

from pyhpe.codecs import build_codec
from pyhpe.reference import heatmap as ref

if os.environ.get("PYHPE_BENCH_THREADS"):
    torch.set_num_threads(int(os.environ["PYHPE_BENCH_THREADS"]))

K = 17
TOPDOWN = dict(B=64, input_size=(192, 256), heatmap_size=(48, 64), sigma=2.0)
BOTTOMUP = dict(B=16, N=6, input_size=(256, 256), heatmap_size=(64, 64), sigma=1.5)
LIFT_B = 1024

TOPDOWN_CODECS = {
    "msra": dict(heatmap_size=TOPDOWN["heatmap_size"], sigma=TOPDOWN["sigma"]),
    "unbiased": dict(heatmap_size=TOPDOWN["heatmap_size"], sigma=TOPDOWN["sigma"]),
    "udp": dict(heatmap_size=TOPDOWN["heatmap_size"], sigma=TOPDOWN["sigma"]),
    "simcc": dict(sigma=(4.9, 5.66), split_ratio=2.0),
    "integral": dict(heatmap_size=TOPDOWN["heatmap_size"], method="dsnt"),
    "regression": dict(),
}


def _topdown_batch(seed=0):
    rng = np.random.default_rng(seed)
    W, H = TOPDOWN["input_size"]
    kp = np.stack([rng.uniform(0, W, (TOPDOWN["B"], K)), rng.uniform(0, H, (TOPDOWN["B"], K))],
                  -1).astype(np.float32)
    vis = rng.choice([0.0, 1.0, 2.0], size=(TOPDOWN["B"], K), p=[0.1, 0.2, 0.7]).astype(np.float32)
    return kp, vis


def _mmpose_topdown_loop(name, kp, vis):
    """mmpose's codec encode, one sample at a time (GenerateTarget in the data pipeline)."""
    W, H = TOPDOWN["input_size"]
    v = np.minimum(vis, 1.0)
    out = []
    for b in range(kp.shape[0]):
        k, w = kp[b:b + 1], v[b:b + 1]
        if name in ("msra", "unbiased", "udp", "integral"):
            hw, hh = TOPDOWN["heatmap_size"]
            scale = (np.array([hw - 1, hh - 1]) / np.array([W - 1, H - 1]) if name == "udp"
                     else np.array([hw, hh]) / np.array([W, H]))
            enc = "msra" if name == "integral" else name
            out.append(ref._MMPOSE_GAUSSIAN[enc]((hw, hh), k * scale, w, TOPDOWN["sigma"]))
        elif name == "simcc":
            out.append(ref.mmpose_simcc_gaussian(k, w, (W, H), (4.9, 5.66), 2.0, False))
        else:  # regression: normalised coordinates
            out.append((k / np.array([W, H], np.float32), w))
    return out


@pytest.fixture(scope="module")
def topdown():
    return _topdown_batch()


@pytest.mark.parametrize("name", list(TOPDOWN_CODECS))
def test_encode_pyhpe(benchmark, topdown, name):
    benchmark.group = f"targets-{name}"
    codec = build_codec(name, input_size=TOPDOWN["input_size"], **TOPDOWN_CODECS[name])
    kp, vis = (torch.from_numpy(a) for a in topdown)
    benchmark(codec.encode, kp, vis)


@pytest.mark.parametrize("name", list(TOPDOWN_CODECS))
def test_encode_mmpose_per_sample(benchmark, topdown, name):
    benchmark.group = f"targets-{name}"
    benchmark.pedantic(_mmpose_topdown_loop, args=(name, *topdown), rounds=5, warmup_rounds=1)


# ---------------------------------------------------------------------------- bottom-up PAF
@pytest.fixture(scope="module")
def bottomup():
    rng = np.random.default_rng(1)
    B, N = BOTTOMUP["B"], BOTTOMUP["N"]
    centre = rng.uniform(40, 216, (B, N, 1, 2))
    kp = (centre + rng.normal(0, 30, (B, N, K, 2))).astype(np.float32)
    vis = (rng.uniform(size=(B, N, K)) > 0.2).astype(np.float32)
    return kp, vis


def _paf_codec():
    from pyhpe.models.openpose import default_limbs
    return build_codec("paf", input_size=BOTTOMUP["input_size"], limbs=default_limbs(K),
                       heatmap_size=BOTTOMUP["heatmap_size"], sigma=BOTTOMUP["sigma"])


def test_encode_pyhpe_paf(benchmark, bottomup):
    benchmark.group = "targets-paf"
    codec = _paf_codec()
    kp, vis = (torch.from_numpy(a) for a in bottomup)
    benchmark(codec.encode, kp, vis)


def test_encode_mmpose_per_sample_paf(benchmark, bottomup):
    """mmpose 0.x's bottom-up targets per image: multi-person heatmaps, background, PAFs."""
    benchmark.group = "targets-paf"
    codec = _paf_codec()
    limbs = [tuple(int(v) for v in lm) for lm in np.asarray(codec.limbs).reshape(-1, 2)]
    stride = BOTTOMUP["input_size"][0] / BOTTOMUP["heatmap_size"][0]

    def loop(kp, vis):
        for b in range(kp.shape[0]):
            k = kp[b:b + 1] / stride
            hm, _ = ref.gaussian_heatmaps_numpy(k, vis[b:b + 1], BOTTOMUP["heatmap_size"],
                                                BOTTOMUP["sigma"])
            np.clip(1.0 - hm.max(1), 0.0, 1.0)
            ref.paf_targets_numpy(k, vis[b:b + 1], limbs, BOTTOMUP["heatmap_size"], 1.0)

    benchmark.pedantic(loop, args=bottomup, rounds=3, warmup_rounds=1)


# ---------------------------------------------------------------------------- lifting
@pytest.fixture(scope="module")
def lifting():
    rng = np.random.default_rng(2)
    kp2 = rng.uniform(0, 1000, (LIFT_B, K, 2)).astype(np.float32)
    kp3 = rng.normal(0, 300, (LIFT_B, K, 3)).astype(np.float32)
    mean_2d, std_2d = np.zeros((K, 2)), np.full((K, 2), 100.0)
    mean_3d, std_3d = np.zeros((K, 3)), np.full((K, 3), 300.0)
    return kp2, kp3, dict(root_index=[11, 12], mean_2d=mean_2d.tolist(), std_2d=std_2d.tolist(),
                          mean_3d=mean_3d.tolist(), std_3d=std_3d.tolist())


def test_encode_pyhpe_lift3d(benchmark, lifting):
    benchmark.group = "targets-lift3d"
    kp2, kp3, cfg = lifting
    codec = build_codec("lift3d", **cfg)
    k2, k3 = torch.from_numpy(kp2), torch.from_numpy(kp3)
    benchmark(codec.encode, k2, torch.ones(LIFT_B, K), keypoints_3d=k3)


def test_encode_mmpose_per_sample_lift3d(benchmark, lifting):
    """mmpose ImagePoseLifting.encode per sample: root-relative, standardised."""
    benchmark.group = "targets-lift3d"
    kp2, kp3, cfg = lifting
    m2, s2 = np.asarray(cfg["mean_2d"]), np.asarray(cfg["std_2d"])
    m3, s3 = np.asarray(cfg["mean_3d"]), np.asarray(cfg["std_3d"])

    def loop():
        for b in range(LIFT_B):
            root2 = kp2[b, [11, 12]].mean(0, keepdims=True)
            root3 = kp3[b, [11, 12]].mean(0, keepdims=True)
            ((kp2[b] - root2) - m2) / s2, ((kp3[b] - root3) - m3) / s3

    benchmark.pedantic(loop, rounds=5, warmup_rounds=1)


# ---------------------------------------------------------------------------- one training step
@pytest.fixture(scope="module")
def demo_step():
    from pyhpe.demo import DEMO_MODEL
    from pyhpe.models import build_model
    torch.manual_seed(0)
    B, input_size = 32, (48, 64)
    codec = build_codec("unbiased", input_size=input_size, heatmap_size=(12, 16), sigma=1.0)
    model = build_model("simple_baseline", "demo", codec=codec, **DEMO_MODEL).train()
    rng = np.random.default_rng(3)
    kp = torch.from_numpy(np.stack([rng.uniform(0, 48, (B, K)), rng.uniform(0, 64, (B, K))],
                                   -1).astype(np.float32))
    vis = torch.ones(B, K)
    images = torch.randn(B, 3, 64, 48)
    return codec, model, images, kp, vis


def test_train_step_encode(benchmark, demo_step):
    benchmark.group = "train-step (demo batch)"
    codec, _, _, kp, vis = demo_step
    benchmark(codec.encode, kp, vis)


def test_train_step_forward_backward(benchmark, demo_step):
    benchmark.group = "train-step (demo batch)"
    codec, model, images, kp, vis = demo_step
    targets = codec.encode(kp, vis)

    def step():
        losses = model(images, targets)
        sum(losses.values()).backward()

    benchmark.pedantic(step, rounds=5, warmup_rounds=1)

