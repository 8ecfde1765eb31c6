"""Pointwise functions beyond sigmoid/tanh on rv32ec: the same table kernel, firmware == interpreter
on every int8 input value."""

import numpy as np
from onnx import helper

from conftest import need_toolchain
from lbc.driver import compile_model, read_manifest
from lbc.ir.interpreter import run as interpret
from lbc.ir.quant import quantize_input
from onnx_models import make_model, rng, save


def test_gelu_hardswish_erf_tables(tmp_path):
    need_toolchain()
    n = helper.make_node
    w = (rng(3).standard_normal((16, 16)) * 0.3).astype(np.float32)
    nodes = [n("HardSwish", ["x"], ["h"]), n("MatMul", ["h", "w"], ["m"]), n("Gelu", ["m"], ["g"]), n("Erf", ["g"], ["y"])]
    model = save(make_model(nodes, [("x", ["N", 16])], [("y", ["N", 16])], [("w", w)], opset=20), tmp_path / "m.onnx")
    calib = rng(4).uniform(-4, 4, (64, 16)).astype(np.float32)
    c = compile_model(model, tmp_path / "out", "rv32ec", "int8", calib)
    assert [nd.attrs.get("fn") for nd in c.graph.nodes if nd.op == "table"] == ["hard_swish", "gelu", "erf"]
    ex = c.graph.types[c.graph.inputs[0]].exp
    every = (np.arange(-128, 128, dtype=np.float64) * 2.0**-ex).astype(np.float32).reshape(16, 16)
    x = np.concatenate([every, rng(5).uniform(-8, 8, (8, 16)).astype(np.float32)])
    xq = quantize_input(x, ex)
    assert xq.min() == -128 and xq.max() == 127
    y, _ = c.target.run(c.outdir, read_manifest(c.outdir), xq, count=1)
    np.testing.assert_array_equal(y, interpret(c.graph, xq)[0])
