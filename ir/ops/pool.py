"""Pooling: max, average and global average over the spatial axes of NCHW tensors."""

import numpy as np

from lbc.ir.ops.base import INT_REQ, as_f32, req, op
from lbc.ir.ops.windows import pool_out, windows

POOL = {"kernel": (1, 1), "strides": (1, 1), "pads": (0, 0, 0, 0)}


def _pool_infer(node, shapes, graph):
    x = shapes[0]
    k, s, p = node.attr("kernel"), node.attr("strides"), node.attr("pads")
    return [(x[0], x[1], pool_out(x[2], k[0], s[0], p[0], p[2]), pool_out(x[3], k[1], s[1], p[1], p[3]))]


@op("maxpool", (1, 1), POOL, doc="max over windows; padding never wins")
class MaxPool:
    infer = staticmethod(_pool_infer)

    @staticmethod
    def float_fn(node, a):
        win = windows(a[0], node.attr("kernel"), node.attr("strides"), node.attr("pads"), (1, 1), -np.inf)
        return [as_f32(win.max(axis=(4, 5)))]

    @staticmethod
    def int_fn(node, a):
        win = windows(a[0].astype(np.int16), node.attr("kernel"), node.attr("strides"), node.attr("pads"),
                       (1, 1), -32768)
        return [win.max(axis=(4, 5)).astype(np.int8)]


@op("avgpool", (1, 1), {**POOL, "count_include_pad": 1, **INT_REQ}, int_attrs=tuple(INT_REQ),
    doc="mean over windows; the integer form sums and requantises by the full window size")
class AvgPool:
    infer = staticmethod(_pool_infer)

    @staticmethod
    def float_fn(node, a):
        k = node.attr("kernel")
        win = windows(a[0].astype(np.float64), k, node.attr("strides"), node.attr("pads"), (1, 1), 0.0)
        total = win.sum(axis=(4, 5))
        if node.attr("count_include_pad"):
            return [as_f32(total / (k[0] * k[1]))]
        ones = np.ones((1, 1) + a[0].shape[2:])
        cnt = windows(ones, k, node.attr("strides"), node.attr("pads"), (1, 1), 0.0).sum(axis=(4, 5))
        return [as_f32(total / cnt)]

    @staticmethod
    def int_fn(node, a):
        win = windows(a[0].astype(np.int64), node.attr("kernel"), node.attr("strides"), node.attr("pads"), (1, 1), 0)
        return [req(node, win.sum(axis=(4, 5)))]


@op("global_avgpool", (1, 1), dict(INT_REQ), int_attrs=tuple(INT_REQ), doc="mean over H and W, keeps dims")
class GlobalAvgPool:
    @staticmethod
    def infer(node, shapes, graph):
        x = shapes[0]
        return [tuple(x[:2]) + (1,) * (len(x) - 2)]

    @staticmethod
    def float_fn(node, a):
        return [as_f32(a[0].astype(np.float64).mean(axis=tuple(range(2, a[0].ndim)), keepdims=True))]

    @staticmethod
    def int_fn(node, a):
        return [req(node, a[0].astype(np.int64).sum(axis=tuple(range(2, a[0].ndim)), keepdims=True))]
