"""The small-model op set beyond conv/pool/add on rv32ec: pad, transpose, concat (with rescaling),
sigmoid/tanh tables, mul of two activations (squeeze-excite broadcast, and a constant operand),
broadcasting add - firmware == interpreter on many inputs."""

import numpy as np
import pytest
from onnx import helper

from conftest import need_toolchain
from lbc.driver import compile_model, read_manifest
from lbc.ir.interpreter import run as interpret
from lbc.ir.quant import quantize_input
from onnx_models import make_model, rng, save


def op_set_model(path):
    r, f, n = rng(11), np.float32, helper.make_node
    inits = [("w0", (r.standard_normal((4, 2, 3, 3)) * 0.4).astype(f)), ("b0", (r.standard_normal(4) * .1).astype(f)),
             ("scale", (r.standard_normal((1, 8, 1, 1)) * 0.8).astype(f)),
             ("pads", np.array([0, 0, 1, 0, 0, 0, 0, 2], dtype=np.int64)),
             ("fw", (r.standard_normal((8 * 9 * 7, 10)) * 0.05).astype(f))]
    nodes = [n("Conv", ["x", "w0", "b0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
             n("Sigmoid", ["c0"], ["s0"], name="sig"),
             n("GlobalAveragePool", ["s0"], ["g"], name="squeeze"),
             n("Mul", ["c0", "g"], ["se"], name="excite"),
             n("Tanh", ["se"], ["t"], name="tanh"),
             n("Add", ["t", "g"], ["ba"], name="badd"),
             n("Concat", ["ba", "c0"], ["cat"], name="cat", axis=1),
             n("Mul", ["cat", "scale"], ["sc"], name="cscale"),
             n("Pad", ["sc", "pads"], ["pd"], name="pad", mode="constant"),
             n("Transpose", ["pd"], ["tr"], name="tr", perm=[0, 1, 3, 2]),
             n("Flatten", ["tr"], ["fl"], name="flat"),
             n("MatMul", ["fl", "fw"], ["y"], name="fc")]
    return save(make_model(nodes, [("x", ["N", 2, 6, 7])], [("y", ["N", 10])], inits, name="opset"), path)


@pytest.mark.parametrize("q", ["int8", "ternary"])
def test_pad_transpose_concat_tables_mul(tmp_path, q):
    need_toolchain()
    model = op_set_model(tmp_path / "m.onnx")
    x = rng(12).standard_normal((150, 2, 6, 7)).astype(np.float32)
    c = compile_model(model, tmp_path / "out", "rv32ec", q, x[:64])
    ops = {n.op for n in c.graph.nodes}
    assert {"pad", "transpose", "concat", "table", "mul", "add"} <= ops
    assert sorted(n.attr("fn") for n in c.graph.nodes if n.op == "table") == ["sigmoid", "tanh"]
    cat = next(n for n in c.graph.nodes if n.op == "concat")
    assert any(cat.attr("shifts")), "the test should exercise concat's rescaling"
    xq = quantize_input(x, c.graph.types[c.graph.inputs[0]].exp)
    y, _ = c.target.run(c.outdir, read_manifest(c.outdir), xq, count=1)
    np.testing.assert_array_equal(y, interpret(c.graph, xq)[0])


def test_generic_table_ops(tmp_path):
    """HardSwish, HardSigmoid and Elu after a conv: every pointwise op reaches the one table kernel."""
    need_toolchain()
    r, f, n = rng(13), np.float32, helper.make_node
    nodes = [n("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             n("HardSwish", ["c"], ["h"], name="hswish"),
             n("HardSigmoid", ["h"], ["s"], name="hsig"),
             n("Elu", ["s"], ["y"], name="elu")]
    model = save(make_model(nodes, [("x", ["N", 1, 5, 5])], [("y", ["N", 3, 5, 5])],
                            [("w", (r.standard_normal((3, 1, 3, 3)) * .8).astype(f))], opset=14, name="tables"),
                 tmp_path / "t.onnx")
    x = rng(14).standard_normal((100, 1, 5, 5)).astype(np.float32)
    c = compile_model(model, tmp_path / "out", "rv32ec", "int8", x[:48])
    assert [n.attr("fn") for n in c.graph.nodes if n.op == "table"] == ["hard_swish", "hard_sigmoid", "elu"]
    xq = quantize_input(x, c.graph.types[c.graph.inputs[0]].exp)
    y, _ = c.target.run(c.outdir, read_manifest(c.outdir), xq, count=1)
    np.testing.assert_array_equal(y, interpret(c.graph, xq)[0])
