"""The RV32EC dense kernels' width and no-wrap assumptions at their edges (fixed weights, fixed seeds).

What the kernels of backends/rv32ec/kernels.py rely on, and where it is tested here:

* lut: the weight byte is 2*code of a group of g weights and is loaded with lbu, so 2*(V**g - 1) <= 255
  (GROUPS); the largest g of every dtype is at that bound, g + 1 is past it (test_group_code_bytes).
* lut and bits: table entries are int16 (lh). They hold sums of at most g inputs times |w| <= 2 (lut) or
  subset sums of 4 inputs (bits): at most 3 * 2 * 128 = 768, within int16 by construction, so there is
  no "one past" to compile. The construction is run at its maximum for every group size: every weight at its extreme value, all inputs -128 / 127 and every
  neuron's own worst-case sign pattern (test_lut_extremes, test_bits_extremes).
* lut: the table offsets of one chunk are lh immediates, (C - 1) * stride <= 2047: the largest chunk the
  planner allows is checked against that bound (test_lut_chunk_offsets).
* unrolled: inputs are read with lb at their index and accumulators stored with sw at 4 * j (12-bit
  immediates): K <= 2048. K = 2048 is compiled unrolled and runs; K = 2049 must be refused when the
  unrolled kernel is forced and get another kernel otherwise (test_unrolled_input_offsets).
* bitsp: the paired-nibble kernel addresses its tables with %lo() of absolute addresses, so the planner
  offers it only while arena + 4 * N + 1024 + 64 <= 2048 (target.py; the linker asserts the real end).
  Here arena = K + N rounded up to 4 bytes: K + 5N = 960 (exactly 2048) gets bitsp and runs exact; one
  more input makes it 2052, the next value the sum can take, and is refused when forced and gets another
  kernel otherwise (test_paired_tables_low_sram).
* every kernel's 32-bit accumulators: tests/rv32ec/test_requant_edges.py.

Biases put each neuron's extreme sums exactly on (and just below) a rounding step, so an entry or a
sum that is off by one changes the output (tests/proof_util.py)."""

from pathlib import Path

import numpy as np
import pytest

from conftest import need_toolchain
from lbc.backends.base import template_env
from lbc.backends.rv32ec import kernels as K
from lbc.driver import compile_model, read_manifest
from lbc.errors import TargetError
from lbc.ir.interpreter import run as interpret
from proof_util import dense_graph, extreme_inputs, sensitive_neurons

BIG = {"flash_bytes": 64 * 1024, "ram_bytes": 8 * 1024}
RANGE = {"ternary": (-1, 1), "pentary": (-2, 2), "int2": (-2, 1), "int4": (-8, 7), "int8": (-128, 127)}
KDT = {"ternary": "ternary", "pentary": "pentary", "int2": "i2", "int4": "i4", "int8": "i8"}


def extreme_rows(quant, K_in, seed, mixed=1):
    """Rows at the dtype's extremes: all largest, all smallest, and (fixed seed) `mixed` random mixes of both."""
    lo, hi = RANGE[quant]
    rng = np.random.default_rng(seed)
    return np.array([np.full(K_in, hi), np.full(K_in, lo)] + [np.where(rng.random(K_in) < 0.5, lo, hi)
                                                              for _ in range(mixed)])


def run_edge(tmp_path, quant, rows, kernel, options=BIG):
    """Compile the sensitive neurons of `rows` for rv32ec with `kernel` forced, run both extremes of every
    neuron in unicorn, compare bit for bit with the interpreter. Returns the layer's report entry."""
    need_toolchain()
    W, B, M, Kk = sensitive_neurons(rows, k=10)
    g = dense_graph(W, B, M, Kk, quant)
    c = compile_model(g, tmp_path / kernel, "rv32ec", quant, passes=["plan-memory"],
                      target_options={**options, "kernel": kernel})
    x = extreme_inputs(W)
    y, _ = c.target.run(c.outdir, read_manifest(c.outdir), x)
    ref = interpret(c.graph, x)[0]
    np.testing.assert_array_equal(y.reshape(len(x), -1), ref.reshape(len(x), -1))
    assert {-100, 100} <= set(ref.reshape(-1).tolist())  # the extreme sums reached their rounding steps
    (layer,) = c.report["emit"]["layers"]
    return layer


def test_group_code_bytes():
    """The largest group of every lut dtype codes into one byte (2*code <= 254, lbu), one more input
    would not; pack_lut stores the largest code unwrapped."""
    for dt, groups in K.GROUPS.items():
        lo, V = K.VALUE_SET[dt]
        g = max(groups)
        assert 2 * (V**g - 1) <= 254 < 2 * (V ** (g + 1) - 1), dt
        w = np.full((1, g), lo + V - 1)
        packed, _ = K.pack_lut(w, V, lo, g, 1)
        assert int(packed[0]) == 2 * (V**g - 1)


def test_lut_chunk_offsets():
    """Every table offset of a chunk is an lh immediate: (C - 1) * stride <= 2047 for every option."""
    for dt in K.GROUPS:
        lay = K.DenseLayer(None, "t", np.ones((2, 600), np.int64), dt, None, (1,), (0,), -128, 127, 1, False)
        opts = [o for o in K.layer_options(lay, _env(), 10**6, 10**6, "lut") if o.kind == "lut"]
        assert opts
        for o in opts:
            assert (o.params["C"] - 1) * o.params["stride"] <= 2047
        # the largest chunk of the largest table is the last one below the bound
        st = max(o.params["stride"] for o in opts)
        cmax = max(o.params["C"] for o in opts if o.params["stride"] == st)
        bigger = [c for c in K.LUT_CHUNKS if c > cmax]
        assert not bigger or (bigger[0] - 1) * st > 2047, (dt, cmax)


def _env():
    return template_env(Path(K.__file__).parent / "templates")


LUT_CASES = [(q, g) for q in ("ternary", "pentary", "int2") for g in K.GROUPS[KDT[q]]]


@pytest.mark.parametrize("quant,g", LUT_CASES, ids=[f"{q}-g{g}" for q, g in LUT_CASES])
def test_lut_extremes(tmp_path, monkeypatch, quant, g):
    """Group-code tables with every entry at its largest magnitude (g inputs at -128 or 127 times the
    extreme weights), for every group size (the planner is offered only g): bit-exact in unicorn. The
    largest g of each dtype also puts the weight bytes at their largest code (test_group_code_bytes)."""
    monkeypatch.setitem(K.GROUPS, KDT[quant], (g,))
    layer = run_edge(tmp_path, quant, extreme_rows(quant, 7 * g + 1, seed=13, mixed=3), "lut")
    assert layer["kernel"] == "lut" and f"lut g={g} " in layer["detail"], layer


@pytest.mark.parametrize("kernel", ["bits", "bitsp"])
@pytest.mark.parametrize("quant", ["int8", "int4"])
def test_bits_extremes(tmp_path, quant, kernel):
    """Bit-serial (and paired-nibble) subset-sum tables at their largest entries (4 inputs of -128 / 127),
    every plane set by the weights -128 / 127 (int8) or -8 / 7: bit-exact in unicorn."""
    layer = run_edge(tmp_path, quant, extreme_rows(quant, 70, seed=13), kernel)
    assert layer["kernel"] == kernel, layer
    if kernel == "bitsp":
        assert "paired nibbles" in layer["detail"]


@pytest.mark.parametrize("past", [0, 1], ids=["at", "past"])
def test_unrolled_input_offsets(tmp_path, past):
    """K = 2048 inputs: the last lb offset is 2047, the unrolled kernel is used and exact; K = 2049: the
    forced unrolled kernel is refused and the planner takes another kernel."""
    need_toolchain()
    n = 2048 + past
    rows = np.array([np.r_[np.ones(n - 1, np.int64), [-1]]])
    if past:
        W, B, M, Kk = sensitive_neurons(rows, k=10)
        g = dense_graph(W, B, M, Kk, "ternary")
        with pytest.raises(TargetError):
            compile_model(g, tmp_path / "forced", "rv32ec", "ternary", passes=["plan-memory"],
                          target_options={**BIG, "kernel": "unrolled"})
        layer = run_edge(tmp_path, "ternary", rows, "auto")
        assert layer["kernel"] != "unrolled", layer
        return
    layer = run_edge(tmp_path, "ternary", rows, "unrolled")
    assert layer["kernel"] == "unrolled", layer


@pytest.mark.parametrize("past", [0, 1], ids=["at", "past"])
def test_paired_tables_low_sram(tmp_path, past):
    """12 outputs over 900 (901) int4 inputs: arena 912 (916, aligned) + 48 B accumulators + 1088 = 2048
    (2052)."""
    need_toolchain()
    rows = extreme_rows("int4", 900 + past, seed=13)
    if past:
        W, B, M, Kk = sensitive_neurons(rows, k=10)
        with pytest.raises(TargetError):
            compile_model(dense_graph(W, B, M, Kk, "int4"), tmp_path / "forced", "rv32ec", "int4",
                          passes=["plan-memory"], target_options={**BIG, "kernel": "bitsp"})
        assert run_edge(tmp_path, "int4", rows, "auto")["kernel"] != "bitsp"
        return
    layer = run_edge(tmp_path, "int4", rows, "bitsp")
    assert layer["kernel"] == "bitsp", layer
