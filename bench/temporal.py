"""Temporal benchmark: streaming spiking models on RV32EC - instructions per time step against the
input spike rate, against a dense int8 layer stack of the same shape; RAM for state; accuracy float
vs on target.

Not a timed test: compiles examples/spiking_digits/spiking_digits.nir (64-48-10 LIF, exported by
snnTorch) for --target rv32ec (CH32V003 budgets) and host, runs them in the unicorn harness and the
host executable, counts executed instructions exactly and writes bench/results/temporal.json.

* rate sweep: 8 sequences of 16 steps of Bernoulli spikes (seed 0) at input rates 0-100 %; the cost
  per step counts one lbc_step() call plus the driver loop around it (~10 instructions);
* dense: the same 64-48-10 shape as an ONNX MLP (ReLU, int8 weights, random N(0, 1/fan_in), seed 0)
  compiled for rv32ec: instructions per inference of a non-spiking layer stack;
* accuracy: snnTorch float (examples/spiking_digits/float.json), lbc's float interpreter of the NIR
  graph, the integer interpreter, host and rv32ec (the whole test set), by output spike count.

* nes: the same network with int4 weights (the NES target's widest) under sim65: cycles per step.

Every compiled output is compared with the reference interpreter; any difference exits 1.
Targets: <= 1,500 instructions per step at a 10 % input spike rate on rv32ec; <= 6,000 cycles on the NES.

    .venv/bin/python bench/temporal.py [--quick]
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "temporal.json"
EX = ROOT / "examples" / "spiking_digits"
RATES = (0.0, 0.05, 0.10, 0.25, 0.50, 0.75, 1.0)
TARGET_10 = 1500


def dense_onnx(path, dims=(64, 48, 10), seed=0):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(seed)
    nodes, inits, prev = [], [], "x"
    for i in range(len(dims) - 1):
        w = (rng.standard_normal((dims[i], dims[i + 1])) / np.sqrt(dims[i])).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"fc{i}.weight"))
        last = i == len(dims) - 2
        out = "y" if last else f"fc{i}.out"
        nodes.append(helper.make_node("MatMul", [prev, f"fc{i}.weight"], [out], name=f"fc{i}"))
        if not last:
            nodes.append(helper.make_node("Relu", [out], [f"h{i}"], name=f"relu{i}"))
            prev = f"h{i}"
    g = helper.make_graph(nodes, "dense_64_48_10",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, dims[0]])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, dims[-1]])], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="lbc-bench"), path)
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer test sequences on rv32ec")
    args = ap.parse_args()
    from lbc.driver import compile_model, load_batch, read_manifest, run_compiled
    from lbc.frontends import load_model
    from lbc.ir.interpreter import run
    from lbc.ir.quant import quantize_input

    wrong = []
    out = {"model": "examples/spiking_digits/spiking_digits.nir (64-48-10 LIF, snnTorch export)", "sweep": []}
    calib, _ = load_batch(EX / "calib.npz")
    xte, yte = load_batch(EX / "test.npz")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rv = compile_model(EX / "spiking_digits.nir", tmp / "rv", target="rv32ec", quant="int8", calibration=calib)
        host = compile_model(EX / "spiking_digits.nir", tmp / "host", target="host", quant="int8", calibration=calib)
        nes = compile_model(EX / "spiking_digits.nir", tmp / "nes", target="nes", quant="int4", calibration=calib)
        m = read_manifest(tmp / "rv")
        out["state_bytes"] = m["state_bytes"]  # int32 membranes (host, rv32ec)
        out["rv32ec_build"] = {k: rv.report["build"][k] for k in ("flash_used", "code", "rodata", "ram_static")}
        rng = np.random.default_rng(0)
        for rate in RATES:
            x = (rng.random((8, 16, 64)) < rate).astype(np.float32)
            _, yq, st = run_compiled(tmp / "rv", x, raw=True)
            (ref,) = run(rv.graph, x.astype(np.int8))
            if not (yq == ref).all():
                wrong.append(f"rv32ec output differs from the interpreter at input rate {rate}")
            steps = [i for seq in st["per_sequence_steps"] for i in seq]
            _, yn, sn = run_compiled(tmp / "nes", x, raw=True)
            if not (yn == run(nes.graph, x.astype(np.int8))[0]).all():
                wrong.append(f"nes output differs from the interpreter at input rate {rate}")
            out["sweep"].append({"input_rate": rate, "instructions_per_step_mean": round(float(np.mean(steps)), 1),
                                 "instructions_per_step_max": int(max(steps)),
                                 "nes_int4_cycles_per_step_mean": sn["cycles_per_step_mean"],
                                 "hidden_rate": None})
            env = run(rv.graph, x.astype(np.int8), return_all=True)
            hidden = next(n.outputs[0] for n in rv.graph.nodes if n.op == "lif")
            out["sweep"][-1]["hidden_rate"] = round(float(env[hidden].mean()), 3)
            print(f"rate {rate:4.0%}: rv32ec {np.mean(steps):7.1f} instructions/step (max {max(steps)}), nes "
                  f"{sn['cycles_per_step_mean']:8.1f} cycles/step, hidden spike rate {out['sweep'][-1]['hidden_rate']:.2f}")
        dense = compile_model(dense_onnx(tmp / "dense.onnx"), tmp / "dense", target="rv32ec", quant="int8",
                              calibration=np.random.default_rng(1).uniform(0, 1, (64, 64)).astype(np.float32))
        xd = np.random.default_rng(2).uniform(0, 1, (8, 64)).astype(np.float32)
        _, yd, sd = run_compiled(tmp / "dense", xd, raw=True)
        if not (yd == run(dense.graph, quantize_input(xd, dense.graph.types[dense.graph.inputs[0]].exp))[0]).all():
            wrong.append("dense rv32ec output differs from the interpreter")
        out["dense_int8_64_48_10"] = {"instructions_per_inference": sd["instructions_per_inference"],
                                      "kernels": [la["kernel"] for la in dense.report["emit"]["layers"]]}
        print(f"dense int8 64-48-10 (ReLU): {sd['instructions_per_inference']} instructions per inference")

        # accuracy by output spike count (ties: lowest index)
        fg = load_model(EX / "spiking_digits.nir")
        acc = {"snntorch_float": json.loads((EX / "float.json").read_text())["snntorch_accuracy"]}
        (yf,) = run(fg, xte.astype(np.float32))
        acc["lbc_float_interpreter"] = float(np.mean(yf.sum(axis=1).argmax(axis=1) == yte))
        (yi,) = run(host.graph, xte.astype(np.int8))
        acc["integer_interpreter"] = float(np.mean(yi.sum(axis=1).argmax(axis=1) == yte))
        _, yh, _ = run_compiled(tmp / "host", xte, raw=True)
        if not (yh == yi).all():
            wrong.append("host output differs from the interpreter on the test set")
        acc["host"] = float(np.mean(yh.sum(axis=1).argmax(axis=1) == yte))
        n = 60 if args.quick else len(xte)
        _, yr, _ = run_compiled(tmp / "rv", xte[:n], raw=True)
        if not (yr == yi[:n]).all():
            wrong.append("rv32ec output differs from the interpreter on the test set")
        acc[f"rv32ec ({n} test sequences)"] = float(np.mean(yr.sum(axis=1).argmax(axis=1) == yte[:n]))
        (yi4,) = run(nes.graph, xte.astype(np.int8))
        acc["integer_interpreter_int4"] = float(np.mean(yi4.sum(axis=1).argmax(axis=1) == yte))
        _, yn, _ = run_compiled(tmp / "nes", xte[:n], raw=True)
        if not (yn == yi4[:n]).all():
            wrong.append("nes output differs from the interpreter on the test set")
        acc[f"nes_int4 ({n} test sequences)"] = float(np.mean(yn.sum(axis=1).argmax(axis=1) == yte[:n]))
        out["nes_state_bytes"] = nes.report["emit"]["state_bytes"]  # int16 membranes
        out["nes_ram_bytes"] = nes.report["emit"]["ram_bytes"]
        out["accuracy"] = acc
        print("accuracy:", json.dumps(acc))
    at10 = next(s for s in out["sweep"] if s["input_rate"] == 0.10)["instructions_per_step_mean"]
    nes10 = next(s for s in out["sweep"] if s["input_rate"] == 0.10)["nes_int4_cycles_per_step_mean"]
    out["targets"] = {"rv32ec_instructions_per_step_at_10pct": at10, "limit": TARGET_10, "met": at10 <= TARGET_10,
                      "nes_cycles_per_step_at_10pct": nes10, "nes_limit": 6000, "nes_met": nes10 <= 6000,
                      "accuracy_within_2_points_of_snntorch": acc["host"] >= acc["snntorch_float"] - 0.02}
    out["wrong_outputs"] = wrong
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    if wrong:
        print("WRONG OUTPUTS:\n  " + "\n  ".join(wrong), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
