"""Bad input for the NES target: one clear line per problem, exit 1, nothing written."""

import os

import numpy as np
from onnx import helper

from nes_util import need_cc65
from onnx_models import make_model, mlp, rng, save
from cli_util import assert_user_error, lbc


def calib(tmp_path, n):
    p = tmp_path / "calib.npy"
    np.save(p, (rng(0).random((32, n)) * 2 - 1).astype(np.float32))
    return p


def test_weights_that_do_not_fit_the_cartridge(tmp_path):
    model = save(mlp((128, 256, 256, 10), seed=1), tmp_path / "big.onnx")
    out = tmp_path / "out"
    msg = assert_user_error(lbc("compile", model, "--target", "nes", "--calibration", calib(tmp_path, 128), "-o", out),
                     "PRG-ROM", "over by", "fc1")
    assert not out.exists(), msg


def test_activations_that_do_not_fit_ram(tmp_path):
    model = save(mlp((200, 160, 10), seed=2), tmp_path / "wide.onnx")
    out = tmp_path / "out"
    assert_user_error(lbc("compile", model, "--target", "nes", "--ram", 1000, "--calibration", calib(tmp_path, 200),
                   "-o", out), "bytes of RAM", "over by 128")
    assert not out.exists()


def test_unsupported_op_and_dtype(tmp_path):
    leaky = make_model([helper.make_node("LeakyRelu", ["x"], ["y"], alpha=0.1)], [("x", ["N", 1, 5, 5])],
                       [("y", ["N", 1, 5, 5])])
    assert_user_error(lbc("compile", save(leaky, tmp_path / "c.onnx"), "--target", "nes", "-o", tmp_path / "o"),
               "op leaky_relu is not supported by target nes")
    model = save(mlp((6, 5, 3)), tmp_path / "m.onnx")
    assert_user_error(lbc("compile", model, "--target", "nes", "--quant", "int8", "-o", tmp_path / "o"),
               "target nes cannot emit int8 weights", "ternary")


def test_inputs_larger_than_the_routine_handles(tmp_path):
    model = save(mlp((300, 4, 2)), tmp_path / "m.onnx")
    assert_user_error(lbc("compile", model, "--target", "nes", "-o", tmp_path / "o"), "input", "at most 256")


def test_cc65_missing_names_the_package(tmp_path):
    model = save(mlp((6, 5, 3)), tmp_path / "m.onnx")
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty)}
    out = tmp_path / "out"
    assert_user_error(lbc("compile", model, "--target", "nes", "-o", out, env=env), "ca65 not found", "cc65")
    assert not out.exists()


@need_cc65
def test_samples_file_errors(tmp_path):
    model = save(mlp((6, 5, 3)), tmp_path / "m.onnx")
    np.savez(tmp_path / "bad.npz", x=np.zeros((4, 7), np.float32))
    assert_user_error(lbc("compile", model, "--target", "nes", "--samples", tmp_path / "bad.npz", "-o", tmp_path / "o"),
               "--samples", "does not match the model input")
    assert_user_error(lbc("compile", model, "--target", "nes", "--samples", tmp_path / "nope.npz", "-o", tmp_path / "o"),
               "--samples", "not found")
