"""`make demo`, the seed systems: BitNetMCU on the CH32V003 (rv32ec), the NES MLP and CNN (nes), the
pentary CNN (pentary) and the Fashion-MNIST CNNs on the CH32V003 (rv32ec). For each, from the committed
model files and the installed data sets (no
torch, no keras, no downloads):

  float      the float model in lbc's reference interpreter
  PTQ        the float model quantised by lbc (post-training, calibrated on training images),
             compiled and run in the target's emulator
  QAT        the lbc.qat model compiled and run in the target's emulator (its quantized forward
             pass; the emulator outputs are checked against the reference interpreter bit for bit)

all over the whole test split, with firmware size and cycles per inference. A target that is not in
this tree (or a model that does not fit) is reported and skipped.

    python scripts/demo_seeds.py [bitnetmcu|nes_mlp|nes_cnn|pentary_cnn ...]
"""

import importlib.util
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lbc.backends import available_targets
from lbc.driver import compile_model, run_compiled
from lbc.errors import LbcError
from lbc.frontends import load_model
from lbc.ir.interpreter import run as interpret
from lbc.ir.quant import quantize_input

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BUILD = ROOT / "build" / "seeds"


def _module(folder, name="data"):
    spec = importlib.util.spec_from_file_location(f"lbc_seed_{folder}_{name}", EXAMPLES / folder / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def bitnet_data():
    d = _module("bitnetmcu")
    x, y = d.load("test")
    return d.calibration(), x, y


def nes_data():
    xtr, xte, ytr, yte = _module("nes_mlp").load()
    return xtr[:256], xte, yte


def digits_8x8(folder):
    def load():
        xtr, xte, ytr, yte = _module(folder).load()
        return xtr[:256], xte, yte
    return load


def fashion_data(folder):
    def load():
        d = _module(folder)
        x, y = d.load("test")
        return d.calibration(), x, y
    return load


@dataclass
class Seed:
    key: str
    title: str
    target: str
    quant: str
    float_model: str
    qat_model: str
    dataset: str
    data: object


SEEDS = [
    Seed("bitnetmcu", "BitNetMCU: 4-bit MLP 256-64-64-64-10 on the CH32V003", "rv32ec", "int4", "float.pt2",
         "qat.pt2", "Fashion-MNIST 16x16 (Debian dataset-fashion-mnist), test split", bitnet_data),
    Seed("nes_mlp", "NES MLP: Keras 49-49-24-10, ternary", "nes", "ternary", "model.keras", "qat.pt2",
         "scikit-learn digits resized to 7x7, held-out split", nes_data),
    Seed("nes_cnn", "NES CNN: conv-maxpool-conv-maxpool-dense, ternary", "nes", "ternary", "float.pt2", "qat.pt2",
         "scikit-learn digits 8x8, held-out split", digits_8x8("nes_cnn")),
    Seed("pentary_cnn", "pentary CNN: conv-conv-dense, balanced base-5 weights", "pentary", "pentary", "float.pt2",
         "qat.pt2", "scikit-learn digits 8x8, held-out split", digits_8x8("pentary_cnn")),
    Seed("fashion_dwsep", "depthwise-separable CNN on Fashion-MNIST 16x16, int4, CH32V003 (patch-based first layers)",
         "rv32ec", "int4", "float.pt2", "qat.pt2", "Fashion-MNIST 16x16 (Debian dataset-fashion-mnist), test split",
         fashion_data("fashion_dwsep")),
    Seed("fashion_cnn28", "CNN on full 28x28 Fashion-MNIST, int4, CH32V003 2 KB RAM thanks to patch-based execution",
         "rv32ec", "int4", "float.pt2", "qat.pt2", "Fashion-MNIST 28x28 (Debian dataset-fashion-mnist), test split",
         fashion_data("fashion_cnn28")),
]


def _cycles(stats):
    for key in ("est_ch32v003_cycles", "cycles_mean", "cycles_per_inference"):
        if isinstance(stats.get(key), (int, float)):
            return key, stats[key]
    for k, v in stats.items():
        if "cycles" in k and isinstance(v, (int, float)):
            return k, v
    return None, None


def _size(c):
    b = c.report.get("build", {})
    for key in ("flash_used", "prg_used_bytes", "image_bytes"):
        if key in b:
            return f"{key.replace('_', ' ')} {b[key]:,} B" + (f" of {b['flash_bytes']:,}" if "flash_bytes" in b else "")
    return f"weights {c.report['totals']['weight_bytes']:,} B"


def on_target(seed, model, x, y, tag, calibration=None):
    """Compile for the seed's target, run the emulator over x; (accuracy, line, compiled)."""
    out = BUILD / f"{seed.key}-{tag}"
    t0 = time.perf_counter()
    c = compile_model(model, out, seed.target, seed.quant, calibration)
    t1 = time.perf_counter()
    _, yq, stats = run_compiled(out, x)
    t2 = time.perf_counter()
    pred = yq.reshape(len(x), -1).argmax(1)
    ref = interpret(c.graph, quantize_input(x.reshape((len(x),) + c.graph.types[c.graph.inputs[0]].shape[1:]),
                                           c.graph.meta["input_exp"]))[0]
    same = int(np.all(yq.reshape(len(x), -1) == ref.reshape(len(x), -1), axis=1).sum())
    key, cyc = _cycles(stats)
    ram = c.report.get("build", {}).get("ram_static")
    line = (f"{np.mean(pred == y):.4f}  | {_size(c)}" + (f", RAM {ram:,} B static" if ram is not None else "")
            + (f" | {cyc:,.0f} cycles/inference ({key})" if cyc is not None else "")
            + f" | {same}/{len(x)} outputs = interpreter | compile {t1 - t0:.1f}s, emulate {t2 - t1:.1f}s")
    return float(np.mean(pred == y)), line, c


def demo(seed):
    print(f"== {seed.title} -> --target {seed.target} --quant {seed.quant}")
    folder = EXAMPLES / seed.key
    if seed.target not in available_targets():
        print(f"   target {seed.target} is not available in this tree yet; skipped\n")
        return True
    calib, x, y = seed.data()
    print(f"   data: {seed.dataset} ({len(y)} images); models: examples/{seed.key}/{seed.float_model}, "
          f"{seed.qat_model}")
    fg = load_model(folder / seed.float_model)
    fx = x.reshape((len(x),) + fg.types[fg.inputs[0]].shape[1:])
    acc = np.mean(interpret(fg, fx)[0].reshape(len(x), -1).argmax(1) == y)
    print(f"   float (interpreter)   {acc:.4f}")
    ok = True
    for tag, model, cal in (("ptq", seed.float_model, calib), ("qat", seed.qat_model, None)):
        label = "PTQ (on target)" if tag == "ptq" else "QAT (on target)"
        try:
            _, line, _ = on_target(seed, folder / model, x, y, tag, cal)
            print(f"   {label:<21} {line}")
        except LbcError as e:
            ok = False
            print(f"   {label:<21} failed: {str(e).splitlines()[0]}")
    print()
    return ok


def main(argv):
    chosen = [s for s in SEEDS if not argv or s.key in argv]
    print("lbc seed systems: accuracy over the whole test split in each target's emulator\n")
    results = [demo(s) for s in chosen]
    print(f"builds are in {BUILD.relative_to(ROOT)}/")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
