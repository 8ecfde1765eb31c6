"""Pointwise nonlinear functions of one tensor, and `table`, the one integer form they all share.

Each op here states its real function once (`real(node, x)` on float64 arrays); the float form is
that function rounded to float32, and the integer form is not the op itself: the quantize pass
replaces every such node by a `table` node whose 256 entries are that function evaluated at every
int8 input (see `build_table`). A target that emits `table` therefore emits every op in
`lbc.ir.ops.TABLE_OPS`, today and in the future, with one lookup kernel.

Table semantics (exact, identical on every target): for input exponent ex and output exponent ey,
    table[q + 128] = clamp(floor(f(q * 2**-ex) * 2**ey + 1/2), -128, 127)   for q in -128..127
with f evaluated in float64. Where f is +inf or -inf the entry saturates (127 / -128); where f is
undefined (nan: sqrt or a fractional power of a negative number) the entry is 0.

prelu (a slope per channel, not one function) is here too; its integer form requantises the
negative side per channel.
"""

import math

import numpy as np

from lbc.ir.ops.base import as_f32, same_infer, op
from lbc.ir.quant import requant

_ERF = np.vectorize(math.erf, otypes=[np.float64])
SELU_ALPHA = 1.67326319217681884765625  # the ONNX defaults (float32 values of the SELU paper's constants)
SELU_GAMMA = 1.05070102519989013671875


def build_table(real, node, ex, ey):
    """The 256 int8 entries of `real` (a pointwise op's real function) from input exp ex to output exp ey."""
    x = np.arange(-128, 128, dtype=np.float64) * 2.0**-ex
    with np.errstate(all="ignore"):
        y = np.asarray(real(node, x), dtype=np.float64) * 2.0**ey
    y = np.where(np.isnan(y), 0.0, y)
    return tuple(int(v) for v in np.clip(np.floor(y + 0.5), -128, 127))


@op("table", (1, 1), {"table": (), "fn": ""}, int_attrs=("table", "fn"),
    doc="integer only: y = table[x + 128], 256 int8 entries; the integer form of every op in TABLE_OPS "
        "(`fn` names the op it was made from)")
class Table:
    infer = staticmethod(same_infer)

    @staticmethod
    def float_fn(node, a):
        raise ValueError(f"table node {node.name!r} exists only in integer graphs")

    @staticmethod
    def int_fn(node, a):
        table = np.asarray(node.attr("table"), dtype=np.int8)
        if table.shape != (256,):
            raise ValueError(f"table node {node.name!r} has {table.size} entries, needs 256")
        return [table[a[0].astype(np.int16) + 128]]


def _pointwise(name, attrs=None, doc=""):
    """Register a table-able pointwise op from its real function."""
    def register(real):
        cls = type(name, (), {"infer": staticmethod(same_infer), "real": staticmethod(real)})
        op(name, (1, 1), attrs, doc=doc + "; integer form: 256-entry table")(cls)
        return real
    return register


@_pointwise("sigmoid", doc="1 / (1 + exp(-x))")
def _sigmoid(node, x):
    return 1.0 / (1.0 + np.exp(-x))


@_pointwise("tanh", doc="tanh(x)")
def _tanh(node, x):
    return np.tanh(x)


@_pointwise("sqrt", doc="sqrt(x) (nan below 0)")
def _sqrt(node, x):
    return np.sqrt(x)


@_pointwise("exp", doc="exp(x)")
def _exp(node, x):
    return np.exp(x)


@_pointwise("reciprocal", doc="1 / x (+-inf at 0)")
def _reciprocal(node, x):
    return 1.0 / x


@_pointwise("pow", {"exponent": 1.0}, doc="x ** exponent (a constant)")
def _pow(node, x):
    return np.power(x, node.attr("exponent"))


@_pointwise("neg", doc="-x")
def _neg(node, x):
    return -x


@_pointwise("abs", doc="|x|")
def _abs(node, x):
    return np.abs(x)


@_pointwise("erf", doc="the error function")
def _erf(node, x):
    return _ERF(x)


@_pointwise("hard_sigmoid", {"alpha": 0.2, "beta": 0.5}, doc="max(0, min(1, alpha * x + beta))")
def _hard_sigmoid(node, x):
    return np.clip(node.attr("alpha") * x + node.attr("beta"), 0.0, 1.0)


@_pointwise("hard_swish", doc="x * max(0, min(1, x / 6 + 1/2))")
def _hard_swish(node, x):
    return x * np.clip(x / 6.0 + 0.5, 0.0, 1.0)


@_pointwise("elu", {"alpha": 1.0}, doc="x if x > 0 else alpha * (exp(x) - 1)")
def _elu(node, x):
    return np.where(x > 0, x, node.attr("alpha") * np.expm1(np.minimum(x, 0)))


@_pointwise("selu", {"alpha": SELU_ALPHA, "gamma": SELU_GAMMA},
            doc="gamma * (x if x > 0 else alpha * (exp(x) - 1))")
def _selu(node, x):
    return node.attr("gamma") * np.where(x > 0, x, node.attr("alpha") * np.expm1(np.minimum(x, 0)))


@_pointwise("softplus", doc="log(1 + exp(x))")
def _softplus(node, x):
    return np.logaddexp(0.0, x)


@_pointwise("gelu", {"approximate": "none"},
            doc="x/2 * (1 + erf(x / sqrt 2)); approximate='tanh': x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))")
def _gelu(node, x):
    if node.attr("approximate") == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1.0 + _ERF(x / math.sqrt(2.0)))


def _numpy_unary(name, fn, doc):
    _pointwise(name, doc=doc)(lambda node, x: fn(x))


for _name, _fn, _doc in (
        ("sin", np.sin, "sin(x)"), ("cos", np.cos, "cos(x)"), ("tan", np.tan, "tan(x)"),
        ("asin", np.arcsin, "asin(x) (nan outside [-1, 1])"), ("acos", np.arccos, "acos(x) (nan outside [-1, 1])"),
        ("atan", np.arctan, "atan(x)"), ("sinh", np.sinh, "sinh(x)"), ("cosh", np.cosh, "cosh(x)"),
        ("asinh", np.arcsinh, "asinh(x)"), ("acosh", np.arccosh, "acosh(x) (nan below 1)"),
        ("atanh", np.arctanh, "atanh(x) (nan outside [-1, 1])"), ("log", np.log, "log(x) (-inf at 0, nan below)"),
        ("sign", np.sign, "-1, 0 or 1"), ("floor", np.floor, "floor(x)"), ("ceil", np.ceil, "ceil(x)"),
        ("round", np.round, "x rounded to the nearest integer, halves to even"),
        ("softsign", lambda x: x / (1.0 + np.abs(x)), "x / (1 + |x|)"),
        ("mish", lambda x: x * np.tanh(np.logaddexp(0.0, x)), "x * tanh(log(1 + exp(x)))")):
    _numpy_unary(_name, _fn, _doc)


@_pointwise("celu", {"alpha": 1.0}, doc="max(0, x) + min(0, alpha * (exp(x / alpha) - 1))")
def _celu(node, x):
    a = node.attr("alpha")
    return np.maximum(0.0, x) + np.minimum(0.0, a * np.expm1(np.minimum(x, 0) / a))


@_pointwise("thresholded_relu", {"alpha": 1.0}, doc="x if x > alpha else 0")
def _thresholded_relu(node, x):
    return np.where(x > node.attr("alpha"), x, 0.0)


@_pointwise("shrink", {"bias": 0.0, "lambd": 0.5}, doc="x + bias if x < -lambd, x - bias if x > lambd, else 0")
def _shrink(node, x):
    b, lam = node.attr("bias"), node.attr("lambd")
    return np.where(x < -lam, x + b, np.where(x > lam, x - b, 0.0))


@op("prelu", (1, 2), {"axis": 1, "m": (1,), "k": (0,)}, int_attrs=("axis", "m", "k"), weights=(1,),
    doc="x if x >= 0 else slope * x (slope: a constant second input broadcast against x); integer form: one "
        "input, the negative side is requant(x, m[c], k[c]) per channel c along `axis` (m < 0 for a negative "
        "slope), output at the input's exp")
class PRelu:
    @staticmethod
    def infer(node, shapes, graph):
        if len(shapes) > 1 and tuple(np.broadcast_shapes(tuple(shapes[0]), tuple(shapes[1]))) != tuple(shapes[0]):
            raise ValueError(f"prelu {node.name}: slope {shapes[1]} must broadcast to the input {shapes[0]}")
        return [tuple(shapes[0])]

    @staticmethod
    def float_fn(node, a):
        if len(a) != 2:
            raise ValueError(f"prelu node {node.name!r}: the float form needs the slope input")
        x = a[0].astype(np.float64)
        return [as_f32(np.where(x >= 0, x, a[1].astype(np.float64) * x))]

    @staticmethod
    def int_fn(node, a):
        x = a[0]
        neg = requant(x, node.attr("m"), node.attr("k"), -128, 127, node.attr("axis"))
        return [np.where(x >= 0, x, neg).astype(np.int8)]
