import numpy as np
import pytest
import torch

from conftest import cpu_and_cuda
from pyhpe.ops import RaggedOKS, oks_matrix, oks_matrix_ragged
from pyhpe.keypoints import COCO_SIGMAS as COCO_SIGMAS_NP
from pyhpe.reference.oks import coco_oks_matrix, mmpose_oks_iou, mmpose_oks_matrix

COCO_SIGMAS = torch.from_numpy(COCO_SIGMAS_NP.copy())


def make_case(rng, D, G, K=17, vis_p=0.7):
    gt = np.zeros((G, K, 3))
    centers = rng.uniform(50, 400, size=(G, 1, 2))
    gt[..., :2] = centers + rng.normal(0, 40, size=(G, K, 2))
    gt[..., 2] = rng.choice([0, 1, 2], size=(G, K), p=[1 - vis_p, 0.1, vis_p - 0.1])
    gt[0, :, 2] = 0  # one GT with no visible keypoint -> box fallback
    src = rng.integers(0, G, size=D)
    dt = np.zeros((D, K, 3))
    dt[..., :2] = gt[src, :, :2] + rng.normal(0, rng.uniform(1, 30, size=(D, 1, 1)), size=(D, K, 2))
    dt[..., 2] = rng.uniform(0, 1, size=(D, K))
    areas = rng.uniform(100, 40000, size=G)
    boxes = np.concatenate([centers[:, 0] - 50, rng.uniform(20, 200, size=(G, 2))], 1)
    return dt, gt, areas, boxes


@cpu_and_cuda()
@pytest.mark.parametrize("K", [17, 5, 133, 300])
def test_coco_mode_matches_pycocotools_loop_bitwise(device, K):
    rng = np.random.default_rng(K)
    dt, gt, areas, boxes = make_case(rng, 9, 7, K=K)
    sigmas = rng.uniform(0.02, 0.12, size=K) if K != 17 else COCO_SIGMAS.numpy()
    ref = coco_oks_matrix(dt, gt, areas, sigmas, boxes)
    t = lambda a: torch.tensor(a, dtype=torch.float64, device=device)
    out = oks_matrix(t(dt), t(gt), t(areas), sigmas=t(sigmas), gt_boxes=t(boxes)).cpu().numpy()
    if device == "cpu":
        assert np.array_equal(out, ref)  # same bits as numpy's pairwise sum
    else:
        np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12)


def test_far_keypoints_skipped_exactly_around_the_exp_underflow():
    """Keypoints whose exp(-e) underflows to 0 skip the divisions and exp; the OKS stays
    pycocotools' bit for bit with e swept finely across the bound (740..752), tiny and zero
    areas and boxes-only GT included."""
    rng = np.random.default_rng(11)
    K, D = 17, 64
    sig = COCO_SIGMAS.numpy()
    var = (2 * sig) ** 2
    gt = np.zeros((3, K, 3))
    gt[..., 2] = 2.0
    gt[2, :, 2] = 0.0                                        # boxes-only GT
    areas = np.array([900.0, 1e-9, 400.0])
    boxes = np.array([[0, 0, 30, 30], [0, 0, 1, 1], [5, 5, 20, 20]], float)
    e = np.linspace(740.0, 752.0, D)[:, None] + rng.uniform(-0.01, 0.01, (D, K))
    # d^2 = e * var * (area + eps) * 2 (the first GT): dx carries it all
    d = np.sqrt(e * var * (areas[0] + np.spacing(1.0)) * 2)
    dt = np.zeros((D, K, 3))
    dt[..., 0] = d
    dt[:8, :3, 0] *= 0.1                                      # a few near keypoints too
    ref = coco_oks_matrix(dt, gt, areas, sig, boxes)
    t = lambda a: torch.tensor(a, dtype=torch.float64)      # noqa: E731
    out = oks_matrix(t(dt), t(gt), t(areas), sigmas=t(sig), gt_boxes=t(boxes)).numpy()
    assert np.array_equal(out, ref)
    assert (ref[:, 0] > 0).any() and (ref[-8:, 0] == 0).all()


@cpu_and_cuda()
def test_float32_close_and_xy_only_detections(device):
    rng = np.random.default_rng(1)
    dt, gt, areas, boxes = make_case(rng, 6, 4)
    ref = coco_oks_matrix(dt, gt, areas, COCO_SIGMAS.numpy(), boxes)
    t = lambda a: torch.tensor(a, dtype=torch.float32, device=device)
    out = oks_matrix(t(dt[..., :2]), t(gt), t(areas), sigmas=None, gt_boxes=t(boxes))
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.cpu().numpy(), ref, rtol=1e-5, atol=1e-6)


def test_gt_without_visible_keypoints_and_no_box_gives_zero():
    rng = np.random.default_rng(2)
    dt, gt, areas, _ = make_case(rng, 3, 2)
    out = oks_matrix(torch.tensor(dt), torch.tensor(gt), torch.tensor(areas))
    assert torch.all(out[:, 0] == 0)
    ref = coco_oks_matrix(dt, gt, areas, COCO_SIGMAS.numpy())
    assert np.array_equal(out.numpy(), ref)


@cpu_and_cuda()
@pytest.mark.parametrize("vis_thr", [None, 0.3])
def test_mmpose_mode_matches_oks_iou(device, vis_thr):
    rng = np.random.default_rng(3)
    dt, gt, _, _ = make_case(rng, 8, 5)
    gt[..., 2] = rng.uniform(0, 1, size=gt.shape[:2])
    gt_areas = rng.uniform(100, 5000, size=5)
    dt_areas = rng.uniform(100, 5000, size=8)
    t = lambda a: torch.tensor(a, dtype=torch.float64, device=device)
    out = oks_matrix(t(dt), t(gt), t(gt_areas), sigmas=None, dt_areas=t(dt_areas), vis_thr=vis_thr,
                     mode="mmpose").cpu().numpy()
    ref = mmpose_oks_matrix(dt, gt, gt_areas, dt_areas, COCO_SIGMAS.numpy(), vis_thr)
    if device == "cpu":
        assert np.array_equal(out, ref)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12)
    # and mmpose's own per-GT function (float32 output)
    for j in range(5):
        col = mmpose_oks_iou(gt[j].reshape(-1), dt.reshape(8, -1), gt_areas[j], dt_areas,
                             COCO_SIGMAS.numpy(), vis_thr)
        np.testing.assert_array_equal(out[:, j].astype(np.float32), col)


@cpu_and_cuda()
def test_batched_padded_with_counts(device):
    rng = np.random.default_rng(4)
    N, D, G, K = 3, 6, 4, 17
    cases = [make_case(rng, D, G) for _ in range(N)]
    t = lambda a: torch.tensor(np.stack(a), dtype=torch.float64, device=device)
    dt, gt, areas, boxes = (t([c[i] for c in cases]) for i in range(4))
    dc = torch.tensor([6, 0, 3], device=device)
    gc = torch.tensor([4, 2, 1], device=device)
    out = oks_matrix(dt, gt, areas, sigmas=None, gt_boxes=boxes, dt_counts=dc, gt_counts=gc)
    assert out.shape == (N, D, G)
    for n in range(N):
        d, g = int(dc[n]), int(gc[n])
        ref = coco_oks_matrix(cases[n][0][:d], cases[n][1][:g], cases[n][2][:g],
                              COCO_SIGMAS.numpy(), cases[n][3][:g])
        assert np.array_equal(out[n, :d, :g].cpu().numpy(), ref)
        assert torch.all(out[n, d:] == 0) and torch.all(out[n, :, g:] == 0)


@cpu_and_cuda()
def test_ragged_matches_per_image(device):
    rng = np.random.default_rng(5)
    sizes = [(3, 2), (0, 4), (5, 0), (1, 1), (4, 3)]
    cases = [make_case(rng, d, max(g, 1))[:4] for d, g in sizes]
    cases = [(c[0], c[1][:g], c[2][:g], c[3][:g]) for c, (d, g) in zip(cases, sizes)]
    t = lambda a: torch.tensor(np.concatenate(a), dtype=torch.float64, device=device)
    dt = t([c[0] for c in cases]).reshape(-1, 17, 3)
    gt = t([c[1] for c in cases]).reshape(-1, 17, 3)
    areas, boxes = t([c[2] for c in cases]), t([c[3] for c in cases]).reshape(-1, 4)
    dto = np.concatenate([[0], np.cumsum([d for d, _ in sizes])])
    gto = np.concatenate([[0], np.cumsum([g for _, g in sizes])])
    result = oks_matrix_ragged(dt, gt, areas, dto, gto, sigmas=None, gt_boxes=boxes)
    assert isinstance(result, RaggedOKS)
    assert result.dt_counts.tolist() == [d for d, _ in sizes]
    assert result.values.shape == (sum(d * g for d, g in sizes),)
    mats = result.matrices()
    assert len(mats) == len(sizes)
    for m, c, (d, g) in zip(mats, cases, sizes):
        assert m.shape == (d, g)
        ref = coco_oks_matrix(c[0], c[1], c[2], COCO_SIGMAS.numpy(), c[3]).reshape(d, g)
        assert np.array_equal(m.cpu().numpy(), ref)


def test_empty_inputs():
    z = torch.zeros
    assert oks_matrix(z(0, 17, 3), z(3, 17, 3), z(3)).shape == (0, 3)
    assert oks_matrix(z(2, 17, 3), z(0, 17, 3), z(0)).shape == (2, 0)
    assert oks_matrix(z(0, 0, 17, 3), z(0, 0, 17, 3), z(0, 0)).shape == (0, 0, 0)
    result = oks_matrix_ragged(z(0, 17, 3), z(0, 17, 3), z(0), [0], [0])
    assert result.values.shape == (0,) and result.matrices() == []


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(sigmas=torch.ones(5, dtype=torch.float64) * 0.1), ValueError, "one entry per keypoint"),
    (dict(sigmas=-torch.ones(17, dtype=torch.float64)), ValueError, "positive"),
    (dict(mode="bogus"), ValueError, "'mode' must be"),
    (dict(vis_thr=0.2), ValueError, "mmpose"),
    (dict(mode="mmpose"), ValueError, "dt_areas"),
])
def test_bad_arguments(kwargs, exc, match):
    dt = torch.rand(2, 17, 3, dtype=torch.float64)
    gt = torch.rand(3, 17, 3, dtype=torch.float64)
    with pytest.raises(exc, match=match):
        oks_matrix(dt, gt, torch.ones(3, dtype=torch.float64), **kwargs)


def test_bad_shapes_dtypes_and_nan():
    dt = torch.rand(2, 17, 3, dtype=torch.float64)
    gt = torch.rand(3, 17, 3, dtype=torch.float64)
    a = torch.ones(3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"'gt' must have shape"):
        oks_matrix(dt, gt[:, :16], a, sigmas=torch.ones(17, dtype=torch.float64) * 0.1)
    with pytest.raises(ValueError, match="last dim must be 2"):
        oks_matrix(torch.rand(2, 17, 4, dtype=torch.float64), gt, a)
    with pytest.raises(TypeError, match="float32 or float64"):
        oks_matrix(dt.to(torch.int64), gt.to(torch.int64), a.to(torch.int64))
    with pytest.raises(TypeError, match="dtype of 'dt'"):
        torch.ops.pyhpe.oks_matrix(dt[None], gt[None].float(), a[None], COCO_SIGMAS)
    with pytest.raises(ValueError, match="'gt_areas' must have shape"):
        oks_matrix(dt, gt, torch.ones(4, dtype=torch.float64))
    bad = dt.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="'dt' contains NaN"):
        oks_matrix(bad, gt, a)
    with pytest.raises(ValueError, match="'total' must equal"):
        torch.ops.pyhpe.oks_matrix_ragged(dt, gt, a, COCO_SIGMAS, torch.tensor([0, 2]),
                                          torch.tensor([0, 3]), 5)
    with pytest.raises(ValueError, match="non-decreasing"):
        oks_matrix_ragged(dt, gt, a, [0, 2, 1, 2], [0, 1, 2, 3])


def test_opcheck():
    rng = np.random.default_rng(6)
    dt, gt, areas, boxes = make_case(rng, 4, 3)
    t = lambda a: torch.tensor(a, dtype=torch.float64)
    args = (t(dt)[None], t(gt)[None], t(areas)[None], COCO_SIGMAS, t(boxes)[None])
    torch.library.opcheck(torch.ops.pyhpe.oks_matrix.default, args)
    torch.library.opcheck(torch.ops.pyhpe.oks_matrix_ragged.default,
                          (t(dt), t(gt), t(areas), COCO_SIGMAS, torch.tensor([0, 4]),
                           torch.tensor([0, 3]), 12, t(boxes)))


def test_torch_compile_smoke():
    rng = np.random.default_rng(7)
    dt, gt, areas, boxes = make_case(rng, 4, 3)
    t = lambda a: torch.tensor(a, dtype=torch.float64)

    @torch.compile(fullgraph=True, backend="aot_eager")
    def f(d, g, a, b):
        return torch.ops.pyhpe.oks_matrix(d, g, a, COCO_SIGMAS, b).sum(-1)

    out = f(t(dt)[None], t(gt)[None], t(areas)[None], t(boxes)[None])
    ref = coco_oks_matrix(dt, gt, areas, COCO_SIGMAS.numpy(), boxes).sum(-1)
    np.testing.assert_allclose(out[0].numpy(), ref, rtol=1e-12)


def _ragged_case():
    dt = torch.rand(5, 17, 3, dtype=torch.float64) * 100
    gt = torch.rand(4, 17, 3, dtype=torch.float64) * 100
    return dt, gt, torch.full((4,), 900.0, dtype=torch.float64)


@pytest.mark.parametrize("field", ["dt", "gt", "gt_areas", "gt_boxes"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_ragged_rejects_non_finite_values_like_padded(field, value):
    dt, gt, areas = _ragged_case()
    args = dict(dt=dt, gt=gt, gt_areas=areas, gt_boxes=torch.ones(4, 4, dtype=torch.float64))
    args[field] = args[field].clone()
    args[field].view(-1)[3] = value
    with pytest.raises(ValueError, match=f"pyhpe.oks_matrix_ragged: '{field}' contains NaN"):
        oks_matrix_ragged(args["dt"], args["gt"], args["gt_areas"], [0, 2, 5], [0, 1, 4],
                          gt_boxes=args["gt_boxes"])
    with pytest.raises(ValueError, match=f"pyhpe.oks_matrix: '{field}' contains NaN"):
        oks_matrix(args["dt"], args["gt"], args["gt_areas"], gt_boxes=args["gt_boxes"])


def test_ragged_rejects_bad_sigmas_like_padded():
    dt, gt, areas = _ragged_case()
    for sigmas in (-COCO_SIGMAS, COCO_SIGMAS * 0):
        with pytest.raises(ValueError, match="pyhpe.oks_matrix_ragged: 'sigmas' must be positive"):
            oks_matrix_ragged(dt, gt, areas, [0, 5], [0, 4], sigmas=sigmas)
    with pytest.raises(ValueError, match="pyhpe.oks_matrix_ragged: 'sigmas' is required"):
        oks_matrix_ragged(dt[:, :5], gt[:, :5], areas, [0, 5], [0, 4])
    with pytest.raises(ValueError, match="pyhpe.oks_matrix_ragged: 'sigmas' must have one entry"):
        oks_matrix_ragged(dt, gt, areas, [0, 5], [0, 4], sigmas=COCO_SIGMAS[:5])


@pytest.mark.parametrize("dt_offsets,gt_offsets,exc,match", [
    (torch.tensor(5), [0, 4], ValueError, r"'dt_offsets' must have shape \(N \+ 1,\)"),
    ([0, 5], torch.tensor([[0, 4]]), ValueError, r"'gt_offsets' must have shape \(N \+ 1,\)"),
    ([0.0, 5.0], [0, 4], TypeError, "'dt_offsets' must be int64 or int32"),
    ([0, 5], torch.tensor([0.0, 4.0]), TypeError, "'gt_offsets' must be int64 or int32"),
    ([0, 2, 5], [0, 4], ValueError, "'dt_offsets' and 'gt_offsets' must both have N \\+ 1"),
    (torch.tensor([], dtype=torch.int64), torch.tensor([], dtype=torch.int64), ValueError,
     "'dt_offsets' and 'gt_offsets' must both have N \\+ 1 >= 1"),
    ([1, 5], [0, 4], ValueError, "'dt_offsets' must start at 0, got 1"),
    ([0, 5], [-1, 4], ValueError, "'gt_offsets' must start at 0, got -1"),
    ([0, 3, 2, 5], [0, 1, 2, 4], ValueError, "'dt_offsets' must be non-decreasing"),
    ([0, 2, 3, 5], [0, 3, 2, 4], ValueError, "'gt_offsets' must be non-decreasing"),
    ([0, -2, 5], [0, -1, 4], ValueError, "'dt_offsets' must be non-decreasing"),
    ([0, 4], [0, 4], ValueError, r"dt_offsets\[-1\] must equal dt.size\(0\)=5"),
    ([0, 5], [0, 3], ValueError, r"gt_offsets\[-1\] must equal gt.size\(0\)=4"),
])
def test_ragged_offsets_are_checked(dt_offsets, gt_offsets, exc, match):
    dt, gt, areas = _ragged_case()
    with pytest.raises(exc, match="pyhpe.oks_matrix_ragged: .*" + match):
        oks_matrix_ragged(dt, gt, areas, dt_offsets, gt_offsets)


@pytest.mark.parametrize("counts,exc,match", [
    (dict(dt_counts=torch.tensor([2, -1])), ValueError, r"'dt_counts' must lie in \[0, 3\]"),
    (dict(dt_counts=torch.tensor([2, 4])), ValueError, r"'dt_counts' must lie in \[0, 3\]"),
    (dict(gt_counts=torch.tensor([-3, 1], dtype=torch.int32)), ValueError,
     r"'gt_counts' must lie in \[0, 4\]"),
    (dict(gt_counts=torch.tensor([5, 1])), ValueError, r"'gt_counts' must lie in \[0, 4\]"),
    (dict(dt_counts=torch.tensor([1.0, 2.0])), TypeError, "'dt_counts' must be int64 or int32"),
    (dict(gt_counts=torch.tensor([1, 2, 3])), ValueError, r"'gt_counts' must have shape \(N,\)"),
    (dict(dt_counts=torch.tensor(2)), ValueError, r"'dt_counts' must have shape \(N,\)"),
])
def test_padded_counts_are_checked(counts, exc, match):
    dt = torch.rand(2, 3, 17, 3, dtype=torch.float64)
    gt = torch.rand(2, 4, 17, 3, dtype=torch.float64)
    with pytest.raises(exc, match="pyhpe.oks_matrix: " + match):
        oks_matrix(dt, gt, torch.ones(2, 4, dtype=torch.float64), **counts)
    # The bounds themselves are valid.
    full = dict(dt_counts=torch.tensor([0, 3]), gt_counts=torch.tensor([4, 0]))
    out = oks_matrix(dt, gt, torch.ones(2, 4, dtype=torch.float64), **full)
    assert torch.all(out[0] == 0) and torch.all(out[1] == 0)


def test_negative_areas_are_rejected_zero_areas_allowed():
    dt, gt, areas = _ragged_case()
    bad = areas.clone()
    bad[2] = -1.0
    # Unchecked, a negative area flips the exponent's sign: an OKS above 1.
    raw = torch.ops.pyhpe.oks_matrix(dt[None], gt[None], bad[None], COCO_SIGMAS)
    assert bool((raw[0, :, 2] > 1).any())
    with pytest.raises(ValueError, match="pyhpe.oks_matrix: 'gt_areas' must be >= 0"):
        oks_matrix(dt, gt, bad)
    with pytest.raises(ValueError, match="pyhpe.oks_matrix_ragged: 'gt_areas' must be >= 0"):
        oks_matrix_ragged(dt, gt, bad, [0, 5], [0, 4])
    dt_areas = torch.full((5,), 100.0, dtype=torch.float64)
    dt_areas[0] = -5.0
    with pytest.raises(ValueError, match="pyhpe.oks_matrix: 'dt_areas' must be >= 0"):
        oks_matrix(dt, gt, areas, dt_areas=dt_areas, mode="mmpose")
    with pytest.raises(ValueError, match="pyhpe.oks_matrix_ragged: 'dt_areas' must be >= 0"):
        oks_matrix_ragged(dt, gt, areas, [0, 5], [0, 4], dt_areas=dt_areas, mode="mmpose")
    # Zero area: pycocotools' eps keeps it defined (1 at zero distance, else about 0).
    zero = torch.zeros(4, dtype=torch.float64)
    out = oks_matrix(dt, gt, zero)
    ref = coco_oks_matrix(dt.numpy(), gt.numpy(), zero.numpy(), COCO_SIGMAS.numpy())
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-12)
    assert torch.all((out >= 0) & (out <= 1))
    # validate=False skips the value checks.
    assert oks_matrix(dt, gt, bad, validate=False).shape == (5, 4)
    assert oks_matrix_ragged(dt, gt, bad, [0, 5], [0, 4],
                             validate=False).matrices()[0].shape == (5, 4)


@pytest.mark.parametrize("name", ["dt", "gt", "gt_areas", "sigmas", "gt_boxes"])
def test_not_differentiable_error_names_the_input(name):
    dt, gt, areas = _ragged_case()
    args = dict(dt=dt[None], gt=gt[None], gt_areas=areas[None], sigmas=COCO_SIGMAS.clone(),
                gt_boxes=torch.ones(1, 4, 4, dtype=torch.float64))
    args[name] = args[name].clone().requires_grad_()
    with pytest.raises(RuntimeError, match=f"pyhpe.oks_matrix: is not differentiable.*'{name}'"):
        torch.ops.pyhpe.oks_matrix(**args)
    with pytest.raises(RuntimeError, match=f"pyhpe.oks_matrix: is not differentiable.*'{name}'"):
        oks_matrix(args["dt"], args["gt"], args["gt_areas"], sigmas=args["sigmas"],
                   gt_boxes=args["gt_boxes"])
    ragged = {k: (v[0] if k in ("dt", "gt", "gt_areas", "gt_boxes") else v)
              for k, v in args.items()}
    with pytest.raises(RuntimeError,
                       match=f"pyhpe.oks_matrix_ragged: is not differentiable.*'{name}'"):
        torch.ops.pyhpe.oks_matrix_ragged(ragged["dt"], ragged["gt"], ragged["gt_areas"],
                                          ragged["sigmas"], torch.tensor([0, 5]),
                                          torch.tensor([0, 4]), 20, ragged["gt_boxes"])
    # Without grad mode the op runs and its output does not pretend to carry a gradient.
    with torch.no_grad():
        out = oks_matrix(args["dt"], args["gt"], args["gt_areas"], sigmas=args["sigmas"],
                         gt_boxes=args["gt_boxes"])
        flat = torch.ops.pyhpe.oks_matrix_ragged(
            ragged["dt"], ragged["gt"], ragged["gt_areas"], ragged["sigmas"],
            torch.tensor([0, 5]), torch.tensor([0, 4]), 20, ragged["gt_boxes"])
    assert not out.requires_grad and not flat.requires_grad
    ref = oks_matrix(dt, gt, areas, sigmas=COCO_SIGMAS, gt_boxes=torch.ones(4, 4,
                                                                            dtype=torch.float64))
    assert torch.equal(out[0], ref) and torch.equal(flat.view(5, 4), ref)


def test_detached_inputs_under_grad_mode_run_normally():
    dt, gt, areas = _ragged_case()
    out = oks_matrix(dt, gt, areas)
    assert not out.requires_grad and out.shape == (5, 4)
    mats = oks_matrix_ragged(dt.detach(), gt, areas, [0, 2, 5], [0, 3, 4]).matrices()
    assert [m.shape for m in mats] == [(2, 3), (3, 1)]


def test_torch_compile_keeps_the_not_differentiable_error():
    rng = np.random.default_rng(8)
    dt, gt, areas, _ = make_case(rng, 4, 3)
    t = lambda a: torch.tensor(a, dtype=torch.float64)[None]

    @torch.compile(fullgraph=True, backend="aot_eager")
    def f(d, g, a):
        return torch.ops.pyhpe.oks_matrix(d, g, a, COCO_SIGMAS).sum(-1)

    with pytest.raises(RuntimeError, match="pyhpe.oks_matrix: is not differentiable.*'dt'"):
        f(t(dt).requires_grad_(), t(gt), t(areas))
