"""Whole models on the NES target under sim65: outputs identical to the reference interpreter on at
least 100 inputs per weight dtype, for both kernels, and for graphs with signed hidden layers, a
standalone ReLU, a Flatten and an ArgMax output."""

import numpy as np
import pytest
from onnx import helper

from lbc.driver import compile_model, run_compiled
from lbc.ir.interpreter import run
from lbc.ir.quant import quantize_input
from nes_util import need_cc65
from onnx_models import make_model, mlp, rng, save

pytestmark = need_cc65


def assert_matches(c, x):
    _, yq, stats = run_compiled(c.outdir, x, raw=True)
    ref = run(c.graph, quantize_input(x, c.graph.types[c.graph.inputs[0]].exp))[0]
    np.testing.assert_array_equal(yq.reshape(ref.shape), ref)
    assert stats["cycles_min"] > 0 and len(stats["cycles"]) == len(x)
    return stats


@pytest.mark.parametrize("q", ["ternary", "pentary", "int2", "int4"])
def test_digits_every_dtype_matches_interpreter(tmp_path, digits, q):
    c = compile_model(digits["model"], tmp_path / "out", "nes", q, digits["calib_path"])
    x = np.concatenate([digits["x"][:100], digits["calib"][:28]])
    assert len(x) >= 100
    stats = assert_matches(c, x)
    assert (c.outdir / "model.nes").stat().st_size == 16 + 32768 + 8192
    if q == "ternary":  # all layers fit unrolled code: well under two NTSC frames
        assert stats["cycles_max"] < 2 * 29780


@pytest.mark.parametrize("q", ["ternary", "pentary", "int2", "int4"])
def test_digits_table_kernel_every_dtype(tmp_path, digits, q):
    """The partial-sum table kernel on every layer, 100+ inputs per weight dtype."""
    c = compile_model(digits["model"], tmp_path / "out", "nes", q, digits["calib_path"],
                      target_options={"kernel": "table"})
    assert {r["kernel"] for r in c.report["emit"]["layers"]} == {"table"}
    x = np.concatenate([digits["x"][:100], digits["calib"][:8]])
    stats = assert_matches(c, x)
    assert stats["cycles_max"] < {"int4": 210_000, "pentary": 170_000}.get(q, 125_000)


@pytest.mark.parametrize("kernel", ["loop", "unrolled"])
def test_digits_forced_kernel(tmp_path, digits, kernel):
    c = compile_model(digits["model"], tmp_path / "out", "nes", "ternary", digits["calib_path"],
                      target_options={"kernel": kernel})
    assert {r["kernel"] for r in c.report["emit"]["layers"]} == {kernel}
    assert_matches(c, digits["x"][:100])


def test_signed_hidden_layers_relu_flatten_argmax(tmp_path):
    r = rng(3)
    f = np.float32
    inits = [("w0", (r.standard_normal((16, 12)) * 0.4).astype(f)), ("b0", (r.standard_normal(12) * 0.1).astype(f)),
             ("w1", (r.standard_normal((12, 8)) * 0.4).astype(f)), ("b1", (r.standard_normal(8) * 0.1).astype(f)),
             ("w2", (r.standard_normal((8, 5)) * 0.4).astype(f)), ("b2", (r.standard_normal(5) * 0.1).astype(f))]
    nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1),
             helper.make_node("Relu", ["f"], ["fr"]),
             helper.make_node("Gemm", ["fr", "w0", "b0"], ["h0"]),          # signed hidden layer (no ReLU)
             helper.make_node("Gemm", ["h0", "w1", "b1"], ["h1"]),
             helper.make_node("Relu", ["h1"], ["h1r"]),
             helper.make_node("Gemm", ["h1r", "w2", "b2"], ["y"]),
             helper.make_node("ArgMax", ["y"], ["idx"], axis=1, keepdims=0)]
    model = save(make_model(nodes, [("x", ["N", 1, 4, 4])], [("idx", ["N"])], inits), tmp_path / "m.onnx")
    calib = (r.random((64, 1, 4, 4)) * 2 - 1).astype(f)
    np.save(tmp_path / "calib.npy", calib)
    for q, kernel in (("ternary", "auto"), ("int4", "auto"), ("pentary", "table"), ("int4", "table")):
        c = compile_model(model, tmp_path / f"out_{q}_{kernel}", "nes", q, tmp_path / "calib.npy",
                          target_options={"kernel": kernel})
        assert {n.op for n in c.graph.nodes} >= {"reshape", "relu", "dense", "argmax"}
        x = (rng(5).random((100, 1, 4, 4)) * 2.4 - 1.2).astype(f)
        assert_matches(c, x)


def test_random_mlp_without_relu(tmp_path):
    model = save(mlp((20, 16, 16, 6), seed=4, relu=False), tmp_path / "m.onnx")
    np.save(tmp_path / "calib.npy", (rng(1).random((64, 20)) * 2 - 1).astype(np.float32))
    c = compile_model(model, tmp_path / "out", "nes", "pentary", tmp_path / "calib.npy")
    assert_matches(c, (rng(2).random((100, 20)) * 2 - 1).astype(np.float32))
