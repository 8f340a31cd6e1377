"""Short speed table of pyhpe's kernels on one device (``make gpu-check``; ``make bench`` style).

Each row times a pyhpe op on ``--device`` against the same op on the CPU and, where one exists,
a vectorized torch implementation on the same device (pyhpe.testing.baselines). Times are the
median of a few timed repeats (CUDA-synchronized). Memory-bound kernels also get their
bandwidth: the bytes they must move at least (inputs read once, outputs written once) over
the time, as a fraction of the device's measured copy bandwidth (a large ``clone``) and of
its nominal peak (memory clock x bus width, from the device properties). The end-to-end
top-down rows (decode + back-transform + rescoring + OKS-NMS of 64 instances; HRNet-W32
forward of a crop batch with flip test as the Inferencer runs it) time what
bench/bench_inference.py measures on the CPU. Prints a markdown table; ``--markdown PATH``
also writes it there. Needs neither pytest nor pytest-benchmark.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

import pyhpe  # noqa: E402,F401
from pyhpe import ops  # noqa: E402
from pyhpe.testing import baselines as fb  # noqa: E402
from pyhpe.testing import median_time  # noqa: E402


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(fn, device, repeat=7, min_time=0.02):
    return median_time(fn, repeat, min_time, sync=lambda: _sync(device)) * 1e3


def copy_bandwidth(device, nbytes=1 << 28) -> float:
    """Measured bytes/s of a device-to-device ``clone`` (read + write) of ``nbytes``."""
    x = torch.empty(nbytes // 4, dtype=torch.float32, device=device)
    return 2 * x.numel() * 4 / (median_ms(lambda: x.clone(), device, 5) * 1e-3)


def nominal_bandwidth(device):
    """Peak bytes/s from the device properties (DDR: 2 x memory clock x bus width), or None."""
    if device.type != "cuda":
        return None
    p = torch.cuda.get_device_properties(device)
    clock, bus = getattr(p, "memory_clock_rate", 0), getattr(p, "memory_bus_width", 0)
    return 2.0 * clock * 1e3 * bus / 8 if clock and bus else None


def cases(device):
    """``(name, shape, make(device) -> fn, make_baseline or None, minimum bytes or None)``."""
    g = torch.Generator().manual_seed(0)
    N, D, G, K = 64, 20, 10, 17
    dt = torch.rand(N, D, K, 3, generator=g, dtype=torch.float64) * 200
    gt = torch.rand(N, G, K, 3, generator=g, dtype=torch.float64) * 200
    gt[..., 2] = 2
    areas = torch.rand(N, G, generator=g, dtype=torch.float64) * 5000 + 500
    yield ("oks_matrix", f"{N} img x {D}x{G}x{K} f64", lambda d: (lambda a=dt.to(d), b=gt.to(d), c=areas.to(d):
                                                                    lambda: ops.oks_matrix(a, b, c))(), None,
           8 * (dt.numel() + gt.numel() + areas.numel() + N * D * G))
    B, W, H = 64, 48, 64
    kp = torch.rand(B, 1, K, 2, generator=g) * torch.tensor([W, H])
    vis = torch.ones(B, 1, K)
    maps = B * K * H * W * 4
    yield ("msra_heatmaps", f"{B}x{K}x{H}x{W}",
           lambda d: (lambda a=kp.to(d), v=vis.to(d): lambda: ops.msra_heatmaps(a, v, (W, H), sigma=2.0))(),
           lambda d: (lambda a=kp.to(d), v=vis.to(d): lambda: fb.msra_heatmaps_torch(a, v, (W, H), 2.0))(),
           maps)
    hm = fb.msra_heatmaps_torch(kp, vis, (W, H), 2.0)[0]
    yield ("dark_decode", f"{B}x{K}x{H}x{W}",
           lambda d: (lambda h=hm.to(d): lambda: ops.dark_decode(h, kernel=11))(),
           lambda d: (lambda h=hm.to(d): lambda: fb.dark_decode_torch(h, 11))(), maps)
    yield ("argmax_decode", f"{B}x{K}x{H}x{W}",
           lambda d: (lambda h=hm.to(d): lambda: ops.argmax_decode(h, quarter_offset=True,
                                                                   offset_rule="mmpose1"))(),
           None, maps)
    yield ("top-down post-processing", f"{B} inst: decode+back+rescore+oks_nms",
           lambda d: _postprocess_case(d, hm), None, maps)

    def soft_argmax_fb(d):
        x = torch.randn(B, K, H, W, generator=g).to(d).requires_grad_(True)

        def run():
            y = ops.soft_argmax(x, beta=4.0)
            y.sum().backward()
        return run
    yield ("soft_argmax fwd+bwd", f"{B}x{K}x{H}x{W}", soft_argmax_fb, None, 3 * maps)
    n = 500
    base = torch.rand(60, K, 2, generator=g, dtype=torch.float64) * 400
    nkp = base[torch.randint(0, 60, (n,), generator=g)] + torch.randn(n, K, 2, generator=g, dtype=torch.float64) * 2
    nkp = torch.cat([nkp, torch.rand(n, K, 1, generator=g, dtype=torch.float64)], -1)
    sc = torch.rand(n, generator=g, dtype=torch.float64)
    ar = torch.rand(n, generator=g, dtype=torch.float64) * 5000 + 500
    yield ("oks_nms", f"N={n}", lambda d: (lambda a=nkp.to(d), s=sc.to(d), r=ar.to(d):
                                          lambda: ops.oks_nms(a, s, r, thr=0.9))(), None, None)
    pm = torch.rand(8, 19, 92, 124, generator=g) * 0.3
    yield ("find_peaks", "8x19x92x124", lambda d: (lambda h=pm.to(d): lambda: ops.find_peaks(h, threshold=0.1, max_peaks=64))(), None,
           pm.numel() * 4)
    crops = 32 if device.type == "cuda" else 2
    yield ("HRNet-W32 top-down forward", f"{crops} crops 256x192 + flip, BN folded, NHWC",
           lambda d: _hrnet_case(d, crops), None, None)


def _postprocess_case(device, hm):
    """What the Inferencer runs after the model for 64 crops of 4 images."""
    from pyhpe.apis.inferencer import topdown_postprocess
    from pyhpe.codecs import build_codec
    from pyhpe.keypoints import get_keypoint_set
    codec = build_codec("msra", input_size=(192, 256), heatmap_size=(48, 64), sigma=2.0)
    g = torch.Generator().manual_seed(1)
    B = hm.shape[0]
    h = (hm + 0.01 * torch.rand(hm.shape, generator=g)).to(device)
    centers = (torch.rand(B, 2, generator=g) * 400).to(device)
    scales = (torch.rand(B, 2, generator=g) * 200 + 100).to(device)
    box_scores = torch.rand(B, generator=g, dtype=torch.float64).to(device)
    areas = (scales.prod(1) / 1.5625).double()
    offsets = torch.arange(0, B + 1, B // 4).to(device)
    sigmas = get_keypoint_set("coco17").sigmas

    def run():
        coords, scores = codec.decode(h)
        return topdown_postprocess(coords, scores, centers, scales, box_scores, areas,
                                   (192, 256), image_offsets=offsets, sigmas=sigmas)
    return run


def _hrnet_case(device, crops):
    """The Inferencer's batched forward (flip test in the same pass) of HRNet-W32 with the
    mmpose checkpoint layout's deterministic weights."""
    import json
    import numpy as np
    from pyhpe.apis import load_pretrained
    from pyhpe.apis.inferencer import Inferencer
    from pyhpe.apis.pretrained import synthetic_state_dict
    from pyhpe.tasks import build_task
    task = build_task({"task": "topdown", "keypoints": "coco17", "input_size": [192, 256],
                       "model": {"name": "hrnet", "config": "w32"},
                       "codec": {"name": "msra", "heatmap_size": [48, 64], "sigma": 2.0},
                       "train": {"device": str(device)}})
    model = task.build_model()
    with open(os.path.join(ROOT, "tests", "data", "manifests", "hrnet_w32_mmpose.json")) as f:
        load_pretrained(model, synthetic_state_dict(json.load(f)["keys"]), layout="mmpose")
    inf = Inferencer.from_task(task, model.eval(), device=str(device), channels_last=True,
                               fuse_bn=True, batch_size=crops, log=lambda *a: None)
    x = np.random.default_rng(0).integers(0, 255, (crops, 256, 192, 3), dtype=np.uint8)
    return lambda: inf._forward(x)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--markdown", default=None, help="also write the table to this file")
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args(argv)
    device = torch.device(args.device)
    cpu = torch.device("cpu")
    rows = []
    copy_bw = copy_bandwidth(device)
    peak_bw = nominal_bandwidth(device)
    for name, shape, make, make_base, nbytes in cases(device):
        row = {"op": name, "shape": shape, "bytes": nbytes}
        try:
            row["dev"] = median_ms(make(device), device, args.repeat)
            row["cpu"] = median_ms(make(cpu), cpu, 3) if device.type != "cpu" else None
            row["base"] = median_ms(make_base(device), device, args.repeat) if make_base else None
        except Exception as e:  # noqa: BLE001 - one failing op must not hide the others
            row["error"] = f"{type(e).__name__}: {e}"
        rows.append(row)
        print(f"{name}: {row}", file=sys.stderr, flush=True)

    def f(v):
        return "-" if v is None else f"{v:.3f}"
    dev = str(device)
    cpu_col = "pyhpe cpu (ms)" if device.type != "cpu" else "-"
    lines = [f"| op | shape | pyhpe {dev} (ms) | {cpu_col} | torch {dev} (ms) | vs cpu | vs torch "
             "| GB/s | of copy BW | of peak BW |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['op']} | {r['shape']} | error: {r['error'][:80]} | | | | | | | |")
            continue
        vs_cpu = f"{r['cpu'] / r['dev']:.1f}x" if r.get("cpu") else "-"
        vs_base = f"{r['base'] / r['dev']:.1f}x" if r.get("base") else "-"
        bw = r["bytes"] / (r["dev"] * 1e-3) if r.get("bytes") else None
        gbs = f"{bw / 1e9:.1f}" if bw else "-"
        of_copy = f"{100 * bw / copy_bw:.0f}%" if bw else "-"
        of_peak = f"{100 * bw / peak_bw:.0f}%" if bw and peak_bw else "-"
        lines.append(f"| {r['op']} | {r['shape']} | {f(r['dev'])} | {f(r.get('cpu'))} | "
                     f"{f(r.get('base'))} | {vs_cpu} | {vs_base} | {gbs} | {of_copy} | {of_peak} |")
    lines.append("")
    lines.append(f"Copy bandwidth measured on {dev}: {copy_bw / 1e9:.0f} GB/s"
                 + (f"; nominal peak {peak_bw / 1e9:.0f} GB/s" if peak_bw else "")
                 + ". Bandwidth columns: the least bytes each kernel must move over its time.")
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(table + "\n")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
