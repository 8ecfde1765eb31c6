"""The pentary toolkit seed: a small pentary-QAT CNN on scikit-learn's 8x8 digits -> --target pentary.

conv 3x3 (1 -> 8, pad 1) + ReLU -> conv 3x3 stride 2 (8 -> 8, pad 1) + ReLU -> flatten -> dense 128 -> 10,
weights in balanced base 5 {-2..2} per output channel, int8 power-of-two activations. Trains the float
CNN, fine-tunes it with lbc.qat, and saves both as torch.export programs:

  float.pt2   the float CNN (input [N, 1, 8, 8] in [0, 1]); the PTQ baseline
  qat.pt2     the pentary QAT CNN

    lbc compile examples/pentary_cnn/qat.pt2 --target pentary -o build/pentary_cnn

Deterministic on CPU (fixed seeds, one thread); ~1 minute. The split is that of examples/digits.
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

WEIGHTS = "pentary"


def float_cnn():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(128, 10))


def qat_cnn():
    return nn.Sequential(QuantAct(), QuantConv2d(1, 8, 3, padding=1, weight=WEIGHTS), nn.ReLU(), QuantAct(),
                         QuantConv2d(8, 8, 3, stride=2, padding=1, weight=WEIGHTS), nn.ReLU(), QuantAct(),
                         nn.Flatten(), QuantLinear(128, 10, weight=WEIGHTS), QuantAct())




def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    xtr, xte, ytr, yte = data.load()
    flt = fit(float_cnn(), xtr, ytr, epochs=40, lr=3e-3)
    print(f"float accuracy (digits 8x8, test split of {len(yte)}): {accuracy(flt, xte, yte):.4f}")
    save_pt2(flt, xte[:1], HERE / "float.pt2")
    qat = qat_cnn()
    for dst, src in zip([m for m in qat if isinstance(m, (QuantConv2d, QuantLinear))],
                        [m for m in flt if isinstance(m, (nn.Conv2d, nn.Linear))]):
        dst.load_state_dict(src.state_dict())
    fit(qat, xtr, ytr, epochs=30, lr=1e-3)
    freeze(qat, xte[:2])
    print(f"pentary QAT accuracy (integer forward pass): {accuracy(qat, xte, yte):.4f}")
    save_pt2(qat, xte[:1], HERE / "qat.pt2")


if __name__ == "__main__":
    main()
