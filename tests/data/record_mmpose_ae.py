"""Record mmpose 1.3.2 Associative Embedding decoding outputs into mmpose_ae.npz.

Run from the repository root with mmpose importable (its stubs loaded) and the classic
munkres package (1.1.x, Brian Clapper's algorithm, the one mmpose and pose-ae-train were
written against) first on the path:

    PYTHONPATH=/path/to/munkres-1.1.4:/path/to/mmpose python -c \
        "exec(open('mmpose_stubs.py').read()); exec(open('tests/data/record_mmpose_ae.py').read())"

The fixture holds small crowded scenes (maps stored as float16, exact in float32), the
options of each case and mmpose's ragged outputs (concatenated, with per-image counts), in
heatmap pixels (scale_factor forced to 1), plus tie-heavy cost matrices with the munkres
package's assignments.
"""
import munkres
import numpy as np
import torch
from mmpose.codecs import AssociativeEmbedding

assert munkres.__version__.startswith("1.1"), munkres.__version__


def scene(rng, B, K, H, W, people, L, tag_step):
    yy, xx = np.mgrid[0:H, 0:W]
    hm = (rng.random((B, K, H, W)) * 0.05).astype(np.float32)
    tags = (rng.normal(size=(B, K * L, H, W)) * 0.4).astype(np.float32)
    for b in range(B):
        for p in range(people):
            tag = (p * tag_step + rng.normal(size=L) * 0.1)
            for k in range(K):
                if rng.random() < 0.2:
                    continue
                x, y = rng.uniform(0, W - 1), rng.uniform(0, H - 1)
                g = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 2.0) * rng.uniform(0.3, 1.0)
                hm[b, k] = np.maximum(hm[b, k], g)
                m = g > 0.1
                for l in range(L):
                    tags[b, l * K + k][m] = tag[l] + rng.normal(size=m.sum()) * 0.1
    # tags on a 1/32 grid (compresses; exact in float16 and float32)
    return hm.astype(np.float16), (np.round(tags * 32) / 32).astype(np.float16)


SCENE_STEPS = (0.6, 1.5)  # tag spacing of the people: crowded (rounded-cost ties), spread
CASES = [  # (scene, L, options); L = 1 uses the scene's first K tag channels
    (0, 1, dict(order=[0, 1, 2, 3], topk=8, nms=5, kthr=0.1, tthr=1.0, maxi=-1, udp=0, shift=0.0)),
    (0, 2, dict(order=[2, 0, 3, 1], topk=8, nms=3, kthr=0.2, tthr=1.0, maxi=-1, udp=0, shift=0.5)),
    (1, 2, dict(order=[1, 3, 0, 2], topk=6, nms=5, kthr=0.1, tthr=0.8, maxi=3, udp=1, shift=0.0)),
    (1, 1, dict(order=[3, 2, 1, 0], topk=10, nms=3, kthr=0.12, tthr=1.5, maxi=-1, udp=1, shift=0.5)),
]

out = {}
B, K, H, W, P = 2, 4, 12, 16, 5
for s, step in enumerate(SCENE_STEPS):
    out[f"s{s}_heatmaps"], out[f"s{s}_tags"] = scene(np.random.default_rng(100 + s), B, K, H, W,
                                                     P, 2, step)
for i, (s, L, o) in enumerate(CASES):
    hm = out[f"s{s}_heatmaps"].astype(np.float32)
    tags = out[f"s{s}_tags"][:, :K * L].astype(np.float32)
    codec = AssociativeEmbedding(
        input_size=(W, H), heatmap_size=(W, H), use_udp=bool(o["udp"]),
        decode_keypoint_order=o["order"], decode_nms_kernel=o["nms"],
        decode_keypoint_thr=o["kthr"], decode_tag_thr=o["tthr"], decode_topk=o["topk"],
        decode_center_shift=o["shift"],
        decode_max_instances=None if o["maxi"] < 0 else o["maxi"])
    codec.scale_factor = np.ones(2, dtype=np.float32)  # heatmap pixels
    kp, ks, inst = codec.batch_decode(torch.from_numpy(hm), torch.from_numpy(tags))
    out[f"c{i}_options"] = np.array([s, L, o["topk"], o["nms"], o["kthr"], o["tthr"], o["maxi"],
                                     o["udp"], o["shift"]], dtype=np.float64)
    out[f"c{i}_order"] = np.array(o["order"], dtype=np.int64)
    out[f"c{i}_counts"] = np.array([len(k) for k in kp], dtype=np.int64)
    out[f"c{i}_keypoints"] = np.concatenate(kp).astype(np.float32)
    out[f"c{i}_keypoint_scores"] = np.concatenate(ks).astype(np.float32)
    out[f"c{i}_instance_scores"] = np.concatenate(inst).astype(np.float32)

# Munkres on matrices full of ties (rounded costs, 1e10 padding as mmpose builds them).
rng = np.random.default_rng(7)
mats, pairs = [], []
for t in range(40):
    r, g = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    m = rng.integers(0, 3, size=(r, g)) * 100.0 - rng.choice([0.5, 0.25, 0.75], size=(r, 1))
    if r > g:
        m = np.concatenate([m, np.zeros((r, r - g), np.float32) + 1e10], 1)
    full = np.zeros((5, 5))
    full[:m.shape[0], :m.shape[1]] = m
    mats.append((m.shape[0], m.shape[1], full))
    pairs.append(np.array(munkres.Munkres().compute(m.copy()), dtype=np.int64))
out["munkres_shapes"] = np.array([(a, b) for a, b, _ in mats], dtype=np.int64)
out["munkres_costs"] = np.stack([c for _, _, c in mats])
out["munkres_pairs"] = np.concatenate(pairs)
np.savez_compressed("tests/data/mmpose_ae.npz", **out)
print({k: v.shape for k, v in out.items()})
