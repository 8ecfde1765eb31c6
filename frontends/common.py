"""What the PyTorch and Keras frontends share: a graph builder that infers shapes with the op table,
the all-at-once report of unsupported layers, and the backward spreading of activation-exponent
hints (from QAT quantizers) onto the layer that really produces the quantised tensor."""

import numpy as np

from lbc.errors import ModelError, Problems, UnsupportedOpError
from lbc.ir.dtypes import F32
from lbc.ir.graph import Graph, Node, TensorType
from lbc.ir.ops import OPS


class GraphBuilder:
    """Appends nodes to a float graph, inferring each output shape with the op table.

    `where` names the model in error messages (a path or a class name)."""

    def __init__(self, name, where):
        self.g = Graph(name, [], [], [], {})
        self.where = where

    def add_input(self, name, shape):
        self.g.inputs.append(name)
        self.g.types[name] = TensorType(F32, tuple(int(d) for d in shape))
        return name

    def const(self, base, array):
        name = self.g.fresh_name(base)
        self.g.add_const(name, np.asarray(array, dtype=np.float32), F32)
        return name

    def shape(self, t):
        return tuple(self.g.types[t].shape)

    def emit(self, op, node_name, inputs, output=None, attrs=None, dtype=F32):
        """Append one node; returns its output tensor name (fresh from node_name when not given)."""
        if output is None or output in self.g.types:
            output = self.g.fresh_name(output or node_name)
        n = Node(op, node_name, list(inputs), [output], dict(attrs or {}))
        try:
            (shape,) = OPS[op].infer(n, [self.g.types[i].shape for i in n.inputs], self.g)
        except ValueError as e:
            raise ModelError(f"{self.where}: layer {node_name!r}: {e}") from None
        self.g.types[output] = TensorType(dtype, tuple(int(s) for s in shape))
        self.g.nodes.append(n)
        return output

    def finish(self, outputs, exp_hints=None):
        self.g.outputs = list(outputs)
        if exp_hints:
            self.g.meta["exp_hints"] = dict(sorted(spread_hints(self.g, exp_hints).items()))
        return self.g.prune()


def report_unsupported(where, unsupported, what="layers", other=()):
    """Raise one UnsupportedOpError naming every problem: each unsupported kind once with its count
    and first few layer names (the same `Problems` format as the ONNX frontend), then `other`
    problems that are not per layer (inputs).

    `unsupported` maps a reason ("Conv3D", "MaxPool2d with ceil_mode=True") to layer names."""
    problems = Problems(what.removesuffix("s"))
    for why, names in sorted(unsupported.items()):
        for name in names:
            problems.add(why, name)
    for line in other:
        problems.add(line)
    problems.raise_if_any(f"{where}: cannot import", UnsupportedOpError)


# Ops whose integer output keeps the input's exponent (the quantize pass gives them the input exp).
SAME_EXP = {"relu", "maxpool", "reshape", "transpose", "clip", "leaky_relu", "pad"}


def spread_hints(g, hints):
    """Make exp hints survive the passes. The quantize pass gives a scale-keeping op (reshape, relu,
    max-pool, ...) the exponent of its input, and fuse-activation replaces a layer's output by its
    relu's output, so a hint only takes effect on a dense/conv output. Hence each hint is copied
    forward onto the outputs of scale-keeping ops it feeds, and backward onto the input of the
    scale-keeping op that produced it while that input feeds nothing else (a quantizer written after
    `conv -> relu -> maxpool` sets the exponent of the conv output). Returns the new hint map."""
    hints = dict(hints)
    prod = g.producers()
    users = g.consumers()
    changed = True
    while changed:
        changed = False
        for t, e in list(hints.items()):
            for c in users.get(t, []):
                if c.op in SAME_EXP and c.inputs[0] == t and c.outputs[0] not in hints:
                    hints[c.outputs[0]] = e
                    changed = True
            p = prod.get(t)
            if p is None or p.op not in SAME_EXP:
                continue
            src = p.inputs[0]
            if src in hints or g.is_const(src) or len(users.get(src, [])) != 1 or src in g.outputs:
                continue
            hints[src] = e
            changed = True
    return hints


# Largest activation tensor lbc accepts, in elements per sample: 16 Mi int8 values is far beyond any
# target (the biggest has kilobytes), yet keeps the reference interpreter's float work bounded.
MAX_TENSOR_ELEMENTS = 1 << 24


def check_graph(g, where):
    """Raise one ModelError listing every reason an imported float graph cannot be compiled: no
    outputs, constants that are not finite numbers, empty or oversized tensors. The op table's shape
    rules have already checked each node's own attributes."""
    problems = []
    if not g.outputs:
        problems.append("the graph has no outputs")
    # weights and biases must be finite; other constants may hold +-inf (attention masks) but never NaN
    weights = {n.inputs[i] for n in g.nodes for i in OPS[n.op].weights if i < len(n.inputs)}
    bad = [n for n, a in g.consts.items() if a.dtype.kind in "fc" and a.size
           and not (np.isfinite(a).all() if n in weights else not np.isnan(a).any())]
    if bad:
        problems.append(f"weights with NaN or infinite values, or constants with NaN: {_names(bad)} (check the "
                        f"training run)")
    empty = [n for n in weights if any(int(d) <= 0 for d in g.types[n].shape)]  # (empty slices are fine)
    if empty:
        problems.append(f"weights with a zero-size dimension (a layer of width 0): {_names(sorted(empty))}")
    huge = [n for n, t in g.types.items() if n not in g.consts and not any(int(d) <= 0 for d in t.shape)
            and int(np.prod(t.shape[1:], dtype=object)) > MAX_TENSOR_ELEMENTS]
    if huge:
        problems.append(f"tensors of more than {MAX_TENSOR_ELEMENTS} elements per sample: {_names(huge)}")
    if problems:
        raise ModelError(f"{where}: " + "; ".join(problems))
    return g


def _names(names, limit=8):
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
