"""Resize of the spatial axes of NCHW tensors, with ONNX's coordinate rules.

For an output index o on an axis of input length L, output length O and scale r (O/L when the model
gives sizes), the source coordinate is
  half_pixel: (o + 0.5) / r - 0.5      pytorch_half_pixel: the same, or 0 when O == 1
  asymmetric: o / r                    align_corners: o * (L - 1) / (r * L - 1), or 0 when r * L == 1
nearest picks floor(x) or floor(x) + 1 by `nearest` (round_prefer_floor/ceil, floor, ceil); linear
blends the two neighbours (bilinear in 2-d). Indices are clamped to [0, L - 1] (edge values)."""

import numpy as np

from lbc.ir.ops.base import as_f32, op


def source_coords(coord, o_len, in_len, scale):
    o = np.arange(o_len, dtype=np.float64)
    if coord == "align_corners":
        out_w = scale * in_len
        return np.zeros(o_len) if out_w == 1 else o * (in_len - 1) / (out_w - 1)
    if coord == "asymmetric":
        return o / scale
    if coord == "pytorch_half_pixel" and o_len == 1:
        return np.zeros(o_len)
    return (o + 0.5) / scale - 0.5


def nearest_index(x, mode, in_len):
    lo = np.floor(x)
    frac = x - lo
    if mode == "round_prefer_floor":
        up = frac > 0.5
    elif mode == "round_prefer_ceil":
        up = frac >= 0.5
    elif mode == "ceil":
        up = frac > 0
    else:
        up = np.zeros_like(frac, dtype=bool)
    return np.clip(lo + up, 0, in_len - 1).astype(np.int64)


def _axis(node, x, axis):
    i = axis - 2
    in_len, o_len, scale = x.shape[axis], node.attr("sizes")[i], node.attr("scales")[i]
    pos = source_coords(node.attr("coord"), o_len, in_len, scale)
    if node.attr("mode") == "nearest":
        return np.take(x, nearest_index(pos, node.attr("nearest"), in_len), axis=axis)
    lo = np.floor(pos)
    w = (pos - lo).reshape((-1,) + (1,) * (x.ndim - axis - 1))
    i0 = np.clip(lo, 0, in_len - 1).astype(np.int64)
    i1 = np.clip(lo + 1, 0, in_len - 1).astype(np.int64)
    return np.take(x, i0, axis=axis) * (1 - w) + np.take(x, i1, axis=axis) * w


@op("resize", (1, 1), {"mode": "nearest", "coord": "half_pixel", "nearest": "round_prefer_floor",
                       "scales": (1.0, 1.0), "sizes": (1, 1)},
    doc="resize H and W to `sizes` (nearest or bilinear, ONNX coordinate rules); nearest has an integer form")
class Resize:
    @staticmethod
    def infer(node, shapes, graph):
        x = shapes[0]
        if len(x) != 4:
            raise ValueError(f"resize {node.name}: needs an NCHW input, got {x}")
        return [tuple(x[:2]) + tuple(node.attr("sizes"))]

    @staticmethod
    def float_fn(node, a):
        y = a[0].astype(np.float64)
        for axis in (2, 3):
            y = _axis(node, y, axis)
        return [as_f32(y)]

    @staticmethod
    def int_fn(node, a):
        if node.attr("mode") != "nearest":
            raise ValueError(f"resize {node.name}: only nearest resizing has an integer form")
        y = a[0]
        for axis in (2, 3):
            y = _axis(node, y, axis)
        return [np.ascontiguousarray(y)]
