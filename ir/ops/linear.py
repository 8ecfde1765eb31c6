"""Weighted layers: dense and 2-d convolution (1-d convolutions are imported as 2-d with height 1)."""

import numpy as np

from lbc.ir.ops.base import ACT, INT_REQ, apply_act, as_f32, req, op
from lbc.ir.ops.windows import pool_out, windows

@op("dense", (2, 3), {**ACT, **INT_REQ}, int_attrs=tuple(INT_REQ), weights=(1, 2),
    doc="y = act(x @ w.T + b); w is [out, in]",
    macs=lambda n, i, o: i[1][0] * i[1][1])
class Dense:
    @staticmethod
    def infer(node, shapes, graph):
        x, w = shapes[0], shapes[1]
        if len(w) != 2:
            raise ValueError(f"dense {node.name}: weight must be 2-d [out, in], got shape {tuple(w)}")
        if x[-1] != w[1]:
            raise ValueError(f"dense {node.name}: input has {x[-1]} features, weight expects {w[1]}")
        if len(shapes) > 2 and tuple(shapes[2]) != (w[0],):
            raise ValueError(f"dense {node.name}: bias shape {shapes[2]} != ({w[0]},)")
        return [tuple(x[:-1]) + (w[0],)]

    @staticmethod
    def float_fn(node, a):
        y = a[0].astype(np.float64) @ a[1].astype(np.float64).T
        if len(a) > 2:
            y = y + a[2]
        return [as_f32(apply_act(node, y))]

    @staticmethod
    def int_fn(node, a):
        acc = a[0].astype(np.int64) @ a[1].astype(np.int64).T
        if len(a) > 2:
            acc = acc + a[2].astype(np.int64)
        return [req(node, acc, -1)]


def _conv_acc(node, x, w, b, dtype):
    g = node.attr("group")
    n, c = x.shape[:2]
    m, cg, kh, kw = w.shape
    win = windows(x.astype(dtype), (kh, kw), node.attr("strides"), node.attr("pads"), node.attr("dilations"), 0)
    oh, ow = win.shape[2:4]
    out = np.zeros((n, m, oh, ow), dtype=dtype)
    mg = m // g
    for gi in range(g):
        xs = win[:, gi * cg:(gi + 1) * cg]  # N, cg, OH, OW, kh, kw
        ws = w[gi * mg:(gi + 1) * mg].astype(dtype)  # mg, cg, kh, kw
        out[:, gi * mg:(gi + 1) * mg] = np.einsum("ncyxij,mcij->nmyx", xs, ws)
    if b is not None:
        out = out + b.astype(dtype).reshape(1, m, 1, 1)
    return out


def _conv_macs(node, ins, outs):
    m, cg, kh, kw = ins[1]
    return int(np.prod(outs[0][1:])) * cg * kh * kw


@op("conv2d", (2, 3), {"strides": (1, 1), "pads": (0, 0, 0, 0), "dilations": (1, 1), "group": 1, **ACT, **INT_REQ},
    int_attrs=tuple(INT_REQ), weights=(1, 2), doc="NCHW convolution, w is [out, in/group, kh, kw]", macs=_conv_macs)
class Conv2d:
    @staticmethod
    def infer(node, shapes, graph):
        x, w = shapes[0], shapes[1]
        g = node.attr("group")
        if len(x) != 4 or len(w) != 4:
            raise ValueError(f"conv2d {node.name}: needs 4-d input and weight, got {x} and {w}")
        if x[1] != w[1] * g or w[0] % g:
            raise ValueError(f"conv2d {node.name}: channels {x[1]} do not match weight {w} with group {g}")
        s, p, d = node.attr("strides"), node.attr("pads"), node.attr("dilations")
        oh = pool_out(x[2], w[2], s[0], p[0], p[2], d[0])
        ow = pool_out(x[3], w[3], s[1], p[1], p[3], d[1])
        return [(x[0], w[0], oh, ow)]

    @staticmethod
    def float_fn(node, a):
        y = _conv_acc(node, a[0], a[1], a[2] if len(a) > 2 else None, np.float64)
        return [as_f32(apply_act(node, y))]

    @staticmethod
    def int_fn(node, a):
        acc = _conv_acc(node, a[0], a[1], a[2] if len(a) > 2 else None, np.int64)
        return [req(node, acc, 1)]
