"""Inference on images, folders and video files: :class:`Inferencer` (also ``pyhpe infer``).

Top-down models run on person boxes (a COCO detection file: a results list or a COCO dict,
matched to the inputs by ``image_id`` or ``file_name``; without boxes, each whole image is one
box), filtered by score and followed by OKS-NMS; bottom-up models need no boxes. Outputs: a
COCO results list whose ``image_id`` are the real ids (from ``gt``/the detection file's
``images``, else a numeric file name such as COCO's ``000000000785.jpg``, else the input's
1-based position; video frames: ``frame_id_start`` + frame index), so ``pyhpe eval`` accepts
it; drawn images and annotated videos (``mp4v``) in the keypoint set's colours.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def _norm(path: str) -> Tuple[str, ...]:
    return tuple(p for p in os.path.normpath(str(path)).replace("\\", "/").split("/")
                 if p not in ("", "."))


def collect_inputs(inputs) -> List[Tuple[str, str]]:
    """``[(kind, path)]`` (kind ``"image"`` or ``"video"``) of files and folders (their image
    and video files, sorted; not recursive)."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    out = []
    for p in inputs:
        p = os.fspath(p)
        if os.path.isdir(p):
            names = sorted(os.listdir(p))
            files = [os.path.join(p, n) for n in names if n.lower().endswith(IMAGE_EXTS + VIDEO_EXTS)]
            if not files:
                raise FileNotFoundError(f"Inferencer: no image or video files in folder {p!r}")
            out.extend(("video" if f.lower().endswith(VIDEO_EXTS) else "image", f) for f in files)
        elif os.path.isfile(p):
            out.append(("video" if p.lower().endswith(VIDEO_EXTS) else "image", p))
        else:
            raise FileNotFoundError(f"Inferencer: no such file or folder {p!r}")
    return out


class _SuffixIndex:
    """``file_name`` -> value, looked up by the longest matching path suffix of a file."""

    def __init__(self):
        self.map: Dict[Tuple[str, ...], object] = {}

    def add(self, file_name, value):
        parts = _norm(file_name)
        for n in range(1, len(parts) + 1):
            key = parts[-n:]
            # a suffix shared by two different entries is ambiguous; the full name still works
            self.map[key] = value if self.map.get(key, value) == value else _AMBIGUOUS
        return self

    def get(self, path):
        parts = _norm(path)
        for n in range(len(parts), 0, -1):
            v = self.map.get(parts[-n:])
            if v is not None and v is not _AMBIGUOUS:
                return v
        return None


_AMBIGUOUS = object()


def _load_json(obj):
    if obj is None or isinstance(obj, (list, dict)):
        return obj
    with open(obj) as f:
        return json.load(f)


@dataclass
class InferenceResult:
    """``results``: COCO keypoint results (``image_id``, ``category_id``, ``keypoints``,
    ``score``; top-down also ``bbox``/``area``); ``images``: ``{id, file_name, width, height}``
    of every image / video frame seen (frames also ``frame``); ``drawn`` / ``videos``: the
    written files."""
    results: List[Dict] = field(default_factory=list)
    images: List[Dict] = field(default_factory=list)
    drawn: List[str] = field(default_factory=list)
    videos: List[str] = field(default_factory=list)
    num_boxes: int = 0
    unmatched_boxes: int = 0


class Inferencer:
    """A task's model on images, folders and videos.

    Build from a config (path or dict, ``--set`` style ``overrides``) and a checkpoint, or
    from a built task and model (:meth:`from_task`)::

        inf = Inferencer("runs/sb/config.json", "runs/sb/best.pth")
        out = inf(["img/", "clip.mp4"], boxes="detections.json", out_dir="vis")
        out.results                        # COCO results with the real image ids

    ``det_score_thr`` drops boxes below the score; ``nms_thr`` is the OKS-NMS threshold
    (``None``: no NMS); ``draw_thr`` is the keypoint score drawn from.

    Top-down speed: the crops of consecutive images go through the model together in
    batches of ``batch_size`` boxes (the flipped crops in the same forward pass), under
    ``inference_mode``. The default is 32 boxes on a GPU and 8 crops per pass on the CPU (4
    boxes with flip test), where oneDNN runs small batches faster per crop (their
    activations stay in cache: HRNet-W32 at 256x192 takes 44-47 ms per crop in passes of 4-7
    crops and 54-60 ms in passes of 14-28 on a 2-core AMD EPYC). ``channels_last`` puts the
    model and its input in the NHWC layout and ``fuse_bn`` runs a copy of the model with its
    BatchNorms folded into the preceding convolutions (:func:`fold_batchnorm`), on the CPU
    also with each convolution's following addition and ReLU in the same oneDNN call
    (:func:`fuse_conv_pointwise`). Both default to on for a model the Inferencer builds and
    off for a given one (``from_task``), which is never changed.
    """

    def __init__(self, config=None, checkpoint: Optional[str] = None, *, overrides=(),
                 device: str = "auto", task=None, model=None, flip_test: bool = True,
                 det_score_thr: float = 0.0, nms_thr: Optional[float] = 0.9,
                 vis_thr: float = 0.2, draw_thr: float = 0.3, log: Callable = print,
                 batch_size: Optional[int] = None, channels_last: Optional[bool] = None,
                 fuse_bn: Optional[bool] = None):
        from ..tasks import BottomUpPAFTask, TopDownTask, build_task
        if task is None:
            if config is None:
                raise ValueError("Inferencer: give a config (or task= and model=)")
            task = build_task(config, overrides)
        if not isinstance(task, (TopDownTask, BottomUpPAFTask)):
            raise ValueError(f"Inferencer: top-down and bottom-up image tasks only (this one is "
                             f"{task.name!r})")
        self.device = torch.device(device if device != "auto" else
                                   ("cuda" if torch.cuda.is_available() else "cpu"))
        built = model is None
        if model is None:
            model = task.build_model()
            if checkpoint:
                from ..engine import load_weights
                load_weights(model, checkpoint)
            else:
                log("Inferencer: no checkpoint: the model has untrained weights")
        self.task, self.model = task, model.to(self.device).eval()
        self.kset = task.kset
        self.topdown = isinstance(task, TopDownTask)
        self.flip_test, self.det_score_thr, self.nms_thr = flip_test, det_score_thr, nms_thr
        self.vis_thr, self.draw_thr, self.log = vis_thr, draw_thr, log
        if batch_size is None:   # crops per forward pass: 64 on a GPU, 8 on the CPU
            batch_size = 32 if self.device.type == "cuda" else (4 if flip_test else 8)
        if int(batch_size) < 1:
            raise ValueError(f"Inferencer: batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        # channels_last (top-down): oneDNN's / cuDNN's fast convolution layout; by default
        # only for a model the Inferencer built itself (a given model is not changed)
        self.channels_last = self.topdown and (built if channels_last is None
                                               else bool(channels_last))
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        # the forward pass of top-down inference: the model with every BatchNorm that follows
        # a convolution folded into it (a traced copy; by default for built models only)
        self.fuse_bn = self.topdown and (built if fuse_bn is None else bool(fuse_bn))
        self._net = self.model
        if self.fuse_bn:
            self._net = fold_batchnorm(self.model)
            if self.channels_last:
                self._net = self._net.to(memory_format=torch.channels_last)
            if self.device.type == "cpu":
                self._net = fuse_conv_pointwise(self._net)

    @classmethod
    def from_task(cls, task, model, **kwargs) -> "Inferencer":
        return cls(task=task, model=model, **kwargs)

    # ------------------------------------------------------------------ one image
    def predict_image(self, image: np.ndarray, boxes: Optional[Sequence[Dict]] = None,
                      image_id: int = 0) -> List[Dict]:
        """COCO results on one BGR image. Top-down: ``boxes`` (``{"bbox": [x, y, w, h],
        "score"}`` dicts; ``None``: the whole image; ``[]``: no person) after the score
        threshold and OKS-NMS; bottom-up: boxes are not used."""
        if not self.topdown:
            from ..data import BottomUpDataset
            h, w = image.shape[:2]
            ds = BottomUpDataset({"images": [{"id": image_id, "width": w, "height": h}],
                                  "annotations": []}, lambda _i: image, self.kset,
                                 self.task.config.input_size, train=False)
            return self.task.predict(self.model, ds, self.device)
        return self.predict_images([image], [boxes], [image_id])[0]

    def predict_images(self, images: Sequence[np.ndarray], boxes: Sequence[Optional[Sequence[Dict]]],
                       image_ids: Sequence[int]) -> List[List[Dict]]:
        """Top-down COCO results of several BGR images at once (``boxes[i]`` as in
        :meth:`predict_image`): the crops of every box of every image go through the model in
        batches of ``batch_size`` (flip test in the same batch), then one vectorised decode,
        back-transform, rescoring and one OKS-NMS call over all images."""
        if not self.topdown:
            return [self.predict_image(im, b, i) for im, b, i in zip(images, boxes, image_ids)]
        from ..data.transforms import bbox_xywh_to_center_scale, crop_matrix
        import cv2
        W, H = (int(v) for v in self.task.config.input_size)
        aspect = W / H
        udp = bool(getattr(self.task.codec, "udp_transform", False))
        per_image = []
        for image, bxs in zip(images, boxes):
            if bxs is None:
                bxs = [{"bbox": [0.0, 0.0, float(image.shape[1]), float(image.shape[0])],
                        "score": 1.0}]
            per_image.append([b for b in bxs if float(b.get("score", 1.0)) >= self.det_score_thr
                              and float(b["bbox"][2]) > 0 and float(b["bbox"][3]) > 0])
        counts = [len(b) for b in per_image]
        N = sum(counts)
        if N == 0:
            return [[] for _ in images]
        crops = np.empty((N, H, W, 3), np.uint8)
        centers = np.empty((N, 2), np.float32)
        scales = np.empty((N, 2), np.float32)
        bbox = np.empty((N, 4), np.float64)
        box_scores = np.empty(N, np.float64)
        n = 0
        for image, bxs in zip(images, per_image):
            for b in bxs:
                c, sc = bbox_xywh_to_center_scale(b["bbox"], aspect, 1.25)
                cv2.warpAffine(image, crop_matrix(c, sc, 0.0, (W, H), udp), (W, H),
                               dst=crops[n], flags=cv2.INTER_LINEAR)
                centers[n], scales[n] = c, sc
                bbox[n] = [float(v) for v in b["bbox"][:4]]
                box_scores[n] = float(b.get("score", 1.0))
                n += 1
        coords, scores = self._forward(crops)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        kps, final, keep = topdown_postprocess(
            coords, scores, torch.from_numpy(centers), torch.from_numpy(scales),
            torch.from_numpy(box_scores), torch.from_numpy(bbox[:, 2] * bbox[:, 3]),
            (W, H), udp=udp, score_thr=self.task.config.eval.score_thr,
            image_offsets=torch.from_numpy(offsets), nms_thr=self.nms_thr,
            sigmas=self.kset.sigmas, vis_thr=self.vis_thr)
        kps_l = kps.reshape(N, -1).tolist()
        final_l, bbox_l = final.tolist(), bbox.tolist()
        keep_l = keep.tolist()
        out: List[List[Dict]] = [[] for _ in images]
        img_of = np.repeat(np.arange(len(images)), counts)
        for i in keep_l:
            g = int(img_of[i])
            b = bbox_l[i]
            out[g].append({"image_id": int(image_ids[g]), "category_id": 1,
                           "keypoints": kps_l[i], "score": final_l[i], "bbox": b,
                           "area": b[2] * b[3]})
        return out

    def _forward(self, crops: np.ndarray):
        """``(N, H, W, 3)`` uint8 BGR crops -> input-pixel ``(N, K, 2)`` keypoints and ``(N, K)``
        scores (float32, CPU): batches of ``batch_size`` under ``inference_mode``, the flipped
        input in the same forward pass."""
        from ..data.topdown import IMAGENET_MEAN_RGB, IMAGENET_STD_RGB
        model, dev = self.model, self.device
        flip_index = self.kset.flip_index() if self.flip_test else None
        head = getattr(model, "head", None)
        fused = self.flip_test and head is not None and hasattr(head, "predict") \
            and hasattr(model, "codec")
        mean = torch.tensor(IMAGENET_MEAN_RGB, device=dev)
        inv_std = 1.0 / torch.tensor(IMAGENET_STD_RGB, device=dev)
        coords, scores = [], []
        with torch.inference_mode():
            for s in range(0, len(crops), self.batch_size):
                t = torch.from_numpy(crops[s:s + self.batch_size]).to(dev)
                # NHWC uint8 BGR -> normalised RGB NCHW, channels_last in memory (no copy back)
                x = ((t.flip(-1).float() - mean) * inv_std).permute(0, 3, 1, 2)
                if not self.channels_last:
                    x = x.contiguous()
                if fused:
                    B = x.shape[0]
                    xf = model.codec.flip_inputs(x, flip_index)
                    y = self._net(torch.cat([x, xf]))
                    c, sc = head.predict(_rows(y, 0, B), _rows(y, B, 2 * B), flip_index)
                elif head is not None and hasattr(head, "predict") and self._net is not model:
                    c, sc = head.predict(self._net(x), None, flip_index)
                else:
                    c, sc = model.predict(x, flip_test=self.flip_test, flip_index=flip_index)
                coords.append(c.float().cpu())
                scores.append(sc.float().cpu())
        return torch.cat(coords), torch.cat(scores)

    def draw(self, image: np.ndarray, results: List[Dict]) -> np.ndarray:
        from ..vis import draw_pose
        K = self.kset.num_keypoints
        kps = [np.asarray(r["keypoints"], np.float64).reshape(K, 3) for r in results]
        return draw_pose(image, np.stack(kps) if kps else np.zeros((0, K, 3)), self.kset,
                         score_thr=self.draw_thr)

    # ------------------------------------------------------------------ files
    def __call__(self, inputs, boxes=None, gt=None, out_dir: Optional[str] = None,
                 draw: bool = True, frame_id_start: Optional[int] = None,
                 results_file: str = "results.json") -> InferenceResult:
        """Keypoints on image files, folders and videos.

        ``boxes``: a COCO detection file (results list; or a COCO dict whose ``images`` give
        the ids and whose ``annotations`` are the boxes) - entries with ``file_name`` match
        the inputs by path suffix, others by ``image_id``; inputs without an entry get no
        person (top-down), boxes of no input are counted in ``unmatched_boxes``. Without
        ``boxes`` every whole image is one box. ``gt``: a COCO json whose ``images`` give the
        ids of the inputs (matched by ``file_name`` suffix). With ``out_dir``: writes
        ``results_file`` (the COCO results), ``images.json`` and, with ``draw``,
        ``<name>_pose.jpg`` / ``<name>_pose.mp4``. Video frames are numbered from
        ``frame_id_start`` on, across videos (default: 0, or after the largest image id
        when images come too).
        """
        import cv2
        sources = collect_inputs(inputs)
        ids = self._image_ids(sources, gt, boxes)
        by_image = self._boxes_by_image(boxes, sources, ids)
        out = InferenceResult()
        self._used_ids = set()
        if out_dir:
            os.makedirs(out_dir, exist_ok=True)
        used_names = set()
        image_ids = [i for i in ids if i is not None]
        next_frame_id = frame_id_start if frame_id_start is not None else \
            (max(image_ids) + 1 if image_ids else 0)
        pending: List = []     # images read but not predicted yet: (path, stem, id, image, boxes)

        def flush():
            if not pending:
                return
            if self.topdown:
                res_all = self.predict_images([p[3] for p in pending], [p[4] for p in pending],
                                              [p[2] for p in pending])
            else:
                res_all = [self.predict_image(p[3], p[4], p[2]) for p in pending]
            for (path, stem, image_id, img, _), res in zip(pending, res_all):
                out.results.extend(res)
                out.images.append({"id": image_id, "file_name": path, "width": img.shape[1],
                                   "height": img.shape[0]})
                if out_dir and draw:
                    p = os.path.join(out_dir, stem + "_pose.jpg")
                    cv2.imwrite(p, self.draw(img, res))
                    out.drawn.append(p)
            pending.clear()

        pending_boxes = 0
        for (kind, path), image_id in zip(sources, ids):
            stem = self._out_stem(path, used_names)
            if kind == "image":
                img = cv2.imread(path, cv2.IMREAD_COLOR)
                if img is None:
                    raise FileNotFoundError(f"Inferencer: cannot read image {path!r}")
                bxs = self._boxes_for(by_image, image_id, boxes)
                pending.append((path, stem, image_id, img, bxs))
                pending_boxes += 1 if bxs is None else len(bxs)
                # a batch's worth of boxes (or a few images) at a time, in input order
                if pending_boxes >= self.batch_size or len(pending) >= 16:
                    flush()
                    pending_boxes = 0
            else:
                flush()
                pending_boxes = 0
                next_frame_id = self._video(path, out, by_image, boxes, next_frame_id,
                                            os.path.join(out_dir, stem + "_pose.mp4")
                                            if out_dir and draw else None)
        flush()
        out.num_boxes = sum(len(v) for v in by_image.values())
        out.unmatched_boxes = sum(len(v) for k, v in by_image.items() if k not in self._used_ids)
        if out_dir:
            with open(os.path.join(out_dir, results_file), "w") as f:
                json.dump(out.results, f)
            with open(os.path.join(out_dir, "images.json"), "w") as f:
                json.dump(out.images, f)
        self.log(f"{len(out.results)} poses on {len(out.images)} images/frames"
                 + (f" from {out.num_boxes} boxes" if boxes is not None else "")
                 + (f" ({out.unmatched_boxes} boxes matched no input)" if out.unmatched_boxes else "")
                 + (f"; written to {out_dir}/" if out_dir else ""))
        return out

    def _video(self, path, out: InferenceResult, by_image, boxes, first_id: int,
               video_out: Optional[str]) -> int:
        import cv2
        cap = cv2.VideoCapture(path)
        if not cap.isOpened():
            raise FileNotFoundError(f"Inferencer: cannot open video {path!r}")
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        writer, frame = None, 0
        try:
            while True:
                ok, img = cap.read()
                if not ok:
                    break
                image_id = first_id + frame
                res = self.predict_image(img, self._boxes_for(by_image, image_id, boxes), image_id)
                out.results.extend(res)
                out.images.append({"id": image_id, "file_name": path, "frame": frame,
                                   "width": img.shape[1], "height": img.shape[0]})
                if video_out:
                    if writer is None:
                        writer = cv2.VideoWriter(video_out, cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                                 (img.shape[1], img.shape[0]))
                        if not writer.isOpened():
                            raise RuntimeError(f"Inferencer: cannot write video {video_out!r}")
                    writer.write(self.draw(img, res))
                frame += 1
        finally:
            cap.release()
            if writer is not None:
                writer.release()
        if writer is not None:
            out.videos.append(video_out)
        if frame == 0:
            raise ValueError(f"Inferencer: no frames could be read from {path!r}")
        return first_id + frame

    @staticmethod
    def _out_stem(path, used) -> str:
        stem = os.path.splitext(os.path.basename(path))[0]
        parent = os.path.basename(os.path.dirname(os.path.abspath(path)))
        if stem in used and parent:
            stem = f"{parent}_{stem}"
        base, n = stem, 1
        while stem in used:
            stem, n = f"{base}_{n}", n + 1
        used.add(stem)
        return stem

    # ------------------------------------------------------------------ ids and boxes
    def _image_ids(self, sources, gt, boxes) -> List[Optional[int]]:
        """The id of each image input (``None`` for videos: their frames are numbered)."""
        index = _SuffixIndex()
        for src in (_load_json(gt), _load_json(boxes)):
            if isinstance(src, dict):
                for im in src.get("images", []):
                    index.add(im["file_name"], int(im["id"]))
        images = [p for k, p in sources if k == "image"]
        ids = [index.get(p) for p in images]
        stems = [os.path.splitext(os.path.basename(p))[0] for p in images]
        numeric = [int(s) if s.isdigit() else None for s in stems]
        taken = [i for i in ids if i is not None]
        if None not in numeric and len(set(numeric)) == len(numeric) \
                and not set(numeric) & set(taken):
            fallback = numeric                     # COCO / CrowdPose style file names
        else:
            fallback = list(range(1, len(images) + 1))
        ids = [i if i is not None else f for i, f in zip(ids, fallback)]
        if len(set(ids)) != len(ids):
            raise ValueError("Inferencer: two inputs map to the same image id; give a GT file "
                             "(gt=) whose images name them")
        it = iter(ids)
        return [next(it) if k == "image" else None for k, _ in sources]

    def _boxes_by_image(self, boxes, sources, ids) -> Dict:
        """image id -> boxes (key ``None``: entries whose ``file_name`` matches no input)."""
        if boxes is None:
            return {}
        if not self.topdown:
            self.log("Inferencer: bottom-up model: the boxes are not used")
            return {}
        dets = _load_json(boxes)
        if isinstance(dets, dict):
            dets = [dict(a, score=a.get("score", 1.0)) for a in dets.get("annotations", [])]
        names = _SuffixIndex()
        for (kind, p), i in zip(sources, ids):
            if kind == "image":
                names.add(p, i)
        out: Dict = {}
        for d in dets:
            if int(d.get("category_id", 1)) != 1:
                continue
            if "file_name" in d:
                image_id = names.get(d["file_name"])
            else:
                image_id = int(d["image_id"])
            out.setdefault(image_id, []).append({"bbox": [float(v) for v in d["bbox"]],
                                                 "score": float(d.get("score", 1.0))})
        return out

    def _boxes_for(self, by_image, image_id, boxes):
        if boxes is None or not self.topdown:
            return None
        self._used_ids.add(image_id)
        return by_image.get(image_id, [])


class _Forward(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)


def fold_batchnorm(model: torch.nn.Module) -> torch.nn.Module:
    """An inference copy of ``model``'s forward pass (``model(x)``) with each BatchNorm that
    directly follows a convolution folded into the convolution's weights and bias (traced by
    ``torch.fx``): the same outputs to float rounding, one memory pass less per layer. A
    model that cannot be traced is returned as it is. Later changes to ``model``'s weights do
    not reach the copy."""
    from torch.fx.experimental.optimization import fuse
    was_training = model.training
    try:
        return fuse(_Forward(model.eval()), inplace=False)
    except Exception:   # data-dependent control flow, untraceable modules: keep the model
        return model
    finally:
        model.train(was_training)


def _has_conv_pointwise() -> bool:
    op = getattr(getattr(torch.ops, "mkldnn", None), "_convolution_pointwise", None)
    return op is not None and torch.backends.mkldnn.is_available()


class _ConvPointwise(torch.nn.Module):
    """A 2-D convolution with the addition and / or ReLU that follow it. On the CPU (float32,
    no autograd) one oneDNN call applies them to the convolution's output while it is in
    cache (``torch.ops.mkldnn._convolution_pointwise``; the same float operations, so the
    same bits as the separate ops, which run everywhere else)."""

    def __init__(self, conv: torch.nn.Conv2d, add: bool, relu: bool):
        super().__init__()
        self.conv, self.add, self.relu = conv, add, relu
        self._packed = None   # the weight in oneDNN's blocked layout (made at the first call)

    def _weight(self, x):
        """The weight reordered once into oneDNN's layout for this convolution (reordering
        it at every call costs low-resolution layers ~15%); the plain weight where this torch
        cannot. Read-only inference use: later changes to ``conv.weight`` are not seen."""
        if self._packed is None:
            c = self.conv
            try:
                with torch.inference_mode(False), torch.no_grad():
                    self._packed = torch._C._nn.mkldnn_reorder_conv2d_weight(
                        c.weight.detach().contiguous().to_mkldnn(), list(c.padding),
                        list(c.stride), list(c.dilation), c.groups, list(x.shape))
            except (AttributeError, RuntimeError, NotImplementedError):
                self._packed = False
        return self._packed if self._packed is not False else self.conv.weight

    def _fused(self, x, other) -> bool:
        w = self.conv.weight
        if not (x.device.type == "cpu" and x.dtype == w.dtype == torch.float32 and x.dim() == 4
                and not (torch.is_grad_enabled() and (x.requires_grad or w.requires_grad))):
            return False
        if not self.add:
            return True
        c = self.conv
        size = [x.shape[0], c.out_channels] + [
            (x.shape[2 + i] + 2 * c.padding[i] - c.dilation[i] * (c.kernel_size[i] - 1) - 1)
            // c.stride[i] + 1 for i in range(2)]
        return (isinstance(other, torch.Tensor) and list(other.shape) == size and
                other.dtype == torch.float32 and other.device.type == "cpu" and
                not (torch.is_grad_enabled() and other.requires_grad))

    def forward(self, x, other=None):
        c = self.conv
        if self._fused(x, other):
            args = (self._weight(x), c.bias, list(c.padding), list(c.stride), list(c.dilation),
                    c.groups)
            if self.add:
                return torch.ops.mkldnn._convolution_pointwise.binary(
                    x, other, *args, "add", None, "relu" if self.relu else None, [], "")
            return torch.ops.mkldnn._convolution_pointwise(x, *args, "relu" if self.relu
                                                           else "none", [], "")
        y = c(x)
        if self.add:
            y = y + other
        return torch.relu(y) if self.relu else y


def fuse_conv_pointwise(gm: torch.nn.Module) -> torch.nn.Module:
    """``gm`` (a ``torch.fx`` GraphModule, e.g. from :func:`fold_batchnorm`) with each
    ``Conv2d`` that has one use replaced by one :class:`_ConvPointwise`, together with the
    ``+ other`` and / or ReLU that use it (in place; returned). A module that is no
    GraphModule, or a torch without oneDNN's fused convolution, is returned unchanged."""
    import operator
    from torch.fx import GraphModule
    if not isinstance(gm, GraphModule) or not _has_conv_pointwise():
        return gm
    mods = dict(gm.named_modules())

    def is_relu(n):
        return ((n.op == "call_module" and isinstance(mods.get(n.target), torch.nn.ReLU)) or
                (n.op == "call_function" and n.target in (torch.relu, torch.nn.functional.relu)
                 and len(n.args) == 1 and not n.kwargs.get("inplace", False)))

    count = 0
    for node in list(gm.graph.nodes):
        conv = mods.get(node.target) if node.op == "call_module" else None
        if not (type(conv) is torch.nn.Conv2d and conv.padding_mode == "zeros" and
                not isinstance(conv.padding, str) and len(node.users) == 1 and
                len(node.args) == 1 and not node.kwargs):
            continue
        (user,) = node.users
        other, last = None, node
        if (user.op == "call_function" and user.target in (operator.add, torch.add) and
                len(user.args) == 2 and not user.kwargs):
            a, b = user.args
            other = b if a is node else a
            if not isinstance(other, torch.fx.Node) or other is node:
                continue
            last = user
            if len(user.users) == 1 and is_relu(next(iter(user.users))):
                last = next(iter(user.users))
        elif is_relu(user):
            last = user
        name = f"pointwise_{count}"
        count += 1
        gm.add_submodule(name, _ConvPointwise(conv, other is not None, is_relu(last)))
        with gm.graph.inserting_before(last):
            fused = gm.graph.call_module(name, (node.args[0],) if other is None
                                         else (node.args[0], other))
        last.replace_all_uses_with(fused)
        for dead in dict.fromkeys([last, user if other is not None else last, node]):
            gm.graph.erase_node(dead)
    if count:
        gm.graph.lint()
        gm.delete_all_unused_submodules()
        gm.recompile()
    return gm


def _rows(outputs, start: int, stop: int):
    """Rows ``start:stop`` of a model's outputs (a tensor, or tuples / lists / dicts of them)."""
    if isinstance(outputs, torch.Tensor):
        return outputs[start:stop]
    if isinstance(outputs, dict):
        return type(outputs)((k, _rows(v, start, stop)) for k, v in outputs.items())
    if isinstance(outputs, tuple) and hasattr(outputs, "_fields"):
        return type(outputs)(*(_rows(v, start, stop) for v in outputs))
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(_rows(v, start, stop) for v in outputs)
    return outputs


def topdown_postprocess(coords, scores, centers, scales, box_scores, areas, input_size, *,
                        udp: bool = False, score_thr: float = 0.2,
                        image_offsets=None, nms_thr: Optional[float] = 0.9, sigmas=None,
                        vis_thr: float = 0.2):
    """Decoded crops -> image keypoints, rescored, OKS-NMS'd, for a ragged batch of images in
    two op calls (no per-instance Python).

    ``coords (N, K, 2)`` input-pixel keypoints and ``scores (N, K)`` of the crops, their
    ``centers`` / ``scales (N, 2)``, detector ``box_scores (N,)`` and box ``areas (N,)``
    (tensors, all on one device, or arrays); ``image_offsets (M + 1,)`` the rows of each image
    (default: one image). Returns ``(keypoints (N, K, 3) float64 numpy [x, y, score], final
    scores (N,) float64 numpy, keep (P,) int64 numpy)``: :func:`pyhpe.ops.topdown_rescore`
    (the crop's inverse and mmpose's top-down rescoring: box score x the mean of the keypoint
    scores above ``score_thr``, 0 when none) and the rows kept by :func:`pyhpe.ops.oks_nms`
    (per image, descending score; all rows when ``nms_thr`` is None). Non-finite inputs raise
    a ValueError naming them."""
    from .. import ops
    from ..ops._common import check_finite
    coords = torch.as_tensor(coords)
    kps, final = ops.topdown_rescore(coords, scores, centers, scales, box_scores, input_size,
                                     udp=udp, score_thr=score_thr, validate=False)
    kps_np, final_np = kps.cpu().numpy(), final.cpu().numpy()
    # The op propagates NaN / inf; one check of its outputs covers every input it read.
    if not (np.isfinite(kps_np).all() and np.isfinite(final_np).all()):
        for name, t in (("coords", coords), ("scores", scores), ("centers", centers),
                        ("scales", scales), ("box_scores", box_scores)):
            check_finite(torch.as_tensor(t), name, "topdown_postprocess")
        raise ValueError("topdown_postprocess: the image keypoints overflow (huge 'coords' or "
                         "'scales')")
    N = kps_np.shape[0]
    if nms_thr is None or N == 0:
        return kps_np, final_np, np.arange(N, dtype=np.int64)
    areas = torch.as_tensor(areas, device=kps.device).double()
    check_finite(areas, "areas", "topdown_postprocess")
    if sigmas is not None:
        sig = (sigmas.detach().cpu().numpy() if isinstance(sigmas, torch.Tensor)
               else np.asarray(sigmas, np.float64))
        if not (np.isfinite(sig).all() and (sig > 0).all()):
            raise ValueError(f"topdown_postprocess: 'sigmas' must be positive and finite, got "
                             f"{sig.tolist()}")
    keep = ops.oks_nms(kps, final, areas, thr=nms_thr, sigmas=sigmas, vis_thr=vis_thr,
                       image_offsets=image_offsets, validate=False).keep
    return kps_np, final_np, keep.cpu().numpy()


__all__ = ["IMAGE_EXTS", "InferenceResult", "Inferencer", "VIDEO_EXTS", "collect_inputs",
           "fold_batchnorm", "fuse_conv_pointwise", "topdown_postprocess"]
