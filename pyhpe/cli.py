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
    from pyhpe.eval.demo import speed_table
    speed_table(num_images=args.images, seed=args.seed)
    return 0


def _cmd_demo(args) -> int:
    from pyhpe.eval.demo import run_demo
    return run_demo(out_dir=args.out, num_images=args.images, seed=args.seed)


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

    s = sub.add_parser("demo", help="the main job (see README)")
    s.add_argument("--out", default="demo_out")
    s.add_argument("--images", type=int, default=2000)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_cmd_demo)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
