"""Command line: ``pyhpe demo|train|eval|infer|bench|info`` (also ``python -m pyhpe``)."""
from __future__ import annotations

import argparse
import json
import sys


TASKS = ("bottomup", "lift3d", "integral", "topdown_infer")


def _cmd_info(args) -> int:
    import pyhpe
    info = pyhpe.info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:24s} {v}")
    return 0


# `pyhpe eval --mode` name -> (COCOKeypointEval mode, use_area, default keypoint set for sigmas)
EVAL_MODES = {
    "pycocotools": ("pycocotools", True, "coco17"),
    "xtcocotools": ("xtcocotools", True, "coco17"),
    "xtcocotools_noarea": ("xtcocotools", False, "coco17"),   # OKS area 0.53 * box w * h
    "crowdpose": ("crowdpose", False, "crowdpose14"),         # CrowdPose GT has no 'area'
}


def _eval_sigmas(spec):
    """--sigmas: a keypoint-set name ('coco17', 'crowdpose14', ...) or comma-separated floats."""
    from pyhpe.data.keypoints import get_keypoint_set
    try:
        return [float(v) for v in spec.split(",")]
    except ValueError:
        pass
    try:
        return get_keypoint_set(spec).sigmas.tolist()
    except ValueError as e:
        raise SystemExit(f"pyhpe eval: --sigmas {spec!r}: {e}")


def _cmd_eval(args) -> int:
    from pyhpe.eval import COCOKeypointEval
    mode, use_area, default_set = EVAL_MODES[args.mode]
    sigmas = _eval_sigmas(args.sigmas or default_set)
    try:
        with open(args.dt) as f:
            dt = json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit(f"pyhpe eval: cannot read results {args.dt!r}: {e}")
    ev = COCOKeypointEval(args.gt, dt, sigmas=sigmas, mode=mode, use_area=use_area)
    ev.run(verbose=True)
    if args.compare_pycocotools:
        if mode != "pycocotools":
            print(f"pycocotools comparison: not applicable (mode {args.mode!r} differs from "
                  "pycocotools by design)")
            return 0
        if isinstance(dt, list) and not dt:
            print("pycocotools comparison: not applicable (pycocotools' loadRes refuses an empty "
                  "results list; pyhpe's stats above are those of no detections)")
            return 0
        from pyhpe.eval.coco import pycocotools_stats
        ref = pycocotools_stats(args.gt, dt, sigmas)
        same = list(map(float, ref)) == list(map(float, ev.stats))
        print("pycocotools stats identical:", same)
        if not same:
            print("pycocotools stats:", " ".join(f"{v:.6f}" for v in ref))
        return 0 if same else 1
    return 0


def _cmd_bench(args) -> int:
    from pyhpe.demo import speed_table
    from pyhpe.eval.speed import print_evaluator_table
    speed_table(num_images=min(args.images, 500), seed=args.seed)
    print()
    print_evaluator_table(num_images=args.images, seed=args.seed)
    return 0


def _cmd_demo(args) -> int:
    from pyhpe.demo import run_demo
    return run_demo(out_dir=args.out, num_images=args.images, seed=args.seed,
                    budget_s=args.budget, num_val=args.val_images, quick=args.quick,
                    bench=not args.no_bench, threads=args.threads or None)


def _cmd_train(args) -> int:
    if not args.config:
        raise SystemExit("pyhpe train: --config is required for --task topdown")
    from pyhpe.train.run import run_training
    cfg = args.config
    if args.set:
        from pyhpe.train.run import load_config
        cfg = load_config(cfg)
        for item in args.set:
            key, _, val = item.partition("=")
            node = cfg
            parts = key.split(".")
            for k in parts[:-1]:
                node = node.setdefault(k, {})
            node[parts[-1]] = json.loads(val) if val[:1] in "[{0123456789-tfn" else val
    run_training(cfg, out_dir=args.out)
    return 0


def _cmd_infer(args) -> int:
    from pyhpe.train.run import run_inference
    run_inference(args.config, args.checkpoint, args.images, boxes=args.boxes, out_dir=args.out,
                  flip_test=not args.no_flip)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pyhpe", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("info", help="build information (versions, CUDA, archs)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_info)

    s = sub.add_parser("eval", help="COCO keypoint AP/AR of a results file")
    s.add_argument("gt", help="COCO keypoint annotation json")
    s.add_argument("dt", help="COCO results json (list of detections)")
    s.add_argument("--mode", default="pycocotools", choices=list(EVAL_MODES),
                   help="pycocotools (default); xtcocotools; xtcocotools_noarea (OKS area = "
                        "0.53 * GT box area); crowdpose (xtcocotools keypoints_crowd, no area)")
    s.add_argument("--sigmas", default=None,
                   help="OKS sigmas: a keypoint set (coco17, crowdpose14, ...) or comma-separated "
                        "values (default: crowdpose14 for --mode crowdpose, else coco17)")
    s.add_argument("--compare-pycocotools", action="store_true",
                   help="also run pycocotools and check the stats are identical "
                        "(pycocotools mode only)")
    s.set_defaults(func=_cmd_eval)

    s = sub.add_parser("bench", help="short kernel speed table")
    s.add_argument("--images", type=int, default=1000)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_cmd_bench)

    s = sub.add_parser("demo", help="train on synthetic figures, evaluate, draw (see README)")
    s.add_argument("--out", default="demo_out")
    s.add_argument("--images", type=int, default=2000, help="synthetic training images")
    s.add_argument("--val-images", type=int, default=300, help="held-out synthetic images")
    s.add_argument("--budget", type=float, default=200.0, help="training time budget (s)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--quick", action="store_true", help="a few steps only (smoke test)")
    s.add_argument("--no-bench", action="store_true", help="skip the kernel speed table")
    s.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads (default 1, robust on shared CPUs; 0: torch default)")
    s.set_defaults(func=_cmd_demo)

    s = sub.add_parser("train", help="train a model: top-down from a json config (torchrun for "
                       "DDP), or --task bottomup|lift3d|integral|topdown_infer")
    s.add_argument("--task", default="topdown",
                   choices=("topdown",) + TASKS,
                   help="other tasks take their own flags (python -m pyhpe.tasks TASK --help)")
    s.add_argument("--config", default=None, help="json config (see pyhpe.train.run)")
    s.add_argument("--out", default=None, help="output dir (overrides train.out_dir)")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config entry, e.g. train.epochs=3")
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("infer", help="top-down keypoints for images with a trained checkpoint")
    s.add_argument("--config", required=True)
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--boxes", default=None, help="COCO detections json (default: whole image)")
    s.add_argument("--out", default="infer_out")
    s.add_argument("--no-flip", action="store_true")
    s.add_argument("images", nargs="+")
    s.set_defaults(func=_cmd_infer)
    return p


def _task_argv(argv):
    """(task, its own argv) for `train --task X ...` with X other than topdown, else None."""
    if not argv or argv[0] != "train":
        return None
    rest = list(argv[1:])
    for i, a in enumerate(rest):
        if a == "--task" and i + 1 < len(rest):
            task = rest[i + 1]
            del rest[i:i + 2]
        elif a.startswith("--task="):
            task = a.split("=", 1)[1]
            del rest[i]
        else:
            continue
        return (task, rest) if task != "topdown" else None
    return None


def main(argv=None) -> int:
    from pyhpe.train.utils import CheckpointError
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        task = _task_argv(argv)
        if task is not None and task[0] in TASKS:
            # The task owns every remaining flag (--config, --out, ... mean its own things).
            from pyhpe.tasks import run_task
            return int(run_task(*task) or 0)
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except CheckpointError as e:
        print(str(e), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
