"""Command line: ``pyhpe demo|train|eval|infer|export|bench|info`` (also ``python -m pyhpe``)."""
from __future__ import annotations

import argparse
import json
import os
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


def _eval_sigmas(spec):
    """--sigmas: comma-separated values, or a keypoint-set name (its sigmas)."""
    from pyhpe.keypoints import get_keypoint_set
    try:
        return [float(v) for v in spec.split(",")]
    except ValueError:
        pass
    try:
        return get_keypoint_set(spec).sigmas.tolist()
    except ValueError as e:
        raise SystemExit(f"pyhpe eval: --sigmas {spec!r}: {e}")


def _eval_file_modes():
    from pyhpe.eval.cocofile import FILE_MODES
    return FILE_MODES


def _eval_files(args) -> int:
    """Stats of a results file in the dataset's protocol (pyhpe.eval.evaluate_coco_file), and
    with --compare-reference the same stats from the matching reference package."""
    from pyhpe.eval import evaluate_coco_file, format_eval_report
    sigmas = _eval_sigmas(args.sigmas) if args.sigmas else None
    try:
        report = evaluate_coco_file(args.gt, args.dt, keypoint_set=args.keypoints, mode=args.mode,
                                    sigmas=sigmas, compare_reference=args.compare_reference)
    except (ValueError, TypeError, KeyError) as e:
        msg = str(e.args[0] if isinstance(e, KeyError) and e.args else e)  # KeyError quotes str()
        raise SystemExit(msg if msg.startswith("pyhpe") else f"pyhpe eval: {msg}")
    print(format_eval_report(report))
    return 1 if report.get("identical") is False else 0


def _cmd_bench(args) -> int:
    from pyhpe.testing import print_evaluator_table, speed_table
    speed_table(num_images=min(args.images, 500), seed=args.seed)
    print()
    print_evaluator_table(num_images=args.images, seed=args.seed)
    return 0


def _cmd_demo(args) -> int:
    from pyhpe.demo import run_demo
    return run_demo(out_dir=args.out, num_images=args.images, seed=args.seed,
                    budget_s=args.budget, num_val=args.val_images, quick=args.quick,
                    bench=not args.no_bench, threads=args.threads or None)


def _train_overrides(args):
    """--set items, then the dedicated flags (which win)."""
    sets = list(args.set)
    if args.out:
        sets.append(f"train.out_dir={json.dumps(args.out)}")
    if args.resume:
        sets.append("train.resume=true")
    if args.load_from:
        sets.append(f"train.load_from={json.dumps(args.load_from)}")
    return sets


def _cmd_train(args) -> int:
    from pyhpe.tasks import build_task
    task = build_task(args.config, _train_overrides(args))
    result = task.fit()
    if result["best"] is not None:
        print(f"best {result['metric']} {result['best']:.4f} ({task.metric_mode}); "
              f"checkpoints in {result['out_dir']}")
    _close_distributed()
    return 0


def _close_distributed() -> None:
    import torch
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _load_task_model(args):
    """(task, model with the checkpoint's weights, device) for eval/infer."""
    import torch
    from pyhpe.engine import load_weights
    from pyhpe.tasks import build_task
    task = build_task(args.config, args.set)
    device = torch.device(args.device if args.device != "auto" else
                          ("cuda" if torch.cuda.is_available() else "cpu"))
    model = task.build_model()
    if args.checkpoint:
        load_weights(model, args.checkpoint)
    else:
        print("no --checkpoint: the model has untrained weights", file=sys.stderr)
    return task, model.to(device).eval(), device


def _cmd_eval(args) -> int:
    if args.config:
        task, model, device = _load_task_model(args)
        metrics = task.evaluate(model, device)
        if metrics is None:
            raise SystemExit("pyhpe eval: the config has no validation data")
        print(" ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        return 0
    if not (args.gt and args.dt):
        raise SystemExit("pyhpe eval: give GT and results json files, or --config (and --checkpoint)")
    return _eval_files(args)


def _cmd_infer(args) -> int:
    from pyhpe.tasks import TopDownTask
    from pyhpe.tasks.common import write_json
    task, model, device = _load_task_model(args)
    os.makedirs(args.out, exist_ok=True)
    if args.synthetic or args.dets:
        if not isinstance(task, TopDownTask):
            raise SystemExit(f"pyhpe infer: --dets/--synthetic need a top-down config (this one "
                             f"is {task.name!r})")
        from pyhpe.tasks.topdown import infer_detections, simulate_detections
        if args.synthetic:
            from pyhpe.data import SyntheticPoseDataset
            src = SyntheticPoseDataset(args.synthetic, seed=args.seed + 7919,
                                       size=(args.image_size,) * 2, max_persons=args.max_persons)
            gt, loader = src.coco_dict(), src.image_by_id
            dets = simulate_detections(gt, args.seed) if not args.dets else args.dets
            write_json(os.path.join(args.out, "gt.json"), gt)
            if isinstance(dets, list):
                write_json(os.path.join(args.out, "detections.json"), dets)
        else:
            if not (args.gt and args.image_dir):
                raise SystemExit("pyhpe infer: --dets needs --gt and --image-dir (or use --synthetic N)")
            from pyhpe.data import CocoImageLoader, load_coco
            gt = load_coco(args.gt)
            loader, dets = CocoImageLoader(gt, args.image_dir), args.dets
        out = infer_detections(task, model, gt, loader, dets, device=device,
                               det_score_thr=args.det_score_thr, nms=not args.no_nms,
                               nms_thr=args.nms_thr, flip_test=not args.no_flip)
        write_json(os.path.join(args.out, "results.json"), out.pop("results"))
        write_json(os.path.join(args.out, "metrics.json"), out)
        return 0
    if not args.inputs:
        raise SystemExit("pyhpe infer: give images, folders or videos (or --dets/--synthetic to "
                         "evaluate on boxes)")
    from pyhpe.apis.inferencer import Inferencer
    try:
        inf = Inferencer.from_task(task, model, device=str(device), flip_test=not args.no_flip,
                                   det_score_thr=args.det_score_thr,
                                   nms_thr=None if args.no_nms else args.nms_thr,
                                   draw_thr=args.draw_thr)
        inf(args.inputs, boxes=args.boxes, gt=args.gt, out_dir=args.out, draw=not args.no_draw,
            frame_id_start=args.frame_id_start)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"pyhpe infer: {e}")
    return 0


def _cmd_export(args) -> int:
    from pyhpe.apis.export import export_onnx, export_program
    task, model, _ = _load_task_model(args)
    model = model.cpu().eval()
    size = tuple(args.input_size) if args.input_size else None
    try:
        if args.out.endswith((".pt2", ".ep")):
            export_program(model, size, with_decode=args.with_decode, path=args.out)
        else:
            export_onnx(model, args.out, size, with_decode=args.with_decode,
                        opset_version=args.opset)
    except NotImplementedError as e:
        raise SystemExit(f"pyhpe export: {e}")
    print(f"wrote {args.out} ({'decoded keypoints and scores' if args.with_decode else 'raw outputs'})")
    return 0


def _task_args(s, checkpoint: bool = True, config_required: bool = False) -> None:
    s.add_argument("--config", required=config_required, default=None,
                   help="task config json (configs/*.json, or a run's config.json)")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config entry, e.g. train.epochs=3 (json values)")
    if checkpoint:
        s.add_argument("--checkpoint", default=None, help="weights (last.pth: its EMA; best.pth)")
        s.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pyhpe", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("info", help="build information (versions, CUDA, archs)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_info)

    s = sub.add_parser("train", help="train a task from a json config (torchrun for DDP)")
    _task_args(s, checkpoint=False, config_required=True)
    s.add_argument("--out", default=None, help="output directory (= --set train.out_dir=...)")
    s.add_argument("--resume", action="store_true",
                   help="continue from OUT/last.pth when it exists (exactly; a finished run "
                        "says so and returns)")
    s.add_argument("--load-from", default=None, metavar="CKPT",
                   help="start from these weights (fine-tuning); ignored when resuming")
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("eval", help="COCO keypoint AP/AR of a results file, or a checkpoint's "
                       "metrics on a config's validation data (--config)")
    s.add_argument("gt", nargs="?", help="COCO keypoint annotation json")
    s.add_argument("dt", nargs="?", help="COCO results json (list of detections)")
    s.add_argument("--mode", default=None, choices=list(_eval_file_modes()),
                   help="the protocol (default: the keypoint set's own: crowdpose for "
                        "crowdpose14, xtcocotools_noarea for aic14, wholebody for "
                        "coco_wholebody133, else pycocotools); xtcocotools_noarea: OKS area = "
                        "0.53 * GT box area; crowdpose: easy/medium/hard, no area")
    s.add_argument("--keypoints", default=None,
                   help="keypoint set whose sigmas are used (default: recognised from the GT; "
                        "pyhpe.keypoints.list_keypoint_sets())")
    s.add_argument("--sigmas", default=None,
                   help="OKS sigmas: comma-separated values or a keypoint-set name (overrides "
                        "--keypoints' sigmas)")
    s.add_argument("--compare-reference", "--compare-pycocotools", dest="compare_reference",
                   action="store_true",
                   help="also run the matching reference (pycocotools, or xtcocotools for its "
                        "modes) and check the stats are identical")
    _task_args(s)
    s.set_defaults(func=_cmd_eval)

    s = sub.add_parser("infer", help="keypoints on images, folders and videos (top-down on the "
                       "whole image or --boxes; bottom-up needs none): OUT/results.json (COCO "
                       "results, real image ids), drawings, annotated videos; or on detector "
                       "boxes with OKS-NMS and COCO evaluation (--dets / --synthetic)")
    _task_args(s, config_required=True)
    s.add_argument("--boxes", default=None, help="COCO detection json for the inputs: a results "
                   "list (entries matched by file_name, else by image_id) or a COCO dict "
                   "(its images give the ids); default: each whole image is one box")
    s.add_argument("--dets", default=None, help="COCO bbox results json (person detections) "
                   "to evaluate against --gt")
    s.add_argument("--gt", default=None, help="COCO json: with --dets, the keypoint GT; with "
                   "inputs, its images give their ids (matched by file_name)")
    s.add_argument("--image-dir", default=None, help="images of --gt's file_name entries")
    s.add_argument("--synthetic", type=int, default=0,
                   help="evaluate on N synthetic multi-person images with simulated detections")
    s.add_argument("--max-persons", type=int, default=3, help="--synthetic: persons per image")
    s.add_argument("--image-size", type=int, default=128, help="--synthetic: image side")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--det-score-thr", type=float, default=0.0, help="drop boxes below this score")
    s.add_argument("--nms-thr", type=float, default=0.9, help="OKS-NMS threshold (mmpose: 0.9)")
    s.add_argument("--no-nms", action="store_true")
    s.add_argument("--no-flip", action="store_true")
    s.add_argument("--draw-thr", type=float, default=0.3, help="keypoint score drawn from")
    s.add_argument("--no-draw", action="store_true", help="results json only")
    s.add_argument("--frame-id-start", type=int, default=None,
                   help="image_id of a video's first frame, further videos continue (default: "
                        "0, or after the largest image id when images come too)")
    s.add_argument("--out", default="infer_out")
    s.add_argument("inputs", nargs="*", help="image files, folders, video files")
    s.set_defaults(func=_cmd_infer)

    s = sub.add_parser("export", help="a config's model (+ checkpoint) as ONNX (OUT.onnx) or a "
                       "torch.export program (OUT.pt2), raw outputs or --with-decode")
    _task_args(s, config_required=True)
    s.add_argument("--out", required=True, help="model.onnx, or model.pt2 for torch.export")
    s.add_argument("--with-decode", action="store_true",
                   help="decode inside the graph: (keypoints, scores) in input pixels "
                        "(plain torch ops; not for PAF models)")
    s.add_argument("--input-size", type=int, nargs=2, default=None, metavar=("W", "H"),
                   help="input size (default: the config's)")
    s.add_argument("--opset", type=int, default=17)
    s.set_defaults(func=_cmd_export)

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

    s = sub.add_parser("bench", help="short kernel speed table")
    s.add_argument("--images", type=int, default=1000)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_cmd_bench)

    from pyhpe.fitting.cli import add_parser as add_fit_parser
    add_fit_parser(sub)                                     # pyhpe fit (SMPLify / SMPLify-X)
    return p


def main(argv=None) -> int:
    from pyhpe.engine import CheckpointError, ConfigError
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CheckpointError as e:
        print(str(e), file=sys.stderr)
        return 1
    except ConfigError as e:
        print(f"pyhpe {args.command}: bad config: {e}", file=sys.stderr)
        return 2
    except FileNotFoundError as e:   # a data file a config names (relative to the current directory)
        print(f"pyhpe {args.command}: {e} (relative paths are read from {os.getcwd()!r})",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
