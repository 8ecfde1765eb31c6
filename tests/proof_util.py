"""Helpers of the proof edge tests: integer dense layers with chosen weights, biases that put a neuron's
extreme sums on a rounding boundary (so an accumulator off by one changes the output), and both
extreme inputs of every neuron."""

import numpy as np

from lbc.ir.dtypes import I8, I32, QUANT_DTYPES
from lbc.ir.graph import Graph, Node, TensorType


def sensitive_neurons(w, k=8, xlo=-128, xhi=127, level=100, ds=(0, -1)):
    """Four neurons per weight row (two with ds=(0,)): the bias moves the row's largest (smallest) sum to output +level
    (-level), exactly at and just below a rounding step of (acc + 2**(k-1)) >> k. Returns (W, bias, m, k)."""
    W, B = [], []
    for row in np.asarray(w, np.int64):
        amax = int(np.sum(np.where(row > 0, row * xhi, row * xlo)))
        amin = int(np.sum(np.where(row > 0, row * xlo, row * xhi)))
        for a, t in ((amax, level), (amin, -level)):
            for d in ds:
                W.append(row)
                B.append((t << k) - (1 << (k - 1)) + d - a)
    n = len(W)
    return np.array(W), np.array(B, np.int64), np.ones(n, np.int64), np.full(n, k, np.int64)


def dense_graph(w, bias, m, k, quant, relu_input=False, lo=-128, hi=127, name="edge"):
    """x:i8[1,K] (exp 0) [-> relu] -> dense(w, bias, m, k, lo, hi) -> y:i8[1,N]."""
    w = np.asarray(w, np.int64)
    N, K = w.shape
    g = Graph(name, ["x"], ["y"], [], {"x": TensorType(I8, (1, K), 0)})
    g.add_const("w", w, QUANT_DTYPES[quant])
    g.add_const("b", bias, I32)
    src = "x"
    if relu_input:
        g.nodes.append(Node("relu", "relu_in", ["x"], ["r"]))
        g.types["r"] = TensorType(I8, (1, K), 0)
        src = "r"
    g.nodes.append(Node("dense", "fc", [src, "w", "b"], ["y"],
                        {"m": [int(v) for v in m], "k": [int(v) for v in k], "lo": lo, "hi": hi}))
    g.types["y"] = TensorType(I8, (1, N), 0)
    g.meta.update(quant=quant, input_exp=0, output_exps=[0])
    return g


def extreme_inputs(w, xlo=-128, xhi=127):
    """Every row's largest-sum and smallest-sum input (x = xhi where w > 0, xlo where w < 0, and the
    other way round), plus the all-min and all-max inputs: int8 [n, K]."""
    w = np.asarray(w, np.int64)
    xs = [np.full(w.shape[1], xlo), np.full(w.shape[1], xhi)]
    for row in w:
        xs += [np.where(row > 0, xhi, xlo), np.where(row > 0, xlo, xhi)]
    return np.unique(np.array(xs, np.int64), axis=0).astype(np.int8)
