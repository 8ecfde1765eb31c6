"""Graph, nodes and tensor types.

A graph is a list of nodes in topological order over named tensors. Every tensor has a type
(`TensorType`); constants (weights, biases) live in `Graph.consts` as read-only numpy arrays.
Activation tensors of a quantized graph carry `exp`: their real value is `q * 2**-exp`.

State: `Graph.states` declares the tensors that persist from one time step to the next (a membrane
potential, a hidden state). Each has a type (in `types`, leading batch dimension like an
activation), an initial value and the name of the tensor computed in the step that becomes its value
for the next step. A state is not an input: nodes read it like any tensor (its value at the start of
the step), exactly one node computes its next value. `lbc.ir.interpreter.step` runs one time step;
a reset sets every state back to its initial value.
"""

from dataclasses import dataclass, field, replace

import numpy as np

from lbc.ir.dtypes import DType


@dataclass(frozen=True)
class TensorType:
    dtype: DType
    shape: tuple
    exp: int | None = None  # power-of-two scale exponent of an integer activation: real = q * 2**-exp

    def with_(self, **kw):
        return replace(self, **kw)

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass
class Node:
    op: str
    name: str
    inputs: list
    outputs: list
    attrs: dict = field(default_factory=dict)

    def attr(self, key):
        from lbc.ir.ops import OPS
        return self.attrs.get(key, OPS[self.op].attrs.get(key))


@dataclass(frozen=True)
class State:
    init: np.ndarray  # initial value, shape = the state's type shape without the batch dimension
    next: str  # the tensor whose value at the end of a step is the state's value in the next step


@dataclass
class Graph:
    name: str
    inputs: list
    outputs: list
    nodes: list
    types: dict
    consts: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    states: dict = field(default_factory=dict)  # state tensor -> State (see the module doc)

    def copy(self):
        return Graph(self.name, list(self.inputs), list(self.outputs),
                     [Node(n.op, n.name, list(n.inputs), list(n.outputs), dict(n.attrs)) for n in self.nodes],
                     dict(self.types), dict(self.consts), dict(self.meta), dict(self.states))

    def add_state(self, name, ttype, init, next_name):
        """Declare state tensor `name` of type `ttype` (batch dimension first) with initial value
        `init` (shape without the batch dimension) whose next value is tensor `next_name`."""
        arr = np.array(np.broadcast_to(init, ttype.shape[1:]), dtype=ttype.dtype.numpy)
        arr.setflags(write=False)
        self.types[name] = ttype
        self.states[name] = State(arr, next_name)
        return name

    @property
    def stateful(self):
        return bool(self.states)

    def add_const(self, name, array, dt):
        arr = np.array(array, dtype=dt.numpy)
        arr.setflags(write=False)
        self.consts[name] = arr
        self.types[name] = TensorType(dt, tuple(int(d) for d in arr.shape))
        return name

    def is_const(self, name):
        return name in self.consts

    def producers(self):
        return {o: n for n in self.nodes for o in n.outputs}

    def consumers(self):
        users = {}
        for n in self.nodes:
            for i in n.inputs:
                users.setdefault(i, []).append(n)
        for o in self.outputs:
            users.setdefault(o, [])
        return users

    def fresh_name(self, base):
        taken = set(self.types) | {n.name for n in self.nodes}
        if base not in taken:
            return base
        i = 1
        while f"{base}_{i}" in taken:
            i += 1
        return f"{base}_{i}"

    def prune(self):
        """Drop nodes whose outputs nobody uses and constants no node reads (a state's next value
        counts as used)."""
        live = set(self.outputs) | {s.next for s in self.states.values()}
        kept = []
        for n in reversed(self.nodes):
            if any(o in live for o in n.outputs):
                kept.append(n)
                live.update(n.inputs)
        self.nodes = kept[::-1]
        used = live | set(self.inputs) | set(self.states)
        for name in list(self.types):
            if name not in used:
                del self.types[name]
                self.consts.pop(name, None)
        return self

    def activation_tensors(self):
        """Non-constant tensors in first-definition order (graph inputs first, then states)."""
        seen = dict.fromkeys(list(self.inputs) + list(self.states))  # a dict: ordered, O(1) membership
        for n in self.nodes:
            seen.update(dict.fromkeys(n.outputs))
        return list(seen)
