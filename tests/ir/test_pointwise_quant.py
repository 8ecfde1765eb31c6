"""The quantize pass on broadcasting ops: requantisation by an exact power of two, proven to fit 32
bits, tested at the edge (the largest shift that fits and one past)."""

import numpy as np
import pytest

from lbc.errors import LbcError
from lbc.ir.dtypes import F32, I8
from lbc.ir.graph import Graph, Node, TensorType
from lbc.ir.interpreter import run
from lbc.passes.quantize import _Quantizer


def _quantise(op, ea, eb, eo):
    g = Graph("t", ["a", "b"], ["y"], [Node(op, "n", ["a", "b"], ["y"])],
              {t: TensorType(F32, (1, 4)) for t in ("a", "b", "y")})
    q = _Quantizer(g, I8, {"a": ea, "b": eb, "y": eo}, True)
    q.node(g.nodes[0])
    for t in ("a", "b", "y"):
        g.types[t] = TensorType(I8, (1, 4), q.exps[t])
    return g


def test_mul_rescale_edge():
    # |a*b| <= 2**14; m = 2**16 gives 2**30 < 2**31 (fits), m = 2**17 gives exactly 2**31 (refused)
    g = _quantise("mul", 0, 0, 16)
    assert g.nodes[0].attrs["m"] == (2**16,) and g.nodes[0].attrs["k"] == (0,)
    a = np.array([[-128, 127, -128, 1]], np.int8)
    y = run(g, {"a": a, "b": np.array([[-128, -128, 127, 0]], np.int8)})[0]
    np.testing.assert_array_equal(y, [[127, -128, -128, 0]])  # saturated, never wrapped
    with pytest.raises(LbcError, match=r"mul 'n': .*2\^17 apart.*32 bits"):
        _quantise("mul", 0, 0, 17)
    # the other side: k = 31 adds 2**30 (fits), k = 32 adds 2**31 (refused)
    assert _quantise("mul", 16, 15, 0).nodes[0].attrs["k"] == (31,)
    with pytest.raises(LbcError, match="32 bits"):
        _quantise("mul", 16, 16, 0)


def test_add_alignment_edge():
    # m = 2, bound (128 << s) + 128: s = 22 gives 2**30 + 256 (fits), s = 23 gives 2**31 + 256 (refused)
    g = _quantise("add", 0, 22, 23)
    assert g.nodes[0].attrs["sa"] == 22 and g.nodes[0].attrs["m"] == (2,)
    with pytest.raises(LbcError, match="add 'n'"):
        _quantise("add", 0, 23, 24)


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_align_and_rescale(op):
    g = _quantise(op, 3, 5, 4)  # a << 2 vs b at exp 5, then halved (rounding half up) to exp 4
    n = g.nodes[0]
    assert (n.attrs["sa"], n.attrs["sb"], n.attrs["m"], n.attrs["k"]) == (2, 0, (1,), (1,))
    a = np.array([[-128, 127, 3, -3]], np.int8)
    b = np.array([[127, -128, 13, -11]], np.int8)
    y = run(g, {"a": a, "b": b})[0]
    fn = np.maximum if op == "max" else np.minimum
    want = np.clip(np.floor(fn(a.astype(np.int64) * 4, b) / 2 + 0.5), -128, 127)
    np.testing.assert_array_equal(y, want)


def test_verifier_checks_tables():
    from lbc.ir.verify import VerifyError, verify

    def graph(table):
        return Graph("t", ["x"], ["y"], [Node("table", "t", ["x"], ["y"], {"table": table, "fn": "exp"})],
                     {"x": TensorType(I8, (1, 4), 3), "y": TensorType(I8, (1, 4), 3)})
    verify(graph(tuple(range(-128, 128))))
    for bad in (tuple(range(-128, 127)), (128,) + tuple(range(-127, 128))):
        with pytest.raises(VerifyError, match="256 int8 entries"):
            verify(graph(bad))
