"""Training loop: AMP, gradient clipping, warm-up + step/cosine LR, EMA, atomic checkpoints with
exact auto-resume, best-by-AP, flip-test evaluation, tqdm progress, CSV logging, torchrun DDP."""
from __future__ import annotations

import contextlib
import csv
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..data.topdown import collate_topdown, normalize_images
from .evaluation import coco_keypoint_stats, predict_topdown
from .utils import (ModelEMA, atomic_save, dist_info, get_rng_state, keypoint_mse_loss,
                    load_checkpoint_file, lr_lambda_factory, set_rng_state, simcc_kl_loss, unwrap)


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"            # 'adam' | 'adamw' | 'sgd'
    lr_policy: str = "cosine"           # 'cosine' | 'step' | 'constant'
    lr_milestones: Sequence[int] = ()   # epochs, for 'step'
    lr_gamma: float = 0.1
    warmup_steps: int = 100
    grad_clip: Optional[float] = 1.0
    amp: Optional[bool] = None          # None: on for CUDA, off on CPU
    amp_dtype: str = "bfloat16"         # 'bfloat16' | 'float16'
    ema: bool = True
    ema_decay: float = 0.999
    eval_every: int = 1                 # epochs; 0 disables evaluation
    flip_test: bool = True
    out_dir: str = "work_dir"
    resume: bool = True                 # auto-resume from out_dir/last.pth
    save_every_steps: int = 0           # also checkpoint mid-epoch every N steps (0: epoch ends)
    max_steps: Optional[int] = None     # schedule length cap: train at most this many steps
    stop_at_step: Optional[int] = None  # interrupt (checkpoint, return) here; schedule unchanged
    time_budget_s: Optional[float] = None  # stop training after this many seconds
    calibrate_steps: int = 0            # with a time budget: after this many steps, fit the
                                        # LR schedule (and max_steps) to the measured speed
    seed: int = 0
    progress: bool = True
    device: str = "auto"
    num_workers: int = 0
    eval_batch_size: int = 128
    log_every: int = 10

    @classmethod
    def from_dict(cls, d: Dict) -> "TrainConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"TrainConfig: unknown keys {sorted(unknown)}")
        return cls(**d)


class _ShardedOrder(torch.utils.data.Sampler):
    """Deterministic per-epoch permutation (seeded by seed and epoch), sharded over DDP ranks,
    starting after ``skip`` batches already consumed (exact mid-epoch resume)."""

    def __init__(self, n, batch_size, seed, rank=0, world=1):
        self.n, self.bs, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self.epoch, self.skip_batches = 0, 0

    def indices(self):
        g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        perm = torch.randperm(self.n, generator=g).tolist()
        per = self.n // self.world
        return perm[self.rank * per:(self.rank + 1) * per]

    def __iter__(self):
        idx = self.indices()
        return iter(idx[self.skip_batches * self.bs:])

    def __len__(self):
        return max(len(self.indices()) - self.skip_batches * self.bs, 0)


def _plain(obj):
    """Tuples -> lists, so the checkpoint holds only what ``weights_only=True`` loads."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


class Trainer:
    """Trains a top-down model (heatmap or SimCC output) on a :class:`TopDownDataset`.

    ``val_dataset`` (no augmentation) and ``val_gt`` (COCO dict) enable AP evaluation after each
    ``eval_every`` epochs, with ``best.pth`` kept by AP. ``last.pth`` (atomic) holds everything
    needed to continue bit-exactly: model, optimizer, scheduler, EMA, AMP scaler, RNG states,
    epoch and step; with ``resume=True`` it is loaded automatically.
    Under torchrun (``WORLD_SIZE > 1``) the model is wrapped in DistributedDataParallel (gloo on
    CPU, nccl on CUDA), each rank sees its shard of every epoch, and rank 0 evaluates and saves.
    """

    def __init__(self, model: nn.Module, train_dataset, codec, config: TrainConfig,
                 val_dataset=None, val_gt=None, sigmas=None, log=print):
        self.cfg = config
        self.codec = codec
        self.log = log
        self.rank, self.world, self.local_rank = dist_info()
        if config.device == "auto":
            dev = f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu"
        else:
            dev = config.device
        self.device = torch.device(dev)
        if self.world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        torch.manual_seed(config.seed)
        self.model = model.to(self.device)
        self.ddp = self.world > 1
        if self.ddp:
            self.model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.train_dataset, self.val_dataset, self.val_gt, self.sigmas = train_dataset, val_dataset, val_gt, sigmas
        per_rank = len(train_dataset) // self.world
        if per_rank == 0:
            raise ValueError(f"Trainer: the training set has {len(train_dataset)} items, fewer than "
                             f"the {self.world} processes")
        if config.batch_size > per_rank:  # tiny data sets: one (smaller) batch per epoch
            config.batch_size = per_rank
        self.sampler = _ShardedOrder(len(train_dataset), config.batch_size, config.seed, self.rank, self.world)
        self.steps_per_epoch = max(len(self.sampler.indices()) // config.batch_size, 1)
        self.total_steps = self.steps_per_epoch * config.epochs
        if config.max_steps:
            self.total_steps = min(self.total_steps, config.max_steps)
        params = [p for p in self.model.parameters() if p.requires_grad]
        if config.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
        elif config.optimizer == "adam":
            self.optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
        else:
            self.optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        self._configured_total = self.total_steps
        self._set_schedule_length(self.total_steps)
        # a plain lambda: LambdaLR does not pickle it, the schedule is rebuilt from the config
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: self._lr_fn(s))
        amp = config.amp if config.amp is not None else self.device.type == "cuda"
        self.amp_dtype = None
        if amp:
            want = torch.bfloat16 if config.amp_dtype == "bfloat16" else torch.float16
            if self.device.type == "cuda" and want == torch.bfloat16 and not torch.cuda.is_bf16_supported():
                want = torch.float16
            self.amp_dtype = want
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.ema = ModelEMA(self.model, config.ema_decay) if config.ema else None
        self.epoch, self.step, self.step_in_epoch = 0, 0, 0
        self.best_ap = -1.0
        self.history: List[Dict] = []
        self.loss_log: List[Dict] = []   # mean loss every `log_every` steps (training curves)
        self._loss_acc: List[float] = []
        self.is_main = self.rank == 0
        if self.is_main:
            os.makedirs(config.out_dir, exist_ok=True)
        self.ckpt_path = os.path.join(config.out_dir, "last.pth")
        self.best_path = os.path.join(config.out_dir, "best.pth")
        self.csv_path = os.path.join(config.out_dir, "log.csv")
        if config.resume and os.path.exists(self.ckpt_path):
            self.load_checkpoint(self.ckpt_path)

    def _set_schedule_length(self, total_steps: int) -> None:
        self.total_steps = int(total_steps)
        c = self.cfg
        self._lr_fn = lr_lambda_factory(self.total_steps, c.warmup_steps, c.lr_policy,
                                        [m * self.steps_per_epoch for m in c.lr_milestones], c.lr_gamma)

    # -- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> Dict:
        return {"model": unwrap(self.model).state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "ema": self.ema.state_dict() if self.ema else None, "epoch": self.epoch,
                "step": self.step, "step_in_epoch": self.step_in_epoch, "best_ap": self.best_ap,
                "history": self.history, "loss_log": self.loss_log, "loss_acc": self._loss_acc,
                "rng": get_rng_state(), "config": _plain(asdict(self.cfg)),
                "total_steps": self.total_steps}

    def save_checkpoint(self, path: Optional[str] = None) -> None:
        if self.is_main:
            atomic_save(self.state_dict(), path or self.ckpt_path)

    def load_checkpoint(self, path: str) -> None:
        # on the CPU: the RNG states must stay CPU tensors; load_state_dict moves the rest
        sd = load_checkpoint_file(path, map_location="cpu")
        unwrap(self.model).load_state_dict(sd["model"])
        self.optimizer.load_state_dict(sd["optimizer"])
        self.scheduler.load_state_dict(sd["scheduler"])
        self.scaler.load_state_dict(sd["scaler"])
        if self.ema is not None and sd.get("ema"):
            self.ema.load_state_dict(sd["ema"])
        self.epoch, self.step, self.step_in_epoch = sd["epoch"], sd["step"], sd["step_in_epoch"]
        self._set_schedule_length(sd.get("total_steps", self.total_steps))
        self.best_ap, self.history = sd["best_ap"], sd["history"]
        self.loss_log, self._loss_acc = sd.get("loss_log", []), sd.get("loss_acc", [])
        set_rng_state(sd["rng"])
        if self.is_main:
            self.log(f"resumed from {path}: epoch {self.epoch}, step {self.step}")

    # -- training -----------------------------------------------------------------------------
    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def compute_loss(self, batch) -> torch.Tensor:
        x = normalize_images(batch["image"].to(self.device))
        kp = batch["keypoints"].to(self.device)
        vis = batch["visibility"].to(self.device)
        kind = getattr(unwrap(self.model), "output_kind", "heatmap")
        jw = torch.as_tensor(self.train_dataset.kset.joint_weights, device=self.device)
        core = unwrap(self.model)
        K = kp.shape[1]
        with self._autocast():
            if kind == "heatmap" and hasattr(core, "forward_stacks") and not self.ddp:
                outs = core.forward_stacks(x)      # hourglass: intermediate supervision
            elif kind == "heatmap" and hasattr(core, "forward_stages") and not self.ddp:
                outs = core.forward_stages(x)      # CPM: every stage is supervised
            else:
                outs = None
                out = self.model(x)
        if kind == "regression":
            size = torch.as_tensor(self.train_dataset.input_size, device=self.device, dtype=torch.float32)
            w = (vis > 0).float() * jw
            return ((out.float() - kp / size).abs().sum(-1) * w).mean()
        if kind == "simcc":
            tx, ty, w = self.codec.encode(kp, vis)
            return simcc_kl_loss(out[0], out[1], tx.to(self.device), ty.to(self.device), w.to(self.device) * jw)
        hm, w = self.codec.encode(kp[:, None], vis[:, None])
        hm, w = hm.to(self.device), w[:, 0].to(self.device) * jw
        if outs is None:
            outs = [out]
        # [:, :K] drops CPM's background belief map
        return sum(keypoint_mse_loss(o[:, :K], hm, w) for o in outs) * 1000.0

    def train_step(self, batch) -> float:
        self.model.train()
        loss = self.compute_loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1
        return float(loss.detach())

    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else unwrap(self.model)

    def evaluate(self) -> Optional[np.ndarray]:
        if self.val_dataset is None or self.val_gt is None:
            return None
        results = predict_topdown(self.eval_model(), self.val_dataset, self.codec,
                                  flip_test=self.cfg.flip_test, batch_size=self.cfg.eval_batch_size,
                                  device=self.device)
        self.last_results = results
        return coco_keypoint_stats(self.val_gt, results, self.sigmas)

    def _write_csv(self, row: Dict) -> None:
        if not self.is_main:
            return
        new = not os.path.exists(self.csv_path)
        with open(self.csv_path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)

    def fit(self) -> Dict:
        from tqdm import tqdm
        cfg = self.cfg
        t_start, t_start_step = time.time(), self.step
        stop = False
        while self.epoch < cfg.epochs and not stop:
            self.train_dataset.set_epoch(self.epoch)
            self.sampler.epoch = self.epoch
            self.sampler.skip_batches = self.step_in_epoch
            loader = torch.utils.data.DataLoader(
                self.train_dataset, batch_size=cfg.batch_size, sampler=self.sampler, drop_last=True,
                collate_fn=collate_topdown, num_workers=cfg.num_workers,
                persistent_workers=False)
            losses = []
            bar = tqdm(loader, desc=f"epoch {self.epoch + 1}/{cfg.epochs}", leave=False,
                       disable=not (cfg.progress and self.is_main), file=sys.stderr, mininterval=1.0)
            for batch in bar:
                if (cfg.max_steps and self.step >= cfg.max_steps) or \
                        (cfg.stop_at_step and self.step >= cfg.stop_at_step):
                    stop = True
                    break
                loss = self.train_step(batch)
                losses.append(loss)
                self._loss_acc.append(loss)
                if len(self._loss_acc) >= cfg.log_every:
                    self.loss_log.append({"step": self.step, "loss": float(np.mean(self._loss_acc)),
                                          "lr": self.scheduler.get_last_lr()[0]})
                    self._loss_acc = []
                self.step_in_epoch += 1
                bar.set_postfix(loss=f"{loss:.3f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
                if cfg.save_every_steps and self.step % cfg.save_every_steps == 0:
                    self.save_checkpoint()
                if cfg.time_budget_s and cfg.calibrate_steps and self.step >= cfg.calibrate_steps \
                        and self.step % cfg.calibrate_steps == 0 and not self.ddp:
                    # fit the schedule to the budget at the speed measured so far (again every
                    # calibrate_steps steps: shared machines change speed), so it ends annealed
                    steps_now = self.step - t_start_step
                    per_step = (time.time() - t_start) / max(steps_now, 1)
                    fit = self.step + int((cfg.time_budget_s - (time.time() - t_start)) / per_step)
                    self._set_schedule_length(max(min(fit, self._configured_total), self.step + 1))
                    cfg.max_steps = self.total_steps
                    if self.is_main and self.step == cfg.calibrate_steps:
                        self.log(f"calibrated: {per_step * 1000:.0f} ms/step -> {self.total_steps} steps")
                over_time = bool(cfg.time_budget_s and time.time() - t_start > cfg.time_budget_s)
                if self.ddp and cfg.time_budget_s:  # every rank must stop at the same step
                    flag = torch.tensor([float(over_time)])
                    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
                    over_time = bool(flag.item() > 0)
                if (cfg.max_steps and self.step >= cfg.max_steps) or \
                        (cfg.stop_at_step and self.step >= cfg.stop_at_step) or over_time:
                    stop = True
                    break
            bar.close()
            epoch_done = self.step_in_epoch >= self.steps_per_epoch or stop
            if self.step_in_epoch >= self.steps_per_epoch:
                self.epoch += 1
                self.step_in_epoch = 0
            row = {"epoch": self.epoch, "step": self.step, "loss": float(np.mean(losses)) if losses else float("nan"),
                   "lr": self.scheduler.get_last_lr()[0], "ap": "", "time_s": round(time.time() - t_start, 2)}
            do_eval = self.is_main and cfg.eval_every and epoch_done and (
                self.epoch % cfg.eval_every == 0 or stop or self.epoch >= cfg.epochs)
            if do_eval:
                stats = self.evaluate()
                if stats is not None:
                    row["ap"] = float(stats[0])
                    if stats[0] > self.best_ap:
                        self.best_ap = float(stats[0])
                        atomic_save({"model": self.eval_model().state_dict(), "epoch": self.epoch,
                                     "step": self.step, "ap": self.best_ap, "stats": stats.tolist()},
                                    self.best_path)
            self.history.append(row)
            self._write_csv(row)
            if self.is_main:
                self.log(f"epoch {row['epoch']} step {row['step']} loss {row['loss']:.4f} "
                         f"lr {row['lr']:.2e}" + (f" AP {row['ap']:.4f}" if row["ap"] != "" else ""))
            self.save_checkpoint()
            if self.ddp:
                torch.distributed.barrier()
        return {"epoch": self.epoch, "step": self.step, "best_ap": self.best_ap, "history": self.history}
