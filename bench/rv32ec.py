"""RV32EC benchmark: instructions per inference and per MAC, flash and RAM, estimated CH32V003 cycles.

Not a timed test: compiles each model with lbc for --target rv32ec (CH32V003 budgets: 16 KB flash,
2 KB RAM), runs it in the unicorn harness on fixed inputs, counts executed instructions exactly and
writes bench/results/rv32ec.json.

Models
  digits      examples/digits/mlp.onnx (64-64-32-10, ReLU), every weight dtype, 32 test images.
  bitnetmcu   the BitNetMCU 12k shape: 256 inputs (16x16), hidden 64/64/64, 10 outputs, ReLU, no biases,
              4-bit and ternary weights. Generated here deterministically with onnx.helper (random
              N(0, 1/fan_in) weights, seed 0; accuracy is not the point), calibrated and measured on 32
              uniform random 16x16 inputs in [-1, 1] (seed 1). Per-tensor weight scales, as BitNetMCU
              uses; the per-channel variant is reported too.

Anchor (BitNetMCU's hand-written engine, GCC 12.2 -Os, same memory map and harness): 436,389
instructions per inference for 25,216 MACs at 4 bits = 17.3 per MAC; ternary 16.6 (8.8 at -O3).
Targets: <= 8 instructions per MAC at 4 bits, <= 4 for ternary.

  fashion_cnn28, fashion_dwsep   the CNN examples (examples/), int4 QAT and (28x28) the float model at
              ternary, on random inputs: measured instructions per step of lbc_infer (a patch stage's
              tile loop, crop/mask/place are steps of their own) and per MAC of each layer (the plain
              graph's MACs: recomputed tile overlap counts against the layer). Conv targets: <= 6 per MAC
              at int4, <= 3 at ternary.

Exits non-zero when any output differs from the reference interpreter.

    .venv/bin/python bench/rv32ec.py [--quick]
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "rv32ec.json"
DIGITS = ROOT / "examples" / "digits"
BITNET_SHAPE = (256, 64, 64, 64, 10)
ANCHOR = {"bitnetmcu_4bit_instructions": 436389, "bitnetmcu_4bit_per_mac": 17.3, "bitnetmcu_ternary_per_mac_Os": 16.6,
          "bitnetmcu_ternary_per_mac_O3": 8.8, "bitnetmcu_4bit_ch32v003_cycles": 653965, "macs": 25216}


def bitnet_onnx(path, seed=0):
    """256-64-64-64-10 MLP with ReLU and no biases (BitNetMCU's FC layers have none)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(seed)
    nodes, inits, prev = [], [], "image"
    dims = BITNET_SHAPE
    for i in range(len(dims) - 1):
        w = (rng.standard_normal((dims[i], dims[i + 1])) / np.sqrt(dims[i])).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"fc{i}.weight"))
        last = i == len(dims) - 2
        out = "logits" if last else f"fc{i}.out"
        nodes.append(helper.make_node("MatMul", [prev, f"fc{i}.weight"], [out], name=f"fc{i}"))
        if not last:
            nodes.append(helper.make_node("Relu", [out], [f"h{i}"], name=f"relu{i}"))
            prev = f"h{i}"
    g = helper.make_graph(nodes, "bitnetmcu_12k_shape",
                          [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, dims[0]])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, dims[-1]])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="lbc-bench")
    onnx.save(m, path)
    return path


def step_lines(model_c):
    """[(first line, step comment)] of the steps of lbc_infer in a generated model.c."""
    lines = Path(model_c).read_text().splitlines()
    start = next(i for i, t in enumerate(lines) if t.startswith("void lbc_infer(void)"))
    end = next(i for i in range(start, len(lines)) if lines[i] == "}")
    return [(i + 1, lines[i].strip()[3:-3]) for i in range(start, end)
            if lines[i].startswith("    /* ") and not lines[i].startswith("    /* in place")]


def layer_profile(outdir, x1, info):
    """Instructions per step of lbc_infer on one input: each executed block is charged to the step
    whose model.c lines (DWARF line table) ran last, so kernels count for the step that called them."""
    import bisect
    from elftools.elf.elffile import ELFFile
    from lbc.backends.rv32ec.emulator import Firmware
    steps = step_lines(outdir / "model.c")
    firsts = [ln for ln, _ in steps]
    rows = []
    with open(outdir / "model.elf", "rb") as f:
        dw = ELFFile(f).get_dwarf_info()
        for cu in dw.iter_CUs():
            prog = dw.line_program_for_CU(cu)
            names = {i + 1: e.name.decode() for i, e in enumerate(prog["file_entry"])}
            names.update({i: e.name.decode() for i, e in enumerate(prog["file_entry"])}) if prog.header.version >= 5 \
                else None
            for e in prog.get_entries():
                st = e.state
                if st and not st.end_sequence and names.get(st.file, "").endswith("model.c"):
                    rows.append((st.address, st.line))
    fw = Firmware(outdir / "model.elf")
    lo, size = fw.symbols["lbc_infer"]
    addr_line = dict(r for r in sorted(rows) if lo <= r[0] < lo + size)
    counts = [0] * len(steps)
    cur = {"step": None}

    def trace(addr, n):
        line = addr_line.get(addr)
        if line is not None and line >= firsts[0]:
            cur["step"] = bisect.bisect_right(firsts, line) - 1
        if cur["step"] is not None:
            counts[cur["step"]] += n

    fw.run([(fw.addr(info["ram_symbol"], info["input_offset"]), x1.tobytes())], [], count=True, trace=trace)
    return [{"step": name, "instructions": c} for (_, name), c in zip(steps, counts)]


def measure(model, quant, calib, x, outdir, granularity="channel", flash=None, ram=None):
    from lbc import driver
    from lbc.ir.interpreter import run as interpret
    from lbc.ir.quant import quantize_input
    t0 = time.perf_counter()
    opts = {k: v for k, v in (("flash_bytes", flash), ("ram_bytes", ram)) if v}
    c = driver.compile_model(str(model), outdir, "rv32ec", quant, calib, granularity=granularity, target_options=opts)
    t_compile = time.perf_counter() - t0
    xq = quantize_input(driver.check_batch(x, c.graph, "bench inputs"), c.graph.types[c.graph.inputs[0]].exp)
    m = driver.read_manifest(outdir)
    y, stats = c.target.run(Path(outdir), m, xq, count=len(xq))
    ref = interpret(c.graph, xq)[0]
    b = c.report["build"]
    inf = [s["instructions"] for s in stats["per_sample"]]
    cyc = [s["cycles"] for s in stats["per_sample"]]
    macs = stats["macs"]
    return {
        "quant": quant, "granularity": granularity, "macs": macs, "samples": len(xq),
        "bit_exact": bool(np.array_equal(y.reshape(len(xq), -1), ref.reshape(len(xq), -1))),
        "instructions_per_inference": round(float(np.mean(inf)), 1),
        "instructions_min_max": [int(min(inf)), int(max(inf))],
        "instructions_per_mac": round(float(np.mean(inf)) / macs, 3),
        "est_ch32v003_cycles": round(float(np.mean(cyc)), 1),
        "est_cycles_per_mac": round(float(np.mean(cyc)) / macs, 3),
        "flash_bytes": b["flash_used"], "flash_code_bytes": b["code"], "flash_const_bytes": b["rodata"] + b["data"],
        "ram_static_bytes": b["ram_static"], "stack_peak_bytes": stats["stack_peak_bytes"],
        "ram_bytes": b["ram_static"] + stats["stack_peak_bytes"],
        "budget": {"flash": b["flash_bytes"], "ram": b["ram_bytes"]},
        "layers": [{k: la[k] for k in ("name", "detail", "macs", "est_instructions")}
                   for la in c.report["emit"]["layers"]],
        "measured_layers": per_layer(c, xq[0]),
        "compile_seconds": round(t_compile, 2),
    }


def per_layer(c, x1):
    """Measured instructions of every step of one inference, with instructions per MAC of the layers
    (MACs of the plain graph: a patch stage's recomputed overlap counts against its layers)."""
    macs = {r["name"]: r["macs"] for r in c.report["layers"]}
    info = json.loads((Path(c.outdir) / "firmware.json").read_text())
    out = []
    for r in layer_profile(Path(c.outdir), np.asarray(x1, dtype=np.int8).reshape(-1), info):
        name = r["step"].split(" ", 1)[-1]
        m = macs.get(name, 0)
        out.append({**r, "macs": m, "instructions_per_mac": round(r["instructions"] / m, 2) if m else None})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="8 samples instead of 32")
    ap.add_argument("-o", "--output", default=str(RESULTS))
    args = ap.parse_args(argv)
    n = 8 if args.quick else 32
    out = {"target": "rv32ec (CH32V003: 16 KB flash, 2 KB RAM)", "anchor": ANCHOR,
           "timing_model": "cycles = 16-bit instructions + 2 x 32-bit instructions + loads/stores + 3 x taken "
                           "branches/jumps (code in flash, 1 wait state)",
           "results": {}}
    with tempfile.TemporaryDirectory(prefix="lbc-bench-rv32ec-") as tmp:
        tmp = Path(tmp)
        d = np.load(DIGITS / "test.npz")
        xd = d["x"][:n]
        for q in ("int8", "int4", "int2", "ternary", "pentary"):
            r = measure(DIGITS / "mlp.onnx", q, str(DIGITS / "calib.npy"), xd, tmp / f"digits_{q}")
            out["results"][f"digits_{q}"] = r
            print(f"digits {q:8s} {r['instructions_per_inference']:>9} instr  {r['instructions_per_mac']:6.3f}/MAC  "
                  f"flash {r['flash_bytes']:>5} RAM {r['ram_bytes']:>4}  cycles~{r['est_ch32v003_cycles']:.0f}",
                  flush=True)
        model = bitnet_onnx(tmp / "bitnetmcu.onnx")
        rng = np.random.default_rng(1)
        calib = rng.uniform(-1, 1, size=(256, 256)).astype(np.float32)
        np.save(tmp / "calib.npy", calib)
        xb = rng.uniform(-1, 1, size=(n, 256)).astype(np.float32)
        for q in ("int4", "ternary"):
            for gran in ("tensor", "channel"):
                r = measure(model, q, str(tmp / "calib.npy"), xb, tmp / f"bitnet_{q}_{gran}", granularity=gran)
                key = f"bitnetmcu_{q}_{gran}"
                out["results"][key] = r
                print(f"bitnet {q:8s} {gran:7s} {r['instructions_per_inference']:>9} instr  "
                      f"{r['instructions_per_mac']:6.3f}/MAC  flash {r['flash_bytes']:>5} RAM {r['ram_bytes']:>4}  "
                      f"cycles~{r['est_ch32v003_cycles']:.0f}", flush=True)
        for ex, q, shape in (("fashion_cnn28", "int4", (1, 28, 28)), ("fashion_cnn28", "ternary", (1, 28, 28)),
                             ("fashion_dwsep", "int4", (1, 16, 16))):
            model = ROOT / "examples" / ex / ("qat.pt2" if q == "int4" else "float.pt2")
            xs = np.random.default_rng(3).uniform(0, 1, size=(max(n // 8, 2),) + shape).astype(np.float32)
            np.save(tmp / f"{ex}_calib.npy", xs)
            r = measure(model, q, str(tmp / f"{ex}_calib.npy"), xs, tmp / f"{ex}_{q}")
            out["results"][f"{ex}_{q}"] = r
            print(f"{ex} {q:8s} {r['instructions_per_inference']:>9} instr  {r['instructions_per_mac']:6.3f}/MAC  "
                  f"flash {r['flash_bytes']:>5} RAM {r['ram_bytes']:>4}", flush=True)
            for la in r.get("measured_layers", []):
                if la["macs"]:
                    print(f"    {la['step']:<28} {la['instructions']:>9} instr  {la['instructions_per_mac']:6.2f}/MAC")
    b4, bt = out["results"]["bitnetmcu_int4_tensor"], out["results"]["bitnetmcu_ternary_tensor"]
    out["summary"] = {
        "int4_per_mac": b4["instructions_per_mac"], "int4_target": 8, "int4_meets": b4["instructions_per_mac"] <= 8,
        "ternary_per_mac": bt["instructions_per_mac"], "ternary_target": 4,
        "ternary_meets": bt["instructions_per_mac"] <= 4,
        "int4_speedup_vs_bitnetmcu": round(ANCHOR["bitnetmcu_4bit_instructions"] / b4["instructions_per_inference"], 2),
        "int4_cycles_vs_bitnetmcu": round(ANCHOR["bitnetmcu_4bit_ch32v003_cycles"] / b4["est_ch32v003_cycles"], 2),
    }
    convs = {q: {f"{k} {la['step'].split(' ', 1)[1]}": la["instructions_per_mac"]
                 for k, r in out["results"].items() if k.startswith("fashion") and k.endswith(q)
                 for la in r.get("measured_layers", []) if la["step"].startswith("conv2d ")} for q in ("int4", "ternary")}
    out["summary"]["conv_layers"] = {
        q: {"per_mac": per, "target": t, "meets": all(v <= t for v in per.values())}
        for (q, per), t in zip(convs.items(), (6, 3))}
    bad = [k for k, r in out["results"].items() if not r["bit_exact"]]
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    print(json.dumps(out["summary"], indent=2))
    print(f"wrote {args.output}")
    if bad:
        print(f"bench: outputs differ from the reference interpreter: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
