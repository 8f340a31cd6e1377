"""A training step queues its work without reading device values back to the host.

On a GPU every read of a tensor's value (``.item()``, ``float()``, ``bool()``, a boolean mask,
``nonzero``) waits for the device to finish everything queued before it. The step is run
here on the CPU under a dispatch mode that records every such data-dependent read; each
would be a host synchronisation on a CUDA device. What torch's optimisers read of their
own step counters is left out: those live on the host by design (non-capturable Adam/SGD).
Kernels of pyhpe's C++ ops do not pass through the mode; their host copies are excluded by
reading (the PAF op bounds-checks CPU limbs and copies them asynchronously).
"""
import copy
import json
import os
import traceback

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from pyhpe.engine import Trainer
from pyhpe.tasks import build_task

CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "configs")

# Ops whose result depends on tensor values on the host side (a device -> host read).
_READS = {"aten._local_scalar_dense.default", "aten.nonzero.default",
          "aten.masked_select.default", "aten.is_nonzero.default", "aten.equal.default",
          "aten._unique2.default", "aten.unique_consecutive.default",
          "aten.unique_dim.default", "aten.repeat_interleave.Tensor"}


class HostReads(TorchDispatchMode):
    """Records the data-dependent reads of device values, with where they happen."""

    def __init__(self):
        super().__init__()
        self.reads = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if str(func) in _READS:
            stack = traceback.extract_stack()[:-1]
            if not any(os.sep + os.path.join("torch", "optim") + os.sep in f.filename
                       for f in stack):
                where = next((f"{f.filename}:{f.lineno}" for f in reversed(stack)
                              if os.sep + "pyhpe" + os.sep in f.filename), "torch")
                self.reads.append(f"{func} at {where}")
        return func(*args, **(kwargs or {}))


def _small(name, tmp_path):
    with open(os.path.join(CONFIGS, name)) as f:
        cfg = json.load(f)
    cfg = copy.deepcopy(cfg)
    cfg["data"].update(num_images=8, val_images=2)
    cfg["train"].update(epochs=1, batch_size=4, num_workers=0, device="cpu", progress=False,
                        log_json=False, out_dir=str(tmp_path))
    for k in ("time_budget_s", "max_steps"):
        cfg["train"].pop(k, None)
    return cfg


@pytest.mark.parametrize("config", [
    "topdown_simplebaseline_synthetic.json", "topdown_udp_synthetic.json",
    "topdown_simcc_synthetic.json", "topdown_regression_synthetic.json",
    "topdown_integral_ipr_synthetic.json", "topdown_integral_dsnt_synthetic.json",
    "bottomup_paf_synthetic.json", "bottomup_ae_synthetic.json"])
def test_training_step_reads_no_device_values(config, tmp_path):
    trainer = Trainer(build_task(_small(config, tmp_path)), log=lambda *a, **k: None)
    batch = next(iter(trainer.train_loader()))
    trainer.train_step(batch, sync=False)           # first step: lazy state (optimiser, ...)
    probe = HostReads()
    with probe:
        values = trainer.train_step(batch, sync=False)
    assert probe.reads == [], "\n".join(probe.reads)
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in values.values())
    # the probe sees reads: the public default returns numbers, reading each loss
    with HostReads() as read_back:
        numbers = trainer.train_step(batch)
    assert numbers.keys() == values.keys() and all(isinstance(v, float) for v in numbers.values())
    assert sum("_local_scalar_dense" in r for r in read_back.reads) == len(numbers)


def test_fit_reads_losses_only_at_log_points(tmp_path, monkeypatch):
    """fit keeps each step's losses as tensors and reads them where the loss curve is
    written (every ``log_every`` steps) and at the epoch's end; the logged numbers are the
    means of the steps' losses, as when every step was read at once."""
    cfg = _small("topdown_simplebaseline_synthetic.json", tmp_path)
    cfg["data"].update(num_images=24)
    cfg["train"].update(log_every=3, epochs=1)
    trainer = Trainer(build_task(cfg), log=lambda *a, **k: None)
    seen = []
    real = trainer.train_step

    def step(batch, sync=True):
        out = real(batch, sync=sync)
        seen.append((sync, {k: float(v) for k, v in out.items()}))
        return out
    monkeypatch.setattr(trainer, "train_step", step)
    res = trainer.fit()
    assert seen and all(not sync for sync, _ in seen)
    losses = [v["loss"] for _, v in seen]
    assert len(res["loss_log"]) == len(losses) // 3
    for i, point in enumerate(res["loss_log"]):
        assert point["loss"] == pytest.approx(sum(losses[3 * i:3 * i + 3]) / 3, rel=1e-12)
    assert res["history"][0]["loss"] == pytest.approx(sum(losses) / len(losses), rel=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("config", ["topdown_simplebaseline_synthetic.json",
                                    "topdown_udp_synthetic.json", "bottomup_paf_synthetic.json"])
def test_training_step_on_cuda_never_synchronizes(config, tmp_path):
    """On the GPU, torch's sync debug mode set to 'error' raises at any synchronising call:
    a training step (pinned batch copied non-blocking, targets by pyhpe's kernels on the
    device, forward, backward, update) runs through it."""
    cfg = _small(config, tmp_path)
    cfg["train"]["device"] = "cuda"
    trainer = Trainer(build_task(cfg), log=lambda *a, **k: None)
    batch = next(iter(trainer.train_loader()))
    trainer.train_step(batch, sync=False)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        values = trainer.train_step(batch, sync=False)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert all(torch.isfinite(v).item() for v in values.values())


def test_prepare_runs_on_the_calling_thread_beside_workers(tmp_path, monkeypatch):
    """With DataLoader workers on the CPU, a step's prepare (targets, normalised inputs) runs
    with one intra-op thread (the workers hold the cores) and the thread count comes back,
    also when prepare raises; without workers it keeps the pool."""
    cfg = _small("topdown_simplebaseline_synthetic.json", tmp_path)
    seen = []
    for workers in (0, 1):
        cfg["train"]["num_workers"] = workers
        trainer = Trainer(build_task(cfg), log=lambda *a, **k: None)
        real = trainer.task.prepare

        def spy(batch, device, real=real):
            seen.append((workers, torch.get_num_threads()))
            return real(batch, device)
        monkeypatch.setattr(trainer.task, "prepare", spy)
        before = torch.get_num_threads()
        batch = next(iter(trainer.train_loader()))
        trainer.prepare(batch)
        assert torch.get_num_threads() == before
        monkeypatch.setattr(trainer.task, "prepare", lambda *a: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            trainer.prepare(batch)
        assert torch.get_num_threads() == before
        trainer.close()
    assert seen == [(0, torch.get_num_threads()), (1, 1)]
