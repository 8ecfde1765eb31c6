"""Fashion-MNIST at 16x16, from the Debian package dataset-fashion-mnist (installed by make setup).

The closest offline stand-in for BitNetMCU's MNIST: same IDX files, 28x28 grey images, 10 classes.
Images are resized 28 -> 16 by exact area averaging (a fixed linear map, so every run gives the same
arrays) and scaled to [0, 1]. numpy only: the demo needs no torch.
"""

import gzip
import subprocess
from pathlib import Path

import numpy as np

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
SIZE = 16


def _files():
    try:
        listed = subprocess.run(["dpkg", "-L", "dataset-fashion-mnist"], capture_output=True, text=True).stdout.split()
    except OSError:
        listed = []
    files = {Path(p).name: Path(p) for p in listed if p.endswith("ubyte.gz")}
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        files.setdefault(name, DEBIAN_DIR / name)
        if not files[name].exists():
            raise FileNotFoundError(f"{files[name]} is missing: apt-get install dataset-fashion-mnist "
                                    f"(make setup installs it)")
    return files


def _idx(path):
    raw = gzip.open(path, "rb").read()
    nd = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * nd).reshape(dims)


def area_matrix(n_in, n_out):
    """R [n_out, n_in]: each output pixel is the mean of the input interval it covers."""
    r = np.zeros((n_out, n_in))
    scale = n_in / n_out
    for i in range(n_out):
        lo, hi = i * scale, (i + 1) * scale
        for j in range(int(np.floor(lo)), int(np.ceil(hi))):
            r[i, j] = max(0.0, min(hi, j + 1) - max(lo, j))
    return r / scale


def resize(images, size=SIZE):
    r = area_matrix(images.shape[-1], size)
    return (r @ (images.astype(np.float64) / 255.0) @ r.T).astype(np.float32)


def load(split):
    """(x [N, 256] float32 in [0, 1], y [N] int64) for split 'train' (60000) or 'test' (10000)."""
    f = _files()
    pre = "train" if split == "train" else "t10k"
    x = resize(_idx(f[f"{pre}-images-idx3-ubyte.gz"]))
    y = _idx(f[f"{pre}-labels-idx1-ubyte.gz"]).astype(np.int64)
    return x.reshape(len(x), -1), y


def calibration():
    """The PTQ calibration batch: the first 1000 training images."""
    return load("train")[0][:1000]
