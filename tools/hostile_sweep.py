"""Hostile-input sweep over pyhpe.ops: each case in a forked child with a 30 s timeout.

For every op a valid call is mutated one argument at a time (NaN / inf entries, wrong dtype,
rank or layout, empty, 0-d, requires_grad, zeros, negatives; integer options at -1, 0, 2**31,
2**63 - 1, fractional, non-numeric; float options at NaN, inf, 0, +-1e30, 1e-30; sizes that
are negative, fractional, huge). Each line reports ok, `err <Type>: <message>`, HANG, CRASH,
UNHELPFUL (an error not starting with `pyhpe`) or SILENT-NONFINITE (NaN/inf out of finite
inputs). Run: PYTHONPATH=. python tools/hostile_sweep.py [op ...]
"""
import multiprocessing as mp
import sys
import warnings

import torch

from pyhpe import ops as O

torch.manual_seed(0)


def kp(B=2, N=3, K=17, W=48, H=64):
    return torch.rand(B, N, K, 2) * torch.tensor([W, H]), torch.ones(B, N, K)


hm = torch.rand(2, 17, 64, 48)
k, v = kp()
oks_dt = torch.cat([torch.rand(5, 17, 2) * 100, torch.ones(5, 17, 1)], -1).double()
oks_gt = torch.cat([torch.rand(4, 17, 2) * 100, torch.full((4, 17, 1), 2.0)], -1).double()
areas = torch.rand(4).double() * 1000 + 100
nms_k = torch.cat([torch.rand(6, 17, 2) * 100, torch.ones(6, 17, 1)], -1)
pafs = torch.rand(38, 32, 32) - 0.5
peaks_hm = torch.rand(19, 32, 32)


BASE = {
  "msra_heatmaps": (O.msra_heatmaps, (k, v, (48, 64)), {"sigma": 2.0}),
  "udp_heatmaps": (O.udp_heatmaps, (k, v, (48, 64)), {"sigma": 2.0}),
  "unbiased_heatmaps": (O.unbiased_heatmaps, (k, v, (48, 64)), {"sigma": 2.0}),
  "simcc_labels": (O.simcc_labels, (k[:, 0].contiguous(), v[:, 0].contiguous(), (192, 256)), {"sigma": (6.0, 6.0), "split_ratio": 2.0}),
  "paf_targets": (O.paf_targets, (k, v, [(0, 1), (1, 2)], (48, 64)), {"limb_width": 1.0}),
  "argmax_decode": (O.argmax_decode, (hm,), {}),
  "dark_decode": (O.dark_decode, (hm,), {"kernel": 11}),
  "soft_argmax": (O.soft_argmax, (hm,), {"beta": 1.0}),
  "debiased_soft_argmax": (O.debiased_soft_argmax, (hm,), {"beta": 1.0}),
  "dsnt": (O.dsnt, (hm,), {"beta": 1.0}),
  "simcc_decode": (O.simcc_decode, (torch.rand(2, 17, 96), torch.rand(2, 17, 128)), {"split_ratio": 2.0}),
  "transform_preds": (O.transform_preds, (torch.rand(2, 17, 2) * 48, torch.rand(2, 2) * 100, torch.rand(2, 2) + 1, (48, 64)), {}),
  "topdown_rescore": (O.topdown_rescore, (torch.rand(2, 17, 2) * 192, torch.rand(2, 17), torch.rand(2, 2) * 100, torch.rand(2, 2) + 1, torch.rand(2, dtype=torch.float64), (192, 256)), {}),
  "oks_matrix": (O.oks_matrix, (oks_dt, oks_gt, areas), {}),
  "oks_matrix_ragged": (O.oks_matrix_ragged, (oks_dt, oks_gt, areas, torch.tensor([0, 2, 5]), torch.tensor([0, 1, 4])), {}),
  "oks_nms": (O.oks_nms, (nms_k, torch.rand(6), torch.rand(6) * 1000 + 10), {"thr": 0.9}),
  "soft_oks_nms": (O.soft_oks_nms, (nms_k, torch.rand(6), torch.rand(6) * 1000 + 10), {"thr": 0.3, "max_dets": 20}),
  "pose_nms_alphapose": (O.pose_nms_alphapose, (torch.tensor([[0., 0, 50, 80]] * 6) + torch.rand(6, 4), nms_k[..., :2], torch.rand(6, 17, 1)), {}),
  "find_peaks": (O.find_peaks, (peaks_hm[None],), {"threshold": 0.05, "max_peaks": 64, "refine_radius": 3}),
  "paf_group": (O.paf_group, (peaks_hm, pafs), {"num_samples": 10}),
}

def mutations(name, args, kwargs):
    yield "base", args, kwargs
    for i, a in enumerate(args):
        if isinstance(a, torch.Tensor) and a.is_floating_point():
            for tag, f in [("nan", lambda t: t.clone().view(-1).index_fill_(0, torch.tensor([0]), float("nan")).view(t.shape)),
                           ("inf", lambda t: t.clone().view(-1).index_fill_(0, torch.tensor([0]), float("inf")).view(t.shape)),
                           ("int32", lambda t: t.to(torch.int32)), ("half", lambda t: t.half()),
                           ("unsq", lambda t: t.unsqueeze(0)), ("flat", lambda t: t.reshape(-1)),
                           ("empty0", lambda t: t[:0]), ("rg", lambda t: t.clone().requires_grad_(True)),
                           ("zero", lambda t: torch.zeros_like(t)), ("neg", lambda t: -t.abs() - 1),
                           ("noncontig", lambda t: t.transpose(-1, -2) if t.dim() >= 2 else t),
                           ("0d", lambda t: t.reshape(-1)[0])]:
                try:
                    b = f(a)
                except Exception:
                    continue
                yield f"arg{i}:{tag}", args[:i] + (b,) + args[i + 1:], kwargs
    for key, val in kwargs.items():
        if isinstance(val, bool):
            continue
        if isinstance(val, int):
            for bad in [-1, 0, 2**31 - 1, 2**31, 2**32, 2**63 - 1, 7.5, "x", None, float("nan")]:
                yield f"{key}={bad!r}", args, {**kwargs, key: bad}
        elif isinstance(val, float):
            for bad in [float("nan"), float("inf"), -1.0, 0.0, 1e30, 1e-30, -1e30, "x", None]:
                yield f"{key}={bad!r}", args, {**kwargs, key: bad}
        elif isinstance(val, tuple):
            for bad in [(float("nan"), 1.0), (0.0, 0.0), (1e-30, 1e-30), (-1.0, 1.0), ("a", 1)]:
                yield f"{key}={bad!r}", args, {**kwargs, key: bad}
    # size-like tuple positional args
    for i, a in enumerate(args):
        if isinstance(a, tuple) and len(a) == 2 and all(isinstance(x, int) for x in a):
            for bad in [(0, 0), (-1, 5), (48.9, 64), (100000, 100000), (2**31, 2), (2**62, 2**62), ("a", 2)]:
                yield f"arg{i}={bad!r}", args[:i] + (bad,) + args[i + 1:], kwargs

def has_nonfinite(x):
    if isinstance(x, torch.Tensor):
        return x.is_floating_point() and not torch.isfinite(x).all().item()
    if isinstance(x, (tuple, list)):
        return any(has_nonfinite(y) for y in x)
    return False


def req_grad(x):
    if isinstance(x, torch.Tensor): return x.requires_grad
    if isinstance(x, (tuple, list)): return any(req_grad(y) for y in x)
    return False

def run_case(q, name, tag, fn, args, kwargs):
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    try:
        out = fn(*args, **kwargs)
        inputs_nonfinite = any(has_nonfinite(a) for a in args)
        res = "ok"
        if has_nonfinite(out) and not inputs_nonfinite and "nan" not in tag and "inf" not in tag:
            res = "SILENT-NONFINITE"
        elif has_nonfinite(out):
            res = "nonfinite-out (input bad)"
        if req_grad(out):
            res += " out-requires-grad"
        q.put(res)
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else repr(e)
        ok = msg.startswith("pyhpe")
        q.put(("err " if ok else "UNHELPFUL ") + type(e).__name__ + ": " + msg[:150])

def main():
    """Sweep the ops named on the command line, or all of them."""
    ctx = mp.get_context("fork")
    only = sys.argv[1:] 
    for name, (fn, args, kwargs) in BASE.items():
        if only and name not in only: continue
        for tag, a, kw in mutations(name, args, kwargs):
            q = ctx.Queue()
            p = ctx.Process(target=run_case, args=(q, name, tag, fn, a, kw))
            p.start(); p.join(30)
            if p.is_alive():
                p.kill(); p.join(); res = "HANG"
            elif p.exitcode != 0:
                res = f"CRASH exit={p.exitcode}"
            else:
                res = q.get()
            print(f"{name:22s} {tag:28s} {res}", flush=True)


if __name__ == "__main__":
    main()
