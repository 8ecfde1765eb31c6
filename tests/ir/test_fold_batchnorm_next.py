"""fold-batchnorm folds a batchnorm that follows an activation (Keras Dense -> ReLU -> BN) into the
NEXT layer (dense, or conv without padding, grouped too) - exactly, in float - and keeps the
multiply/add form when the next layer pads."""

import numpy as np
import pytest
from onnx import helper

from lbc.frontends import load_model
from lbc.ir.interpreter import run
from lbc.passes import PassContext, run_pipeline
from onnx_models import make_model, save

n = helper.make_node
R = np.random.default_rng(3)


def _bn(c):
    return [("s", R.uniform(0.5, 1.5, c).astype(np.float32)), ("b", R.normal(size=c).astype(np.float32)),
            ("m", R.normal(size=c).astype(np.float32)), ("v", R.uniform(0.5, 2, c).astype(np.float32))]


DENSE = ([n("Gemm", ["x", "w1", "b1"], ["h"], transB=1), n("Relu", ["h"], ["r"]),
          n("BatchNormalization", ["r", "s", "b", "m", "v"], ["z"]), n("Gemm", ["z", "w2", "b2"], ["y"], transB=1)],
         [("w1", R.normal(size=(8, 6)).astype(np.float32)), ("b1", R.normal(size=8).astype(np.float32)),
          ("w2", R.normal(size=(3, 8)).astype(np.float32)), ("b2", R.normal(size=3).astype(np.float32))] + _bn(8),
         [6], [3])


def _conv(pads, group):
    return ([n("Conv", ["x", "k1"], ["h"], pads=[1, 1, 1, 1]), n("Relu", ["h"], ["r"]),
             n("BatchNormalization", ["r", "s", "b", "m", "v"], ["z"]),
             n("Conv", ["z", "k2", "c2"], ["y"], pads=pads, group=group)],
            [("k1", R.normal(size=(4, 2, 3, 3)).astype(np.float32)),
             ("k2", R.normal(size=(4, 4 // group, 3, 3)).astype(np.float32)),
             ("c2", R.normal(size=4).astype(np.float32))] + _bn(4), [2, 6, 6], [4, 4 if not pads[0] else 6, 4 if not pads[0] else 6])


@pytest.mark.parametrize("case,folds", [(DENSE, True), (_conv([0, 0, 0, 0], 1), True), (_conv([0, 0, 0, 0], 2), True),
                                        (_conv([1, 1, 1, 1], 1), False)], ids=["dense", "conv", "conv_group", "conv_padded"])
def test_batchnorm_after_activation_folds_into_next_layer(tmp_path, case, folds):
    nodes, inits, ishape, oshape = case
    path = save(make_model(nodes, [("x", ["N", *ishape])], [("y", ["N", *oshape])], inits), tmp_path / "m.onnx")
    g = load_model(path)
    folded = run_pipeline(g, ["fold-constants", "fold-batchnorm"], PassContext())
    ops = [m.op for m in folded.nodes]
    assert "batchnorm" not in ops
    assert ("mul" not in ops) == folds, ops
    x = R.normal(size=(5, *ishape)).astype(np.float32)
    np.testing.assert_allclose(run(folded, x)[0], run(g, x)[0], rtol=1e-5, atol=1e-5)
