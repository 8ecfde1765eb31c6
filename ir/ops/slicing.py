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
