"""BitNetMCU on the CH32V003: a 4-bit QAT MLP 256-64-64-64-10 on 16x16 Fashion-MNIST.

Trains the float MLP, then fine-tunes it with lbc's quantization-aware layers (4-bit weights per
output channel, int8 power-of-two activations) and saves both as torch.export programs, which lbc
compiles without torch:

  float.pt2   the float model (input [N, 256] in [0, 1], logits [N, 10]); the PTQ baseline
  qat.pt2     the QAT model (its QuantActs export as fake-quantize annotations lbc reads as scales)

Deterministic on CPU (fixed seeds, one thread). Takes ~3 minutes on 2 cores.
    python examples/bitnetmcu/train.py
    lbc compile examples/bitnetmcu/qat.pt2 --target rv32ec -o build/bitnetmcu
"""

import sys
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import data  # noqa: E402

from lbc.frontends.torch import save_pt2  # noqa: E402
from lbc.qat import QuantAct, QuantLinear, accuracy, freeze  # noqa: E402

SIZES = (256, 64, 64, 64, 10)
WEIGHTS = "int4"


def float_mlp():
    layers = []
    for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(SIZES) - 2 else [])
    return nn.Sequential(*layers)


def qat_mlp():
    layers = [QuantAct()]
    for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers += [QuantLinear(a, b, weight=WEIGHTS)] + ([nn.ReLU()] if i < len(SIZES) - 2 else []) + [QuantAct()]
    return nn.Sequential(*layers)


def fit(model, x, y, epochs, lr, batch=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.AdamW(model.parameters(), lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * (-(-len(xt) // batch)))
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(len(xt), generator=g)
        total = 0.0
        for i in range(0, len(xt), batch):
            idx = perm[i:i + batch]
            loss = nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        print(f"  epoch {ep + 1}/{epochs}: loss {total / len(xt):.4f}", flush=True)
    return model.eval()



def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    xtr, ytr = data.load("train")
    xte, yte = data.load("test")
    print("training the float MLP")
    flt = fit(float_mlp(), xtr, ytr, epochs=15, lr=3e-3)
    print(f"float accuracy (Fashion-MNIST 16x16, test split of {len(yte)}): {accuracy(flt, xte, yte):.4f}")
    save_pt2(flt, xte[:1], HERE / "float.pt2")
    print(f"QAT fine-tuning with {WEIGHTS} weights")
    qat = qat_mlp()
    linears = [m for m in qat if isinstance(m, QuantLinear)]
    for dst, src in zip(linears, [m for m in flt if isinstance(m, nn.Linear)]):
        dst.load_state_dict(src.state_dict())
    fit(qat, xtr, ytr, epochs=10, lr=1e-3)
    freeze(qat, xte[:2])
    print(f"QAT accuracy (integer forward pass): {accuracy(qat, xte, yte):.4f}")
    save_pt2(qat, xte[:1], HERE / "qat.pt2")


if __name__ == "__main__":
    main()
