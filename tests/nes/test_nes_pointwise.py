"""Pointwise functions on the NES through the one generic `table` kernel: sim65 bit for bit against
the interpreter on extreme inputs."""

import numpy as np
from onnx import helper

from lbc.driver import compile_model
from nes_util import need_cc65
from onnx_models import make_model, rng, save
from test_nes_cnn import assert_matches, calib, extremes

pytestmark = need_cc65
f32 = np.float32


def test_gelu_hardswish_exp_tables(tmp_path):
    r, n = rng(8), helper.make_node
    inits = [("w0", (r.standard_normal((12, 16)) * 0.4).astype(f32)), ("w1", (r.standard_normal((16, 8)) * 0.3).astype(f32)),
             ("w2", (r.standard_normal((8, 6)) * 0.3).astype(f32))]
    nodes = [n("MatMul", ["x", "w0"], ["h0"]), n("Gelu", ["h0"], ["g"], approximate="tanh"),
             n("MatMul", ["g", "w1"], ["h1"]), n("HardSwish", ["h1"], ["s"]), n("MatMul", ["s", "w2"], ["h2"]),
             n("Exp", ["h2"], ["y"])]
    model = save(make_model(nodes, [("x", ["N", 12])], [("y", ["N", 6])], inits, opset=20), tmp_path / "m.onnx")
    c = compile_model(model, tmp_path / "out", "nes", "ternary", calib(tmp_path, (12,)))
    assert sorted(nd.attrs["fn"] for nd in c.graph.nodes if nd.op == "table") == ["exp", "gelu", "hard_swish"]
    assert_matches(c, extremes((12,)))
