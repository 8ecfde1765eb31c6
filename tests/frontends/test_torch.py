"""The PyTorch frontend against torch's own float output, per op; .pt2 files read without torch or
pickle; unsupported ops all reported at once."""

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (make test installs the CPU build)")
torch.set_num_threads(1)  # tiny models: extra threads only contend (5x slower on 2 busy cores)
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from lbc.errors import ModelError, UnsupportedOpError  # noqa: E402
from lbc.frontends import load_model  # noqa: E402
from lbc.frontends.torch import from_module, load_pt2  # noqa: E402
from lbc.ir.interpreter import run  # noqa: E402


def _randomise(m, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (nn.BatchNorm2d, nn.BatchNorm1d)):
                mod.running_mean.copy_(torch.rand(mod.running_mean.shape, generator=g) - 0.5)
                mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g) + 0.5)
                mod.weight.copy_(torch.rand(mod.weight.shape, generator=g) + 0.5)
                mod.bias.copy_(torch.rand(mod.bias.shape, generator=g) - 0.5)
    return m.eval()


class Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 3, 3, padding=1)
        self.b = nn.Conv2d(3, 3, 1)
        self.register_buffer("k", torch.linspace(0.5, 1.5, 3).reshape(1, 3, 1, 1))

    def forward(self, x):
        y = self.a(x) + self.b(x) * 0.5 - x
        z = torch.cat([y * self.k, x / 4.0], dim=1)
        return F.pad(z, (1, 0, 0, 2), value=0.25)


IMG = (2, 3, 8, 8)
CASES = {
    "linear_mlp": (lambda: nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 5)), (2, 20)),
    "linear_no_bias": (lambda: nn.Sequential(nn.Linear(20, 7, bias=False)), (2, 20)),
    "conv_bn_relu_maxpool": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                                   nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 10)), IMG),
    "conv_stride_dilation_groups": (lambda: nn.Sequential(nn.Conv2d(3, 6, 3, stride=2, padding=2, dilation=2,
                                                                    groups=3)), IMG),
    "conv_same_padding": (lambda: nn.Sequential(nn.Conv2d(3, 2, (3, 2), padding="same")), IMG),
    "depthwise": (lambda: nn.Sequential(nn.Conv2d(3, 3, 3, groups=3, bias=False), nn.ReLU6()), IMG),
    "avgpool": (lambda: nn.Sequential(nn.AvgPool2d(3, stride=2, padding=1), nn.Sigmoid()), IMG),
    "adaptive_avgpool": (lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Tanh()), IMG),
    "adaptive_avgpool_2x2": (lambda: nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.LeakyReLU(0.1)), IMG),
    "mean_hardtanh": (lambda: Lambda(lambda x: F.hardtanh(x.mean((2, 3)), -0.2, 0.3)), IMG),
    "maxpool_padding": (lambda: nn.Sequential(nn.MaxPool2d(3, 2, padding=1)), IMG),
    "residual_cat_pad": (lambda: Residual(), IMG),
    "permute_clamp": (lambda: Lambda(lambda x: torch.clamp(x.permute(0, 2, 3, 1), min=-0.5)), IMG),
    "batchnorm1d_dropout_softmax": (lambda: nn.Sequential(nn.Linear(12, 6), nn.BatchNorm1d(6), nn.Dropout(0.5),
                                                          nn.Softmax(dim=1)), (2, 12)),
}


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("case", sorted(CASES))
def test_module_matches_torch(case):
    make, shape = CASES[case]
    torch.manual_seed(0)
    m = _randomise(make())
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    g = from_module(m, x[:1])
    with torch.no_grad():
        ref = m(x).numpy()
    got = run(g, x.numpy())[0]
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=2e-6)


def _save_pt2(m, x, path):
    torch.export.save(torch.export.export(m.eval(), (x,)), str(path))
    return path


def test_pt2_round_trip_and_cli(tmp_path):
    torch.manual_seed(0)
    m = _randomise(CASES["conv_bn_relu_maxpool"][0]())
    x = torch.randn(5, 3, 8, 8)
    path = _save_pt2(m, x[:1], tmp_path / "cnn.pt2")
    g = load_model(path)
    with torch.no_grad():
        np.testing.assert_allclose(run(g, x.numpy())[0], m(x).numpy(), rtol=1e-5, atol=2e-6)
    from lbc.cli import main
    assert main(["compile", str(path), "--target", "host", "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "model").exists()


def test_pt2_is_read_without_torch_or_pickle(tmp_path):
    m = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    path = _save_pt2(m, torch.randn(1, 6), tmp_path / "mlp.pt2")
    x = np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32)
    with torch.no_grad():
        ref = m(torch.from_numpy(x)).numpy()
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "ref.npy", ref)
    code = (
        "import sys, pickle, numpy as np\n"
        "sys.modules['torch'] = None\n"  # importing torch now fails
        "def no(*a, **k): raise AssertionError('unpickling attempted')\n"
        "pickle.loads = pickle.load = no\n"
        "from lbc.frontends import load_model\nfrom lbc.ir.interpreter import run\n"
        f"g = load_model({str(path)!r})\n"
        f"y = run(g, np.load({str(tmp_path / 'x.npy')!r}))[0]\n"
        f"assert np.allclose(y, np.load({str(tmp_path / 'ref.npy')!r}), atol=1e-6)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _rewrite(src, dst, edit):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            zout.writestr(item, edit(item.filename, data))


def test_pt2_with_pickled_payload_is_refused(tmp_path):
    path = _save_pt2(nn.Sequential(nn.Linear(4, 2)), torch.randn(1, 4), tmp_path / "m.pt2")

    def mark_pickled(name, data):
        if name.endswith("_weights_config.json"):
            cfg = json.loads(data)
            for v in cfg["config"].values():
                v["use_pickle"] = True
            return json.dumps(cfg).encode()
        return data
    _rewrite(path, tmp_path / "evil.pt2", mark_pickled)
    with pytest.raises(ModelError, match="never unpickles"):
        load_pt2(tmp_path / "evil.pt2")


def test_pt2_with_out_of_bounds_strides_is_refused(tmp_path):
    path = _save_pt2(nn.Sequential(nn.Linear(4, 2)), torch.randn(1, 4), tmp_path / "m.pt2")

    def big_stride(name, data):
        if name.endswith("_weights_config.json"):
            cfg = json.loads(data)
            for v in cfg["config"].values():
                v["tensor_meta"]["strides"] = [{"as_int": 1000} for _ in v["tensor_meta"]["strides"]]
            return json.dumps(cfg).encode()
        return data
    _rewrite(path, tmp_path / "bad.pt2", big_stride)
    with pytest.raises(ModelError, match="reads past"):
        load_pt2(tmp_path / "bad.pt2")


@pytest.mark.parametrize("name", ["model.pt", "model.pth"])
def test_pickled_torch_files_are_refused(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(b"not read")
    with pytest.raises(ModelError, match="never unpickles"):
        load_model(p)


def test_not_a_pt2(tmp_path):
    p = tmp_path / "junk.pt2"
    p.write_bytes(b"hello")
    with pytest.raises(ModelError, match="not a .pt2 archive"):
        load_model(p)


class Unsupported(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        y = torch.erf(self.fc(x))
        return torch.sin(y) + torch.erf(x)


def test_unsupported_ops_listed_at_once():
    with pytest.raises(UnsupportedOpError) as e:
        from_module(Unsupported(), torch.randn(1, 8))
    msg = str(e.value)
    assert "aten.erf.default (2 ops: erf, erf_1)" in msg and "aten.sin.default (op: sin)" in msg


def test_module_needs_example_input():
    with pytest.raises(ModelError, match="example input"):
        from_module(nn.Linear(2, 2), None)


def test_lbc_compile_module_and_run(tmp_path):
    import lbc
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4))
    x = torch.rand(64, 16)
    art = lbc.compile(m, x[:1], target="host", quant="int8", out=tmp_path / "o", calibration=x)
    y = art.run(x.numpy())
    with torch.no_grad():
        ref = m(x).numpy()
    assert y.shape == ref.shape
    assert np.mean(y.argmax(1) == ref.argmax(1)) > 0.9
    assert art.report["target"] == "host" and (art.outdir / "model").exists()
