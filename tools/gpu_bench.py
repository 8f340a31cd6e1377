"""Short speed table of pyhpe's kernels on one device (``make gpu-check``; ``make bench`` style).

Each row times a pyhpe op on ``--device`` against the same op on the CPU and, where one exists,
a vectorized torch implementation on the same device (pyhpe.testing.baselines). Times are the
median of a few timed repeats (CUDA-synchronized). Prints a markdown table; ``--markdown PATH``
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


def cases(device):
    g = torch.Generator().manual_seed(0)
    N, D, G, K = 64, 20, 10, 17
    dt = torch.rand(N, D, K, 3, generator=g, dtype=torch.float64) * 200
    gt = torch.rand(N, G, K, 3, generator=g, dtype=torch.float64) * 200
    gt[..., 2] = 2
    areas = torch.rand(N, G, generator=g, dtype=torch.float64) * 5000 + 500
    yield ("oks_matrix", f"{N} img x {D}x{G}x{K} f64", lambda d: (lambda a=dt.to(d), b=gt.to(d), c=areas.to(d):
                                                                    lambda: ops.oks_matrix(a, b, c))(), None)
    B, W, H = 64, 48, 64
    kp = torch.rand(B, 1, K, 2, generator=g) * torch.tensor([W, H])
    vis = torch.ones(B, 1, K)
    yield ("msra_heatmaps", f"{B}x{K}x{H}x{W}",
           lambda d: (lambda a=kp.to(d), v=vis.to(d): lambda: ops.msra_heatmaps(a, v, (W, H), sigma=2.0))(),
           lambda d: (lambda a=kp.to(d), v=vis.to(d): lambda: fb.msra_heatmaps_torch(a, v, (W, H), 2.0))())
    hm = fb.msra_heatmaps_torch(kp, vis, (W, H), 2.0)[0]
    yield ("dark_decode", f"{B}x{K}x{H}x{W}",
           lambda d: (lambda h=hm.to(d): lambda: ops.dark_decode(h, kernel=11))(),
           lambda d: (lambda h=hm.to(d): lambda: fb.dark_decode_torch(h, 11))())

    def soft_argmax_fb(d):
        x = torch.randn(B, K, H, W, generator=g).to(d).requires_grad_(True)

        def run():
            y = ops.soft_argmax(x, beta=4.0)
            y.sum().backward()
        return run
    yield ("soft_argmax fwd+bwd", f"{B}x{K}x{H}x{W}", soft_argmax_fb, None)
    n = 500
    base = torch.rand(60, K, 2, generator=g, dtype=torch.float64) * 400
    nkp = base[torch.randint(0, 60, (n,), generator=g)] + torch.randn(n, K, 2, generator=g, dtype=torch.float64) * 2
    nkp = torch.cat([nkp, torch.rand(n, K, 1, generator=g, dtype=torch.float64)], -1)
    sc = torch.rand(n, generator=g, dtype=torch.float64)
    ar = torch.rand(n, generator=g, dtype=torch.float64) * 5000 + 500
    yield ("oks_nms", f"N={n}", lambda d: (lambda a=nkp.to(d), s=sc.to(d), r=ar.to(d):
                                          lambda: ops.oks_nms(a, s, r, thr=0.9))(), None)
    pm = torch.rand(8, 19, 92, 124, generator=g) * 0.3
    yield ("find_peaks", "8x19x92x124", lambda d: (lambda h=pm.to(d): lambda: ops.find_peaks(h, threshold=0.1, max_peaks=64))(), None)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--markdown", default=None, help="also write the table to this file")
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args(argv)
    device = torch.device(args.device)
    cpu = torch.device("cpu")
    rows = []
    for name, shape, make, make_base in cases(device):
        row = {"op": name, "shape": shape}
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
    lines = [f"| op | shape | pyhpe {dev} (ms) | {cpu_col} | torch {dev} (ms) | vs cpu | vs torch |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['op']} | {r['shape']} | error: {r['error'][:80]} | | | | |")
            continue
        vs_cpu = f"{r['cpu'] / r['dev']:.1f}x" if r.get("cpu") else "-"
        vs_base = f"{r['base'] / r['dev']:.1f}x" if r.get("base") else "-"
        lines.append(f"| {r['op']} | {r['shape']} | {f(r['dev'])} | {f(r.get('cpu'))} | "
                     f"{f(r.get('base'))} | {vs_cpu} | {vs_base} |")
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(table + "\n")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
