"""Slicing and gathering with constant indices: pure data movement, identical in float and integer
form (the integer output keeps the input's scale). Neither touches the batch axis."""

import numpy as np

from lbc.ir.ops.base import op


def _slices(node):
    return tuple(slice(st, en if en >= 0 else None, sp)
                 for st, en, sp in zip(node.attr("starts"), node.attr("ends"), node.attr("steps")))


@op("slice", (1, 1), {"starts": (), "ends": (), "steps": ()}, layout=True,
    doc="x[starts:ends:steps] per axis (normalised: 0 <= start, end >= -1 means 'before index 0')")
class Slice:
    @staticmethod
    def infer(node, shapes, graph):
        s = shapes[0]
        if not len(node.attr("starts")) == len(node.attr("ends")) == len(node.attr("steps")) == len(s):
            raise ValueError(f"slice {node.name}: starts/ends/steps need one entry per axis of {s}")
        out = tuple(len(range(*sl.indices(d))) for sl, d in zip(_slices(node), s))
        if out[0] != s[0]:
            raise ValueError(f"slice {node.name}: cannot slice the batch axis")
        return [out]

    @staticmethod
    def float_fn(node, a):
        sl = (slice(None),) + _slices(node)[1:]
        return [np.ascontiguousarray(a[0][sl])]

    int_fn = float_fn


@op("gather", (1, 1), {"axis": 1, "indices": (), "indices_shape": ()}, layout=True,
    doc="take(x, indices, axis) with constant non-negative indices of shape indices_shape")
class Gather:
    @staticmethod
    def infer(node, shapes, graph):
        s, ax = shapes[0], node.attr("axis")
        idx = node.attr("indices")
        if ax == 0 or not 0 < ax < len(s) or (idx and not 0 <= min(idx) <= max(idx) < s[ax]):
            raise ValueError(f"gather {node.name}: bad axis {ax} or indices for shape {s}")
        return [tuple(s[:ax]) + tuple(node.attr("indices_shape")) + tuple(s[ax + 1:])]

    @staticmethod
    def float_fn(node, a):
        idx = np.asarray(node.attr("indices"), dtype=np.int64).reshape(node.attr("indices_shape"))
        return [np.ascontiguousarray(np.take(a[0], idx, axis=node.attr("axis")))]

    int_fn = float_fn


def dilate(x, strides, fill):
    """[N, C, H, W] -> [N, C, (H-1)*sh+1, (W-1)*sw+1] with x at every stride and `fill` between."""
    sh, sw = strides
    n, c, h, w = x.shape
    y = np.full((n, c, (h - 1) * sh + 1, (w - 1) * sw + 1), fill, dtype=x.dtype)
    y[:, :, ::sh, ::sw] = x
    return y


@op("dilate", (1, 1), {"strides": (1, 1)}, layout=True,
    doc="insert strides-1 zeros between the pixels of H and W (a transposed convolution is dilate, pad, conv2d)")
class Dilate:
    @staticmethod
    def infer(node, shapes, graph):
        x, (sh, sw) = shapes[0], node.attr("strides")
        if len(x) != 4 or sh < 1 or sw < 1:
            raise ValueError(f"dilate {node.name}: needs an NCHW input and strides >= 1")
        return [(x[0], x[1], (x[2] - 1) * sh + 1, (x[3] - 1) * sw + 1)]

    @staticmethod
    def float_fn(node, a):
        return [dilate(a[0], node.attr("strides"), 0)]

    int_fn = float_fn


@op("expand", (1, 1), {"shape": ()}, layout=True,
    doc="broadcast to `shape` (ONNX Expand with a constant shape; the batch axis stays)")
class Expand:
    @staticmethod
    def infer(node, shapes, graph):
        x, shape = tuple(shapes[0]), tuple(node.attr("shape"))
        try:
            out = np.broadcast_shapes(x, shape)
        except ValueError:
            raise ValueError(f"expand {node.name}: {x} does not broadcast to {shape}") from None
        if len(out) != len(x) or out[0] != x[0]:
            raise ValueError(f"expand {node.name}: broadcasting {x} to {shape} would change the batch axis")
        return [out]

    @staticmethod
    def float_fn(node, a):
        shape = np.broadcast_shapes(a[0].shape[1:], tuple(node.attr("shape"))[1:])
        return [np.ascontiguousarray(np.broadcast_to(a[0], a[0].shape[:1] + shape))]

    int_fn = float_fn
