"""Pointwise math, masks and normalisations: ONNX models imported into float IR and run by the
interpreter, against onnxruntime (ONNX spec defaults included)."""

import math

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from lbc.errors import LbcError, UnsupportedOpError
from lbc.frontends.onnx import load_onnx
from lbc.ir.interpreter import run
from lbc.ir.ops import OPS, TABLE_OPS, integer_op
from lbc.ir.verify import verify
from lbc.passes import PassContext, run_pipeline
from onnx_models import make_model, rng, save

n = helper.make_node
R = rng(11)
F = np.float32
SLOPE = R.uniform(-0.5, 1.5, (3, 1, 1)).astype(F)
SCALE3, BIAS3 = R.standard_normal(3).astype(F), R.standard_normal(3).astype(F)
C311 = R.standard_normal((3, 1, 1)).astype(F)

# (name, nodes, input shape, output shape, initialisers, opset)
X4 = [2, 3, 4, 5]
CASES = [
    ("sqrt", [n("Abs", ["x"], ["a"]), n("Sqrt", ["a"], ["y"])], [2, 7], [2, 7], [], 13),
    ("sqrt_negative_is_nan", [n("Sqrt", ["x"], ["y"])], [2, 7], [2, 7], [], 13),
    ("exp", [n("Exp", ["x"], ["y"])], [2, 7], [2, 7], [], 13),
    ("reciprocal", [n("Reciprocal", ["x"], ["y"])], [2, 7], [2, 7], [], 13),
    ("neg", [n("Neg", ["x"], ["y"])], [2, 7], [2, 7], [], 13),
    ("abs", [n("Abs", ["x"], ["y"])], [2, 7], [2, 7], [], 13),
    ("erf", [n("Erf", ["x"], ["y"])], [2, 7], [2, 7], [], 13),
    ("pow_scalar", [n("Pow", ["x", "e"], ["y"])], [2, 7], [2, 7], [("e", np.array(3.0, F))], 13),
    ("pow_half_nan", [n("Pow", ["x", "e"], ["y"])], [2, 7], [2, 7], [("e", np.array([0.5], F))], 13),
    ("pow_int_exponent", [n("Pow", ["x", "e"], ["y"])], [2, 7], [2, 7], [("e", np.array(2, np.int64))], 15),
    ("pow_uniform_row", [n("Pow", ["x", "e"], ["y"])], [2, 7], [2, 7], [("e", np.full((1, 7), 2.0, F))], 13),
    ("hard_sigmoid_defaults", [n("HardSigmoid", ["x"], ["y"])], [2, 7], [2, 7], [], 13),
    ("hard_sigmoid_attrs", [n("HardSigmoid", ["x"], ["y"], alpha=0.5, beta=0.25)], [2, 7], [2, 7], [], 13),
    ("hard_swish", [n("HardSwish", ["x"], ["y"])], [2, 7], [2, 7], [], 14),
    ("elu_default", [n("Elu", ["x"], ["y"])], [2, 7], [2, 7], [], 13),
    ("elu_alpha", [n("Elu", ["x"], ["y"], alpha=0.3)], [2, 7], [2, 7], [], 13),
    ("selu_defaults", [n("Selu", ["x"], ["y"])], [2, 7], [2, 7], [], 13),
    ("selu_attrs", [n("Selu", ["x"], ["y"], alpha=1.5, gamma=2.0)], [2, 7], [2, 7], [], 13),
    ("softplus", [n("Softplus", ["x"], ["y"])], [2, 7], [2, 7], [], 13),
    ("gelu_exact", [n("Gelu", ["x"], ["y"])], [2, 7], [2, 7], [], 20),
    ("gelu_tanh", [n("Gelu", ["x"], ["y"], approximate="tanh")], [2, 7], [2, 7], [], 20),
    ("gelu_erf_decomposed", [n("Div", ["x", "sq2"], ["d"]), n("Erf", ["d"], ["e"]), n("Add", ["e", "one"], ["p"]),
                             n("Mul", ["x", "p"], ["m"]), n("Mul", ["m", "half"], ["y"])], [2, 7], [2, 7],
     [("sq2", np.array(np.sqrt(2), F)), ("one", np.array(1, F)), ("half", np.array(0.5, F))], 13),
    ("prelu_channel", [n("PRelu", ["x", "s"], ["y"])], X4, X4, [("s", SLOPE)], 13),
    ("prelu_uniform", [n("PRelu", ["x", "s"], ["y"])], X4, X4, [("s", np.full((3, 1, 1), 0.2, F))], 13),
    ("prelu_negative_slope", [n("PRelu", ["x", "s"], ["y"])], [2, 5], [2, 5], [("s", np.array([-0.5], F))], 13),
    ("max3_broadcast", [n("Relu", ["x"], ["r"]), n("GlobalAveragePool", ["x"], ["g"]),
                        n("Max", ["x", "g", "c"], ["y"])], X4, X4, [("c", C311)], 13),
    ("min3_broadcast", [n("Neg", ["x"], ["r"]), n("GlobalAveragePool", ["x"], ["g"]),
                        n("Min", ["r", "c", "g"], ["y"])], X4, X4, [("c", C311)], 13),
    ("sum3_broadcast", [n("Relu", ["x"], ["r"]), n("GlobalAveragePool", ["x"], ["g"]),
                        n("Sum", ["r", "g", "x"], ["y"])], X4, X4, [], 13),
    ("sum1", [n("Sum", ["x"], ["s"]), n("Relu", ["s"], ["y"])], [2, 7], [2, 7], [], 13),
    ("max_const_first", [n("Max", ["c", "x"], ["y"])], X4, X4, [("c", C311)], 13),
    ("squeeze_excite", [n("GlobalAveragePool", ["x"], ["g"]), n("Sigmoid", ["g"], ["s"]),
                        n("Mul", ["x", "s"], ["y"])], X4, X4, [], 13),
    ("squeeze_excite_swapped", [n("GlobalAveragePool", ["x"], ["g"]), n("HardSigmoid", ["g"], ["s"]),
                                n("Mul", ["s", "x"], ["m"]), n("Add", ["g", "m"], ["y"])], X4, X4, [], 13),
    ("where_equal", [n("Relu", ["x"], ["r"]), n("Equal", ["r", "zero"], ["m"]), n("Where", ["m", "x", "r"], ["y"])],
     [2, 7], [2, 7], [("zero", np.array(0, F))], 13),
    ("where_less_const", [n("Less", ["x", "t"], ["m"]), n("Where", ["m", "big", "x"], ["y"])], [2, 7], [2, 7],
     [("t", np.array(0.3, F)), ("big", np.array(-2.5, F))], 13),
    ("where_not_greater", [n("GlobalAveragePool", ["x"], ["g"]), n("Greater", ["x", "g"], ["m"]),
                           n("Not", ["m"], ["nm"]), n("Where", ["nm", "x", "g"], ["y"])], X4, X4, [], 13),
    ("where_and_or", [n("Greater", ["x", "lo"], ["a"]), n("Less", ["x", "hi"], ["b"]), n("And", ["a", "b"], ["ab"]),
                      n("Less", ["x", "lo2"], ["c"]), n("Or", ["ab", "c"], ["m"]), n("Where", ["m", "x", "z"], ["y"])],
     [2, 7], [2, 7], [("lo", np.array(-0.5, F)), ("hi", np.array(0.5, F)), ("lo2", np.array(-1.5, F)),
                      ("z", np.zeros((1, 7), F))], 13),
    ("where_const_mask", [n("Where", ["m", "x", "z"], ["y"])], [2, 7], [2, 7],
     [("m", np.array([True, False, True, True, False, False, True])), ("z", np.array(0.25, F))], 13),
    *[(op.lower(), [n(op, ["x"], ["y"])], [2, 7], [2, 7], [], 18) for op in
      ("Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Log", "Sign", "Floor",
       "Ceil", "Round", "Softsign", "Mish", "Celu", "ThresholdedRelu", "Shrink")],
    ("celu_alpha", [n("Celu", ["x"], ["y"], alpha=0.4)], [2, 7], [2, 7], [], 13),
    ("thresholded_relu_alpha", [n("ThresholdedRelu", ["x"], ["y"], alpha=0.3)], [2, 7], [2, 7], [], 13),
    ("shrink_attrs", [n("Shrink", ["x"], ["y"], bias=0.2, lambd=1.1)], [2, 7], [2, 7], [], 13),
    ("cast_mask_to_float", [n("Greater", ["x", "z"], ["m"]), n("Cast", ["m"], ["mf"], to=TensorProto.FLOAT),
                            n("Mul", ["x", "mf"], ["y"])], [2, 7], [2, 7], [("z", np.array(0.2, F))], 13),
    ("where_ge_le", [n("GreaterOrEqual", ["x", "z"], ["a"]), n("LessOrEqual", ["x", "h"], ["b"]),
                     n("And", ["a", "b"], ["m"]), n("Where", ["m", "x", "h"], ["y"])], [2, 7], [2, 7],
     [("z", np.array(0.0, F)), ("h", np.array(0.5, F))], 16),
    ("lrn", [n("LRN", ["x"], ["y"], size=3, alpha=0.2, beta=0.6, bias=1.5)], [2, 5, 3, 3], [2, 5, 3, 3], [], 13),
    ("lrn_defaults_even", [n("LRN", ["x"], ["y"], size=4)], [1, 6, 2, 3], [1, 6, 2, 3], [], 13),
    ("instance_norm", [n("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=1e-3)], X4, X4,
     [("s", SCALE3), ("b", BIAS3)], 13),
    ("instance_norm_1d", [n("InstanceNormalization", ["x", "s", "b"], ["y"])], [2, 3, 6], [2, 3, 6],
     [("s", SCALE3), ("b", BIAS3)], 13),
]


def _lrn_spec(x, size, alpha, beta, bias):
    """LRN element by element as the ONNX operator spec words it."""
    x = x.astype(np.float64)
    y = np.empty_like(x)
    for idx in np.ndindex(*x.shape):
        nn, c = idx[:2]
        lo, hi = max(0, c - math.floor((size - 1) / 2)), min(x.shape[1] - 1, c + math.ceil((size - 1) / 2))
        sq = sum(x[(nn, i) + idx[2:]] ** 2 for i in range(lo, hi + 1))
        y[idx] = x[idx] / (bias + alpha / size * sq) ** beta
    return y.astype(F)


@pytest.mark.parametrize("name,nodes,ishape,oshape,inits,opset", CASES, ids=[c[0] for c in CASES])
def test_op_matches_onnxruntime(tmp_path, name, nodes, ishape, oshape, inits, opset):
    model = make_model(nodes, [("x", ishape)], [("y", oshape)], inits, opset=opset)
    path = save(model, tmp_path / f"{name}.onnx")
    g = verify(load_onnx(path, ishape))
    x = (rng(5).standard_normal(ishape) * 2).astype(F)
    x.reshape(-1)[:6] = [0.0, -3.0, 3.0, 0.5, 2.5, -1.5]  # zero (1/x: inf), large magnitudes, halves (Round)
    ours = run(g, x)[0]
    if name.endswith("even"):  # onnxruntime implements odd sizes only (and onnx.reference's LRN loops over N)
        ref = _lrn_spec(x, size=4, alpha=1e-4, beta=0.75, bias=1.0)
    else:
        ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=2e-6, atol=2e-6, equal_nan=True)
    if name.endswith("nan"):
        assert np.isnan(ref).any()


def _bad(tmp_path, nodes, inits, opset=13, shape=(2, 7)):
    model = make_model(nodes, [("x", list(shape))], [("y", list(shape))], inits, opset=opset)
    return load_onnx(save(model, tmp_path / "bad.onnx"), shape)


def test_pow_computed_exponent_is_refused(tmp_path):
    with pytest.raises(UnsupportedOpError, match=r"Pow with a computed exponent \(node: p\)"):
        _bad(tmp_path, [n("Relu", ["x"], ["r"]), n("Pow", ["x", "r"], ["y"], name="p")], [])


def test_pow_per_element_exponent_is_refused(tmp_path):
    with pytest.raises(UnsupportedOpError, match="Pow with an exponent that varies per element"):
        _bad(tmp_path, [n("Pow", ["x", "e"], ["y"], name="p")], [("e", np.arange(7, dtype=F))])


def test_comparing_masks_is_refused(tmp_path):
    nodes = [n("Less", ["x", "z"], ["m"]), n("Equal", ["m", "m"], ["e"], name="eq"), n("Where", ["e", "x", "z"], ["y"])]
    with pytest.raises(UnsupportedOpError, match=r"Equal on bool or integer tensors .*\(node: eq\)"):
        _bad(tmp_path, nodes, [("z", np.array(0, F))])


def test_bool_graph_input_is_a_mask(tmp_path):
    """A bool graph input is a mask like the ones comparisons make (never quantised)."""
    g = helper.make_graph([n("Greater", ["x", "z"], ["p"]), n("And", ["c", "p"], ["m"]), n("Neg", ["x"], ["nx"]),
                           n("Where", ["m", "x", "nx"], ["y"])], "t",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 7]),
                           helper.make_tensor_value_info("c", TensorProto.BOOL, [2, 7])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 7])],
                          [helper.make_tensor("z", TensorProto.FLOAT, [], [0.1])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    path = save(m, tmp_path / "w.onnx")
    graph = verify(load_onnx(path))
    assert graph.types["c"].dtype.name == "bool"
    feeds = {"x": rng(1).standard_normal((2, 7)).astype(F), "c": rng(2).random((2, 7)) > 0.5}
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    np.testing.assert_array_equal(run(graph, feeds)[0], ref)


def test_constant_pointwise_chains_fold_and_keep_integer_types(tmp_path):
    """Neg/Abs/Pow on constant shape arithmetic fold at import with the operand's integer type."""
    nodes = [n("Neg", ["s"], ["ns"]), n("Abs", ["ns"], ["as"]), n("Pow", ["as", "one"], ["ps"]),
             n("Reshape", ["x", "ps"], ["y"])]
    g = _bad(tmp_path, nodes, [("s", np.array([-2, -7], np.int64)), ("one", np.array(1, np.int64))])
    assert [nd.op for nd in g.nodes] == ["reshape"] and g.types["y"].shape == (2, 7)


def test_table_ops_are_exposed():
    expected = {"sigmoid", "tanh", "sqrt", "exp", "reciprocal", "pow", "neg", "abs", "erf", "hard_sigmoid",
                "hard_swish", "elu", "selu", "softplus", "gelu", "sin", "cos", "tan", "asin", "acos", "atan", "sinh",
                "cosh", "asinh", "acosh", "atanh", "log", "sign", "floor", "ceil", "round", "softsign", "mish", "celu",
                "thresholded_relu", "shrink"}
    assert TABLE_OPS == expected
    assert all(OPS[o].int_fn is None for o in TABLE_OPS)
    assert integer_op("gelu") == "table" and integer_op("add") == "add"


def test_lrn_and_instance_norm_are_refused_for_quantisation(tmp_path):
    nodes = [n("LRN", ["x"], ["l"], size=3, name="lrn1"), n("InstanceNormalization", ["l", "s", "b"], ["y"], name="in1")]
    g = _bad(tmp_path, nodes, [("s", SCALE3), ("b", BIAS3)], shape=(1, 3, 4, 4))
    ctx = PassContext(calibration=rng(0).standard_normal((8, 3, 4, 4)).astype(F))
    with pytest.raises(LbcError) as e:
        run_pipeline(g, ["fold-constants", "quantize-int8"], ctx)
    msg = str(e.value)
    assert "instance_norm (in1)" in msg and "lrn (lrn1)" in msg and "float interpreter" in msg
    assert "\n" not in msg
