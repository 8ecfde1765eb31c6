"""A CNN on full 28x28 Fashion-MNIST for the CH32V003 (16 KB flash, 2 KB RAM), which fits only
thanks to patch-based execution: its first activations (14x14x8 = 1,568 B after a stride-2 5x5
convolution, 14x14x10 = 1,960 B after the second) never exist whole - lbc's memory planner runs the
first layers tile by tile (see lbc.ir.patch) next to the 784 B input.

conv 5x5 stride 2 (1 -> 8, pad 2) + ReLU -> conv 3x3 (8 -> 10, pad 1) + ReLU -> maxpool 2
-> conv 3x3 stride 2 (10 -> 32, pad 1) + ReLU -> flatten -> dense 512 -> 10

Trained in float (Adam, cosine schedule, fixed seed, one thread), then fine-tuned with lbc.qat at int4
weights (per output channel) and int8 power-of-two activations; both saved as torch.export programs:

  float.pt2   the float CNN (input [N, 1, 28, 28] in [0, 1]); the PTQ baseline
  qat.pt2     the int4 QAT CNN

    lbc compile examples/fashion_cnn28/qat.pt2 --target rv32ec -o build/fashion_cnn28

Deterministic on CPU; about half an hour on one core.
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

WEIGHTS = "int4"


def float_cnn():
    return nn.Sequential(nn.Conv2d(1, 8, 5, stride=2, padding=2), nn.ReLU(),
                         nn.Conv2d(8, 10, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(10, 32, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(512, 10))


def qat_cnn():
    return nn.Sequential(QuantAct(), QuantConv2d(1, 8, 5, stride=2, padding=2, weight=WEIGHTS), nn.ReLU(), QuantAct(),
                         QuantConv2d(8, 10, 3, padding=1, weight=WEIGHTS), nn.ReLU(), QuantAct(), nn.MaxPool2d(2),
                         QuantConv2d(10, 32, 3, stride=2, padding=1, weight=WEIGHTS), nn.ReLU(), QuantAct(),
                         nn.Flatten(), QuantLinear(512, 10, weight=WEIGHTS), QuantAct())


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    xtr, ytr = data.load("train")
    xte, yte = data.load("test")
    flt = fit(float_cnn(), xtr, ytr, epochs=6, lr=3e-3, batch=64)
    print(f"float accuracy (Fashion-MNIST 28x28, test split of {len(yte)}): {accuracy(flt, xte, yte):.4f}", flush=True)
    save_pt2(flt, xte[:1], HERE / "float.pt2")
    qat = qat_cnn()
    for dst, src in zip([m for m in qat if isinstance(m, (QuantConv2d, QuantLinear))],
                        [m for m in flt if isinstance(m, (nn.Conv2d, nn.Linear))]):
        dst.load_state_dict(src.state_dict())
    fit(qat, xtr, ytr, epochs=2, lr=5e-4, batch=64)
    freeze(qat, xte[:2])
    print(f"{WEIGHTS} QAT accuracy (integer forward pass): {accuracy(qat, xte, yte):.4f}", flush=True)
    save_pt2(qat, xte[:1], HERE / "qat.pt2")


if __name__ == "__main__":
    main()
