"""Fashion-MNIST at full 28x28 resolution, from the Debian package dataset-fashion-mnist (the IDX reader
of examples/bitnetmcu/data.py), scaled to [0, 1], as [N, 1, 28, 28] images. numpy only."""

import importlib.util
from pathlib import Path

import numpy as np

_spec = importlib.util.spec_from_file_location("lbc_bitnetmcu_data",
                                               Path(__file__).resolve().parent.parent / "bitnetmcu" / "data.py")
_fm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fm)


def load(split):
    """(x [N, 1, 28, 28] float32 in [0, 1], y [N] int64) for split 'train' (60000) or 'test' (10000)."""
    f = _fm._files()
    pre = "train" if split == "train" else "t10k"
    x = _fm._idx(f[f"{pre}-images-idx3-ubyte.gz"]).astype(np.float32) / 255.0
    y = _fm._idx(f[f"{pre}-labels-idx1-ubyte.gz"]).astype(np.int64)
    return x.reshape(len(x), 1, 28, 28), y


def calibration():
    """The PTQ calibration batch: the first 1000 training images."""
    return load("train")[0][:1000]
