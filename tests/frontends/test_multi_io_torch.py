"""A torch module with two inputs and two outputs: import against torch's own output, and the
compiled host firmware bit-exact against the interpreter."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import lbc  # noqa: E402
from lbc.driver import io_specs, quantize_inputs  # noqa: E402
from lbc.errors import ModelError  # noqa: E402
from lbc.frontends.torch import from_module  # noqa: E402
from lbc.ir.interpreter import run  # noqa: E402


class TwoInTwoOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(6, 4), nn.Linear(3, 4)

    def forward(self, x, y):
        return torch.relu(self.a(x) + self.b(y)), torch.sigmoid(self.b(y))


def test_torch_two_inputs_two_outputs(tmp_path):
    torch.manual_seed(0)
    m = TwoInTwoOut()
    x, y = torch.randn(40, 6), torch.randn(40, 3)
    g = from_module(m, (x[:1], y[:1]))
    assert g.inputs == ["x", "y"] and len(g.outputs) == 2
    ref = [r.detach().numpy() for r in m(x, y)]
    for o, r in zip(run(g, {"x": x.numpy(), "y": y.numpy()}), ref):
        np.testing.assert_allclose(o, r, rtol=1e-5, atol=1e-6)
    art = lbc.compile(m, (x[:1], y[:1]), out=tmp_path / "o", calibration=(x, y))
    batch = {"x": x.numpy(), "y": y.numpy()}
    got = art.run(batch, raw=True)
    want = run(art.graph, quantize_inputs(batch, io_specs(art.graph, art.graph.inputs)))
    for name, w in zip(art.graph.outputs, want):
        np.testing.assert_array_equal(got[name], w)


def test_integer_example_input_is_refused():
    with pytest.raises(ModelError, match="export a model with integer inputs"):
        from_module(TwoInTwoOut(), (torch.zeros(1, 6), torch.zeros(1, 3, dtype=torch.int64)))
