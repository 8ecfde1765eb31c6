"""`make demo`: compile the digits example for every target and weight dtype, run each build in its
emulator over the held-out split, and print accuracy, speed and size."""

import sys
from pathlib import Path

import numpy as np

from lbc.backends import available_targets, get_target
from lbc.driver import compile_model, run_compiled
from lbc.frontends import load_model
from lbc.ir.interpreter import run as interpret

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "examples" / "digits"
BUILD = ROOT / "build" / "demo"


# The figures worth a line, in order, with short labels; each target reports those that apply to it.
SHOWN = [("instructions_per_inference", "instr"), ("instructions_per_mac", "instr/MAC"),
         ("est_ch32v003_cycles", "est. cycles"), ("cycles_mean", "cycles"), ("cycles_per_inference", "cycles"),
         ("ntsc_frames_max", "NTSC frames"), ("flash_used", "flash B"), ("ram_static", "RAM B"),
         ("prg_used_bytes", "PRG B"), ("image_bytes", "image B"), ("zero_pent_fraction", "zero pents")]


def fmt(v):
    if isinstance(v, float) and abs(v) < 100 and not v.is_integer():
        return f"{v:,.2f}"
    return f"{round(v):,}"


def main():
    test = np.load(DIGITS / "test.npz")
    x, y = test["x"], test["y"]
    model = DIGITS / "mlp.onnx"
    float_acc = np.mean(interpret(load_model(model), x)[0].argmax(1) == y)
    print(f"digits MLP 64-64-32-10 on scikit-learn's 8x8 digits, held-out split of {len(y)} images")
    print(f"float model accuracy: {float_acc:.4f}\n")
    for target in available_targets():
        tgt = get_target(target)
        print(f"== target {target}: {tgt.description}")
        for quant in tgt.quants:
            out = BUILD / f"{target}-{quant}"
            c = compile_model(model, out, target, quant, DIGITS / "calib.npy")
            _, yq, stats = run_compiled(out, x)
            acc = np.mean(yq.reshape(len(y), -1).argmax(1) == y)
            t = c.report["totals"]
            figures = {**c.report.get("build", {}), **stats}
            shown = [f"{label} {fmt(figures[k])}" for k, label in SHOWN if isinstance(figures.get(k), (int, float))]
            print(f"  {quant:<8} accuracy {acc:.4f}  weights {t['weight_bytes']:>5,} B  " + "  ".join(shown))
        print()
    print(f"builds are in {BUILD.relative_to(ROOT)}/ (run one again with: lbc run <dir> --input x.npy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
