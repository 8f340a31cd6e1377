"""Keypoint sets: names, flip pairs, OKS sigmas, skeleton, colours, upper/lower body split.

The one home of these facts: datasets, codecs, evaluation, drawing and the demo read them
from here (``from pyhpe.keypoints import COCO17, COCO_SIGMAS``).
"""
from __future__ import annotations

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

MPII16 = KeypointSet(
    name="mpii16", names=MPII_NAMES,
    flip_pairs=[(0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)],
    sigmas=np.array([.89, .87, 1.07, 1.07, .87, .89, 1.07, 1.07, .87, .89, .62, .72, .79, .79,
                     .72, .62]) / 10.0,
    skeleton=[(0, 1), (1, 2), (2, 6), (3, 6), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9), (7, 12),
              (12, 11), (11, 10), (7, 13), (13, 14), (14, 15)],
    upper_body=[7, 8, 9, 10, 11, 12, 13, 14, 15], lower_body=[0, 1, 2, 3, 4, 5, 6])

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

_REGISTRY: Dict[str, KeypointSet] = {"coco17": COCO17, "coco": COCO17, "mpii16": MPII16,
                                     "mpii": MPII16, "crowdpose14": CROWDPOSE14,
                                     "crowdpose": CROWDPOSE14, "h36m17": H36M17, "h36m": H36M17}


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


def keypoint_set_from_coco(data: Dict, sigmas=None) -> KeypointSet:
    """The keypoint set of a COCO dict's (first) keypoint category.

    A registered set whose names match (up to case, spaces and the head-top spelling, e.g.
    CrowdPose's own files say 'head' where mmpose says 'top_head') is returned with its
    sigmas, flip pairs and skeleton, unless ``sigmas`` are given; otherwise the set is built
    from the category (:meth:`KeypointSet.from_coco_category`, sigmas 0.05 unless given).
    No keypoint category: COCO-17.
    """
    cats = [c for c in data["categories"] if c.get("keypoints")]
    if not cats:
        return COCO17
    if sigmas is None:
        canon = [_canonical_name(n) for n in cats[0]["keypoints"]]
        for kset in _REGISTRY.values():
            if [_canonical_name(n) for n in kset.names] == canon:
                return kset
    return KeypointSet.from_coco_category(cats[0], sigmas=sigmas)


__all__ = ["COCO17", "COCO_NAMES", "COCO_SIGMAS", "COCO_SKELETON", "CROWDPOSE14",
           "CROWDPOSE_NAMES", "H36M17", "H36M_BONES", "H36M_KEEP_32", "H36M_NAMES",
           "H36M_PARENTS", "KeypointSet", "MPII16", "MPII_NAMES", "get_keypoint_set",
           "keypoint_set_from_coco", "register_keypoint_set"]
