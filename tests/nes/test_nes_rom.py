"""The .nes cartridge, without screenshots: it boots in cynes (headless), runs the network on the
samples compiled into it, and leaves in RAM the outputs the interpreter computes; the controller and
the test mailbox step through the samples; py65 running lbc_run on the ROM image counts the same cycles
as sim65 on the sim build (and as the table the ROM displays)."""

import json

import numpy as np
import pytest

from lbc.driver import compile_model
from lbc.ir.interpreter import run
from lbc.runtime.nes import harness as H
from nes_util import need_cc65, need_cynes, need_py65

pytestmark = need_cc65


@pytest.fixture(scope="module")
def rom(tmp_path_factory, digits):
    out = tmp_path_factory.mktemp("nesrom") / "out"
    c = compile_model(digits["model"], out, "nes", "ternary", digits["calib_path"],
                      target_options={"samples": str(digits["test_path"])})
    man = json.loads((out / "samples.json").read_text())
    xq = np.array(man["xq"], dtype=np.int8)
    ref = run(c.graph, xq)[0]
    return {"c": c, "out": out, "xq": xq, "ref": ref, "labels": H.read_labels(out / "model.lbl"),
            "cycles": man["cycles"], "y": man["labels"]}


def test_cartridge_layout(rom):
    data = (rom["out"] / "model.nes").read_bytes()
    assert data[:8] == b"NES\x1a\x02\x01\x01\x00"  # NROM-256: 2 x 16 KB PRG, 8 KB CHR, mapper 0
    assert len(data) == 16 + 32768 + 8192
    assert len(rom["xq"]) == 16 and rom["y"][:3] == [int(v) for v in np.load(
        rom["c"].target.samples)["y"][:3]]


@need_cynes
def test_rom_boots_and_computes_in_cynes(rom):
    emu = H.NesEmu(rom["out"] / "model.nes", rom["labels"])
    ref, out_n = rom["ref"], rom["ref"].shape[1]

    def shown():
        assert emu.wait("sh_status", 0xA5, 120), "the ROM did not finish an inference"
        i = int(emu.peek("sh_sample")[0])
        got = emu.peek("lbc_output", out_n).view(np.int8)
        np.testing.assert_array_equal(got, ref[i])
        assert emu.peek("sh_class")[0] == int(np.argmax(ref[i]))
        return i

    assert shown() == 0
    fb = emu.step(2)
    assert (fb > 200).any() and (fb < 50).any(), "nothing drawn"
    emu.press(emu.RIGHT)
    assert shown() == 1
    emu.press(emu.LEFT)
    emu.press(emu.LEFT)
    assert shown() == len(rom["xq"]) - 1
    emu.nes[int(rom["labels"]["sh_req"])] = 6  # the test mailbox: show sample 5
    emu.step(2)
    assert shown() == 5
    assert emu.peek("sh_runs")[0] == 5


@need_py65
def test_py65_on_the_rom_counts_the_sim65_cycles(rom):
    cpu = H.Py65Rom(rom["out"] / "model.nes", rom["labels"])
    data = (rom["out"] / "model.nes").read_bytes()
    table = rom["labels"]["sh_cycles"] - 0x8000 + 16
    for i in range(3):
        cpu.poke(rom["labels"]["lbc_input"], rom["xq"][i].view(np.uint8))
        cycles, _ = cpu.call("lbc_run")
        assert cycles == rom["cycles"][i]
        assert int(data[table + 6 * i:table + 6 * i + 6]) == cycles
        np.testing.assert_array_equal(cpu.peek(rom["labels"]["lbc_output"], 10).view(np.int8), rom["ref"][i])
