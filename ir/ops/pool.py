"""Pooling: max, average and global average over the spatial axes of NCHW tensors."""

import numpy as np

from lbc.ir.ops.base import INT_REQ, as_f32, req, op
from lbc.ir.ops.windows import pool_out, windows

POOL = {"kernel": (1, 1), "strides": (1, 1), "pads": (0, 0, 0, 0), "ceil_mode": 0}


def _ceil_out(size, k, s, p0, p1):
    """Output length with ceil_mode=1: a last, partial window counts if it starts before the end
    of the input plus the begin padding (ONNX and PyTorch)."""
    out = -(-(size + p0 + p1 - k) // s) + 1
    if (out - 1) * s >= size + p0:
        out -= 1
    return out


def _out_len(node, size, axis):
    k, s, p = node.attr("kernel")[axis], node.attr("strides")[axis], node.attr("pads")
    p0, p1 = p[axis], p[axis + 2]
    return _ceil_out(size, k, s, p0, p1) if node.attr("ceil_mode") else pool_out(size, k, s, p0, p1)


def _pads(node, shape):
    """The pads with the end extended to cover ceil_mode's last partial windows."""
    p = list(node.attr("pads"))
    k, s = node.attr("kernel"), node.attr("strides")
    for ax in (0, 1):
        o = _out_len(node, shape[2 + ax], ax)
        need = (o - 1) * s[ax] + k[ax] - shape[2 + ax] - p[ax]
        p[ax + 2] = max(p[ax + 2], need)
    return tuple(p)


def _pool_infer(node, shapes, graph):
    x = shapes[0]
    return [(x[0], x[1], _out_len(node, x[2], 0), _out_len(node, x[3], 1))]


def _crop(node, y, shape):
    return y[:, :, :_out_len(node, shape[2], 0), :_out_len(node, shape[3], 1)]


def crop_windows(node, x, pad_value):
    """[N, C, OH, OW, kh, kw] windows of x as this pooling node sees them (ceil_mode included)."""
    win = windows(x, node.attr("kernel"), node.attr("strides"), _pads(node, x.shape), (1, 1), pad_value)
    return _crop(node, win, x.shape)


@op("maxpool", (1, 1), POOL, doc="max over windows; padding never wins")
class MaxPool:
    infer = staticmethod(_pool_infer)

    @staticmethod
    def float_fn(node, a):
        win = windows(a[0], node.attr("kernel"), node.attr("strides"), _pads(node, a[0].shape), (1, 1), -np.inf)
        return [as_f32(_crop(node, win.max(axis=(4, 5)), a[0].shape))]

    @staticmethod
    def int_fn(node, a):
        win = windows(a[0].astype(np.int16), node.attr("kernel"), node.attr("strides"), _pads(node, a[0].shape),
                      (1, 1), -32768)
        return [_crop(node, win.max(axis=(4, 5)), a[0].shape).astype(np.int8)]


@op("avgpool", (1, 1), {**POOL, "count_include_pad": 1, **INT_REQ}, int_attrs=tuple(INT_REQ),
    doc="mean over windows; the integer form sums and requantises by the full window size")
class AvgPool:
    infer = staticmethod(_pool_infer)

    @staticmethod
    def float_fn(node, a):
        k, shape = node.attr("kernel"), a[0].shape
        pads = _pads(node, shape)
        win = windows(a[0].astype(np.float64), k, node.attr("strides"), pads, (1, 1), 0.0)
        total = _crop(node, win.sum(axis=(4, 5)), shape)
        # the count: the real input, plus the explicit padding with count_include_pad (never the
        # extra end padding of ceil_mode)
        p = node.attr("pads")
        ones = np.ones((1, 1) + shape[2:])
        if node.attr("count_include_pad"):
            ones = np.pad(ones, ((0, 0), (0, 0), (p[0], p[2]), (p[1], p[3])), constant_values=1.0)
            extra = (pads[0] - p[0], pads[1] - p[1], pads[2] - p[2], pads[3] - p[3])
        else:
            extra = pads
        cnt = _crop(node, windows(ones, k, node.attr("strides"), extra, (1, 1), 0.0).sum(axis=(4, 5)), shape)
        return [as_f32(total / cnt)]

    @staticmethod
    def int_fn(node, a):
        win = windows(a[0].astype(np.int64), node.attr("kernel"), node.attr("strides"), _pads(node, a[0].shape),
                      (1, 1), 0)
        return [req(node, _crop(node, win.sum(axis=(4, 5)), a[0].shape))]


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
