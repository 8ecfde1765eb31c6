"""fold-batchnorm: fold each batchnorm into the dense/conv that produces its input; failing that (a
batchnorm after an activation, Keras' Dense -> ReLU -> BN), into the dense or unpadded conv that
consumes its output (that layer's weights are scaled per input channel and the shift becomes bias);
a batchnorm with neither becomes a per-channel multiply and add.

Expects a float graph. Guarantees no batchnorm node remains."""

from dataclasses import dataclass

import numpy as np

from lbc.ir.dtypes import F32
from lbc.ir.graph import Node, TensorType


@dataclass(frozen=True)
class FoldBatchnorm:
    def run(self, graph, ctx):
        g = graph.copy()
        users = g.consumers()
        prod = g.producers()
        for n in [n for n in g.nodes if n.op == "batchnorm"]:
            s, b, mu, var = (g.consts[i].astype(np.float64) for i in n.inputs[1:5])
            scale = s / np.sqrt(var + n.attr("epsilon"))
            shift = b - mu * scale
            p = prod.get(n.inputs[0])
            foldable = (p is not None and p.op in ("dense", "conv2d") and p.attr("act") == "none"
                        and len(users[p.outputs[0]]) == 1 and p.outputs[0] not in g.outputs
                        and (p.op == "conv2d" or len(g.types[p.outputs[0]].shape) == 2))
            if foldable:
                w = g.consts[p.inputs[1]].astype(np.float64)
                bias = g.consts[p.inputs[2]].astype(np.float64) if len(p.inputs) > 2 else np.zeros(w.shape[0])
                w = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
                bias = bias * scale + shift
                wn = g.add_const(g.fresh_name(p.inputs[1]), w, F32)
                bn = g.add_const(g.fresh_name(f"{p.name}.bias"), bias, F32)
                p.inputs = [p.inputs[0], wn, bn]
                del g.types[p.outputs[0]]
                p.outputs = [n.outputs[0]]
                prod[n.outputs[0]] = p
                g.nodes.remove(n)
                continue
            if _fold_into_consumer(g, n, users, scale, shift):
                continue
            rank = len(g.types[n.inputs[0]].shape)
            shape = (-1,) + (1,) * (rank - 2)
            sc = g.add_const(g.fresh_name(f"{n.name}.scale"), scale.reshape(shape), F32)
            sh = g.add_const(g.fresh_name(f"{n.name}.shift"), shift.reshape(shape), F32)
            mid = g.fresh_name(f"{n.name}.scaled")
            g.types[mid] = TensorType(F32, g.types[n.outputs[0]].shape)
            i = g.nodes.index(n)
            g.nodes[i:i + 1] = [Node("mul", f"{n.name}.mul", [n.inputs[0], sc], [mid]),
                                Node("add", f"{n.name}.add", [mid, sh], list(n.outputs))]
        return g.prune()


PASS = FoldBatchnorm


def _fold_into_consumer(g, n, users, scale, shift):
    """next(bn(y)) = next(scale * y + shift): scale the next layer's weights per input channel and
    add its response to the shift to the bias. Needs the next layer to be the only reader, a dense
    on 2-d features or a conv without padding (padding would not be shifted)."""
    out = n.outputs[0]
    nxt = users.get(out, [])
    if out in g.outputs or len(nxt) != 1:
        return False
    c = nxt[0]
    rank = len(g.types[out].shape)
    if c.inputs[0] != out or c.op not in ("dense", "conv2d"):
        return False
    if c.op == "dense" and rank != 2 or c.op == "conv2d" and any(c.attr("pads")):
        return False
    w = g.consts[c.inputs[1]].astype(np.float64)
    bias = g.consts[c.inputs[2]].astype(np.float64) if len(c.inputs) > 2 else np.zeros(w.shape[0])
    if c.op == "dense":
        w2 = w * scale[None, :]
        b2 = bias + w @ shift
    else:
        groups, cg = c.attr("group"), w.shape[1]
        per_out = np.stack([np.arange(cg) + (m // (w.shape[0] // groups)) * cg for m in range(w.shape[0])])
        sc = scale[per_out][:, :, None, None]
        w2 = w * sc
        b2 = bias + (w * shift[per_out][:, :, None, None]).sum(axis=(1, 2, 3))
    wn = g.add_const(g.fresh_name(c.inputs[1]), w2, F32)
    bn = g.add_const(g.fresh_name(f"{c.name}.bias"), b2, F32)
    c.inputs = [n.inputs[0], wn, bn]
    del g.types[out]
    g.nodes.remove(n)
    return True

