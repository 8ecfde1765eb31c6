"""Every op the target emits besides dense-on-a-vector: dense over rows (a 3-d input), reshape, a
standalone relu and clip, argmax (an i32 output) - firmware == interpreter."""

import numpy as np
import pytest
from onnx import helper

from conftest import need_toolchain
from lbc.driver import compile_model, read_manifest
from lbc.ir.interpreter import run as interpret
from lbc.ir.quant import quantize_input
from lbc.backends.rv32ec.kernels import stack_reserve
from onnx_models import broadcast_add, make_model, residual_cnn, residual_mlp, rng, save


def rows_model(path):
    r = rng(3)
    w0 = (r.standard_normal((16, 8)) / 4).astype(np.float32)
    w1 = (r.standard_normal((32, 10)) / 6).astype(np.float32)
    b1 = (r.standard_normal(10) * 0.1).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w0"], ["m0"], name="mm0"),
             helper.make_node("Reshape", ["m0", "shape"], ["r0"], name="flat"),
             helper.make_node("Relu", ["r0"], ["a0"], name="relu0"),
             helper.make_node("Clip", ["a0", "lo", "hi"], ["c0"], name="clip0"),
             helper.make_node("Gemm", ["c0", "w1", "b1"], ["l"], name="fc1"),
             helper.make_node("ArgMax", ["l"], ["idx"], name="am", axis=1, keepdims=0)]
    inits = [("w0", w0), ("w1", w1), ("b1", b1), ("shape", np.array([1, 32], dtype=np.int64)),
             ("lo", np.array(0.0, np.float32)), ("hi", np.array(1.5, np.float32))]
    return save(make_model(nodes, [("x", [1, 4, 16])], [("idx", [1])], inits, name="rows"), path)


@pytest.mark.parametrize("q,kernel", [("int4", None), ("ternary", "lut"), ("int8", "bits"), ("pentary", "bitsp")])
def test_rows_reshape_relu_clip_argmax(tmp_path, q, kernel):
    need_toolchain()
    model = rows_model(tmp_path / "rows.onnx")
    calib = rng(4).random((64, 1, 4, 16)).astype(np.float32)
    c = compile_model(model, tmp_path / "out", "rv32ec", q, calib, target_options={"kernel": kernel} if kernel else {})
    assert {"reshape", "relu", "clip", "argmax", "dense"} <= {n.op for n in c.graph.nodes}
    x = rng(5).random((200, 1, 4, 16)).astype(np.float32) * 1.5 - 0.25
    xq = quantize_input(x, c.graph.types[c.graph.inputs[0]].exp)
    y, stats = c.target.run(c.outdir, read_manifest(c.outdir), xq, count=1)
    ref = interpret(c.graph, xq)[0]
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, ref)
    assert stats["macs"] == 4 * 16 * 8 + 32 * 10


def cnn_model(path):
    """conv (padding, bias) + relu + maxpool + grouped conv (asymmetric padding) + relu + flatten + dense."""
    r = rng(2)
    w0 = (r.standard_normal((6, 1, 3, 3)) / 3).astype(np.float32)
    b0 = (r.standard_normal(6) * .1).astype(np.float32)
    w1 = (r.standard_normal((6, 2, 3, 3)) / 4).astype(np.float32)
    w2 = (r.standard_normal((54, 10)) / 7).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c0"], ["r0"], name="relu0"),
             helper.make_node("MaxPool", ["r0"], ["p0"], name="pool0", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p0", "w1"], ["c1"], name="conv1", group=3, pads=[1, 0, 0, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Reshape", ["r1", "shape"], ["f"], name="flat"),
             helper.make_node("MatMul", ["f", "w2"], ["y"], name="fc")]
    inits = [("w0", w0), ("b0", b0), ("w1", w1), ("w2", w2), ("shape", np.array([1, 54], dtype=np.int64))]
    return save(make_model(nodes, [("x", [1, 1, 8, 8])], [("y", [1, 10])], inits, name="cnn"), path)


@pytest.mark.parametrize("q,kernel", [("int4", None), ("ternary", "lut"), ("int8", "bits"), ("pentary", "bitsp"),
                                      ("int2", "lut")])
def test_conv_maxpool_grouped_conv(tmp_path, q, kernel):
    need_toolchain()
    model = cnn_model(tmp_path / "cnn.onnx")
    x = rng(6).random((120, 1, 8, 8)).astype(np.float32)
    c = compile_model(model, tmp_path / "out", "rv32ec", q, x[:64],
                      target_options={"kernel": kernel} if kernel else {})
    assert {"conv2d", "maxpool", "dense"} <= {n.op for n in c.graph.nodes}
    xq = quantize_input(x, c.graph.types[c.graph.inputs[0]].exp)
    y, stats = c.target.run(c.outdir, read_manifest(c.outdir), xq, count=1)
    np.testing.assert_array_equal(y, interpret(c.graph, xq)[0])
    assert stats["macs"] == 6 * 9 * 64 + 6 * 2 * 9 * 3 * 3 + 54 * 10
    assert stats["stack_peak_bytes"] <= stack_reserve(c.graph)


@pytest.mark.parametrize("q,pool,kernel", [("int4", "max", None), ("ternary", "avg", "lut")])
def test_residual_add_avgpool_global_avgpool(tmp_path, q, pool, kernel):
    """conv -> relu -> conv + residual add -> relu -> max or padded average pool -> global average pool
    -> dense: the adds and average pools requantise through a generated multiplier-free kernel."""
    need_toolchain()
    model = save(residual_cnn(pool=pool, avg_pads=(1, 1, 1, 1)), tmp_path / "res.onnx")
    x = rng(6).random((120, 1, 8, 8)).astype(np.float32) * 1.2 - 0.1
    c = compile_model(model, tmp_path / "out", "rv32ec", q, x[:64], target_options={"kernel": kernel} if kernel else {})
    ops = {n.op for n in c.graph.nodes}
    assert {"add", "global_avgpool", "maxpool" if pool == "max" else "avgpool"} <= ops
    assert any(n.attr("sa") or n.attr("sb") for n in c.graph.nodes if n.op == "add")
    xq = quantize_input(x, c.graph.types[c.graph.inputs[0]].exp)
    y, stats = c.target.run(c.outdir, read_manifest(c.outdir), xq, count=1)
    np.testing.assert_array_equal(y, interpret(c.graph, xq)[0])
    assert stats["stack_peak_bytes"] <= stack_reserve(c.graph)  # the plan leaves this much RAM for the stack
    assert "lbc_rq_" in (c.outdir / "lbc_kernels.S").read_text()


def test_residual_add_on_vectors(tmp_path):
    need_toolchain()
    x = rng(7).standard_normal((150, 12)).astype(np.float32)
    c = compile_model(save(residual_mlp(), tmp_path / "m.onnx"), tmp_path / "out", "rv32ec", "int8", x[:64])
    assert "add" in {n.op for n in c.graph.nodes}
    xq = quantize_input(x, c.graph.types[c.graph.inputs[0]].exp)
    y, _ = c.target.run(c.outdir, read_manifest(c.outdir), xq, count=1)
    np.testing.assert_array_equal(y, interpret(c.graph, xq)[0])


@pytest.mark.parametrize("target,q", [("rv32ec", "int4"), ("pentary", "pentary")])
def test_small_targets_reject_broadcast_add_and_per_channel_pool(tmp_path, target, q):
    """Both small targets requantise adds and average pools per tensor; pentary also adds same-shape
    activations only (rv32ec broadcasts: tests/rv32ec/test_cnn_ops.py); check() names each node."""
    from lbc.backends import get_target
    from lbc.driver import lower
    c = lower(save(broadcast_add(), tmp_path / "m.onnx"), target, q, rng(0).random((16, 1, 6, 6)))
    gap = next(n for n in c.graph.nodes if n.name == "gap")
    gap.attrs["m"], gap.attrs["k"] = (1, 3), (4, 5)
    problems = get_target(target).check(c.graph)
    assert any("add badd: both operands must be activations" in p for p in problems) == (target == "pentary")
    assert any("global_avgpool gap: per-channel requantisation is not supported" in p for p in problems)
