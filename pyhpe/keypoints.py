"""Keypoint sets: names, flip pairs, OKS sigmas, skeleton, colours, upper/lower body split.

The one home of these facts: datasets, codecs, evaluation, drawing and the demo read them
from here (``from pyhpe.keypoints import COCO17, COCO_SIGMAS``). Built in
(:func:`list_keypoint_sets`, :func:`get_keypoint_set` by name or the dataset's short name):
coco17, coco_wholebody133, halpe26, halpe136, crowdpose14, aic14, mpii16, ochuman17,
posetrack17, jhmdb15, h36m17, mpi_inf_3dhp17, panoptic19 (CMU coco19).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np


#: Drawing colours (BGR): left side, right side, centre line.
LEFT_COLOR, RIGHT_COLOR, CENTER_COLOR = (0, 200, 255), (255, 128, 0), (0, 255, 0)


def _side(name: str) -> str:
    n = name.lower()
    if n.startswith(("left", "l_")):
        return "left"
    if n.startswith(("right", "r_")):
        return "right"
    return "center"


_SIDE_COLORS = {"left": LEFT_COLOR, "right": RIGHT_COLOR, "center": CENTER_COLOR}


def _side_color(name: str) -> Tuple[int, int, int]:
    return _SIDE_COLORS[_side(name)]


def _limb_color(name_a: str, name_b: str) -> Tuple[int, int, int]:
    side_a, side_b = _side(name_a), _side(name_b)
    return _SIDE_COLORS[side_a] if side_a == side_b else CENTER_COLOR


_NAME_ALIASES = {"top_head": "head", "head_top": "head"}


def _canonical_name(name: str) -> str:
    """Lower case, '_' for spaces and hyphens, one spelling of the head top, so that names
    written by different datasets and toolkits compare equal ('Head top', 'top_head')."""
    n = "_".join(str(name).strip().lower().replace("-", " ").split())
    return _NAME_ALIASES.get(n, n)


def _color_list(colors, n: int, set_name: str, what: str) -> List[Tuple[int, int, int]]:
    out = [tuple(int(v) for v in c) for c in colors]
    if len(out) != n or any(len(c) != 3 or not all(0 <= v <= 255 for v in c) for c in out):
        raise ValueError(f"KeypointSet '{set_name}': '{what}' must hold {n} BGR triples in "
                         f"[0, 255], got {colors!r}")
    return out


@dataclass
class KeypointSet:
    """Description of a keypoint layout.

    ``flip_pairs`` lists (left, right) index pairs swapped by a horizontal flip; ``sigmas`` are
    the per-keypoint OKS sigmas (pycocotools convention, i.e. already divided by 10);
    ``skeleton`` lists 0-based (a, b) limbs for drawing and PAFs (also :attr:`limbs`).
    ``colors`` are per-limb and ``keypoint_colors`` per-keypoint BGR triples; when not given
    they follow the side of the body read from the names (left, right, centre).
    ``parents`` (optional) is the kinematic tree of a 3-D skeleton: the parent index of each
    joint, -1 for the root.
    """

    name: str
    names: List[str]
    flip_pairs: List[Tuple[int, int]]
    sigmas: np.ndarray
    skeleton: List[Tuple[int, int]]
    upper_body: List[int] = field(default_factory=list)
    lower_body: List[int] = field(default_factory=list)
    joint_weights: Optional[np.ndarray] = None
    colors: Optional[List[Tuple[int, int, int]]] = None
    keypoint_colors: Optional[List[Tuple[int, int, int]]] = None
    parents: Optional[List[int]] = None

    def __post_init__(self):
        self.sigmas = np.asarray(self.sigmas, dtype=np.float64)
        k = len(self.names)
        if self.sigmas.shape != (k,):
            raise ValueError(f"KeypointSet '{self.name}': 'sigmas' must have shape ({k},), "
                             f"got {self.sigmas.shape}")
        for a, b in list(self.flip_pairs) + list(self.skeleton):
            if not (0 <= a < k and 0 <= b < k):
                raise ValueError(f"KeypointSet '{self.name}': index pair ({a}, {b}) out of "
                                 f"range for {k} keypoints")
        if self.joint_weights is None:
            self.joint_weights = np.ones(k, dtype=np.float32)
        self.joint_weights = np.asarray(self.joint_weights, dtype=np.float32)
        if self.joint_weights.shape != (k,):
            raise ValueError(f"KeypointSet '{self.name}': 'joint_weights' must have shape ({k},), "
                             f"got {self.joint_weights.shape}")
        self.flip_pairs = [tuple(int(i) for i in p) for p in self.flip_pairs]
        self.skeleton = [tuple(int(i) for i in s) for s in self.skeleton]
        if self.colors is None:
            self.colors = [_limb_color(self.names[a], self.names[b]) for a, b in self.skeleton]
        self.colors = _color_list(self.colors, len(self.skeleton), self.name, "colors")
        if self.keypoint_colors is None:
            self.keypoint_colors = [_side_color(n) for n in self.names]
        self.keypoint_colors = _color_list(self.keypoint_colors, k, self.name, "keypoint_colors")
        if self.parents is not None:
            self.parents = [int(p) for p in self.parents]
            if len(self.parents) != k or any(not -1 <= p < k for p in self.parents):
                raise ValueError(f"KeypointSet '{self.name}': 'parents' must hold {k} indices "
                                 f"in [-1, {k}), got {self.parents}")

    @property
    def limbs(self) -> List[Tuple[int, int]]:
        """The skeleton's 0-based (a, b) pairs (the limbs of PAFs and drawings)."""
        return list(self.skeleton)

    @property
    def num_keypoints(self) -> int:
        return len(self.names)

    def flip_index(self) -> List[int]:
        """Permutation mapping keypoint i to its mirror (identity for centre keypoints)."""
        idx = list(range(self.num_keypoints))
        for a, b in self.flip_pairs:
            idx[a], idx[b] = b, a
        return idx

    def to_dict(self) -> Dict:
        return {"name": self.name, "names": list(self.names),
                "flip_pairs": [list(p) for p in self.flip_pairs],
                "sigmas": self.sigmas.tolist(), "skeleton": [list(s) for s in self.skeleton],
                "upper_body": list(self.upper_body), "lower_body": list(self.lower_body),
                "joint_weights": self.joint_weights.tolist(),
                "colors": [list(c) for c in self.colors],
                "keypoint_colors": [list(c) for c in self.keypoint_colors],
                "parents": None if self.parents is None else list(self.parents)}

    @classmethod
    def from_dict(cls, d: Dict) -> "KeypointSet":
        """Build from a metadata dict (keys as in :meth:`to_dict`; sigmas default to 0.05)."""
        names = list(d["names"])
        return cls(name=d.get("name", "custom"), names=names,
                   flip_pairs=[tuple(p) for p in d.get("flip_pairs", [])],
                   sigmas=d.get("sigmas", [0.05] * len(names)),
                   skeleton=[tuple(s) for s in d.get("skeleton", [])],
                   upper_body=list(d.get("upper_body", [])),
                   lower_body=list(d.get("lower_body", [])),
                   joint_weights=d.get("joint_weights"),
                   colors=d.get("colors"), keypoint_colors=d.get("keypoint_colors"),
                   parents=d.get("parents"))

    @classmethod
    def from_json(cls, path: str) -> "KeypointSet":
        with open(path) as f:
            return cls.from_dict(json.load(f))

    @classmethod
    def from_coco_category(cls, category: Dict, sigmas=None, flip_pairs=None) -> "KeypointSet":
        """From a COCO ``categories`` entry (``keypoints`` names, 1-based ``skeleton``).

        Flip pairs are inferred from left/right name prefixes when not given ('left_x',
        'l_x', 'Left X' pair with their 'right' twins).
        """
        names = list(category["keypoints"])
        if flip_pairs is None:
            canon = [_canonical_name(n) for n in names]
            flip_pairs = []
            for i, n in enumerate(canon):
                for lp, rp in (("left_", "right_"), ("l_", "r_"), ("left", "right")):
                    if n.startswith(lp) and (rp + n[len(lp):]) in canon:
                        flip_pairs.append((i, canon.index(rp + n[len(lp):])))
                        break
        k = len(names)
        skeleton = [(a - 1, b - 1) for a, b in category.get("skeleton", [])]
        bad = [(a + 1, b + 1) for a, b in skeleton if not (0 <= a < k and 0 <= b < k)]
        if bad:
            raise ValueError(f"KeypointSet.from_coco_category: category "
                             f"{category.get('name', '?')!r} has {k} keypoints but its 1-based "
                             f"skeleton refers to {bad}; pass the keypoint set explicitly")
        return cls(name=category.get("name", "custom"), names=names, flip_pairs=flip_pairs,
                   sigmas=sigmas if sigmas is not None else [0.05] * len(names),
                   skeleton=skeleton)


COCO_NAMES = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
              "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
              "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]

#: COCO-17 OKS sigmas exactly as pycocotools builds them (``np.array([...]) / 10.0``, float64).
COCO_SIGMAS = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07,
                        .87, .87, .89, .89]) / 10.0

# pycocotools' person skeleton, 0-based.
COCO_SKELETON = [(15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6),
                 (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4),
                 (3, 5), (4, 6)]

COCO17 = KeypointSet(
    name="coco17", names=COCO_NAMES,
    flip_pairs=[(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)],
    sigmas=COCO_SIGMAS, skeleton=COCO_SKELETON,
    upper_body=list(range(11)), lower_body=list(range(11, 17)),
    joint_weights=[1., 1., 1., 1., 1., 1., 1., 1.2, 1.2, 1.5, 1.5, 1., 1., 1.2, 1.2, 1.5, 1.5])

MPII_NAMES = ["right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
              "pelvis", "thorax", "upper_neck", "head_top", "right_wrist", "right_elbow",
              "right_shoulder", "left_shoulder", "left_elbow", "left_wrist"]

# The sets below copy the published metadata of each dataset as mmpose 1.x states it
# (configs/_base_/datasets/<name>.py): keypoint order and names, left/right pairs, skeleton,
# OKS sigmas (where the dataset defines them; already divided by 10) and joint weights.
_COCO_WHOLEBODY_FLIP = [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16),
    (17, 20), (18, 21), (19, 22), (23, 39), (24, 38), (25, 37), (26, 36), (27, 35), (28, 34),
    (29, 33), (30, 32), (40, 49), (41, 48), (42, 47), (43, 46), (44, 45), (54, 58), (55, 57),
    (59, 68), (60, 67), (61, 66), (62, 65), (63, 70), (64, 69), (71, 77), (72, 76), (73, 75),
    (78, 82), (79, 81), (83, 87), (84, 86), (88, 90), (91, 112), (92, 113), (93, 114), (94, 115),
    (95, 116), (96, 117), (97, 118), (98, 119), (99, 120), (100, 121), (101, 122), (102, 123),
    (103, 124), (104, 125), (105, 126), (106, 127), (107, 128), (108, 129), (109, 130), (110, 131),
    (111, 132)]
_COCO_WHOLEBODY_SKELETON = [(15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12),
    (5, 6), (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5),
    (4, 6), (15, 17), (15, 18), (15, 19), (16, 20), (16, 21), (16, 22), (91, 92), (92, 93),
    (93, 94), (94, 95), (91, 96), (96, 97), (97, 98), (98, 99), (91, 100), (100, 101), (101, 102),
    (102, 103), (91, 104), (104, 105), (105, 106), (106, 107), (91, 108), (108, 109), (109, 110),
    (110, 111), (112, 113), (113, 114), (114, 115), (115, 116), (112, 117), (117, 118), (118, 119),
    (119, 120), (112, 121), (121, 122), (122, 123), (123, 124), (112, 125), (125, 126), (126, 127),
    (127, 128), (112, 129), (129, 130), (130, 131), (131, 132)]
_COCO_WHOLEBODY_SIGMAS = [0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062,
    0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089, 0.068, 0.066, 0.066, 0.092, 0.094, 0.094,
    0.042, 0.043, 0.044, 0.043, 0.04, 0.035, 0.031, 0.025, 0.02, 0.023, 0.029, 0.032, 0.037, 0.038,
    0.043, 0.041, 0.045, 0.013, 0.012, 0.011, 0.011, 0.012, 0.012, 0.011, 0.011, 0.013, 0.015,
    0.009, 0.007, 0.007, 0.007, 0.012, 0.009, 0.008, 0.016, 0.01, 0.017, 0.011, 0.009, 0.011,
    0.009, 0.007, 0.013, 0.008, 0.011, 0.012, 0.01, 0.034, 0.008, 0.008, 0.009, 0.008, 0.008,
    0.007, 0.01, 0.008, 0.009, 0.009, 0.009, 0.007, 0.007, 0.008, 0.011, 0.008, 0.008, 0.008, 0.01,
    0.008, 0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024, 0.035, 0.018, 0.024, 0.022,
    0.026, 0.017, 0.021, 0.021, 0.032, 0.02, 0.019, 0.022, 0.031, 0.029, 0.022, 0.035, 0.037,
    0.047, 0.026, 0.025, 0.024, 0.035, 0.018, 0.024, 0.022, 0.026, 0.017, 0.021, 0.021, 0.032,
    0.02, 0.019, 0.022, 0.031]

_HALPE136_FLIP = [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16), (20, 21),
    (22, 23), (24, 25), (26, 42), (27, 41), (28, 40), (29, 39), (30, 38), (31, 37), (32, 36),
    (33, 35), (43, 52), (44, 51), (45, 50), (46, 49), (47, 48), (57, 61), (58, 60), (62, 71),
    (63, 70), (64, 69), (65, 68), (66, 73), (67, 72), (74, 80), (75, 79), (76, 78), (81, 85),
    (82, 84), (86, 90), (87, 89), (91, 93), (94, 115), (95, 116), (96, 117), (97, 118), (98, 119),
    (99, 120), (100, 121), (101, 122), (102, 123), (103, 124), (104, 125), (105, 126), (106, 127),
    (107, 128), (108, 129), (109, 130), (110, 131), (111, 132), (112, 133), (113, 134), (114, 135)]
_HALPE136_SKELETON = [(15, 13), (13, 11), (11, 19), (16, 14), (14, 12), (12, 19), (17, 18),
    (18, 19), (18, 5), (5, 7), (7, 9), (18, 6), (6, 8), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3),
    (2, 4), (3, 5), (4, 6), (15, 20), (15, 22), (15, 24), (16, 21), (16, 23), (16, 25), (9, 95),
    (95, 96), (96, 97), (97, 98), (9, 99), (99, 100), (100, 101), (101, 102), (9, 103), (103, 104),
    (104, 105), (105, 106), (9, 107), (107, 108), (108, 109), (109, 110), (9, 111), (111, 112),
    (112, 113), (113, 114), (10, 116), (116, 117), (117, 118), (118, 119), (10, 120), (120, 121),
    (121, 122), (122, 123), (10, 124), (124, 125), (125, 126), (126, 127), (10, 128), (128, 129),
    (129, 130), (130, 131), (10, 132), (132, 133), (133, 134), (134, 135)]
_HALPE136_SIGMAS = [0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
    0.107, 0.107, 0.087, 0.087, 0.089, 0.089, 0.08, 0.08, 0.08, 0.089, 0.089, 0.089, 0.089, 0.089,
    0.089] + [0.015] * 110

_HALPE26_FLIP = [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16), (20, 21),
    (22, 23), (24, 25)]
_HALPE26_SKELETON = [(15, 13), (13, 11), (11, 19), (16, 14), (14, 12), (12, 19), (17, 18),
    (18, 19), (18, 5), (5, 7), (7, 9), (18, 6), (6, 8), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3),
    (2, 4), (3, 5), (4, 6), (15, 20), (15, 22), (15, 24), (16, 21), (16, 23), (16, 25)]
_HALPE26_SIGMAS = [0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
    0.107, 0.107, 0.087, 0.087, 0.089, 0.089, 0.026, 0.026, 0.066, 0.079, 0.079, 0.079, 0.079,
    0.079, 0.079]
_HALPE26_WEIGHTS = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.2, 1.2, 1.5, 1.5, 1.0, 1.0, 1.2, 1.2, 1.5,
    1.5, 1.0, 1.0, 1.2, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5]

_AIC_FLIP = [(0, 3), (1, 4), (2, 5), (6, 9), (7, 10), (8, 11)]
_AIC_SKELETON = [(2, 1), (1, 0), (0, 13), (13, 3), (3, 4), (4, 5), (8, 7), (7, 6), (6, 9), (9, 10),
    (10, 11), (12, 13), (0, 6), (3, 9)]
_AIC_SIGMAS = [0.01388152, 0.01515228, 0.01057665, 0.01417709, 0.01497891, 0.01402144, 0.03909642,
    0.03686941, 0.01981803, 0.03843971, 0.03412318, 0.02415081, 0.01291456, 0.01236173]
_AIC_WEIGHTS = [1.0, 1.2, 1.5, 1.0, 1.2, 1.5, 1.0, 1.2, 1.5, 1.0, 1.2, 1.5, 1.0, 1.0]

_POSETRACK_FLIP = [(3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)]
_POSETRACK_SKELETON = [(15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6),
    (5, 7), (6, 8), (7, 9), (8, 10), (0, 1), (0, 2), (1, 5), (1, 6)]
_POSETRACK_SIGMAS = [0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
    0.107, 0.107, 0.087, 0.087, 0.089, 0.089]
_POSETRACK_WEIGHTS = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.2, 1.2, 1.5, 1.5, 1.0, 1.0, 1.2, 1.2,
    1.5, 1.5]

_JHMDB_FLIP = [(3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14)]
_JHMDB_SKELETON = [(13, 9), (9, 5), (5, 1), (1, 6), (6, 10), (10, 14), (1, 0), (0, 2), (0, 3),
    (3, 7), (7, 11), (0, 4), (4, 8), (8, 12)]
_JHMDB_SIGMAS = [0.025, 0.107, 0.025, 0.079, 0.079, 0.107, 0.107, 0.072, 0.072, 0.087, 0.087,
    0.062, 0.062, 0.089, 0.089]
_JHMDB_WEIGHTS = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.2, 1.2, 1.2, 1.2, 1.5, 1.5, 1.5, 1.5]

_MPII_FLIP = [(0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)]
_MPII_SKELETON = [(0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9), (8, 12),
    (12, 11), (11, 10), (8, 13), (13, 14), (14, 15)]
_MPII_SIGMAS = [0.089, 0.083, 0.107, 0.107, 0.083, 0.089, 0.026, 0.026, 0.026, 0.026, 0.062, 0.072,
    0.179, 0.179, 0.072, 0.062]
_MPII_WEIGHTS = [1.5, 1.2, 1.0, 1.0, 1.2, 1.5, 1.0, 1.0, 1.0, 1.0, 1.5, 1.2, 1.0, 1.0, 1.2, 1.5]

_MPI_INF_3DHP_FLIP = [(2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13)]
_MPI_INF_3DHP_SKELETON = [(1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7), (14, 8), (8, 9), (9, 10),
    (14, 11), (11, 12), (12, 13), (0, 16), (16, 1), (1, 15), (15, 14)]

_PANOPTIC_FLIP = [(3, 9), (4, 10), (5, 11), (6, 12), (7, 13), (8, 14), (15, 17), (16, 18)]
_PANOPTIC_SKELETON = [(1, 0), (0, 3), (0, 9), (3, 4), (9, 10), (4, 5), (10, 11), (8, 7), (7, 6),
    (14, 13), (13, 12), (2, 6), (2, 12), (2, 0)]
_PANOPTIC_SIGMAS = [0.026, 0.026, 0.107, 0.079, 0.072, 0.062, 0.107, 0.087, 0.089, 0.079, 0.072,
    0.062, 0.107, 0.087, 0.089, 0.025, 0.035, 0.025, 0.035]
_PANOPTIC_WEIGHTS = [1.0, 1.0, 1.0, 1.0, 1.2, 1.5, 1.0, 1.2, 1.5, 1.0, 1.2, 1.5, 1.0, 1.2, 1.5,
    1.0, 1.0, 1.0, 1.0]

MPII16 = KeypointSet(
    name="mpii16", names=MPII_NAMES, flip_pairs=_MPII_FLIP, sigmas=_MPII_SIGMAS,
    skeleton=_MPII_SKELETON, upper_body=[7, 8, 9, 10, 11, 12, 13, 14, 15],
    lower_body=[0, 1, 2, 3, 4, 5, 6], joint_weights=_MPII_WEIGHTS)

# CrowdPose (Li et al. 2019) as in its crowdpose-api / xtcocotools and mmpose's metadata.
CROWDPOSE_NAMES = ["left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
                   "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee",
                   "left_ankle", "right_ankle", "top_head", "neck"]

CROWDPOSE14 = KeypointSet(
    name="crowdpose14", names=CROWDPOSE_NAMES,
    flip_pairs=[(0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11)],
    sigmas=np.array([.79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89, .79,
                     .79]) / 10.0,
    skeleton=[(10, 8), (8, 6), (11, 9), (9, 7), (6, 7), (0, 6), (1, 7), (0, 1), (0, 2), (1, 3),
              (2, 4), (3, 5), (12, 13), (1, 13), (0, 13)],
    upper_body=[0, 1, 2, 3, 4, 5, 12, 13], lower_body=[6, 7, 8, 9, 10, 11],
    joint_weights=[1.2, 1.2, 1.1, 1.1, 1., 1., 1.2, 1.2, 1.1, 1.1, 1., 1., 1., 1.])

#: VideoPose3D keeps these 17 of Human3.6M's 32 mocap joints (Human36mDataset.remove_joints).
H36M_KEEP_32 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
H36M_NAMES = ("hip", "right_hip", "right_knee", "right_foot", "left_hip", "left_knee",
              "left_foot", "spine", "thorax", "neck_nose", "head", "left_shoulder",
              "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist")
#: Parent of each joint of the 17-joint skeleton (VideoPose3D h36m_skeleton after removal).
H36M_PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
#: (parent, child) pairs of the 17-joint tree.
H36M_BONES = tuple((p, j) for j, p in enumerate(H36M_PARENTS) if p >= 0)

# Human3.6M has no OKS sigmas (mmpose's h36m metadata leaves them empty): the 0.05 placeholder
# that custom sets get keeps OKS-based code usable, it is not a published constant.
H36M17 = KeypointSet(
    name="h36m17", names=list(H36M_NAMES),
    flip_pairs=[(4, 1), (5, 2), (6, 3), (11, 14), (12, 15), (13, 16)],
    sigmas=[0.05] * 17, skeleton=list(H36M_BONES),
    upper_body=list(range(7, 17)), lower_body=list(range(7)),
    parents=list(H36M_PARENTS))


def _hand_names(side: str) -> List[str]:
    fingers = ["thumb", "forefinger", "middle_finger", "ring_finger", "pinky_finger"]
    return [f"{side}_hand_root"] + [f"{side}_{f}{i}" for f in fingers for i in range(1, 5)]


def _tree_parents(skeleton, k: int, root: int) -> List[int]:
    """Parent of each joint of a tree given by undirected edges (-1 for ``root``)."""
    parents, todo = [-2] * k, [root]
    parents[root] = -1
    while todo:
        a = todo.pop()
        for e in skeleton:
            if a in e:
                b = e[1] if e[0] == a else e[0]
                if parents[b] == -2:
                    parents[b] = a
                    todo.append(b)
    return parents


FEET_NAMES = ["left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe",
              "right_heel"]
FACE68_NAMES = [f"face-{i}" for i in range(68)]
HAND21_NAMES = {"left": _hand_names("left"), "right": _hand_names("right")}

#: COCO-WholeBody (Jin et al. 2020): body 17, feet 6, face 68, left hand 21, right hand 21;
#: sigmas are xtcocotools' wholebody sigmas in that order.
COCO_WHOLEBODY133 = KeypointSet(
    name="coco_wholebody133",
    names=COCO_NAMES + FEET_NAMES + FACE68_NAMES + HAND21_NAMES["left"] + HAND21_NAMES["right"],
    flip_pairs=_COCO_WHOLEBODY_FLIP, sigmas=_COCO_WHOLEBODY_SIGMAS,
    skeleton=_COCO_WHOLEBODY_SKELETON, upper_body=list(range(11)),
    lower_body=list(range(11, 23)))
#: Index ranges of each part of :data:`COCO_WHOLEBODY133` (xtcocotools' wholebody evaluation).
COCO_WHOLEBODY_PARTS = {"body": (0, 17), "foot": (17, 23), "face": (23, 91),
                        "lefthand": (91, 112), "righthand": (112, 133)}

_HALPE_BODY_NAMES = COCO_NAMES + ["head", "neck", "hip", "left_big_toe", "right_big_toe",
                                  "left_small_toe", "right_small_toe", "left_heel", "right_heel"]

#: Halpe-FullBody (Fang et al.) body + feet subset, sigmas of HalpeCOCOAPI.
HALPE26 = KeypointSet(
    name="halpe26", names=list(_HALPE_BODY_NAMES), flip_pairs=_HALPE26_FLIP,
    sigmas=_HALPE26_SIGMAS, skeleton=_HALPE26_SKELETON,
    upper_body=list(range(11)) + [17, 18], lower_body=list(range(11, 17)) + list(range(19, 26)),
    joint_weights=_HALPE26_WEIGHTS)

#: Halpe-FullBody, all 136 keypoints: body + feet 26, face 68, left hand 21, right hand 21.
HALPE136 = KeypointSet(
    name="halpe136",
    names=_HALPE_BODY_NAMES + FACE68_NAMES + HAND21_NAMES["left"] + HAND21_NAMES["right"],
    flip_pairs=_HALPE136_FLIP, sigmas=_HALPE136_SIGMAS, skeleton=_HALPE136_SKELETON,
    upper_body=list(range(11)) + [17, 18], lower_body=list(range(11, 17)) + list(range(19, 26)))

#: Index ranges of each part of :data:`HALPE136` (body 20 with head, neck and hip; feet 6).
HALPE136_PARTS = {"body": (0, 20), "foot": (20, 26), "face": (26, 94), "lefthand": (94, 115),
                  "righthand": (115, 136)}

#: AI Challenger (Wu et al. 2017); sigmas are half the deltas of its keypoint_eval.py.
AIC14 = KeypointSet(
    name="aic14",
    names=["right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
           "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee",
           "left_ankle", "head_top", "neck"],
    flip_pairs=_AIC_FLIP, sigmas=_AIC_SIGMAS, skeleton=_AIC_SKELETON,
    upper_body=[0, 1, 2, 3, 4, 5, 12, 13], lower_body=[6, 7, 8, 9, 10, 11],
    joint_weights=_AIC_WEIGHTS)

#: OCHuman (Zhang et al. 2019): COCO's 17 keypoints, sigmas and skeleton.
OCHUMAN17 = KeypointSet(
    name="ochuman17", names=list(COCO_NAMES), flip_pairs=list(COCO17.flip_pairs),
    sigmas=COCO_SIGMAS, skeleton=list(COCO_SKELETON), upper_body=list(range(11)),
    lower_body=list(range(11, 17)), joint_weights=COCO17.joint_weights.copy())

#: PoseTrack18 (Andriluka et al. 2018): COCO order with head_bottom / head_top in place of the
#: eyes (the eyes are not annotated); COCO's sigmas.
POSETRACK17 = KeypointSet(
    name="posetrack17",
    names=["nose", "head_bottom", "head_top"] + COCO_NAMES[3:],
    flip_pairs=_POSETRACK_FLIP, sigmas=_POSETRACK_SIGMAS, skeleton=_POSETRACK_SKELETON,
    upper_body=list(range(11)), lower_body=list(range(11, 17)),
    joint_weights=_POSETRACK_WEIGHTS)

#: sub-JHMDB (Jhuang et al. 2013), 15 puppet joints.
JHMDB15 = KeypointSet(
    name="jhmdb15",
    names=["neck", "belly", "head", "right_shoulder", "left_shoulder", "right_hip", "left_hip",
           "right_elbow", "left_elbow", "right_knee", "left_knee", "right_wrist", "left_wrist",
           "right_ankle", "left_ankle"],
    flip_pairs=_JHMDB_FLIP, sigmas=_JHMDB_SIGMAS, skeleton=_JHMDB_SKELETON,
    upper_body=[0, 1, 2, 3, 4, 7, 8, 11, 12], lower_body=[5, 6, 9, 10, 13, 14],
    joint_weights=_JHMDB_WEIGHTS)

_MPI_INF_3DHP_NAMES = ["head_top", "neck", "right_shoulder", "right_elbow", "right_wrist",
                       "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee",
                       "right_ankle", "left_hip", "left_knee", "left_ankle", "root", "spine",
                       "head"]
# No OKS sigmas are defined for the 3-D sets below (0.05 placeholder, as for H36M17).
#: MPI-INF-3DHP (Mehta et al. 2017), the 17 evaluation joints; root = pelvis (14).
MPI_INF_3DHP17 = KeypointSet(
    name="mpi_inf_3dhp17", names=_MPI_INF_3DHP_NAMES, flip_pairs=_MPI_INF_3DHP_FLIP,
    sigmas=[0.05] * 17, skeleton=_MPI_INF_3DHP_SKELETON,
    upper_body=[0, 1, 2, 3, 4, 5, 6, 7, 15, 16], lower_body=[8, 9, 10, 11, 12, 13, 14],
    parents=_tree_parents(_MPI_INF_3DHP_SKELETON, 17, 14))

#: CMU Panoptic's coco19 3-D body joints (hdPose3d_stage1_coco19).
PANOPTIC19 = KeypointSet(
    name="panoptic19",
    names=["neck", "nose", "mid_hip", "left_shoulder", "left_elbow", "left_wrist", "left_hip",
           "left_knee", "left_ankle", "right_shoulder", "right_elbow", "right_wrist",
           "right_hip", "right_knee", "right_ankle", "left_eye", "left_ear", "right_eye",
           "right_ear"],
    flip_pairs=_PANOPTIC_FLIP, sigmas=_PANOPTIC_SIGMAS, skeleton=_PANOPTIC_SKELETON,
    upper_body=[0, 1, 3, 4, 5, 9, 10, 11, 15, 16, 17, 18], lower_body=[2, 6, 7, 8, 12, 13, 14],
    joint_weights=_PANOPTIC_WEIGHTS)

#: The built-in sets by canonical name, in the order :func:`keypoint_set_from_coco` tries them.
BUILTIN_SETS: Dict[str, KeypointSet] = {
    k.name: k for k in (COCO17, COCO_WHOLEBODY133, HALPE26, HALPE136, CROWDPOSE14, AIC14, MPII16,
                        OCHUMAN17, POSETRACK17, JHMDB15, H36M17, MPI_INF_3DHP17, PANOPTIC19)}

#: Short names (the dataset's) of the built-in sets.
_ALIASES = {"coco": "coco17", "coco_wholebody": "coco_wholebody133",
            "wholebody": "coco_wholebody133",
            "halpe": "halpe136", "crowdpose": "crowdpose14", "aic": "aic14", "mpii": "mpii16",
            "ochuman": "ochuman17", "posetrack": "posetrack17", "posetrack18": "posetrack17",
            "jhmdb": "jhmdb15", "h36m": "h36m17", "mpi_inf_3dhp": "mpi_inf_3dhp17",
            "panoptic": "panoptic19", "panoptic_body3d": "panoptic19", "coco19": "panoptic19"}

_REGISTRY: Dict[str, KeypointSet] = dict(BUILTIN_SETS)
_REGISTRY.update({a: BUILTIN_SETS[n] for a, n in _ALIASES.items()})


def list_keypoint_sets(aliases: bool = False) -> List[str]:
    """Names of the registered keypoint sets (built-in and :func:`register_keypoint_set`'s);
    with ``aliases`` also the short dataset names ('coco', 'aic', ...)."""
    return sorted(n for n in _REGISTRY if aliases or n not in _ALIASES)


def register_keypoint_set(kset: KeypointSet, name: Optional[str] = None) -> None:
    """Make ``kset`` available to :func:`get_keypoint_set` (and configs) by name."""
    if not isinstance(kset, KeypointSet):
        raise TypeError(f"register_keypoint_set: expected a KeypointSet, got {type(kset).__name__}")
    _REGISTRY[name or kset.name] = kset


def get_keypoint_set(name_or_set) -> KeypointSet:
    """A registered set by name ('coco17', 'mpii16', ...), a dict, a json path or a KeypointSet."""
    if isinstance(name_or_set, KeypointSet):
        return name_or_set
    if isinstance(name_or_set, dict):
        return KeypointSet.from_dict(name_or_set)
    if isinstance(name_or_set, str) and name_or_set.endswith(".json"):
        return KeypointSet.from_json(name_or_set)
    try:
        return _REGISTRY[name_or_set]
    except KeyError:
        raise ValueError(f"unknown keypoint set {name_or_set!r}; known: {sorted(_REGISTRY)}")


#: The set meant by an annotation file whose categories do not name its keypoints, by the number
#: of keypoints per annotation (14 is ambiguous: CrowdPose and AIC order them differently).
_SET_BY_COUNT = {17: COCO17, 133: COCO_WHOLEBODY133, 136: HALPE136, 26: HALPE26, 16: MPII16,
                 15: JHMDB15, 19: PANOPTIC19}


def _with_sigmas(kset: KeypointSet, sigmas) -> KeypointSet:
    return kset if sigmas is None else dataclasses.replace(kset, sigmas=np.asarray(sigmas))


def keypoint_set_from_coco(data: Dict, sigmas=None) -> KeypointSet:
    """The keypoint set of a COCO dict's (first) keypoint category.

    A registered set whose names match (up to case, spaces and the head-top spelling, e.g.
    CrowdPose's own files say 'head' where mmpose says 'top_head', AIC's 'Right Shoulder') is
    returned with its sigmas, flip pairs and skeleton (the file's own skeleton is not used:
    CrowdPose's files carry COCO's 17-point one); ``sigmas``, when given, replace the set's.
    Otherwise the set is built from the category (:meth:`KeypointSet.from_coco_category`,
    sigmas 0.05 unless given). A file whose categories do not name its keypoints, or name fewer
    than its annotations carry (Halpe's files: 136 per annotation), gets the built-in set of
    that many keypoints; an ambiguous count is an error asking for the set by name.
    No keypoint category and no keypoints: COCO-17.
    """
    cats = [c for c in data.get("categories", []) if c.get("keypoints")]
    counts = {len(a["keypoints"]) // 3 for a in data.get("annotations", [])
              if a.get("keypoints")}
    if len(counts) > 1:
        raise ValueError(f"keypoint_set_from_coco: annotations carry different numbers of "
                         f"keypoints {sorted(counts)}")
    k_ann = counts.pop() if counts else None
    if cats and (k_ann is None or k_ann == len(cats[0]["keypoints"])):
        canon = [_canonical_name(n) for n in cats[0]["keypoints"]]
        for kset in list(BUILTIN_SETS.values()) + list(_REGISTRY.values()):
            if [_canonical_name(n) for n in kset.names] == canon:
                return _with_sigmas(kset, sigmas)
        return KeypointSet.from_coco_category(cats[0], sigmas=sigmas)
    if k_ann is None:
        return _with_sigmas(COCO17, sigmas)
    if k_ann not in _SET_BY_COUNT:
        named = f"names {len(cats[0]['keypoints'])}" if cats else "does not name its keypoints"
        raise ValueError(f"keypoint_set_from_coco: the annotations carry {k_ann} keypoints and "
                         f"the category {named}; pass the keypoint set by name (known: "
                         f"{list_keypoint_sets()})")
    return _with_sigmas(_SET_BY_COUNT[k_ann], sigmas)


__all__ = ["AIC14", "BUILTIN_SETS", "COCO17", "COCO_NAMES", "COCO_SIGMAS", "COCO_SKELETON",
           "COCO_WHOLEBODY133", "COCO_WHOLEBODY_PARTS", "CROWDPOSE14", "CROWDPOSE_NAMES",
           "FACE68_NAMES", "FEET_NAMES", "H36M17", "H36M_BONES", "H36M_KEEP_32", "H36M_NAMES",
           "H36M_PARENTS", "HALPE136", "HALPE136_PARTS", "HALPE26", "HAND21_NAMES", "JHMDB15",
           "KeypointSet", "MPII16", "MPII_NAMES", "MPI_INF_3DHP17", "OCHUMAN17", "PANOPTIC19",
           "POSETRACK17", "get_keypoint_set", "keypoint_set_from_coco", "list_keypoint_sets",
           "register_keypoint_set"]
