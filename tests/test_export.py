"""Export: the plain-torch decode of every codec equals the codec's decode (pyhpe's compiled
ops), every model exports to ONNX with and without the decode step (bottom-up PAF: raw
outputs only) and ONNX Runtime gives PyTorch's outputs, and torch.export programs run."""
import numpy as np
import pytest
import torch

from pyhpe.apis.export import (ExportModule, example_input, export_onnx, export_program,
                               torch_decoder)
from pyhpe.codecs import build_codec
from pyhpe.models import MODELS, build_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

IN = [48, 64]
HEATMAP_CODECS = {
    "msra_argmax": ("msra", {"heatmap_size": [12, 16], "sigma": 1.0}),
    "msra_dark": ("msra", {"heatmap_size": [12, 16], "sigma": 1.0, "decode": "dark",
                           "blur_kernel_size": 5}),
    "unbiased_dark": ("unbiased", {"heatmap_size": [12, 16], "sigma": 1.0, "decode": "dark",
                                   "blur_kernel_size": 11}),
    "udp": ("udp", {"heatmap_size": [12, 16], "sigma": 1.0, "blur_kernel_size": 5}),
    "ipr": ("integral", {"heatmap_size": [12, 16], "method": "ipr"}),
    "dsnt": ("integral", {"heatmap_size": [12, 16], "method": "dsnt", "beta": 2.0}),
    "dipr_paper": ("integral", {"heatmap_size": [12, 16], "method": "dipr", "debias_form": "paper"}),
    "dipr_mmpose": ("integral", {"heatmap_size": [12, 16], "method": "dipr"}),
}
SIMCC_CODECS = {"simcc": {"sigma": [2.0, 2.0]},
                "simcc_dark": {"sigma": [2.0, 2.5], "decode_dark": True}}


def peaked_maps(rng, B=3, K=17, H=16, W=12):
    """Gaussian peaks anywhere (borders included) plus noise; some maps all negative (the
    -1 sentinel)."""
    ys, xs = np.mgrid[0:H, 0:W]
    cx, cy = rng.uniform(-0.5, W - 0.5, (B, K)), rng.uniform(-0.5, H - 0.5, (B, K))
    hm = np.exp(-((xs - cx[..., None, None]) ** 2 + (ys - cy[..., None, None]) ** 2) / 2.0)
    hm = hm + rng.normal(0, 0.02, hm.shape)
    hm[0, :3] = -np.abs(hm[0, :3])
    return torch.tensor(hm, dtype=torch.float32)


def _close(a, b, atol, rtol=1e-4):
    """allclose, ``atol`` relative to the largest magnitude (raw outputs of random weights
    reach hundreds)."""
    a, b = a.float(), b.float()
    assert a.shape == b.shape
    atol = atol * max(1.0, float(b.abs().max()))
    assert torch.allclose(a, b, atol=atol, rtol=rtol), float((a - b).abs().max())


@pytest.mark.parametrize("name", sorted(HEATMAP_CODECS))
def test_torch_decode_of_map_codecs_matches_the_codec(name, rng):
    cname, params = HEATMAP_CODECS[name]
    codec = build_codec(cname, input_size=IN, **params)
    hm = peaked_maps(rng) * (4 if cname == "integral" else 1)
    ref = codec.decode(hm)
    got = torch_decoder(codec)(hm)
    _close(got[0], ref[0], 2e-4)
    _close(got[1], ref[1], 1e-5)


@pytest.mark.parametrize("name", sorted(SIMCC_CODECS))
def test_torch_decode_of_simcc_matches_the_codec(name, rng):
    codec = build_codec("simcc", input_size=IN, **SIMCC_CODECS[name])
    x = torch.tensor(rng.normal(0, 0.3, (3, 17, 96)), dtype=torch.float32)
    y = torch.tensor(rng.normal(0, 0.3, (3, 17, 128)), dtype=torch.float32)
    x[:, :, 40] += 2.0
    x[0, :2] = -x[0, :2].abs()                       # the sentinel
    ref, got = codec.decode((x, y)), torch_decoder(codec)((x, y))
    _close(got[0], ref[0], 2e-4)
    _close(got[1], ref[1], 1e-6)


def _model(name):
    torch.manual_seed(0)
    if name in HEATMAP_CODECS:
        cname, params = HEATMAP_CODECS[name]
        return build_model("simple_baseline", "tiny", codec=build_codec(cname, input_size=IN, **params))
    if name in SIMCC_CODECS:
        return build_model("rtmpose", "tiny", codec=build_codec("simcc", input_size=IN, **SIMCC_CODECS[name]))
    return build_model(name, "tiny")


def _randomize_bn(model):
    """BatchNorm statistics away from the identity, so eval-mode export is really tested."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model.eval()


#: input pixels: on the flat maps of random weights DARK's Hessian and the dipr debiasing are
#: ill-conditioned, and the summation order of a runtime's convolution shows (0.1 px seen)
KP_ATOL = 0.25
#: image-based 3-D models: raw outputs from the image alone (no export decode for their
#: codecs); 3DMPPE's RootNet also takes k (from the camera): refused with a clear error
IMAGE3D = {"mppe3d", "vnect", "dconvmp", "orpm"}
IMAGE3D_RAW = {"vnect": [(2, 17, 16, 16), (2, 17, 3, 16, 16)],
               "dconvmp": [(2, 17, 3), (2, 17, 16)],
               "orpm": [(2, 17, 16, 16), (2, 32, 16, 16), (2, 17, 3, 16, 16)]}
EXPORTED = sorted(set(MODELS) - IMAGE3D) + ["msra_dark", "udp", "dipr_paper", "dsnt", "simcc_dark"]


def test_image3d_rootnet_is_refused_clearly(tmp_path):
    with pytest.raises(ValueError, match="k_value"):
        export_onnx(build_model("mppe3d", "tiny"), str(tmp_path / "m.onnx"))


@pytest.mark.parametrize("name", sorted(IMAGE3D_RAW))
def test_image3d_raw_outputs_export(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = _randomize_bn(_model(name))
    x = example_input(model, batch_size=2)
    sess = ort.InferenceSession(export_onnx(model, str(tmp_path / "m.onnx")),
                                providers=["CPUExecutionProvider"])
    for xb in (x, x[:1]):                           # dynamic batch
        got = sess.run(None, {"input": xb.numpy()})
        with torch.no_grad():
            ref = ExportModule(model)(xb)
        assert [tuple(r.shape) for r in ref] == [(len(xb),) + s[1:] for s in IMAGE3D_RAW[name]]
        for g, r in zip(got, ref):
            _close(torch.from_numpy(g), r, 1e-4, rtol=1e-3)


@pytest.mark.parametrize("name", EXPORTED)
def test_onnx_runtime_matches_pytorch(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = _randomize_bn(_model(name))
    x = example_input(model, batch_size=2)
    paf = model.codec.groups_people
    for with_decode in ([False] if paf else [False, True]):
        path = export_onnx(model, str(tmp_path / f"m{int(with_decode)}.onnx"), with_decode=with_decode)
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        for xb in (x, x[:1]):                       # dynamic batch
            got = sess.run(None, {"input": xb.numpy()})
            with torch.no_grad():
                ref = ExportModule(model, with_decode)(xb)
            assert len(got) == len(ref)
            if with_decode:
                # keypoints: the maps of random weights are flat, so DARK's Hessian and the
                # debiasing are ill-conditioned and amplify the runtimes' rounding of the
                # network (test_onnx_decode_graphs_match_on_peaked_maps checks the decode
                # graphs tightly); scores tight
                # a map whose maximum is within rounding of 0 may decode to the sentinel
                # in one runtime and not the other: compared by score only
                peaked = ref[1].abs() > 1e-6
                assert ((torch.from_numpy(got[0]) - ref[0]).abs().amax(-1)[peaked] < KP_ATOL).all()
                _close(torch.from_numpy(got[1]), ref[1], 1e-4, rtol=1e-3)
            else:
                for g, r in zip(got, ref):
                    _close(torch.from_numpy(g), r, 1e-4, rtol=1e-3)
        if with_decode:                             # = the model's own prediction
            with torch.no_grad():
                pred, mine = model.predict(x), ExportModule(model, True)(x)
            assert (mine[0] - pred[0]).abs().max() < KP_ATOL
            _close(mine[1], pred[1], 1e-5)
    if paf:
        with pytest.raises(NotImplementedError, match="with_decode=False"):
            export_onnx(model, str(tmp_path / "d.onnx"), with_decode=True)


@pytest.mark.parametrize("name", sorted(HEATMAP_CODECS) + sorted(SIMCC_CODECS))
def test_onnx_decode_graphs_match_on_peaked_maps(name, rng, tmp_path):
    """The decode step alone in ONNX Runtime = the codec's decode (pyhpe's ops)."""
    ort = pytest.importorskip("onnxruntime")
    if name in HEATMAP_CODECS:
        cname, params = HEATMAP_CODECS[name]
        codec = build_codec(cname, input_size=IN, **params)
        inputs = (peaked_maps(rng) * (4 if cname == "integral" else 1),)
    else:
        codec = build_codec("simcc", input_size=IN, **SIMCC_CODECS[name])
        x = torch.tensor(rng.normal(0, 0.3, (3, 17, 96)), dtype=torch.float32)
        x[:, :, 40] += 2.0
        inputs = (x, torch.tensor(rng.normal(0, 0.3, (3, 17, 128)), dtype=torch.float32))

    class Dec(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dec = torch_decoder(codec)

        def forward(self, *a):
            return tuple(self.dec(a[0] if len(a) == 1 else a))

    names = [f"in{i}" for i in range(len(inputs))]
    torch.onnx.export(Dec(), inputs, str(tmp_path / "d.onnx"), input_names=names,
                      opset_version=17, dynamo=False)
    sess = ort.InferenceSession(str(tmp_path / "d.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {n: t.numpy() for n, t in zip(names, inputs)})
    ref = codec.decode(inputs[0] if len(inputs) == 1 else inputs)
    _close(torch.from_numpy(got[0]), ref[0], 2e-4)
    _close(torch.from_numpy(got[1]), ref[1], 1e-5)


@pytest.mark.parametrize("name", ["simple_baseline", "rtmpose", "vitpose", "simple_baseline_3d"])
def test_torch_export_program_matches_pytorch(name, tmp_path):
    model = _randomize_bn(_model(name))
    x = example_input(model, batch_size=3)
    prog = export_program(model, with_decode=True, path=str(tmp_path / "m.pt2"))
    loaded = torch.export.load(str(tmp_path / "m.pt2"))
    with torch.no_grad():
        ref = model.predict(x)
        for p in (prog, loaded):
            got = p.module()(x)
            _close(got[0], ref[0], 1e-4)
            _close(got[1], ref[1], 1e-5)
    if name == "rtmpose":
        raw = export_program(model, with_decode=False).module()(x)
        with torch.no_grad():
            ref = model.head.final_outputs(model(x))
        _close(raw[0], ref[0], 1e-5)
        _close(raw[1], ref[1], 1e-5)


def test_cli_export_onnx_and_program(tmp_path, capsys):
    import json
    from pyhpe.cli import main
    from pyhpe.tasks import build_task
    ort = pytest.importorskip("onnxruntime")
    cfg = {"task": "topdown", "keypoints": "crowdpose14", "input_size": [48, 64],
           "model": {"name": "simple_baseline", "config": "tiny"},
           "codec": {"name": "udp", "heatmap_size": [12, 16], "sigma": 1.0, "blur_kernel_size": 5}}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    torch.manual_seed(0)
    model = _randomize_bn(build_task(cfg).build_model())
    torch.save(model.state_dict(), tmp_path / "w.pth")
    base = ["export", "--config", str(tmp_path / "cfg.json"), "--checkpoint", str(tmp_path / "w.pth")]
    assert main(base + ["--out", str(tmp_path / "m.onnx"), "--with-decode"]) == 0
    assert main(base + ["--out", str(tmp_path / "m.pt2")]) == 0
    x = example_input(model, batch_size=2)
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    kp, sc = sess.run(None, {"input": x.numpy()})
    with torch.no_grad():
        ref = model.predict(x)
        raw = torch.export.load(str(tmp_path / "m.pt2")).module()(x)[0]
        _close(raw, model(x), 1e-5)
    assert kp.shape == (2, 14, 2) and (abs(torch.from_numpy(kp) - ref[0]).max() < KP_ATOL)
    _close(torch.from_numpy(sc), ref[1], 1e-4, rtol=1e-3)
    paf = {"task": "bottomup_paf", "keypoints": "coco17", "input_size": [64, 64],
           "model": {"name": "openpose", "config": "tiny"},
           "codec": {"name": "paf", "heatmap_size": [8, 8], "sigma": 1.0}}
    (tmp_path / "paf.json").write_text(json.dumps(paf))
    base = ["export", "--config", str(tmp_path / "paf.json")]
    assert main(base + ["--out", str(tmp_path / "p.onnx")]) == 0
    with pytest.raises(SystemExit, match="with_decode=False"):
        main(base + ["--out", str(tmp_path / "q.onnx"), "--with-decode"])
