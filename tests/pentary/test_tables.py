"""Table activations (sigmoid, tanh: 256-entry lookups) on the pentary target, bit-exact with the
interpreter, after a conv (padded layout) and on a flat vector."""

import numpy as np
import pytest
from onnx import helper

from lbc.driver import compile_model, run_compiled
from lbc.ir.interpreter import run
from lbc.ir.quant import quantize_input
from onnx_models import make_model, rng, save


def table_cnn(path):
    r, f, n = rng(41), np.float32, helper.make_node
    inits = [("w0", (r.standard_normal((4, 1, 3, 3)) * .6).astype(f)), ("b0", (r.standard_normal(4) * .2).astype(f)),
             ("fw", (r.standard_normal((64, 6)) * .3).astype(f)),
             ("shape", np.array([1, 64], dtype=np.int64))]
    nodes = [n("Conv", ["x", "w0", "b0"], ["c0"], name="conv0", strides=[2, 2], pads=[1, 1, 1, 1]),
             n("Sigmoid", ["c0"], ["s0"], name="sig"),
             n("Reshape", ["s0", "shape"], ["fl"], name="flat"),
             n("MatMul", ["fl", "fw"], ["m"], name="fc"),
             n("Tanh", ["m"], ["y"], name="tanh")]
    return save(make_model(nodes, [("x", ["N", 1, 8, 8])], [("y", ["N", 6])], inits, name="tables"), path)


@pytest.mark.parametrize("q", ["pentary", "ternary"])
def test_sigmoid_tanh_tables(tmp_path, q):
    model = table_cnn(tmp_path / "m.onnx")
    x = rng(42).standard_normal((100, 1, 8, 8)).astype(np.float32)
    c = compile_model(model, tmp_path / "out", "pentary", q, x[:48])
    assert sorted(n.attr("fn") for n in c.graph.nodes if n.op == "table") == ["sigmoid", "tanh"]
    _, yq, _ = run_compiled(c.outdir, x)
    xq = quantize_input(x, c.graph.types[c.graph.inputs[0]].exp)
    np.testing.assert_array_equal(yq.reshape(len(x), -1), run(c.graph, xq)[0].reshape(len(x), -1))
