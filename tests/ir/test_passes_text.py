"""Passes keep the float function, the verifier holds after every pass, and the text IR round-trips."""

import numpy as np
import pytest

from lbc.frontends.onnx import load_onnx
from lbc.ir.interpreter import run
from lbc.ir.text import parse_graph, print_graph
from lbc.ir.verify import VerifyError, verify
from lbc.passes import PassContext, run_pipeline
from onnx_models import rng, save, small_cnn

QUANTS = ["int8", "int4", "int2", "ternary", "pentary"]
FLOAT_PASSES = ["fold-constants", "fold-batchnorm", "fuse-activation"]


def pipeline(q):
    return FLOAT_PASSES + [f"quantize-{q}", "analyze-sparsity", "plan-memory"]


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    return load_onnx(save(small_cnn(), tmp_path_factory.mktemp("m") / "cnn.onnx"))


def test_float_passes_keep_the_function(cnn):
    x = rng(2).random((8, 1, 8, 8)).astype(np.float32)
    g = run_pipeline(cnn, FLOAT_PASSES, PassContext(), verify=True)
    assert not any(n.op == "batchnorm" for n in g.nodes)
    assert any(n.attr("act") == "clip" for n in g.nodes if n.op == "conv2d")
    np.testing.assert_allclose(run(g, x)[0], run(cnn, x)[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("q", QUANTS)
def test_text_ir_round_trips(digits, cnn, q):
    from lbc.frontends import load_model
    for fg, calib in ((load_model(digits["model"]), digits["calib"]),
                      (cnn, rng(4).random((32, 1, 8, 8)).astype(np.float32))):
        g = run_pipeline(fg, pipeline(q), PassContext(calibration=calib), verify=True)
        text = print_graph(g)
        back = parse_graph(text)
        assert print_graph(back) == text
        verify(back)
        xq = rng(5).integers(-128, 128, size=(16,) + g.types[g.inputs[0]].shape[1:]).astype(np.int8)
        np.testing.assert_array_equal(run(back, xq)[0], run(g, xq)[0])
    ftext = print_graph(fg)
    assert print_graph(parse_graph(ftext)) == ftext  # float graphs too (shortest float32 decimals)


def test_quantized_accuracy_close_to_float(digits):
    from lbc.frontends import load_model
    from lbc.ir.quant import quantize_input
    fg = load_model(digits["model"])
    facc = np.mean(run(fg, digits["x"])[0].argmax(1) == digits["y"])
    g = run_pipeline(fg, pipeline("int8"), PassContext(calibration=digits["calib"]), verify=True)
    qacc = np.mean(run(g, quantize_input(digits["x"], g.meta["input_exp"]))[0].argmax(1) == digits["y"])
    assert facc > 0.93 and qacc >= facc - 0.02


def test_verifier_catches_accumulator_overflow(digits):
    from lbc.frontends import load_model
    g = run_pipeline(load_model(digits["model"]), pipeline("int8"), PassContext(calibration=digits["calib"]))
    n = g.nodes[0]
    n.attrs["m"] = (2**20,)
    with pytest.raises(VerifyError, match="accumulator bound"):
        verify(g)


def test_memory_plan_reuses_dead_buffers(digits):
    from lbc.frontends import load_model
    g = run_pipeline(load_model(digits["model"]), pipeline("int8"), PassContext(calibration=digits["calib"]))
    plan = g.meta["memory_plan"]
    # input 64 + h0 64 cannot overlap; h1 (32) reuses the input's bytes; logits (10) reuse h0's
    assert plan["arena_bytes"] == 128


def test_missing_calibration_warns(digits):
    from lbc.frontends import load_model
    ctx = PassContext()
    run_pipeline(load_model(digits["model"]), pipeline("ternary"), ctx)
    assert any("no --calibration" in w for w in ctx.warnings)
