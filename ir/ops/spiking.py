"""Spiking neurons: stateful leaky integrate-and-fire (`lif`), leaky integrator (`li`) and the
stateless `threshold`. Each stateful op reads its state's value at the start of the step (input 1)
and computes the next value (output 1); see `Graph.states`.

Float form (the NIR equations discretised with a time step dt by the frontend, per neuron):

    u  = beta * v + (1 - beta) * v_leak + gain * I
    lif: z = u > threshold (strict); v' = v_reset where z else u   (reset "zero": to v_reset)
                                     v' = u - threshold * z         (reset "subtract")
    li:  v' = u; the output is u

Integer form. The current I is an integer whose unit may differ per neuron (a dense layer's i32
accumulator in units of s_x * s_w[j], or an int8 activation); the quantizer gives v the unit
gain[j] * unit(I)[j], so the input adds without scaling and the float parameters become integers:

    leak = (v * d + 2**(s-1)) >> s   (s > 0; v * d when s = 0; `>>` arithmetic: the leak is v*(1-beta)
                                      rounded half up; when 1 - beta = 2**-s, d = 1 and it is a shift)
    u    = clamp(v - leak + c + I, -2**30, 2**30)     c = (1 - beta) * v_leak in v's unit
    lif: z = u > thr; v' = vr where z else u (zero), v' = u - vr * z (subtract; vr = thr)
    li:  v' = u; y = requant(u, m, k, lo, hi) per neuron (int8 at the output's exp)

v is int32. The clamp never acts when the leak bounds v (the backends may drop it then; see
`state_bound`); it makes a non-leaking integrator (beta = 1) saturate instead of wrapping.
"""

import numpy as np

from lbc.ir.ops.base import op, same_infer
from lbc.ir.quant import requant

U_LIMIT = 2**30
NEURON = {"beta": (1.0,), "gain": (1.0,), "v_leak": (0.0,)}
NEURON_INT = {"d": (0,), "s": 0, "c": (0,)}


def _vec(node, key, n):
    return np.broadcast_to(np.asarray(node.attr(key), dtype=np.float64), (n,))


def _ivec(node, key, n):
    return np.broadcast_to(np.asarray(node.attr(key), dtype=np.int64), (n,))


def _flat(a):
    return a.reshape(a.shape[0], -1)


def _state_infer(node, shapes, graph):
    if tuple(shapes[0]) != tuple(shapes[1]):
        raise ValueError(f"{node.op} {node.name}: input {tuple(shapes[0])} and state {tuple(shapes[1])} differ")
    return [tuple(shapes[0]), tuple(shapes[1])]


def _float_u(node, a):
    x, v = _flat(a[0].astype(np.float64)), _flat(a[1].astype(np.float64))
    n = x.shape[1]
    beta = _vec(node, "beta", n)
    return beta * v + (1 - beta) * _vec(node, "v_leak", n) + _vec(node, "gain", n) * x


def int_u(node, a):
    """The integer membrane update shared by lif and li (see the module doc)."""
    x, v = _flat(a[0].astype(np.int64)), _flat(a[1].astype(np.int64))
    n = x.shape[1]
    d, s, c = _ivec(node, "d", n), int(node.attr("s")), _ivec(node, "c", n)
    leak = (v * d + (1 << (s - 1))) >> s if s > 0 else v * d
    return np.clip(v - leak + c + x, -U_LIMIT, U_LIMIT)


@op("lif", (2, 2), {**NEURON, "threshold": (1.0,), "v_reset": (0.0,), "reset": "zero", **NEURON_INT,
                    "thr": (0,), "vr": (0,)},
    int_attrs=tuple(NEURON_INT) + ("thr", "vr"),
    doc="leaky integrate-and-fire: inputs (current, state v), outputs (spikes, next v)")
class Lif:
    infer = staticmethod(_state_infer)

    @staticmethod
    def float_fn(node, a):
        u = _float_u(node, a)
        n = u.shape[1]
        thr = _vec(node, "threshold", n)
        z = u > thr
        v = np.where(z, _vec(node, "v_reset", n), u) if node.attr("reset") == "zero" else u - thr * z
        return [z.astype(np.float32).reshape(a[0].shape), v.astype(np.float32).reshape(a[1].shape)]

    @staticmethod
    def int_fn(node, a):
        u = int_u(node, a)
        n = u.shape[1]
        z = u > _ivec(node, "thr", n)
        vr = _ivec(node, "vr", n)
        v = np.where(z, vr, u) if node.attr("reset") == "zero" else u - vr * z
        return [z.astype(np.int8).reshape(a[0].shape), v.astype(np.int32).reshape(a[1].shape)]


@op("li", (2, 2), {**NEURON, **NEURON_INT, "m": (1,), "k": (0,), "lo": -128, "hi": 127},
    int_attrs=tuple(NEURON_INT) + ("m", "k", "lo", "hi"),
    doc="leaky integrator (beta = 1: integrator): inputs (current, state v), outputs (v as int8, next v)")
class Li:
    infer = staticmethod(_state_infer)

    @staticmethod
    def float_fn(node, a):
        u = _float_u(node, a)
        return [u.astype(np.float32).reshape(a[0].shape), u.astype(np.float32).reshape(a[1].shape)]

    @staticmethod
    def int_fn(node, a):
        u = int_u(node, a)
        y = requant(u, node.attr("m"), node.attr("k"), node.attr("lo"), node.attr("hi"), -1)
        return [y.reshape(a[0].shape), u.astype(np.int32).reshape(a[1].shape)]


@op("threshold", (1, 1), {"threshold": (0.0,), "thr": (0,)}, int_attrs=("thr",),
    doc="spikes: x > threshold (strict), one threshold per element or one for all")
class Threshold:
    infer = staticmethod(same_infer)

    @staticmethod
    def float_fn(node, a):
        x = _flat(a[0].astype(np.float64))
        return [(x > _vec(node, "threshold", x.shape[1])).astype(np.float32).reshape(a[0].shape)]

    @staticmethod
    def int_fn(node, a):
        x = _flat(a[0].astype(np.int64))
        return [(x > _ivec(node, "thr", x.shape[1])).astype(np.int8).reshape(a[0].shape)]


def state_bound(node, in_bound):
    """A bound on |v| for a lif/li node whose integer input satisfies |I| <= in_bound, or None when
    the leak does not bound it (beta = 1: the clamp of the update can act)."""
    d = np.asarray(node.attr("d"), dtype=np.int64)
    s = int(node.attr("s"))
    if d.size == 0 or d.min() <= 0:
        return None
    c = np.abs(np.asarray(node.attr("c"), dtype=np.int64)).max(initial=0)
    extra = [np.abs(np.asarray(node.attr(k), dtype=np.int64)).max(initial=0) for k in ("thr", "vr")
             if k in node.attrs]
    # |v - leak| <= |v| (1 - d/2^s) + 1 and the fixed point of |v| <= |v| (1 - d/2^s) + 1 + |c| + B
    fixed = (int(in_bound) + int(c) + 2) * (1 << s) // int(d.min()) + 1
    return max([fixed] + [int(e) for e in extra])
