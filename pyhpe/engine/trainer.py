"""The one training engine: every task trains through :class:`Trainer`.

The loop knows nothing about the model it trains::

    inputs, targets = task.prepare(batch, device)
    losses = model(inputs, targets)          # a dict of named losses (through forward, so DDP
    loss = sum(losses.values())              # sees every supervised output)

around which it does AMP, gradient clipping, warm-up + step/cosine/constant schedules, EMA,
a time budget (with the schedule refitted to the measured speed), atomic ``last.pth`` /
``best.pth`` checkpoints read back with ``weights_only=True``, exact resume (also mid-epoch,
logs included), best-by-metric (``task.metric``, ``task.metric_mode``), tqdm progress, CSV and
JSON logs and torchrun DDP (gloo on CPU, nccl on CUDA; rank 0 evaluates and saves).
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import gc
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from .checkpoint import atomic_save, load_checkpoint_file, load_weights, plain
from .config import Config, ConfigError
from .distributed import ShardedOrder, all_ranks_any, dist_info, init_distributed, unwrap
from .ema import ModelEMA
from .schedules import LR_POLICIES, lr_lambda_factory
from .seeding import get_rng_state, seed_everything, set_rng_state


@dataclass
class TrainConfig(Config):
    epochs: int = 10
    batch_size: int = 32                # per process
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"            # 'adam' | 'adamw' | 'sgd'
    lr_policy: str = "cosine"           # 'cosine' | 'step' | 'constant'
    lr_milestones: Tuple[int, ...] = ()  # epochs, for 'step'
    lr_gamma: float = 0.1
    warmup_steps: int = 100
    grad_clip: Optional[float] = 1.0
    amp: Optional[bool] = None          # None: on for CUDA, off on CPU
    amp_dtype: str = "bfloat16"         # 'bfloat16' | 'float16'
    ema: bool = True
    ema_decay: float = 0.999
    eval_every: int = 1                 # epochs; 0: only at the end (-1: never)
    out_dir: str = "work_dir"
    resume: bool = False                # continue from out_dir/last.pth when it exists
    load_from: Optional[str] = None     # initial weights (fine-tuning); ignored when resuming
    save_every_steps: int = 0           # also checkpoint mid-epoch every N steps (0: epoch ends)
    max_steps: Optional[int] = None     # schedule length cap: train at most this many steps
    stop_at_step: Optional[int] = None  # interrupt (checkpoint, return) here; schedule unchanged
    time_budget_s: Optional[float] = None  # stop training after this many seconds
    calibrate_steps: int = 0            # with a time budget: every this many steps, fit the
                                        # LR schedule (and max_steps) to the measured speed
    seed: int = 0                       # model initialisation, data order, dropout
    progress: bool = True               # tqdm bar
    device: str = "auto"
    num_workers: int = 0
    log_every: int = 10                 # steps per point of the loss curve
    log_json: bool = True               # also write log.json (rows and loss curve)
    ddp_find_unused_parameters: bool = False
    sampler: str = "random"             # 'random' | 'image_grouped' (see ImageGroupedOrder)

    def __post_init__(self):
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"train.sampler: one of {SAMPLERS}, got {self.sampler!r}")
        if self.optimizer not in ("adam", "adamw", "sgd"):
            raise ConfigError(f"train.optimizer: 'adam', 'adamw' or 'sgd', got {self.optimizer!r}")
        if self.lr_policy not in LR_POLICIES:
            raise ConfigError(f"train.lr_policy: one of {LR_POLICIES}, got {self.lr_policy!r}")
        if self.amp_dtype not in ("bfloat16", "float16"):
            raise ConfigError(f"train.amp_dtype: 'bfloat16' or 'float16', got {self.amp_dtype!r}")
        if self.batch_size < 1 or self.epochs < 0:
            raise ConfigError(f"train: batch_size must be >= 1 and epochs >= 0, got "
                              f"{self.batch_size} and {self.epochs}")
        self.lr_milestones = tuple(int(m) for m in self.lr_milestones)


SAMPLERS = ("random", "image_grouped")


class ImageGroupedOrder(ShardedOrder):
    """:class:`ShardedOrder` over whole images: each epoch the images are shuffled (seeded by
    seed and epoch) and each image's items follow one another (in a shuffled order too), then
    the order is cut into per-rank shards and batches exactly as :class:`ShardedOrder` does, so
    DDP sharding and exact mid-epoch resume (``epoch`` / ``skip_batches``) work the same.

    A batch then holds whole images, so :meth:`TopDownDataset.__getitems__` decodes each image
    once for all of its people (the JPEG decode dominates the top-down input pipeline). The
    price: the people of one batch are correlated (same scene, same photo), as the samples of
    a bottom-up batch are anyway; across batches and epochs the order stays random.

    ``image_ids[i]`` is the image of item ``i`` (any hashable).
    """

    def __init__(self, image_ids: Sequence, batch_size: int, seed: int, rank: int = 0,
                 world: int = 1):
        super().__init__(len(image_ids), batch_size, seed, rank, world)
        groups: Dict[Any, int] = {}
        self.group_of = np.asarray([groups.setdefault(im, len(groups)) for im in image_ids],
                                   np.int64)
        self.num_groups = len(groups)
        self._cache: Tuple[Any, List[int]] = (None, [])

    def order(self) -> List[int]:
        """The whole epoch's order (before sharding): a permutation of all items."""
        key = (self.seed, self.epoch)
        if self._cache[0] != key:
            g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
            image_rank = torch.randperm(self.num_groups, generator=g).numpy()
            within = torch.rand(self.n, generator=g, dtype=torch.float64).numpy()
            # sort by the image's shuffled rank, then by a random key inside the image
            perm = np.lexsort((within, image_rank[self.group_of]))
            self._cache = (key, perm.tolist())
        return self._cache[1]

    def indices(self) -> List[int]:
        perm = self.order()
        per = self.n // self.world
        return perm[self.rank * per:(self.rank + 1) * per]


class _EpochTagged(torch.utils.data.Sampler):
    """Yields ``(index, epoch)``: the wrapped sampler's indices, each tagged with the epoch
    the sampler is in when its iteration starts, so that persistent DataLoader workers (which
    keep the dataset copy they were started with) seed each item's augmentation with the
    right epoch. ``epoch`` / ``skip_batches`` stay the wrapped sampler's."""

    def __init__(self, sampler):
        self.sampler = sampler

    def __iter__(self):
        epoch = self.sampler.epoch
        return ((i, epoch) for i in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


class _SharedHeapLoader(torch.utils.data.DataLoader):
    """A DataLoader whose worker processes start with the parent's objects frozen out of the
    garbage collector (``gc.freeze()`` around the fork). A forked worker shares the parent's
    memory until it writes to a page; a collection in the worker would write to every
    container the parent holds (annotation dicts, records, the model's Python objects) and so
    copy the whole Python heap into each worker. Frozen, they are never visited there; the
    parent unfreezes right after the fork."""

    def _get_iterator(self):
        if self.num_workers == 0:
            return super()._get_iterator()
        gc.collect()
        gc.freeze()
        try:
            return super()._get_iterator()
        finally:
            gc.unfreeze()


class _EpochAwareDataset(torch.utils.data.Dataset):
    """The training set fetched with ``(index, epoch)`` keys (see :class:`_EpochTagged`): it
    calls the set's ``set_epoch`` when the epoch changes (in the worker that holds this copy),
    then fetches as the set itself does (``__getitems__`` for a batch where the set has it)."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.epoch: Optional[int] = None

    def _at(self, epoch: int) -> None:
        if epoch != self.epoch:
            set_epoch = getattr(self.dataset, "set_epoch", None)
            if set_epoch is not None:
                set_epoch(epoch)
            self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        idx, epoch = key
        self._at(epoch)
        return self.dataset[idx]

    def __getitems__(self, keys):
        epochs = {e for _, e in keys}
        if len(epochs) != 1:   # one batch never spans epochs; kept exact if it ever did
            return [self[k] for k in keys]
        self._at(epochs.pop())
        idxs = [i for i, _ in keys]
        getitems = getattr(self.dataset, "__getitems__", None)
        if getitems is not None:
            return getitems(idxs)
        return [self.dataset[i] for i in idxs]


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """``model.eval()`` inside the block, its previous mode restored after."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _mean(values) -> float:
    """The mean of a step log (numbers or 0-d tensors: reading them waits for the device)."""
    return float(np.mean([float(v) for v in values])) if values else float("nan")


def _as_numbers(acc: Dict[str, list]) -> Dict[str, List[float]]:
    return {k: [float(v) for v in vals] for k, vals in acc.items()}


class Trainer:
    """Trains ``task``'s model on its training set (see the module docstring).

    ``config`` defaults to ``task.config.train``. Everything is seeded from ``config.seed``
    before ``task.build_model()``, so one seed gives one initialisation (and, on the CPU, a
    bitwise-identical run). ``last.pth`` holds model, optimizer, scheduler, EMA, AMP scaler,
    RNG states, counters and logs: with ``resume`` the run continues bit-exactly, and a run
    that had finished says so and returns its result without training.
    """

    def __init__(self, task, config: Optional[TrainConfig] = None, log: Callable = print):
        cfg = task.config.train if config is None else config
        if isinstance(cfg, dict):
            cfg = TrainConfig.from_dict(cfg, "train")
        self.cfg = dataclasses.replace(cfg)   # the calibration edits max_steps: keep a copy
        cfg = self.cfg
        # what decides when the run is over, as configured (a resumed run that asks for the
        # same is finished when its checkpoint says so)
        self._run_length = {k: getattr(cfg, k) for k in ("epochs", "max_steps", "time_budget_s")}
        self.task, self.log = task, log
        self.rank, self.world, self.local_rank = dist_info()
        self.is_main = self.rank == 0
        if cfg.device == "auto":
            dev = f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu"
        else:
            dev = cfg.device
        self.device = torch.device(dev)
        self.ddp = init_distributed(self.device)

        self.train_dataset = task.train_dataset()
        per_rank = len(self.train_dataset) // self.world
        if per_rank == 0:
            raise ValueError(f"Trainer: the training set has {len(self.train_dataset)} items, "
                             f"fewer than the {self.world} processes")
        cfg.batch_size = min(cfg.batch_size, per_rank)  # tiny sets: one smaller batch per epoch

        self.ckpt_path = os.path.join(cfg.out_dir, "last.pth")
        self.best_path = os.path.join(cfg.out_dir, "best.pth")
        self.csv_path = os.path.join(cfg.out_dir, "log.csv")
        self.json_path = os.path.join(cfg.out_dir, "log.json")
        resuming = cfg.resume and os.path.exists(self.ckpt_path)

        seed_everything(cfg.seed)
        model = task.build_model()
        if cfg.load_from and not resuming:
            load_weights(model, cfg.load_from)
            if self.is_main:
                log(f"loaded weights from {cfg.load_from}")
        self.model = model.to(self.device)
        if self.ddp:
            self.model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=cfg.ddp_find_unused_parameters)

        if cfg.sampler == "image_grouped":
            ids = getattr(self.train_dataset, "instance_image_ids", None)
            if not callable(ids):
                raise ConfigError(
                    f"train.sampler: 'image_grouped' needs a training set that exposes the image "
                    f"id of each item (instance_image_ids()); {type(self.train_dataset).__name__} "
                    f"of task {type(task).__name__} does not: use train.sampler 'random'")
            self.sampler = ImageGroupedOrder(ids(), cfg.batch_size, cfg.seed, self.rank, self.world)
        else:
            self.sampler = ShardedOrder(len(self.train_dataset), cfg.batch_size, cfg.seed,
                                        self.rank, self.world)
        self.steps_per_epoch = max(len(self.sampler.indices()) // cfg.batch_size, 1)
        total = self.steps_per_epoch * cfg.epochs
        if cfg.max_steps:
            total = min(total, cfg.max_steps)
        self._configured_total = total
        self._set_schedule_length(total)
        params = [p for p in self.model.parameters() if p.requires_grad]
        if cfg.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
        elif cfg.optimizer == "adam":
            self.optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        else:
            self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        # a plain lambda (not pickled): the schedule is rebuilt from the config on resume
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: self._lr_fn(s))
        amp = cfg.amp if cfg.amp is not None else self.device.type == "cuda"
        self.amp_dtype = None
        if amp:
            want = torch.bfloat16 if cfg.amp_dtype == "bfloat16" else torch.float16
            if self.device.type == "cuda" and want == torch.bfloat16 and not torch.cuda.is_bf16_supported():
                want = torch.float16
            self.amp_dtype = want
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.ema = ModelEMA(self.model, cfg.ema_decay) if cfg.ema else None

        self._loader: Optional[torch.utils.data.DataLoader] = None  # kept while workers live
        self.epoch, self.step, self.step_in_epoch = 0, 0, 0
        self.best: Optional[float] = None
        self.last_metrics: Optional[Dict[str, float]] = None
        self.history: List[Dict] = []     # one row per epoch (and one where a run stops early)
        self.loss_log: List[Dict] = []    # mean losses every `log_every` steps (loss curve)
        self._curve_acc: Dict[str, List[float]] = {}
        self._epoch_acc: Dict[str, List[float]] = {}
        self.elapsed_s = 0.0
        self.finished = False
        if self.is_main:
            os.makedirs(cfg.out_dir, exist_ok=True)
            # the resolved config: `pyhpe infer/eval --config OUT/config.json` rebuilds the task
            with open(os.path.join(cfg.out_dir, "config.json"), "w") as f:
                json.dump(plain(task.config.to_dict()), f, indent=1)
        if resuming:
            self.load_checkpoint(self.ckpt_path)

    # -- schedule -----------------------------------------------------------------------------
    def _set_schedule_length(self, total_steps: int) -> None:
        self.total_steps = int(total_steps)
        c = self.cfg
        self._lr_fn = lr_lambda_factory(self.total_steps, c.warmup_steps, c.lr_policy,
                                        [m * self.steps_per_epoch for m in c.lr_milestones], c.lr_gamma)

    @property
    def lr(self) -> float:
        return float(self.scheduler.get_last_lr()[0])

    # -- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> Dict:
        return {"model": unwrap(self.model).state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "ema": self.ema.state_dict() if self.ema else None, "epoch": self.epoch,
                "step": self.step, "step_in_epoch": self.step_in_epoch, "best": self.best,
                "metric": self.task.metric, "last_metrics": self.last_metrics,
                "history": self.history, "loss_log": self.loss_log,
                "curve_acc": _as_numbers(self._curve_acc), "epoch_acc": _as_numbers(self._epoch_acc),
                "elapsed_s": self.elapsed_s,
                "finished": self.finished, "run_length": self._run_length, "rng": get_rng_state(),
                "config": plain(self.cfg.to_dict()), "task_config": plain(self.task.config.to_dict()),
                "total_steps": self.total_steps}

    def save_checkpoint(self, path: Optional[str] = None) -> None:
        if self.is_main:
            atomic_save(self.state_dict(), path or self.ckpt_path)

    def load_checkpoint(self, path: str) -> None:
        sd = load_checkpoint_file(path, map_location="cpu")  # RNG states must stay CPU tensors
        unwrap(self.model).load_state_dict(sd["model"])
        self.optimizer.load_state_dict(sd["optimizer"])
        self.scheduler.load_state_dict(sd["scheduler"])
        self.scaler.load_state_dict(sd["scaler"])
        if self.ema is not None and sd.get("ema"):
            self.ema.load_state_dict(sd["ema"])
        self.epoch, self.step, self.step_in_epoch = sd["epoch"], sd["step"], sd["step_in_epoch"]
        self._set_schedule_length(sd["total_steps"])
        self.best, self.last_metrics = sd["best"], sd["last_metrics"]
        self.history, self.loss_log = sd["history"], sd["loss_log"]
        self._curve_acc, self._epoch_acc = sd["curve_acc"], sd["epoch_acc"]
        self.elapsed_s = float(sd["elapsed_s"])
        self.finished = bool(sd["finished"]) and sd["run_length"] == self._run_length
        set_rng_state(sd["rng"])
        self._write_logs()   # the files show exactly the checkpoint's rows
        if self.is_main:
            self.log(f"resumed from {path}: epoch {self.epoch}, step {self.step}")

    # -- one step -----------------------------------------------------------------------------
    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def prepare(self, batch):
        """``task.prepare(batch, device)``: the step's inputs and targets (the codec's kernels
        make the targets of the whole batch). On the CPU with DataLoader workers it runs on
        the calling thread alone: the workers keep the cores busy, and waking the intra-op
        pool for these few milliseconds of work stalls on them and then spins, taking CPU
        from the workers (2-worker input pipeline +20-30% on 2 cores)."""
        if self.device.type != "cpu" or self.cfg.num_workers == 0:
            return self.task.prepare(batch, self.device)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self.task.prepare(batch, self.device)
        finally:
            torch.set_num_threads(threads)

    def train_step(self, batch, sync: bool = True) -> Dict[str, float]:
        """One optimisation step on ``batch``; returns the step's named losses (and their sum,
        ``loss``). With ``sync=False`` (what :meth:`fit` runs) they stay detached 0-d tensors
        on the training device, so on a GPU the step queues its work (targets, forward,
        backward, update) without waiting for it; :meth:`fit` reads them every ``log_every``
        steps."""
        self.model.train()
        inputs, targets = self.prepare(batch)
        with self._autocast():
            losses = self.model(inputs, targets)
        if not isinstance(losses, dict) or not losses:
            raise TypeError("Trainer: model(inputs, targets) must return a non-empty dict of "
                            f"named losses, got {type(losses).__name__}")
        loss = sum(v.float() for v in losses.values())
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
        values = {"loss": loss.detach()}
        values.update({k: v.detach() for k, v in losses.items()})
        return {k: float(v) for k, v in values.items()} if sync else values

    # -- evaluation ---------------------------------------------------------------------------
    def eval_model(self) -> nn.Module:
        """The weights that are evaluated and kept as best: the EMA when on."""
        return self.ema.module if self.ema is not None else unwrap(self.model)

    def evaluate(self) -> Optional[Dict[str, float]]:
        """``task.evaluate`` of :meth:`eval_model` (None when the task has no validation data)."""
        with eval_mode(self.eval_model()) as model:
            metrics = self.task.evaluate(model, self.device)
        if metrics is not None and self.task.metric not in metrics:
            raise KeyError(f"Trainer: task {self.task.name!r} evaluated {sorted(metrics)} but "
                           f"its metric is {self.task.metric!r}")
        return metrics

    def _better(self, value: float) -> bool:
        if self.best is None or not np.isfinite(self.best):
            return bool(np.isfinite(value)) or self.best is None
        return value > self.best if self.task.metric_mode == "max" else value < self.best

    # -- logs ---------------------------------------------------------------------------------
    def _write_logs(self) -> None:
        if not self.is_main:
            return
        os.makedirs(self.cfg.out_dir, exist_ok=True)
        keys: List[str] = []
        for row in self.history:
            keys += [k for k in row if k not in keys]
        tmp = f"{self.csv_path}.tmp.{os.getpid()}"
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys, restval="")
            if keys:
                w.writeheader()
            w.writerows(self.history)
        os.replace(tmp, self.csv_path)
        if self.cfg.log_json:
            tmp = f"{self.json_path}.tmp.{os.getpid()}"
            with open(tmp, "w") as f:
                json.dump({"task": self.task.name, "metric": self.task.metric,
                           "metric_mode": self.task.metric_mode, "rows": self.history,
                           "loss_curve": self.loss_log}, f, indent=1)
            os.replace(tmp, self.json_path)

    def _accumulate(self, values) -> Optional[Dict]:
        """Keeps a step's values (numbers, or 0-d tensors not yet read); every ``log_every``
        steps appends their means to the loss curve and returns that point."""
        for acc in (self._curve_acc, self._epoch_acc):
            for k, v in values.items():
                acc.setdefault(k, []).append(v)
        n = len(self._curve_acc["loss"])
        if n >= self.cfg.log_every:
            point = {"step": self.step, "lr": self.lr}
            point.update({k: _mean(v) for k, v in self._curve_acc.items()})
            for vals in self._epoch_acc.values():   # read now: the epoch keeps numbers
                vals[-n:] = [float(v) for v in vals[-n:]]
            self.loss_log.append(point)
            self._curve_acc = {}
            return point
        return None

    def result(self) -> Dict:
        return {"task": self.task.name, "epoch": self.epoch, "step": self.step,
                "metric": self.task.metric, "metric_mode": self.task.metric_mode,
                "best": self.best, "metrics": self.last_metrics, "finished": self.finished,
                "history": self.history, "loss_log": self.loss_log, "out_dir": self.cfg.out_dir}

    # -- the loop -----------------------------------------------------------------------------
    def _should_stop(self) -> bool:
        cfg = self.cfg
        return bool((cfg.max_steps and self.step >= cfg.max_steps) or
                    (cfg.stop_at_step and self.step >= cfg.stop_at_step))

    def train_loader(self) -> torch.utils.data.DataLoader:
        """The DataLoader of the current epoch from the current step on (what :meth:`fit`
        iterates; also what the input-pipeline bench times). With ``num_workers`` > 0 it is
        the same DataLoader every epoch, its workers persistent (:meth:`close` stops them)."""
        cfg = self.cfg
        self.task.set_epoch(self.epoch)
        self.sampler.epoch = self.epoch
        self.sampler.skip_batches = self.step_in_epoch
        # its own generator: creating the iterator must not draw from the global RNG,
        # or a resumed epoch would shift every later random draw (dropout, ...)
        generator = torch.Generator().manual_seed(cfg.seed * 100003 + self.epoch)
        if cfg.num_workers == 0:
            return torch.utils.data.DataLoader(
                self.train_dataset, batch_size=cfg.batch_size, sampler=self.sampler,
                drop_last=True, collate_fn=self.task.collate, num_workers=0, generator=generator,
                pin_memory=self.device.type == "cuda")
        # with workers: one DataLoader for the whole run, its workers kept alive across epochs
        # (started once, not every epoch). The sampler is iterated in this process when each
        # epoch starts, so its epoch / skip_batches (exact mid-epoch resume) take effect as
        # before; the epoch reaches the workers' dataset copies with every index, so each
        # item's augmentation is the one of a fresh loader (and of num_workers=0)
        if self._loader is None:
            self._loader = _SharedHeapLoader(
                _EpochAwareDataset(self.train_dataset), batch_size=cfg.batch_size,
                sampler=_EpochTagged(self.sampler), drop_last=True, collate_fn=self.task.collate,
                num_workers=cfg.num_workers, persistent_workers=True, generator=generator,
                pin_memory=self.device.type == "cuda")
        else:
            self._loader.generator.set_state(generator.get_state())
        return self._loader

    def close(self) -> None:
        """Stop the training DataLoader's persistent workers (they also end with the Trainer
        or the process)."""
        loader, self._loader = self._loader, None
        it = getattr(loader, "_iterator", None) if loader is not None else None
        if it is not None and hasattr(it, "_shutdown_workers"):
            it._shutdown_workers()

    def fit(self) -> Dict:
        from tqdm import tqdm
        cfg = self.cfg
        if self.finished or self.epoch >= cfg.epochs or (cfg.max_steps and self.step >= cfg.max_steps):
            self.finished = True
            if self.is_main:
                self.log(f"the run in {cfg.out_dir} is already finished (epoch {self.epoch}, "
                         f"step {self.step}); nothing to train")
            return self.result()
        t_start, t_start_step, elapsed0 = time.time(), self.step, self.elapsed_s
        stop = interrupted = False
        while self.epoch < cfg.epochs and not stop:
            loader = self.train_loader()
            bar = tqdm(loader, desc=f"epoch {self.epoch + 1}/{cfg.epochs}", leave=False,
                       disable=not (cfg.progress and self.is_main), file=sys.stderr, mininterval=1.0)
            for batch in bar:
                if self._should_stop():
                    stop = True
                    break
                point = self._accumulate(self.train_step(batch, sync=False))
                self.step_in_epoch += 1
                if point is not None:     # numbers only where the loss curve reads them
                    bar.set_postfix({k: f"{v:.4g}" for k, v in point.items()
                                     if k not in ("step", "lr")}, lr=f"{self.lr:.2e}")
                self.elapsed_s = elapsed0 + time.time() - t_start
                if cfg.save_every_steps and self.step % cfg.save_every_steps == 0:
                    self.save_checkpoint()
                if cfg.time_budget_s and cfg.calibrate_steps and not self.ddp and \
                        self.step - t_start_step >= cfg.calibrate_steps and \
                        self.step % cfg.calibrate_steps == 0:
                    self._calibrate(t_start, t_start_step)
                over_time = bool(cfg.time_budget_s and self.elapsed_s > cfg.time_budget_s)
                if self.ddp and cfg.time_budget_s:
                    over_time = all_ranks_any(over_time)
                if self._should_stop() or over_time:
                    stop = True
                    break
            bar.close()
            interrupted = bool(cfg.stop_at_step and self.step >= cfg.stop_at_step and
                               not (cfg.max_steps and self.step >= cfg.max_steps))
            epoch_complete = self.step_in_epoch >= self.steps_per_epoch
            if epoch_complete:
                self.epoch += 1
                self.step_in_epoch = 0
            elif interrupted:
                break   # mid-epoch: the epoch's row comes when the resumed run ends the epoch
            self._end_epoch(final=(stop and not interrupted) or self.epoch >= cfg.epochs)
        self.close()   # the workers end with the run
        if not interrupted:
            self.finished = True
        self.save_checkpoint()
        if self.ddp:
            torch.distributed.barrier()
        return self.result()

    def _calibrate(self, t_start: float, t_start_step: int) -> None:
        """Fit the schedule to the time budget at the speed measured so far (again every
        ``calibrate_steps`` steps: shared machines change speed), so it ends annealed. The
        budget counts the training time of earlier (resumed) runs too."""
        cfg = self.cfg
        per_step = (time.time() - t_start) / max(self.step - t_start_step, 1)
        fit = self.step + int((cfg.time_budget_s - self.elapsed_s) / per_step)
        self._set_schedule_length(max(min(fit, self._configured_total), self.step + 1))
        cfg.max_steps = self.total_steps
        if self.is_main and self.step - t_start_step == cfg.calibrate_steps:
            self.log(f"calibrated: {per_step * 1000:.0f} ms/step -> {self.total_steps} steps")

    def _end_epoch(self, final: bool) -> None:
        cfg = self.cfg
        row = {"epoch": self.epoch, "step": self.step, "lr": self.lr}
        row.update({k: _mean(v) for k, v in self._epoch_acc.items()})
        self._epoch_acc = {}
        every = cfg.eval_every
        do_eval = self.is_main and every >= 0 and (final or (every > 0 and self.epoch % every == 0))
        metrics = self.evaluate() if do_eval else None
        if metrics is not None:
            self.last_metrics = {k: float(v) for k, v in metrics.items()}
            row.update(self.last_metrics)
            value = self.last_metrics[self.task.metric]
            if self._better(value):
                self.best = value
                atomic_save({"model": self.eval_model().state_dict(), "epoch": self.epoch,
                             "step": self.step, "metric": self.task.metric, "value": value,
                             "metrics": self.last_metrics,
                             "task_config": plain(self.task.config.to_dict())}, self.best_path)
        row["time_s"] = round(self.elapsed_s, 2)
        self.history.append(row)
        if self.is_main:
            shown = [f"{k} {v:.4g}" for k, v in row.items() if k not in ("epoch", "step", "time_s")]
            self.log(f"epoch {row['epoch']} step {row['step']} " + " ".join(shown))
        self.save_checkpoint()
        self._write_logs()
        if self.ddp:
            torch.distributed.barrier()


__all__ = ["ImageGroupedOrder", "SAMPLERS", "TrainConfig", "Trainer", "eval_mode"]
