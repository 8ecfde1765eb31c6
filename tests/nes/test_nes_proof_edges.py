"""The NES kernels' accumulator proofs at their edges (fixed neurons, fixed seeds).

For each proof the compiler relies on - the unrolled kernel's leaky 16-bit chain (Z in [2, 65279]), the
loop kernel's 16-/24-bit accumulator and the table kernel's 16-bit sum - neurons sit exactly at the
bound and one past it; the one past must get the safe path (another start value, a wider accumulator,
another kernel, or a refusal). Every neuron runs on both of its extreme inputs in py65 (single neurons)
or sim65 (whole layers), with biases that put the extreme sums on a rounding step, so an accumulator off
by one changes the output. Loosening any of these bounds by one makes a test here fail."""

import numpy as np
import pytest

from lbc.backends.nes import lower as L
from lbc.driver import compile_model, read_manifest
from lbc.errors import TargetError
from lbc.ir.interpreter import run as interpret
from nes_util import build_neurons, need_cc65, need_py65
from proof_util import dense_graph, extreme_inputs, sensitive_neurons
from test_nes_kernels import check

SIGNED, RELU = (0, 255), (0, 127)
RANGES = {"ternary": (-1, 1), "pentary": (-2, 2), "int2": (-2, 1), "int4": (-8, 7)}


def neurons_of(w, urange, k=8, ds=(0, -1)):
    """The sensitive neurons of weight row w for inputs u in urange (signed: x = u - 128)."""
    ul, uh = urange
    o_in = 128 if urange == SIGNED else 0
    W, B, M, Kk = sensitive_neurons([w], k, xlo=ul - o_in, xhi=uh - o_in, ds=ds)
    return [{"w": W[j], "b": int(B[j]), "m": 1, "k": k, "lo": -128, "hi": 127, "o_in": o_in, "o_out": 128,
             "ul": ul, "uh": uh} for j in range(len(W))]


def run_neurons(tmp_path, w, urange, kernel, ds=(0, -1)):
    neurons = neurons_of(np.asarray(w, np.int64), urange, ds=ds)
    rom, _ = build_neurons(tmp_path, neurons, len(w), kernel)
    check(rom, neurons, len(w), np.random.default_rng(5), n_random=4)


# (name, weights, inputs, exact chain expected, the chain's Z at its start value or at X0 = 1).
# Z = 65280 can end as X = 256, A = 0 (the carry counter wraps) or as X = 255, A = 255, depending on the
# order of the carries; 65279 is the largest Z that is exact whatever the path. (On the all-maximum input
# of [1] * 255 the path happens to end at X = 255, so py65 only shows wrong outputs from Z = 65406 on.)
UNROLLED = [
    ("largest signed ternary sum", [1] * 254, SIGNED, True, (255, 65025)),
    ("one past it", [1] * 255, SIGNED, False, (255, 65280)),
    ("Z = 65535 (the issue's loosened bound: wrong outputs)", [1] * 256, SIGNED, False, (255, 65535)),
    ("mixed signs, largest", [1] * 200 + [-1] * 54, SIGNED, True, (255, 65025)),
    ("mixed signs, one past", [1] * 200 + [-1] * 55, SIGNED, False, None),
    ("Z = 65279 exactly (pentary, ReLU inputs)", [2] * 126 + [1] + [-2] * 128 + [-1], RELU, True, (319, 65279)),
    ("Z = 2 exactly", [1] * 25 + [-1] * 4, RELU, True, (2, 3685)),
    ("Z = 1 at X0 = 1: start one higher", [1] * 25 + [-1] * 2, RELU, True, (256, 3685)),
]


@need_cc65
@need_py65
@pytest.mark.parametrize("name,w,urange,exact,z", UNROLLED, ids=[u[0] for u in UNROLLED])
def test_unrolled_chain_edges(tmp_path, name, w, urange, exact, z):
    planes = L.planes_of(np.asarray(w))
    plan = L.unrolled_chain_plan(planes, *urange)
    if plan is not None:  # whatever the planner allows must be exact on the neuron's extremes
        run_neurons(tmp_path, w, urange, "unrolled")
    assert (plan is not None) == exact, plan
    if z is not None:
        zmin, zmax, *_ = L.unrolled_chain_range(planes, plan[0] if plan else 1, *urange)
        assert (zmin, zmax) == z
    if not exact:  # the safe path: the loop kernel, on the same extremes
        run_neurons(tmp_path, w, urange, "loop")


def edge_row(dt, urange, rmax_of, target, seed):
    """A weight row (fixed seed) whose proven raw maximum rmax_of(row) is exactly `target`: random
    non-positive weights, then the largest positive weight until the gap is closed."""
    lo, hi = RANGES[dt]
    uh = urange[1]
    rng = np.random.default_rng(seed)
    for _ in range(5000):
        w = np.r_[rng.integers(lo, 1, int(rng.integers(2, 40))), hi]
        gap = target - rmax_of(w)
        if gap < 0 or gap % uh:
            continue
        n = gap // uh
        w = np.r_[w, [hi] * (n // hi) + ([n % hi] if n % hi else [])].astype(np.int64)
        if len(w) <= 120 and rmax_of(w) == target:
            return w
    raise AssertionError("no edge row found")


def loop_rmax(urange):
    return lambda w: L.loop_offset(L.planes_of(w), *urange, len(w))[3]


@need_cc65
@need_py65
@pytest.mark.parametrize("urange", [SIGNED, RELU], ids=["signed", "relu"])
@pytest.mark.parametrize("past", [0, 1], ids=["at", "past"])
def test_loop_accumulator_edges(tmp_path, urange, past):
    """raw maximum 0xFFFF: a 16-bit accumulator; 0x10000: 24 bits."""
    w = edge_row("int4", urange, loop_rmax(urange), L.ACC16_MAX + past, seed=3 + past)
    off0, off, rmin, rmax, bits = L.loop_offset(L.planes_of(w), *urange, len(w))
    assert (rmax, bits) == (0xFFFF + past, 24 if past else 16)
    # a wrapped accumulator is off by 2**16: neurons on the rounding step itself see it (the ones just
    # below the step would need a requant base below 0 that a 16-bit raw cannot have: refused)
    run_neurons(tmp_path, w, urange, "loop", ds=(0,))


def _table_rmax_exact(w, urange):
    """The table kernel's raw maximum without its 16-bit check (to construct the one-past row)."""
    ul, uh = urange
    vlo, vhi = int(w[w < 0].sum()) * uh + int(w[w > 0].sum()) * ul, int(w[w > 0].sum()) * uh + int(w[w < 0].sum()) * ul
    return vhi - (vlo // 8) * 8


@need_cc65
@pytest.mark.parametrize("past", [0, 1], ids=["at", "past"])
def test_table_kernel_edges(tmp_path, past):
    """A layer whose neurons' sums reach 0xFFFF gets the table kernel and is exact on every neuron's
    extremes in sim65; at 0x10000 the table kernel is refused (even when requested) and another one runs."""
    w = edge_row("int4", SIGNED, lambda r: _table_rmax_exact(r, SIGNED), L.ACC16_MAX + past, seed=7 + past)
    assert (L.table_offset(w, *SIGNED, 4) is None) == bool(past)
    W, B, M, K = sensitive_neurons([w], ds=(0,))  # see test_loop_accumulator_edges
    g = dense_graph(W, B, M, K, "int4")
    for kernel in ("table", "auto"):  # a requested kernel that cannot be proven is not used
        c = compile_model(g, tmp_path / kernel, "nes", "int4", passes=["plan-memory"],
                          target_options={"kernel": kernel})
        used = {r["kernel"] for r in c.report["emit"]["layers"]}
        if past:
            assert "table" not in used
        elif kernel == "table":
            assert used == {"table"}
        x = extreme_inputs(W)
        y, _ = c.target.run(c.outdir, read_manifest(c.outdir), x)
        np.testing.assert_array_equal(y.reshape(len(x), -1), interpret(c.graph, x)[0].reshape(len(x), -1))


def test_requant_difference_stays_16_bits():
    """A 16-bit raw reaching 0xFFFF with a high clamp: the multiply path forms D = raw - B in 16 bits and
    compares it with the clamp, so B may not lie below rmax - 0xFFFF (that neuron is refused instead;
    found by the loop edge neurons above)."""
    refused = planned = 0
    for K in range(-384, 384):
        try:
            p = L.plan_requant(0, 0xFFFF, K, 1, 8, -128, 127, 128)
        except TargetError:
            refused += 1
            continue
        planned += 1
        assert p.kind != "multiply" or p.DH is None or 0xFFFF - p.B <= 0xFFFF, (K, p)
        L.verify_requant(p, 0, 0xFFFF, K, 1, 8, -128, 127, 128)
    assert refused and planned
