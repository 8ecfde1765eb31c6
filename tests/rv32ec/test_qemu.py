"""Cross-check under qemu-riscv32 user mode with a CPU that lacks the M extension (and A, F, D): the
same sources built with -DQEMU_USER read samples on stdin and write outputs on stdout; a stray
multiply would raise SIGILL."""

import shutil
import subprocess

import numpy as np
import pytest

from conftest import need_toolchain
from lbc.ir.interpreter import run as interpret
from lbc.ir.quant import quantize_input

QEMU_CPU = "rv32,e=true,i=false,h=false,m=false,a=false,f=false,d=false"


def qemu():
    need_toolchain()
    q = shutil.which("qemu-riscv32")
    if not q:
        pytest.skip("qemu-riscv32 not installed (apt install qemu-user; make test does this)")
    if not shutil.which("make"):
        pytest.skip("make not installed")
    return q


@pytest.mark.parametrize("q", ["int4", "ternary"])
def test_qemu_no_m_extension_matches_interpreter(digits_rv32ec, digits, q):
    exe = qemu()
    c = digits_rv32ec(q)
    r = subprocess.run(["make", "-s", "qemu"], cwd=c.outdir, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    x = digits["x"][:100]
    xq = quantize_input(x, c.graph.types[c.graph.inputs[0]].exp)
    r = subprocess.run([exe, "-cpu", QEMU_CPU, str(c.outdir / "model_qemu.elf")], input=xq.tobytes(),
                       capture_output=True, timeout=120)
    assert r.returncode == 0, (r.returncode, r.stderr)
    y = np.frombuffer(r.stdout, dtype=np.int8).reshape(len(x), -1)
    np.testing.assert_array_equal(y, interpret(c.graph, xq)[0])


def test_qemu_cpu_string_traps_a_multiply(tmp_path):
    """The CPU string really lacks M: a mul raises SIGILL."""
    exe = qemu()
    (tmp_path / "m.S").write_text(".globl _start\n_start:\n  li a0, 3\n  mul a0, a0, a0\n  li t0, 93\n  ecall\n")
    r = subprocess.run(["riscv64-unknown-elf-gcc", "-march=rv32em", "-mabi=ilp32e", "-nostdlib", "-nostartfiles",
                        "-Ttext=0x10000", "m.S", "-o", "m.elf"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    ok = subprocess.run([exe, "-cpu", "rv32,e=true,i=false,h=false", str(tmp_path / "m.elf")], capture_output=True)
    assert ok.returncode == 9  # with M: exits with 3*3
    bad = subprocess.run([exe, "-cpu", QEMU_CPU, str(tmp_path / "m.elf")], capture_output=True)
    assert bad.returncode == -4 or bad.returncode == 132, bad.returncode  # SIGILL
