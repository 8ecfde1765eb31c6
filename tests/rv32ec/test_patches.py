"""Patch-based execution on the RV32EC target: a CNN whose plain plan misses the RAM budget runs tile by
tile (the planner's choice), bit-exact with the interpreter, within the budget including the stack."""

import numpy as np
import pytest
from onnx import helper

from conftest import need_toolchain
from lbc.driver import compile_model, read_manifest
from lbc.ir import patch as P
from lbc.ir.interpreter import run as interpret
from lbc.ir.quant import quantize_input
from onnx_models import make_model, rng, save


def big_cnn(path, side=20):
    r, f, n = rng(31), np.float32, helper.make_node
    q = side // 4
    inits = [("w0", (r.standard_normal((8, 1, 3, 3)) * .5).astype(f)), ("b0", (r.standard_normal(8) * .1).astype(f)),
             ("w1", (r.standard_normal((8, 8, 3, 3)) * .2).astype(f)), ("b1", (r.standard_normal(8) * .1).astype(f)),
             ("fw", (r.standard_normal((8 * q * q, 10)) * .05).astype(f))]
    nodes = [n("Conv", ["x", "w0", "b0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
             n("Relu", ["c0"], ["r0"], name="relu0"),
             n("MaxPool", ["r0"], ["p0"], name="pool0", kernel_shape=[2, 2], strides=[2, 2]),
             n("Conv", ["p0", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             n("Relu", ["c1"], ["r1"], name="relu1"),
             n("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
             n("Flatten", ["p1"], ["fl"], name="flat"),
             n("MatMul", ["fl", "fw"], ["y"], name="fc")]
    return save(make_model(nodes, [("x", ["N", 1, side, side])], [("y", ["N", 10])], inits, name="big_cnn"), path)


@pytest.mark.parametrize("q,ram", [("int4", 2048), ("ternary", 1800)])
def test_patched_cnn_bit_exact_within_ram(tmp_path, q, ram):
    need_toolchain()
    model = big_cnn(tmp_path / "m.onnx")
    x = rng(32).standard_normal((60, 1, 20, 20)).astype(np.float32)
    c = compile_model(model, tmp_path / "out", "rv32ec", q, x[:32], target_options={"ram_bytes": ram})
    mp = c.graph.meta["memory_plan"]
    assert mp["patches"], "the plain plan (conv0 output 3200 B) cannot fit: the planner must patch"
    assert mp["tried"][0]["arena_bytes"] > mp["budget_bytes"] >= mp["arena_bytes"]
    xq = quantize_input(x, c.graph.types[c.graph.inputs[0]].exp)
    ref = interpret(c.graph, xq)[0]
    np.testing.assert_array_equal(P.run(c.graph, xq)[0], ref)
    y, stats = c.target.run(c.outdir, read_manifest(c.outdir), xq, count=2)
    np.testing.assert_array_equal(y, ref)
    b = c.report["build"]
    assert b["ram_static"] + stats["stack_peak_bytes"] <= ram


def test_patched_strided_dilated_depthwise_chain(tmp_path):
    """The interpreter test's chain (padded max pool, strided dilated conv, depthwise conv, padded
    average pool) patched on a small RAM budget: firmware == interpreter."""
    import importlib.util
    from pathlib import Path
    need_toolchain()
    spec = importlib.util.spec_from_file_location("patch_chain", Path(__file__).parent.parent / "ir" / "test_patch.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model = mod.chain_model(tmp_path / "chain.onnx")
    x = rng(33).standard_normal((60, 1, 13, 11)).astype(np.float32)
    c = compile_model(model, tmp_path / "out", "rv32ec", "int8", x[:32], target_options={"ram_bytes": 760})
    assert c.graph.meta["memory_plan"]["patches"]
    xq = quantize_input(x, c.graph.types[c.graph.inputs[0]].exp)
    y, _ = c.target.run(c.outdir, read_manifest(c.outdir), xq, count=1)
    np.testing.assert_array_equal(y, interpret(c.graph, xq)[0])
