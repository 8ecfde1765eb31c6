"""Graph, nodes and tensor types.

A graph is a list of nodes in topological order over named tensors. Every tensor has a type
(`TensorType`); constants (weights, biases) live in `Graph.consts` as read-only numpy arrays.
Activation tensors of a quantized graph carry `exp`: their real value is `q * 2**-exp`.
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


@dataclass
class Graph:
    name: str
    inputs: list
    outputs: list
    nodes: list
    types: dict
    consts: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def copy(self):
        return Graph(self.name, list(self.inputs), list(self.outputs),
                     [Node(n.op, n.name, list(n.inputs), list(n.outputs), dict(n.attrs)) for n in self.nodes],
                     dict(self.types), dict(self.consts), dict(self.meta))

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
        """Drop nodes whose outputs nobody uses and constants no node reads."""
        live = set(self.outputs)
        kept = []
        for n in reversed(self.nodes):
            if any(o in live for o in n.outputs):
                kept.append(n)
                live.update(n.inputs)
        self.nodes = kept[::-1]
        used = live | set(self.inputs)
        for name in list(self.types):
            if name not in used:
                del self.types[name]
                self.consts.pop(name, None)
        return self

    def activation_tensors(self):
        """Non-constant tensors in first-definition order (graph inputs first)."""
        seen = dict.fromkeys(self.inputs)
        for n in self.nodes:
            seen.update(dict.fromkeys(n.outputs))
        return list(seen)
