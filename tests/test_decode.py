"""Decode family: argmax / DARK / DARK-UDP / SimCC / soft-argmax / debiased IPR / DSNT /
back-transforms, against faithful numpy / torch reimplementations of the references and
against dsntnn and kornia directly."""
import numpy as np
import pytest
import torch

import pyhpe
import pyhpe.ops as ops
from conftest import cpu_and_cuda
from pyhpe.reference import decode as ref

DTYPES = [torch.float32, torch.float64]


def gaussian_maps(rng, B, K, H, W, sigma=2.0, noise=0.02, dtype=np.float32):
    """Realistic heatmaps: one Gaussian per map at a sub-pixel centre, some near the border,
    plus noise; a few maps forced non-positive (sentinel) or all-zero."""
    ys, xs = np.mgrid[0:H, 0:W]
    cx = rng.uniform(-1, W, size=(B, K))
    cy = rng.uniform(-1, H, size=(B, K))
    amp = rng.uniform(0.3, 1.0, size=(B, K))
    hm = amp[..., None, None] * np.exp(-((xs - cx[..., None, None]) ** 2 +
                                         (ys - cy[..., None, None]) ** 2) / (2 * sigma ** 2))
    hm = hm + noise * rng.standard_normal(hm.shape)
    flat = hm.reshape(B * K, H, W)
    flat[0] = -np.abs(flat[0])  # max <= 0
    if B * K > 3:
        flat[3] = 0.0
    return flat.reshape(B, K, H, W).astype(dtype)


def to_t(a, device, dtype=None):
    t = torch.from_numpy(np.ascontiguousarray(a)).to(device)
    return t.to(dtype) if dtype is not None else t


# ---- argmax -------------------------------------------------------------------------


@cpu_and_cuda()
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rule", ["hrnet", "mmpose1"])
@pytest.mark.parametrize("quarter", [True, False])
def test_argmax_decode_matches_mmpose(device, dtype, rule, quarter, rng):
    npdt = np.float32 if dtype == torch.float32 else np.float64
    hm = gaussian_maps(rng, 4, 17, 64, 48, dtype=npdt)
    # Peaks on rows / columns 0, 1, W-2, W-1 exercise the boundary rules.
    hm[1, 1, 30, 1] = hm[1, 2, 1, 20] = hm[1, 4, 62, 46] = hm[1, 5, 0, 0] = 5.0
    coords, scores = ops.argmax_decode(to_t(hm, device), quarter_offset=quarter, offset_rule=rule)
    exp_coords, exp_scores = ref.argmax_decode(hm.copy(), quarter, rule)
    assert coords.dtype == dtype and coords.shape == (4, 17, 2) and scores.shape == (4, 17)
    np.testing.assert_array_equal(coords.cpu().numpy(), exp_coords.astype(npdt))
    np.testing.assert_array_equal(scores.cpu().numpy(), exp_scores)


@cpu_and_cuda()
def test_argmax_ties_sentinel_and_nan(device):
    hm = torch.zeros(1, 4, 5, 6, device=device)
    hm[0, 0, 2, 3] = hm[0, 0, 3, 1] = 1.0  # tie: first in row-major order wins
    hm[0, 1] = -1.0  # max <= 0: (-1, -1), score stays the max
    hm[0, 2, 1, 1] = float("nan")  # numpy: NaN is the max -> score NaN, sentinel coords
    hm[0, 3, 4, 5] = 2.0
    coords, scores = ops.argmax_decode(hm, quarter_offset=False)
    assert coords[0, 0].tolist() == [3.0, 2.0] and scores[0, 0] == 1.0
    assert coords[0, 1].tolist() == [-1.0, -1.0] and scores[0, 1] == -1.0
    assert coords[0, 2].tolist() == [-1.0, -1.0] and torch.isnan(scores[0, 2])
    assert coords[0, 3].tolist() == [5.0, 4.0]


@cpu_and_cuda()
@pytest.mark.parametrize("shape", [(2, 3, 7, 13), (2, 3, 64, 48), (1, 2, 3, 5), (1, 1, 10, 13)])
def test_argmax_ties_match_numpy(device, shape, rng):
    # Few distinct values: many ties across the host's 64-element chunks and the tail.
    hm = rng.integers(-3, 4, size=shape).astype(np.float32)
    hm[0, 0].flat[-1] = 9.0  # maximum in the tail
    if shape[1] > 1:
        hm[0, 1].flat[min(70, hm[0, 1].size - 1)] = np.nan
    coords, scores = ops.argmax_decode(to_t(hm, device), quarter_offset=False)
    exp_coords, exp_scores = ref.argmax_decode(hm.copy(), False)
    np.testing.assert_array_equal(coords.cpu().numpy(), exp_coords)
    np.testing.assert_array_equal(scores.cpu().numpy(), exp_scores)
    flat = hm.reshape(shape[0] * shape[1], -1)
    idx = np.argmax(flat, axis=1)
    pos = coords.cpu().numpy().reshape(-1, 2)
    ok = np.amax(flat, axis=1) > 0
    np.testing.assert_array_equal(pos[ok, 0] + pos[ok, 1] * shape[3], idx[ok])


@pytest.mark.parametrize("hw", [(15, 17), (16, 16), (16, 17), (64, 48), (20, 50)])
def test_argmax_blocks_match_numpy_on_both_cpu_paths(cpu_path, hw, rng):
    """Float32 maps of 256 values or more take the AVX2 block argmax (blocks of 256, the first
    block with the largest maximum, then the first equal value in it): ties across blocks, a
    maximum in the tail, signed zeros and NaN anywhere give numpy's index and value."""
    H, W = hw
    n = H * W
    hm = rng.integers(-3, 4, size=(8, n)).astype(np.float32)
    hm[1, n - 1] = 9.0                                  # maximum in the last value (the tail)
    hm[2] = 0.0
    hm[2, 5] = -0.0                                     # zeros: numpy keeps the first, -0.0
    hm[3, min(300, n - 1)] = hm[3, 7] = 5.0             # a tie across blocks: the first wins
    hm[4, min(256, n - 1)] = np.nan                     # NaN: numpy's index, NaN score
    hm[5, n // 2] = np.nan
    hm[5, 0] = 50.0
    hm[6] = -2.0                                        # all negative: the sentinel
    hm[7, :] = rng.normal(size=n).astype(np.float32)
    hm = hm.reshape(1, 8, H, W)
    coords, scores = ops.argmax_decode(torch.from_numpy(hm), quarter_offset=False)
    flat = hm.reshape(8, n)
    idx = np.argmax(flat, axis=1)
    np.testing.assert_array_equal(scores.numpy()[0].view(np.uint32),
                                  flat[np.arange(8), idx].view(np.uint32))   # -0.0 stays -0.0
    pos = coords.numpy()[0]
    ok = flat[np.arange(8), idx] > 0
    np.testing.assert_array_equal(pos[ok, 0] + pos[ok, 1] * W, idx[ok])
    exp_coords, _ = ref.argmax_decode(hm.copy(), False)
    np.testing.assert_array_equal(coords.numpy(), exp_coords)


# ---- DARK ---------------------------------------------------------------------------


@cpu_and_cuda()
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("udp", [False, True])
@pytest.mark.parametrize("kernel", [3, 11, 17])
def test_dark_decode_matches_mmpose(device, dtype, udp, kernel, rng):
    npdt = np.float32 if dtype == torch.float32 else np.float64
    hm = gaussian_maps(rng, 3, 17, 64, 48, dtype=npdt)
    coords, scores = ops.dark_decode(to_t(hm, device), kernel=kernel, udp=udp)
    exp_coords, exp_scores = ref.dark_decode(hm.copy(), kernel, udp)
    # mmpose keeps keypoints in float32 whatever the heatmap dtype (3.8e-6 ulp at 64).
    tol = 1e-4 if dtype == torch.float32 else 1e-5  # measured: 3.8e-6 and 1.9e-6
    np.testing.assert_allclose(coords.cpu().numpy(), exp_coords, rtol=0, atol=tol)
    np.testing.assert_array_equal(scores.cpu().numpy(), exp_scores)


@cpu_and_cuda()
@pytest.mark.parametrize("udp", [False, True])
def test_dark_decode_slow_path_noise(device, udp, rng):
    # Signed noise and isolated spikes: the clamps engage, so the full blurred max is used.
    hm = rng.uniform(-1, 1, size=(2, 9, 20, 24))
    hm[0, 0] = 0.0
    hm[0, 0, 10, 12] = 1.0
    hm[1, 1] *= 80.0  # upper clip (50) of DARK-UDP
    coords, _ = ops.dark_decode(to_t(hm, device), kernel=5, udp=udp)
    exp_coords, _ = ref.dark_decode(hm.copy(), 5, udp)
    np.testing.assert_allclose(coords.cpu().numpy(), exp_coords, rtol=0, atol=1e-5)


def test_dark_decode_recovers_subpixel_centre(rng):
    H, W, sigma = 64, 48, 2.0
    ys, xs = np.mgrid[0:H, 0:W]
    cx, cy = 20.3, 31.7
    hm = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma ** 2))[None, None]
    coords, _ = ops.dark_decode(torch.from_numpy(hm), kernel=11)
    assert abs(coords[0, 0, 0] - cx) < 0.05 and abs(coords[0, 0, 1] - cy) < 0.05


# ---- SimCC --------------------------------------------------------------------------


def simcc_labels(rng, B, K, Wx, Wy, dtype=np.float32):
    def axis(n):
        centre = rng.uniform(0, n, size=(B, K, 1))
        v = np.exp(-((np.arange(n) - centre) ** 2) / (2 * 12.0 ** 2))
        return v * rng.uniform(0.2, 1.0, size=(B, K, 1)) + 0.01 * rng.standard_normal((B, K, n))
    x, y = axis(Wx), axis(Wy)
    x[0, 0] = -np.abs(x[0, 0])  # sentinel
    return x.astype(dtype), y.astype(dtype)


@cpu_and_cuda()
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dark", [False, True])
def test_simcc_decode_matches_mmpose(device, dtype, dark, rng):
    npdt = np.float32 if dtype == torch.float32 else np.float64
    x, y = simcc_labels(rng, 3, 17, 384, 512, dtype=npdt)
    coords, scores = ops.simcc_decode(to_t(x, device), to_t(y, device), split_ratio=2.0, dark=dark)
    k = ops.decode.simcc_dark_kernel(6.0) if dark else 0
    assert not dark or k == 37
    exp_coords, exp_scores = ref.simcc_decode(x.copy(), y.copy(), 2.0, k, k)
    # float32 locations up to 512 (ulp 3e-5) refined by a Newton step; measured <= 3.1e-5.
    tol = 2e-4 if dtype == torch.float32 else 5e-5
    np.testing.assert_allclose(coords.cpu().numpy(), exp_coords, rtol=0, atol=tol)
    np.testing.assert_array_equal(scores.cpu().numpy(), exp_scores)


@cpu_and_cuda()
def test_simcc_decode_small_kernels_and_clip(device, rng):
    x = rng.uniform(-1, 60, size=(2, 5, 40))
    y = rng.uniform(-1, 1, size=(2, 5, 30))
    coords, _ = ops.simcc_decode(to_t(x, device), to_t(y, device), split_ratio=1.5, dark=(5, 7))
    exp_coords, _ = ref.simcc_decode(x.copy(), y.copy(), 1.5, 5, 7)
    np.testing.assert_allclose(coords.cpu().numpy(), exp_coords, rtol=0, atol=1e-5)


# ---- soft-argmax family -------------------------------------------------------------


@pytest.fixture(params=["avx2", "fallback"])
def cpu_path(request):
    """Runs a test on both float32 CPU paths: AVX2 + FMA (decode_avx2.h) and SSE2 / scalar."""
    want = request.param == "avx2"
    if want and not pyhpe._C.cpu_has_avx2():
        pytest.skip("this CPU has no AVX2 + FMA")
    old = pyhpe._C._set_cpu_avx2(want)
    assert pyhpe._C.cpu_avx2_enabled() == want
    yield request.param
    pyhpe._C._set_cpu_avx2(old)


@cpu_and_cuda()
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("normalize", ["softmax", "sum", "none"])
def test_soft_argmax_matches_reference(device, dtype, normalize, cpu_path):
    g = torch.Generator().manual_seed(0)
    h = torch.rand(3, 5, 16, 12, generator=g, dtype=dtype) * 4
    out = ops.soft_argmax(h.to(device), beta=1.7, normalize=normalize)
    exp = ref.soft_argmax(h, 1.7, normalize)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out.cpu(), exp, rtol=tol, atol=tol * 16)


@cpu_and_cuda()
@pytest.mark.parametrize("beta", [1.0, 3.0])
def test_soft_argmax_equals_kornia(device, beta):
    kornia = pytest.importorskip("kornia")
    h = torch.randn(2, 17, 64, 48, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    # kornia 0.9 divides by the temperature (older kornia multiplied): beta = 1 / temperature.
    exp = kornia.geometry.subpix.spatial_soft_argmax2d(h, temperature=1.0 / beta,
                                                       normalized_coordinates=False)
    torch.testing.assert_close(ops.soft_argmax(h.to(device), beta=beta).cpu(), exp)


@cpu_and_cuda()
@pytest.mark.parametrize("dtype", DTYPES)
def test_dsnt_equals_dsntnn(device, dtype, cpu_path):
    dsntnn = pytest.importorskip("dsntnn")
    logits = torch.randn(2, 17, 64, 48, generator=torch.Generator().manual_seed(2),
                         dtype=torch.float64) * 2
    h = dsntnn.flat_softmax(logits)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else {}
    torch.testing.assert_close(ops.dsnt(h.to(device, dtype)).cpu().double(), dsntnn.dsnt(h), **tol)
    torch.testing.assert_close(ops.dsnt(h.to(device, dtype)).cpu().double(), ref.dsnt(h), **tol)
    # normalize='softmax' fuses dsntnn.flat_softmax(beta * h)
    for beta in (1.0, 2.5):
        exp = dsntnn.dsnt(dsntnn.flat_softmax(beta * logits))
        out = ops.dsnt(logits.to(device, dtype), normalize="softmax", beta=beta)
        torch.testing.assert_close(out.cpu().double(), exp, **tol)
    pos = logits.exp()
    out = ops.dsnt(pos.to(device, dtype), normalize="sum")
    torch.testing.assert_close(out.cpu().double(), dsntnn.dsnt(pos / pos.sum((2, 3), keepdim=True)),
                               **tol)


@cpu_and_cuda()
@pytest.mark.parametrize("normalize", ["none", "softmax"])
def test_dsnt_gradients_match_dsntnn(device, normalize, cpu_path):
    dsntnn = pytest.importorskip("dsntnn")
    logits = torch.randn(3, 5, 20, 13, generator=torch.Generator().manual_seed(12)) * 2
    w = torch.randn(3, 5, 2, generator=torch.Generator().manual_seed(13))
    x = (dsntnn.flat_softmax(logits) if normalize == "none" else logits).to(device)
    a = x.clone().requires_grad_(True)
    (ops.dsnt(a, normalize=normalize) * w.to(device)).sum().backward()
    b = x.cpu().double().requires_grad_(True)
    theirs = dsntnn.dsnt(b if normalize == "none" else dsntnn.flat_softmax(b))
    (theirs * w.double()).sum().backward()
    torch.testing.assert_close(a.grad.cpu().double(), b.grad, rtol=1e-4, atol=1e-6)


# Float32 maps on the CPU take decode_avx2.h (column blocks of 16, row vectors of 8, masked
# right edges, flushes every 16 rows) or the SSE2 / scalar loops: odd sizes reach every edge.
ODD_SHAPES = [(1, 1), (1, 5), (3, 8), (17, 13), (16, 16), (40, 23), (33, 48), (5, 130), (2, 300)]


@pytest.mark.parametrize("H,W", ODD_SHAPES)
@pytest.mark.parametrize("op,kwargs", [
    ("soft_argmax", dict(beta=1.7)), ("soft_argmax", dict(normalize="sum")),
    ("soft_argmax", dict(normalize="none")), ("dsnt", {}), ("dsnt", dict(normalize="softmax")),
    ("debiased_soft_argmax", dict(form="mmpose", beta=2.0))])
def test_float32_cpu_paths_odd_shapes(H, W, op, kwargs, cpu_path):
    g = torch.Generator().manual_seed(H * 1000 + W)
    h = torch.rand(2, 3, H, W, generator=g) * 4 - 1
    if kwargs.get("normalize") in ("sum", "none") or (op == "dsnt" and not kwargs):
        h = h.abs() / h.abs().sum((2, 3), keepdim=True)  # probabilities, as dsnt expects
    w = torch.randn(2, 3, 2, generator=g)
    fn = getattr(ops, op)
    a = h.clone().requires_grad_(True)
    out = fn(a, **kwargs)
    (out * w).sum().backward()
    b = h.double().requires_grad_(True)
    exp = fn(b, **kwargs)
    (exp * w.double()).sum().backward()
    scale = max(H, W) if op != "dsnt" else 1.0
    torch.testing.assert_close(out.double(), exp.detach(), rtol=1e-5, atol=2e-6 * scale)
    torch.testing.assert_close(a.grad.double(), b.grad, rtol=1e-4,
                               atol=1e-6 * b.grad.abs().max().item())


def test_float32_cpu_paths_propagate_nan(cpu_path):
    h = torch.rand(2, 3, 9, 20)
    h[1, 2, 4, 17] = float("nan")
    for fn, nan_grad in ((lambda t: ops.soft_argmax(t), True),
                         (lambda t: ops.dsnt(t, normalize="softmax"), True),
                         (lambda t: ops.dsnt(t), False)):  # d(sum h x)/dh = x, NaN-free
        a = h.clone().requires_grad_(True)
        out = fn(a)
        out.sum().backward()
        assert out[1, 2].isnan().all() and not out[:1].isnan().any()
        assert a.grad[1, 2].isnan().any() == nan_grad and not a.grad[:1].isnan().any()


@cpu_and_cuda()
@pytest.mark.parametrize("beta", [1.0, 2.5])
def test_debiased_forms(device, beta):
    h = torch.randn(2, 4, 12, 10, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    H, W = h.shape[-2:]
    mm = ops.debiased_soft_argmax(h.to(device), beta=beta, form="mmpose").cpu()
    exp_mm = ref.debiased_soft_argmax_mmpose(h, beta) * torch.tensor([W, H], dtype=h.dtype)
    torch.testing.assert_close(mm, exp_mm)
    paper = ops.debiased_soft_argmax(h.to(device), beta=beta, form="paper").cpu()
    torch.testing.assert_close(paper, ref.debiased_soft_argmax_paper(h, beta))


def test_debiased_paper_removes_uniform_background():
    # A peak on a zero background: the plain expectation is pulled to the centre, the
    # paper's debiasing recovers the expectation of exp(beta h) - 1, i.e. the peak.
    h = torch.zeros(1, 1, 21, 31, dtype=torch.float64)
    h[0, 0, 4, 25] = 3.0
    plain = ops.soft_argmax(h)[0, 0]
    deb = ops.debiased_soft_argmax(h, form="paper")[0, 0]
    assert abs(plain[0] - 25) > 1
    torch.testing.assert_close(deb, torch.tensor([25.0, 4.0], dtype=torch.float64))


@cpu_and_cuda()
@pytest.mark.parametrize("op,kwargs", [
    ("soft_argmax", dict(beta=1.3)), ("soft_argmax", dict(normalize="sum")),
    ("soft_argmax", dict(normalize="none")), ("debiased_soft_argmax", dict(form="paper", beta=2.0)),
    ("debiased_soft_argmax", dict(form="mmpose", beta=1.0)),
    ("debiased_soft_argmax", dict(form="mmpose", beta=1.7)), ("dsnt", {}),
    ("dsnt", dict(normalize="softmax", beta=1.5)), ("dsnt", dict(normalize="sum"))])
def test_gradcheck(device, op, kwargs):
    g = torch.Generator().manual_seed(4)
    h = (torch.rand(2, 3, 5, 4, generator=g, dtype=torch.float64) + 0.5).to(device)
    h.requires_grad_(True)
    fn = getattr(ops, op)
    assert torch.autograd.gradcheck(lambda t: fn(t, **kwargs), (h,))


@cpu_and_cuda()
def test_gradients_match_autograd_of_reference(device):
    h = torch.randn(2, 3, 9, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    w = torch.randn(2, 3, 2, dtype=torch.float64)
    for ours, theirs in [(lambda t: ops.soft_argmax(t, beta=2.0), lambda t: ref.soft_argmax(t, 2.0)),
                         (lambda t: ops.debiased_soft_argmax(t, beta=2.0),
                          lambda t: ref.debiased_soft_argmax_paper(t, 2.0))]:
        a = h.clone().to(device).requires_grad_(True)
        (ours(a) * w.to(device)).sum().backward()
        b = h.clone().requires_grad_(True)
        (theirs(b) * w).sum().backward()
        torch.testing.assert_close(a.grad.cpu(), b.grad)


@cpu_and_cuda()
@pytest.mark.parametrize("shape", [(2, 3, 9, 7), (2, 17, 64, 48)])
def test_float32_gradients_match_reference(device, shape, cpu_path):
    # float32 takes the host SIMD paths (polynomial exp, 4-lane sums) in both directions.
    h = torch.randn(*shape, generator=torch.Generator().manual_seed(8)) * 3
    w = torch.randn(shape[0], shape[1], 2, generator=torch.Generator().manual_seed(9))
    for ours, theirs in [(lambda t: ops.soft_argmax(t, beta=1.5), lambda t: ref.soft_argmax(t, 1.5)),
                         (lambda t: ops.debiased_soft_argmax(t, form="mmpose"),
                          lambda t: ref.debiased_soft_argmax_mmpose(t) * torch.tensor(
                              [shape[3], shape[2]], dtype=t.dtype))]:
        a = h.clone().to(device).requires_grad_(True)
        out = ours(a)
        (out * w.to(device)).sum().backward()
        b = h.clone().double().requires_grad_(True)
        exp = theirs(b)
        (exp * w.double()).sum().backward()
        torch.testing.assert_close(out.cpu().double(), exp.detach(), rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(a.grad.cpu().double(), b.grad, rtol=1e-4, atol=1e-6)


def test_cpu_gradient_buffers_are_reused():
    # The backward ops' large CPU outputs come from pyhpe's caching allocator (cpu_cache.h):
    # a freed gradient waits for the next one of the same size instead of going back to
    # the system (fresh pages fault, which costs more than the kernel).
    import gc
    gc.collect()  # no pooled tensor of an earlier test may come back mid-test
    pyhpe._C.empty_cpu_cache()
    assert pyhpe._C.cpu_cache_bytes() == 0
    x = torch.randn(8, 17, 64, 48, requires_grad=True)  # 1.6 MiB gradient, above the 1 MiB cut
    ops.soft_argmax(x).sum().backward()
    ptr, nbytes = x.grad.data_ptr(), x.numel() * 4
    x.grad = None
    assert pyhpe._C.cpu_cache_bytes() == nbytes
    ops.dsnt(x, normalize="softmax").sum().backward()
    assert x.grad.data_ptr() == ptr and pyhpe._C.cpu_cache_bytes() == 0
    g = x.grad  # an ordinary resizable CPU tensor
    g.add_(1.0)
    g.resize_(3 * x.numel())
    g.resize_(2, 3)
    x.grad = None
    del g
    assert pyhpe._C.cpu_cache_bytes() == 4 * nbytes  # the block before the resize, and after
    pyhpe._C.empty_cpu_cache()
    assert pyhpe._C.cpu_cache_bytes() == 0
    small = torch.randn(2, 3, 8, 8, requires_grad=True)  # small outputs use at::empty
    ops.soft_argmax(small).sum().backward()
    small.grad = None
    assert pyhpe._C.cpu_cache_bytes() == 0


def test_decoder_modules():
    h = torch.randn(2, 3, 8, 6, dtype=torch.float64)
    torch.testing.assert_close(ops.SoftArgmax2d(2.0)(h), ops.soft_argmax(h, beta=2.0))
    torch.testing.assert_close(ops.SoftArgmax2d(normalize="sum")(h.exp()),
                               ops.soft_argmax(h.exp(), normalize="sum"))
    torch.testing.assert_close(ops.DebiasedSoftArgmax2d(2.0)(h),
                               ops.debiased_soft_argmax(h, beta=2.0))
    torch.testing.assert_close(ops.DebiasedSoftArgmax2d(form="mmpose")(h),
                               ops.debiased_soft_argmax(h, form="mmpose"))
    torch.testing.assert_close(ops.DSNT2d("softmax", beta=2.0)(h),
                               ops.dsnt(h, normalize="softmax", beta=2.0))
    x = h.clone().requires_grad_(True)
    ops.DSNT2d("softmax")(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert "form='mmpose'" in repr(ops.DebiasedSoftArgmax2d(form="mmpose"))


def test_decoded_results_are_named():
    h = torch.rand(2, 3, 8, 6)
    for out in (ops.argmax_decode(h), ops.dark_decode(h), ops.simcc_decode(h[..., 0], h[..., 1])):
        assert isinstance(out, ops.Decoded)
        assert out.keypoints.shape == (2, 3, 2) and out.scores.shape == (2, 3)


# ---- back-transforms ----------------------------------------------------------------


@cpu_and_cuda()
@pytest.mark.parametrize("use_udp", [False, True])
def test_transform_preds_matches_mmpose(device, use_udp, rng):
    coords = rng.uniform(0, 48, size=(5, 17, 2))
    center = rng.uniform(100, 300, size=(5, 2))
    scale = rng.uniform(50, 200, size=(5, 2))
    out = ops.transform_preds(to_t(coords, device), to_t(center, device), to_t(scale, device),
                              (48, 64), use_udp=use_udp)
    exp = np.stack([ref.transform_preds(coords[b], center[b], scale[b], [48, 64], use_udp)
                    for b in range(5)])
    np.testing.assert_allclose(out.cpu().numpy(), exp, rtol=1e-12, atol=1e-9)


@cpu_and_cuda()
def test_affine_transform_points_matches_mmpose(device, rng):
    coords = rng.uniform(0, 48, size=(3, 7, 2))
    mats = rng.normal(size=(3, 2, 3))
    out = ops.affine_transform_points(to_t(coords, device), to_t(mats, device))
    exp = np.stack([[ref.affine_transform(p, mats[b]) for p in coords[b]] for b in range(3)])
    np.testing.assert_allclose(out.cpu().numpy(), exp, rtol=1e-12, atol=1e-12)


@cpu_and_cuda()
def test_transform_gradcheck(device):
    g = torch.Generator().manual_seed(6)
    c = torch.rand(2, 3, 2, generator=g, dtype=torch.float64).to(device).requires_grad_(True)
    ctr = torch.rand(2, 2, generator=g, dtype=torch.float64).to(device).requires_grad_(True)
    sc = (torch.rand(2, 2, generator=g, dtype=torch.float64) + 1).to(device).requires_grad_(True)
    m = torch.rand(2, 2, 3, generator=g, dtype=torch.float64).to(device).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b, s: ops.transform_preds(a, b, s, (6, 5)), (c, ctr, sc))
    assert torch.autograd.gradcheck(ops.affine_transform_points, (c, m))


def _mmpose_topdown_rescore(coords, scores, center, scale, box_scores, input_size, udp,
                            score_thr):
    """mmpose 1.x: ``add_pred_to_datasample``'s back-transform per instance (its numpy
    statement, into the coords' dtype; UDP crops divide by ``input_size - 1``) and the COCO
    metric's rescoring loop."""
    size = tuple(v - 1 for v in input_size) if udp else tuple(input_size)
    kps, final = [], []
    for i in range(len(coords)):
        xy = coords[i].copy()
        xy[..., :2] = xy[..., :2] / size * scale[i] + center[i] - 0.5 * scale[i]
        kps.append(np.concatenate([xy.astype(np.float64), scores[i][:, None].astype(np.float64)], 1))
        total, valid = 0.0, 0
        for s in scores[i]:
            if s > score_thr:
                total += float(s)
                valid += 1
        final.append(box_scores[i] * (total / valid if valid else 0.0))
    return np.stack(kps), np.asarray(final)


@cpu_and_cuda()
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("udp", [False, True])
def test_topdown_rescore_matches_mmpose(device, dtype, udp, rng):
    npdt = np.float32 if dtype == torch.float32 else np.float64
    N, K = 9, 17
    coords = rng.uniform(-5, 200, size=(N, K, 2)).astype(npdt)
    scores = rng.uniform(0, 1, size=(N, K)).astype(npdt)
    scores[3] = 0.1                                    # no keypoint above the threshold: 0
    scores[4, :5] = np.asarray(0.2, npdt)              # exactly at the threshold: not counted
    center = rng.uniform(100, 400, size=(N, 2)).astype(npdt)
    scale = rng.uniform(50, 300, size=(N, 2)).astype(npdt)
    box = rng.uniform(0.3, 1.0, size=N)
    kps, final = ops.topdown_rescore(to_t(coords, device), to_t(scores, device),
                                     to_t(center, device), to_t(scale, device),
                                     torch.from_numpy(box).to(device), (192, 256), udp=udp)
    exp_kps, exp_final = _mmpose_topdown_rescore(coords, scores, center, scale, box,
                                                 (192, 256), udp, 0.2)
    assert kps.dtype == final.dtype == torch.float64 and kps.device.type == device
    np.testing.assert_array_equal(kps.cpu().numpy(), exp_kps)     # mmpose's bits
    from pyhpe.data import to_image_space                         # the torch form agrees
    xy = to_image_space(to_t(coords, device), to_t(center, device), to_t(scale, device),
                        (192, 256), udp=udp)
    np.testing.assert_array_equal(xy.double().cpu().numpy(), exp_kps[..., :2])
    np.testing.assert_allclose(final.cpu().numpy(), exp_final, rtol=1e-12, atol=0)
    assert final[3] == 0.0


def test_topdown_rescore_errors_empty_opcheck_compile():
    c, s = torch.rand(2, 3, 2), torch.rand(2, 3)
    ctr, sc, box = torch.rand(2, 2), torch.rand(2, 2) + 1, torch.rand(2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"'scores' must have shape \(N, K\)"):
        ops.topdown_rescore(c, s[:, :2], ctr, sc, box, (4, 4))
    with pytest.raises(ValueError, match=r"'center' must have shape \(N, 2\)"):
        ops.topdown_rescore(c, s, ctr[:1], sc, box, (4, 4))
    with pytest.raises(ValueError, match=r"'box_scores' must have shape \(N,\)"):
        ops.topdown_rescore(c, s, ctr, sc, box[:1], (4, 4))
    with pytest.raises(TypeError, match="'box_scores' must be float64"):
        torch.ops.pyhpe.topdown_rescore(c, s, ctr, sc, box.float(), 4, 4, False, 0.2)
    with pytest.raises(ValueError, match="'input_size' .* must be >= 2 with use_udp"):
        ops.topdown_rescore(c, s, ctr, sc, box, (1, 4), udp=True)
    with pytest.raises(ValueError, match="'score_thr' must be finite"):
        ops.topdown_rescore(c, s, ctr, sc, box, (4, 4), score_thr=float("nan"))
    bad = c.clone()
    bad[1, 2, 0] = float("inf")
    with pytest.raises(ValueError, match="'coords' contains NaN or infinite values"):
        ops.topdown_rescore(bad, s, ctr, sc, box, (4, 4))
    nan_box = box.clone()
    nan_box[0] = float("nan")
    with pytest.raises(ValueError, match="'box_scores' contains NaN"):
        ops.topdown_rescore(c, s, ctr, sc, nan_box, (4, 4))
    assert torch.isnan(ops.topdown_rescore(c, s, ctr, sc, nan_box, (4, 4), validate=False)[1][0])
    with pytest.raises(RuntimeError, match="pyhpe.topdown_rescore: is not differentiable"):
        ops.topdown_rescore(c.clone().requires_grad_(True), s, ctr, sc, box, (4, 4))
    k, f = ops.topdown_rescore(torch.zeros(0, 3, 2), torch.zeros(0, 3), torch.zeros(0, 2),
                               torch.zeros(0, 2), torch.zeros(0, dtype=torch.float64), (4, 4))
    assert k.shape == (0, 3, 3) and f.shape == (0,)
    assert isinstance(ops.topdown_rescore(c, s, ctr, sc, box, (4, 4)), ops.RescoredPoses)
    d = torch.float64
    _opcheck(torch.ops.pyhpe.topdown_rescore.default,
             (c.to(d), s.to(d), ctr.to(d), sc.to(d), box, 48, 64, True, 0.3))

    def post(c, s):
        return ops.topdown_rescore(c, s, ctr, sc, box, (48, 64), validate=False)
    for a, b in zip(torch.compile(post, fullgraph=True, backend="aot_eager")(c, s), post(c, s)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# ---- errors, empty inputs, opcheck, compile -----------------------------------------


def test_bad_inputs_raise_clear_errors():
    h = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"'heatmaps' must have shape \(B, K, H, W\)"):
        ops.argmax_decode(h[0])
    with pytest.raises(TypeError, match="'heatmaps' must be float32 or float64"):
        ops.dark_decode(h.to(torch.int32))
    with pytest.raises(ValueError, match="'kernel' must be an odd integer"):
        ops.dark_decode(h, kernel=4)
    with pytest.raises(ValueError, match="'offset_rule' must be 'hrnet' or 'mmpose1'"):
        ops.argmax_decode(h, offset_rule="x")
    with pytest.raises(ValueError, match="'normalize' must be"):
        ops.soft_argmax(h, normalize="l1")
    with pytest.raises(ValueError, match="'form' must be 'paper' or 'mmpose'"):
        ops.debiased_soft_argmax(h, form="x")
    with pytest.raises(ValueError, match="'y_labels' must have shape"):
        ops.simcc_decode(torch.rand(2, 3, 10), torch.rand(2, 4, 10))
    with pytest.raises(TypeError, match="'y_labels' must have the dtype"):
        ops.simcc_decode(torch.rand(2, 3, 10), torch.rand(2, 3, 10, dtype=torch.float64))
    with pytest.raises(ValueError, match="'split_ratio' must be positive"):
        ops.simcc_decode(torch.rand(2, 3, 10), torch.rand(2, 3, 10), split_ratio=0)
    with pytest.raises(ValueError, match=r"'matrix' must have shape \(B, 2, 3\)"):
        ops.affine_transform_points(torch.rand(2, 3, 2), torch.rand(2, 3, 3))
    with pytest.raises(ValueError, match=r"'center' must have shape \(B, 2\)"):
        ops.transform_preds(torch.rand(2, 3, 2), torch.rand(3, 2), torch.rand(2, 2), (4, 4))
    with pytest.raises(ValueError, match="'grad' must have shape"):
        torch.ops.pyhpe._soft_argmax_backward(torch.rand(2, 3, 3), h,
                                             torch.zeros(2, 3, 8, dtype=torch.float64), 1.0,
                                             "softmax")
    with pytest.raises(TypeError, match="'stats' must be the float64 statistics"):
        torch.ops.pyhpe._soft_argmax_backward(torch.rand(2, 3, 2), h, torch.zeros(2, 3, 8), 1.0,
                                             "softmax")
    with pytest.raises(ValueError, match="H, W > 0"):
        ops.soft_argmax(torch.rand(2, 3, 0, 4))


@cpu_and_cuda()
def test_empty_inputs(device):
    h = torch.rand(0, 17, 8, 6, device=device)
    for fn in (ops.argmax_decode, ops.dark_decode):
        c, s = fn(h)
        assert c.shape == (0, 17, 2) and s.shape == (0, 17)
    assert ops.soft_argmax(h).shape == (0, 17, 2)
    assert ops.dsnt(torch.rand(2, 0, 8, 6, device=device)).shape == (2, 0, 2)
    c, s = ops.simcc_decode(torch.rand(0, 3, 5, device=device), torch.rand(0, 3, 7, device=device))
    assert c.shape == (0, 3, 2) and s.shape == (0, 3)
    e = torch.rand(0, 2, device=device)
    assert ops.transform_preds(torch.rand(0, 3, 2, device=device), e, e, (4, 4)).shape == (0, 3, 2)


def _opcheck(op, args, kwargs=None):
    torch.library.opcheck(op, args, kwargs or {},
                          test_utils=("test_schema", "test_autograd_registration",
                                      "test_faketensor", "test_aot_dispatch_static"))


@cpu_and_cuda()
def test_opcheck(device):
    g = torch.Generator().manual_seed(7)
    h = torch.rand(2, 3, 9, 8, generator=g, dtype=torch.float64).to(device)
    hg = h.clone().requires_grad_(True)
    P = torch.ops.pyhpe
    _opcheck(P.argmax_decode.default, (h, True, "hrnet"))
    _opcheck(P.dark_decode.default, (h, 5, False))
    _opcheck(P.dark_decode.default, (h, 5, True))
    _opcheck(P.simcc_decode.default, (h[:, :, 0], h[:, :, 1], 2.0, 3, 5))
    _opcheck(P.soft_argmax.default, (hg, 1.5, "softmax"))
    _opcheck(P.debiased_soft_argmax.default, (hg, 1.5, "mmpose"))
    _opcheck(P.dsnt.default, (hg,))
    _opcheck(P.dsnt.default, (hg, 1.5, "softmax"))
    _opcheck(P._soft_argmax_forward.default, (h, 1.5, "softmax"))
    _opcheck(P._debiased_soft_argmax_forward.default, (h, 1.5, "paper"))
    _opcheck(P._dsnt_forward.default, (h, 1.0, "none"))
    gr = torch.rand(2, 3, 2, generator=g, dtype=torch.float64).to(device)
    st = P._soft_argmax_forward(h, 1.5, "sum")[1]
    _opcheck(P._soft_argmax_backward.default, (gr, h, st, 1.5, "sum"))
    st = P._debiased_soft_argmax_forward(h, 1.5, "paper")[1]
    _opcheck(P._debiased_soft_argmax_backward.default, (gr, h, st, 1.5, "paper"))
    _opcheck(P._dsnt_backward.default, (gr, h, P._dsnt_forward(h, 1.0, "none")[1]))
    _opcheck(P._dsnt_backward.default, (gr, h, P._dsnt_forward(h, 2.0, "softmax")[1], 2.0,
                                        "softmax"))
    c = gr.clone().requires_grad_(True)
    ctr = torch.rand(2, 2, dtype=torch.float64, device=device)
    _opcheck(P.transform_preds.default, (c, ctr, ctr + 1, 8, 9, True))
    _opcheck(P.affine_transform_points.default, (c, torch.rand(2, 2, 3, dtype=torch.float64,
                                                               device=device)))


def test_torch_compile_smoke():
    def pipeline(h):
        coords, scores = ops.dark_decode(h, kernel=5)
        soft = ops.soft_argmax(h, beta=2.0)
        return coords, scores, soft

    h = torch.rand(2, 3, 12, 10)
    compiled = torch.compile(pipeline, fullgraph=True, backend="aot_eager")
    for a, b in zip(compiled(h), pipeline(h)):
        torch.testing.assert_close(a, b)

    def train_step(h):
        return (ops.debiased_soft_argmax(h, beta=2.0).square().sum()
                + ops.dsnt(h, normalize="softmax").square().sum())

    hg = h.clone().requires_grad_(True)
    torch.compile(train_step, fullgraph=True, backend="aot_eager")(hg).backward()
    hr = h.clone().requires_grad_(True)
    train_step(hr).backward()
    torch.testing.assert_close(hg.grad, hr.grad)


class _PooledOutputs(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        # The backward op itself, not the autograd engine: PyTorch refuses backward() in a
        # forked child once the parent has started autograd threads (an earlier compiled
        # backward does), which is not what this test is about.
        x = torch.randn(8, 17, 64, 48, generator=torch.Generator().manual_seed(i))
        stats = torch.ops.pyhpe._soft_argmax_forward(x, 1.0, "softmax")[1]
        grad = torch.ops.pyhpe._soft_argmax_backward(  # pooled gradient, freed on return
            torch.ones(8, 17, 2), x, stats, 1.0, "softmax")
        return grad.abs().sum()


def test_pooled_outputs_in_dataloader_workers():
    # Worker processes fork from a parent that has used the pool (cpu_cache.cpp holds its
    # lock across fork()).
    x = torch.randn(8, 17, 64, 48, requires_grad=True)
    ops.soft_argmax(x).sum().backward()
    x.grad = None
    loader = torch.utils.data.DataLoader(_PooledOutputs(), batch_size=2, num_workers=2)
    got = torch.cat(list(loader))
    torch.testing.assert_close(got, torch.stack([_PooledOutputs()[i] for i in range(4)]))


# ---- degenerate maps: defined answers instead of NaN / inf ---------------------------


def _soft_grad(fn, h):
    x = h.clone().requires_grad_(True)
    out = fn(x)
    out.backward(torch.ones_like(out))
    return out.detach(), x.grad


@cpu_and_cuda()
@pytest.mark.parametrize("dtype", DTYPES)
def test_debiased_flat_map_is_the_centre(device, dtype, cpu_path):
    H, W = 5, 7
    h = torch.zeros(2, 3, H, W, dtype=dtype, device=device)  # C = mean(exp(0)) = 1
    out, grad = _soft_grad(lambda t: ops.debiased_soft_argmax(t, beta=2.0), h)
    assert torch.equal(out.cpu(), torch.tensor([(W - 1) / 2, (H - 1) / 2], dtype=dtype)
                       .expand(2, 3, 2))
    assert torch.equal(grad, torch.zeros_like(h))
    # mmpose form: C = sum(exp(h)) = 1 on a single-pixel map at 0; centre (W / 2, H / 2)
    one = torch.zeros(1, 2, 1, 1, dtype=dtype, device=device)
    out, grad = _soft_grad(lambda t: ops.debiased_soft_argmax(t, form="mmpose"), one)
    assert torch.equal(out.cpu(), torch.full((1, 2, 2), 0.5, dtype=dtype))
    assert torch.equal(grad, torch.zeros_like(one))
    # 1 / C overflowing (exp(-beta h) = inf): the centre too, not inf / inf
    low = torch.full((1, 1, H, W), -1e3, dtype=dtype, device=device)
    low[0, 0, 1, 2] = -999.0
    out = ops.debiased_soft_argmax(low, beta=1.0)
    assert torch.isfinite(out).all()
    assert torch.equal(out.cpu(), torch.tensor([[[(W - 1) / 2, (H - 1) / 2]]], dtype=dtype))
    # a flat map away from 0 is regular and still decodes to the centre
    out = ops.debiased_soft_argmax(torch.full_like(h, 0.5), beta=2.0).cpu()
    torch.testing.assert_close(out, torch.tensor([(W - 1) / 2, (H - 1) / 2], dtype=dtype)
                               .expand(2, 3, 2))


@pytest.mark.parametrize("beta", [0.0, -1.0, float("inf"), float("nan")])
def test_debiased_rejects_non_positive_or_non_finite_beta(beta):
    with pytest.raises(ValueError, match="pyhpe.debiased_soft_argmax: 'beta' must be positive "
                                         "and finite"):
        ops.debiased_soft_argmax(torch.rand(1, 2, 4, 4), beta=beta)
    with pytest.raises(ValueError, match="'beta' must be positive and finite"):
        ops.DebiasedSoftArgmax2d(beta)(torch.rand(1, 2, 4, 4))


@pytest.mark.parametrize("beta", [float("inf"), float("nan")])
def test_soft_argmax_rejects_non_finite_beta(beta):
    for fn in (ops.soft_argmax, ops.dsnt):
        with pytest.raises(ValueError, match="'beta' must be finite"):
            fn(torch.rand(1, 2, 4, 4), beta=beta)


@cpu_and_cuda()
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("beta", [1e30, -1e30, 1e300])
def test_saturated_softmax_is_the_argmax_limit(device, dtype, beta, cpu_path):
    g = torch.Generator().manual_seed(3)
    H, W = 6, 37  # odd width: SIMD bodies and scalar tails
    h = torch.rand(2, 3, H, W, generator=g, dtype=dtype)
    h[0, 0, 2, 5] = h[0, 0, 4, 30] = 2.0   # tied maxima: their mean
    h[0, 1, 1, 1] = h[0, 1, 3, 9] = -1.0   # tied minima: their mean for beta < 0
    flat = h.reshape(6, -1)
    best = flat.max(1, keepdim=True).values if beta > 0 else flat.min(1, keepdim=True).values
    mask = (flat == best).to(dtype)
    cols = torch.arange(W, dtype=dtype).repeat(H)
    rows = torch.arange(H, dtype=dtype).repeat_interleave(W)
    n = mask.sum(1)
    exp = torch.stack([(mask * cols).sum(1) / n, (mask * rows).sum(1) / n], -1).reshape(2, 3, 2)
    out, grad = _soft_grad(lambda t: ops.soft_argmax(t, beta=beta), h.to(device))
    assert torch.equal(out.cpu(), exp)
    assert torch.equal(grad, torch.zeros_like(grad))
    out, grad = _soft_grad(lambda t: ops.dsnt(t, normalize="softmax", beta=beta), h.to(device))
    dsnt_exp = torch.stack([(2 * exp[..., 0] + 1) / W - 1, (2 * exp[..., 1] + 1) / H - 1], -1)
    torch.testing.assert_close(out.cpu(), dsnt_exp)
    assert torch.equal(grad, torch.zeros_like(grad))
    if beta > 0:  # the debiasing of the limit: u -> 0, J = J~
        out = ops.debiased_soft_argmax(h.to(device), beta=beta).cpu()
        torch.testing.assert_close(out, exp)


@cpu_and_cuda()
@pytest.mark.parametrize("dtype", DTYPES)
def test_sum_normalization_of_zero_maps_is_the_centre(device, dtype, cpu_path):
    H, W = 4, 9
    h = torch.rand(1, 3, H, W, dtype=dtype, device=device)
    h[0, 1] = 0.0
    h[0, 2, 0, 0], h[0, 2, 0, 1] = 1.0, -1.0  # sums to 0 as well
    h[0, 2, 1:] = 0.0
    h[0, 2, 0, 2:] = 0.0
    out, grad = _soft_grad(lambda t: ops.soft_argmax(t, normalize="sum"), h)
    assert torch.isfinite(out).all() and torch.isfinite(grad).all()
    centre = torch.tensor([(W - 1) / 2, (H - 1) / 2], dtype=dtype)
    assert torch.equal(out[0, 1].cpu(), centre) and torch.equal(out[0, 2].cpu(), centre)
    assert torch.equal(grad[0, 1:], torch.zeros_like(grad[0, 1:]))
    assert grad[0, 0].abs().sum() > 0
    out, grad = _soft_grad(lambda t: ops.dsnt(t, normalize="sum"), h)
    assert torch.equal(out[0, 1:].cpu(), torch.zeros(2, 2, dtype=dtype))
    assert torch.equal(grad[0, 1:], torch.zeros_like(grad[0, 1:]))


# ---- autograd: ops without a backward refuse inputs that require grad -----------------


@cpu_and_cuda()
def test_non_differentiable_ops_refuse_inputs_that_require_grad(device):
    h = torch.rand(2, 3, 9, 8, device=device, requires_grad=True)
    x = torch.rand(2, 3, 10, device=device, requires_grad=True)
    cases = [("argmax_decode", "heatmaps", lambda: ops.argmax_decode(h)),
             ("dark_decode", "heatmaps", lambda: ops.dark_decode(h, kernel=3)),
             ("simcc_decode", "x_labels", lambda: ops.simcc_decode(x, x.detach())),
             ("simcc_decode", "y_labels", lambda: ops.simcc_decode(x.detach(), x))]
    for name, arg, call in cases:
        with pytest.raises(RuntimeError, match=f"pyhpe.{name}: is not differentiable, but "
                                               f"'{arg}' requires grad"):
            call()
        with torch.no_grad():
            coords, scores = call()
        assert not coords.requires_grad and not scores.requires_grad
    hd = h.detach()
    gr = torch.rand(2, 3, 2, device=device)
    st = torch.ops.pyhpe._soft_argmax_forward(hd, 1.0, "softmax")[1]
    with pytest.raises(RuntimeError, match="pyhpe._soft_argmax_backward: is not differentiable, "
                                           "but 'heatmaps' requires grad"):
        torch.ops.pyhpe._soft_argmax_backward(gr, h, st, 1.0, "softmax")
    with pytest.raises(RuntimeError, match="pyhpe._dsnt_backward: is not differentiable, but "
                                           "'grad' requires grad"):
        torch.ops.pyhpe._dsnt_backward(gr.requires_grad_(True), hd, st, 1.0, "softmax")
    # the statistics are private: the public op returns the coords alone, and the private
    # forward refuses to be differentiated around its autograd kernel
    assert isinstance(torch.ops.pyhpe.soft_argmax(h, 1.0, "softmax"), torch.Tensor)
    with pytest.raises(RuntimeError, match="pyhpe._dsnt_forward: is not differentiable"):
        torch.ops.pyhpe._dsnt_forward(h, 1.0, "none")
    # inputs without requires_grad are unaffected
    assert not ops.argmax_decode(hd)[0].requires_grad


@cpu_and_cuda()
@pytest.mark.parametrize("op,kwargs", [
    ("soft_argmax", dict(beta=1.5)), ("soft_argmax", dict(normalize="sum")),
    ("debiased_soft_argmax", dict(beta=2.0)), ("debiased_soft_argmax", dict(form="mmpose")),
    ("dsnt", {}), ("dsnt", dict(normalize="softmax"))])
def test_double_backward_raises(device, op, kwargs):
    h = torch.rand(2, 3, 6, 5, dtype=torch.float64, device=device, requires_grad=True)
    fn = getattr(ops, op)
    (g1,) = torch.autograd.grad(fn(h, **kwargs).square().sum(), h)
    (g2,) = torch.autograd.grad(fn(h, **kwargs).square().sum(), h, create_graph=True)
    torch.testing.assert_close(g1, g2)  # first order under create_graph is unchanged
    assert g2.requires_grad
    with pytest.raises(RuntimeError, match=f"pyhpe.{op}: double backward is not supported"):
        g2.sum().backward()


# ---- option types: named errors instead of truncation ---------------------------------


def test_options_must_be_integers_and_numbers():
    h = torch.rand(1, 2, 16, 16)
    with pytest.raises(ValueError, match="pyhpe.dark_decode: 'kernel' must be an integer, "
                                         "got 11.7"):
        ops.dark_decode(h, kernel=11.7)
    with pytest.raises(TypeError, match="pyhpe.dark_decode: 'kernel' must be an integer"):
        ops.dark_decode(h, kernel="11")
    with pytest.raises(TypeError, match="'kernel' must be an integer"):
        ops.dark_decode(h, kernel=None)
    with pytest.raises(ValueError, match="'kernel' must fit in int64"):
        ops.dark_decode(h, kernel=2**70)
    torch.testing.assert_close(ops.dark_decode(h, kernel=11.0), ops.dark_decode(h, kernel=11))
    torch.testing.assert_close(ops.dark_decode(h, kernel=np.int64(5)), ops.dark_decode(h, kernel=5))
    x = torch.rand(1, 2, 20)
    with pytest.raises(ValueError, match="pyhpe.simcc_decode: 'dark' must be an integer"):
        ops.simcc_decode(x, x, dark=3.5)
    with pytest.raises(TypeError, match=r"pyhpe.simcc_decode: 'kernel\[1\]' must be an integer"):
        ops.simcc_decode(x, x, dark=True, kernel=(3, "5"))
    with pytest.raises(ValueError, match=r"'kernel' must be a pair"):
        ops.simcc_decode(x, x, dark=True, kernel=(3, 5, 7))
    with pytest.raises(TypeError, match="pyhpe.simcc_decode: 'sigma' must be a number"):
        ops.simcc_decode(x, x, dark=True, sigma="6")
    with pytest.raises(TypeError, match="pyhpe.simcc_decode: 'split_ratio' must be a number"):
        ops.simcc_decode(x, x, split_ratio="2")
    with pytest.raises(ValueError, match="'sigma' must be positive and finite"):
        ops.decode.simcc_dark_kernel(0.0)
    for fn in (ops.soft_argmax, ops.debiased_soft_argmax, ops.dsnt):
        with pytest.raises(TypeError, match=f"pyhpe.{fn.__name__}: 'beta' must be a number"):
            fn(h, beta="2")
    with pytest.raises(TypeError, match="pyhpe.SoftArgmax2d: 'beta' must be a number"):
        ops.decode.SoftArgmax2d("2")
    c, e = torch.rand(1, 2, 2), torch.rand(1, 2)
    with pytest.raises(ValueError, match=r"pyhpe.transform_preds: 'heatmap_size\[0\]' must be "
                                         r"an integer, got 48.9"):
        ops.transform_preds(c, e, e, (48.9, 64))
    with pytest.raises(TypeError, match="'heatmap_size' must be a pair of integers"):
        ops.transform_preds(c, e, e, 48)
    torch.testing.assert_close(ops.transform_preds(c, e, e, (48.0, 64.0)),
                               ops.transform_preds(c, e, e, (48, 64)))


def test_map_sides_beyond_int_are_refused_before_allocating():
    wide = torch.zeros(1, 1, 1, 1).expand(1, 1, 1, 2**31)  # no memory behind it
    for call in (lambda: ops.argmax_decode(wide), lambda: ops.soft_argmax(wide)):
        with pytest.raises(ValueError, match=r"'heatmaps' is too large: size 2147483648 at "
                                             r"dim 3"):
            call()
    with pytest.raises(ValueError, match="'x_labels' is too large"):
        ops.simcc_decode(wide[:, :, 0], wide[:, :, 0, :5])


@cpu_and_cuda()
def test_minus_infinity_in_maps_decodes_alike_on_every_path(device, cpu_path):
    # log-probability maps hold -inf (log 0); beta * h may also overflow to -inf
    g = torch.Generator().manual_seed(11)
    h = torch.rand(2, 3, 5, 37, generator=g)
    h[0, 0, 1, 3] = h[1, 2, 4, 36] = -float("inf")
    h[0, 1, 2, ::3] = -1e38
    for fn in (lambda t: ops.soft_argmax(t, beta=10.0),
               lambda t: ops.dsnt(t, normalize="softmax", beta=10.0),
               lambda t: ops.debiased_soft_argmax(t, beta=2.0)):
        out, grad = _soft_grad(fn, h.to(device))
        exp, exp_grad = _soft_grad(fn, h.double())
        assert torch.isfinite(out).all() and torch.isfinite(grad).all()
        torch.testing.assert_close(out.cpu().double(), exp, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(grad.cpu().double(), exp_grad, rtol=1e-4, atol=1e-5)
        assert torch.equal(grad[0, 0, 1, 3].cpu(), torch.tensor(0.0))
