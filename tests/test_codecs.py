"""Codecs: mmpose 1.3.2 parity (recorded fixture), encode -> decode round trips with stated
error bounds, batch vs per-sample encoding, flip_back, device and dtype handling."""
import importlib.util
import os

import numpy as np
import pytest
import torch

from conftest import cpu_and_cuda
from pyhpe.codecs import (CODECS, Codec, IntegralRegressionLabel, Lift3DCodec, MSRAHeatmap,
                          PAFCodec, PAFOutputs, RegressionLabel, SimCCLabel, UDPHeatmap,
                          UnbiasedHeatmap, build_codec, list_codecs)
from pyhpe.keypoints import COCO17
from pyhpe.models.heads.losses import coordinate_loss, keypoint_mse_loss, kl_discret_loss
from pyhpe.ops.paf import COCO17_LIMBS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DATA = os.path.join(os.path.dirname(__file__), "data")
FLIP = COCO17.flip_index()
IN, HM = (48, 64), (12, 16)
# DARK's 11-pixel blur needs room: round trips and flips of DARK decodes use 48 x 64 maps
BIG_IN, BIG_HM = (192, 256), (48, 64)


def _recorder():
    spec = importlib.util.spec_from_file_location(
        "record_mmpose_codecs", os.path.join(DATA, "record_mmpose_codecs.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


REC = _recorder()
REF = dict(np.load(os.path.join(DATA, "mmpose_codecs.npz")))
X = {k: torch.from_numpy(v) for k, v in REC.make_inputs().items()}


def _lift_codec(center_2d=True, root=0):
    return Lift3DCodec(root, X["mean_2d"].numpy(), X["std_2d"].numpy(), X["mean_3d"].numpy(),
                       X["std_3d"].numpy(), center_2d)


def _every_codec():
    return [MSRAHeatmap(IN, HM), MSRAHeatmap(IN, HM, decode="dark"), UnbiasedHeatmap(IN, HM),
            UDPHeatmap(IN, HM), SimCCLabel(IN), SimCCLabel(IN, decode_dark=True),
            RegressionLabel(IN), IntegralRegressionLabel(IN, HM, "dsnt"),
            PAFCodec(IN, HM, COCO17.limbs), _lift_codec()]


def _inside(b=4, k=17, size=IN, margin=6.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    lo = torch.tensor([margin, margin])
    hi = torch.tensor(size, dtype=torch.float32) - 1 - margin
    return lo + torch.rand(b, k, 2, generator=g) * (hi - lo)


def _mirror(kp, width=IN[0]):
    """Keypoints of the horizontally flipped input (x' = W - 1 - x, left/right swapped)."""
    out = kp[..., FLIP, :].clone()
    out[..., 0] = width - 1 - out[..., 0]
    return out


# ---------------------------------------------------------------- registry and config
def test_registry_names_and_config_round_trip():
    assert list_codecs() == sorted(["msra", "unbiased", "udp", "simcc", "regression", "integral",
                                    "paf", "lift3d", "pipnet", "multilevel", "deepercut",
                                    "associative_embedding", "mppe3d", "vnect", "dconvmp", "orpm",
                                    "volumetric"])
    for codec in _every_codec():
        cfg = codec.to_config()
        assert cfg["name"] in CODECS and isinstance(codec, Codec)
        again = build_codec(**cfg)
        assert type(again) is type(codec) and again.to_config() == cfg and again == codec
        import json
        assert json.loads(json.dumps(cfg)) == cfg   # plain json types
    assert UDPHeatmap.udp_transform and not MSRAHeatmap.udp_transform
    with pytest.raises(ValueError, match="unknown codec"):
        build_codec("nope")
    with pytest.raises(ValueError, match="decode"):
        MSRAHeatmap(IN, HM, decode="soft")


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="keypoints"):
        MSRAHeatmap(IN, HM).encode(torch.zeros(2, 17, 3), torch.ones(2, 17))
    with pytest.raises(ValueError, match="visibility"):
        MSRAHeatmap(IN, HM).encode(torch.zeros(2, 17, 2), torch.ones(2, 16))
    with pytest.raises(ValueError, match="keypoints"):
        SimCCLabel(IN).encode(torch.zeros(2, 1, 17, 2), torch.ones(2, 1, 17))
    with pytest.raises(ValueError, match="flip_index"):
        MSRAHeatmap(IN, HM).flip_back(torch.zeros(1, 17, 16, 12), [0, 1])


# ---------------------------------------------------------------- mmpose 1.3.2 parity
@pytest.mark.parametrize("name,codec", [("msra", MSRAHeatmap(IN, HM, 2.0)),
                                        ("unbiased", UnbiasedHeatmap(IN, HM, 2.0)),
                                        ("udp", UDPHeatmap(IN, HM, 2.0))])
def test_heatmap_codecs_match_mmpose(name, codec):
    kp, vis = X["keypoints"][:, 0], X["visibility"][:, 0]
    enc = codec.encode(kp, vis)
    np.testing.assert_allclose(enc["heatmaps"].numpy(), REF[f"{name}_heatmaps"], atol=2e-6)
    np.testing.assert_array_equal(enc["keypoint_weights"].numpy(), REF[f"{name}_weights"][:, 0])
    coords, scores = codec.decode(X["maps"])
    want, want_scores = REF[f"{name}_decoded"], REF[f"{name}_scores"]
    if name == "udp":
        # pyhpe decodes to true input pixels, mmpose to input_size / (heatmap_size - 1) units
        want = want * (np.array(IN, np.float32) - 1) / np.array(IN, np.float32)
    ok = want_scores > 0   # mmpose's DARK divides by 0 on empty maps; pyhpe keeps -1 there
    np.testing.assert_allclose(scores.numpy(), want_scores, atol=1e-6)
    np.testing.assert_allclose(coords.numpy()[ok], want[ok], atol=2e-4)
    assert (coords.numpy()[~ok] < 0).all()


def test_simcc_matches_mmpose():
    codec = SimCCLabel(IN, REC.SIMCC_SIGMA, REC.SIMCC_SPLIT)
    kp = X["keypoints"].reshape(-1, 17, 2)[:3]
    vis = X["visibility"].reshape(-1, 17)[:3]
    enc = codec.encode(kp, vis)
    np.testing.assert_allclose(enc["x_labels"].numpy(), REF["simcc_x_labels"], atol=1e-6)
    np.testing.assert_allclose(enc["y_labels"].numpy(), REF["simcc_y_labels"], atol=1e-6)
    np.testing.assert_array_equal(enc["keypoint_weights"].numpy(), REF["simcc_weights"])
    for name, dark in (("simcc", False), ("simcc_dark", True)):
        c = SimCCLabel(IN, REC.SIMCC_SIGMA, REC.SIMCC_SPLIT, decode_dark=dark)
        coords, scores = c.decode((X["simcc_x"], X["simcc_y"]))
        np.testing.assert_allclose(coords.numpy(), REF[f"{name}_decoded"], atol=1e-4)
        np.testing.assert_allclose(scores.numpy(), REF[f"{name}_scores"], atol=1e-6)


def test_regression_and_integral_match_mmpose():
    kp, vis = X["keypoints"].reshape(-1, 17, 2), X["visibility"].reshape(-1, 17)
    enc = RegressionLabel(IN).encode(kp, vis)
    np.testing.assert_allclose(enc["keypoint_labels"].numpy(), REF["regression_labels"], rtol=1e-6)
    np.testing.assert_array_equal(enc["keypoint_weights"].numpy(), REF["regression_weights"])
    np.testing.assert_allclose(RegressionLabel(IN).decode(X["pred_xy"])[0].numpy(),
                               REF["regression_decoded"], rtol=1e-6)
    codec = IntegralRegressionLabel(IN, HM, "dsnt", reg_sigma=2.0)
    enc = codec.encode(kp[:1], vis[:1])
    # pyhpe's labels are heatmap pixels, mmpose's are divided by the input size
    np.testing.assert_allclose((enc["keypoint_labels"] / torch.tensor(HM)).numpy(),
                               REF["integral_labels"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(enc["keypoint_weights"].numpy(), REF["integral_weights"])
    ok = enc["keypoint_weights"][0].numpy() > 0   # pyhpe draws no map for unweighted keypoints
    np.testing.assert_allclose(enc["heatmaps"][0].numpy()[ok], REF["integral_heatmaps"][ok],
                               atol=1e-6)


def test_lift3d_matches_mmpose_image_pose_lifting():
    codec = _lift_codec(center_2d=False, root=0)   # mmpose does not root-centre the 2-D input
    kp, vis = X["keypoints"][:, 0], X["visibility"][:, 0]
    enc = codec.encode(kp, vis, keypoints_3d=X["pose_3d"])
    np.testing.assert_allclose(enc["inputs"].numpy(), REF["lift_inputs"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(enc["keypoint_labels"].numpy(), REF["lift_labels"], rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(codec.decode(enc["keypoint_labels"])[0].numpy(), REF["lift_decoded"],
                               rtol=1e-5, atol=1e-3)


def test_losses_match_mmpose():
    torch.testing.assert_close(keypoint_mse_loss(X["pred_hm"], X["target_hm"], X["weights"]),
                               torch.tensor(REF["loss_keypoint_mse"]))
    kl = kl_discret_loss((X["simcc_x"], X["simcc_y"]),
                         (torch.from_numpy(REF["simcc_x_labels"]), torch.from_numpy(REF["simcc_y_labels"])),
                         torch.from_numpy(REF["simcc_weights"]), beta=10.0, label_softmax=True)
    torch.testing.assert_close(kl, torch.tensor(REF["loss_kl_discret"]), rtol=1e-5, atol=1e-6)
    for kind in ("l1", "smooth_l1", "mse"):
        torch.testing.assert_close(coordinate_loss(X["pred_xy"], X["target_xy"], X["weights"], kind),
                                   torch.tensor(REF[f"loss_{kind}"]))


def test_fixture_is_small():
    assert os.path.getsize(os.path.join(DATA, "mmpose_codecs.npz")) < 300_000


# ---------------------------------------------------------------- round trips
def _err_hm(codec, coords, kp):
    """Max error in heatmap pixels."""
    return float(((coords - kp).abs() / torch.tensor(codec.scale_factor)).max())


def test_msra_round_trip_within_half_a_heatmap_pixel():
    codec = MSRAHeatmap(IN, HM)
    kp = _inside()
    coords, scores = codec.decode(codec.encode(kp, torch.ones(4, 17))["heatmaps"])
    # integer-centred Gaussians: the decode is the rounded keypoint (symmetric neighbours)
    assert _err_hm(codec, coords, kp) <= 0.5 + 1e-5
    assert torch.allclose(scores, torch.ones_like(scores))


def test_argmax_quarter_offset_within_a_quarter_pixel_on_exact_gaussians():
    kp = _inside()
    maps = UnbiasedHeatmap(IN, HM).encode(kp, torch.ones(4, 17))["heatmaps"]
    assert _err_hm(MSRAHeatmap(IN, HM), MSRAHeatmap(IN, HM).decode(maps)[0], kp) <= 0.25 + 1e-5


@pytest.mark.parametrize("codec", [UnbiasedHeatmap(BIG_IN, BIG_HM),
                                   MSRAHeatmap(BIG_IN, BIG_HM, decode="dark"),
                                   UDPHeatmap(BIG_IN, BIG_HM)], ids=["unbiased", "msra-dark", "udp"])
def test_dark_round_trips_are_well_under_a_tenth_of_a_pixel(codec):
    kp = _inside(size=BIG_IN, margin=40.0)
    if codec.name == "msra":   # DARK on exact Gaussians
        maps = UnbiasedHeatmap(BIG_IN, BIG_HM).encode(kp, torch.ones(4, 17))["heatmaps"]
    else:
        maps = codec.encode(kp, torch.ones(4, 17))["heatmaps"]
    assert _err_hm(codec, codec.decode(maps)[0], kp) < 0.01


def test_simcc_round_trip_within_half_a_bin():
    codec = SimCCLabel(IN, split_ratio=2.0)
    kp = _inside(margin=1.0)
    enc = codec.encode(kp, torch.ones(4, 17))
    coords, scores = codec.decode((enc["x_labels"], enc["y_labels"]))
    assert float((coords - kp).abs().max()) <= 0.5 / codec.split_ratio + 1e-5
    # 1-D DARK finds the labels' (rounded) centre: the same bound, away from the blur's reach
    dark = SimCCLabel(IN, split_ratio=2.0, decode_dark=True)
    kp = _inside(margin=8.0)
    enc = codec.encode(kp, torch.ones(4, 17))
    err = float((dark.decode((enc["x_labels"], enc["y_labels"]))[0] - kp).abs().max())
    assert err <= 0.5 / codec.split_ratio + 1e-4


def test_regression_round_trip_is_exact():
    codec = RegressionLabel(IN)
    kp = _inside(margin=0.0)
    enc = codec.encode(kp, torch.full((4, 17), 2.0))
    torch.testing.assert_close(codec.decode(enc["keypoint_labels"])[0], kp)
    assert (enc["keypoint_weights"] == 1).all()   # COCO v = 2 clamps to 1
    out = torch.tensor([[[-1.0, 5.0], [47.0, 63.0], [48.0, 10.0]]])
    w = codec.encode(out, torch.ones(1, 3))["keypoint_weights"]
    assert w.tolist() == [[0.0, 1.0, 0.0]]   # mmpose: inside [0, size - 1] only


def _peaked_logits(method, kp_hm, size=HM):
    """Logits whose decode is the keypoint: ipr / dsnt: the log of a sigma-1 Gaussian (its
    softmax is the normalised Gaussian); dipr: 4 x a sigma-1.5 Gaussian over a zero
    background (the uniform part the debiasing removes)."""
    if method == "dipr":
        return UnbiasedHeatmap(size, size, sigma=1.5).encode(kp_hm, None)["heatmaps"] * 4
    return UnbiasedHeatmap(size, size, sigma=1.0).encode(kp_hm, None)["heatmaps"].clamp_min(1e-30).log()


@pytest.mark.parametrize("method", ["ipr", "dipr", "dsnt"])
def test_integral_round_trip_on_peaked_maps(method):
    codec = IntegralRegressionLabel(IN, HM, method, beta=1.0, debias_form="paper")
    kp = _inside(margin=16.0)   # 4 map pixels from the border: the truncated tails are < 1e-4
    kp_hm = kp / 4
    logits = _peaked_logits(method, kp_hm)
    labels = codec.encode(kp, torch.ones(4, 17))["keypoint_labels"]
    torch.testing.assert_close(labels, kp_hm)
    err = float((codec.decode_logits(logits) - kp_hm).abs().max())
    assert err < 0.01, err
    coords, conf = codec.decode(logits)
    assert float((coords - kp).abs().max()) < 0.04 and (conf > 0).all() and (conf <= 1).all()
    # differentiable: the loss path backpropagates through the ops
    logits = logits.clone().requires_grad_(True)
    codec.decode_logits(logits).sum().backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_integral_dsnt_targets_are_unit_sum_gaussians():
    codec = IntegralRegressionLabel(IN, HM, "dsnt", reg_sigma=1.0)
    enc = codec.encode(_inside(), torch.ones(4, 17))
    torch.testing.assert_close(enc["heatmaps"].sum((-2, -1)), torch.ones(4, 17))
    assert "heatmaps" not in IntegralRegressionLabel(IN, HM, "ipr").encode(_inside(), None)


def test_paf_round_trip_groups_the_people():
    size, hm = (96, 96), (48, 48)
    codec = PAFCodec(size, hm, COCO17_LIMBS, sigma=1.5, limb_width=1.0, threshold=0.3)
    person = torch.tensor([[24, 10], [26, 8], [22, 8], [28, 9], [20, 9], [32, 20], [16, 20],
                           [36, 32], [12, 32], [38, 44], [10, 44], [29, 46], [19, 46], [30, 64],
                           [18, 64], [31, 82], [17, 82]], dtype=torch.float32)
    # 5 map pixels from the top: MSRA's window with a fractional 3 sigma near the border is
    # shifted a pixel (mmpose's integer truncation, reproduced by the kernel)
    person = person + torch.tensor([0.0, 4.0])
    kp = torch.stack([person, person + torch.tensor([48.0, 2.0])])[None]   # (1, 2, 17, 2)
    enc = codec.encode(kp, torch.ones(1, 2, 17))
    assert enc["heatmaps"].shape == (1, 18, 48, 48) and enc["pafs"].shape == (1, 32, 48, 48)
    assert enc["keypoint_weights"].shape == (1, 2, 17)
    torch.testing.assert_close(enc["heatmaps"][:, 17], (1 - enc["heatmaps"][:, :17].amax(1)).clamp(0, 1))
    people, scores = codec.decode(PAFOutputs(enc["heatmaps"], enc["pafs"]))
    assert len(people) == 1 and people[0].shape == (2, 17, 2) and scores[0].shape == (2, 17)
    got = people[0][people[0][:, 0, 0].argsort()]
    assert float((got - kp[0]).abs().max()) <= 1.0 + 1e-4   # stride 2: half a map pixel of rounding
    assert (scores[0] > 0.9).all()
    kps, kscores, person_scores = codec.decode_instances(PAFOutputs(enc["heatmaps"], enc["pafs"]))
    assert person_scores[0].shape == (2,)


def test_lift3d_round_trip_and_stats():
    rng = np.random.default_rng(0)
    p2, p3 = rng.normal(0, 50, (40, 17, 2)), rng.normal(0, 300, (40, 17, 3))
    codec = Lift3DCodec.from_data(p2, p3, root_index=(11, 12))
    enc = codec.encode(torch.tensor(p2, dtype=torch.float32), None,
                       keypoints_3d=torch.tensor(p3, dtype=torch.float32))
    # standardised over the training set: zero mean, unit std (the root-centred root is floored)
    assert float(enc["inputs"].mean(0).abs().max()) < 1e-4
    back = codec.decode(enc["keypoint_labels"])[0]
    root = p3[:, [11, 12]].mean(1, keepdims=True)
    np.testing.assert_allclose(back.numpy(), p3 - root, atol=1e-2)
    assert "keypoint_labels" not in codec.encode(torch.zeros(2, 17, 2), None)


# ---------------------------------------------------------------- batch == per sample
@pytest.mark.parametrize("codec", _every_codec(), ids=lambda c: c.name)
def test_batch_encode_equals_per_sample_encode(codec):
    kp = X["keypoints"][:, 0]
    vis = X["visibility"][:, 0]
    meta = {"keypoints_3d": X["pose_3d"]} if isinstance(codec, Lift3DCodec) else {}
    batch = codec.encode(kp, vis, **meta)
    for b in range(kp.shape[0]):
        one = codec.encode(kp[b:b + 1], vis[b:b + 1], **{k: v[b:b + 1] for k, v in meta.items()})
        assert set(one) == set(batch)
        for key in batch:
            torch.testing.assert_close(one[key][0], batch[key][b], rtol=0, atol=0)
    assert batch["keypoint_weights"].shape == (3, 17)


@pytest.mark.parametrize("cls", [MSRAHeatmap, UnbiasedHeatmap, UDPHeatmap])
def test_multi_instance_heatmaps_are_the_max_over_instances(cls):
    codec = cls(IN, HM)
    kp, vis = X["keypoints"], X["visibility"]
    enc = codec.encode(kp, vis)
    assert enc["heatmaps"].shape == (3, 17, 16, 12) and enc["keypoint_weights"].shape == (3, 2, 17)
    singles = [codec.encode(kp[:, n], vis[:, n]) for n in range(2)]
    torch.testing.assert_close(enc["heatmaps"], torch.maximum(*[s["heatmaps"] for s in singles]))
    torch.testing.assert_close(enc["keypoint_weights"],
                               torch.stack([s["keypoint_weights"] for s in singles], 1))


# ---------------------------------------------------------------- flip_back
@pytest.mark.parametrize("codec,bound", [(UnbiasedHeatmap(BIG_IN, BIG_HM), 0.05),
                                         (UDPHeatmap(BIG_IN, BIG_HM), 0.01),
                                         (MSRAHeatmap(BIG_IN, BIG_HM, decode="dark"), 0.05)],
                         ids=["unbiased", "udp", "msra-dark"])
def test_heatmap_flip_back_realigns_the_mirrored_maps(codec, bound):
    kp = _inside(size=BIG_IN, margin=40.0)
    enc = UnbiasedHeatmap if codec.name == "msra" else type(codec)
    enc = enc(BIG_IN, BIG_HM)
    flipped = enc.encode(_mirror(kp, BIG_IN[0]), torch.ones(4, 17))["heatmaps"]
    back = codec.flip_back(flipped, FLIP)
    assert _err_hm(codec, codec.decode(back)[0], kp) < bound
    # without the fractional shift the stride-4 maps are 1 - 1/4 map pixels off
    if codec.name != "udp":
        unshifted = codec.decode(flipped.flip(-1)[:, FLIP])[0]
        assert abs(float((unshifted - kp)[..., 0].mean()) / 4 + 0.75) < 0.05
    else:
        torch.testing.assert_close(back, flipped.flip(-1)[:, FLIP])


def test_simcc_flip_back_shifts_by_one_minus_the_split_ratio():
    codec = SimCCLabel(IN, split_ratio=2.0)
    kp = _inside(margin=1.0)
    enc = codec.encode(_mirror(kp), torch.ones(4, 17))
    x, y = codec.flip_back((enc["x_labels"], enc["y_labels"]), FLIP)
    assert float((codec.decode((x, y))[0] - kp).abs().max()) <= 0.5 / codec.split_ratio + 1e-5


def test_regression_and_integral_coordinate_flips():
    kp = _inside(margin=0.0)
    codec = RegressionLabel(IN)
    back = codec.flip_back(codec.encode(_mirror(kp), None)["keypoint_labels"], FLIP)
    torch.testing.assert_close(back, codec.encode(kp, None)["keypoint_labels"])
    torch.testing.assert_close(codec.flip_keypoints(_mirror(kp), FLIP), kp)
    integral = IntegralRegressionLabel(IN, HM, "ipr")
    kp = _inside(margin=16.0)
    logits = _peaked_logits("ipr", _mirror(kp) / 4)
    assert float((integral.flip_keypoints(integral.decode(logits)[0], FLIP) - kp).abs().max()) < 0.04
    back = integral.flip_back(logits, FLIP)   # the map-space flip (for map averaging)
    assert float((integral.decode(back)[0] - kp).abs().max()) < 0.1


def test_paf_flip_back():
    # a mirror-symmetric skeleton: every limb has a mirrored limb
    codec = PAFCodec(IN, HM, COCO17.limbs)
    kp = _inside(b=2, margin=4.0)[:, None]
    enc = codec.encode(kp, None)
    mirrored = codec.encode(_mirror(kp), None)
    back = codec.flip_back(PAFOutputs(mirrored["heatmaps"], mirrored["pafs"]), FLIP)
    assert not torch.isnan(back.pafs).any()
    # the mirrored fields point the same way once flipped back (compare where both are set)
    both = (enc["pafs"].abs() > 0.5) & (back.pafs.abs() > 0.5)
    assert both.sum() > 20
    assert (torch.sign(enc["pafs"][both]) == torch.sign(back.pafs[both])).float().mean() > 0.95
    # the COCO-17 PAF tree is asymmetric: unmirrorable limbs come back as NaN
    tree = PAFCodec(IN, HM, COCO17_LIMBS)
    m = tree.encode(_mirror(kp), None)
    back = tree.flip_back(PAFOutputs(m["heatmaps"], m["pafs"]), FLIP)
    nan_limbs = {i // 2 for i in torch.isnan(back.pafs[0, :, 0, 0]).nonzero().flatten().tolist()}
    assert nan_limbs == {i for i, p in enumerate(tree.limb_flip(FLIP)) if p is None} != set()


def test_lift3d_flips():
    codec = _lift_codec(center_2d=True, root=0)   # COCO's flip_index keeps joint 0 (the nose)
    kp2, k3 = X["keypoints"][:, 0], X["pose_3d"]
    m2, m3 = kp2[:, FLIP].clone(), k3[:, FLIP].clone()
    m2[..., 0], m3[..., 0] = -m2[..., 0], -m3[..., 0]
    enc = codec.encode(kp2, None, keypoints_3d=k3)
    mirrored = codec.encode(m2, None, keypoints_3d=m3)
    torch.testing.assert_close(codec.flip_inputs(enc["inputs"], FLIP), mirrored["inputs"],
                               rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(codec.flip_back(mirrored["keypoint_labels"], FLIP),
                               enc["keypoint_labels"], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(codec.flip_keypoints(m3, FLIP), k3)
    with pytest.raises(ValueError, match="center_2d"):
        _lift_codec(center_2d=False).flip_inputs(enc["inputs"], FLIP)


# ---------------------------------------------------------------- devices and dtypes
@cpu_and_cuda()
def test_encode_follows_the_keypoints_device_and_gives_float32(device):
    kp = _inside().double().to(device)
    vis = torch.full((4, 17), 2, dtype=torch.int64, device=device)
    for codec in _every_codec():
        meta = {"keypoints_3d": torch.zeros(4, 17, 3, device=device)} if codec.name == "lift3d" else {}
        enc = codec.encode(kp, vis, **meta)
        for key, value in enc.items():
            assert value.device.type == device and value.dtype == torch.float32, (codec.name, key)
        assert float(enc["keypoint_weights"].max()) <= 1.0


@cpu_and_cuda()
def test_decode_accepts_half_and_grad_outputs(device):
    kp = _inside().to(device)
    for codec in (MSRAHeatmap(IN, HM), UDPHeatmap(IN, HM)):
        hm = codec.encode(kp, None)["heatmaps"].half().requires_grad_(True)
        coords, scores = codec.decode(hm)
        assert coords.dtype == torch.float32 and coords.device.type == device
    codec = SimCCLabel(IN)
    enc = codec.encode(kp, None)
    coords, _ = codec.decode((enc["x_labels"].bfloat16(), enc["y_labels"].bfloat16()))
    assert float((coords - kp).abs().max()) <= 0.5
