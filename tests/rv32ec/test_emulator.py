"""The unicorn harness on hand-written programs: exact instruction counts, the lbc_infer window,
taken branches, stack peak, stack overflow into data, accesses beyond the part's RAM."""

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import need_toolchain
from lbc.backends.rv32ec.emulator import Firmware, FirmwareFault

RUNTIME = Path(__file__).resolve().parent.parent.parent / "runtime" / "rv32ec"

MAIN = """
    .section .noinit, "aw", @nobits
    .globl  buf
buf: .space 256
    .text
    .globl  main
main:
    addi    sp, sp, -16
    sw      ra, 12(sp)
    call    lbc_infer
    lw      ra, 12(sp)
    addi    sp, sp, 16
    li      a0, 0
    ret
"""


def build(tmp_path, body):
    need_toolchain()
    for f in ("crt0.S", "ch32v003.ld"):
        shutil.copyfile(RUNTIME / f, tmp_path / f)
    (tmp_path / "p.S").write_text(MAIN + "\n    .globl lbc_infer\nlbc_infer:\n" + body)
    r = subprocess.run(["riscv64-unknown-elf-gcc", "-march=rv32ec", "-mabi=ilp32e", "-nostdlib", "-nostartfiles",
                        "-T", "ch32v003.ld", "crt0.S", "p.S", "-o", "p.elf"], cwd=tmp_path, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    return Firmware(tmp_path / "p.elf")


def test_exact_instruction_count_and_window(tmp_path):
    fw = build(tmp_path, """
    li      t0, 100
1:  addi    t0, t0, -1
    bnez    t0, 1b
    sw      t0, 0(sp)
    ret
""")
    _, st = fw.run([], [], count=True)
    assert st.inference == 1 + 2 * 100 + 1 + 1  # li, 100 x (addi, bnez), sw, ret
    assert st.instructions > st.inference
    assert st.stack_peak == 16  # main's frame, written at both ends
    # timing model: li (32-bit) 2; addi (16-bit) 1 + bnez (32-bit, t0 has no compressed form) 2, x100;
    # 99 taken back-edges x 3; c.swsp 1 + store 1; c.jr 1 + taken 3
    assert st.inference_cycles == 2 + 3 * 100 + 3 * 99 + 2 + 4


def test_stack_peak_and_fast_run_agree(tmp_path):
    fw = build(tmp_path, """
    addi    sp, sp, -64
    sw      zero, 0(sp)
    addi    sp, sp, 64
    ret
""")
    _, fast = fw.run([], [])
    _, counted = fw.run([], [], count=True)
    assert fast.stack_peak == counted.stack_peak == 16 + 64


def test_stack_overflow_into_data_is_a_fault(tmp_path):
    fw = build(tmp_path, """
    addi    sp, sp, -16
    sw      ra, 12(sp)
    sw      zero, 0(sp)
    call    lbc_infer
""")
    with pytest.raises(FirmwareFault, match="stack overflow into data"):
        fw.run([], [], count=True)
    with pytest.raises(FirmwareFault):
        fw.run([], [])


def test_access_beyond_ram_is_a_fault(tmp_path):
    fw = build(tmp_path, """
    li      t0, 0x20000800
    lw      t1, 0(t0)
    ret
""")
    with pytest.raises(FirmwareFault, match="beyond the 2048 B of RAM"):
        fw.run([], [])


def test_reads_and_writes_by_symbol(tmp_path):
    fw = build(tmp_path, """
    la      t0, buf
    lw      t1, 0(t0)
    addi    t1, t1, 1
    sw      t1, 4(t0)
    ret
""")
    (out,), _ = fw.run([(fw.addr("buf"), (41).to_bytes(4, "little"))], [(fw.addr("buf", 4), 4)])
    assert int.from_bytes(out, "little") == 42
