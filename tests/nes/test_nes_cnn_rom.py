"""The CNN example (examples/nes_cnn/qat.pt2: conv-maxpool-conv-maxpool-dense, ternary) as a cartridge:
bit-exact with the interpreter over the whole held-out split under sim65, it boots in cynes and leaves
the interpreter's outputs in RAM for the samples the controller steps through, and py65 running
lbc_run on the ROM image counts the cycles sim65 counts."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from lbc.driver import compile_model, run_compiled
from lbc.ir.interpreter import run
from lbc.ir.quant import quantize_input
from lbc.runtime.nes import harness as H
from nes_util import need_cc65, need_cynes, need_py65

pytestmark = need_cc65
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "nes_cnn"


def _data():
    spec = importlib.util.spec_from_file_location("nes_cnn_data", EXAMPLE / "data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.load()


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nescnn")
    xtr, xte, ytr, yte = _data()
    np.savez(tmp / "samples.npz", x=xte[:16], y=yte[:16])
    out = tmp / "out"
    c = compile_model(EXAMPLE / "qat.pt2", out, "nes", "ternary", target_options={"samples": str(tmp / "samples.npz")})
    man = json.loads((out / "samples.json").read_text())
    xq = np.array(man["xq"], dtype=np.int8).reshape((-1,) + c.graph.types[c.graph.inputs[0]].shape[1:])
    return {"c": c, "out": out, "xq": xq, "ref": run(c.graph, xq)[0], "labels": H.read_labels(out / "model.lbl"),
            "cycles": man["cycles"], "xte": xte, "yte": yte}


def test_whole_test_split_bit_exact_and_accurate(cnn):
    c, x, y = cnn["c"], cnn["xte"], cnn["yte"]
    # each max pooling runs with its convolution (fused when the PRG-ROM allows)
    assert [r["op"] for r in c.report["emit"]["layers"]] == ["conv2d", "conv2d", "dense"]
    _, yq, stats = run_compiled(cnn["out"], x, raw=True)
    ref = run(c.graph, quantize_input(x, c.graph.types[c.graph.inputs[0]].exp))[0]
    np.testing.assert_array_equal(yq.reshape(ref.shape), ref)
    assert np.mean(ref.argmax(1) == y) >= 0.93  # the QAT model's integer accuracy (0.95 when trained)
    assert stats["cycles_max"] < 8 * 29780  # under 8 NTSC frames


@need_cynes
def test_cnn_rom_boots_and_computes_in_cynes(cnn):
    emu = H.NesEmu(cnn["out"] / "model.nes", cnn["labels"])
    ref = cnn["ref"]

    def shown():
        assert emu.wait("sh_status", 0xA5, 240), "the ROM did not finish an inference"
        i = int(emu.peek("sh_sample")[0])
        np.testing.assert_array_equal(emu.peek("lbc_output", ref.shape[1]).view(np.int8), ref[i])
        assert emu.peek("sh_class")[0] == int(np.argmax(ref[i]))
        emu.step(2)  # the shell sees the button released (it reads the pad between inferences only)
        return i

    assert shown() == 0
    emu.press(emu.RIGHT)
    assert shown() == 1
    emu.press(emu.LEFT)
    assert shown() == 0
    emu.press(emu.LEFT)
    assert shown() == len(cnn["xq"]) - 1


@need_py65
def test_py65_on_the_cnn_rom_counts_the_sim65_cycles(cnn):
    cpu = H.Py65Rom(cnn["out"] / "model.nes", cnn["labels"])
    for i in range(2):
        cpu.poke(cnn["labels"]["lbc_input"], cnn["xq"][i].reshape(-1).view(np.uint8))
        cycles, _ = cpu.call("lbc_run")
        assert cycles == cnn["cycles"][i]
        np.testing.assert_array_equal(cpu.peek(cnn["labels"]["lbc_output"], 10).view(np.int8), cnn["ref"][i])
