"""The Trainer's DataLoader workers live across epochs (persistent workers): the same worker
processes serve every epoch, while each epoch's augmentation (seeded by seed, epoch and item)
still reaches them, so the batches equal a ``num_workers=0`` run's bit for bit, also after an
exact mid-epoch resume."""
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))

from conftest import topdown_config  # noqa: E402

from pyhpe.engine import Trainer  # noqa: E402
from pyhpe.tasks import build_task  # noqa: E402

QUIET = lambda *a, **k: None  # noqa: E731


class _PidRecordingLoader:
    """Wraps the training set's image loader: each call appends the process id to a file
    (the workers are other processes; the file is how their ids come back)."""

    def __init__(self, load, path):
        self.load, self.path = load, path

    def __call__(self, image_id):
        with open(self.path, "a") as f:
            f.write(f"{os.getpid()}\n")
        return self.load(image_id)


def _trainer(tmp_path, workers, sampler="image_grouped", **train):
    cfg = topdown_config(tmp_path / f"run{workers}", images=24, val=4, num_workers=workers,
                         sampler=sampler, batch_size=8, epochs=3, max_steps=0, **train)
    return Trainer(build_task(cfg), log=QUIET)


def _epoch_batches(trainer, epoch, skip=0):
    trainer.epoch, trainer.step_in_epoch = epoch, skip
    return [{k: v.clone() for k, v in b.items()} for b in trainer.train_loader()]


def _equal(a, b):
    return len(a) == len(b) and all(
        x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x) for x, y in zip(a, b))


@pytest.mark.parametrize("sampler", ["image_grouped", "random"])
def test_workers_persist_and_batches_equal_no_workers(tmp_path, sampler):
    torch.set_num_threads(1)
    ref = _trainer(tmp_path, 0, sampler)
    want = [_epoch_batches(ref, e) for e in range(2)]
    want_resumed = _epoch_batches(ref, 1, skip=1)

    tr = _trainer(tmp_path, 2, sampler)
    pids_file = tmp_path / "pids.txt"
    ds = tr.train_dataset
    ds.image_loader = _PidRecordingLoader(ds.image_loader, str(pids_file))
    try:
        got, pids, loaders = [], [], []
        for e in range(2):
            got.append(_epoch_batches(tr, e))
            loaders.append(tr._loader)
            pids.append(set(int(p) for p in pids_file.read_text().split()))
            pids_file.write_text("")
        got_resumed = _epoch_batches(tr, 1, skip=1)
        pids_resumed = set(int(p) for p in pids_file.read_text().split())
    finally:
        tr.close()
    # the work ran in worker processes, and the same ones served both epochs
    assert os.getpid() not in pids[0] | pids[1]
    assert pids[0] and pids[0] == pids[1] == pids_resumed, (pids, pids_resumed)
    assert loaders[0] is loaders[1]
    # the augmentation changes with the epoch ...
    assert not torch.equal(got[0][0]["image"], got[1][0]["image"]) or \
        not torch.equal(got[0][0]["keypoints"], got[1][0]["keypoints"])
    # ... and every batch equals the no-worker run's (same seed), mid-epoch resume included
    assert _equal(got[0], want[0]) and _equal(got[1], want[1])
    assert _equal(got_resumed, want_resumed) and _equal(got_resumed, want[1][1:])


def test_fit_with_workers_equals_fit_without(tmp_path):
    """Two epochs of training through persistent workers end in the same weights as without
    workers (same seed), and fit stops the workers when it returns."""
    torch.set_num_threads(1)
    states = []
    for workers in (0, 2):
        cfg = topdown_config(tmp_path / f"fit{workers}", images=16, val=4, num_workers=workers,
                             sampler="image_grouped", batch_size=8, epochs=2, max_steps=0)
        tr = Trainer(build_task(cfg), log=QUIET)
        tr.fit()
        assert tr._loader is None
        states.append(tr.model.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
