"""Fashion-MNIST at 16x16 (examples/bitnetmcu/data.py: exact area resize of the Debian package's
images, [0, 1]) as [N, 1, 16, 16] images. numpy only."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("lbc_bitnetmcu_data",
                                               Path(__file__).resolve().parent.parent / "bitnetmcu" / "data.py")
_fm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fm)


def load(split):
    """(x [N, 1, 16, 16] float32 in [0, 1], y [N] int64) for split 'train' (60000) or 'test' (10000)."""
    x, y = _fm.load(split)
    return x.reshape(len(x), 1, 16, 16), y


def calibration():
    """The PTQ calibration batch: the first 1000 training images."""
    return load("train")[0][:1000]
