"""The numpy reference interpreter. For integer nodes it *defines* lbc's integer semantics; every
backend is tested against it bit for bit."""

import numpy as np

from lbc.ir.ops import OPS


def is_integer_node(graph, node):
    """Whether `node` runs its integer form: it makes an integer activation, or a mask (bool) from
    integer operands. Layout ops and argmax are the same in both forms."""
    if OPS[node.op].layout or node.op == "argmax":
        return False
    out = graph.types[node.outputs[0]].dtype
    if out.name == "bool":
        return any(not graph.types[i].dtype.is_float and graph.types[i].dtype.name != "bool" for i in node.inputs)
    return not out.is_float


def bind_inputs(graph, x):
    """The graph's inputs by name from `x`: a dict name -> array, a list/tuple in `graph.inputs`
    order, or one array for a single-input graph."""
    if isinstance(x, dict):
        missing = [n for n in graph.inputs if n not in x]
        if missing:
            raise ValueError(f"no value for input(s) {', '.join(missing)}")
        return {n: x[n] for n in graph.inputs}
    if isinstance(x, (list, tuple)):
        if len(x) != len(graph.inputs):
            raise ValueError(f"{len(x)} arrays for {len(graph.inputs)} inputs")
        return dict(zip(graph.inputs, x))
    if len(graph.inputs) != 1:
        raise ValueError(f"the graph has {len(graph.inputs)} inputs ({', '.join(graph.inputs)}); pass a dict")
    return {graph.inputs[0]: x}


def run(graph, x, return_all=False):
    """Evaluate `graph` on a batch. `x` gives every input (see `bind_inputs`).

    Integer graphs take float inputs already quantised to int8; integer inputs (token ids) are
    integers in float and integer graphs alike. Returns the list of outputs in `graph.outputs`
    order (or every tensor by name with `return_all`)."""
    env = dict(graph.consts)
    env.update(bind_inputs(graph, x))
    for name in graph.inputs:
        t = graph.types[name]
        env[name] = np.asarray(env[name], dtype=t.dtype.numpy)
    for node in graph.nodes:
        d = OPS[node.op]
        args = [env[i] for i in node.inputs]
        integer = is_integer_node(graph, node)
        if integer and d.int_fn is None:
            raise ValueError(f"{node.op} node {node.name!r} has no integer form; quantisation should have removed it")
        fn = d.int_fn if integer else d.float_fn
        for name, val in zip(node.outputs, fn(node, args)):
            env[name] = val
    return env if return_all else [env[o] for o in graph.outputs]
