"""Train a spiking MLP (64-48-10, leaky integrate-and-fire) with snnTorch on rate-coded 8x8 digits
and export it to NIR.

Data: scikit-learn's bundled 8x8 digits (no downloads), split as examples/digits does. Each pixel
p in [0, 1] becomes a spike train of T steps: a spike at step t when u[t] < p, with u drawn from a
seeded generator (numpy default_rng(SEED + split)), so the trains are reproducible. The class is
the output neuron with the most spikes over the T steps (ties: the lowest index).

The neurons are snnTorch `Leaky` with reset_mechanism="zero" (NIR's reset: to v_reset = 0) and
per-neuron beta = 0.875 (so the integer decay is the shift v - (v + 4 >> 3)) and threshold 1.0:
snnTorch 1.0's exporter needs them per neuron. Writes, next to this script:
  spiking_digits.nir   the network (snntorch.export_nir.export_to_nir, written with nir.write)
  calib.npz            x: 256 training spike trains [256, T, 64] (uint8 0/1) for calibration
  test.npz             x [N, T, 64] uint8 spike trains (0/1), y [N] labels
  float.json           the snnTorch network's test accuracy (spike count)
"""

import json
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
SEED = 7
STEPS = 16
HIDDEN = 48
BETA = 0.875
EPOCHS = 30
BATCH = 64


def spike_trains(x, seed, steps=STEPS):
    """Rate code: pixel p in [0, 1] spikes at step t when u[t] < p (u uniform from a seeded generator)."""
    u = np.random.default_rng(seed).random((len(x), steps, x.shape[1]))
    return (u < x[:, None, :]).astype(np.float32)


def load_split():
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(x, d.target.astype(np.int64), test_size=0.2, random_state=0,
                                          stratify=d.target)
    return spike_trains(xtr, SEED), spike_trains(xte, SEED + 1), ytr, yte


def build():
    import snntorch as snn
    from snntorch import surrogate

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            grad = surrogate.fast_sigmoid(slope=10)
            self.fc1 = torch.nn.Linear(64, HIDDEN)
            self.lif1 = snn.Leaky(beta=torch.full((HIDDEN,), BETA), threshold=torch.ones(HIDDEN),
                                  reset_mechanism="zero", spike_grad=grad, init_hidden=True)
            self.fc2 = torch.nn.Linear(HIDDEN, 10)
            self.lif2 = snn.Leaky(beta=torch.full((10,), BETA), threshold=torch.ones(10),
                                  reset_mechanism="zero", spike_grad=grad, init_hidden=True, output=True)

        def forward(self, x):  # one time step
            spk, _ = self.lif2(self.fc2(self.lif1(self.fc1(x))))
            return spk

    return Net()


def reset(net):
    import snntorch.utils
    snntorch.utils.reset(net)


def run_sequences(net, x):
    """Output spikes [N, T, 10] of the network on spike trains [N, T, 64], each sequence from rest."""
    reset(net)
    out = [net(x[:, t]) for t in range(x.shape[1])]
    return torch.stack(out, dim=1)


def main(epochs=EPOCHS):
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    xtr, xte, ytr, yte = load_split()
    net = build()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    xt, yt = torch.tensor(xtr), torch.tensor(ytr)
    gen = torch.Generator().manual_seed(SEED)
    for epoch in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), BATCH):
            idx = perm[i:i + BATCH]
            counts = run_sequences(net, xt[idx]).sum(dim=1)
            loss = torch.nn.functional.cross_entropy(counts, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch}: loss {loss.item():.3f}", flush=True)
    with torch.no_grad():
        counts = run_sequences(net, torch.tensor(xte)).sum(dim=1).numpy()
    acc = float(np.mean(counts.argmax(axis=1) == yte))
    print(f"snnTorch float spike-count accuracy: {acc:.4f}")

    import nir
    from snntorch.export_nir import export_to_nir
    reset(net)
    graph = export_to_nir(net, torch.zeros(64))  # snnTorch 1.0 wants one unbatched sample
    nir.write(str(HERE / "spiking_digits.nir"), graph)
    np.savez_compressed(HERE / "calib.npz", x=xtr[:256].astype(np.uint8))
    np.savez_compressed(HERE / "test.npz", x=xte.astype(np.uint8), y=yte)
    (HERE / "float.json").write_text(json.dumps({"snntorch_accuracy": acc, "steps": STEPS}, indent=2) + "\n")


if __name__ == "__main__":
    main()
