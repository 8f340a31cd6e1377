"""Volume family: 3-D soft-argmax (plain and debiased) and 3-D Gaussian target volumes,
against the numpy references (pyhpe.reference.volume), the plain torch versions, finite
differences (gradcheck), and on hostile and empty inputs."""
import math

import numpy as np
import pytest
import torch

import pyhpe
import pyhpe.ops as ops
from conftest import cpu_and_cuda
from pyhpe.reference import volume as ref

DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: 2e-5, torch.float64: 1e-10}


def gaussian_blobs(rng, B, K, D, H, W, noise=0.05):
    """One blob per volume at a sub-voxel centre (some near the border), plus noise."""
    zz, yy, xx = np.mgrid[0:D, 0:H, 0:W]
    c = rng.uniform(-1, 1, size=(B, K, 3)) * 0.5 + rng.uniform(0, 1, size=(B, K, 3)) * [W, H, D]
    d2 = ((xx - c[..., 0, None, None, None]) ** 2 + (yy - c[..., 1, None, None, None]) ** 2
          + (zz - c[..., 2, None, None, None]) ** 2)
    v = 4.0 * np.exp(-d2 / 8.0) + noise * rng.standard_normal(d2.shape)
    return v


@pytest.fixture(params=["avx2", "generic"])
def cpu_path(request):
    """Runs a test on both float32 CPU paths: AVX2 + FMA (volume_avx2.h) and the generic math."""
    want = request.param == "avx2"
    if want and not pyhpe._C.cpu_has_avx2():
        pytest.skip("this CPU has no AVX2 + FMA")
    old = pyhpe._C._set_cpu_avx2(want)
    yield request.param
    pyhpe._C._set_cpu_avx2(old)


# ---- soft-argmax: parity ----------------------------------------------------------------


@cpu_and_cuda()
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("normalize,beta", [("softmax", 1.0), ("softmax", 4.5),
                                            ("softmax", -0.8), ("sum", 1.0), ("none", 1.0)])
def test_soft_argmax_3d_matches_reference(device, dtype, normalize, beta, rng, cpu_path):
    v = gaussian_blobs(rng, 3, 5, 6, 7, 19)  # W = 19: rows with a tail past 8 lanes
    if normalize != "softmax":
        v = np.abs(v) + 0.01
    if normalize == "none":
        v = v / v.sum(axis=(2, 3, 4), keepdims=True)
    t = torch.from_numpy(v).to(device=device, dtype=dtype)
    got = ops.soft_argmax_3d(t, beta=beta, normalize=normalize)
    assert got.shape == (3, 5, 3) and got.dtype == dtype and got.device.type == device
    want = ref.soft_argmax_3d_numpy(t.double().cpu().numpy(), beta, normalize)
    np.testing.assert_allclose(got.double().cpu().numpy(), want, rtol=0, atol=TOL[dtype] * 20)


@cpu_and_cuda()
@pytest.mark.parametrize("dtype", DTYPES)
def test_soft_argmax_3d_matches_torch(device, dtype, rng, cpu_path):
    t = torch.from_numpy(gaussian_blobs(rng, 2, 4, 8, 9, 10)).to(device=device, dtype=dtype)
    torch.testing.assert_close(ops.soft_argmax_3d(t, beta=2.0),
                               ref.soft_argmax_3d_torch(t, 2.0), rtol=0, atol=TOL[dtype] * 20)
    # the 3-D op on a depth-1 volume is the 2-D op plus z = 0
    flat = t[:, :, :1]
    got = ops.soft_argmax_3d(flat, beta=2.0)
    torch.testing.assert_close(got[..., :2], ops.soft_argmax(flat[:, :, 0], beta=2.0),
                               rtol=0, atol=TOL[dtype] * 20)
    assert torch.all(got[..., 2] == 0)


@cpu_and_cuda()
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("beta", [0.7, 3.0])
def test_debiased_soft_argmax_3d_matches_reference(device, dtype, beta, rng):
    t = torch.from_numpy(gaussian_blobs(rng, 2, 3, 5, 6, 7)).to(device=device, dtype=dtype)
    got = ops.debiased_soft_argmax_3d(t, beta=beta)
    want = ref.soft_argmax_3d_numpy(t.double().cpu().numpy(), beta, debias=True)
    np.testing.assert_allclose(got.double().cpu().numpy(), want, rtol=0, atol=TOL[dtype] * 50)


def test_debiasing_removes_the_uniform_part():
    # A volume that is a mixture of a delta and a uniform part: the softmax is biased toward
    # the centre, the debiased expectation recovers the delta's voxel exactly.
    D, H, W = 6, 7, 8
    v = torch.zeros(1, 1, D, H, W, dtype=torch.float64)
    v[0, 0, 1, 5, 6] = 3.0
    plain = ops.soft_argmax_3d(v)[0, 0]
    debiased = ops.debiased_soft_argmax_3d(v)[0, 0]
    assert (plain - torch.tensor([6.0, 5.0, 1.0], dtype=torch.float64)).abs().max() > 1.0
    torch.testing.assert_close(debiased, torch.tensor([6.0, 5.0, 1.0], dtype=torch.float64))


def test_module_forms():
    v = torch.randn(2, 3, 4, 5, 6)
    m = ops.SoftArgmax3d(beta=2.0)
    torch.testing.assert_close(m(v), ops.soft_argmax_3d(v, beta=2.0))
    assert "beta=2.0" in repr(m)
    torch.testing.assert_close(ops.DebiasedSoftArgmax3d(beta=1.5)(v),
                               ops.debiased_soft_argmax_3d(v, beta=1.5))


# ---- soft-argmax: gradients ----------------------------------------------------------


@cpu_and_cuda()
@pytest.mark.parametrize("normalize,beta", [("softmax", 1.3), ("softmax", -2.0), ("sum", 1.0),
                                            ("none", 1.0)])
def test_soft_argmax_3d_gradcheck(device, normalize, beta):
    g = torch.Generator().manual_seed(3)
    v = torch.rand(2, 2, 3, 4, 5, generator=g, dtype=torch.float64) + 0.1
    v = v.to(device).requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda x: ops.soft_argmax_3d(x, beta=beta, normalize=normalize), (v,))


@cpu_and_cuda()
def test_debiased_soft_argmax_3d_gradcheck(device):
    g = torch.Generator().manual_seed(4)
    v = (2 * torch.rand(2, 2, 3, 4, 5, generator=g, dtype=torch.float64)).to(device)
    assert torch.autograd.gradcheck(lambda x: ops.debiased_soft_argmax_3d(x, beta=1.7),
                                    (v.requires_grad_(True),))


@cpu_and_cuda()
def test_float32_gradient_matches_torch_autograd(device, rng, cpu_path):
    t = torch.from_numpy(gaussian_blobs(rng, 2, 3, 8, 8, 12)).float().to(device)
    a = t.clone().requires_grad_(True)
    b = t.clone().requires_grad_(True)
    w = torch.randn(2, 3, 3, device=device)
    (ops.soft_argmax_3d(a, beta=1.5) * w).sum().backward()
    (ref.soft_argmax_3d_torch(b, 1.5) * w).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)


def test_double_backward_raises():
    v = torch.rand(1, 2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(ops.soft_argmax_3d(v).sum(), v, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward is not supported"):
        g.sum().backward()


# ---- soft-argmax: hostile and degenerate inputs --------------------------------------


@cpu_and_cuda()
@pytest.mark.parametrize("dtype", DTYPES)
def test_stable_for_large_values(device, dtype, cpu_path):
    # exp(1000) overflows every dtype: the max-subtracted softmax is still exact.
    v = torch.zeros(1, 2, 3, 4, 5, dtype=dtype, device=device)
    v[0, 0, 2, 1, 3] = 1000.0
    v[0, 1] = -1000.0
    v[0, 1, 1, 2, 4] = -900.0
    out = ops.soft_argmax_3d(v)
    torch.testing.assert_close(out[0].cpu(), torch.tensor([[3.0, 1.0, 2.0], [4.0, 2.0, 1.0]],
                                                          dtype=dtype))


@cpu_and_cuda()
@pytest.mark.parametrize("dtype", DTYPES)
def test_defined_answers_with_zero_gradient(device, dtype, cpu_path):
    D, H, W = 3, 4, 5
    v = torch.zeros(3, 1, D, H, W, dtype=dtype, device=device)
    v[0, 0, 0, 1, 2] = v[0, 0, 2, 3, 0] = 1.0  # beta = 1e30 saturates: mean of the maxima
    x = v.clone().requires_grad_(True)
    out = ops.soft_argmax_3d(x, beta=1e30)
    out.sum().backward()
    torch.testing.assert_close(out[0, 0].cpu(), torch.tensor([1.0, 2.0, 1.0], dtype=dtype))
    assert torch.all(x.grad[0] == 0)  # (the flat maps 1, 2 are a uniform softmax: not saturated)
    # 'sum' of a volume summing to 0: the grid centre
    x = torch.zeros(1, 2, D, H, W, dtype=dtype, device=device, requires_grad=True)
    out = ops.soft_argmax_3d(x, normalize="sum")
    out.sum().backward()
    assert out.cpu().tolist() == [[[2.0, 1.5, 1.0]] * 2] and torch.all(x.grad == 0)
    # debiased flat volume at 0: C = 1, the centre
    x = torch.zeros(1, 1, D, H, W, dtype=dtype, device=device, requires_grad=True)
    out = ops.debiased_soft_argmax_3d(x, beta=2.0)
    out.sum().backward()
    assert out.cpu().tolist() == [[[2.0, 1.5, 1.0]]] and torch.all(x.grad == 0)


@cpu_and_cuda()
def test_nan_and_inf_volumes_give_nan_only_there(device, cpu_path):
    v = torch.rand(1, 4, 2, 3, 4, device=device)
    v[0, 0, 1, 1, 1] = float("nan")
    v[0, 1, 0, 2, 3] = float("inf")
    v[0, 2, 0, 0, 0] = float("-inf")  # exp(-inf) = 0: a usable volume
    out = ops.soft_argmax_3d(v)
    assert torch.isnan(out[0, 0]).all() and torch.isnan(out[0, 1]).all()
    assert torch.isfinite(out[0, 2:]).all()
    ok = v[:, 2:].clone()
    ok[0, 0, 0, 0, 0] = -1e30
    torch.testing.assert_close(out[:, 2:], ops.soft_argmax_3d(ok))


def test_bad_inputs_raise_clear_errors():
    v = torch.rand(2, 3, 4, 5, 6)
    with pytest.raises(ValueError, match=r"pyhpe.soft_argmax_3d: 'volumes' must have shape "
                                         r"\(B, K, D, H, W\)"):
        ops.soft_argmax_3d(v[0])
    with pytest.raises(TypeError, match="'volumes' must be float32 or float64"):
        ops.soft_argmax_3d(v.to(torch.int32))
    with pytest.raises(TypeError, match="'volumes' must be float32 or float64"):
        ops.soft_argmax_3d(v.half())
    with pytest.raises(ValueError, match="'normalize' must be"):
        ops.soft_argmax_3d(v, normalize="l1")
    with pytest.raises(ValueError, match="'beta' must be finite"):
        ops.soft_argmax_3d(v, beta=float("inf"))
    with pytest.raises(TypeError, match="'beta' must be a number"):
        ops.soft_argmax_3d(v, beta="x")
    with pytest.raises(ValueError, match="'beta' must be positive"):
        ops.debiased_soft_argmax_3d(v, beta=0.0)
    with pytest.raises(ValueError, match="'form' must be 'paper'"):
        ops.debiased_soft_argmax_3d(v, form="mmpose")
    with pytest.raises(ValueError, match="D, H, W > 0"):
        ops.soft_argmax_3d(torch.rand(2, 3, 0, 4, 4))
    with pytest.raises(ValueError, match="'grad' must have shape"):
        torch.ops.pyhpe._soft_argmax_3d_backward(torch.rand(2, 3, 2), v,
                                                torch.zeros(2, 3, 8, dtype=torch.float64),
                                                1.0, "softmax")
    with pytest.raises(TypeError, match="'stats' must be the float64 statistics"):
        torch.ops.pyhpe._soft_argmax_3d_backward(torch.rand(2, 3, 3), v, torch.zeros(2, 3, 8),
                                                1.0, "softmax")
    with pytest.raises(RuntimeError, match="pyhpe._soft_argmax_3d_forward: is not differentiable"):
        torch.ops.pyhpe._soft_argmax_3d_forward(v.requires_grad_(True), 1.0, "softmax")


@cpu_and_cuda()
def test_empty_inputs(device):
    assert ops.soft_argmax_3d(torch.rand(0, 17, 4, 5, 6, device=device)).shape == (0, 17, 3)
    assert ops.debiased_soft_argmax_3d(torch.rand(2, 0, 4, 5, 6, device=device)).shape == (2, 0, 3)
    x = torch.rand(0, 3, 4, 5, 6, device=device, requires_grad=True)
    ops.soft_argmax_3d(x).sum().backward()
    assert x.grad.shape == x.shape
    vol, w = ops.gaussian_volumes(torch.rand(0, 5, 3, device=device), None, (4, 5, 6))
    assert vol.shape == (0, 5, 6, 5, 4) and w.shape == (0, 5)
    vol, w = ops.gaussian_volumes(torch.rand(2, 3, 3, device=device), None, (0, 5, 6))
    assert vol.shape == (2, 3, 6, 5, 0) and w.tolist() == [[1.0] * 3] * 2


# ---- Gaussian volumes ----------------------------------------------------------------


@cpu_and_cuda()
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sigma", [1.0, 1.5, 2.0, 0.7])
def test_gaussian_volumes_match_reference(device, dtype, sigma, rng):
    B, K, size = 3, 6, (11, 9, 7)
    kp = rng.uniform(-4, 1, size=(B, K, 3)) + rng.uniform(0, 1, size=(B, K, 3)) * [12, 10, 8]
    kp[0, 0] = [-5.0, 3.0, 3.0]  # window right edge at 0: mmpose keeps the weight
    kp[0, 1] = [4.0, 4.0, 20.0]  # beyond the depth: weight 0
    kp[0, 2, 2] = np.nan  # non-finite: weight 0
    vis = (rng.uniform(size=(B, K)) > 0.2).astype(np.float64)
    vis[0, :3] = 1.0
    vis[1, 0] = 0.3  # skipped, weight kept
    npdt = np.float32 if dtype == torch.float32 else np.float64
    t_kp = torch.from_numpy(kp.astype(npdt)).to(device)
    t_vis = torch.from_numpy(vis.astype(npdt)).to(device)
    vol, w = ops.gaussian_volumes(t_kp, t_vis, size, sigma=sigma)
    assert vol.shape == (B, K, 7, 9, 11) and vol.dtype == dtype and w.shape == (B, K)
    want_v, want_w = ref.gaussian_volumes_batch_numpy(kp.astype(npdt), vis.astype(npdt), size,
                                                      sigma)
    np.testing.assert_allclose(vol.cpu().numpy(), want_v, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(w.cpu().numpy(), want_w)
    assert w[0, 0] == 1 and w[0, 1] == 0 and w[0, 2] == 0 and w[1, 0] == 0.3
    tv, tw = ref.gaussian_volumes_torch(t_kp, t_vis, size, sigma)
    torch.testing.assert_close(vol, tv, rtol=0, atol=1e-6)
    torch.testing.assert_close(w, tw)


@cpu_and_cuda()
def test_gaussian_volumes_per_keypoint_sigma_and_decode_round_trip(device, rng):
    B, K = 2, 4
    kp = torch.tensor(rng.uniform(3, 12, size=(B, K, 3)), dtype=torch.float64, device=device)
    sig = torch.tensor([1.0, 1.5, 2.0, 2.5], dtype=torch.float64)
    vol, w = ops.gaussian_volumes(kp, None, (16, 15, 14), sigma=sig)
    want, _ = ref.gaussian_volumes_batch_numpy(kp.cpu().numpy(), np.ones((B, K)), (16, 15, 14),
                                               sig.numpy()[None].repeat(B, 0))
    np.testing.assert_allclose(vol.cpu().numpy(), want, rtol=0, atol=1e-12)
    assert torch.all(w == 1)
    # decoding a target volume returns its centre voxel int(kp + 0.5) (integer-sigma windows
    # are symmetric, and the truncated Gaussian lies inside the volume)
    dec = ops.soft_argmax_3d(vol[:, :1], normalize="sum")
    torch.testing.assert_close(dec, (kp[:, :1] + 0.5).floor(), rtol=0, atol=1e-9)


def test_gaussian_volumes_bad_inputs():
    kp = torch.rand(2, 3, 3)
    with pytest.raises(ValueError, match=r"pyhpe.gaussian_volumes: 'keypoints' must have shape "
                                         r"\(B, K, 3\)"):
        ops.gaussian_volumes(torch.rand(2, 3, 2), None, (4, 4, 4))
    with pytest.raises(ValueError, match=r"'volume_size' must be \(W, H, D\)"):
        ops.gaussian_volumes(kp, None, (4, 4))
    with pytest.raises(ValueError, match="'volume_size' must be an integer"):
        ops.gaussian_volumes(kp, None, (4, 4.5, 4))
    with pytest.raises(ValueError, match=r"'volume_size' \(W, H, D\) must be in \[0, 4096\]"):
        ops.gaussian_volumes(kp, None, (100000, 4, 4))
    with pytest.raises(ValueError, match="'sigma' must be positive and finite"):
        ops.gaussian_volumes(kp, None, (4, 4, 4), sigma=float("nan"))
    with pytest.raises(ValueError, match="'sigma' must be positive and finite"):
        ops.gaussian_volumes(kp, None, (4, 4, 4), sigma=torch.tensor([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="'sigma' must broadcast to"):
        ops.gaussian_volumes(kp, None, (4, 4, 4), sigma=torch.ones(5))
    with pytest.raises(ValueError, match=r"'visibility' must have shape \(B, K\)"):
        ops.gaussian_volumes(kp, torch.ones(2, 4), (4, 4, 4))
    with pytest.raises(TypeError, match="'keypoints' must be float32 or float64"):
        ops.gaussian_volumes(kp.to(torch.int64), None, (4, 4, 4))
    with pytest.raises(RuntimeError, match="pyhpe.gaussian_volumes: is not differentiable"):
        ops.gaussian_volumes(kp.requires_grad_(True), None, (4, 4, 4))
    # huge coordinates miss the volume (weight 0), no crash
    vol, w = ops.gaussian_volumes(torch.tensor([[[1e30, 2.0, 2.0], [-1e30, 2, 2]]]), None,
                                  (4, 4, 4))
    assert w.tolist() == [[0.0, 0.0]] and torch.all(vol == 0)


# ---- opcheck and torch.compile -------------------------------------------------------


def _opcheck(op, args):
    torch.library.opcheck(op, args, {}, test_utils=("test_schema", "test_autograd_registration",
                                                    "test_faketensor", "test_aot_dispatch_static"))


@cpu_and_cuda()
def test_opcheck(device):
    g = torch.Generator().manual_seed(7)
    v = torch.rand(2, 3, 4, 5, 6, generator=g, dtype=torch.float64).to(device)
    vg = v.clone().requires_grad_(True)
    P = torch.ops.pyhpe
    _opcheck(P.soft_argmax_3d.default, (vg, 1.5, "softmax"))
    _opcheck(P.soft_argmax_3d.default, (vg, 1.0, "sum"))
    _opcheck(P.debiased_soft_argmax_3d.default, (vg, 1.5, "paper"))
    _opcheck(P._soft_argmax_3d_forward.default, (v, 1.5, "softmax"))
    _opcheck(P._debiased_soft_argmax_3d_forward.default, (v, 1.5, "paper"))
    gr = torch.rand(2, 3, 3, generator=g, dtype=torch.float64).to(device)
    st = P._soft_argmax_3d_forward(v, 1.5, "softmax")[1]
    _opcheck(P._soft_argmax_3d_backward.default, (gr, v, st, 1.5, "softmax"))
    st = P._debiased_soft_argmax_3d_forward(v, 1.5, "paper")[1]
    _opcheck(P._debiased_soft_argmax_3d_backward.default, (gr, v, st, 1.5, "paper"))
    kp = torch.rand(2, 3, 3, generator=g, dtype=torch.float64).to(device) * 5
    _opcheck(P.gaussian_volumes.default,
             (kp, torch.ones(2, 3, dtype=torch.float64, device=device),
              torch.full((1, 1), 1.5, dtype=torch.float64, device=device), 6, 5, 4))


def test_torch_compile():
    def train_step(v, kp):
        target, weight = ops.gaussian_volumes(kp, None, (6, 5, 4), sigma=1.0)
        coords = ops.soft_argmax_3d(v, beta=2.0)
        deb = ops.debiased_soft_argmax_3d(v, beta=2.0)
        return ((coords - kp).abs().sum() + deb.square().sum()
                + ((v - target) ** 2 * weight[..., None, None, None]).sum())

    g = torch.Generator().manual_seed(1)
    v = torch.rand(2, 3, 4, 5, 6, generator=g)
    kp = torch.rand(2, 3, 3, generator=g) * 4
    a, b = v.clone().requires_grad_(True), v.clone().requires_grad_(True)
    out = torch.compile(train_step, fullgraph=True, backend="aot_eager")(a, kp)
    out.backward()
    ref_out = train_step(b, kp)
    ref_out.backward()
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(a.grad, b.grad)


def test_batched_cpu_threads_agree(rng, cpu_path):
    # Many maps across the parallel_for tasks: every map equals its own single-map result.
    t = torch.from_numpy(gaussian_blobs(rng, 4, 17, 8, 16, 16)).float()
    whole = ops.soft_argmax_3d(t, beta=3.0)
    one = torch.stack([ops.soft_argmax_3d(t[b:b + 1, k:k + 1], beta=3.0)[0, 0]
                       for b in range(4) for k in range(17)]).view(4, 17, 3)
    assert torch.equal(whole, one)
    assert math.isfinite(float(whole.sum()))
