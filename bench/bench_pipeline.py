"""Top-down training input pipeline, samples/s through a DataLoader with the same workers:
pyhpe's TopDownDataset (decode, flip + half-body + shift/scale/rotation, one affine warp per
sample; targets made per batch by the codec's kernel) against mmpose 1.3.2's train pipeline
of its td-hm_hrnet-w32 COCO config (LoadImage, GetBBoxCenterScale, RandomFlip,
RandomHalfBody, RandomBBoxTransform, TopdownAffine, GenerateTarget, PackPoseInputs with
pseudo_collate), 256x192 crops, 64x48 MSRA (sigma 2) and UDP targets.

Data: the real COCO-17 samples of tests/data (OCHuman: 3 images, 5 people; PoseTrack18: 3
frames of 1920x1080, 14 people), the image list repeated ``REPEAT`` times under new image ids
(same files) so an epoch is long enough to time. pyhpe runs in two orders: ``random`` (every
sample decodes its own image, as a random order over COCO does) and ``grouped``
(:class:`ImageGroupedSampler`: shuffled images, each image's people together, so a batch
decodes each image once; 0.32 decodes per sample here, 0.38 on COCO train2017).

mmpose runs only when importable (``PYTHONPATH=/tmp/mmref`` and the reference harness's
stubs, see shared/tools/mmpose-reference); otherwise its cases skip with the reason.
``PYHPE_BENCH_MMPOSE_STUBS`` names the stubs file. Each case records samples/s and (with
workers) the workers' peak resident and private memory in ``extra_info``; ``test_zz_summary`` prints the
ratios of this run. OpenCV runs single-threaded in every process (``cv2.setNumThreads(0)``,
what mmengine's runner sets for mmpose's training).
"""
import json
import os
import tempfile

import cv2
import pytest
import torch

from pyhpe.codecs import build_codec
from pyhpe.data import CocoImageLoader, TopDownAugment, collate_topdown, records_from_coco
from pyhpe.data.topdown import ImageGroupedSampler, TopDownDataset

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "tests", "data")
STUBS = os.environ.get("PYHPE_BENCH_MMPOSE_STUBS",
                       os.path.join(HERE, "..", "..", "shared", "tools", "mmpose-reference",
                                    "mmpose_stubs.py"))
REPEAT = 16
# both sides as mmengine's runner sets up its processes (env_cfg mp_cfg opencv_num_threads=0);
# forked DataLoader workers inherit it
cv2.setNumThreads(0)
BATCH = 32
INPUT = (192, 256)
HEATMAP = (48, 64)
RESULTS = {}


def combined_coco(repeat: int = REPEAT) -> dict:
    """The COCO-17 samples of tests/data as one COCO dict (file names relative to tests/data),
    the image list ``repeat`` times under new ids."""
    imgs, anns = [], []
    sources = [("ochuman_sample.json", "ochuman"),
               (os.path.join("posetrack18", "test_posetrack18_val.json"), "posetrack18")]
    base = []
    for js, root in sources:
        with open(os.path.join(DATA, js)) as f:
            d = json.load(f)
        by_image = {}
        for a in d["annotations"]:
            if sum(v > 0 for v in a["keypoints"][2::3]) > 0 and not a.get("iscrowd", 0):
                by_image.setdefault(a["image_id"], []).append(a)
        for im in d["images"]:
            path = os.path.join(root, im["file_name"])
            if os.path.exists(os.path.join(DATA, path)) and im["id"] in by_image:
                base.append((path, im["width"], im["height"], by_image[im["id"]]))
    for r in range(repeat):
        for path, w, h, people in base:
            image_id = len(imgs) + 1
            imgs.append({"id": image_id, "file_name": path, "width": w, "height": h})
            for a in people:
                kps = [float(v) for v in a["keypoints"]]
                anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": 1,
                             "bbox": [float(v) for v in a["bbox"]], "keypoints": kps,
                             "num_keypoints": int(sum(v > 0 for v in kps[2::3])), "iscrowd": 0,
                             "area": float(a.get("area", a["bbox"][2] * a["bbox"][3]))})
    return {"images": imgs, "annotations": anns,
            "categories": [{"id": 1, "name": "person", "keypoints": [], "skeleton": []}]}


@pytest.fixture(scope="module")
def coco():
    return combined_coco()


def import_mmpose():
    """mmpose 1.3.2 through the reference harness's stubs, or a skip with the reason."""
    if not os.path.exists(STUBS):
        pytest.skip(f"mmpose reference harness stubs not found ({STUBS})")
    with open(STUBS) as f:
        exec(compile(f.read(), STUBS, "exec"), {"__name__": "mmpose_stubs"})
    try:
        import mmpose  # noqa: F401
        from mmpose.utils import register_all_modules
    except Exception as e:  # pragma: no cover - depends on the environment
        pytest.skip(f"mmpose not importable ({type(e).__name__}: {e}); "
                    "run with PYTHONPATH=/tmp/mmref")
    register_all_modules()
    import mmpose as m
    return m


def worker_memory_mb(loader):
    """``(peak, private)`` MiB, each the largest over the loader's workers ((0, 0) without):
    the peak resident set (VmHWM, which counts every page a worker shares with the process it
    was forked from) and the private memory at the end of the timed epochs (Private_Clean +
    Private_Dirty of /proc/PID/smaps_rollup: what the worker holds of its own)."""
    it = getattr(loader, "_iterator", None)
    peaks, private = [0.0], [0.0]
    for w in getattr(it, "_workers", []) or []:
        try:
            with open(f"/proc/{w.pid}/status") as f:
                peaks += [int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:")]
            with open(f"/proc/{w.pid}/smaps_rollup") as f:
                private.append(sum(int(line.split()[1]) for line in f
                                   if line.startswith(("Private_Clean:", "Private_Dirty:"))) / 1024)
        except OSError:
            pass
    return max(peaks), max(private)


def pyhpe_loader(coco, workers: int, order: str, udp: bool):
    loader = CocoImageLoader(coco, DATA)
    ds = TopDownDataset(records_from_coco(coco), loader, "coco17", INPUT,
                        augment=TopDownAugment(rot_factor=40, half_body_prob=0.3), seed=0,
                        udp=udp)
    kw = dict(batch_size=BATCH, collate_fn=collate_topdown, num_workers=workers,
              persistent_workers=workers > 0, drop_last=False)
    if order == "grouped":
        kw["sampler"] = ImageGroupedSampler(ds.records, shuffle=True, seed=0)
    else:
        kw["shuffle"] = True
        ds = _PerSample(ds)
    codec = build_codec("udp" if udp else "msra", input_size=INPUT, heatmap_size=HEATMAP,
                        sigma=2.0)
    return torch.utils.data.DataLoader(ds, generator=torch.Generator().manual_seed(0), **kw), codec


class _PerSample(torch.utils.data.Dataset):
    """The dataset fetched one sample at a time (no batch fetch): each sample decodes its
    own image, as a random order over a large dataset does."""

    def __init__(self, ds):
        self.ds = ds

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        return self.ds[i]


def pyhpe_epoch(loader, codec):
    n = 0
    for batch in loader:
        codec.encode(batch["keypoints"], batch["visibility"])
        n += len(batch["index"])
    return n


def mmpose_loader(coco, workers: int, udp: bool):
    import_mmpose()
    from mmengine.dataset import pseudo_collate
    from mmpose.datasets import CocoDataset
    tmp = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(coco, tmp)
    tmp.close()
    codec = (dict(type="UDPHeatmap", input_size=INPUT, heatmap_size=HEATMAP, sigma=2) if udp
             else dict(type="MSRAHeatmap", input_size=INPUT, heatmap_size=HEATMAP, sigma=2))
    pipeline = [dict(type="LoadImage"), dict(type="GetBBoxCenterScale"),
                dict(type="RandomFlip", direction="horizontal"), dict(type="RandomHalfBody"),
                dict(type="RandomBBoxTransform"),
                dict(type="TopdownAffine", input_size=INPUT, use_udp=udp),
                dict(type="GenerateTarget", encoder=codec), dict(type="PackPoseInputs")]
    ds = CocoDataset(ann_file=tmp.name, data_root=DATA, data_mode="topdown",
                     data_prefix=dict(img=""), pipeline=pipeline)
    os.unlink(tmp.name)
    return torch.utils.data.DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=workers,
                                       collate_fn=pseudo_collate, persistent_workers=workers > 0,
                                       generator=torch.Generator().manual_seed(0))


def mmpose_epoch(loader):
    n = 0
    for batch in loader:
        n += len(batch["inputs"])
    return n


def _run(benchmark, key, loader, epoch, *args):
    n = epoch(loader, *args)               # warm-up: starts the persistent workers
    benchmark.pedantic(epoch, args=(loader,) + args, rounds=3, iterations=1)
    rate = n / benchmark.stats.stats.min
    mem = worker_memory_mb(loader)
    benchmark.extra_info.update(samples_per_s=round(rate, 1), worker_peak_rss_mib=round(mem[0], 1),
                                worker_private_mib=round(mem[1], 1))
    RESULTS[key] = (rate, mem)


CASES = [(w, udp) for udp in (False, True) for w in (0, 2)]


def _id(case):
    return f"{'udp' if case[1] else 'msra'}-w{case[0]}"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_mmpose(benchmark, coco, case):
    workers, udp = case
    _run(benchmark, ("mmpose",) + case, mmpose_loader(coco, workers, udp), mmpose_epoch)


@pytest.mark.parametrize("order", ["random", "grouped"])
@pytest.mark.parametrize("case", CASES, ids=_id)
def test_pyhpe(benchmark, coco, case, order):
    workers, udp = case
    loader, codec = pyhpe_loader(coco, workers, order, udp)
    _run(benchmark, (f"pyhpe-{order}",) + case, loader, pyhpe_epoch, codec)


@pytest.fixture(scope="module")
def coco_file(coco, tmp_path_factory):
    path = tmp_path_factory.mktemp("pipeline") / "train.json"
    path.write_text(json.dumps(coco))
    return str(path)


def trainer_path(coco_file, workers: int, sampler: str, udp: bool):
    """A Trainer built from a top-down config over the same images (``train.sampler``, the
    workers): its ``train_loader()`` is the DataLoader that ``fit`` iterates and
    ``Trainer.prepare`` (the task's ``prepare``) makes the batch's targets and normalised inputs,
    as each training step does."""
    from pyhpe.engine import Trainer
    from pyhpe.tasks import build_task
    codec = ({"name": "udp", "heatmap_size": list(HEATMAP), "sigma": 2.0} if udp else
             {"name": "msra", "heatmap_size": list(HEATMAP), "sigma": 2.0})
    cfg = {"task": "topdown", "keypoints": "coco17", "input_size": list(INPUT),
           "model": {"name": "simple_baseline", "config": "tiny"}, "codec": codec,
           "data": {"type": "coco", "train_ann": coco_file, "train_images": DATA, "seed": 0},
           "augment": {"rot_factor": 40, "half_body_prob": 0.3},
           "train": {"epochs": 1, "batch_size": BATCH, "num_workers": workers, "sampler": sampler,
                     "device": "cpu", "progress": False, "seed": 0, "log_json": False,
                     "out_dir": os.path.join(tempfile.gettempdir(), "pyhpe_bench_pipeline")}}
    trainer = Trainer(build_task(cfg), log=lambda *a, **k: None)
    return trainer


def trainer_epoch(trainer):
    """One epoch through the Trainer's loader and ``Trainer.prepare`` per batch, then the next
    epoch is set up as ``fit`` does (new order, new augmentation). With workers the loader is
    the same every epoch and its workers persist (started by the warm-up epoch, as mmpose's
    persistent workers are)."""
    n = 0
    loader = trainer.train_loader()
    for batch in loader:
        inputs, targets = trainer.prepare(batch)
        n += inputs.shape[0]
    _LAST_LOADER[0] = loader
    trainer.epoch += 1
    return n


_LAST_LOADER = [None]


@pytest.mark.parametrize("sampler", ["random", "image_grouped"])
@pytest.mark.parametrize("case", CASES, ids=_id)
def test_trainer(benchmark, coco_file, case, sampler):
    workers, udp = case
    trainer = trainer_path(coco_file, workers, sampler, udp)
    try:
        n = trainer_epoch(trainer)         # warm-up: starts the persistent workers
        benchmark.pedantic(trainer_epoch, args=(trainer,), rounds=3, iterations=1)
        mem = worker_memory_mb(_LAST_LOADER[0])
    finally:
        trainer.close()
    rate = n / benchmark.stats.stats.min
    benchmark.extra_info.update(samples_per_s=round(rate, 1), worker_peak_rss_mib=round(mem[0], 1),
                                worker_private_mib=round(mem[1], 1))
    RESULTS[(f"trainer-{sampler}",) + case] = (rate, mem)


def test_zz_summary():
    """The ratios of this run (printed; run with -s to see them)."""
    if not RESULTS:
        pytest.skip("no benchmark ran")
    lines = ["targets | workers | mmpose samples/s (worker MiB: peak RSS / private) | "
             "pyhpe random | pyhpe grouped | ratios random / grouped"]
    for workers, udp in CASES:
        mm = RESULTS.get(("mmpose", workers, udp))
        r = RESULTS.get(("pyhpe-random", workers, udp))
        g = RESULTS.get(("pyhpe-grouped", workers, udp))
        if r is None or g is None:
            continue
        fmt = lambda v: f"{v[0]:.1f} ({v[1][0]:.0f} / {v[1][1]:.0f})" if v else "-"  # noqa: E731
        ratio = f"{r[0] / mm[0]:.2f}x / {g[0] / mm[0]:.2f}x" if mm else "-"
        lines.append(f"{'udp' if udp else 'msra'} | {workers} | {fmt(mm)} | {fmt(r)} | {fmt(g)} "
                     f"| {ratio}")
    lines.append("")
    lines.append("targets | workers | Trainer loader + prepare samples/s: random / "
                 "image_grouped | ratios to mmpose")
    for workers, udp in CASES:
        mm = RESULTS.get(("mmpose", workers, udp))
        r = RESULTS.get(("trainer-random", workers, udp))
        g = RESULTS.get(("trainer-image_grouped", workers, udp))
        if r is None or g is None:
            continue
        ratio = f"{r[0] / mm[0]:.2f}x / {g[0] / mm[0]:.2f}x" if mm else "-"
        lines.append(f"{'udp' if udp else 'msra'} | {workers} | {r[0]:.1f} / {g[0]:.1f} "
                     f"(worker MiB {r[1][0]:.0f} / {r[1][1]:.0f}, {g[1][0]:.0f} / {g[1][1]:.0f}) "
                     f"| {ratio}")
    print("\n" + "\n".join(lines))
