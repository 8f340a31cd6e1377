"""``train.sampler: 'image_grouped'``: the per-epoch order shuffles the images and keeps each
image's items together, with ShardedOrder's contract (seeded by seed + epoch, DDP shards,
exact mid-epoch resume through ``skip_batches``)."""
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))

from conftest import topdown_config  # noqa: E402
from test_engine import ToyTask, _data, _state_equal, _without_time  # noqa: E402

from pyhpe.engine import ConfigError, TrainConfig, Trainer  # noqa: E402
from pyhpe.engine.trainer import ImageGroupedOrder  # noqa: E402

QUIET = lambda *a, **k: None  # noqa: E731


def _image_ids(n=50):
    """Images holding 1..4 items, ids not in item order (as a COCO file's annotations)."""
    ids, im = [], 0
    while len(ids) < n:
        ids.extend([(im * 7919) % 101] * (1 + im % 4))
        im += 1
    ids = ids[:n]
    # interleave: an image's items need not be adjacent in the dataset
    return ids[::2] + ids[1::2]


def _groups_are_contiguous(order, ids):
    seen, prev = set(), None
    for i in order:
        im = ids[i]
        if im != prev:
            assert im not in seen, f"image {im} split in {order}"
            seen.add(im)
        prev = im


def test_order_is_a_grouped_permutation_and_seeded():
    ids = _image_ids()
    s = ImageGroupedOrder(ids, batch_size=4, seed=3)
    orders = []
    for epoch in range(3):
        s.epoch = epoch
        order = s.order()
        assert sorted(order) == list(range(len(ids)))
        _groups_are_contiguous(order, ids)
        assert list(s) == order          # one process, no skip: the whole order
        orders.append(order)
    assert orders[0] != orders[1] != orders[2]           # reshuffled every epoch
    same = ImageGroupedOrder(ids, batch_size=4, seed=3)
    same.epoch = 1
    assert same.order() == orders[1]                     # seed + epoch decide the order
    other = ImageGroupedOrder(ids, batch_size=4, seed=4)
    other.epoch = 1
    assert other.order() != orders[1]
    # the order of images is not the dataset's
    firsts = [ids[i] for i in orders[0]]
    assert firsts != sorted(firsts, key=ids.index)


def test_resume_mid_epoch_and_ddp_shards():
    ids = _image_ids(51)
    bs = 4
    s = ImageGroupedOrder(ids, bs, seed=0)
    s.epoch = 2
    full = list(s)
    batches = [full[i:i + bs] for i in range(0, len(full) - bs + 1, bs)]
    for skip in (1, 5):
        r = ImageGroupedOrder(ids, bs, seed=0)         # a fresh process
        r.epoch, r.skip_batches = 2, skip
        rest = list(r)
        assert len(r) == len(rest) == len(full) - skip * bs
        assert [rest[i:i + bs] for i in range(0, len(rest) - bs + 1, bs)] == batches[skip:]
    shards = []
    for rank in (0, 1):
        d = ImageGroupedOrder(ids, bs, seed=0, rank=rank, world=2)
        d.epoch = 2
        shards.append(list(d))
    assert len(shards[0]) == len(shards[1]) == len(ids) // 2
    assert not set(shards[0]) & set(shards[1])
    assert shards[0] + shards[1] == full[:2 * (len(ids) // 2)]  # contiguous: images stay whole
    d = ImageGroupedOrder(ids, bs, seed=0, rank=1, world=2)
    d.epoch, d.skip_batches = 2, 3
    assert list(d) == shards[1][3 * bs:]


class _Grouped(list):
    def instance_image_ids(self):
        return [i // 3 for i in range(len(self))]


class GroupedToyTask(ToyTask):
    name = "toy_grouped"

    def build_datasets(self):
        train, val = super().build_datasets()
        return _Grouped(train), val


def _task(out_dir, cls=GroupedToyTask, **train):
    t = dict(epochs=3, batch_size=8, lr=3e-2, warmup_steps=2, out_dir=str(out_dir), progress=False,
             eval_every=1, seed=0, log_every=2, ema_decay=0.9, sampler="image_grouped")
    t.update(train)
    return cls({"train": t})


def test_config_validates_the_option(tmp_path):
    assert TrainConfig().sampler == "random"
    with pytest.raises(ConfigError, match="train.sampler"):
        TrainConfig.from_dict({"sampler": "grouped"}, "train")
    with pytest.raises(ConfigError, match="train.sampler.*instance_image_ids"):
        Trainer(_task(tmp_path, ToyTask), log=QUIET)         # a plain list has no image ids


def test_trainer_uses_the_grouped_order_and_resumes_exactly(tmp_path):
    a = Trainer(_task(tmp_path / "a"), log=QUIET)
    assert isinstance(a.sampler, ImageGroupedOrder)
    ra = a.fit()
    b = Trainer(_task(tmp_path / "b", stop_at_step=10), log=QUIET)
    rb = b.fit()
    assert rb["step"] == 10 and not rb["finished"]
    c = Trainer(_task(tmp_path / "b", resume=True), log=QUIET)     # a new process
    assert c.step == 10 and c.step_in_epoch == 4 and c.epoch == 1
    rc = c.fit()
    assert rc["step"] == 18 and rc["finished"]
    _state_equal(a.model.state_dict(), c.model.state_dict())
    assert ra["loss_log"] == rc["loss_log"]
    assert _without_time(ra["history"]) == _without_time(rc["history"])
    # and the grouped order is not the random one: the runs differ
    r = Trainer(_task(tmp_path / "r", sampler="random"), log=QUIET)
    r.fit()
    assert not torch.equal(r.model.out.weight, a.model.out.weight)


def test_topdown_learns_with_image_grouped_batches(tmp_path):
    from pyhpe.tasks import build_task
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = topdown_config(tmp_path, steps=120, images=48, val=8, sampler="image_grouped")
        cfg["data"]["max_persons"] = 2
        task = build_task(cfg)
        trainer = Trainer(task, log=QUIET)
        assert isinstance(trainer.sampler, ImageGroupedOrder)
        ids = task.train_dataset().instance_image_ids()
        assert len(set(ids)) < len(ids)              # images with several people
        before = trainer.evaluate()["AP"]
        result = trainer.fit()
    finally:
        torch.set_num_threads(n)
    after = result["metrics"]["AP"]
    assert result["finished"] and after > before + 0.05, (before, after)
