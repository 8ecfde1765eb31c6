"""Data movement: reshape, transpose, pad, concat."""

import numpy as np

from lbc.ir.ops.base import op
from lbc.ir.quant import rounding_shift

@op("reshape", (1, 1), {"shape": ()}, layout=True, doc="to `shape` (its leading batch entry follows the input)")
class Reshape:
    @staticmethod
    def infer(node, shapes, graph):
        shape = tuple(node.attr("shape"))
        if int(np.prod(shape)) != int(np.prod(shapes[0])):
            raise ValueError(f"reshape {node.name}: {shapes[0]} cannot become {shape}")
        return [shape]

    @staticmethod
    def float_fn(node, a):
        return [a[0].reshape((a[0].shape[0],) + tuple(node.attr("shape"))[1:])]

    int_fn = float_fn


@op("transpose", (1, 1), {"perm": ()}, layout=True, doc="permute axes; perm[0] == 0 (batch stays first)")
class Transpose:
    @staticmethod
    def infer(node, shapes, graph):
        perm = node.attr("perm")
        if sorted(perm) != list(range(len(shapes[0]))) or perm[0] != 0:
            raise ValueError(f"transpose {node.name}: perm {perm} must permute {len(shapes[0])} axes keeping axis 0")
        return [tuple(shapes[0][p] for p in perm)]

    @staticmethod
    def float_fn(node, a):
        return [np.ascontiguousarray(np.transpose(a[0], node.attr("perm")))]

    int_fn = float_fn


@op("pad", (1, 1), {"pads": (), "value": 0.0, "qvalue": 0, "mode": "constant"}, int_attrs=("qvalue",), layout=True,
    doc="padding (mode constant, reflect, edge or wrap); pads = (begin_0, ..., begin_n, end_0, ..., end_n)")
class Pad:
    @staticmethod
    def infer(node, shapes, graph):
        p = node.attr("pads")
        r = len(shapes[0])
        if len(p) != 2 * r or p[0] or p[r]:
            raise ValueError(f"pad {node.name}: pads {p} must have {2 * r} entries and leave the batch axis alone")
        if node.attr("mode") not in ("constant", "reflect", "edge", "wrap"):
            raise ValueError(f"pad {node.name}: unknown mode {node.attr('mode')!r}")
        return [tuple(d + p[i] + p[i + r] for i, d in enumerate(shapes[0]))]

    @staticmethod
    def _pad(node, x, value):
        p = node.attr("pads")
        r = x.ndim
        widths = [(p[i], p[i + r]) for i in range(r)]
        if node.attr("mode") != "constant":
            return np.pad(x, widths, mode=node.attr("mode"))
        return np.pad(x, widths, constant_values=value)

    @staticmethod
    def float_fn(node, a):
        return [Pad._pad(node, a[0], node.attr("value")).astype(np.float32)]

    # reflect/edge/wrap copy input values: identical in float and integer form

    @staticmethod
    def int_fn(node, a):
        return [Pad._pad(node, a[0], node.attr("qvalue")).astype(np.int8)]


@op("concat", (1, 64), {"axis": 1, "shifts": ()}, int_attrs=("shifts",),
    doc="join along axis; integer form: each input rescaled by a rounding shift to the output exponent")
class Concat:
    @staticmethod
    def infer(node, shapes, graph):
        ax = node.attr("axis") % len(shapes[0])
        if ax == 0:
            raise ValueError(f"concat {node.name}: cannot concatenate along the batch axis")
        base = list(shapes[0])
        base[0] = max(s[0] for s in shapes)  # a constant part has a batch axis of 1, repeated per sample
        base[ax] = sum(s[ax] for s in shapes)
        return [tuple(base)]

    @staticmethod
    def _batched(parts):
        n = max(x.shape[0] for x in parts)
        return [np.broadcast_to(x, (n,) + x.shape[1:]) if x.shape[0] == 1 else x for x in parts]

    @staticmethod
    def float_fn(node, a):
        return [np.concatenate(Concat._batched(a), axis=node.attr("axis")).astype(np.float32)]

    @staticmethod
    def int_fn(node, a):
        shifts = node.attr("shifts") or (0,) * len(a)
        parts = [np.clip(rounding_shift(x, s), -128, 127) for x, s in zip(a, shifts)]
        return [np.concatenate(Concat._batched(parts), axis=node.attr("axis")).astype(np.int8)]
