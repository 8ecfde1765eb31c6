"""ONNX models with several inputs and outputs, built on the fly for the multi-input tests."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnx_models import rng

n = helper.make_node


def typed_model(nodes, inputs, outputs, inits=(), opset=13, name="multi"):
    """inputs/outputs: [(name, shape, onnx element type)]."""
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info(a, t, s) for a, s, t in inputs],
                          [helper.make_tensor_value_info(a, t, s) for a, s, t in outputs],
                          [numpy_helper.from_array(np.asarray(v), k) for k, v in inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="lbc-tests")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def two_in_three_out(seed=0):
    """a [N,6] and b [N,6] floats, ids [N,4] int64 token ids:
    y = relu(Gemm(a) + Gemm(b)) [N,5]; z = argmax(y) [N]; ids_out = reshape(ids) [N,2,2] (integers, untouched)."""
    r = rng(seed)
    f = np.float32
    inits = [("wa", (r.standard_normal((6, 5)) / 2).astype(f)), ("ba", (r.standard_normal(5) * 0.1).astype(f)),
             ("wb", (r.standard_normal((6, 5)) / 2).astype(f)), ("s", np.array([0, 2, 2], np.int64))]
    nodes = [n("Gemm", ["a", "wa", "ba"], ["ga"], name="fc_a"), n("MatMul", ["b", "wb"], ["gb"], name="fc_b"),
             n("Add", ["ga", "gb"], ["sum"], name="add"), n("Relu", ["sum"], ["y"], name="relu"),
             n("ArgMax", ["y"], ["z"], axis=1, keepdims=0, name="argmax"),
             n("Reshape", ["ids", "s"], ["ids_out"], name="ids_reshape")]
    F, I = TensorProto.FLOAT, TensorProto.INT64
    return typed_model(nodes, [("a", ["N", 6], F), ("b", ["N", 6], F), ("ids", ["N", 4], I)],
                       [("y", ["N", 5], F), ("z", ["N"], I), ("ids_out", ["N", 2, 2], I)], inits)
