"""Exercise a subset of pyhpe's ops on one device, checked against the CPU kernels.

Run under ``compute-sanitizer --tool memcheck`` by ``make gpu-check`` (tools/gpu_check.sh):
small inputs, every launch path of oks_matrix, msra_heatmaps, soft_argmax (forward and
backward), oks_nms, soft_oks_nms and find_peaks, including empty inputs. With ``--device cpu`` the same
script runs on the CPU (the dry run of ``make gpu-check`` on machines without a GPU).
Prints one line per op and exits 1 when any op fails or disagrees with the CPU.
"""
import argparse
import os
import sys
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

import pyhpe  # noqa: E402,F401
from pyhpe import ops  # noqa: E402


def _close(a, b, atol=1e-4):
    if isinstance(a, (tuple, list)):
        return all(_close(x, y, atol) for x, y in zip(a, b))
    a, b = a.detach().cpu(), b.detach().cpu()
    if a.shape != b.shape:
        return False
    if not a.dtype.is_floating_point:
        return torch.equal(a, b)
    return bool(torch.allclose(a.double(), b.double(), atol=atol, rtol=1e-4, equal_nan=True))


def _to(x, device):
    if isinstance(x, torch.Tensor):
        return x.to(device)
    return x


def case_oks_matrix(device, g):
    dt = torch.rand(2, 5, 17, 3, generator=g, dtype=torch.float64) * 100
    gt = torch.rand(2, 4, 17, 3, generator=g, dtype=torch.float64) * 100
    gt[..., 2] = torch.randint(0, 3, (2, 4, 17), generator=g).double()
    areas = torch.rand(2, 4, generator=g, dtype=torch.float64) * 5000 + 100
    yield "batched float64", (lambda d: ops.oks_matrix(*(_to(t, d) for t in (dt, gt, areas)))), 1e-9
    yield "float32", (lambda d: ops.oks_matrix(*(_to(t.float(), d) for t in (dt[0], gt[0], areas[0])))), 1e-5
    yield "empty", (lambda d: ops.oks_matrix(*(_to(t, d) for t in (dt[0, :0], gt[0], areas[0])))), 0


def case_msra_heatmaps(device, g):
    kp = torch.rand(3, 2, 17, 2, generator=g) * torch.tensor([48.0, 64.0])
    vis = torch.randint(0, 2, (3, 2, 17), generator=g).float()
    kp[0, 0, 0] = torch.tensor([-20.0, 5.0])   # window off the map
    yield "3x2x17 on 48x64", (lambda d: ops.msra_heatmaps(_to(kp, d), _to(vis, d), (48, 64),
                                                          sigma=2.0)), 1e-6
    yield "empty batch", (lambda d: ops.msra_heatmaps(_to(kp[:0], d), _to(vis[:0], d), (48, 64),
                                                      sigma=2.0)), 0


def case_soft_argmax(device, g):
    hm = torch.randn(2, 17, 16, 12, generator=g)

    def fwd_bwd(d):
        x = hm.to(d).requires_grad_(True)
        y = ops.soft_argmax(x, beta=2.0)
        (y * torch.linspace(-1, 1, y.numel(), device=d).view_as(y)).sum().backward()
        return y.detach(), x.grad
    yield "forward", (lambda d: ops.soft_argmax(_to(hm, d), beta=2.0)), 1e-4
    yield "forward+backward", fwd_bwd, 1e-4
    odd = torch.randn(1, 3, 7, 33, generator=g)
    yield "odd sizes", (lambda d: ops.soft_argmax(_to(odd, d))), 1e-4


def case_oks_nms(device, g):
    n = 40
    base = torch.rand(8, 17, 2, generator=g, dtype=torch.float64) * 100
    kp = base[torch.randint(0, 8, (n,), generator=g)]
    kp = kp + torch.randn(n, 17, 2, generator=g, dtype=torch.float64)
    kp = torch.cat([kp, torch.rand(n, 17, 1, generator=g, dtype=torch.float64)], -1)
    scores = torch.rand(n, generator=g, dtype=torch.float64)
    areas = torch.rand(n, generator=g, dtype=torch.float64) * 3000 + 500
    offsets = torch.tensor([0, 15, 15, n])
    yield "one image", (lambda d: ops.oks_nms(*(_to(t, d) for t in (kp, scores, areas)),
                                              thr=0.9)), 0
    yield "3 images (one empty)", (lambda d: ops.oks_nms(*(_to(t, d) for t in (kp, scores, areas)),
                                                         thr=0.5,
                                                          image_offsets=_to(offsets, d))), 0
    yield "empty", (lambda d: ops.oks_nms(*(_to(t[:0], d) for t in (kp, scores, areas)),
                                          thr=0.9)), 0
    # Soft-NMS's device path: a block per image rescoring on the fly.
    yield "soft, 3 images", (lambda d: ops.soft_oks_nms(*(_to(t, d) for t in (kp, scores, areas)),
                                                        thr=0.3,
                                                        max_dets=12, image_offsets=_to(offsets, d))), 0
    yield "soft, linear", (lambda d: ops.soft_oks_nms(*(_to(t, d) for t in (kp, scores, areas)),
                                                      thr=0.3,
                                                      max_dets=40, method="linear")), 0


def case_find_peaks(device, g):
    hm = torch.rand(2, 5, 20, 24, generator=g) * 0.2
    hm[0, 0, 5, 7] = 1.0
    hm[1, 3, 1, 1] = 0.9          # first inner ring
    hm[1, 4, 0, 10] = 0.9         # outer border
    yield "refined", (lambda d: ops.find_peaks(_to(hm, d), threshold=0.1, max_peaks=16)), 1e-5
    yield "no refine", (lambda d: ops.find_peaks(_to(hm, d), threshold=0.1, max_peaks=16,
                                                     refine=False)), 1e-6
    noise = torch.rand(1, 2, 32, 32, generator=g)
    yield "many peaks, few slots", (lambda d: ops.find_peaks(_to(noise, d), threshold=0.0,
                                                             max_peaks=4)), 1e-5


def case_topdown_rescore(device, g):
    c = torch.rand(9, 17, 2, generator=g) * 200
    s = torch.rand(9, 17, generator=g)
    ctr, sc = torch.rand(9, 2, generator=g) * 400, torch.rand(9, 2, generator=g) * 200 + 50
    box = torch.rand(9, generator=g, dtype=torch.float64)
    yield "9x17 udp", (lambda d: ops.topdown_rescore(*(_to(t, d) for t in (c, s, ctr, sc, box)),
                                                     (192, 256), udp=True)), 0
    yield "empty", (lambda d: ops.topdown_rescore(*(_to(t[:0], d) for t in (c, s, ctr, sc, box)),
                                                  (192, 256))), 0


CASES = [("oks_matrix", case_oks_matrix), ("msra_heatmaps", case_msra_heatmaps),
         ("soft_argmax", case_soft_argmax), ("oks_nms", case_oks_nms), ("find_peaks", case_find_peaks),
         ("topdown_rescore", case_topdown_rescore)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="cuda | cuda:N | cpu")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            print("gpu_sanitize_ops: no CUDA device visible", file=sys.stderr)
            return 2
        if not pyhpe._C.has_cuda():
            print("gpu_sanitize_ops: pyhpe was built without CUDA kernels", file=sys.stderr)
            return 2
    failures = 0
    total = 0
    for op_name, make in CASES:
        g = torch.Generator().manual_seed(0)
        for label, fn, atol in make(device, g):
            total += 1
            try:
                got = fn(device)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                ref = fn(torch.device("cpu"))
                ok = _close(got, ref, atol)
                print(f"{op_name:14s} {label:24s} {'ok' if ok else 'MISMATCH vs CPU'}", flush=True)
                failures += not ok
            except Exception as e:  # noqa: BLE001 - reported per op, the run goes on
                failures += 1
                print(f"{op_name:14s} {label:24s} ERROR {type(e).__name__}: {e}", flush=True)
                traceback.print_exc(limit=3, file=sys.stderr)
    print(f"gpu_sanitize_ops on {device}: {total - failures}/{total} cases ok", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
