"""The NES unrolled kernel's bit-plane doubling at its edge (fixed neurons).

Between two bit planes the 16-bit raw sum is doubled (asl/rol), so the planner requires every raw that is
doubled to be at most CHAIN_DOUBLE_MAX = 0x7FFF (backends/nes/lower.py). After a non-empty plane the
chain's own Z bound (65279) is the tighter one; after an empty plane (pentary weights all +-2: the
|w| = 1 plane is empty and only doubles) the doubling limit is the one that binds. Neurons on ReLU inputs
(u in 0..127):

* at: 254 weights +2 and 2 weights -2. X0 = 1 is too low for the chain (Z = 1), X0 = 2 makes the raw
  before the doubling reach 127 * 254 + 255 * 2 - 1 = 0x7FFF exactly: unrolled, exact in py65.
* past: 252 weights +2 and 5 weights -2. The first start value the chain allows, X0 = 3, makes it
  127 * 252 + 255 * 3 - 1 = 0x8000; every higher X0 only raises it: no unrolled plan. Its 257 inputs
  are also past the loop kernel's 8-bit input index (X, abs,x; which wrapped silently before this test
  found it), so the loop kernel refuses it too.

The loop kernel's own input-count bound is tested alongside: 256 inputs run exact, 257 are refused.

Both extremes of each neuron run with biases on a rounding step (tests/proof_util.py)."""

import numpy as np
import pytest

from lbc.backends.nes import lower as L
from lbc.errors import TargetError
from nes_util import need_cc65, need_py65
from test_nes_proof_edges import RELU, run_neurons

ROWS = {"at": ([2] * 254 + [-2] * 2, 2, 0x7FFF), "past": ([2] * 252 + [-2] * 5, 3, 0x8000)}


@need_cc65
@need_py65
@pytest.mark.parametrize("case", ["at", "past"])
def test_plane_doubling_edges(tmp_path, case):
    w, x0, dbl = ROWS[case]
    w = np.asarray(w, np.int64)
    planes = L.planes_of(w)
    assert [p for p, _ in planes] == [1, 0] and not planes[1][1]  # the last plane is empty: it only doubles
    # X0 is the first start value the chain's Z bounds allow, and there the doubled raw is at / past the limit
    for X in range(x0):
        zmin, *_ = L.unrolled_chain_range(planes, X, *RELU)
        assert zmin < L.CHAIN_ZMIN
    zmin, zmax, d, *_ = L.unrolled_chain_range(planes, x0, *RELU)
    assert zmin >= L.CHAIN_ZMIN and zmax <= L.CHAIN_ZMAX and d == dbl
    plan = L.unrolled_chain_plan(planes, *RELU)
    if plan is not None:  # whatever the planner allows runs exact (a raw of 0x8000 doubled is wrong in py65)
        run_neurons(tmp_path, w, RELU, "unrolled")
    if case == "at":
        assert plan is not None and plan[0] == x0
    else:
        assert plan is None
        with pytest.raises(TargetError, match="8-bit input index"):
            run_neurons(tmp_path, w, RELU, "loop")


@need_cc65
@need_py65
@pytest.mark.parametrize("past", [0, 1], ids=["at", "past"])
def test_loop_input_count_edges(tmp_path, past):
    """The loop kernel indexes its inputs with X: 256 inputs (the last at X = 255) are exact on both
    extremes, 257 are refused (X would wrap to input 0)."""
    w = np.array([2] * (251 + past) + [-2] * 5, np.int64)
    if past:
        with pytest.raises(TargetError, match="8-bit input index"):
            run_neurons(tmp_path, w, RELU, "loop")
    else:
        run_neurons(tmp_path, w, RELU, "loop")
