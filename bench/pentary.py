"""Benchmark: the digits MLP on the pentary machine.

Compiles examples/digits/mlp.onnx for the pentary target with each weight dtype it stores natively,
runs the whole held-out split in the cycle-counting simulator and reports

* cycles per inference and per multiply-accumulate (the cycle model of docs/pentary-isa.md §9),
* program and data size in words, pents and bytes (48-bit words in the .pent file) and the file size,
* bits actually spent per stored weight against the log2(5) = 2.32-bit bound of a pent,
* the zero-pent fraction of the data the machine read, and how many DOT lanes were skipped,
* accuracy on the test split, and that every output equals the reference interpreter.

It also runs examples/pentary_cnn (the pentary-QAT CNN) when that example and torch are present.

Writes bench/results/pentary.json (deterministic: no timings) and prints a summary.
    python bench/pentary.py
"""

import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lbc.driver import compile_model, run_compiled
from lbc.frontends import load_model
from lbc.ir.interpreter import run as interpret
from lbc.ir.quant import quantize_input

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "examples" / "digits"
RESULTS = ROOT / "bench" / "results" / "pentary.json"
BITS_PER_WORD = 48          # 16 pents x 3 bits in the .pent file
PENTS = 16
PENT_BOUND = math.log2(5)   # information in one pent


def entropy(values):
    _, counts = np.unique(values, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def bench_one(quant, x, y, outdir, model=DIGITS / "mlp.onnx", calibration=DIGITS / "calib.npy"):
    c = compile_model(model, outdir, "pentary", quant, calibration)
    t0 = time.perf_counter()
    _, yq, stats = run_compiled(c.outdir, x)
    wall = time.perf_counter() - t0
    ref = interpret(c.graph, quantize_input(x, c.graph.meta["input_exp"]))[0]
    identical = int(np.all(yq.reshape(len(x), -1) == ref.reshape(len(x), -1), axis=1).sum())
    low, words = c.report["emit"]["lowering"], c.report["emit"]["words"]
    macs = c.report["totals"]["macs"]
    weights = [c.graph.consts[n.inputs[1]] for n in c.graph.nodes if n.op in ("dense", "conv2d")]
    all_w = np.concatenate([w.reshape(-1) for w in weights])
    weight_words = low["weight_words"]
    qdesc_words = words["data"] - weight_words
    cyc = stats["cycles_per_inference"]
    r = {
        "quant": quant,
        "accuracy": round(float(np.mean(yq.argmax(1) == y)), 4),
        "identical_to_interpreter": f"{identical}/{len(x)}", "bit_exact": identical == len(x),
        "cycles_per_inference": cyc,
        "cycles_min_max": [stats["detail"]["cycles_min"], stats["detail"]["cycles_max"]],
        "instructions_per_inference": stats["instructions_per_inference"],
        "macs_per_inference": macs,
        "cycles_per_mac": round(cyc / macs, 4),
        "dot_instructions": low["dot_instructions"],
        "dot_cycles": 2 * low["dot_instructions"] + low["nonzero_weights"],
        "overhead_cycles": round(cyc - 2 * low["dot_instructions"] - low["nonzero_weights"], 2),
        "rows": low["rows"],
        "program": {"words": words["code"], "pents": words["code"] * PENTS,
                    "bytes": words["code"] * BITS_PER_WORD // 8},
        "data": {"words": words["data"], "pents": words["data"] * PENTS, "bytes": words["data"] * BITS_PER_WORD // 8,
                 "weight_words": weight_words, "qdesc_words": qdesc_words},
        "activations_words": words["bss"],
        "image_file_bytes": c.report["build"]["image_bytes"],
        "weights": {
            "count": int(all_w.size),
            "nonzero": int(np.count_nonzero(all_w)),
            "zero_fraction": round(float(np.mean(all_w == 0)), 4),
            "stored_bits_per_weight": round(weight_words * BITS_PER_WORD / all_w.size, 4),
            "stored_pents_per_weight": round(weight_words * PENTS / all_w.size, 4),
            "pent_information_bits_per_weight": round(weight_words * PENTS * PENT_BOUND / all_w.size, 4),
            "bound_bits_per_weight": round(PENT_BOUND, 4),
            "efficiency_vs_bound": round(PENT_BOUND / (weight_words * BITS_PER_WORD / all_w.size), 4),
            "entropy_bits_per_weight": round(entropy(all_w), 4),
        },
        "zero_pent_fraction": stats["zero_pent_fraction"],
        "dot_zero_lane_fraction": stats["detail"]["dot_zero_lane_fraction"],
        "overflowed": stats["detail"]["overflowed"],
    }
    return r, wall


def main():
    test = np.load(DIGITS / "test.npz")
    x, y = test["x"], test["y"]
    float_acc = float(np.mean(interpret(load_model(DIGITS / "mlp.onnx"), x)[0].argmax(1) == y))
    results = {"model": "examples/digits/mlp.onnx (64-64-32-10 MLP, 8x8 digits)", "test_samples": int(len(x)),
               "float_accuracy": round(float_acc, 4), "targets": {}}
    with tempfile.TemporaryDirectory(prefix="lbc-bench-pentary-") as tmp:
        for quant in ("pentary", "ternary", "int2"):
            r, wall = bench_one(quant, x, y, Path(tmp) / quant)
            results["targets"][quant] = r
            w = r["weights"]
            print(f"{quant:<8} acc {r['accuracy']:.4f} ({r['identical_to_interpreter']} identical)  "
                  f"{r['cycles_per_inference']:,.0f} cycles/inference  {r['cycles_per_mac']:.3f} cycles/MAC  "
                  f"program {r['program']['words']} words ({r['program']['bytes']} B)  "
                  f"data {r['data']['words']} words ({r['data']['bytes']} B)  file {r['image_file_bytes']} B  "
                  f"{w['stored_bits_per_weight']:.2f} bits/weight (bound {w['bound_bits_per_weight']:.2f}, "
                  f"entropy {w['entropy_bits_per_weight']:.2f})  zero pents {r['zero_pent_fraction']:.1%}  "
                  f"[sim {wall / len(x) * 1e3:.1f} ms/inference]")
        cnn = ROOT / "examples" / "pentary_cnn"
        if (cnn / "qat.pt2").exists():
            # the pentary-QAT CNN (conv 1->8 pad 1, conv 8->8 stride 2, dense 128->10), if torch is here
            try:
                sys.path.insert(0, str(cnn))
                import data as cnn_data
                _, xc, _, yc = cnn_data.load()
                r, wall = bench_one("pentary", xc, yc, Path(tmp) / "cnn", cnn / "qat.pt2", None)
            except ImportError as e:
                print(f"pentary_cnn skipped: {e}")
            else:
                results["pentary_cnn_qat"] = r
                print(f"pentary_cnn (QAT) acc {r['accuracy']:.4f} ({r['identical_to_interpreter']} identical)  "
                      f"{r['cycles_per_inference']:,.0f} cycles/inference  {r['cycles_per_mac']:.3f} cycles/MAC  "
                      f"program {r['program']['words']} words, data {r['data']['words']} words  "
                      f"[sim {wall / len(xc) * 1e3:.1f} ms/inference]")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"float accuracy {float_acc:.4f}; results in {RESULTS}")
    runs = {**results["targets"], **({"pentary_cnn_qat": results["pentary_cnn_qat"]} if "pentary_cnn_qat" in results
                                     else {})}
    bad = [f"{k} ({r['identical_to_interpreter']})" for k, r in runs.items() if not r["bit_exact"]]
    if bad:
        print(f"bench: outputs differ from the reference interpreter: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
