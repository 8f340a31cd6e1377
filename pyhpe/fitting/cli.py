"""``pyhpe fit``: SMPLify / SMPLify-X over a keypoint file, results to an npz."""
from __future__ import annotations

import json
import os
import time

import numpy as np


def read_openpose(data, contour: bool = False):
    """An OpenPose ``*_keypoints.json`` dict -> (N, 118 or 135, 3) ``[x, y, score]``: per
    person BODY_25, left hand 21, right hand 21, the face's 51 inner points (68-point face
    points 17..67) and with ``contour`` its 17 contour points, as SMPLify-X's reader
    (``openpose118`` / ``openpose135`` layouts). Missing hands / face are zero (confidence 0)."""
    people = data.get("people")
    if not isinstance(people, list):
        raise ValueError("pyhpe fit: an OpenPose json needs a 'people' list")

    def part(person, key, n):
        a = np.asarray(person.get(key) or [], np.float64).reshape(-1, 3)
        if len(a) == 0:
            return np.zeros((n, 3))
        if len(a) != n:
            raise ValueError(f"pyhpe fit: OpenPose {key!r} has {len(a)} points, expected {n}")
        return a
    out = []
    for p in people:
        face = part(p, "face_keypoints_2d", 70)[:68] if p.get("face_keypoints_2d") else \
            np.zeros((68, 3))
        rows = [part(p, "pose_keypoints_2d", 25), part(p, "hand_left_keypoints_2d", 21),
                part(p, "hand_right_keypoints_2d", 21), face[17:68]]
        if contour:
            rows.append(face[:17])
        out.append(np.concatenate(rows))
    return np.asarray(out).reshape(len(out), 135 if contour else 118, 3)


def read_keypoints(path, layout: str = "coco"):
    """2-D keypoints of a file -> ``(keypoints (N, K, 2), confidence (N, K), image_ids or
    None)``: a COCO results list (``keypoints`` ``[x, y, score] * K``, ``image_id``), a COCO
    annotation dict (its ``annotations``; visibility > 0 = confidence 1), an OpenPose
    ``*_keypoints.json`` (``people``; see :func:`read_openpose`, ``layout`` ``openpose135``
    keeps the face contour), or ``.npy`` / ``.npz`` (``keypoints``) arrays (N, K, 2) or
    (N, K, 3)."""
    who = "pyhpe fit"
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{who}: no such keypoint file {path!r}")
    if path.endswith((".npy", ".npz")):
        data = np.load(path, allow_pickle=False)
        arr = data["keypoints"] if path.endswith(".npz") else data
        arr = np.asarray(arr, np.float64)
        ids = None
    else:
        with open(path) as f:
            data = json.load(f)
        visibility = False
        if isinstance(data, dict) and "people" in data:
            arr = read_openpose(data, contour=layout == "openpose135")
            return arr[..., :2], arr[..., 2], None
        if isinstance(data, dict):
            data, visibility = data.get("annotations"), True
        if not isinstance(data, list) or not data or \
                not all(isinstance(d, dict) and "keypoints" in d for d in data):
            raise ValueError(f"{who}: {path!r} is neither a COCO results list nor a COCO "
                             f"annotation file with keypoints")
        arr = np.asarray([d["keypoints"] for d in data], np.float64).reshape(len(data), -1, 3)
        if visibility:
            arr[..., 2] = (arr[..., 2] > 0).astype(np.float64)
        ids = [d.get("image_id") for d in data]
    if arr.ndim != 3 or arr.shape[-1] not in (2, 3):
        raise ValueError(f"{who}: keypoints in {path!r} have shape {arr.shape}, expected "
                         f"(N, K, 2) or (N, K, 3)")
    conf = arr[..., 2] if arr.shape[-1] == 3 else np.ones(arr.shape[:2])
    return arr[..., :2], conf, ids


def run(args) -> int:
    try:
        return _run(args)
    except (ValueError, ImportError) as e:
        from pyhpe.engine.config import ConfigError
        if isinstance(e, ConfigError):
            raise
        raise SystemExit(str(e) if str(e).startswith("pyhpe") else f"pyhpe fit: {e}")


def _run(args) -> int:
    from pyhpe.engine.config import ConfigError

    from .smplify import SMPLify
    options = {"method": args.method, "keypoints": args.layout}
    if args.prior:
        options.update(pose_prior="gmm", prior_path=args.prior)
    elif args.vposer:
        options.update(pose_prior="vposer", vposer_path=args.vposer)
    else:
        options["pose_prior"] = "l2"
    for item in args.set or []:
        key, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects KEY=VALUE (e.g. iterations=10), got {item!r}")
        try:
            options[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            options[key.strip()] = text
    kpts, conf, ids = read_keypoints(args.keypoints, args.layout)
    camera = {"image_size": tuple(args.image_size)}
    if args.focal is not None:
        camera["focal_length"] = args.focal
    fitter = SMPLify(args.model, device=args.device, **options)
    t0 = time.time()
    results = []
    for s in range(0, len(kpts), args.batch):
        results.append(fitter.fit(kpts[s:s + args.batch], conf[s:s + args.batch], camera=camera))
    keys = ["global_orient", "body_pose", "betas", "transl", "joints", "keypoints_3d",
            "keypoints_2d", "loss", "flipped"] + (["vertices"] if args.save_vertices else [])
    keys += list(fitter.extra)
    if "left_hand_pose" in fitter.extra:
        keys += ["left_hand_pose_aa", "right_hand_pose_aa"]
    out = {k: np.concatenate([getattr(r, k) for r in results]) for k in keys}
    if ids is not None and all(isinstance(i, (int, np.integer)) for i in ids):
        out["image_id"] = np.asarray(ids, np.int64)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    np.savez(args.out, **out)
    err = np.linalg.norm(out["keypoints_2d"] - kpts, axis=-1)
    w = (conf > 0).astype(np.float64)
    mean_err = float((err * w).sum() / max(w.sum(), 1.0))
    print(f"pyhpe fit: {len(kpts)} persons, {fitter.cfg.method} with the "
          f"{fitter.cfg.pose_prior} pose prior, {time.time() - t0:.1f} s; mean reprojection "
          f"error {mean_err:.2f} px -> {args.out}")
    return 0


def add_parser(sub):
    """Register ``pyhpe fit`` on an argparse sub-parser set."""
    s = sub.add_parser("fit", help="SMPLify / SMPLify-X: the SMPL / SMPL-X body model fitted "
                       "to 2-D keypoints (needs `pip install smplx` and your model file)")
    s.add_argument("--model", required=True, help="SMPL or SMPL-X model file (.pkl / .npz; "
                   "licensed, never downloaded; the type is read off the file)")
    s.add_argument("--keypoints", required=True, help="COCO results / annotation json, "
                   "OpenPose *_keypoints.json, or .npy / .npz (N, K, 2|3)")
    s.add_argument("--image-size", type=int, nargs=2, required=True, metavar=("W", "H"))
    s.add_argument("--focal", type=float, default=None, help="focal length px (default 5000)")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--prior", default=None, help="SMPLify's MoG pose prior (gmm_08.pkl)")
    g.add_argument("--vposer", default=None, help="SMPLify-X's VPoser v1 snapshot (.pt)")
    s.add_argument("--method", default="smplifyx", choices=["smplify", "smplifyx"])
    s.add_argument("--layout", default="coco", help="keypoint layout of the file: coco | smpl "
                   "(SMPL); coco | coco_wholebody | openpose118 | openpose135 (SMPL-X)")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="an SMPLifyConfig option (json value), e.g. iterations=10")
    s.add_argument("--batch", type=int, default=16, help="persons fitted together")
    s.add_argument("--device", default="cpu")
    s.add_argument("--save-vertices", action="store_true")
    s.add_argument("--out", default="fit_out/fit.npz")
    s.set_defaults(func=run)
    return s
