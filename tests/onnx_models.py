"""Builders for small ONNX models used by the tests (no files committed: built on the fly)."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def make_model(nodes, inputs, outputs, inits=(), opset=13, name="test"):
    """inputs/outputs: [(name, shape)] float tensors (shape entries may be str for dynamic dims)."""
    g = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT if not n.startswith("idx") else TensorProto.INT64, s)
         for n, s in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="lbc-tests")
    m.ir_version = 8  # onnxruntime rejects the newest IR versions (see reference/toolchains.md)
    onnx.checker.check_model(m)
    return m


def save(model, path):
    onnx.save(model, str(path))
    return path


def rng(seed=0):
    return np.random.default_rng(seed)


def mlp(sizes, seed=0, relu=True, name="mlp"):
    """A dense MLP with random weights: sizes = (in, h1, ..., out)."""
    r = rng(seed)
    nodes, inits, prev = [], [], "x"
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = (r.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32)
        bias = (r.standard_normal(b) * 0.1).astype(np.float32)
        inits += [(f"w{i}", w), (f"b{i}", bias)]
        last = i == len(sizes) - 2
        out = "y" if last else f"h{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [out if last or not relu else f"g{i}"],
                                      name=f"fc{i}"))
        if relu and not last:
            nodes.append(helper.make_node("Relu", [f"g{i}"], [out], name=f"relu{i}"))
        prev = out
    return make_model(nodes, [("x", ["N", sizes[0]])], [("y", ["N", sizes[-1]])], inits, name=name)


def small_cnn(seed=0):
    """A CNN touching every op the host target emits."""
    r = rng(seed)
    f = np.float32
    inits = [
        ("cw", (r.standard_normal((4, 1, 3, 3)) * 0.5).astype(f)), ("cb", (r.standard_normal(4) * 0.1).astype(f)),
        ("bn_s", (1 + 0.1 * r.standard_normal(4)).astype(f)), ("bn_b", (0.1 * r.standard_normal(4)).astype(f)),
        ("bn_m", (0.1 * r.standard_normal(4)).astype(f)), ("bn_v", (1 + 0.1 * r.random(4)).astype(f)),
        ("dw", (r.standard_normal((4, 1, 3, 3)) * 0.5).astype(f)),
        ("scale", (1 + 0.2 * r.standard_normal((1, 4, 1, 1))).astype(f)),
        ("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64)),
        ("fw", (r.standard_normal((10, 4 * 4 * 4 + 8)) * 0.2).astype(f)), ("fb", np.zeros(10, f)),
        ("shape", np.array([0, -1], dtype=np.int64)), ("lo", np.array(0, f)), ("hi", np.array(6, f)),
    ]
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "cw", "cb"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        n("BatchNormalization", ["c1", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn1"], name="bn1"),
        n("Clip", ["bn1", "lo", "hi"], ["r1"], name="relu6"),
        n("Conv", ["r1", "dw"], ["c2"], name="depthwise", group=4, pads=[1, 1, 1, 1]),
        n("LeakyRelu", ["c2"], ["l2"], name="leaky", alpha=0.1),
        n("Add", ["l2", "r1"], ["res"], name="residual"),
        n("Mul", ["res", "scale"], ["sc"], name="scale"),
        n("MaxPool", ["sc"], ["p1"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        n("Pad", ["p1", "pads"], ["pd"], name="pad"),
        n("AveragePool", ["pd"], ["ap"], name="avg", kernel_shape=[3, 3], strides=[1, 1]),
        n("Sigmoid", ["ap"], ["sg"], name="sigmoid"),
        n("GlobalAveragePool", ["sc"], ["gp"], name="gap"),
        n("Tanh", ["gp"], ["th"], name="tanh"),
        n("Transpose", ["sg"], ["tp"], name="transpose", perm=[0, 1, 3, 2]),
        n("Flatten", ["tp"], ["fl"], name="flatten"),
        n("Reshape", ["th", "shape"], ["thr"], name="reshape"),
        n("Concat", ["fl", "thr", "thr"], ["cat"], name="concat", axis=1),
        n("Gemm", ["cat", "fw", "fb"], ["y"], name="fc", transB=1),
    ]
    return make_model(nodes, [("x", ["N", 1, 8, 8])], [("y", ["N", 10])], inits, name="cnn")


def residual_cnn(seed=0, pool="max", avg_pads=(0, 0, 0, 0)):
    """conv -> relu -> conv + residual add -> relu -> {max,avg}pool -> global average pool -> dense,
    on 1x8x8 inputs: the small-CNN ops beyond conv and dense (pool="avg" pads with count_include_pad=1)."""
    r, f, n = rng(seed), np.float32, helper.make_node
    inits = [("w0", (r.standard_normal((4, 1, 3, 3)) * 0.5).astype(f)), ("b0", (r.standard_normal(4) * 0.1).astype(f)),
             ("w1", (r.standard_normal((4, 4, 3, 3)) * 0.3).astype(f)), ("b1", (r.standard_normal(4) * 0.1).astype(f)),
             ("fw", (r.standard_normal((4, 10)) * 0.5).astype(f)), ("fb", (r.standard_normal(10) * 0.1).astype(f))]
    if pool == "max":
        p = n("MaxPool", ["r2"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2])
    else:
        p = n("AveragePool", ["r2"], ["p"], name="pool", kernel_shape=[3, 3], strides=[2, 2], pads=list(avg_pads),
              count_include_pad=1)
    nodes = [n("Conv", ["x", "w0", "b0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
             n("Relu", ["c0"], ["r0"], name="relu0"),
             n("Conv", ["r0", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             n("Add", ["c1", "r0"], ["s"], name="residual"),
             n("Relu", ["s"], ["r2"], name="relu2"),
             p,
             n("GlobalAveragePool", ["p"], ["g"], name="gap"),
             n("Flatten", ["g"], ["fl"], name="flatten"),
             n("Gemm", ["fl", "fw", "fb"], ["y"], name="fc")]
    return make_model(nodes, [("x", ["N", 1, 8, 8])], [("y", ["N", 10])], inits, name="residual_cnn")


def residual_mlp(seed=0):
    """dense -> relu -> dense + residual add on flat [N, 16] activations -> dense."""
    r, f, n = rng(seed), np.float32, helper.make_node
    inits = [("w0", (r.standard_normal((12, 16)) / 3).astype(f)), ("b0", (r.standard_normal(16) * 0.1).astype(f)),
             ("w1", (r.standard_normal((16, 16)) / 2).astype(f)),
             ("w2", (r.standard_normal((16, 10)) / 4).astype(f))]
    nodes = [n("Gemm", ["x", "w0", "b0"], ["g0"], name="fc0"),
             n("Relu", ["g0"], ["h"], name="relu0"),
             n("MatMul", ["h", "w1"], ["g1"], name="fc1"),
             n("Add", ["g1", "h"], ["s"], name="residual"),
             n("MatMul", ["s", "w2"], ["y"], name="fc2")]
    return make_model(nodes, [("x", ["N", 12])], [("y", ["N", 10])], inits, name="residual_mlp")


def broadcast_add():
    """conv -> (conv + its per-channel mean, a broadcasting add of two activations) -> global average pool
    ("mean", "gap"): shapes the small targets reject."""
    r, f, n = rng(0), np.float32, helper.make_node
    nodes = [n("Conv", ["x", "w"], ["c"], name="conv"), n("GlobalAveragePool", ["c"], ["m"], name="mean"),
             n("Add", ["c", "m"], ["a"], name="badd"), n("GlobalAveragePool", ["a"], ["y"], name="gap")]
    return make_model(nodes, [("x", ["N", 1, 6, 6])], [("y", ["N", 2, 1, 1])],
                      [("w", r.standard_normal((2, 1, 3, 3)).astype(f))], name="broadcast_add")
