"""Seeded synthetic COCO keypoint GT + results that exercise every evaluator quirk.

Used by the tests (against pycocotools), the benchmarks and the demo. Nothing is
downloaded: GT persons are random boxes with keypoints inside, results are noisy copies
plus false positives.
"""
from __future__ import annotations

import numpy as np


def synthetic_keypoint_eval_set(num_images: int = 100, seed: int = 0, *, num_keypoints: int = 17,
                                max_people: int = 8, quirks: bool = True,
                                with_bbox: bool = True, crowd_index: bool = False):
    """Returns ``(gt_dict, results_list)`` in COCO format.

    quirks: crowds, num_keypoints == 0, GTs with no visible keypoint, tied scores,
        images with > 20 results, images with no GT, empty images, small/medium/large areas.
    with_bbox: whether results carry a 'bbox' (changes COCO.loadRes's area rule).
    crowd_index: add CrowdPose's per-image 'crowdIndex'.
    """
    rng = np.random.default_rng(seed)
    K = num_keypoints
    images, anns, results = [], [], []
    ann_id = 1
    for img_id in range(1, num_images + 1):
        img = {"id": int(img_id * 3 + 1), "width": 640, "height": 480}
        if crowd_index:
            img["crowdIndex"] = float(rng.random())
        images.append(img)
        n_people = int(rng.integers(0, max_people + 1))
        if quirks and rng.random() < 0.05:
            n_people = 0
        people = []
        for _ in range(n_people):
            scale = float(np.exp(rng.uniform(np.log(12), np.log(300))))
            w, h = scale * rng.uniform(0.4, 0.8), scale
            x, y = rng.uniform(0, 640 - w / 2), rng.uniform(0, 480 - h / 2)
            kx = x + rng.random(K) * w
            ky = y + rng.random(K) * h
            v = rng.choice([0, 1, 2], size=K, p=[0.25, 0.15, 0.6]).astype(float)
            if quirks and rng.random() < 0.08:
                v[:] = 0
            kx, ky = np.where(v > 0, kx, 0.0), np.where(v > 0, ky, 0.0)
            kp = np.stack([np.round(kx, 2), np.round(ky, 2), v], 1).reshape(-1)
            num_kp = int((v > 0).sum())
            if quirks and num_kp == 0 and rng.random() < 0.5:
                num_kp = 3  # inconsistent annotation: OKS falls back to the GT box
            crowd = int(quirks and rng.random() < 0.05)
            area = float(np.round(w * h * rng.uniform(0.5, 0.9), 3))
            anns.append({"id": ann_id, "image_id": img["id"], "category_id": 1,
                         "keypoints": kp.tolist(), "num_keypoints": num_kp, "iscrowd": crowd,
                         "area": area, "bbox": [float(np.round(x, 2)), float(np.round(y, 2)),
                                                float(np.round(w, 2)), float(np.round(h, 2))]})
            ann_id += 1
            people.append((kx, ky, v, w, h, x, y))
        n_dets = 0
        for kx, ky, v, w, h, x, y in people:
            for _ in range(int(rng.integers(0, 3))):
                noise = rng.normal(0, rng.uniform(0.01, 0.15) * h, size=(2, K))
                results.append(_result(img["id"], kx + noise[0], ky + noise[1], rng, with_bbox))
                n_dets += 1
        n_fp = int(rng.integers(0, 4))
        if quirks and rng.random() < 0.1:
            n_fp = 25  # more than maxDets=20 in one image
        for _ in range(n_fp):
            cx, cy, s = rng.uniform(0, 640), rng.uniform(0, 480), rng.uniform(10, 200)
            results.append(_result(img["id"], cx + rng.normal(0, s, K), cy + rng.normal(0, s, K),
                                   rng, with_bbox))
    if quirks and results:
        # Tied scores across and within images.
        for i in rng.choice(len(results), size=len(results) // 5, replace=False):
            results[i]["score"] = float(np.round(results[i]["score"], 1))
    gt = {"images": images, "annotations": anns,
          "categories": [{"id": 1, "name": "person", "supercategory": "person",
                          "keypoints": [f"kp{k}" for k in range(K)], "skeleton": []}]}
    return gt, results


def _result(image_id, x, y, rng, with_bbox):
    K = len(x)
    s = rng.uniform(0.05, 1.0, size=K)
    kp = np.stack([np.round(x, 2), np.round(y, 2), np.round(s, 3)], 1).reshape(-1)
    r = {"image_id": image_id, "category_id": 1, "keypoints": kp.tolist(),
         "score": float(rng.uniform(0.05, 1.0))}
    if with_bbox:
        x0, y0 = float(np.min(x)), float(np.min(y))
        r["bbox"] = [x0, y0, float(np.max(x)) - x0, float(np.max(y)) - y0]
    return r
