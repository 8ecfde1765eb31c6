"""The NES dense kernels and the requantisation, neuron by neuron, under py65: every weight dtype,
both kernels (unrolled and loop), signed and ReLU inputs, 16- and 24-bit accumulators, the
threshold and multiply requant paths, and the corner inputs (all-min, all-max, worst signs)."""

import numpy as np
import pytest

from lbc.backends.nes import lower as L
from nes_util import build_neurons, need_cc65, need_py65

RANGES = {"ternary": (-1, 1), "pentary": (-2, 2), "int2": (-2, 1), "int4": (-8, 7)}


def ref(n, u):
    x = np.asarray(u, np.int64) - n["o_in"]
    acc = int(np.dot(np.asarray(n["w"], np.int64), x)) + int(n["b"])
    return (int(L.requant_ref(acc, n["m"], n["k"], n["lo"], n["hi"])) + n["o_out"]) & 0xFF


def random_neurons(rng, dt, K, count, signed, relu):
    lo_w, hi_w = RANGES[dt]
    out = []
    for _ in range(count):
        w = rng.integers(lo_w, hi_w + 1, K)
        w[rng.random(K) < 0.3] = 0
        out.append({"w": w, "b": int(rng.integers(-300, 300)), "m": int(rng.integers(1, 256)),
                    "k": int(rng.integers(0, 17)), "lo": 0 if relu else -128, "hi": 127,
                    "o_in": 128 if signed else 0, "o_out": 0 if relu else int(rng.choice([0, 128])),
                    "ul": 0, "uh": 255 if signed else 127})
    return out


def extreme_inputs(neurons, ul, uh):
    """Both extreme inputs of every neuron: its largest sum (u = uh where w > 0, ul where w < 0) and its
    smallest (the other way round), plus the all-min and all-max vectors."""
    K = len(neurons[0]["w"])
    out = [np.full(K, ul), np.full(K, uh)]
    for n in neurons:
        w = np.asarray(n["w"])
        out += [np.where(w > 0, uh, ul), np.where(w > 0, ul, uh)]
    return out


def check(rom, neurons, K, rng, n_random=40):
    ul, uh = neurons[0]["ul"], neurons[0]["uh"]
    inputs = extreme_inputs(neurons, ul, uh) + [rng.integers(ul, uh + 1, K) for _ in range(n_random)]
    for t, u in enumerate(inputs):
        rom.poke(rom.labels["inp"], u)
        rom.call("entry")
        got = rom.peek(rom.labels["outp"], len(neurons))
        want = [ref(n, u) for n in neurons]
        assert list(got) == want, (t, list(u))


KERNELS = ["unrolled", "unrolled_call", "loop"]


@need_cc65
@need_py65
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dt", list(RANGES))
def test_random_neurons(tmp_path, dt, kernel):
    rng = np.random.default_rng(100 + 10 * list(RANGES).index(dt) + KERNELS.index(kernel))  # fixed per case
    for signed, relu in ((True, True), (False, False)):
        K = int(rng.integers(3, 40))
        neurons = random_neurons(rng, dt, K, 6, signed, relu)
        rom, _ = build_neurons(tmp_path, neurons, K, kernel)
        check(rom, neurons, K, rng)


@need_cc65
@need_py65
@pytest.mark.parametrize("kernel", ["unrolled", "unrolled_call", "loop"])
def test_corner_neurons(tmp_path, kernel):
    """Single weights, only negative weights, empty bit planes, all zero, big int4 fans (loop: 24-bit)."""
    base = {"b": 5, "lo": -128, "hi": 127, "o_in": 128, "o_out": 128, "ul": 0, "uh": 255}
    K = 64
    ws = [np.eye(1, K, 3, dtype=np.int64)[0], -np.eye(1, K, 0, dtype=np.int64)[0],
          np.r_[-1, -1, -1, np.zeros(K - 3, np.int64)], np.r_[-8, 0, 4, 7, -8, np.zeros(K - 5, np.int64)],
          np.r_[4, 0, 4, -4, np.zeros(K - 4, np.int64)], np.zeros(K, np.int64), np.full(K, 7 if kernel == "loop" else 3),
          np.full(K, -8 if kernel == "loop" else -3)]
    mk = [(200, 12), (100, 9), (1, 0), (255, 16), (3, 1), (50, 5), (200, 14), (37, 12)]
    neurons = [{**base, "w": w, "m": m, "k": k} for w, (m, k) in zip(ws, mk)]
    rom, plans = build_neurons(tmp_path, neurons, K, kernel)
    check(rom, neurons, K, np.random.default_rng(1))


def test_requant_plans_exhaustive():
    """The requant plan equals clamp(((acc*m + r) >> k), lo, hi) for every raw value (pure Python)."""
    rng = np.random.default_rng(7)
    kinds = set()
    for _ in range(300):
        rmin = int(rng.integers(0, 30000))
        rmax = rmin + int(rng.integers(0, 35000))
        K = int(rng.integers(-40000, 10000))
        m, k = int(rng.integers(0, 256)), int(rng.integers(0, 24))
        lo, hi = (0, 127) if rng.random() < 0.5 else (-128, 127)
        o = int(rng.choice([0, 128]))
        try:
            p = L.plan_requant(rmin, rmax, K, m, k, lo, hi, o)
        except Exception as e:  # noqa: BLE001 - only the documented refusal is allowed
            assert "too small" in str(e) or "more than 16 bits" in str(e), e
            continue
        kinds.add(p.kind)
        L.verify_requant(p, rmin, rmax, K, m, k, lo, hi, o)
    assert kinds == {"const", "thresholds", "multiply"}


def test_chain_plan_refuses_what_16_bits_cannot_hold():
    planes = L.planes_of(np.full(300, 1))  # 300 * 255 > 65279: no X0 makes the chain exact
    assert L.unrolled_chain_plan(planes, 0, 255) is None
    assert L.unrolled_chain_plan(L.planes_of(np.full(250, 1)), 0, 255) is not None
    off0, off, rmin, rmax, bits = L.loop_offset(L.planes_of(np.full(300, -8)), 0, 255, 300)
    assert bits == 24 and rmin >= 0


def _table_mac(w, u, P, g, s0):
    """What the table kernel computes (build routine + one neuron of the MAC routine), modulo 2**16."""
    K = len(u)
    G = -(-K // g)
    up = np.zeros(G * g, np.int64)
    up[:K] = u
    table = [[int(sum(up[i * g + b] for b in range(g) if m >> b & 1)) for m in range(1 << g)] for i in range(G)]
    acc = s0 & 0xFFFF
    plane = P - 1
    for p, gi, col in L.table_slots(w[None, :], P, g):
        while plane > p:
            acc, plane = (acc * 2) & 0xFFFF, plane - 1
        t = table[gi][int(col[0])]
        acc = (acc - t if p == P - 1 else acc + t) & 0xFFFF
    while plane > 0:
        acc, plane = (acc * 2) & 0xFFFF, plane - 1
    return acc


@pytest.mark.parametrize("dt", list(RANGES))
def test_table_kernel_arithmetic(dt):
    """The table kernel's sum equals 2**(P-1)*s0 + w.u and stays in the proven range, on the extreme and
    random inputs of random and all-extreme neurons (pure Python; the sim65 model tests run the code)."""
    lo_w, hi_w = RANGES[dt]
    rng = np.random.default_rng(11)
    P = L.twos_planes(lo_w, hi_w)
    for K in (1, 5, 24, 49, 64, 90, 128):
        g = L.table_group(K)
        assert (-(-K // g) << g) <= L.TABLE_ENTRIES
        for ul, uh in ((0, 255), (0, 127)):
            for w in (rng.integers(lo_w, hi_w + 1, K), np.full(K, lo_w), np.full(K, hi_w), np.zeros(K, np.int64)):
                plan = L.table_offset(w, ul, uh, P)
                if plan is None:
                    assert np.abs(w).sum() * (uh - ul) > 0xFFFF - (1 << (P - 1))
                    continue
                s0, off, rmin, rmax = plan
                for u in (np.full(K, ul), np.full(K, uh), np.where(w > 0, uh, ul), np.where(w > 0, ul, uh),
                          rng.integers(ul, uh + 1, K)):
                    raw = _table_mac(w, u, P, g, s0)
                    assert raw == int(np.dot(w, u)) + off and rmin <= raw <= rmax
    assert L.table_group(257) is None and L.table_offset(np.full(64, -8), 0, 255, 4) is None
