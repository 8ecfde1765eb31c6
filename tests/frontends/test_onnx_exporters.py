"""Models from both of PyTorch's ONNX exporters (the TorchScript one, dynamo=False, and the default
dynamo one, which needs onnxscript and writes weights to a .data side file), at opsets 13 to 21:
they import, match PyTorch in float, and the dynamo export compiles for host bit-exact with the
reference interpreter."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lbc.driver import compile_model, run_compiled  # noqa: E402
from lbc.frontends import load_model  # noqa: E402
from lbc.ir.interpreter import run  # noqa: E402
from lbc.ir.quant import quantize_input  # noqa: E402


class SmallCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.conv1d = torch.nn.Conv1d(4, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * 4 * 4, 10)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
        x = self.conv1d(x.flatten(2)).unflatten(2, (4, 4))  # a 1-d convolution on the 2-d features
        return self.fc(torch.flatten(x, 1))


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(12, 16)
        self.b = torch.nn.Linear(16, 5)

    def forward(self, x):
        return self.b(torch.nn.functional.leaky_relu(self.a(x), 0.1))


def _model(kind):
    torch.manual_seed(0)
    m = SmallCNN() if kind == "cnn" else MLP()
    if kind == "cnn":
        with torch.no_grad():
            m.bn.running_mean.uniform_(-0.5, 0.5)
            m.bn.running_var.uniform_(0.5, 1.5)
    return m.eval(), (torch.rand(1, 1, 8, 8) if kind == "cnn" else torch.rand(1, 12))


def _export(tmp_path, kind, dynamo, opset):
    m, x = _model(kind)
    path = tmp_path / f"{kind}_{'dynamo' if dynamo else 'ts'}_{opset}.onnx"
    torch.onnx.export(m, (x,), str(path), dynamo=dynamo, opset_version=opset, input_names=["x"])
    return m, path


@pytest.mark.parametrize("dynamo,opset", [(False, 13), (False, 15), (False, 17), (False, 19), (False, 20),
                                          (True, 18), (True, 21)])
@pytest.mark.parametrize("kind", ["cnn", "mlp"])
def test_export_imports_and_matches_torch(tmp_path, kind, dynamo, opset):
    m, path = _export(tmp_path, kind, dynamo, opset)
    g = load_model(path)
    shape = (6,) + tuple(g.types[g.inputs[0]].shape[1:])
    x = np.random.default_rng(1).uniform(-1, 1, shape).astype(np.float32)
    with torch.no_grad():
        ref = m(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run(g, x)[0], ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["cnn", "mlp"])
def test_dynamo_export_compiles_for_host_bit_exact(tmp_path, kind):
    _, path = _export(tmp_path, kind, True, 18)
    g = load_model(path)
    shape = tuple(g.types[g.inputs[0]].shape[1:])
    x = np.random.default_rng(2).uniform(0, 1, (16,) + shape).astype(np.float32)
    c = compile_model(path, tmp_path / "out", "host", "int8", x)
    _, yq, _ = run_compiled(c.outdir, x)
    np.testing.assert_array_equal(yq, run(c.graph, quantize_input(x, c.graph.meta["input_exp"]))[0])
