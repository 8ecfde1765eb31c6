"""1-d convolution and pooling (sensor streams) through the Keras and PyTorch frontends, imported as
the 2-d ops with a height of 1, against each framework's own float output; a 1-d CNN and Keras
Dense -> ReLU -> BatchNormalization run on rv32ec bit-exact."""

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
torch = pytest.importorskip("torch", reason="torch is not installed (make test installs the CPU build)")
torch.set_num_threads(1)
from torch import nn  # noqa: E402

from lbc.frontends import load_model  # noqa: E402
from lbc.frontends.torch import from_module  # noqa: E402
from lbc.ir.interpreter import run  # noqa: E402

TORCH = {
    "conv1d_pool": (lambda: nn.Sequential(nn.Conv1d(3, 6, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2),
                                          nn.Conv1d(6, 4, 3, stride=2, dilation=2), nn.AdaptiveAvgPool1d(1),
                                          nn.Flatten(), nn.Linear(4, 2)), (4, 3, 40)),
    "conv1d_depthwise_avgpool": (lambda: nn.Sequential(nn.Conv1d(4, 4, 3, padding=1, groups=4, bias=False),
                                                       nn.AvgPool1d(3, stride=2, padding=1), nn.Flatten()),
                                 (3, 4, 17)),
    "adaptive_avg_pool1d_divides": (lambda: nn.Sequential(nn.Conv1d(2, 3, 1), nn.AdaptiveAvgPool1d(4)), (2, 2, 12)),
}


@pytest.mark.parametrize("case", sorted(TORCH))
def test_torch_1d_matches_torch(case):
    make, shape = TORCH[case]
    torch.manual_seed(0)
    m = make().eval()
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    g = from_module(m, x[:1])
    assert "conv2d" in {n.op for n in g.nodes} or "avgpool" in {n.op for n in g.nodes}
    with torch.no_grad():
        ref = m(x).numpy()
    got = run(g, x.numpy())[0]
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=2e-6)


def _keras():
    return pytest.importorskip("keras", reason="keras is not installed (make test installs it)")


def _randomise(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if ws:
            layer.set_weights([(rng.random(w.shape) + 0.5) if "variance" in v.path
                               else rng.standard_normal(w.shape) * 0.3 for w, v in zip(ws, layer.weights)])
    return model


def keras_cases(keras):
    L = keras.layers

    def seq(shape, *layers):
        return keras.Sequential([keras.Input(shape), *layers])

    return {
        "conv1d_maxpool_gap": lambda: seq((32, 3), L.Conv1D(6, 5, padding="same", activation="relu"),
                                          L.MaxPooling1D(2), L.Conv1D(4, 3, strides=2),
                                          L.GlobalAveragePooling1D(), L.Dense(2)),
        "conv1d_flatten_dense": lambda: seq((20, 2), L.Conv1D(3, 3, dilation_rate=2, activation="tanh"),
                                            L.AveragePooling1D(2, padding="same"), L.Flatten(), L.Dense(4)),
        "conv1d_dense_on_steps": lambda: seq((10, 1), L.Conv1D(4, 3, padding="same"), L.Dense(3),
                                             L.GlobalAveragePooling1D(keepdims=True)),
    }


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("case", ["conv1d_maxpool_gap", "conv1d_flatten_dense", "conv1d_dense_on_steps"])
def test_keras_1d_matches_keras(tmp_path, case):
    keras = _keras()
    keras.utils.set_random_seed(0)
    model = _randomise(keras_cases(keras)[case]())
    path = tmp_path / f"{case}.keras"
    model.save(path)
    x = np.random.default_rng(1).standard_normal((5,) + tuple(model.inputs[0].shape[1:])).astype(np.float32)
    ref = np.asarray(model.predict(x, verbose=0))
    got = run(load_model(path), x)[0]
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=2e-6)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("which", ["keras_dense_relu_bn", "torch_conv1d"])
def test_on_rv32ec_bit_exact(tmp_path, which):
    """Keras Dense -> ReLU -> BatchNormalization (the BN cannot fold into the Dense before the ReLU) and a
    PyTorch 1-d CNN compile for rv32ec and match the interpreter bit for bit."""
    import shutil
    if not shutil.which("riscv64-unknown-elf-gcc"):
        pytest.skip("riscv64-unknown-elf-gcc not installed (make test installs it)")
    from lbc.driver import compile_model, read_manifest
    from lbc.ir.quant import quantize_input
    rng = np.random.default_rng(2)
    if which == "keras_dense_relu_bn":
        keras = _keras()
        L = keras.layers
        keras.utils.set_random_seed(0)
        m = _randomise(keras.Sequential([keras.Input((12,)), L.Dense(16), L.ReLU(), L.BatchNormalization(),
                                         L.Dense(4)]))
        model = tmp_path / "m.keras"
        m.save(model)
        x = rng.standard_normal((80, 12)).astype(np.float32)
    else:
        torch.manual_seed(0)
        mod = TORCH["conv1d_pool"][0]().eval()
        x = rng.standard_normal((80, 3, 40)).astype(np.float32)
        model = from_module(mod, x[:1])
    c = compile_model(model, tmp_path / "out", "rv32ec", "int8", x[:48])
    xq = quantize_input(x, c.graph.types[c.graph.inputs[0]].exp)
    y, _ = c.target.run(c.outdir, read_manifest(c.outdir), xq, count=1)
    np.testing.assert_array_equal(y, run(c.graph, xq)[0])
