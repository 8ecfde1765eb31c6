"""MatMul of a computed left operand with a computed (or constant N-d) right operand, numpy
broadcasting over leading axes. Integer form: int64 accumulation of int8 x int8 products, then
requantisation (|acc| <= 128 * 128 * K, proven to fit 32 bits by the quantize pass)."""

import numpy as np

from lbc.ir.ops.base import INT_REQ, as_f32, req, op


def _mm_macs(node, ins, outs):
    return int(np.prod(outs[0][1:])) * int(ins[0][-1])


@op("matmul", (2, 2), dict(INT_REQ), int_attrs=tuple(INT_REQ), doc="a @ b with broadcasting (batch stays first)",
    macs=_mm_macs)
class MatMul:
    @staticmethod
    def infer(node, shapes, graph):
        a, b = shapes
        if len(a) < 2 or len(b) < 2 or a[-1] != b[-2]:
            raise ValueError(f"matmul {node.name}: shapes {a} and {b} do not multiply")
        try:
            lead = np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2]))
        except ValueError:
            raise ValueError(f"matmul {node.name}: leading axes of {a} and {b} do not broadcast") from None
        out = tuple(lead) + (a[-2], b[-1])
        if len(out) != len(a) or out[0] != a[0]:
            raise ValueError(f"matmul {node.name}: {a} @ {b} would change the batch axis")
        return [out]

    @staticmethod
    def float_fn(node, a):
        return [as_f32(np.matmul(a[0].astype(np.float64), a[1].astype(np.float64)))]

    @staticmethod
    def int_fn(node, a):
        return [req(node, np.matmul(a[0].astype(np.int64), a[1].astype(np.int64)))]
