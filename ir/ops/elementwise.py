"""Elementwise ops: broadcasting arithmetic (add, mul, max, min), piecewise-linear activations and batch
normalisation (folded away before quantisation). Smooth nonlinear functions are in `pointwise`."""

import numpy as np

from lbc.ir.ops.base import INT_REQ, broadcast_infer, as_f32, req, same_infer, op
from lbc.ir.quant import requant

@op("add", (2, 2), {"sa": 0, "sb": 0, **INT_REQ}, int_attrs=("sa", "sb") + tuple(INT_REQ),
    doc="a + b (broadcast); integer form: requant((a << sa) + (b << sb))")
class Add:
    infer = staticmethod(broadcast_infer)

    @staticmethod
    def float_fn(node, a):
        return [as_f32(a[0].astype(np.float64) + a[1])]

    @staticmethod
    def int_fn(node, a):
        acc = (a[0].astype(np.int64) << node.attr("sa")) + (a[1].astype(np.int64) << node.attr("sb"))
        return [req(node, acc, 1 if acc.ndim > 1 else -1)]


def _aligned(node, a):
    return a[0].astype(np.int64) << node.attr("sa"), a[1].astype(np.int64) << node.attr("sb")


@op("max", (2, 2), {"sa": 0, "sb": 0, **INT_REQ}, int_attrs=("sa", "sb") + tuple(INT_REQ),
    doc="max(a, b) (broadcast; ONNX Max is a chain of these); integer form: requant(max(a << sa, b << sb))")
class Max:
    infer = staticmethod(broadcast_infer)

    @staticmethod
    def float_fn(node, a):
        return [as_f32(np.maximum(a[0], a[1]))]

    @staticmethod
    def int_fn(node, a):
        return [req(node, np.maximum(*_aligned(node, a)))]


@op("min", (2, 2), {"sa": 0, "sb": 0, **INT_REQ}, int_attrs=("sa", "sb") + tuple(INT_REQ),
    doc="min(a, b) (broadcast; ONNX Min is a chain of these); integer form: requant(min(a << sa, b << sb))")
class Min:
    infer = staticmethod(broadcast_infer)

    @staticmethod
    def float_fn(node, a):
        return [as_f32(np.minimum(a[0], a[1]))]

    @staticmethod
    def int_fn(node, a):
        return [req(node, np.minimum(*_aligned(node, a)))]


@op("mul", (2, 2), dict(INT_REQ), int_attrs=tuple(INT_REQ), doc="a * b (broadcast); integer form: requant(a * b)")
class Mul:
    infer = staticmethod(broadcast_infer)

    @staticmethod
    def float_fn(node, a):
        return [as_f32(a[0].astype(np.float64) * a[1])]

    @staticmethod
    def int_fn(node, a):
        return [req(node, a[0].astype(np.int64) * a[1].astype(np.int64), 1 if a[0].ndim > 1 else -1)]


@op("relu", (1, 1), doc="max(x, 0)")
class Relu:
    infer = staticmethod(same_infer)

    @staticmethod
    def float_fn(node, a):
        return [np.maximum(a[0], 0).astype(np.float32)]

    @staticmethod
    def int_fn(node, a):
        return [np.maximum(a[0], 0).astype(np.int8)]


@op("leaky_relu", (1, 1), {"alpha": 0.01, "m": (1,), "k": (0,)}, int_attrs=("m", "k"),
    doc="x if x >= 0 else alpha*x; integer form: (x*m + r) >> k on the negative side")
class LeakyRelu:
    infer = staticmethod(same_infer)

    @staticmethod
    def float_fn(node, a):
        x = a[0].astype(np.float64)
        return [as_f32(np.where(x >= 0, x, node.attr("alpha") * x))]

    @staticmethod
    def int_fn(node, a):
        neg = requant(a[0], node.attr("m"), node.attr("k"), -128, 127)
        return [np.where(a[0] >= 0, a[0], neg).astype(np.int8)]


@op("clip", (1, 1), {"min": float("-inf"), "max": float("inf"), "lo": -128, "hi": 127}, int_attrs=("lo", "hi"),
    doc="clamp(x, min, max)")
class Clip:
    @staticmethod
    def infer(node, shapes, graph):
        lo, hi = node.attr("min"), node.attr("max")
        if np.isnan(lo) or np.isnan(hi):
            raise ValueError(f"clip {node.name}: bounds [{lo}, {hi}] must be numbers")
        return [tuple(shapes[0])]

    @staticmethod
    def float_fn(node, a):
        return [as_f32(np.clip(a[0], node.attr("min"), node.attr("max")))]

    @staticmethod
    def int_fn(node, a):
        return [np.clip(a[0], node.attr("lo"), node.attr("hi")).astype(np.int8)]


@op("batchnorm", (5, 5), {"epsilon": 1e-5}, weights=(1, 2, 3, 4),
    doc="(x - mean) / sqrt(var + eps) * scale + bias over axis 1; folded away before quantisation")
class BatchNorm:
    @staticmethod
    def infer(node, shapes, graph):
        c = shapes[0][1] if len(shapes[0]) > 1 else None
        if any(tuple(s) != (c,) for s in shapes[1:]):
            raise ValueError(f"batchnorm {node.name}: scale, bias, mean and variance must have one value per "
                             f"channel ({c}), got shapes {[tuple(s) for s in shapes[1:]]}")
        var = graph.consts.get(node.inputs[4]) if graph is not None else None
        if var is not None and not np.all(var.astype(np.float64) + node.attr("epsilon") > 0):
            raise ValueError(f"batchnorm {node.name}: variance + epsilon must be positive")
        return [tuple(shapes[0])]

    @staticmethod
    def float_fn(node, a):
        x, s, b, mu, var = (v.astype(np.float64) for v in a)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        y = (x - mu.reshape(shape)) / np.sqrt(var.reshape(shape) + node.attr("epsilon")) * s.reshape(shape)
        return [as_f32(y + b.reshape(shape))]


@op("div", (2, 2), doc="a / b (broadcast) of two computed tensors; float only (a constant divisor becomes a mul)")
class Div:
    infer = staticmethod(broadcast_infer)

    @staticmethod
    def float_fn(node, a):
        with np.errstate(divide="ignore", invalid="ignore"):
            return [as_f32(a[0].astype(np.float64) / a[1])]
