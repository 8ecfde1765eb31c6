"""Rescaling factors that m * 2**-k cannot hold are refused, never saturated; negative LeakyRelu
slopes keep their sign through quantisation."""

import numpy as np
import onnx
import pytest
from onnx import helper

from lbc.errors import QuantError
from lbc.ir.interpreter import run
from lbc.ir.quant import choose_multiplier, quantize_input
from lbc.passes import PassContext, run_pipeline
from onnx_models import save


def test_factor_at_the_cap_is_exact_and_one_past_is_refused():
    assert choose_multiplier(255.0, 128) == (255, 0)
    assert choose_multiplier(255.49, 128) == (255, 0)
    with pytest.raises(QuantError, match="cannot be represented exactly"):
        choose_multiplier(255.5, 128)
    # the accumulator bound caps m too: bound * m < 2**31 exactly (ir.quant.requant_fits)
    bound = (2**31 - 1) // 10
    assert bound * 10 < 2**31 <= bound * 11
    assert choose_multiplier(10.0, bound) == (10, 0)
    with pytest.raises(QuantError):
        choose_multiplier(11.0, bound)


def _leaky(tmp_path, alpha):
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 8])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 8])
    g = helper.make_graph([helper.make_node("LeakyRelu", ["x"], ["y"], name="lr", alpha=alpha)], "leaky", [x], [y])
    return save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "leaky.onnx")


@pytest.mark.parametrize("alpha", [-0.5, -1.0, 0.25])
def test_leaky_relu_slope_sign_survives_quantisation(tmp_path, alpha):
    from lbc.frontends import load_model
    from lbc.backends import get_target
    g = load_model(_leaky(tmp_path, alpha))
    calib = np.linspace(-1, 1, 8, dtype=np.float32).reshape(1, 8)
    ctx = PassContext(calibration=calib, target=get_target("host"))
    q = run_pipeline(g, get_target("host").pipeline("int8"), ctx)
    xq = quantize_input(calib, q.types[q.inputs[0]].exp)
    (yq,) = run(q, xq)
    neg = xq[0] < 0
    # exact: y = round_half_up(x * alpha) on the negative side, in the same scale
    want = np.floor(xq[0][neg].astype(np.float64) * alpha + 0.5)
    assert np.array_equal(yq[0][neg], want.astype(np.int8))
    assert np.array_equal(yq[0][~neg], xq[0][~neg])
