"""Normalisations that depend on statistics of the activations themselves: local response
normalisation across channels and instance normalisation. Float only: their integer forms need a
division by a data-dependent root that is not a 256-entry table, so the quantize pass refuses them
(batch normalisation, whose statistics are constants, is folded into the layers instead)."""

import numpy as np

from lbc.ir.ops.base import as_f32, same_infer, op


@op("lrn", (1, 1), {"size": 1, "alpha": 1e-4, "beta": 0.75, "bias": 1.0},
    doc="x / (bias + alpha/size * sum of x^2 over `size` neighbouring channels)^beta (ONNX LRN); float only")
class LRN:
    infer = staticmethod(same_infer)

    @staticmethod
    def float_fn(node, a):
        x = a[0].astype(np.float64)
        size, c = node.attr("size"), x.shape[1]
        sq = x * x
        total = np.zeros_like(x)
        lo_off, hi_off = (size - 1) // 2, size - 1 - (size - 1) // 2  # floor and ceil of (size-1)/2
        for ch in range(c):
            total[:, ch] = sq[:, max(0, ch - lo_off):min(c - 1, ch + hi_off) + 1].sum(axis=1)
        den = (node.attr("bias") + node.attr("alpha") / size * total) ** node.attr("beta")
        return [as_f32(x / den)]


@op("instance_norm", (3, 3), {"epsilon": 1e-5}, weights=(1, 2),
    doc="(x - mean) / sqrt(var + epsilon) * scale[c] + bias[c], statistics per sample and channel over the "
        "spatial axes (ONNX InstanceNormalization); float only")
class InstanceNorm:
    infer = staticmethod(same_infer)

    @staticmethod
    def float_fn(node, a):
        x, s, b = (v.astype(np.float64) for v in a)
        axes = tuple(range(2, x.ndim))
        mu = x.mean(axis=axes, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        y = (x - mu) / np.sqrt(var + node.attr("epsilon")) * s.reshape(shape) + b.reshape(shape)
        return [as_f32(y)]
