"""Structural ops on the host target: slice/split, gather, nearest resize, pad modes, reductions,
global max pooling, expand, ceil_mode max pooling, transposed convolution (dilate + pad + conv2d) and matmul
of two activations. Float import matches onnxruntime; the compiled C is
bit-exact with the reference interpreter (they share the selection kernels of runtime/c/lbc_select.c,
whose index tables come from the interpreter's op functions)."""

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper

from lbc.driver import compile_model, run_compiled
from lbc.frontends import load_model
from lbc.ir.interpreter import run
from lbc.ir.quant import quantize_input
from onnx_models import make_model, save

n = helper.make_node
I64 = lambda *v: np.array(v, np.int64)  # noqa: E731

# (name, nodes, initialisers, input shape, output name)
CASES = [
    ("slice", [n("Slice", ["x", "st", "en", "ax", "sp"], ["y"])],
     [("st", I64(1, -1)), ("en", I64(4, -6)), ("ax", I64(2, 3)), ("sp", I64(1, -2))], (2, 5, 5), "y"),
    ("split", [n("Split", ["x", "spl"], ["a", "b"], axis=3), n("Relu", ["b"], ["r"]), n("Add", ["a", "r"], ["y"])],
     [("spl", I64(2, 2))], (2, 5, 4), "y"),
    ("gather", [n("Gather", ["x", "gi"], ["y"], axis=1)], [("gi", I64(1, 0, -1))], (2, 5, 5), "y"),
    ("squeeze_unsqueeze", [n("Unsqueeze", ["x", "ua"], ["u"]), n("Squeeze", ["u", "ua"], ["y"])],
     [("ua", I64(2))], (2, 5, 5), "y"),
    ("resize_nearest", [n("Resize", ["x", "", "sc"], ["y"], mode="nearest")],
     [("sc", np.array([1, 1, 2, 1.5], np.float32))], (2, 5, 5), "y"),
    ("resize_asym_floor", [n("Resize", ["x", "", "sc"], ["y"], mode="nearest",
                             coordinate_transformation_mode="asymmetric", nearest_mode="floor")],
     [("sc", np.array([1, 1, 0.6, 1.6], np.float32))], (2, 5, 5), "y"),
    ("pad_reflect", [n("Pad", ["x", "p"], ["y"], mode="reflect")], [("p", I64(0, 0, 1, 2, 0, 0, 2, 1))], (2, 5, 5), "y"),
    ("pad_edge", [n("Pad", ["x", "p"], ["y"], mode="edge")], [("p", I64(0, 0, 1, 2, 0, 0, 2, 1))], (2, 5, 5), "y"),
    ("pad_wrap", [n("Pad", ["x", "p"], ["y"], mode="wrap")], [("p", I64(0, 0, 1, 2, 0, 0, 2, 1))], (2, 5, 5), "y"),
    ("reduce_mean", [n("ReduceMean", ["x", "axs"], ["y"], keepdims=1)], [("axs", I64(2, 3))], (2, 5, 5), "y"),
    ("reduce_sum", [n("ReduceSum", ["x", "axs"], ["y"], keepdims=0)], [("axs", I64(-1))], (2, 5, 5), "y"),
    ("reduce_max", [n("ReduceMax", ["x", "axs"], ["y"], keepdims=1)], [("axs", I64(1, 3))], (2, 5, 5), "y"),
    ("global_maxpool", [n("GlobalMaxPool", ["x"], ["y"])], [], (2, 5, 5), "y"),
    ("expand", [n("ReduceMax", ["x", "axs"], ["m"], keepdims=1), n("Expand", ["m", "es"], ["y"])],
     [("axs", I64(3)), ("es", I64(1, 2, 5, 3))], (2, 5, 5), "y"),
    ("maxpool_ceil", [n("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)], [], (2, 5, 5), "y"),
    ("conv_transpose", [n("ConvTranspose", ["x", "wt", "bt"], ["y"], strides=[2, 2], pads=[1, 0, 0, 1],
                          output_padding=[1, 0])],
     [("wt", np.random.default_rng(1).normal(size=(2, 3, 3, 3)).astype(np.float32)),
      ("bt", np.float32([0.1, -0.2, 0.3]))], (2, 5, 5), "y"),
    ("conv_transpose_group_dil", [n("ConvTranspose", ["x", "wg"], ["y"], group=2, dilations=[2, 1])],
     [("wg", np.random.default_rng(2).normal(size=(2, 2, 2, 3)).astype(np.float32))], (2, 5, 5), "y"),
    ("conv_transpose_1d", [n("ConvTranspose", ["x", "w1"], ["y"], strides=[3])],
     [("w1", np.random.default_rng(3).normal(size=(2, 2, 2)).astype(np.float32))], (2, 7), "y"),
    ("maxpool_ceil_pads", [n("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                             ceil_mode=1)], [], (2, 6, 6), "y"),
]


@pytest.mark.parametrize("name,nodes,inits,shape,out", CASES, ids=[c[0] for c in CASES])
def test_float_matches_onnxruntime_and_host_is_bit_exact(tmp_path, name, nodes, inits, shape, out):
    opset = 18
    path = save(make_model(nodes, [("x", ["N", *shape])], [(out, ["N"])], inits, opset=opset), tmp_path / f"{name}.onnx")
    x = np.random.default_rng(0).uniform(-1, 1, (8,) + shape).astype(np.float32)
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(run(load_model(path), x)[0], ref, rtol=1e-5, atol=1e-6)
    c = compile_model(path, tmp_path / "out", "host", "int8", x)
    _, yq, _ = run_compiled(c.outdir, x)
    want = run(c.graph, quantize_input(x, c.graph.meta["input_exp"]))[0]
    np.testing.assert_array_equal(np.asarray(yq).reshape(want.shape), want)


MM_B = np.random.default_rng(5).uniform(-1, 1, (5, 3)).astype(np.float32)
MATMUL = [
    ("two_activations", [n("Transpose", ["x"], ["t"], perm=[0, 1, 3, 2]), n("MatMul", ["x", "t"], ["y"])], [], (2, 4, 5)),
    ("broadcast_right", [n("Relu", ["x"], ["r"]), n("Slice", ["r", "st", "en", "ax"], ["s"]), n("MatMul", ["x", "s"], ["y"])],
     [("st", I64(0)), ("en", I64(1)), ("ax", I64(1))], (2, 4, 4)),
    ("nd_constant", [n("MatMul", ["x", "w"], ["y"])], [("w", np.stack([MM_B, -MM_B]))], (2, 4, 5)),
]


@pytest.mark.parametrize("name,nodes,inits,shape", MATMUL, ids=[c[0] for c in MATMUL])
def test_matmul_of_activations_is_bit_exact_on_host(tmp_path, name, nodes, inits, shape):
    path = save(make_model(nodes, [("x", ["N", *shape])], [("y", ["N"])], inits, opset=18), tmp_path / f"{name}.onnx")
    x = np.random.default_rng(0).uniform(-1, 1, (8,) + shape).astype(np.float32)
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    g = load_model(path)
    assert "matmul" in [m.op for m in g.nodes]
    np.testing.assert_allclose(run(g, x)[0], ref, rtol=1e-5, atol=1e-5)
    c = compile_model(path, tmp_path / "out", "host", "int8", x)
    _, yq, _ = run_compiled(c.outdir, x)
    want = run(c.graph, quantize_input(x, c.graph.meta["input_exp"]))[0]
    np.testing.assert_array_equal(np.asarray(yq).reshape(want.shape), want)
