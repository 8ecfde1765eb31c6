"""The Keras frontend against Keras's own float output, per layer type; .keras files compile
without keras installed; unsupported layers all reported at once."""

import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
pytest.importorskip("torch", reason="keras runs on the torch backend here; torch is not installed")
keras = pytest.importorskip("keras", reason="keras is not installed (make test installs it)")
L = keras.layers
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # keras vs numpy 2 noise

from lbc.errors import ModelError, UnsupportedOpError  # noqa: E402
from lbc.frontends import load_model  # noqa: E402
from lbc.ir.interpreter import run  # noqa: E402


def _randomise(model, seed=0):
    """Random weights everywhere (fresh Keras layers have zero biases and identity BN)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if ws:
            layer.set_weights([(rng.random(w.shape) + 0.5) if "variance" in v.path
                               else rng.standard_normal(w.shape) * 0.3 for w, v in zip(ws, layer.weights)])
    return model


def _seq(shape, *layers):
    return keras.Sequential([keras.Input(shape), *layers])


def _functional_residual():
    inp = keras.Input((8, 8, 3))
    x = L.Rescaling(0.5, offset=-0.25)(inp)
    a = L.Conv2D(3, 3, padding="same", name="conv_a")(x)
    b = L.DepthwiseConv2D(3, padding="same")(x)
    y = L.Add()([a, b, x])
    y = L.ReLU()(y)
    y = L.GlobalAveragePooling2D()(y)
    return keras.Model(inp, L.Dense(4)(y))


CASES = {
    "dense_mlp": lambda: _seq((49,), L.Dense(49, activation="relu"), L.Dense(24, activation="relu"),
                              L.Dense(10, activation="softmax")),
    "dense_no_bias_sigmoid": lambda: _seq((12,), L.Dense(6, use_bias=False, activation="sigmoid")),
    "conv_bn_pool_flatten_dense": lambda: _seq((7, 7, 2), L.Conv2D(4, 3, padding="same", activation="relu"),
                                               L.BatchNormalization(), L.MaxPooling2D(), L.Flatten(),
                                               L.Dropout(0.3), L.Dense(5)),
    "conv_valid_strides_dilation": lambda: _seq((9, 9, 3), L.Conv2D(4, 3, strides=2, activation="tanh"),
                                                L.Conv2D(2, 2, dilation_rate=2, padding="same")),
    "depthwise_multiplier": lambda: _seq((8, 8, 3), L.DepthwiseConv2D(3, depth_multiplier=2, strides=2,
                                                                      padding="same", activation="relu6")),
    "avgpool_valid": lambda: _seq((8, 8, 2), L.AveragePooling2D(2), L.Activation("leaky_relu")),
    "maxpool_same_strides": lambda: _seq((7, 7, 2), L.MaxPooling2D(3, strides=2, padding="same")),
    "gap_keepdims": lambda: _seq((6, 6, 4), L.GlobalAveragePooling2D(keepdims=True), L.Softmax()),
    "reshape_flatten_bn": lambda: _seq((16,), L.Reshape((2, 2, 4)), L.Conv2D(3, 1), L.Flatten(),
                                       L.BatchNormalization(), L.LeakyReLU(0.1)),
    "relu_max_value_rescaling_channels": lambda: _seq((4, 4, 3), L.Rescaling([0.5, 1.0, 2.0]),
                                                      L.ReLU(max_value=1.0), L.Flatten(), L.Dense(3)),
    "single_channel_image": lambda: _seq((7, 7, 1), L.Conv2D(2, 3), L.Flatten(), L.Dense(3)),
    "functional_residual_add": _functional_residual,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_keras_matches_keras(tmp_path, case):
    keras.utils.set_random_seed(0)
    model = _randomise(CASES[case]())
    path = tmp_path / f"{case}.keras"
    model.save(path)
    shape = (5,) + tuple(model.inputs[0].shape[1:])
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    ref = np.asarray(model.predict(x, verbose=0))
    got = run(load_model(path), x)[0]
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=2e-6)


def test_keras_file_compiles_without_keras(tmp_path):
    keras.utils.set_random_seed(0)
    model = _randomise(CASES["conv_bn_pool_flatten_dense"]())
    path = tmp_path / "m.keras"
    model.save(path)
    x = np.random.default_rng(2).random((4, 7, 7, 2)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "ref.npy", np.asarray(model.predict(x, verbose=0)))
    code = (
        "import sys, numpy as np\n"
        "for m in ('keras', 'tensorflow', 'torch', 'jax'): sys.modules[m] = None\n"
        "from lbc.cli import main\nfrom lbc.driver import run_compiled\nfrom lbc.ir.interpreter import run\n"
        "from lbc.frontends import load_model\n"
        f"g = load_model({str(path)!r}); x = np.load({str(tmp_path / 'x.npy')!r})\n"
        f"assert np.allclose(run(g, x)[0], np.load({str(tmp_path / 'ref.npy')!r}), atol=1e-5)\n"
        f"assert main(['compile', {str(path)!r}, '--target', 'host', '-o', {str(tmp_path / 'out')!r}]) == 0\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr + r.stdout


def test_unsupported_layers_listed_at_once(tmp_path):
    model = _seq((8, 3), L.LSTM(4, return_sequences=True, name="c1"), L.LayerNormalization(name="ln1"),
                 L.LSTM(2, return_sequences=True, name="c2"), L.Flatten(), L.Dense(2, activation="gelu", name="d_gelu"))
    path = tmp_path / "bad.keras"
    model.save(path)
    with pytest.raises(UnsupportedOpError) as e:
        load_model(path)
    msg = str(e.value)
    assert "LSTM (2 layers: c1, c2)" in msg and "LayerNormalization (layer: ln1)" in msg
    assert "Dense with activation gelu (layer: d_gelu)" in msg


def test_not_a_keras_file(tmp_path):
    p = tmp_path / "x.keras"
    p.write_bytes(b"junk")
    with pytest.raises(ModelError, match="not a .keras file"):
        load_model(p)


def test_lbc_compile_keras_path(tmp_path):
    import lbc
    keras.utils.set_random_seed(0)
    model = _randomise(CASES["dense_mlp"]())
    path = tmp_path / "mlp.keras"
    model.save(path)
    x = np.random.default_rng(0).random((32, 49)).astype(np.float32)
    art = lbc.compile(str(path), target="host", quant="int8", out=tmp_path / "o", calibration=x)
    y = art.run(x)
    ref = np.asarray(model.predict(x, verbose=0))
    assert y.shape == ref.shape and np.mean(y.argmax(1) == ref.argmax(1)) >= 0.9
