"""The op table: the single source of each op's arity, attributes, shape inference and reference
semantics (float and integer).

Layout conventions: activations carry a leading batch dimension; images are NCHW; dense weights are
[out, in]; conv weights are [out, in/group, kh, kw]. The interpreter evaluates a whole batch at once,
so ops never mix samples (reshape/transpose keep axis 0).

Integer semantics (see `lbc.ir.quant`): every op that changes scale ends in
`requant(acc, m, k, lo, hi)` with attributes `m`, `k` (tuples, per tensor or per channel), `lo`, `hi`.
A fused activation is expressed only through `lo`/`hi` (ReLU: lo = 0).
"""

from dataclasses import dataclass

import numpy as np

from lbc.ir.quant import requant, rounding_shift

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


def _apply_act(node, y):
    act = node.attr("act")
    if act == "relu":
        return np.maximum(y, 0)
    if act == "clip":
        return np.clip(y, node.attr("clip_lo"), node.attr("clip_hi"))
    return y


def _f32(x):
    return np.asarray(x, dtype=np.float32)


def _req(node, acc, axis=-1):
    return requant(acc, node.attr("m"), node.attr("k"), node.attr("lo"), node.attr("hi"), axis)


# ----------------------------------------------------------------------------------------- dense

@op("dense", (2, 3), {**ACT, **INT_REQ}, int_attrs=tuple(INT_REQ), weights=(1, 2),
    doc="y = act(x @ w.T + b); w is [out, in]",
    macs=lambda n, i, o: i[1][0] * i[1][1])
class Dense:
    @staticmethod
    def infer(node, shapes, graph):
        x, w = shapes[0], shapes[1]
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
        return [_f32(_apply_act(node, y))]

    @staticmethod
    def int_fn(node, a):
        acc = a[0].astype(np.int64) @ a[1].astype(np.int64).T
        if len(a) > 2:
            acc = acc + a[2].astype(np.int64)
        return [_req(node, acc, -1)]


# ------------------------------------------------------------------------------------------ conv

def _pool_out(size, k, s, p0, p1, d=1):
    return (size + p0 + p1 - d * (k - 1) - 1) // s + 1


def _windows(x, kernel, strides, pads, dilations, pad_value):
    """[N, C, H, W] -> [N, C, OH, OW, kh, kw] strided view over the padded input."""
    pt, pl, pb, pr = pads
    x = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=pad_value)
    kh, kw = kernel
    dh, dw = dilations
    v = np.lib.stride_tricks.sliding_window_view(x, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    v = v[:, :, ::strides[0], ::strides[1], ::dh, ::dw]
    return v


def _conv_acc(node, x, w, b, dtype):
    g = node.attr("group")
    n, c = x.shape[:2]
    m, cg, kh, kw = w.shape
    win = _windows(x.astype(dtype), (kh, kw), node.attr("strides"), node.attr("pads"), node.attr("dilations"), 0)
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
        oh = _pool_out(x[2], w[2], s[0], p[0], p[2], d[0])
        ow = _pool_out(x[3], w[3], s[1], p[1], p[3], d[1])
        return [(x[0], w[0], oh, ow)]

    @staticmethod
    def float_fn(node, a):
        y = _conv_acc(node, a[0], a[1], a[2] if len(a) > 2 else None, np.float64)
        return [_f32(_apply_act(node, y))]

    @staticmethod
    def int_fn(node, a):
        acc = _conv_acc(node, a[0], a[1], a[2] if len(a) > 2 else None, np.int64)
        return [_req(node, acc, 1)]


# --------------------------------------------------------------------------------------- pooling

POOL = {"kernel": (1, 1), "strides": (1, 1), "pads": (0, 0, 0, 0)}


def _pool_infer(node, shapes, graph):
    x = shapes[0]
    k, s, p = node.attr("kernel"), node.attr("strides"), node.attr("pads")
    return [(x[0], x[1], _pool_out(x[2], k[0], s[0], p[0], p[2]), _pool_out(x[3], k[1], s[1], p[1], p[3]))]


@op("maxpool", (1, 1), POOL, doc="max over windows; padding never wins")
class MaxPool:
    infer = staticmethod(_pool_infer)

    @staticmethod
    def float_fn(node, a):
        win = _windows(a[0], node.attr("kernel"), node.attr("strides"), node.attr("pads"), (1, 1), -np.inf)
        return [_f32(win.max(axis=(4, 5)))]

    @staticmethod
    def int_fn(node, a):
        win = _windows(a[0].astype(np.int16), node.attr("kernel"), node.attr("strides"), node.attr("pads"),
                       (1, 1), -32768)
        return [win.max(axis=(4, 5)).astype(np.int8)]


@op("avgpool", (1, 1), {**POOL, "count_include_pad": 1, **INT_REQ}, int_attrs=tuple(INT_REQ),
    doc="mean over windows; the integer form sums and requantises by the full window size")
class AvgPool:
    infer = staticmethod(_pool_infer)

    @staticmethod
    def float_fn(node, a):
        k = node.attr("kernel")
        win = _windows(a[0].astype(np.float64), k, node.attr("strides"), node.attr("pads"), (1, 1), 0.0)
        total = win.sum(axis=(4, 5))
        if node.attr("count_include_pad"):
            return [_f32(total / (k[0] * k[1]))]
        ones = np.ones((1, 1) + a[0].shape[2:])
        cnt = _windows(ones, k, node.attr("strides"), node.attr("pads"), (1, 1), 0.0).sum(axis=(4, 5))
        return [_f32(total / cnt)]

    @staticmethod
    def int_fn(node, a):
        win = _windows(a[0].astype(np.int64), node.attr("kernel"), node.attr("strides"), node.attr("pads"), (1, 1), 0)
        return [_req(node, win.sum(axis=(4, 5)))]


@op("global_avgpool", (1, 1), dict(INT_REQ), int_attrs=tuple(INT_REQ), doc="mean over H and W, keeps dims")
class GlobalAvgPool:
    @staticmethod
    def infer(node, shapes, graph):
        x = shapes[0]
        return [tuple(x[:2]) + (1,) * (len(x) - 2)]

    @staticmethod
    def float_fn(node, a):
        return [_f32(a[0].astype(np.float64).mean(axis=tuple(range(2, a[0].ndim)), keepdims=True))]

    @staticmethod
    def int_fn(node, a):
        return [_req(node, a[0].astype(np.int64).sum(axis=tuple(range(2, a[0].ndim)), keepdims=True))]


# ------------------------------------------------------------------------------------ elementwise

def _broadcast_infer(node, shapes, graph):
    return [tuple(np.broadcast_shapes(*[tuple(s) for s in shapes]))]


@op("add", (2, 2), {"sa": 0, "sb": 0, **INT_REQ}, int_attrs=("sa", "sb") + tuple(INT_REQ),
    doc="a + b (broadcast); integer form: requant((a << sa) + (b << sb))")
class Add:
    infer = staticmethod(_broadcast_infer)

    @staticmethod
    def float_fn(node, a):
        return [_f32(a[0].astype(np.float64) + a[1])]

    @staticmethod
    def int_fn(node, a):
        acc = (a[0].astype(np.int64) << node.attr("sa")) + (a[1].astype(np.int64) << node.attr("sb"))
        return [_req(node, acc, 1 if acc.ndim > 1 else -1)]


@op("mul", (2, 2), dict(INT_REQ), int_attrs=tuple(INT_REQ), doc="a * b (broadcast); integer form: requant(a * b)")
class Mul:
    infer = staticmethod(_broadcast_infer)

    @staticmethod
    def float_fn(node, a):
        return [_f32(a[0].astype(np.float64) * a[1])]

    @staticmethod
    def int_fn(node, a):
        return [_req(node, a[0].astype(np.int64) * a[1].astype(np.int64), 1 if a[0].ndim > 1 else -1)]


def _same_infer(node, shapes, graph):
    return [tuple(shapes[0])]


@op("relu", (1, 1), doc="max(x, 0)")
class Relu:
    infer = staticmethod(_same_infer)

    @staticmethod
    def float_fn(node, a):
        return [np.maximum(a[0], 0).astype(np.float32)]

    @staticmethod
    def int_fn(node, a):
        return [np.maximum(a[0], 0).astype(np.int8)]


@op("leaky_relu", (1, 1), {"alpha": 0.01, "m": (1,), "k": (0,)}, int_attrs=("m", "k"),
    doc="x if x >= 0 else alpha*x; integer form: (x*m + r) >> k on the negative side")
class LeakyRelu:
    infer = staticmethod(_same_infer)

    @staticmethod
    def float_fn(node, a):
        x = a[0].astype(np.float64)
        return [_f32(np.where(x >= 0, x, node.attr("alpha") * x))]

    @staticmethod
    def int_fn(node, a):
        neg = requant(a[0], node.attr("m"), node.attr("k"), -128, 127)
        return [np.where(a[0] >= 0, a[0], neg).astype(np.int8)]


@op("clip", (1, 1), {"min": float("-inf"), "max": float("inf"), "lo": -128, "hi": 127}, int_attrs=("lo", "hi"),
    doc="clamp(x, min, max)")
class Clip:
    infer = staticmethod(_same_infer)

    @staticmethod
    def float_fn(node, a):
        return [_f32(np.clip(a[0], node.attr("min"), node.attr("max")))]

    @staticmethod
    def int_fn(node, a):
        return [np.clip(a[0], node.attr("lo"), node.attr("hi")).astype(np.int8)]


def _table_fn(node, a):
    table = np.asarray(node.attr("table"), dtype=np.int8)
    return [table[a[0].astype(np.int16) + 128]]


@op("sigmoid", (1, 1), {"table": ()}, int_attrs=("table",), doc="1/(1+exp(-x)); integer form: 256-entry table")
class Sigmoid:
    infer = staticmethod(_same_infer)

    @staticmethod
    def float_fn(node, a):
        return [_f32(1.0 / (1.0 + np.exp(-a[0].astype(np.float64))))]

    int_fn = staticmethod(_table_fn)


@op("tanh", (1, 1), {"table": ()}, int_attrs=("table",), doc="tanh(x); integer form: 256-entry table")
class Tanh:
    infer = staticmethod(_same_infer)

    @staticmethod
    def float_fn(node, a):
        return [_f32(np.tanh(a[0].astype(np.float64)))]

    int_fn = staticmethod(_table_fn)


@op("batchnorm", (5, 5), {"epsilon": 1e-5}, weights=(1, 2, 3, 4),
    doc="(x - mean) / sqrt(var + eps) * scale + bias over axis 1; folded away before quantisation")
class BatchNorm:
    infer = staticmethod(_same_infer)

    @staticmethod
    def float_fn(node, a):
        x, s, b, mu, var = (v.astype(np.float64) for v in a)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        y = (x - mu.reshape(shape)) / np.sqrt(var.reshape(shape) + node.attr("epsilon")) * s.reshape(shape)
        return [_f32(y + b.reshape(shape))]


# ---------------------------------------------------------------------------------------- layout

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


@op("pad", (1, 1), {"pads": (), "value": 0.0, "qvalue": 0}, int_attrs=("qvalue",), layout=True,
    doc="constant padding; pads = (begin_0, ..., begin_n, end_0, ..., end_n)")
class Pad:
    @staticmethod
    def infer(node, shapes, graph):
        p = node.attr("pads")
        r = len(shapes[0])
        if len(p) != 2 * r or p[0] or p[r]:
            raise ValueError(f"pad {node.name}: pads {p} must have {2 * r} entries and leave the batch axis alone")
        return [tuple(d + p[i] + p[i + r] for i, d in enumerate(shapes[0]))]

    @staticmethod
    def _pad(node, x, value):
        p = node.attr("pads")
        r = x.ndim
        return np.pad(x, [(p[i], p[i + r]) for i in range(r)], constant_values=value)

    @staticmethod
    def float_fn(node, a):
        return [Pad._pad(node, a[0], node.attr("value")).astype(np.float32)]

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
        base[ax] = sum(s[ax] for s in shapes)
        return [tuple(base)]

    @staticmethod
    def float_fn(node, a):
        return [np.concatenate(a, axis=node.attr("axis")).astype(np.float32)]

    @staticmethod
    def int_fn(node, a):
        shifts = node.attr("shifts") or (0,) * len(a)
        parts = [np.clip(rounding_shift(x, s), -128, 127) for x, s in zip(a, shifts)]
        return [np.concatenate(parts, axis=node.attr("axis")).astype(np.int8)]


# ---------------------------------------------------------------------------------------- outputs

@op("softmax", (1, 1), {"axis": -1}, doc="softmax; only at the output (quantised graphs apply it on the host)")
class Softmax:
    infer = staticmethod(_same_infer)

    @staticmethod
    def float_fn(node, a):
        x = a[0].astype(np.float64)
        e = np.exp(x - x.max(axis=node.attr("axis"), keepdims=True))
        return [_f32(e / e.sum(axis=node.attr("axis"), keepdims=True))]


@op("argmax", (1, 1), {"axis": -1, "keepdims": 0}, doc="index of the first maximum, as i32")
class ArgMax:
    @staticmethod
    def infer(node, shapes, graph):
        s = list(shapes[0])
        ax = node.attr("axis") % len(s)
        if node.attr("keepdims"):
            s[ax] = 1
        else:
            del s[ax]
        return [tuple(s)]

    @staticmethod
    def float_fn(node, a):
        y = np.argmax(a[0], axis=node.attr("axis"))
        if node.attr("keepdims"):
            y = np.expand_dims(y, node.attr("axis"))
        return [y.astype(np.int32)]

    int_fn = float_fn


def macs(node, in_shapes, out_shapes):
    d = OPS[node.op]
    return int(d.macs(node, in_shapes, out_shapes)) if d.macs else 0
