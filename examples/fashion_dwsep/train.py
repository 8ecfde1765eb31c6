"""A depthwise-separable CNN on Fashion-MNIST 16x16 for the CH32V003 (16 KB flash, 2 KB RAM).

conv 3x3 stride 2 (1 -> 12, pad 1) + ReLU -> depthwise 3x3 (12, pad 1) + ReLU -> pointwise (12 -> 24)
+ ReLU -> maxpool 2 -> depthwise 3x3 (24, pad 1) + ReLU -> pointwise (24 -> 32) + ReLU
-> flatten -> dense 512 -> 10

The 8x8x24 pointwise output (1,536 B) does not fit next to its input: lbc's memory planner runs
depthwise -> pointwise -> maxpool tile by tile. Trained in float (Adam, cosine schedule, fixed seed,
one thread), fine-tuned with lbc.qat at int4 weights; both saved as torch.export programs:

  float.pt2   the float CNN (input [N, 1, 16, 16] in [0, 1]); the PTQ baseline
  qat.pt2     the int4 QAT CNN

    lbc compile examples/fashion_dwsep/qat.pt2 --target rv32ec -o build/fashion_dwsep

Deterministic on CPU; about a quarter of an hour on one core.
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
    return nn.Sequential(nn.Conv2d(1, 12, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Conv2d(12, 12, 3, padding=1, groups=12), nn.ReLU(),
                         nn.Conv2d(12, 24, 1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(24, 24, 3, padding=1, groups=24), nn.ReLU(),
                         nn.Conv2d(24, 32, 1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(512, 10))


def qat_cnn():
    w = WEIGHTS
    return nn.Sequential(QuantAct(), QuantConv2d(1, 12, 3, stride=2, padding=1, weight=w), nn.ReLU(), QuantAct(),
                         QuantConv2d(12, 12, 3, padding=1, groups=12, weight=w), nn.ReLU(), QuantAct(),
                         QuantConv2d(12, 24, 1, weight=w), nn.ReLU(), QuantAct(), nn.MaxPool2d(2),
                         QuantConv2d(24, 24, 3, padding=1, groups=24, weight=w), nn.ReLU(), QuantAct(),
                         QuantConv2d(24, 32, 1, weight=w), nn.ReLU(), QuantAct(),
                         nn.Flatten(), QuantLinear(512, 10, weight=w), QuantAct())


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    xtr, ytr = data.load("train")
    xte, yte = data.load("test")
    flt = fit(float_cnn(), xtr, ytr, epochs=6, lr=3e-3, batch=64)
    print(f"float accuracy (Fashion-MNIST 16x16, test split of {len(yte)}): {accuracy(flt, xte, yte):.4f}", flush=True)
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
