"""The requantisation's one-product path (lower.emit_multiply: when D = raw - B stays below 256 wherever
the multiply runs, D_h = 0 and only D_l * m is formed) at its edge: plans with dmax = 255 (the path
taken) and 256 (the full 16-bit product), for k < 8 and k >= 8, each checked under py65 on every raw
value of its range."""

import numpy as np
import pytest

from lbc.backends.nes import lower as L
from nes_util import build_neurons, need_cc65, need_py65

W = np.array([1, 1])  # raw = u0 + u1 + offset: 511 values for inputs in [0, 255]


def find(dmax, small_k):
    planes = L.planes_of(W)
    X0, off, rmin, rmax = L.unrolled_chain_plan(planes, 0, 255)
    for k in (range(1, 8) if small_k else range(8, 14)):
        for m in range(3, 256, 10):
            for b in range(-520, 60, 3):
                p = L.plan_requant(rmin, rmax, b - off, m, k, 0, 127, 0)
                if p.kind == "multiply" and p.dmax == dmax:
                    return {"w": W, "b": b, "m": m, "k": k, "lo": 0, "hi": 127, "o_in": 0, "o_out": 0,
                            "ul": 0, "uh": 255}
    raise AssertionError(f"no plan with dmax={dmax}, small_k={small_k}")


@need_cc65
@need_py65
@pytest.mark.parametrize("small_k", [True, False])
def test_one_product_requant_at_its_edge(tmp_path, small_k):
    neurons = [find(255, small_k), find(256, small_k)]
    rom, plans = build_neurons(tmp_path, neurons, 2, "unrolled")
    assert [p.dmax for p in plans] == [255, 256]
    for u1 in (0, 255):
        for u0 in range(256):  # with u1 in {0, 255}: every raw value of the range
            u = np.array([u0, u1])
            rom.poke(rom.labels["inp"], u)
            rom.call("entry")
            want = [int(L.requant_ref(int(u.sum()) + n["b"], n["m"], n["k"], 0, 127)) for n in neurons]
            assert list(rom.peek(rom.labels["outp"], 2)) == want, (u0, u1)
