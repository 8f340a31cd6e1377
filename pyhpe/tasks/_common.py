"""Shared helpers of the task pipelines: devices, seeding, a small training loop, logging."""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import time
from typing import Callable, Dict, Iterable, List

import numpy as np
import torch


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' -> cuda when available, else cpu."""
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seed_all(seed: int) -> None:
    import random
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def add_common_args(p: argparse.ArgumentParser, *, epochs: int, batch_size: int, lr: float,
                    out: str) -> None:
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--batch-size", type=int, default=batch_size)
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: none)")
    p.add_argument("--time-budget", type=float, default=0.0, help="stop training after N seconds")
    p.add_argument("--out", default=out, help="output directory")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (0: torch's default; 1 is much faster on a loaded "
                        "machine, where OpenMP threads wait on each other)")
    p.add_argument("--quiet", action="store_true")


def setup(args) -> torch.device:
    """Seed, CPU threads and device from the common arguments."""
    if getattr(args, "threads", 0):
        torch.set_num_threads(int(args.threads))
    seed_all(args.seed)
    return resolve_device(args.device)


class Logger:
    def __init__(self, quiet: bool = False):
        self.quiet = quiet

    def __call__(self, *msg):
        if not self.quiet:
            print(*msg, flush=True)


def cosine_lr(step: int, total: int, warmup: int = 0) -> float:
    if warmup and step < warmup:
        return (step + 1) / warmup
    t = (step - warmup) / max(total - warmup, 1)
    return 0.5 * (1 + math.cos(math.pi * min(max(t, 0.0), 1.0))) * 0.99 + 0.01


def fit(model: torch.nn.Module, batches: Callable[[int], Iterable], loss_fn: Callable,
        *, epochs: int, steps_per_epoch: int, lr: float, weight_decay: float = 0.0,
        max_steps: int = 0, time_budget: float = 0.0, device=torch.device("cpu"),
        log: Callable = print, warmup: int = 0, grad_clip: float = 0.0) -> List[Dict]:
    """A plain Adam(W) + cosine loop: ``batches(epoch)`` yields batches, ``loss_fn(model,
    batch)`` returns a scalar loss (or ``(loss, parts dict)``). Returns the per-step log
    ``[{step, epoch, loss, ...parts}]``."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    total = epochs * max(steps_per_epoch, 1)
    if max_steps:
        total = min(total, max_steps)
    warmup = min(warmup, total // 4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_lr(s, total, warmup))
    history: List[Dict] = []
    step, t0 = 0, time.time()
    model.train()
    for epoch in range(epochs):
        losses = []
        for batch in batches(epoch):
            out = loss_fn(model, batch)
            loss, parts = out if isinstance(out, tuple) else (out, {})
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            opt.step()
            sched.step()
            step += 1
            row = {"step": step, "epoch": epoch, "loss": float(loss.detach())}
            row.update({k: float(v) for k, v in parts.items()})
            history.append(row)
            losses.append(row["loss"])
            if step >= total or (time_budget and time.time() - t0 > time_budget):
                break
        log(f"epoch {epoch + 1}/{epochs} step {step} loss {np.mean(losses) if losses else float('nan'):.5f} "
            f"lr {sched.get_last_lr()[0]:.2e} ({time.time() - t0:.1f}s)")
        if step >= total or (time_budget and time.time() - t0 > time_budget):
            break
    return history


def write_history(path: str, history: List[Dict]) -> None:
    if not history:
        return
    keys = sorted({k for row in history for k in row}, key=lambda k: (k != "step", k != "epoch", k))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(history)


def write_json(path: str, obj) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))


def save_run(out_dir: str, summary: Dict, history: List[Dict], results=None, args=None) -> Dict:
    """Writes metrics.json (summary + loss trend + args), log.csv and, when given,
    results.json under out_dir; returns the summary with the history (and results) attached."""
    summary = dict(summary, steps=len(history),
                   first_loss=history[0]["loss"] if history else None,
                   last_loss=history[-1]["loss"] if history else None,
                   args=vars(args) if args is not None else None)
    if results is not None:
        write_json(os.path.join(out_dir, "results.json"), results)
    write_json(os.path.join(out_dir, "metrics.json"), summary)
    write_history(os.path.join(out_dir, "log.csv"), history)
    summary["history"] = history
    if results is not None:
        summary["results"] = results
    return summary


STAT_NAMES = ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]


def coco_stats(gt: Dict, results: List[Dict], sigmas=None) -> Dict[str, float]:
    """COCO keypoint stats as a dict (pyhpe's pycocotools-identical evaluator). An empty
    results list is evaluated too (AP 0 where there is GT; pycocotools cannot load one)."""
    from ..eval import COCOKeypointEval
    stats = COCOKeypointEval(gt, results, sigmas=sigmas).run()
    return {k: float(v) for k, v in zip(STAT_NAMES, stats)}
