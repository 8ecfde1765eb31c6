"""The spiking digits example (examples/spiking_digits): the snnTorch-exported .nir loads, lbc's
float graph reproduces snnTorch's accuracy, the integer network is within 2 points of it, and host
and rv32ec outputs are the interpreter's bit for bit."""

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("nir")

from lbc.driver import compile_model, load_batch, run_compiled  # noqa: E402
from lbc.frontends import load_model  # noqa: E402
from lbc.ir.interpreter import run  # noqa: E402

EX = Path(__file__).resolve().parents[2] / "examples" / "spiking_digits"


def accuracy(spikes, y):
    return float(np.mean(spikes.sum(axis=1).argmax(axis=1) == y))


@pytest.fixture(scope="module")
def data():
    calib, _ = load_batch(EX / "calib.npz")
    x, y = load_batch(EX / "test.npz")
    return calib, x, y


def test_float_and_integer_accuracy(tmp_path, data):
    calib, x, y = data
    ref = json.loads((EX / "float.json").read_text())["snntorch_accuracy"]
    (yf,) = run(load_model(EX / "spiking_digits.nir"), x.astype(np.float32))
    assert yf.shape == (len(x), 16, 10)
    assert abs(accuracy(yf, y) - ref) <= 0.005  # the same spikes as snnTorch (float64 vs float32 rounding aside)
    c = compile_model(EX / "spiking_digits.nir", tmp_path / "host", target="host", quant="int8", calibration=calib)
    (yi,) = run(c.graph, x.astype(np.int8))
    assert accuracy(yi, y) >= ref - 0.02
    _, yh, _ = run_compiled(tmp_path / "host", x[:60], raw=True)
    assert (yh == yi[:60]).all()


def test_rv32ec_bit_exact(tmp_path, data):
    calib, x, _ = data
    c = compile_model(EX / "spiking_digits.nir", tmp_path / "rv", target="rv32ec", quant="int8", calibration=calib)
    _, yq, stats = run_compiled(tmp_path / "rv", x[:8], raw=True)
    (ref,) = run(c.graph, x[:8].astype(np.int8))
    assert ref.sum() > 0
    assert (yq == ref).all()
    assert stats["instructions_per_step"] > 0


def test_nes_bit_exact_int4(tmp_path, data):
    calib, x, y = data
    c = compile_model(EX / "spiking_digits.nir", tmp_path / "nes", target="nes", quant="int4", calibration=calib)
    _, yq, stats = run_compiled(tmp_path / "nes", x[:6], raw=True)
    (ref,) = run(c.graph, x[:6].astype(np.int8))
    assert ref.sum() > 0
    assert (yq == ref).all()
    assert stats["cycles_per_step_mean"] > 0


def test_cli_verify_counts_spikes():
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "lbc.cli", "verify", str(EX / "spiking_digits.nir"), "--target", "host",
                        "--quant", "int8", "--calibration", str(EX / "calib.npz"), "--data", str(EX / "test.npz")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "360/360 outputs identical" in r.stdout
    assert "accuracy: float 96.67%, on target 96.39%" in r.stdout
