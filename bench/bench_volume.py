"""Volume family benchmarks: pyhpe's 3-D ops vs plain torch, and the memory floor.

Run: python -m pytest bench/bench_volume.py --benchmark-only -q   (pytest-benchmark groups)
 or: python bench/bench_volume.py [--shape B K D H W] [--device cpu|cuda]   (one table with
     the ratios and the floor, as quoted in bench/RESULTS.md)

Workloads, float32 volumes (B, K, D, H, W) (default 4x17x64x64x64 on the CPU, 32x17x64x64x64
on a GPU: 71 MB / 570 MB per tensor):
  * soft_argmax_3d forward, and forward + backward, vs torch (softmax over D*H*W, then the
    three weighted sums; autograd for the backward);
  * gaussian_volumes (sigma 2) vs a dense torch construction with the same windows;
  * the memory floor: bytes that must move / a measured copy bandwidth (``dst.copy_(src)``
    of one volume tensor, counted as read + write). Forward: one read of the volumes;
    forward + backward: a read in the forward, a read and a gradient write in the backward;
    targets: one write of the volumes. (The fill bandwidth of ``dst.zero_()`` is printed
    too: on CPUs whose last-level cache holds the tensors, memset-like writes beat the copy
    rate, and the targets can run under this floor.)
"""
import argparse
import os
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pyhpe.ops as ops  # noqa: E402
from pyhpe.reference import volume as ref  # noqa: E402

CPU_SHAPE = (4, 17, 64, 64, 64)
GPU_SHAPE = (32, 17, 64, 64, 64)
SIGMA = 2.0


def make_inputs(shape, device):
    g = torch.Generator().manual_seed(0)
    B, K, D, H, W = shape
    volumes = (3 * torch.randn(shape, generator=g)).to(device)
    keypoints = (torch.rand(B, K, 3, generator=g) * torch.tensor([W, H, D])).to(device)
    weights = torch.randn(B, K, 3, generator=g).to(device)
    return volumes, keypoints, weights


def _fwd_bwd(fn, x, w):
    x.grad = None
    (fn(x) * w).sum().backward()


def _cases(volumes, keypoints, weights):
    B, K, D, H, W = volumes.shape
    x = volumes.clone().requires_grad_(True)
    vis = torch.ones(B, K, device=volumes.device)
    dst = torch.empty_like(volumes)
    return {
        "soft_argmax_3d fwd": (lambda: ops.soft_argmax_3d(volumes),
                               lambda: ref.soft_argmax_3d_torch(volumes)),
        "soft_argmax_3d fwd+bwd": (lambda: _fwd_bwd(ops.soft_argmax_3d, x, weights),
                                   lambda: _fwd_bwd(ref.soft_argmax_3d_torch, x, weights)),
        "gaussian_volumes": (lambda: ops.gaussian_volumes(keypoints, None, (W, H, D), sigma=SIGMA),
                             lambda: ref.gaussian_volumes_torch(keypoints, vis, (W, H, D), SIGMA)),
        "copy": (lambda: dst.copy_(volumes), None),
        "fill": (lambda: dst.zero_(), None),
    }


# ---- pytest-benchmark groups ------------------------------------------------------------


@pytest.fixture(scope="module")
def inputs():
    return make_inputs(CPU_SHAPE, "cpu")


@pytest.mark.parametrize("case", ["soft_argmax_3d fwd", "soft_argmax_3d fwd+bwd",
                                  "gaussian_volumes"])
@pytest.mark.parametrize("impl", ["pyhpe", "torch"])
def test_volume(benchmark, inputs, case, impl):
    ours, theirs = _cases(*inputs)[case]
    benchmark.group = f"volume {case} {'x'.join(map(str, CPU_SHAPE))}"
    benchmark(ours if impl == "pyhpe" else theirs)


def test_volume_floor_copy(benchmark, inputs):
    benchmark.group = "volume copy floor"
    benchmark(_cases(*inputs)["copy"][0])


def test_volume_floor_fill(benchmark, inputs):
    benchmark.group = "volume fill floor"
    benchmark(_cases(*inputs)["fill"][0])


# ---- one-run table ------------------------------------------------------------------------


def _best(fn, device, rounds):
    def sync():
        if device == "cuda":
            torch.cuda.synchronize()
    fn()
    sync()
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shape", type=int, nargs=5, default=None)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    shape = tuple(args.shape or (GPU_SHAPE if args.device == "cuda" else CPU_SHAPE))
    volumes, keypoints, weights = make_inputs(shape, args.device)
    cases = _cases(volumes, keypoints, weights)
    nbytes = volumes.numel() * volumes.element_size()
    t_copy = _best(cases["copy"][0], args.device, args.rounds)
    bandwidth = 2 * nbytes / t_copy  # read + write
    write_bandwidth = nbytes / _best(cases["fill"][0], args.device, args.rounds)
    floors = {"soft_argmax_3d fwd": nbytes / bandwidth,
              "soft_argmax_3d fwd+bwd": 3 * nbytes / bandwidth,
              "gaussian_volumes": nbytes / bandwidth}
    print(f"device {args.device}, shape {shape} float32 ({nbytes / 2**20:.0f} MiB per tensor), "
          f"threads {torch.get_num_threads()}, copy bandwidth {bandwidth / 1e9:.1f} GB/s "
          f"(read + write), fill bandwidth {write_bandwidth / 1e9:.1f} GB/s (write)")
    print("| op | pyhpe | torch | speed-up | floor | pyhpe / floor |")
    print("|---|---|---|---|---|---|")
    for name in ("soft_argmax_3d fwd", "soft_argmax_3d fwd+bwd", "gaussian_volumes"):
        ours, theirs = cases[name]
        t_ours = _best(ours, args.device, args.rounds)
        t_theirs = _best(theirs, args.device, max(1, args.rounds // 2))
        floor = floors[name]
        print(f"| `{name}` | {t_ours * 1e3:.2f} ms | {t_theirs * 1e3:.1f} ms | "
              f"{t_theirs / t_ours:.1f}x | {floor * 1e3:.2f} ms | {t_ours / floor:.2f}x |")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
