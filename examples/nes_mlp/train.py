"""The NES MLP: a Keras 49-49-24-10 network on 7x7 digits, built and trained in Keras 3 (torch
backend) and saved as model.keras, which lbc compiles for the NES without keras:

    lbc compile examples/nes_mlp/model.keras --target nes --quant ternary -o build/nes_mlp

For the QAT column the same network is fine-tuned from the Keras weights with lbc's ternary
quantization-aware layers and saved as qat.pt2 (lbc.qat is torch-based).

  model.keras   the float Keras model (input [N, 49] in [0, 1], softmax over 10 digits)
  qat.pt2       the ternary QAT model (torch.export program)

Deterministic on CPU (fixed seeds, one thread); ~1 minute.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import data  # noqa: E402

from lbc.frontends.torch import save_pt2  # noqa: E402
from lbc.qat import QuantAct, QuantLinear, fit, freeze  # noqa: E402

SIZES = (49, 49, 24, 10)
WEIGHTS = "ternary"


def keras_model():
    import keras
    L = keras.layers
    return keras.Sequential([keras.Input((49,)), L.Dense(49, activation="relu", name="hidden1"),
                             L.Dense(24, activation="relu", name="hidden2"),
                             L.Dense(10, activation="softmax", name="digits")], name="nes_mlp")


def qat_mlp():
    return nn.Sequential(QuantAct(), QuantLinear(49, 49, weight=WEIGHTS), nn.ReLU(), QuantAct(),
                         QuantLinear(49, 24, weight=WEIGHTS), nn.ReLU(), QuantAct(),
                         QuantLinear(24, 10, weight=WEIGHTS), QuantAct())



def main():
    import keras
    torch.set_num_threads(1)
    keras.utils.set_random_seed(0)
    xtr, xte, ytr, yte = data.load()
    model = keras_model()
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(xtr, ytr, epochs=120, batch_size=32, verbose=0)
    float_acc = float(np.mean(model.predict(xte, verbose=0).argmax(1) == yte))
    print(f"float accuracy (digits 7x7, test split of {len(yte)}): {float_acc:.4f}")
    model.save(HERE / "model.keras")

    torch.manual_seed(0)
    qat = qat_mlp()
    for dst, layer in zip([m for m in qat if isinstance(m, QuantLinear)], model.layers):
        kernel, bias = layer.get_weights()
        dst.weight.data = torch.from_numpy(np.ascontiguousarray(kernel.T))
        dst.bias.data = torch.from_numpy(bias)
    fit(qat, xtr, ytr, epochs=80, lr=1e-3)
    freeze(qat, xte[:2])
    with torch.no_grad():
        qat_acc = float(np.mean(qat(torch.from_numpy(xte)).argmax(1).numpy() == yte))
    print(f"ternary QAT accuracy (integer forward pass): {qat_acc:.4f}")
    save_pt2(qat, xte[:1], HERE / "qat.pt2")


if __name__ == "__main__":
    main()
