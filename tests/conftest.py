"""Shared fixtures: the digits example and a builder for small ONNX models."""

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

DIGITS = ROOT / "examples" / "digits"


@pytest.fixture(scope="session")
def digits():
    t = np.load(DIGITS / "test.npz")
    return {"model": DIGITS / "mlp.onnx", "calib": np.load(DIGITS / "calib.npy"), "x": t["x"], "y": t["y"],
            "calib_path": DIGITS / "calib.npy", "test_path": DIGITS / "test.npz"}
