"""The 32-bit requantisation proof at its edge: |acc| * m + 2**(k-1) < 2**31 (ir/quant.requant_fits),
which choose_multiplier keeps and the RV32EC kernels rely on (they multiply the 32-bit accumulator by m
with shifts and adds, modulo 2**32). A layer exactly at the bound compiles and is bit-exact in unicorn
on both extreme inputs of every neuron; one past it, the quantiser picks a smaller multiplier and the
target refuses a graph that breaks the promise."""

import numpy as np
import pytest

from conftest import need_toolchain
from lbc.driver import compile_model, read_manifest
from lbc.errors import QuantError, TargetError
from lbc.ir.interpreter import run as interpret
from lbc.ir.quant import choose_multiplier, requant_fits
from proof_util import dense_graph, extreme_inputs

# 231 * 9_296_466 + 2**0 = 2**31 - 1: at the bound with k = 1
A_EDGE, M_EDGE, K_EDGE = 9_296_466, 231, 1
assert A_EDGE * M_EDGE + 1 == 2**31 - 1


def test_choose_multiplier_at_and_past_the_bound():
    real = M_EDGE / 2  # exactly m = 231 at k = 1; k = 2 would need m = 462 > 255
    assert choose_multiplier(real, A_EDGE) == (M_EDGE, K_EDGE)
    m, k = choose_multiplier(real, A_EDGE + 1)  # one past: 231 no longer fits, the next best is taken
    assert (m, k) != (M_EDGE, K_EDGE) and requant_fits(A_EDGE + 1, m, k) and m * 2.0**-k == pytest.approx(real, 0.01)
    rng = np.random.default_rng(13)
    for _ in range(2000):
        bound = int(rng.integers(1, 2**27))
        real = float(np.exp(rng.uniform(-12, 6)))
        if np.floor(real + 0.5) > min(255, (2**31 - 1) // bound):  # no m can hold it: refused
            with pytest.raises(QuantError):
                choose_multiplier(real, bound)
            continue
        m, k = choose_multiplier(real, bound)
        assert 0 <= m <= 255 and requant_fits(bound, m, k)
        if m and m < 255:  # and it is the finest scale allowed: one more bit of k would break a promise
            m2 = int(np.floor(real * 2.0 ** (k + 1) + 0.5))
            assert m2 > 255 or not requant_fits(bound, m2, k + 1) or m2 % 2 == 0


def edge_layer(extra):
    """Two neurons of 571 int8 weights +-127 whose |acc| bound is A_EDGE + extra (through the bias), m = 231,
    k = 1: the largest accumulator times m is 2**31 - 2 + 231 * extra."""
    K = 571
    w = np.array([np.full(K, 127), np.r_[np.full(300, 127), np.full(K - 300, -127)]])
    bias = A_EDGE + extra - 127 * 128 * K
    return dense_graph(w, np.array([bias, -bias]), [M_EDGE] * 2, [K_EDGE] * 2, "int8")


@pytest.mark.parametrize("past", [0, 1], ids=["at", "past"])
def test_rv32ec_requant_edge(tmp_path, past):
    need_toolchain()
    g = edge_layer(past)
    if past:
        with pytest.raises(TargetError, match="does not fit 32 bits"):
            compile_model(g, tmp_path / "o", "rv32ec", "int8", passes=["plan-memory"],
                          target_options={"flash_bytes": 64 * 1024})
        return
    c = compile_model(g, tmp_path / "o", "rv32ec", "int8", passes=["plan-memory"],
                      target_options={"flash_bytes": 64 * 1024})
    w = c.graph.consts["w"]
    x = np.concatenate([extreme_inputs(w), extreme_inputs(w, xlo=-127, xhi=127)])
    y, _ = c.target.run(c.outdir, read_manifest(c.outdir), x)
    ref = interpret(c.graph, x)[0]
    np.testing.assert_array_equal(y.reshape(len(x), -1), ref.reshape(len(x), -1))
    assert {-128, 127} <= set(ref.reshape(-1).tolist())  # both signs reach the clamp: no wrap-around

