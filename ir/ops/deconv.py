"""Transposed 2-d convolution (ConvTranspose; 1-d ones are imported with a height of 1).

w is [in, out/group, kh, kw] as in ONNX. Each input pixel scatters x * w into the full output of
size (H - 1) * stride + (k - 1) * dilation + 1 + output_padding, which is then cropped by the pads."""

import numpy as np

from lbc.ir.ops.base import as_f32, op


def _full(node, shapes):
    x, w = shapes[0], shapes[1]
    s, d, op_ = node.attr("strides"), node.attr("dilations"), node.attr("output_padding")
    return [(x[2 + i] - 1) * s[i] + (w[2 + i] - 1) * d[i] + 1 + op_[i] for i in range(2)]


def _deconv(node, x, w, b):
    g = node.attr("group")
    n, c, h, wd = x.shape
    cg, mg, kh, kw = w.shape[0] // g, w.shape[1], w.shape[2], w.shape[3]
    s, d, p = node.attr("strides"), node.attr("dilations"), node.attr("pads")
    fh, fw = _full(node, [x.shape, w.shape])
    out = np.zeros((n, mg * g, fh, fw), dtype=np.float64)
    for gi in range(g):
        xs = x[:, gi * cg:(gi + 1) * cg]
        for i in range(kh):
            for j in range(kw):
                contrib = np.einsum("nchw,cm->nmhw", xs, w[gi * cg:(gi + 1) * cg, :, i, j])
                out[:, gi * mg:(gi + 1) * mg, i * d[0]:i * d[0] + (h - 1) * s[0] + 1:s[0],
                    j * d[1]:j * d[1] + (wd - 1) * s[1] + 1:s[1]] += contrib
    out = out[:, :, p[0]:fh - p[2], p[1]:fw - p[3]]
    if b is not None:
        out = out + b.reshape(1, -1, 1, 1)
    return out


@op("conv_transpose", (2, 3), {"strides": (1, 1), "pads": (0, 0, 0, 0), "dilations": (1, 1), "group": 1,
                               "output_padding": (0, 0)}, weights=(1, 2),
    doc="NCHW transposed convolution, w is [in, out/group, kh, kw]")
class ConvTranspose:
    @staticmethod
    def infer(node, shapes, graph):
        x, w = shapes[0], shapes[1]
        g = node.attr("group")
        if len(x) != 4 or len(w) != 4 or x[1] != w[0] or w[0] % g:
            raise ValueError(f"conv_transpose {node.name}: input {x} does not match weight {w} with group {g}")
        fh, fw = _full(node, shapes)
        p = node.attr("pads")
        oh, ow = fh - p[0] - p[2], fw - p[1] - p[3]
        if oh <= 0 or ow <= 0:
            raise ValueError(f"conv_transpose {node.name}: pads {p} leave no output")
        return [(x[0], w[1] * g, oh, ow)]

    @staticmethod
    def float_fn(node, a):
        y = _deconv(node, a[0].astype(np.float64), a[1].astype(np.float64),
                    a[2].astype(np.float64) if len(a) > 2 else None)
        return [as_f32(y)]
