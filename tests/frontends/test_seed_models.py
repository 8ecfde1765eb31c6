"""The committed seed models (examples/bitnetmcu, nes_mlp, pentary_cnn) load without torch or keras,
their QAT programs carry a scale for every quantised tensor, and they compile and run on the host
identically to the reference interpreter. (make demo runs them on their real targets.)"""

from pathlib import Path

import numpy as np
import pytest

from lbc.driver import compile_model, run_compiled
from lbc.frontends import load_model
from lbc.ir.interpreter import run
from lbc.ir.quant import quantize_input

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MODELS = [("bitnetmcu/float.pt2", "int4"), ("bitnetmcu/qat.pt2", "int4"), ("nes_mlp/model.keras", "ternary"),
          ("nes_mlp/qat.pt2", "ternary"), ("pentary_cnn/float.pt2", "pentary"), ("pentary_cnn/qat.pt2", "pentary")]


@pytest.mark.parametrize("name,quant", MODELS)
def test_seed_model_compiles_on_host(tmp_path, name, quant):
    path = EXAMPLES / name
    g = load_model(path)
    shape = g.types[g.inputs[0]].shape[1:]
    x = np.random.default_rng(0).random((16,) + tuple(shape)).astype(np.float32)
    if "qat" in name:
        hints = g.meta.get("exp_hints", {})
        layers = [n for n in g.nodes if n.op in ("dense", "conv2d")]
        assert g.inputs[0] in hints and all(n.outputs[0] in hints for n in layers), hints
    c = compile_model(path, tmp_path / "out", "host", quant, x if "qat" not in name else None)
    _, yq, _ = run_compiled(c.outdir, x)
    np.testing.assert_array_equal(yq, run(c.graph, quantize_input(x, c.graph.meta["input_exp"]))[0])
