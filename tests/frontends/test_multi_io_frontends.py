"""Several inputs and outputs through the Keras frontend (functional models), against Keras's own
float output, and its problems collected into one error."""

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
pytest.importorskip("torch", reason="keras runs on the torch backend here; torch is not installed")
keras = pytest.importorskip("keras", reason="keras is not installed (make test installs it)")
L = keras.layers
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

from lbc.errors import UnsupportedOpError  # noqa: E402
from lbc.frontends import load_model  # noqa: E402
from lbc.ir.interpreter import run  # noqa: E402


def test_keras_two_inputs_two_outputs_match_keras(tmp_path):
    a, b = keras.Input((6,), name="a"), keras.Input((4,), name="b")
    h = L.Add(name="sum")([L.Dense(5, activation="relu", name="da")(a), L.Dense(5, name="db")(b)])
    y1 = L.Dense(2, name="head1")(h)
    y2 = L.Dense(3, activation="tanh", name="head2")(h)
    model = keras.Model([a, b], [y1, y2])
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if layer.get_weights():
            layer.set_weights([rng.standard_normal(w.shape) * 0.5 for w in layer.get_weights()])
    path = tmp_path / "two.keras"
    model.save(path)
    g = load_model(path)
    assert g.inputs == ["a", "b"] and len(g.outputs) == 2
    xa, xb = rng.standard_normal((7, 6)).astype(np.float32), rng.standard_normal((7, 4)).astype(np.float32)
    ref = [np.asarray(r) for r in model.predict([xa, xb], verbose=0)]
    ours = run(g, {"a": xa, "b": xb})
    for o, r in zip(ours, ref):
        np.testing.assert_allclose(o, r, rtol=1e-4, atol=1e-5)


def test_keras_unsupported_layers_and_dynamic_input_in_one_error(tmp_path):
    a, b = keras.Input((None, 4), name="tokens"), keras.Input((4,), name="b")
    y = L.Dense(2, name="d")(L.LayerNormalization(name="ln")(b))
    model = keras.Model([a, b], [y, L.Dense(1, name="d2")(a)])
    path = tmp_path / "bad.keras"
    model.save(path)
    with pytest.raises(UnsupportedOpError) as e:
        load_model(path)
    msg = str(e.value)
    assert "LayerNormalization (layer: ln)" in msg
    assert "input 'tokens' has shape [None, None, 4]; give the full shape with --input-shape" in msg
    assert "\n" not in msg
