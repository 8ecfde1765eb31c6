"""Reductions over non-batch axes: mean, sum and max, and global max pooling.

Integer forms: max keeps the input scale (it is a selection); sum and mean accumulate in a wide
integer and requantise (the mean's 1/count is part of the requantisation multiplier)."""

import numpy as np

from lbc.ir.ops.base import INT_REQ, as_f32, req, op

RED = {"axes": (), "keepdims": 1}


def _reduce_infer(node, shapes, graph):
    s, axes = shapes[0], node.attr("axes")
    if not axes or 0 in axes or max(axes) >= len(s):
        raise ValueError(f"{node.op} {node.name}: axes {axes} must be non-batch axes of {s}")
    if node.attr("keepdims"):
        return [tuple(1 if i in axes else d for i, d in enumerate(s))]
    return [tuple(d for i, d in enumerate(s) if i not in axes)]


@op("reduce_sum", (1, 1), {**RED, **INT_REQ}, int_attrs=tuple(INT_REQ), doc="sum over axes")
class ReduceSum:
    infer = staticmethod(_reduce_infer)

    @staticmethod
    def float_fn(node, a):
        return [as_f32(a[0].astype(np.float64).sum(axis=node.attr("axes"), keepdims=bool(node.attr("keepdims"))))]

    @staticmethod
    def int_fn(node, a):
        return [req(node, a[0].astype(np.int64).sum(axis=node.attr("axes"), keepdims=bool(node.attr("keepdims"))))]


@op("reduce_mean", (1, 1), {**RED, **INT_REQ}, int_attrs=tuple(INT_REQ),
    doc="mean over axes; integer form: requant(sum) with 1/count in the multiplier")
class ReduceMean:
    infer = staticmethod(_reduce_infer)

    @staticmethod
    def float_fn(node, a):
        return [as_f32(a[0].astype(np.float64).mean(axis=node.attr("axes"), keepdims=bool(node.attr("keepdims"))))]

    int_fn = ReduceSum.int_fn


@op("reduce_max", (1, 1), RED, doc="max over axes (same scale in and out)")
class ReduceMax:
    infer = staticmethod(_reduce_infer)

    @staticmethod
    def float_fn(node, a):
        return [a[0].max(axis=node.attr("axes"), keepdims=bool(node.attr("keepdims")))]

    int_fn = float_fn


@op("global_maxpool", (1, 1), doc="max over H and W, keeps dims (same scale in and out)")
class GlobalMaxPool:
    @staticmethod
    def infer(node, shapes, graph):
        x = shapes[0]
        return [tuple(x[:2]) + (1,) * (len(x) - 2)]

    @staticmethod
    def float_fn(node, a):
        return [a[0].max(axis=tuple(range(2, a[0].ndim)), keepdims=True)]

    int_fn = float_fn
