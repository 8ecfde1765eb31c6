"""Patch-based execution (lbc.ir.patch): running a chain of layers tile by tile gives exactly the plain
graph's outputs, for every tile size, on chains with padding, strides, dilation, max and average
pooling; the memory planner picks a patch plan only when the plain plan misses the budget."""

import numpy as np
import pytest
from onnx import helper

from lbc.driver import lower
from lbc.ir import patch as P
from lbc.ir.interpreter import run as interpret
from lbc.ir.quant import quantize_input
from lbc.passes import PassContext
from lbc.passes.plan_memory import PlanMemory
from onnx_models import make_model, rng, save


def chain_model(path):
    r, f, n = rng(21), np.float32, helper.make_node
    inits = [("w0", (r.standard_normal((4, 1, 3, 3)) * .5).astype(f)), ("b0", (r.standard_normal(4) * .1).astype(f)),
             ("w1", (r.standard_normal((6, 4, 3, 3)) * .3).astype(f)),
             ("w2", (r.standard_normal((6, 1, 3, 3)) * .5).astype(f)),
             ("fw", (r.standard_normal((24, 5)) * .1).astype(f))]
    nodes = [n("Conv", ["x", "w0", "b0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
             n("Relu", ["c0"], ["r0"], name="relu0"),
             n("MaxPool", ["r0"], ["p0"], name="pool0", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             n("Conv", ["p0", "w1"], ["c1"], name="conv1", pads=[2, 1, 2, 1], strides=[1, 2], dilations=[2, 1]),
             n("Relu", ["c1"], ["r1"], name="relu1"),
             n("Conv", ["r1", "w2"], ["c2"], name="dw", pads=[1, 1, 1, 1], group=6),
             n("AveragePool", ["c2"], ["p2"], name="pool2", kernel_shape=[3, 3], strides=[2, 1], pads=[1, 0, 1, 0],
               count_include_pad=1),
             n("Flatten", ["p2"], ["fl"], name="flat"),
             n("MatMul", ["fl", "fw"], ["y"], name="fc")]
    return save(make_model(nodes, [("x", ["N", 1, 13, 11])], [("y", ["N", 5])], inits, name="chain"), path)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    path = chain_model(tmp_path_factory.mktemp("patch") / "chain.onnx")
    x = rng(22).standard_normal((40, 1, 13, 11)).astype(np.float32)
    c = lower(path, "host", "int8", x[:32])
    return c.graph, quantize_input(x, c.graph.types[c.graph.inputs[0]].exp)


def test_every_stage_and_tile_is_exact(chain):
    g, xq = chain
    ref = interpret(g, xq, return_all=True)
    (ch,) = list(P.chains(g))
    assert [n.op for n in ch] == ["conv2d", "maxpool", "conv2d", "conv2d", "avgpool"]  # relus fused
    tried = 0
    for k in range(1, len(ch) + 1):
        nodes = ch[:k]
        _, _, oh, ow = g.types[nodes[-1].outputs[0]].shape
        for tile in [(1, 1), (2, 3), (oh, 1), (3, ow), (oh - 1 or 1, ow - 1 or 1)]:
            st = P.make_stage(g, nodes, tile)
            env = dict(g.consts)
            env[g.inputs[0]] = xq
            np.testing.assert_array_equal(P.run_stage(st, g, env), ref[st.output])
            tried += 1
    assert tried == 25


def test_patch_plan_chosen_only_when_needed(chain):
    g, xq = chain

    class Budget:
        inplace_ops = frozenset({"relu"})

        def __init__(self, b):
            self.b = b

        def arena_budget(self, graph):
            return self.b

    plain = PlanMemory().run(g, PassContext(target=Budget(10**6))).meta["memory_plan"]
    assert plain["patches"] == [] and plain["arena_bytes"] >= plain["lower_bound_bytes"]
    small = PlanMemory().run(g, PassContext(target=Budget(plain["arena_bytes"] - 100)))
    mp = small.meta["memory_plan"]
    assert mp["patches"] and mp["arena_bytes"] <= plain["arena_bytes"] - 100
    assert mp["tried"][0] == {"plan": "plain", "arena_bytes": plain["arena_bytes"]}
    np.testing.assert_array_equal(P.run(small, xq)[0], interpret(g, xq)[0])
