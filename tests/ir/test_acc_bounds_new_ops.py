"""The 32-bit accumulator proof of matmul (|acc| <= 128*128*K) and reduce_sum/mean (|acc| <=
128*count) at its edge: the quantize pass's choice verifies, the largest multiplier that fits
verifies, one more does not."""

import numpy as np
import pytest
from onnx import helper

from lbc.driver import lower
from lbc.ir.verify import VerifyError, acc_bound, verify
from onnx_models import make_model, save

n = helper.make_node
MODELS = {
    "matmul": ([n("Transpose", ["x"], ["t"], perm=[0, 2, 1]), n("MatMul", ["x", "t"], ["y"])], [], (3, 4)),
    "reduce_sum": ([n("ReduceSum", ["x", "ax"], ["y"], keepdims=0)], [("ax", np.array([2], np.int64))], (3, 4)),
    "reduce_mean": ([n("ReduceMean", ["x", "ax"], ["y"], keepdims=1)], [("ax", np.array([1, 2], np.int64))], (3, 4)),
}


@pytest.mark.parametrize("op", sorted(MODELS))
def test_accumulator_proof_at_its_edge(tmp_path, op):
    nodes, inits, shape = MODELS[op]
    path = save(make_model(nodes, [("x", ["N", *shape])], [("y", ["N"])], inits, opset=18), tmp_path / "m.onnx")
    x = np.random.default_rng(0).uniform(-1, 1, (16, *shape)).astype(np.float32)
    g = lower(path, "host", "int8", x).graph
    verify(g)  # the quantize pass's own choice fits
    node = next(m for m in g.nodes if m.op == op)
    bound = int(acc_bound(g, node)[0])
    assert bound == (128 * 128 * 4 if op == "matmul" else 128 * (4 if op == "reduce_sum" else 12))
    k = 3
    m_max = (2**31 - 1 - (1 << (k - 1))) // bound  # the largest multiplier with bound*m + round < 2**31
    node.attrs.update(m=(m_max,), k=(k,))
    verify(g)
    node.attrs.update(m=(m_max + 1,))
    with pytest.raises(VerifyError, match="does not fit 32 bits"):
        verify(g)
