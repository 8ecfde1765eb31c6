"""Output ops: softmax (applied on the host after dequantisation) and argmax."""

import numpy as np

from lbc.ir.ops.base import as_f32, same_infer, op

@op("softmax", (1, 1), {"axis": -1}, doc="softmax; only at the output (quantised graphs apply it on the host)")
class Softmax:
    infer = staticmethod(same_infer)

    @staticmethod
    def float_fn(node, a):
        x = a[0].astype(np.float64)
        e = np.exp(x - x.max(axis=node.attr("axis"), keepdims=True))
        return [as_f32(e / e.sum(axis=node.attr("axis"), keepdims=True))]


@op("log_softmax", (1, 1), {"axis": -1}, doc="log(softmax(x)) = x - max - log(sum(exp(x - max))); float only")
class LogSoftmax:
    infer = staticmethod(same_infer)

    @staticmethod
    def float_fn(node, a):
        x = a[0].astype(np.float64)
        z = x - x.max(axis=node.attr("axis"), keepdims=True)
        return [as_f32(z - np.log(np.exp(z).sum(axis=node.attr("axis"), keepdims=True)))]


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
