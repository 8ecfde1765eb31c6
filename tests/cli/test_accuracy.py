"""Accuracy you can see: per-layer SQNR in the compile table and report.json, `lbc verify` with float and
on-target accuracy, agreement, the layers that lose the most and the lbc.qat recipe when accuracy drops,
and `lbc verify DIR --data X` on an existing output folder."""

import json

import numpy as np

from cli_util import assert_user_error, lbc
from lbc.driver import compile_model, io_specs, quantize_inputs
from lbc.ir.interpreter import run as interpret


def test_compile_reports_sqnr_per_layer(tmp_path, digits):
    c8 = compile_model(digits["model"], tmp_path / "i8", "host", "int8", digits["calib_path"])
    ct = compile_model(digits["model"], tmp_path / "t", "host", "ternary", digits["calib_path"])
    rows = json.loads((tmp_path / "t" / "report.json").read_text())["layers"]
    assert [r["name"] for r in rows] == ["fc0", "fc1", "fc2"]
    # independent check of fc0's figure: dequantised int8 output vs the float graph, on the calibration data
    x = digits["calib"][:256]
    f = interpret(ct.float_graph, x, return_all=True)["h0"]
    q = interpret(ct.graph, quantize_inputs({"pixels": x}, io_specs(ct.graph, ct.graph.inputs))["pixels"],
                  return_all=True)["h0"] * 2.0 ** -ct.graph.types["h0"].exp
    want = 10 * np.log10(np.sum(f.astype(np.float64) ** 2) / np.sum((f - q) ** 2))
    assert abs(rows[0]["sqnr_db"] - want) < 0.05
    # 8-bit weights lose less than ternary ones, layer by layer
    s8 = {r["name"]: r["sqnr_db"] for r in c8.report["layers"]}
    assert all(s8[r["name"]] > r["sqnr_db"] > 0 for r in rows)
    r = lbc("compile", digits["model"], "--target", "host", "--quant", "ternary", "--calibration",
            digits["calib_path"], "-o", tmp_path / "cli")
    assert r.returncode == 0 and "SQNR dB" in r.stdout
    assert f"{rows[0]['sqnr_db']}" in next(ln for ln in r.stdout.splitlines() if ln.startswith("fc0"))


def test_no_sqnr_without_calibration(tmp_path, digits):
    c = compile_model(digits["model"], tmp_path / "o", "host", "ternary")
    assert all("sqnr_db" not in r for r in c.report["layers"])


def test_verify_explains_an_accuracy_drop(digits):
    r = lbc("verify", digits["model"], "--target", "host", "--quant", "ternary", "--granularity", "tensor",
            "--calibration", digits["calib_path"], "--data", digits["test_path"])
    assert r.returncode == 0, r.stderr
    out = r.stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("accuracy: float"))
    assert "on target" in line and "agreement with the float model" in line
    assert "the layers that lose the most" in out
    worst = out.split("the layers that lose the most")[1].splitlines()[1:4]
    assert sorted(ln.split()[0] for ln in worst) == ["fc0", "fc1", "fc2"]
    assert "from lbc.qat import" in out and 'lbc.compile(model, x_train[:1], target="host", quant="ternary")' in out


def test_verify_is_quiet_when_accuracy_holds(digits):
    r = lbc("verify", digits["model"], "--target", "host", "--quant", "int8", "--calibration",
            digits["calib_path"], "--data", digits["test_path"])
    assert r.returncode == 0 and "accuracy: float" in r.stdout
    assert "lbc.qat" not in r.stdout


def test_verify_an_output_folder(tmp_path, digits):
    out = tmp_path / "build"
    assert lbc("compile", digits["model"], "--target", "host", "--quant", "ternary", "--calibration",
               digits["calib_path"], "-o", out).returncode == 0
    r = lbc("verify", out, "--data", digits["test_path"])
    assert r.returncode == 0, r.stderr
    n = len(digits["x"])
    assert f"host (ternary): {n}/{n} outputs identical to the reference interpreter" in r.stdout
    assert "accuracy on target" in r.stdout
    assert_user_error(lbc("verify", out, "--data", digits["test_path"], "--quant", "int4"), "output folder", "--quant")
    assert_user_error(lbc("verify", tmp_path / "nothing-here", "--data", digits["test_path"]))
