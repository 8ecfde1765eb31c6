"""The NES CNN: a small ternary CNN on scikit-learn's 8x8 digits -> --target nes (the demo ROM).

conv 3x3 (1 -> 8, pad 1) + ReLU -> maxpool 2x2 -> conv 3x3 (8 -> 16, pad 1) + ReLU -> maxpool 2x2 ->
flatten -> dense 64 -> 10, ternary weights per output channel, int8 power-of-two activations.
Trains the float CNN, fine-tunes it with lbc.qat (ternary QuantConv2d/QuantLinear), saves both as
torch.export programs:

  float.pt2   the float CNN (input [N, 1, 8, 8] in [0, 1]); the PTQ baseline
  qat.pt2     the ternary QAT CNN

    lbc compile examples/nes_cnn/qat.pt2 --target nes -o build/nes_cnn

Deterministic on CPU (fixed seeds, one thread); a few minutes. The split is that of examples/digits.
"""

import sys
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import data  # noqa: E402

from lbc.frontends.torch import save_pt2  # noqa: E402
from lbc.qat import QuantAct, QuantConv2d, QuantLinear, accuracy, fit, freeze  # noqa: E402

WEIGHTS = "ternary"


def float_cnn():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 10))


def qat_cnn():
    return nn.Sequential(QuantAct(), QuantConv2d(1, 8, 3, padding=1, weight=WEIGHTS), nn.ReLU(), nn.MaxPool2d(2),
                         QuantAct(), QuantConv2d(8, 16, 3, padding=1, weight=WEIGHTS), nn.ReLU(), nn.MaxPool2d(2),
                         QuantAct(), nn.Flatten(), QuantLinear(64, 10, weight=WEIGHTS), QuantAct())


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    xtr, xte, ytr, yte = data.load()
    flt = fit(float_cnn(), xtr, ytr, epochs=60, lr=3e-3)
    print(f"float accuracy (digits 8x8, test split of {len(yte)}): {accuracy(flt, xte, yte):.4f}")
    save_pt2(flt, xte[:1], HERE / "float.pt2")
    qat = qat_cnn()
    for dst, src in zip([m for m in qat if isinstance(m, (QuantConv2d, QuantLinear))],
                        [m for m in flt if isinstance(m, (nn.Conv2d, nn.Linear))]):
        dst.load_state_dict(src.state_dict())
    fit(qat, xtr, ytr, epochs=40, lr=1e-3)
    freeze(qat, xte[:2])
    print(f"ternary QAT accuracy (integer forward pass): {accuracy(qat, xte, yte):.4f}")
    save_pt2(qat, xte[:1], HERE / "qat.pt2")


if __name__ == "__main__":
    main()
