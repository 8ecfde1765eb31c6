"""The op table: the single source of each op's arity, attributes, shape inference and reference
semantics (float and integer).

Layout conventions: activations carry a leading batch dimension; images are NCHW; dense weights are
[out, in]; conv weights are [out, in/group, kh, kw]. The interpreter evaluates a whole batch at once,
so ops never mix samples (reshape/transpose keep axis 0).

Integer semantics (see `lbc.ir.quant`): every op that changes scale ends in
`requant(acc, m, k, lo, hi)` with attributes `m`, `k` (tuples, per tensor or per channel), `lo`, `hi`.
A fused activation is expressed only through `lo`/`hi` (ReLU: lo = 0).

Pointwise nonlinear functions (`TABLE_OPS`: the ops with a `real` function) have one integer form,
the generic `table` op (see `lbc.ir.ops.pointwise`): a target that emits `table` emits them all.
`integer_op(name)` is the op a float op becomes in an integer graph.
"""

from lbc.ir.ops.base import OPS, OpDef, macs, op  # noqa: F401  (the registry and its machinery)
from lbc.ir.ops import linear, pool, elementwise, layout, output  # noqa: F401,E402  (register the op families)
from lbc.ir.ops import slicing, reduce, resize, qdq, matmul  # noqa: F401,E402
from lbc.ir.ops import pointwise, logic, normalization, spiking  # noqa: F401,E402
from lbc.ir.ops import transformer  # noqa: F401,E402

TABLE_OPS = frozenset(name for name, d in OPS.items() if d.real is not None)


def integer_op(name):
    """The IR op that carries `name`'s integer form ("table" for every op in TABLE_OPS)."""
    return "table" if name in TABLE_OPS else name
