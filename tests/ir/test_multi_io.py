"""Several inputs and outputs through import, interpreter, quantisation, the host C API, lbc.json,
`lbc run` (.npz by name) and the Python API; integer inputs (token ids) stay integers."""

import json

import numpy as np
import onnxruntime as ort
import pytest

import lbc
from cli_util import assert_user_error, lbc as lbc_cli
from lbc.driver import compile_model, io_specs, quantize_inputs, run_compiled
from lbc.frontends.onnx import load_onnx
from lbc.ir.interpreter import run
from lbc.ir.verify import verify
from multi_io_models import two_in_three_out
from onnx_models import rng, save

OUTS = ("y", "z", "ids_out")


def batch(n, seed):
    r = rng(seed)
    return {"a": r.standard_normal((n, 6)).astype(np.float32), "b": r.standard_normal((n, 6)).astype(np.float32),
            "ids": r.integers(0, 30000, (n, 4))}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("multi")
    p = save(two_in_three_out(), d / "multi.onnx")
    np.savez(d / "calib.npz", **batch(128, 1))
    return p, d / "calib.npz"


def test_float_import_matches_onnxruntime(model):
    g = verify(load_onnx(model[0]))
    assert g.inputs == ["a", "b", "ids"] and g.outputs == list(OUTS)
    assert [g.types[i].dtype.name for i in g.inputs] == ["f32", "f32", "i32"]
    x = batch(20, 2)
    ref = ort.InferenceSession(str(model[0]), providers=["CPUExecutionProvider"]).run(None, x)
    ours = run(g, x)
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ours[1], ref[1])
    np.testing.assert_array_equal(ours[2], ref[2])
    assert ours[2].dtype == np.int32


def test_host_bit_exact_with_interpreter_and_ids_untouched(tmp_path, model):
    c = compile_model(model[0], tmp_path / "out", "host", "int8", model[1])
    g = c.graph
    assert g.types["ids"].dtype.name == "i32" and g.types["ids"].exp is None  # never quantised
    assert g.types["a"].exp is not None and g.types["b"].exp is not None  # float inputs: their own exps
    x = batch(300, 3)
    _, yq, _ = run_compiled(c.outdir, x)
    assert list(yq) == list(OUTS)
    ref = run(g, quantize_inputs(x, io_specs(g, g.inputs)))
    for name, r in zip(OUTS, ref):
        np.testing.assert_array_equal(yq[name], r)
    np.testing.assert_array_equal(yq["ids_out"], x["ids"].reshape(-1, 2, 2))  # integers pass through exactly
    m = json.loads((c.outdir / "lbc.json").read_text())
    assert [(i["name"], i["dtype"], i["exp"] is None) for i in m["inputs"]] == [
        ("a", "i8", False), ("b", "i8", False), ("ids", "i32", True)]
    assert [(o["name"], o["dtype"], o["shape"]) for o in m["outputs"]] == [
        ("y", "i8", [1, 5]), ("z", "i32", [1]), ("ids_out", "i32", [1, 2, 2])]
    h = (c.outdir / "model.h").read_text()
    assert ("void lbc_run(const lbc_input0_t *in_a, const lbc_input1_t *in_b, const lbc_input2_t *in_ids, "
            "lbc_output0_t *out_y, lbc_output1_t *out_z, lbc_output2_t *out_ids_out);") in h
    assert "typedef int32_t lbc_input2_t;" in h


def test_float_inputs_calibrated_separately(tmp_path, model):
    d = batch(128, 1)
    d["b"] = d["b"] * 8  # b spans 8x the range of a: a smaller exp
    c = lbc.compile(model[0], out=tmp_path / "o", calibration=d, build=False)
    assert c.graph.types["b"].exp == c.graph.types["a"].exp - 3


def test_cli_run_npz_in_and_out(tmp_path, model):
    out = tmp_path / "out"
    r = lbc_cli("compile", model[0], "-o", out, "--calibration", model[1])
    assert r.returncode == 0, r.stderr
    x = batch(7, 4)
    np.savez(tmp_path / "in.npz", **x)
    r = lbc_cli("run", out, "--input", tmp_path / "in.npz", "--output", tmp_path / "y.npz")
    assert r.returncode == 0, r.stderr
    got = np.load(tmp_path / "y.npz")
    assert sorted(got.files) == sorted(OUTS)
    art_y = lbc.compile(model[0], out=tmp_path / "api", calibration=model[1]).run(x)
    for k in OUTS:
        np.testing.assert_array_equal(got[k], art_y[k])
    np.testing.assert_array_equal(got["ids_out"], x["ids"].reshape(-1, 2, 2))
    assert_user_error(lbc_cli("run", out, "--input", tmp_path / "in.npz", "--output", tmp_path / "y.npy"),
                      "3 outputs", ".npz")
    np.savez(tmp_path / "partial.npz", a=x["a"], b=x["b"])
    assert_user_error(lbc_cli("run", out, "--input", tmp_path / "partial.npz"), "missing 'ids'")
    np.save(tmp_path / "one.npy", x["a"])
    assert_user_error(lbc_cli("run", out, "--input", tmp_path / "one.npy"), "3 inputs", ".npz")
    bad = dict(x, ids=x["ids"] + 0.5)
    np.savez(tmp_path / "bad.npz", **bad)
    assert_user_error(lbc_cli("run", out, "--input", tmp_path / "bad.npz"), "ids", "non-integer")


def test_single_io_targets_refuse_in_check(model):
    from lbc.backends import get_target
    g = load_onnx(model[0])
    for t in ("rv32ec", "nes", "pentary"):
        problems = get_target(t).io_problems(g)
        assert any("at most 1 input(s); this one has 3 (a, b, ids)" in p for p in problems), problems
        assert any("at most 1 output(s); this one has 3" in p for p in problems), problems
        assert any("input ids is an integer tensor" in p for p in problems), problems
    assert get_target("host").io_problems(g) == []


def test_named_input_shapes(tmp_path):
    from multi_io_models import typed_model, n
    from onnx import TensorProto
    F = TensorProto.FLOAT
    m = typed_model([n("Add", ["p", "q"], ["y"], name="add")], [("p", ["N", "k"], F), ("q", ["N", "k"], F)],
                    [("y", ["N", "k"], F)])
    p = save(m, tmp_path / "dyn.onnx")
    msg = assert_user_error(lbc_cli("compile", p, "-o", tmp_path / "o"), "input 'p' has a dynamic dimension 1",
                            "input 'q' has a dynamic dimension 1", "--input-shape q=1,N")
    assert msg.count("\n") == 0
    r = lbc_cli("compile", p, "-o", tmp_path / "o", "--input-shape", "p=1,3", "--input-shape", "q=1,3")
    assert r.returncode == 0, r.stderr
    assert_user_error(lbc_cli("compile", p, "-o", tmp_path / "o", "--input-shape", "1,3"), "2 inputs", "NAME=")


def test_softmax_on_one_of_two_outputs_close_to_onnxruntime(tmp_path):
    """Quantised host outputs vs the float model in onnxruntime: the softmax output is applied per
    output by the runner (tolerance: int8 quantisation)."""
    from multi_io_models import n, typed_model
    from onnx import TensorProto
    r, F = rng(5), TensorProto.FLOAT
    m = typed_model([n("Gemm", ["a", "wa"], ["la"], name="fc_a"), n("Softmax", ["la"], ["p"], axis=1, name="sm"),
                     n("Gemm", ["b", "wb"], ["lb"], name="fc_b"), n("Relu", ["lb"], ["q"], name="relu")],
                    [("a", ["N", 8], F), ("b", ["N", 3], F)], [("p", ["N", 4], F), ("q", ["N", 2], F)],
                    [("wa", (r.standard_normal((8, 4)) / 3).astype(np.float32)),
                     ("wb", r.standard_normal((3, 2)).astype(np.float32))])
    p = save(m, tmp_path / "sm.onnx")
    calib = {"a": r.standard_normal((256, 8)).astype(np.float32), "b": r.standard_normal((256, 3)).astype(np.float32)}
    art = lbc.compile(p, out=tmp_path / "o", calibration=calib)
    m = json.loads((art.outdir / "lbc.json").read_text())
    assert [o["softmax_axis"] for o in m["outputs"]] == [1, None]
    x = {"a": r.standard_normal((50, 8)).astype(np.float32), "b": r.standard_normal((50, 3)).astype(np.float32)}
    got = art.run(x)
    ref = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, x)
    np.testing.assert_allclose(got["p"].sum(axis=1), 1.0, rtol=1e-5)
    assert np.abs(got["p"] - ref[0]).max() < 0.05
    assert np.abs(got["q"] - ref[1]).max() < 0.1 * np.abs(ref[1]).max()
