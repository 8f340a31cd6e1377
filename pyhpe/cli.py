"""Command line: ``pyhpe demo|train|eval|infer|bench|info`` (also ``python -m pyhpe``)."""
from __future__ import annotations

import argparse
import json
import sys


def _cmd_info(args) -> int:
    import pyhpe
    info = pyhpe.info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:24s} {v}")
    return 0


def _cmd_eval(args) -> int:
    from pyhpe.eval import COCOKeypointEval
    ev = COCOKeypointEval(args.gt, args.dt, mode=args.mode)
    ev.run(verbose=True)
    if args.compare_pycocotools:
        from pyhpe.eval.coco import pycocotools_stats
        ref = pycocotools_stats(args.gt, args.dt)
        same = list(map(float, ref)) == list(map(float, ev.stats))
        print("pycocotools stats identical:", same)
        return 0 if same else 1
    return 0


def _cmd_bench(args) -> int:
    try:
        from pyhpe.eval.demo import speed_table
    except ImportError:
        from pyhpe.demo import speed_table
        speed_table(num_images=min(args.images, 500), seed=args.seed)
        return 0
    speed_table(num_images=args.images, seed=args.seed)
    return 0


def _cmd_demo(args) -> int:
    from pyhpe.demo import run_demo
    return run_demo(out_dir=args.out, num_images=args.images, seed=args.seed,
                    budget_s=args.budget, num_val=args.val_images, quick=args.quick,
                    bench=not args.no_bench)


def _cmd_train(args) -> int:
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
    s.add_argument("--mode", default="pycocotools",
                   choices=["pycocotools", "xtcocotools", "xtcocotools_noarea", "crowdpose"])
    s.add_argument("--compare-pycocotools", action="store_true",
                   help="also run pycocotools and check the stats are identical")
    s.set_defaults(func=_cmd_eval)

    s = sub.add_parser("bench", help="short kernel speed table")
    s.add_argument("--images", type=int, default=1000)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_cmd_bench)

    s = sub.add_parser("demo", help="train on synthetic figures, evaluate, draw (see README)")
    s.add_argument("--out", default="demo_out")
    s.add_argument("--images", type=int, default=2000, help="synthetic training images")
    s.add_argument("--val-images", type=int, default=300, help="held-out synthetic images")
    s.add_argument("--budget", type=float, default=170.0, help="training time budget (s)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--quick", action="store_true", help="a few steps only (smoke test)")
    s.add_argument("--no-bench", action="store_true", help="skip the kernel speed table")
    s.set_defaults(func=_cmd_demo)

    s = sub.add_parser("train", help="train a model from a json config (torchrun for DDP)")
    s.add_argument("--config", required=True, help="json config (see pyhpe.train.run)")
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


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
