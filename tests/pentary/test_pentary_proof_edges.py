"""The pentary DOT accumulator proof at its edge: DOT adds into a word (wrapping past WORD_MAX), so the
backend refuses a dense layer whose |accumulator| bound exceeds a word. No model that fits the machine's
memory gets near that bound (it needs ~3e8 weights at |w| = 2 with int32 biases), so the edge is
checked on the bound itself, and a layer at the int32 extremes runs bit-exact in the simulator."""

import numpy as np

from lbc.backends.pentary import isa
from lbc.backends.pentary.lower import _requant_problems
from lbc.driver import compile_model, run_compiled
from lbc.ir.interpreter import run as interpret
from proof_util import dense_graph, extreme_inputs


def test_dot_bound_at_and_past_a_word():
    g = dense_graph(np.ones((1, 4), np.int64), np.zeros(1, np.int64), [1], [0], "pentary")
    node = g.nodes[0]
    assert not [p for p in _requant_problems(g, node, 1, isa.WORD_MAX) if "accumulator" in p]
    assert [p for p in _requant_problems(g, node, 1, isa.WORD_MAX + 1) if "beyond a word" in p]


def test_extreme_accumulators_run_exactly(tmp_path):
    """The largest int32 biases plus full pentary weights on both extreme inputs: bit-exact in the simulator."""
    K = 64
    w = np.array([np.full(K, 2), np.full(K, -2), np.r_[np.full(32, 2), np.full(K - 32, -2)]])
    b = np.array([2**31 - 1 - 2 * 128 * K, -(2**31) + 2 * 128 * K, 2**30])
    g = dense_graph(w, b, [255, 255, 3], [31, 31, 24], "pentary")
    c = compile_model(g, tmp_path / "o", "pentary", "pentary", passes=["plan-memory"])
    x = extreme_inputs(w)
    _, yq, _ = run_compiled(c.outdir, x.astype(np.float32), raw=True)  # exp 0: the floats are the int8 values
    np.testing.assert_array_equal(np.asarray(yq).reshape(len(x), -1), interpret(c.graph, x)[0].reshape(len(x), -1))
