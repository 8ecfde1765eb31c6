"""(a) Every supported ONNX op, imported into float IR and run by the interpreter, against onnxruntime."""

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper

from lbc.frontends.onnx import load_onnx
from lbc.ir.interpreter import run
from lbc.ir.verify import verify
from onnx_models import make_model, rng, save, small_cnn

n = helper.make_node
R = rng(1)
W = (R.standard_normal((6, 5))).astype(np.float32)
B = (R.standard_normal(5)).astype(np.float32)
K = (R.standard_normal((3, 2, 3, 3))).astype(np.float32)
C4 = (R.standard_normal((1, 2, 1, 1))).astype(np.float32)

# (name, nodes, input shape, output shape, initialisers)
CASES = [
    ("gemm", [n("Gemm", ["x", "w", "b"], ["y"], alpha=0.5, beta=2.0)], [2, 6], [2, 5], [("w", W), ("b", B)]),
    ("gemm_transB", [n("Gemm", ["x", "w"], ["y"], transB=1)], [2, 5], [2, 6], [("w", W)]),
    ("matmul", [n("MatMul", ["x", "w"], ["y"])], [2, 6], [2, 5], [("w", W)]),
    ("add_const", [n("Add", ["x", "b"], ["y"])], [2, 5], [2, 5], [("b", B)]),
    ("add_two", [n("Relu", ["x"], ["r"]), n("Add", ["x", "r"], ["y"])], [2, 5], [2, 5], []),
    ("sub_const", [n("Sub", ["x", "b"], ["y"])], [2, 5], [2, 5], [("b", B)]),
    ("sub_two", [n("Relu", ["x"], ["r"]), n("Sub", ["x", "r"], ["y"])], [2, 5], [2, 5], []),
    ("mul_const", [n("Mul", ["b", "x"], ["y"])], [2, 5], [2, 5], [("b", B)]),
    ("div_const", [n("Div", ["x", "b"], ["y"])], [2, 5], [2, 5], [("b", B + 3)]),
    ("relu", [n("Relu", ["x"], ["y"])], [2, 5], [2, 5], []),
    ("leaky", [n("LeakyRelu", ["x"], ["y"], alpha=0.2)], [2, 5], [2, 5], []),
    ("clip", [n("Clip", ["x", "lo", "hi"], ["y"])], [2, 5], [2, 5],
     [("lo", np.array(-0.5, np.float32)), ("hi", np.array(0.7, np.float32))]),
    ("sigmoid", [n("Sigmoid", ["x"], ["y"])], [2, 5], [2, 5], []),
    ("tanh", [n("Tanh", ["x"], ["y"])], [2, 5], [2, 5], []),
    ("flatten", [n("Flatten", ["x"], ["y"])], [2, 2, 3, 4], [2, 24], []),
    ("reshape", [n("Reshape", ["x", "s"], ["y"])], [2, 2, 3, 4], [2, 6, 4], [("s", np.array([0, 6, -1], np.int64))]),
    ("transpose", [n("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1])], [2, 2, 3, 4], [2, 3, 4, 2], []),
    ("transpose_const", [n("Transpose", ["w"], ["wt"]), n("MatMul", ["x", "wt"], ["y"])], [2, 5], [2, 6], [("w", W)]),
    ("identity_dropout", [n("Identity", ["x"], ["i"]), n("Dropout", ["i"], ["d"]), n("Relu", ["d"], ["y"])],
     [2, 5], [2, 5], []),
    ("softmax", [n("Softmax", ["x"], ["y"], axis=-1)], [2, 5], [2, 5], []),
    ("argmax", [n("ArgMax", ["x"], ["idx"], axis=1, keepdims=0)], [2, 5], [2], []),
    ("conv", [n("Conv", ["x", "k"], ["y"], pads=[1, 0, 1, 2], strides=[2, 1])], [2, 2, 7, 6], [2, 3, 4, 8],
     [("k", K)]),
    ("conv_group_dil", [n("Conv", ["x", "k"], ["y"], group=2, dilations=[2, 1], pads=[2, 1, 2, 1])],
     [1, 4, 6, 6], [1, 2, 6, 6], [("k", K[:2, :2].copy())]),
    ("conv_same", [n("Conv", ["x", "k", "cb"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2])],
     [1, 2, 7, 7], [1, 3, 4, 4], [("k", K), ("cb", B[:3].copy())]),
    ("maxpool", [n("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])],
     [2, 2, 7, 7], [2, 2, 4, 4], []),
    ("avgpool_incl", [n("AveragePool", ["x"], ["y"], kernel_shape=[2, 3], pads=[1, 1, 0, 1], count_include_pad=1)],
     [1, 2, 5, 5], [1, 2, 5, 5], []),
    ("avgpool_excl", [n("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])],
     [1, 2, 6, 6], [1, 2, 3, 3], []),
    ("gap", [n("GlobalAveragePool", ["x"], ["y"])], [2, 3, 4, 5], [2, 3, 1, 1], []),
    ("batchnorm", [n("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3)], [2, 3, 4, 4],
     [2, 3, 4, 4], [("s", B[:3].copy()), ("b", B[1:4].copy()), ("m", B[2:5].copy()), ("v", np.abs(B[:3]) + 0.5)]),
    ("pad", [n("Pad", ["x", "p", "v"], ["y"])], [1, 2, 3, 3], [1, 2, 5, 4],
     [("p", np.array([0, 0, 1, 0, 0, 0, 1, 1], np.int64)), ("v", np.array(0.25, np.float32))]),
    ("concat", [n("Relu", ["x"], ["r"]), n("Concat", ["x", "r", "c"], ["y"], axis=1)], [1, 2, 3, 3], [1, 6, 3, 3],
     [("c", R.standard_normal((1, 2, 3, 3)).astype(np.float32))]),
    ("mul_channel", [n("Mul", ["x", "c"], ["y"])], [2, 2, 3, 3], [2, 2, 3, 3], [("c", C4)]),
    ("qdq", [n("QuantizeLinear", ["x", "sc", "zp"], ["q"]), n("DequantizeLinear", ["q", "sc", "zp"], ["dq"]),
             n("Relu", ["dq"], ["y"])], [2, 5], [2, 5],
     [("sc", np.array(0.0625, np.float32)), ("zp", np.array(0, np.int8))]),
]


@pytest.mark.parametrize("name,nodes,ishape,oshape,inits", CASES, ids=[c[0] for c in CASES])
def test_op_matches_onnxruntime(tmp_path, name, nodes, ishape, oshape, inits):
    out = "idx" if name == "argmax" else "y"
    model = make_model(nodes, [("x", ishape)], [(out, oshape)], inits)
    path = save(model, tmp_path / f"{name}.onnx")
    g = verify(load_onnx(path, ishape))
    x = rng(7).standard_normal(ishape).astype(np.float32)
    ours = run(g, x)[0]
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    if name == "qdq":  # a Q/DQ pair is an exact fake-quantise op, and its scale a hint for the quantiser
        assert g.meta["exp_hints"] == {"x": 4}
    assert ours.shape == ref.shape
    if ref.dtype.kind == "i":
        np.testing.assert_array_equal(ours, ref)
    else:
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


def test_cnn_with_every_op_matches_onnxruntime(tmp_path):
    path = save(small_cnn(), tmp_path / "cnn.onnx")
    g = verify(load_onnx(path))
    x = rng(3).random((4, 1, 8, 8)).astype(np.float32)
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(run(g, x)[0], ref, rtol=1e-4, atol=1e-5)
