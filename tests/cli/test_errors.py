"""Bad input: one clear line on stderr, exit 1, no traceback, nothing left in the output folder."""


import numpy as np
import pytest
from onnx import helper

from onnx_models import make_model, mlp, save
from cli_util import assert_user_error, lbc


@pytest.fixture
def model(tmp_path):
    return save(mlp((6, 5, 3)), tmp_path / "m.onnx")


def test_missing_file(tmp_path):
    out = tmp_path / "out"
    assert_user_error(lbc("compile", tmp_path / "nope.onnx", "-o", out), "model file not found", "nope.onnx")
    assert not out.exists()


def test_not_onnx(tmp_path):
    p = tmp_path / "junk.onnx"
    p.write_bytes(b"this is not a protobuf \x00\xff\x12" * 10)
    out = tmp_path / "out"
    msg = assert_user_error(lbc("compile", p, "-o", out), "junk.onnx")
    assert "not a valid ONNX model" in msg or "invalid ONNX model" in msg
    assert not out.exists()


def test_truncated(tmp_path, model):
    data = model.read_bytes()
    p = tmp_path / "cut.onnx"
    p.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    assert_user_error(lbc("compile", p, "-o", out), "cut.onnx")
    assert not out.exists()


def test_unsupported_ops_listed_at_once(tmp_path):
    n = helper.make_node
    m = make_model([n("Relu", ["x"], ["a"], name="r"), n("Det", ["a"], ["b"], name="det1"),
                    n("Unique", ["b"], ["c"], name="uniq1"), n("Det", ["c"], ["y"], name="det2")],
                   [("x", ["N", 4])], [("y", ["N", 4])], opset=13)
    out = tmp_path / "out"
    msg = assert_user_error(lbc("compile", save(m, tmp_path / "u.onnx"), "-o", out),
                            "opset 13", "Det (2 nodes: det1, det2)", "Unique (node: uniq1)")
    assert msg.count("\n") == 0
    assert not out.exists()


def test_dynamic_dimension_needs_input_shape(tmp_path):
    m = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", ["N", "features"])], [("y", ["N", "features"])])
    p = save(m, tmp_path / "dyn.onnx")
    out = tmp_path / "out"
    assert_user_error(lbc("compile", p, "-o", out), "dynamic dimension 1", "--input-shape")
    assert not out.exists()
    r = lbc("compile", p, "-o", out, "--input-shape", "1,7")
    assert r.returncode == 0, r.stderr
    assert (out / "model.c").exists()


def test_calibration_missing_and_misshaped(tmp_path, model):
    out = tmp_path / "out"
    assert_user_error(lbc("compile", model, "-o", out, "--calibration", tmp_path / "none.npy"),
                      "calibration file not found")
    np.save(tmp_path / "bad.npy", np.zeros((10, 5), np.float32))
    assert_user_error(lbc("compile", model, "-o", out, "--calibration", tmp_path / "bad.npy"),
                      "does not match the model input", "(N, 6)")
    (tmp_path / "txt.npy").write_text("hello")
    assert_user_error(lbc("compile", model, "-o", out, "--calibration", tmp_path / "txt.npy"), "txt.npy")
    assert not out.exists()


def test_unknown_target_and_quant(tmp_path, model):
    out = tmp_path / "out"
    assert_user_error(lbc("compile", model, "-o", out, "--target", "z80"), "unknown target 'z80'", "host")
    assert_user_error(lbc("compile", model, "-o", out, "--quant", "int3"), "unknown quantization 'int3'",
                      "ternary", "pentary")
    assert not out.exists()


def test_failed_compile_keeps_previous_output(tmp_path, model):
    out = tmp_path / "out"
    assert lbc("compile", model, "-o", out).returncode == 0
    before = (out / "model.c").read_bytes()
    assert lbc("compile", model, "-o", out, "--calibration", tmp_path / "none.npy").returncode == 1
    assert (out / "model.c").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "out"]


def test_compile_run_inspect_passes_targets(tmp_path, digits):
    out = tmp_path / "d"
    r = lbc("compile", digits["model"], "--target", "host", "--quant", "ternary", "-o", out,
            "--calibration", digits["calib_path"])
    assert r.returncode == 0, r.stderr
    assert "fc0" in r.stdout and "total" in r.stdout
    np.save(tmp_path / "x.npy", digits["x"][:20])
    r = lbc("run", out, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert r.returncode == 0, r.stderr
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (20, 10) and y.dtype == np.float32
    r = lbc("run", out, "--input", tmp_path / "x.npy", "--output", tmp_path / "yr.npy", "--raw")
    assert np.load(tmp_path / "yr.npy").dtype == np.int8
    r = lbc("inspect", digits["model"])
    assert r.returncode == 0 and "6464" in r.stdout and "ternary" in r.stdout
    r = lbc("passes")
    assert r.returncode == 0 and "quantize-pentary" in r.stdout and "plan-memory" in r.stdout
    r = lbc("targets")
    assert r.returncode == 0 and "host" in r.stdout
    r = lbc("compile", digits["model"], "--emit", "ir", "--quant", "int4")
    assert r.returncode == 0 and r.stdout.startswith('graph "digits_mlp"')
    r = lbc("compile", digits["model"], "--emit", "ir", "--dump-after", "fuse-activation")
    assert "# IR after fuse-activation" in r.stdout and "relu" in r.stdout


def test_run_on_a_folder_that_is_not_compiled(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 3), np.float32))
    assert_user_error(lbc("run", tmp_path, "--input", tmp_path / "x.npy"), "not an lbc output folder")


def test_verify_reports_accuracy_of_an_argmax_model(tmp_path, digits):
    import re

    import onnx
    import onnxruntime as ort
    m = mlp((64, 16, 10), seed=3)
    m.graph.node.append(helper.make_node("ArgMax", ["y"], ["idx"], name="am", axis=1, keepdims=0))
    del m.graph.output[:]
    m.graph.output.append(helper.make_tensor_value_info("idx", onnx.TensorProto.INT64, ["N"]))
    path = save(m, tmp_path / "am.onnx")
    r = lbc("verify", path, "--data", digits["test_path"], "--calibration", digits["calib_path"])
    assert r.returncode == 0, r.stderr
    assert "360/360 outputs identical" in r.stdout
    floats = float(re.search(r"accuracy: float ([0-9.]+)%", r.stdout).group(1)) / 100
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": digits["x"]})[0]
    assert round(floats, 4) == round(float(np.mean(ref == digits["y"])), 4)
