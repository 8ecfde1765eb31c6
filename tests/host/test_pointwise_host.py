"""Integer forms of the pointwise math, masks and broadcasting ops: every table is exactly the float
function rounded at compile time, and the host C matches the interpreter bit for bit on all 256 int8
inputs (extremes -128 and 127 included)."""

import math

import numpy as np
import pytest
from onnx import helper

from lbc.driver import compile_model, run_compiled
from lbc.ir.interpreter import run
from lbc.ir.quant import dequantize, quantize_input
from onnx_models import make_model, rng, save

n = helper.make_node
F = np.float32
SELU_A, SELU_G = 1.67326319217681884765625, 1.05070102519989013671875


def _pow(x, e):
    try:
        return math.pow(x, e)
    except ValueError:  # a fractional power of a negative number
        return math.nan


def _exp(x):
    return math.exp(x) if x < 700 else math.inf


# ONNX node, opset, and the function written independently of lbc (math module, scalar by scalar)
TABLES = {
    "sigmoid": (n("Sigmoid", ["x"], ["y"]), 13, lambda x: 1 / (1 + _exp(-x))),
    "tanh": (n("Tanh", ["x"], ["y"]), 13, math.tanh),
    "sqrt": (n("Sqrt", ["x"], ["y"]), 13, lambda x: math.sqrt(x) if x >= 0 else math.nan),
    "exp": (n("Exp", ["x"], ["y"]), 13, _exp),
    "reciprocal": (n("Reciprocal", ["x"], ["y"]), 13, lambda x: 1 / x if x else math.inf),
    "pow3": (n("Pow", ["x", "e3"], ["y"]), 13, lambda x: _pow(x, 3.0)),
    "pow_half": (n("Pow", ["x", "eh"], ["y"]), 13, lambda x: _pow(x, 0.5)),
    "neg": (n("Neg", ["x"], ["y"]), 13, lambda x: -x),
    "abs": (n("Abs", ["x"], ["y"]), 13, abs),
    "erf": (n("Erf", ["x"], ["y"]), 13, math.erf),
    "hard_sigmoid": (n("HardSigmoid", ["x"], ["y"]), 13, lambda x: max(0.0, min(1.0, 0.2 * x + 0.5))),
    "hard_swish": (n("HardSwish", ["x"], ["y"]), 14, lambda x: x * max(0.0, min(1.0, x / 6 + 0.5))),
    "elu": (n("Elu", ["x"], ["y"], alpha=0.7), 13, lambda x: x if x > 0 else 0.7 * (_exp(x) - 1)),
    "selu": (n("Selu", ["x"], ["y"]), 13, lambda x: SELU_G * (x if x > 0 else SELU_A * (_exp(x) - 1))),
    "softplus": (n("Softplus", ["x"], ["y"]), 13, lambda x: math.log1p(_exp(x)) if x < 30 else x),
    "gelu": (n("Gelu", ["x"], ["y"]), 20, lambda x: 0.5 * x * (1 + math.erf(x / math.sqrt(2)))),
    "gelu_tanh": (n("Gelu", ["x"], ["y"], approximate="tanh"), 20,
                  lambda x: 0.5 * x * (1 + math.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))),
    "sin": (n("Sin", ["x"], ["y"]), 13, math.sin),
    "log": (n("Log", ["x"], ["y"]), 13, lambda x: math.log(x) if x > 0 else (-math.inf if x == 0 else math.nan)),
    "round": (n("Round", ["x"], ["y"]), 13, lambda x: float(round(x))),  # Python rounds halves to even
    "softsign": (n("Softsign", ["x"], ["y"]), 13, lambda x: x / (1 + abs(x))),
    "mish": (n("Mish", ["x"], ["y"]), 18, lambda x: x * math.tanh(math.log1p(_exp(x)))),
    "shrink": (n("Shrink", ["x"], ["y"], bias=0.25, lambd=1.0), 13,
               lambda x: x + 0.25 if x < -1 else (x - 0.25 if x > 1 else 0.0)),
}
EXPONENTS = [("e3", np.array(3.0, F)), ("eh", np.array(0.5, F))]


def _compile(tmp_path, nodes, ishape, oshape, inits=(), opset=13, calib_scale=4.0):
    model = make_model(nodes, [("x", ["N", *ishape])], [("y", ["N", *oshape])], inits, opset=opset)
    calib = (rng(1).uniform(-1, 1, (64, *ishape)) * calib_scale).astype(F)
    return compile_model(save(model, tmp_path / "m.onnx"), tmp_path / "out", "host", "int8", calib)


def _host_equals_interpreter(c, x):
    _, yq, _ = run_compiled(c.outdir, x)
    ref = run(c.graph, quantize_input(x, c.graph.meta["input_exp"]))[0]
    np.testing.assert_array_equal(yq, ref)
    return ref


def _every_int8(c, extra_shape=()):
    """Float inputs that quantise to every int8 value -128..127 (plus random samples beyond the range)."""
    ex = c.graph.meta["input_exp"]
    allq = (np.arange(-128, 128, dtype=np.float64) * 2.0**-ex).astype(F).reshape(1, 256, *extra_shape)
    wild = (rng(2).standard_normal((20, 256, *extra_shape)) * 2.0**(8 - ex)).astype(F)
    return np.concatenate([allq, wild])


@pytest.mark.parametrize("name", sorted(TABLES))
def test_table_is_exact_and_host_matches(tmp_path, name):
    node, opset, f = TABLES[name]
    c = _compile(tmp_path, [node], [256], [256], [e for e in EXPONENTS if e[0] in node.input], opset)
    (t,) = c.graph.nodes
    assert t.op == "table" and len(t.attrs["table"]) == 256
    ex, ey = c.graph.meta["input_exp"], c.graph.types[c.graph.outputs[0]].exp
    expected = []
    for q in range(-128, 128):
        v = f(q * 2.0**-ex)
        expected.append(0 if math.isnan(v) else math.floor(max(-128.0, min(127.0, v * 2.0**ey + 0.5))))
    assert list(t.attrs["table"]) == expected
    x = _every_int8(c)
    ref = _host_equals_interpreter(c, x)
    np.testing.assert_array_equal(ref[0], np.array(expected, np.int8))
    assert quantize_input(x[:1], ex).min() == -128 and quantize_input(x[:1], ex).max() == 127


X4 = [3, 4, 5]
C311 = rng(3).standard_normal((3, 1, 1)).astype(F)
SLOPE = np.array([0.25, -0.75, 1.5], F).reshape(3, 1, 1)
INTEGER_CASES = {
    "max3": ([n("Relu", ["x"], ["r"]), n("GlobalAveragePool", ["x"], ["g"]), n("Mul", ["x", "k"], ["xs"]),
              n("Max", ["xs", "g", "c"], ["y"])], [("c", C311), ("k", np.array(0.1, F))]),
    "min3": ([n("Neg", ["x"], ["r"]), n("GlobalAveragePool", ["x"], ["g"]), n("Min", ["r", "c", "g"], ["y"])],
             [("c", C311)]),
    "sum3": ([n("Relu", ["x"], ["r"]), n("GlobalAveragePool", ["x"], ["g"]), n("Sum", ["r", "g", "x"], ["y"])], []),
    "squeeze_excite": ([n("GlobalAveragePool", ["x"], ["g"]), n("HardSigmoid", ["g"], ["s"]),
                        n("Mul", ["x", "s"], ["y"])], []),
    "squeeze_excite_swapped": ([n("GlobalAveragePool", ["x"], ["g"]), n("Sigmoid", ["g"], ["s"]),
                                n("Mul", ["s", "x"], ["m"]), n("Add", ["g", "m"], ["y"])], []),
    "prelu": ([n("PRelu", ["x", "s"], ["y"])], [("s", SLOPE)]),
    "where_masks": ([n("GlobalAveragePool", ["x"], ["g"]), n("Greater", ["x", "g"], ["a"]),
                     n("Less", ["x", "t"], ["b"]), n("Equal", ["x", "z"], ["e"]), n("Not", ["e"], ["ne"]),
                     n("And", ["a", "ne"], ["ab"]), n("Or", ["ab", "b"], ["m"]), n("Exp", ["x"], ["ex"]),
                     n("Where", ["m", "ex", "g"], ["y"])],
                    [("t", np.array(-0.7, F)), ("z", np.array(0.0, F))]),
    "where_ge_le": ([n("GlobalAveragePool", ["x"], ["g"]), n("GreaterOrEqual", ["x", "g"], ["a"]),
                     n("LessOrEqual", ["x", "z"], ["b"]), n("Or", ["a", "b"], ["m"]), n("Where", ["m", "g", "x"], ["y"])],
                    [("z", np.array(0.0, F))]),
    "where_const_branch": ([n("Less", ["x", "z"], ["m"]), n("Where", ["m", "big", "x"], ["y"])],
                           [("z", np.array(0.0, F)), ("big", np.array(-9.0, F))]),
}


@pytest.mark.parametrize("name", sorted(INTEGER_CASES))
def test_integer_form_host_matches_interpreter(tmp_path, name):
    nodes, inits = INTEGER_CASES[name]
    c = _compile(tmp_path, nodes, X4, X4, inits, calib_scale=2.0)
    ex = c.graph.meta["input_exp"]
    x = (rng(4).standard_normal((40, *X4)) * 2.0**(6 - ex)).astype(F)
    x[0] = 2.0**(8 - ex)  # quantises to 127 everywhere
    x[1] = -(2.0**(8 - ex))  # -128 everywhere
    x[2] = 0.0
    ref = _host_equals_interpreter(c, x)
    assert len(np.unique(ref)) > 3


def test_where_compare_semantics_on_integers(tmp_path):
    """Equal/Less on int8 activations compare the quantised values exactly: x == 0 exactly where q == 0."""
    nodes = [n("Equal", ["x", "z"], ["m"]), n("Where", ["m", "one", "x"], ["y"])]
    c = _compile(tmp_path, nodes, [256], [256], [("z", np.array(0.0, F)), ("one", np.array(1.0, F))])
    x = _every_int8(c)
    ref = _host_equals_interpreter(c, x)
    ex, ey = c.graph.meta["input_exp"], c.graph.types[c.graph.outputs[0]].exp
    q = np.arange(-128, 128)
    want = np.where(q == 0, 2**ey, np.clip(np.floor(q * 2.0**(ey - ex) + 0.5), -128, 127))
    np.testing.assert_array_equal(ref[0], np.clip(want, -128, 127))


def test_prelu_negative_slope_integer_form(tmp_path):
    """A negative slope is a negative multiplier: q < 0 maps to round(slope * q), q >= 0 stays."""
    c = _compile(tmp_path, [n("PRelu", ["x", "s"], ["y"])], [256], [256], [("s", np.array([-0.5], F))])
    (p,) = c.graph.nodes
    assert p.op == "prelu" and p.attrs["m"][0] < 0
    ref = _host_equals_interpreter(c, _every_int8(c))
    q = np.arange(-128, 128)
    np.testing.assert_array_equal(ref[0], np.where(q >= 0, q, np.floor(-0.5 * q + 0.5)))


def test_mask_output_runs_unscaled(tmp_path):
    c = _compile(tmp_path, [n("Greater", ["x", "z"], ["y"])], [256], [256], [("z", np.array(0.5, F))])
    x = _every_int8(c)
    y, yq, _ = run_compiled(c.outdir, x)
    np.testing.assert_array_equal(yq, run(c.graph, quantize_input(x, c.graph.meta["input_exp"]))[0])
    xq = quantize_input(x, c.graph.meta["input_exp"])
    np.testing.assert_array_equal(y, dequantize(xq, c.graph.meta["input_exp"]) > 0.5)  # 0.5 is on the grid


def test_calibration_ignores_infinities(tmp_path):
    """1/0 in the calibration data does not decide the output scale: it is set by the finite values."""
    model = make_model([n("Reciprocal", ["x"], ["y"])], [("x", ["N", 4])], [("y", ["N", 4])])
    calib = np.array([[0.0, 0.5, -0.25, 1.0]] * 4, F)  # finite reciprocals reach |4|
    c = compile_model(save(model, tmp_path / "m.onnx"), tmp_path / "out", "host", "int8", calib)
    assert c.graph.types[c.graph.outputs[0]].exp == 4  # floor(log2(127 / 4)); with inf it would be 7
