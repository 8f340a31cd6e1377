"""Make the image-based 3-D fixtures: the Human3.6M and MPI-INF-3DHP sample frames of
../shared/data cut down to 96 x 96 crops around each person, in the datasets' own layout.

Each frame's square box (mmpose's ``scale * 200`` side around ``center``, times ``MARGIN``) is
resampled to ``SIZE`` pixels by the affine ``x' = (x - x0) * s``; the npz's ``part``,
``center`` and ``scale`` and the cameras' principal point and focal length move with it
(``c' = (c - x0) * s``, ``f' = f * s``; distortion acts on normalised coordinates and stays),
so every camera-frame joint ``S`` still projects onto its ``part``. The 3-D joints are
unchanged. Run from the repository root::

    python tests/data/image3d/make_fixtures.py ../shared/data
"""
import os
import pickle
import sys

import cv2
import numpy as np

SIZE = 96
MARGIN = 1.4
OUT = os.path.dirname(os.path.abspath(__file__))


def _load_pickle(path):
    from pyhpe.data.safe_npz import load_pickle_safely
    return load_pickle_safely(path, who="make_fixtures")


def cut(src_root, npz_name, cams_name, cam_keys, out_dir):
    d = dict(np.load(os.path.join(src_root, npz_name)))
    cams = _load_pickle(os.path.join(src_root, cams_name))
    new_cams = {}
    part = d["part"].astype(np.float64).copy()
    center = d["center"].astype(np.float64).copy()
    scale = d["scale"].astype(np.float64).copy()
    for i, name in enumerate(d["imgname"]):
        name = str(name)
        img = cv2.imread(os.path.join(src_root, name), cv2.IMREAD_COLOR)
        side = float(d["scale"][i]) * 200.0 * MARGIN
        x0, y0 = d["center"][i] - side / 2
        s = SIZE / side
        mat = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]])
        crop = cv2.warpAffine(img, mat, (SIZE, SIZE), flags=cv2.INTER_AREA,
                              borderMode=cv2.BORDER_CONSTANT)
        path = os.path.join(out_dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        cv2.imwrite(path, crop, [cv2.IMWRITE_JPEG_QUALITY, 85])
        part[i, :, :2] = (part[i, :, :2] - (x0, y0)) * s
        center[i] = (center[i] - (x0, y0)) * s
        scale[i] = scale[i] * s
        key = cam_keys(name)
        cam = {k: np.array(v, copy=True) for k, v in cams[key].items()}
        cam["c"] = (np.asarray(cam["c"], np.float64).reshape(-1) - (x0, y0)) * s
        cam["f"] = np.asarray(cam["f"], np.float64).reshape(-1) * s
        cam["c"] = cam["c"].reshape(np.shape(cams[key]["c"]))
        cam["f"] = cam["f"].reshape(np.shape(cams[key]["f"]))
        cam["w"], cam["h"] = SIZE, SIZE
        new_cams[key] = cam
    d.update(part=part.astype(d["part"].dtype), center=center.astype(d["center"].dtype),
             scale=scale.astype(d["scale"].dtype))
    np.savez(os.path.join(out_dir, npz_name), **d)
    with open(os.path.join(out_dir, cams_name), "wb") as f:
        pickle.dump(new_cams, f, protocol=4)


def main(shared):
    from pyhpe.data.body3d import _3DHP_TEST, _3DHP_TRAIN, _H36M_NAME

    def h36m_key(name):
        m = _H36M_NAME.match(name)
        return (m.group(1), m.group(3))

    def hp_key(name):
        m = _3DHP_TRAIN.match(name)
        if m:
            return f"{m.group(1)}_{m.group(2)}_{m.group(3)}"
        return _3DHP_TEST.match(name).group(1)

    out = os.path.join(OUT, "h36m")
    os.makedirs(out, exist_ok=True)
    cut(os.path.join(shared, "h36m"), "test_h36m_body3d.npz", "cameras.pkl", h36m_key, out)
    out = os.path.join(OUT, "mpi_inf_3dhp")
    os.makedirs(out, exist_ok=True)
    cut(os.path.join(shared, "mpi_inf_3dhp"), "test_3dhp_train.npz", "cameras_train.pkl",
        hp_key, out)
    cut(os.path.join(shared, "mpi_inf_3dhp"), "test_3dhp_test.npz", "cameras_test.pkl",
        hp_key, out)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
