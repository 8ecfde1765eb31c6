"""The board firmware (model_board.elf / model.hex): clock and USART1 brought up at register level, the
compiled-in samples run, class and cycle count printed on the UART. The emulator models RCC, USART1
and SysTick; the test reads back what the firmware printed and checks it against the interpreter."""

import re

import numpy as np

from conftest import need_toolchain
from lbc.backends.rv32ec import emulator as E
from lbc.driver import compile_model, read_manifest
from lbc.ir.interpreter import run as interpret
from lbc.ir.quant import quantize_input


def read_ihex(path):
    """Intel HEX records -> {address: byte}; every record's checksum is verified."""
    mem, base = {}, 0
    for line in path.read_text().split():
        assert line[0] == ":"
        raw = bytes.fromhex(line[1:])
        n, addr, kind, data = raw[0], int.from_bytes(raw[1:3], "big"), raw[3], raw[4:-1]
        assert len(data) == n and sum(raw) % 256 == 0, line
        if kind == 0:
            mem.update({base + addr + i: b for i, b in enumerate(data)})
        elif kind == 4:
            base = int.from_bytes(data, "big") << 16
        elif kind == 1:
            break
    return mem


def test_board_firmware_prints_classes_and_cycles(tmp_path, digits):
    need_toolchain()
    c = compile_model(digits["model"], tmp_path / "out", "rv32ec", "ternary", digits["calib_path"],
                      target_options={"samples": str(digits["test_path"])})
    n = c.report["build"]["board_samples"]
    assert c.report["build"]["hex"] == "model.hex" and 1 <= n <= 8
    text = c.target.run_board(c.outdir)
    lines = text.split("\r\n")
    assert lines[0] == f"lbc: digits_mlp on CH32V003, {n} samples" and lines[-1] == ""
    got = [tuple(int(v) for v in re.fullmatch(r"sample (\d+): class (\d+), cycles (\d+)", ln).groups())
           for ln in lines[1:-1]]
    assert [g[0] for g in got] == list(range(n))

    x = digits["x"][:n]
    xq = quantize_input(x, c.graph.types[c.graph.inputs[0]].exp)
    want = interpret(c.graph, xq)[0].reshape(n, -1).argmax(axis=1)
    assert [g[1] for g in got] == [int(v) for v in want]
    # the cycles SysTick measured around lbc_infer = the harness's count for the same inputs (+ the
    # two counter reads)
    _, stats = c.target.run(c.outdir, read_manifest(c.outdir), xq, count=n)
    for (_, _, cyc), s in zip(got, stats["per_sample"]):
        assert 0 <= cyc - s["cycles"] <= 16, (cyc, s["cycles"])

    # the peripherals as the firmware left them: 48 MHz from the PLL, USART1 at 115200 8N1 on PD5
    fw = E.Firmware(c.outdir / "model_board.elf")
    fw.run([], [])
    r = fw.periph.regs
    assert r[E.RCC_CFGR0] & 3 == 2 and r[E.RCC_CFGR0] & 0xF0 == 0 and r[E.RCC_CTLR] & E.PLLON
    assert r[0x40022000] & 3 == 1  # one flash wait state at 48 MHz
    assert r[0x40021018] & (1 << 14 | 1 << 5 | 1) == (1 << 14 | 1 << 5 | 1)  # USART1, GPIOD, AFIO clocks
    assert (r[0x40011400] >> 20) & 0xF == 0xB  # PD5: AF push-pull output
    assert r[0x40013808] == round(48_000_000 / 115_200)  # BRR
    assert r[0x4001380C] == (1 << 13) | (1 << 3)  # UE | TE

    # model.hex holds the board ELF's flash image (all but the alignment padding between sections)
    mem = read_ihex(c.outdir / "model.hex")
    image = {a + i: b for a, data in fw.segments for i, b in enumerate(data)}
    assert min(mem) == 0 and all(image[a] == b for a, b in mem.items())
    gap = set(image) - set(mem)
    assert len(gap) < 8 and all(image[a] == 0 for a in gap)


def test_board_firmware_without_samples_uses_fixed_inputs(tmp_path):
    need_toolchain()
    from onnx_models import mlp, save
    model = save(mlp([16, 8, 4], seed=1), tmp_path / "m.onnx")
    c = compile_model(model, tmp_path / "out", "rv32ec", "int4")
    text = c.target.run_board(c.outdir)
    assert text.startswith("lbc: ") and text.count("class ") == 2
    assert (c.outdir / "samples.c").read_text().count("{ ") == 2
