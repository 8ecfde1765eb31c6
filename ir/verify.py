"""Structural and type checks of a graph; run after every pass in the tests."""

import numpy as np

from lbc.ir.interpreter import is_integer_node
from lbc.ir.ops import OPS


class VerifyError(Exception):
    pass


def verify(graph):
    """Raise VerifyError on the first inconsistency: undefined tensors, wrong arity or attributes,
    shapes that disagree with shape inference, non-constant weights, integer nodes without an
    integer form, or accumulators that could overflow 32 bits."""
    defined = set(graph.inputs) | set(graph.consts) | set(graph.states)
    for name in defined:
        if name not in graph.types:
            raise VerifyError(f"tensor {name!r} has no type")
    for name, arr in graph.consts.items():
        t = graph.types[name]
        if arr.flags.writeable:
            raise VerifyError(f"constant {name!r} is writeable")
        if tuple(arr.shape) != tuple(t.shape):
            raise VerifyError(f"constant {name!r} has shape {arr.shape}, type says {t.shape}")
        if not t.dtype.is_float and arr.size and (arr.min() < t.dtype.lo or arr.max() > t.dtype.hi):
            raise VerifyError(f"constant {name!r} has values outside {t.dtype.name}")
    names = set()
    for node in graph.nodes:
        if node.op not in OPS:
            raise VerifyError(f"node {node.name!r}: unknown op {node.op!r}")
        d = OPS[node.op]
        if node.name in names:
            raise VerifyError(f"duplicate node name {node.name!r}")
        names.add(node.name)
        lo, hi = d.arity
        if not lo <= len(node.inputs) <= hi:
            raise VerifyError(f"node {node.name!r}: {node.op} takes {lo}..{hi} inputs, has {len(node.inputs)}")
        for a in node.attrs:
            if a not in d.attrs:
                raise VerifyError(f"node {node.name!r}: {node.op} has no attribute {a!r}")
        if node.op == "table":  # what every target's lookup kernel assumes
            t = node.attrs.get("table", ())
            if len(t) != 256 or min(t) < -128 or max(t) > 127:
                raise VerifyError(f"node {node.name!r}: a table needs 256 int8 entries")
        for i in node.inputs:
            if i not in defined:
                raise VerifyError(f"node {node.name!r} reads {i!r} before it is defined")
        for pos in d.weights:
            if pos < len(node.inputs) and node.inputs[pos] not in graph.consts:
                raise VerifyError(f"node {node.name!r}: input {pos} must be a constant")
        shapes = [graph.types[i].shape for i in node.inputs]
        try:
            inferred = d.infer(node, shapes, graph)
        except ValueError as e:
            raise VerifyError(str(e)) from None
        for o, s in zip(node.outputs, inferred):
            if o not in graph.types:
                raise VerifyError(f"node {node.name!r}: output {o!r} has no type")
            if tuple(graph.types[o].shape) != tuple(s):
                raise VerifyError(f"node {node.name!r}: output {o!r} typed {graph.types[o].shape}, infers {s}")
            if o in defined:
                raise VerifyError(f"tensor {o!r} defined twice")
            defined.add(o)
        if is_integer_node(graph, node):
            if d.int_fn is None:
                raise VerifyError(f"node {node.name!r}: {node.op} has no integer form")
            _check_acc(graph, node)
    for o in graph.outputs:
        if o not in defined:
            raise VerifyError(f"graph output {o!r} is never defined")
    _check_states(graph, defined)
    return graph


def _check_states(graph, defined):
    """A state is not an input or a constant; its next value is computed by exactly one node, has
    the state's type, and no node reads the state after that node (backends update it in place)."""
    producers = graph.producers()
    for name, st in graph.states.items():
        t = graph.types[name]
        if name in graph.inputs or name in graph.consts:
            raise VerifyError(f"state {name!r} is also an input or a constant")
        if st.next not in defined or st.next not in producers:
            raise VerifyError(f"state {name!r}: its next value {st.next!r} is not computed by a node")
        nt = graph.types[st.next]
        if (nt.dtype, tuple(nt.shape), nt.exp) != (t.dtype, tuple(t.shape), t.exp):
            raise VerifyError(f"state {name!r} is {t}, its next value {st.next!r} is {nt}")
        if tuple(st.init.shape) != tuple(t.shape[1:]):
            raise VerifyError(f"state {name!r}: initial value has shape {st.init.shape}, type says {t.shape}")
        writer = graph.nodes.index(producers[st.next])
        late = [n.name for n in graph.nodes[writer + 1:] if name in n.inputs]
        if late:
            raise VerifyError(f"state {name!r} is read by {', '.join(late)} after its next value is computed")


def acc_bound(graph, node):
    """Largest |accumulator| per output channel (or one for the tensor) from the int8 value
    ranges, for the ops whose accumulator the quantize pass bounds; None for other ops."""
    if node.op in ("matmul", "reduce_sum", "reduce_mean"):
        shape = graph.types[node.inputs[0]].shape
        if node.op == "matmul":
            return np.array([128 * 128 * int(shape[-1])], dtype=np.int64)
        return np.array([128 * int(np.prod([shape[a] for a in node.attr("axes")]))], dtype=np.int64)
    if node.op not in ("dense", "conv2d"):
        return None
    w = graph.consts[node.inputs[1]].astype(np.int64)
    per_out = np.abs(w.reshape(w.shape[0], -1)).sum(axis=1) * 128
    if len(node.inputs) > 2:
        per_out = per_out + np.abs(graph.consts[node.inputs[2]].astype(np.int64))
    return per_out


def _check_acc(graph, node):
    """The quantize pass promises |acc| * m + round < 2**31; check it from the value ranges."""
    per_out = acc_bound(graph, node)
    if per_out is None:
        return
    m = np.broadcast_to(np.asarray(node.attr("m"), dtype=np.int64), per_out.shape)
    k = np.broadcast_to(np.asarray(node.attr("k"), dtype=np.int64), per_out.shape)
    worst = per_out * m + np.where(k > 0, 1 << np.maximum(k - 1, 0), 0)
    if worst.max(initial=0) >= 2**31:
        raise VerifyError(f"node {node.name!r}: accumulator bound {int(worst.max())} does not fit 32 bits")
