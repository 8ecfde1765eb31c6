"""The numpy reference interpreter. For integer nodes it *defines* lbc's integer semantics; every
backend is tested against it bit for bit.

Time: a graph with states (`Graph.states`) is a step function. `step` consumes one time step of a
batch and returns the outputs and the next state; `reset_state` gives every state its initial value;
`run` on a stateful graph takes sequences [N, T, ...], starts every sample from the reset state and
returns outputs [N, T, ...] (the per-step outputs stacked on axis 1).
"""

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


def reset_state(graph, n):
    """The initial value of every state for a batch of n samples."""
    return {name: np.broadcast_to(s.init, (n,) + s.init.shape).astype(graph.types[name].dtype.numpy)
            for name, s in graph.states.items()}


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


def _env(graph, x):
    env = dict(graph.consts)
    env.update(bind_inputs(graph, x))
    for name in graph.inputs:
        t = graph.types[name]
        env[name] = np.asarray(env[name], dtype=t.dtype.numpy)
    return env


def _evaluate(graph, env):
    for node in graph.nodes:
        d = OPS[node.op]
        args = [env[i] for i in node.inputs]
        integer = is_integer_node(graph, node)
        if integer and d.int_fn is None:
            raise ValueError(f"{node.op} node {node.name!r} has no integer form; quantisation should have removed it")
        fn = d.int_fn if integer else d.float_fn
        for name, val in zip(node.outputs, fn(node, args)):
            env[name] = val
    return env


def step(graph, x, state, return_all=False):
    """One time step: `x` is a batch of one step's inputs (see `bind_inputs`), `state` the
    states' values (from `reset_state` or the previous step). Returns (outputs, next state), or
    (every tensor by name, next state) with `return_all`."""
    env = _env(graph, x)
    for name in graph.states:
        env[name] = np.asarray(state[name], dtype=graph.types[name].dtype.numpy)
    _evaluate(graph, env)
    nxt = {name: env[s.next].astype(graph.types[name].dtype.numpy) for name, s in graph.states.items()}
    return (env if return_all else [env[o] for o in graph.outputs]), nxt


def run(graph, x, return_all=False):
    """Evaluate `graph` on a batch. `x` gives every input (see `bind_inputs`).

    Integer graphs take float inputs already quantised to int8; integer inputs (token ids) are
    integers in float and integer graphs alike. Returns the list of outputs in `graph.outputs`
    order (or every tensor by name with `return_all`). A stateful graph takes sequences [N, T, ...]
    for every input (see the module doc); with `return_all` every tensor comes back stacked over
    time as [N, T, ...]."""
    if not graph.stateful:
        env = _evaluate(graph, _env(graph, x))
        return env if return_all else [env[o] for o in graph.outputs]
    seqs = bind_inputs(graph, x)
    first = np.asarray(next(iter(seqs.values())))
    if first.ndim < 2:
        raise ValueError(f"graph {graph.name!r} has state: its inputs are sequences [N, T, ...], got shape "
                         f"{first.shape}")
    n, steps = first.shape[:2]
    state = reset_state(graph, n)
    per_step = []
    for t in range(steps):
        env, state = step(graph, {k: np.asarray(v)[:, t] for k, v in seqs.items()}, state, return_all=True)
        per_step.append(env if return_all else {o: env[o] for o in graph.outputs})
    if return_all:
        names = [k for k in per_step[0] if k not in graph.consts] if steps else []
        return {**graph.consts, **{k: np.stack([e[k] for e in per_step], axis=1) for k in names}}
    return [np.stack([e[o] for e in per_step], axis=1) for o in graph.outputs]
