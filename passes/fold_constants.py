"""fold-constants: evaluate nodes whose inputs are all constants, and merge a constant add or
multiply that directly follows a dense/conv into that layer's bias and weights.

Expects a float graph. Guarantees the same float function with fewer nodes."""

from dataclasses import dataclass

import numpy as np

from lbc.ir.dtypes import F32
from lbc.ir.interpreter import run as interpret
from lbc.ir.graph import Graph


def _channel_vector(c, out_shape, axis):
    """A constant broadcast against a layer output, reduced to one value per channel (or None)."""
    c = np.asarray(c, dtype=np.float64)
    if c.size == 1:
        return np.full(out_shape[axis], float(c.reshape(())))
    if c.ndim > len(out_shape):
        return None
    full = (1,) * (len(out_shape) - c.ndim) + c.shape
    if all(d == 1 for i, d in enumerate(full) if i != axis) and full[axis] == out_shape[axis]:
        return c.reshape(-1)
    return None


@dataclass(frozen=True)
class FoldConstants:
    def run(self, graph, ctx):
        g = graph.copy()
        changed = True
        while changed:
            changed = self._evaluate(g) or self._merge(g)
        return g.prune()

    @staticmethod
    def _evaluate(g):
        for n in g.nodes:
            if n.inputs and all(g.is_const(i) for i in n.inputs):
                sub = Graph("fold", [], list(n.outputs), [n], g.types, g.consts)
                for name, val in zip(n.outputs, interpret(sub, {})):
                    g.add_const(name, val, g.types[name].dtype)
                g.nodes.remove(n)
                return True
        return False

    @staticmethod
    def _merge(g):
        users = g.consumers()
        prod = g.producers()
        for n in g.nodes:
            if n.op not in ("add", "mul") or not g.is_const(n.inputs[1]):
                continue
            p = prod.get(n.inputs[0])
            if p is None or p.op not in ("dense", "conv2d") or p.attr("act") != "none":
                continue
            if len(users[p.outputs[0]]) != 1 or p.outputs[0] in g.outputs:
                continue
            axis = 1 if p.op == "conv2d" else -1
            out_shape = g.types[p.outputs[0]].shape
            vec = _channel_vector(g.consts[n.inputs[1]], out_shape, axis % len(out_shape))
            if vec is None or np.broadcast_shapes(g.consts[n.inputs[1]].shape, out_shape) != tuple(out_shape):
                continue
            w = g.consts[p.inputs[1]].astype(np.float64)
            b = g.consts[p.inputs[2]].astype(np.float64) if len(p.inputs) > 2 else np.zeros(w.shape[0])
            if n.op == "add":
                b = b + vec
            else:
                w = w * vec.reshape((-1,) + (1,) * (w.ndim - 1))
                b = b * vec
            wn = g.add_const(g.fresh_name(p.inputs[1]), w, F32)
            bn = g.add_const(g.fresh_name(f"{p.name}.bias"), b, F32)
            p.inputs = [p.inputs[0], wn, bn]
            g.types[n.outputs[0]] = g.types[p.outputs[0]]
            del g.types[p.outputs[0]]
            p.outputs = [n.outputs[0]]
            g.nodes.remove(n)
            return True
        return False


PASS = FoldConstants
