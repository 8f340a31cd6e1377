"""Top-down inference (flip test) and COCO AP through one switchable function."""
from __future__ import annotations

import contextlib
import io
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ..data.topdown import collate_topdown, normalize_images, to_image_space


def coco_keypoint_stats(gt, results: List[Dict], sigmas=None) -> np.ndarray:
    """The 10 COCO keypoint stats (AP, AP50, AP75, APm, APl, AR, AR50, AR75, ARm, ARl).

    Uses pyhpe's evaluator (:class:`pyhpe.eval.COCOKeypointEval`) when available, else
    pycocotools. ``gt`` is a COCO dict, a json path or a pycocotools COCO object.
    """
    try:
        from pyhpe.eval import COCOKeypointEval  # noqa: WPS433
    except ImportError:
        COCOKeypointEval = None
    if COCOKeypointEval is not None:
        return np.asarray(COCOKeypointEval(gt, results, sigmas=sigmas).run(), dtype=np.float64)
    return pycocotools_keypoint_stats(gt, results, sigmas)


def pycocotools_keypoint_stats(gt, results: List[Dict], sigmas=None) -> np.ndarray:
    """The same 10 stats computed by pycocotools' COCOeval (silenced)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    if not results:
        return np.zeros(10)
    with contextlib.redirect_stdout(io.StringIO()):
        if isinstance(gt, COCO):
            coco = gt
        else:
            coco = COCO()
            if isinstance(gt, str):
                import json
                with open(gt) as f:
                    gt = json.load(f)
            coco.dataset = gt
            coco.createIndex()
        dt = coco.loadRes([dict(r) for r in results])
        ev = COCOeval(coco, dt, "keypoints")
        if sigmas is not None:
            ev.params.kpt_oks_sigmas = np.asarray(sigmas, np.float64)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats, dtype=np.float64)


def flip_back_fractional(heatmaps: torch.Tensor, flip_index: Sequence[int], shift: float) -> torch.Tensor:
    """Mirror ``(B, K, H, W)`` heatmaps of a flipped input back, swap left/right channels and
    move them ``shift`` pixels right (linear interpolation).

    An input flipped as ``x' = W_in - 1 - x`` gives back-flipped peaks at ``h - (1 - 1/s)`` for
    heatmap stride ``s``, so ``shift = 1 - 1/s`` re-aligns them exactly (HRNet's
    ``shift_heatmap`` rounds this to one pixel).
    """
    return shift_last_dim(heatmaps.flip(-1)[:, list(flip_index)], shift)


def shift_last_dim(t: torch.Tensor, shift: float) -> torch.Tensor:
    """Move the content of the last dimension by ``shift`` (may be fractional or negative)
    with linear interpolation and edge replication."""
    if shift == 0 or t.shape[-1] == 0:
        return t
    n = t.shape[-1]
    src = torch.arange(n, dtype=torch.float32, device=t.device) - float(shift)
    src = src.clamp(0, n - 1)
    lo = src.floor().long()
    hi = (lo + 1).clamp(max=n - 1)
    a = (src - lo.float()).to(t.dtype)
    return t[..., lo] * (1 - a) + t[..., hi] * a


@torch.no_grad()
def predict_topdown(model: torch.nn.Module, dataset, codec, flip_test: bool = True,
                    batch_size: int = 64, device="cpu", score_thr: float = 0.2,
                    autocast_dtype=None) -> List[Dict]:
    """COCO result dicts for every record of a :class:`TopDownDataset` (no augmentation).

    Scores follow mmpose's top-down rescoring: box score x mean of the keypoint scores above
    ``score_thr``. Heatmap models are decoded with ``codec`` (MSRA/DARK); SimCC models with
    a :class:`SimCCLabel` codec.
    """
    model.eval()
    flip_index = dataset.kset.flip_index()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False,
                                         collate_fn=collate_topdown, num_workers=0)
    results = []
    is_simcc = getattr(model, "output_kind", "heatmap") == "simcc"
    for batch in loader:
        x = normalize_images(batch["image"]).to(device)
        ctx = torch.autocast(device_type=torch.device(device).type, dtype=autocast_dtype) \
            if autocast_dtype is not None else contextlib.nullcontext()
        with ctx:
            out = model(x)
            out_f = model(x.flip(-1)) if flip_test else None
        if is_simcc:
            sx, sy = out[0].float(), out[1].float()
            if flip_test:
                # x' = W - 1 - x puts the mirrored peak split_ratio - 1 bins too far right
                fx = shift_last_dim(out_f[0].float().flip(-1)[:, flip_index], 1.0 - codec.split_ratio)
                fy = out_f[1].float()[:, flip_index]
                sx, sy = (sx + fx) / 2, (sy + fy) / 2
            coords, scores = codec.decode(sx, sy)
        else:
            hm = out.float()
            if flip_test:
                s = codec.scale_factor[0]
                hm = (hm + flip_back_fractional(out_f.float(), flip_index, 1.0 - 1.0 / s)) / 2
            coords, scores = codec.decode(hm)
        coords = to_image_space(coords.cpu(), batch["center"], batch["scale"], dataset.input_size)
        scores = scores.cpu()
        for i in range(coords.shape[0]):
            sc = scores[i].numpy()
            valid = sc > score_thr
            kp_score = float(sc[valid].mean()) if valid.any() else 0.0
            kps = np.concatenate([coords[i].numpy(), sc[:, None]], 1)
            results.append({"image_id": int(batch["image_id"][i]), "category_id": 1,
                            "keypoints": [float(v) for v in kps.reshape(-1)],
                            "score": float(batch["score"][i]) * kp_score})
    return results
