"""The ONNX frontend's attention-mask tracer (Cast of an integer input to bool, data movement, And with
constants, Where between constants) on small hand-built graphs, against onnxruntime."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from lbc.errors import UnsupportedOpError
from lbc.frontends.onnx import load_onnx
from lbc.ir.interpreter import run

S = 6
NEG = np.finfo(np.float32).min


def _model(path, nodes, inits, out_shape, in_shape=(1, S)):
    g = helper.make_graph(nodes, "mask", [helper.make_tensor_value_info("m", TensorProto.INT64, list(in_shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)
    return path


def _causal_padding_mask(path):
    """HF-style: keep[i, j] = mask[j] & (j <= i), expanded to [1, 1, S, S], then Where(keep, 0, finfo.min)."""
    tri = np.tril(np.ones((S, S), np.bool_)).reshape(1, 1, S, S)
    nodes = [helper.make_node("Cast", ["m"], ["b"], to=TensorProto.BOOL),
             helper.make_node("Unsqueeze", ["b", "ax"], ["u"]),
             helper.make_node("And", ["tri", "u"], ["k"]),
             helper.make_node("Expand", ["k", "shape"], ["e"]),
             helper.make_node("Where", ["e", "zero", "neg"], ["y"])]
    inits = {"ax": np.array([1, 2], np.int64), "tri": tri, "shape": np.array([1, 1, S, S], np.int64),
             "zero": np.array(0, np.float32), "neg": np.array(NEG, np.float32)}
    return _model(path, nodes, inits, (1, 1, S, S))


def test_mask_chain_matches_onnxruntime(tmp_path):
    p = _causal_padding_mask(tmp_path / "m.onnx")
    g = load_onnx(p)
    assert [n.op for n in g.nodes] == ["ne_zero", "gather", "where"]
    sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for m in [np.ones((1, S), np.int64), np.zeros((1, S), np.int64), rng.integers(-2, 3, (1, S)),
              np.array([[1, 1, 1, 0, 0, 0]])]:
        ref = sess.run(None, {"m": m.astype(np.int64)})[0]
        np.testing.assert_array_equal(run(g, {"m": m})[0], ref)  # exact, finfo.min included


def test_mask_output_and_mask_arithmetic_are_refused(tmp_path):
    p = _model(tmp_path / "out.onnx", [helper.make_node("Cast", ["m"], ["b"], to=TensorProto.BOOL),
                                        helper.make_node("Cast", ["b"], ["y"], to=TensorProto.FLOAT)], {}, (1, S))
    # Cast of the mask to float: not an ONNX pattern the tracer takes (only Where between constants)
    with pytest.raises(UnsupportedOpError, match="attention-mask tensor used in a way"):
        load_onnx(p)
    nodes = [helper.make_node("Cast", ["m"], ["b"], to=TensorProto.BOOL),
             helper.make_node("Where", ["b", "zero", "neg"], ["y"])]
    inits = {"zero": np.array(0, np.float32), "neg": np.array(NEG, np.float32)}
    p3 = _model(tmp_path / "r3.onnx", nodes, inits, (1, 2, 3), in_shape=(1, 2, 3))
    with pytest.raises(UnsupportedOpError, match=r"not made from an integer \[1, S\] input"):
        load_onnx(p3)


def test_bool_cast_as_a_graph_output_is_refused(tmp_path):
    g = helper.make_graph([helper.make_node("Cast", ["m"], ["y"], to=TensorProto.BOOL)], "mask",
                          [helper.make_tensor_value_info("m", TensorProto.INT64, [1, S])],
                          [helper.make_tensor_value_info("y", TensorProto.BOOL, [1, S])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "b.onnx")
    with pytest.raises(UnsupportedOpError, match="is a bool cast of an integer tensor"):
        load_onnx(tmp_path / "b.onnx")
