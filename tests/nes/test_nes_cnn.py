"""CNN ops on the NES target under sim65, bit for bit against the reference interpreter: convolution
(regular, depthwise, pointwise, strided, padded, dilated), max/average/global average pooling, residual
add, concat with rescaling shifts, sigmoid/tanh tables, flatten -> dense on the model input; extreme
inputs (every byte at its minimum or maximum) and channels at the 16-bit chain bound."""

import numpy as np
import pytest
from onnx import helper

from lbc.driver import compile_model, run_compiled
from lbc.ir.interpreter import run
from lbc.ir.quant import quantize_input
from cli_util import assert_user_error, lbc
from nes_util import need_cc65
from onnx_models import broadcast_add, make_model, residual_cnn, residual_mlp, rng, save

pytestmark = need_cc65
f32 = np.float32


def extremes(shape, n=100, seed=2, lo=-1.5, hi=1.5):
    """n random inputs plus the corners: all minimum, all maximum, alternating, zero."""
    r = rng(seed)
    x = r.uniform(lo, hi, (n,) + shape).astype(f32)
    alt = np.where(np.indices(shape).sum(0) % 2 == 0, hi * 4, lo * 4).astype(f32)
    corners = np.stack([np.full(shape, lo * 4, f32), np.full(shape, hi * 4, f32), alt, -alt, np.zeros(shape, f32)])
    return np.concatenate([x, corners])


def assert_matches(c, x):
    _, yq, stats = run_compiled(c.outdir, x, raw=True)
    ref = run(c.graph, quantize_input(x, c.graph.types[c.graph.inputs[0]].exp))[0]
    np.testing.assert_array_equal(yq.reshape(ref.shape), ref)
    return stats


def calib(tmp_path, shape, lo=-1.0, hi=1.0):
    p = tmp_path / "calib.npy"
    np.save(p, rng(1).uniform(lo, hi, (64,) + shape).astype(f32))
    return p


@pytest.mark.parametrize("pool,q", [("max", "ternary"), ("max", "int4"), ("avg", "pentary"), ("avg", "int2")])
def test_residual_cnn(tmp_path, pool, q):
    """conv + relu + conv + residual add + relu + max/avg pool (padded) + global average pool + dense."""
    model = save(residual_cnn(0, pool, (1, 1, 1, 1)), tmp_path / "m.onnx")
    c = compile_model(model, tmp_path / "out", "nes", q, calib(tmp_path, (1, 8, 8), 0.0, 1.0))
    ops = {r["op"]: r["kernel"] for r in c.report["emit"]["layers"]}
    assert ops == {"conv2d": "window", "add": "add", "maxpool" if pool == "max" else "avgpool":
                   "max" if pool == "max" else "window", "global_avgpool": "window", "dense": "unrolled"}
    assert_matches(c, extremes((1, 8, 8), lo=-0.2, hi=1.2))


def conv_zoo():
    """Depthwise (stride 2, asymmetric pads), pointwise, dilated conv, sigmoid, tanh, a concat of two
    branches of different scales, flatten, dense."""
    r, n = rng(4), helper.make_node
    inits = [("w0", (r.standard_normal((6, 2, 3, 3)) * 0.4).astype(f32)), ("b0", (r.standard_normal(6) * 0.1).astype(f32)),
             ("dw", (r.standard_normal((6, 1, 3, 3)) * 0.5).astype(f32)),
             ("pw", (r.standard_normal((4, 6, 1, 1)) * 0.5).astype(f32)), ("pb", (r.standard_normal(4) * 0.2).astype(f32)),
             ("dl", (r.standard_normal((3, 6, 2, 2)) * 0.4).astype(f32)),
             ("fw", (r.standard_normal((5, 4 * 3 * 2 + 3 * 3 * 2)) * 0.3).astype(f32))]
    nodes = [n("Conv", ["x", "w0", "b0"], ["c0"], name="conv", pads=[1, 0, 1, 2]),
             n("Conv", ["c0", "dw"], ["d"], name="depthwise", group=6, strides=[2, 2], pads=[0, 1, 1, 0]),
             n("Relu", ["d"], ["dr"], name="relu"),
             n("Conv", ["dr", "pw", "pb"], ["p"], name="pointwise"),
             n("Sigmoid", ["p"], ["ps"], name="sigmoid"),
             n("Conv", ["c0", "dl"], ["e"], name="dilated", dilations=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1]),
             n("Tanh", ["e"], ["et"], name="tanh"),
             n("Flatten", ["ps"], ["pf"], name="flat_a"),
             n("Flatten", ["et"], ["ef"], name="flat_b"),
             n("Concat", ["pf", "ef"], ["cat"], name="concat", axis=1),
             n("Gemm", ["cat", "fw"], ["y"], name="fc", transB=1)]
    return make_model(nodes, [("x", ["N", 2, 6, 5])], [("y", ["N", 5])], inits, name="conv_zoo")


@pytest.mark.parametrize("q", ["ternary", "int4"])
def test_conv_zoo(tmp_path, q):
    c = compile_model(save(conv_zoo(), tmp_path / "m.onnx"), tmp_path / "out", "nes", q, calib(tmp_path, (2, 6, 5)))
    ops = [nd.op for nd in c.graph.nodes]
    assert {"conv2d", "concat", "reshape", "dense"} <= set(ops)
    assert len([o for o in ops if o in ("sigmoid", "tanh", "table")]) == 2  # "table": their generic integer form
    cat = next(nd for nd in c.graph.nodes if nd.op == "concat")
    assert any(cat.attr("shifts")), "the two branches should have different scales (a rescaling concat)"
    assert_matches(c, extremes((2, 6, 5)))


def test_flatten_then_dense_on_the_input(tmp_path):
    """The reported case: an image MLP that starts with Flatten (the dense reads the model input
    through a reshape, so the input is flipped to unsigned bytes)."""
    r, n = rng(6), helper.make_node
    inits = [("w0", (r.standard_normal((64, 16)) * 0.3).astype(f32)), ("b0", (r.standard_normal(16) * 0.1).astype(f32)),
             ("w1", (r.standard_normal((16, 10)) * 0.3).astype(f32))]
    nodes = [n("Flatten", ["x"], ["f"], axis=1), n("Gemm", ["f", "w0", "b0"], ["h"]), n("Relu", ["h"], ["hr"]),
             n("MatMul", ["hr", "w1"], ["y"])]
    model = save(make_model(nodes, [("x", ["N", 1, 8, 8])], [("y", ["N", 10])], inits), tmp_path / "m.onnx")
    c = compile_model(model, tmp_path / "out", "nes", "ternary", calib(tmp_path, (1, 8, 8)))
    assert "eor #$80" in (c.outdir / "model.s").read_text()  # the input flipped in place
    assert_matches(c, extremes((1, 8, 8)))


def wide_conv(taps):
    """One output channel summing `taps` inputs with weight +1 (a 1 x taps window over a 1 x taps row)."""
    w = np.ones((1, 1, 1, taps), f32)
    return make_model([helper.make_node("Conv", ["x", "w"], ["y"])], [("x", ["N", 1, 1, taps])],
                      [("y", ["N", 1, 1, 1])], [("w", w)], name=f"wide{taps}")


@pytest.mark.parametrize("taps,bits", [(254, 16), (255, 24)])
def test_chain_bound(tmp_path, taps, bits):
    """A ternary channel over inputs in [0, 255] has Z = 255 * (taps + 1) at its top: 254 taps is the last
    single 16-bit chain (Z = 65025 <= 65279), 255 taps (65280) is split into two chains summed in 24 bits.
    Both exact at the extremes."""
    model = save(wide_conv(taps), tmp_path / "m.onnx")
    c = compile_model(model, tmp_path / "out", "nes", "ternary", calib(tmp_path, (1, 1, taps)))
    row = c.report["emit"]["layers"][0]
    assert row["acc_bits"] == bits and row["nonzero"] == taps
    text = (c.outdir / "model.s").read_text()
    assert ("chains summed into 24 bits" in text) == (bits == 24)
    assert_matches(c, extremes((1, 1, taps), n=20))


def test_check_lists_every_problem(tmp_path):
    """Two convolutions the window kernels cannot index (positions past byte 255) around an op the target
    does not take: all three are named, in one error."""
    r, n = rng(0), helper.make_node
    inits = [("w0", r.standard_normal((1, 1, 3, 3)).astype(f32)), ("w1", r.standard_normal((1, 1, 3, 3)).astype(f32))]
    nodes = [n("Conv", ["x", "w0"], ["a"], name="big_a", pads=[1, 1, 1, 1]),
             n("LeakyRelu", ["a"], ["l"], name="leak", alpha=0.1),
             n("Conv", ["l", "w1"], ["y"], name="big_b", pads=[1, 1, 1, 1])]
    model = save(make_model(nodes, [("x", ["N", 1, 16, 16])], [("y", ["N", 1, 16, 16])], inits), tmp_path / "m.onnx")
    out = tmp_path / "o"
    msg = assert_user_error(lbc("compile", model, "--target", "nes", "--calibration", calib(tmp_path, (1, 16, 16)),
                                "-o", out), "op leaky_relu is not supported", "big_a", "big_b", "at most 255")
    assert msg.count("reach byte 285") == 2 and "graph output" not in msg, msg
    assert not out.exists(), msg


def test_residual_add_of_flat_activations(tmp_path):
    """dense -> relu -> dense + residual add on [N, 16] (per-feature requantisation) -> dense."""
    c = compile_model(save(residual_mlp(0), tmp_path / "m.onnx"), tmp_path / "out", "nes", "int4", calib(tmp_path, (12,)))
    assert "add" in [r["op"] for r in c.report["emit"]["layers"]]
    assert_matches(c, extremes((12,)))


def test_broadcasting_add_is_refused(tmp_path):
    model = save(broadcast_add(), tmp_path / "m.onnx")
    assert_user_error(lbc("compile", model, "--target", "nes", "--calibration", calib(tmp_path, (1, 6, 6)),
                          "-o", tmp_path / "o"), "add badd", "same shape")


def conv_pool_chain():
    """conv 3x3 (pad 1) + relu -> maxpool 2x2 -> conv 3x3 -> maxpool 2x2 (both fused: the maximum of the raw
    sums is requantised once) -> conv 1x1 -> maxpool 2x2 stride 1 (overlapping: not fused) -> dense."""
    r, n = rng(7), helper.make_node
    inits = [("w0", (r.standard_normal((4, 1, 3, 3)) * 0.5).astype(f32)), ("b0", (r.standard_normal(4) * 0.1).astype(f32)),
             ("w1", (r.standard_normal((6, 4, 3, 3)) * 0.3).astype(f32)),
             ("w2", (r.standard_normal((3, 6, 1, 1)) * 0.5).astype(f32)),
             ("fw", (r.standard_normal((3 * 3 * 3, 10)) * 0.3).astype(f32))]
    nodes = [n("Conv", ["x", "w0", "b0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]), n("Relu", ["c0"], ["r0"]),
             n("MaxPool", ["r0"], ["p0"], name="pool0", kernel_shape=[2, 2], strides=[2, 2]),
             n("Conv", ["p0", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             n("MaxPool", ["c1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
             n("Conv", ["p1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
             n("MaxPool", ["c2"], ["p2"], name="pool2", kernel_shape=[2, 2], strides=[1, 1]),
             n("Flatten", ["p2"], ["f"]), n("MatMul", ["f", "fw"], ["y"])]
    return make_model(nodes, [("x", ["N", 1, 10, 10])], [("y", ["N", 10])], inits, name="conv_pool")


@pytest.mark.parametrize("q", ["ternary", "int4"])
def test_conv_maxpool_fused(tmp_path, q):
    c = compile_model(save(conv_pool_chain(), tmp_path / "m.onnx"), tmp_path / "out", "nes", q,
                      calib(tmp_path, (1, 10, 10), 0.0, 1.0))
    rows = {r["layer"]: r for r in c.report["emit"]["layers"]}
    assert set(rows) >= {"conv0", "conv1", "conv2", "pool2"}
    assert "pool0" not in rows and "pool1" not in rows  # fused into conv0 and conv1
    text = (c.outdir / "model.s").read_text()
    assert "maxpool pool0: with conv0" in text and "the maximum over 4 positions" in text
    assert rows["conv0"]["kernel"] == rows["conv1"]["kernel"] == "fused"
    assert_matches(c, extremes((1, 10, 10), lo=-0.3, hi=1.3))


def test_conv_then_maxpool_when_fusing_does_not_fit(tmp_path):
    """Fusing runs the chains once per pooled window position (4x the code): with little PRG-ROM the
    chooser keeps conv1 plain, its max pooling right after it in the same layer."""
    c = compile_model(save(conv_pool_chain(), tmp_path / "m.onnx"), tmp_path / "out", "nes", "ternary",
                      calib(tmp_path, (1, 10, 10), 0.0, 1.0), target_options={"flash_bytes": 11000})
    rows = {r["layer"]: r for r in c.report["emit"]["layers"]}
    assert rows["conv1"]["kernel"] == "window" and "fused" in rows["conv1"]["alternatives"]
    assert_matches(c, extremes((1, 10, 10), lo=-0.3, hi=1.3))
