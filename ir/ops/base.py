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


OPS = {}


def op(name, arity, attrs=None, *, int_attrs=(), weights=(), layout=False, doc="", macs=None):
    def register(cls):
        OPS[name] = OpDef(name, arity, dict(attrs or {}), cls.infer, cls.float_fn,
                          getattr(cls, "int_fn", None), int_attrs, weights, layout, doc, macs)
        return cls
    return register


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

