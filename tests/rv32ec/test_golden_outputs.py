"""Firmware outputs identical to the reference interpreter, for every weight dtype and every kernel
family; every built image is RV32EC-clean (no multiply, no libgcc helper, no x16..x31)."""

import numpy as np
import pytest

from conftest import QUANTS
from lbc.backends.rv32ec import isa
from lbc.backends.rv32ec.kernels import STACK_MIN
from lbc.driver import read_manifest
from lbc.ir.interpreter import run as interpret
from lbc.ir.quant import quantize_input


def run_all(c, x, count=2):
    xq = quantize_input(x, c.graph.types[c.graph.inputs[0]].exp)
    y, stats = c.target.run(c.outdir, read_manifest(c.outdir), xq, count=count)
    ref = interpret(c.graph, xq)[0]
    return y, ref, stats


@pytest.mark.parametrize("q", QUANTS)
def test_digits_firmware_matches_interpreter(digits_rv32ec, digits, q):
    c = digits_rv32ec(q)
    x = np.concatenate([digits["x"], digits["calib"]])  # 616 inputs
    assert len(x) >= 200
    y, ref, stats = run_all(c, x)
    np.testing.assert_array_equal(y, ref)
    assert stats["stack_peak_bytes"] <= STACK_MIN
    assert 0 < stats["instructions_per_inference"] < stats["instructions_reset_to_exit"]
    assert stats["est_ch32v003_cycles"] > stats["instructions_per_inference"]
    b = c.report["build"]
    assert b["flash_used"] <= 16 * 1024 and b["ram_static"] + stats["stack_peak_bytes"] <= 2 * 1024


@pytest.mark.parametrize("q", QUANTS)
def test_image_is_rv32ec_clean(digits_rv32ec, q):
    c = digits_rv32ec(q)
    problems, n = isa.check_elf(c.outdir / "model.elf")
    assert problems == [] and n > 100
    assert not [s for s in isa.symbol_names(c.outdir / "model.elf") if "mul" in s and s.startswith("__")]


# every kernel family on the dtypes it serves (bigger flash where fully unrolled code needs it)
FORCED = [("ternary", "lut", {}), ("pentary", "lut", {}), ("int2", "lut", {}), ("ternary", "bits", {}),
          ("int8", "bits", {}), ("int4", "bitsp", {}), ("pentary", "bitsp", {}),
          ("int4", "unrolled", {"flash_bytes": 64 * 1024}), ("int8", "unrolled", {"flash_bytes": 96 * 1024})]


@pytest.mark.parametrize("q,kernel,extra", FORCED, ids=[f"{q}-{k}" for q, k, _ in FORCED])
def test_each_kernel_family_matches_interpreter(digits_rv32ec, digits, q, kernel, extra):
    c = digits_rv32ec(q, kernel=kernel, **extra)
    kinds = {la["kernel"] for la in c.report["emit"]["layers"]}
    assert kinds == {kernel}, kinds
    y, ref, _ = run_all(c, digits["x"][:120], count=1)
    np.testing.assert_array_equal(y, ref)
    assert isa.check_elf(c.outdir / "model.elf")[0] == []


def test_targets_of_the_issue_on_digits(digits_rv32ec, digits):
    """Instructions per MAC measured in the emulator (the BitNetMCU-shaped figures are in bench/)."""
    for q, limit in (("int4", 8), ("ternary", 4)):
        c = digits_rv32ec(q)
        _, _, stats = run_all(c, digits["x"][:4], count=4)
        assert stats["instructions_per_mac"] <= limit, (q, stats)
