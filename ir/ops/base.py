"""The op table's machinery: `OpDef`, the registry `OPS`, the `@op` decorator and the helpers the
op families share (fused activation, requantisation, common shape rules)."""

from dataclasses import dataclass

import numpy as np

from lbc.ir.quant import requant

INT_REQ = {"m": (1,), "k": (0,), "lo": -128, "hi": 127}
ACT = {"act": "none", "clip_lo": 0.0, "clip_hi": 0.0}


@dataclass(frozen=True)
class OpDef:
    name: str
    arity: tuple  # (min inputs, max inputs)
    attrs: dict  # name -> default (also documents the attribute's type)
    infer: object  # (node, [input shapes], graph) -> [output shapes]
    float_fn: object  # (node, [arrays]) -> [arrays]
    int_fn: object = None  # (node, [arrays]) -> [arrays]; None: op has no integer form
    int_attrs: tuple = ()  # attributes only meaningful in the integer form
    weights: tuple = ()  # input positions that must be constants (weights/biases)
    layout: bool = False  # pure data movement: identical in float and integer form
    doc: str = ""
    macs: object = None  # (node, in_shapes, out_shapes) -> multiply-accumulates per sample
    real: object = None  # (node, float64 array) -> float64 array: a pointwise function whose integer form
    #                      is the generic 256-entry `table` op (see lbc.ir.ops.pointwise)


OPS = {}


def op(name, arity, attrs=None, *, int_attrs=(), weights=(), layout=False, doc="", macs=None):
    def register(cls):
        real = getattr(cls, "real", None)
        float_fn = cls.float_fn if hasattr(cls, "float_fn") else _real_float_fn(real)
        OPS[name] = OpDef(name, arity, dict(attrs or {}), cls.infer, float_fn,
                          getattr(cls, "int_fn", None), int_attrs, weights, layout, doc, macs, real)
        return cls
    return register


def _real_float_fn(real):
    def float_fn(node, a):
        with np.errstate(all="ignore"):  # out-of-domain inputs give inf/nan exactly as ONNX does
            return [as_f32(real(node, a[0].astype(np.float64)))]
    return float_fn


def apply_act(node, y):
    act = node.attr("act")
    if act == "relu":
        return np.maximum(y, 0)
    if act == "clip":
        return np.clip(y, node.attr("clip_lo"), node.attr("clip_hi"))
    return y


def as_f32(x):
    return np.asarray(x, dtype=np.float32)


def req(node, acc, axis=-1):
    return requant(acc, node.attr("m"), node.attr("k"), node.attr("lo"), node.attr("hi"), axis)


def broadcast_infer(node, shapes, graph):
    return [tuple(np.broadcast_shapes(*[tuple(s) for s in shapes]))]


def same_infer(node, shapes, graph):
    return [tuple(shapes[0])]


def macs(node, in_shapes, out_shapes):
    d = OPS[node.op]
    return int(d.macs(node, in_shapes, out_shapes)) if d.macs else 0

