"""Benchmark: how compile and assembly time grow with the size of the input (issue 13, "quadratic
passes").

* a chain of N Gemm layers (dense, N up to 2,000) and a chain of N Relu after one Gemm (N up to
  20,000), lowered for the host target with --no-build: seconds per size, and the growth factor when
  N doubles (about 2 for a linear compile, 4 for a quadratic one);
* `lbc asm` of a generated program of N lines (N up to 100,000: labels, constants, instructions).

Every compiled graph must pass the IR verifier (types, shapes, accumulator proofs) and, for the relu
chain, give exactly relu of its first layer's integer output in the reference interpreter; the
assembled program is run on the simulator and must leave the sum of its constants in P1. Any wrong
output exits non-zero.

Writes bench/results/scaling.json and prints a table.
    python bench/scaling.py [--quick]
"""

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lbc.backends.pentary.asm import assemble
from lbc.backends.pentary.sim import Simulator
from lbc.driver import compile_model
from lbc.ir.dtypes import F32
from lbc.ir.graph import Graph, Node, TensorType
from lbc.ir.interpreter import run as interpret
from lbc.ir.quant import quantize_input
from lbc.ir.verify import verify

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "scaling.json"


def gemm_chain(n, width=4, seed=0):
    r = np.random.default_rng(seed)
    g = Graph(f"gemm{n}", ["x"], [], [], {"x": TensorType(F32, (1, width))})
    prev = "x"
    for i in range(n):
        w = g.add_const(f"w{i}", np.eye(width) + 0.05 * r.standard_normal((width, width)), F32)
        out = f"h{i}"
        g.nodes.append(Node("dense", f"fc{i}", [prev, w], [out]))
        g.types[out] = TensorType(F32, (1, width))
        prev = out
    g.outputs = [prev]
    return g


def relu_chain(n, width=4):
    g = Graph(f"relu{n}", ["x"], [], [], {"x": TensorType(F32, (1, width))})
    w = g.add_const("w", np.eye(width), F32)
    g.nodes.append(Node("dense", "fc", ["x", w], ["h"]))
    g.types["h"] = TensorType(F32, (1, width))
    prev = "h"
    for i in range(n):
        out = f"r{i}"
        g.nodes.append(Node("relu", f"relu{i}", [prev], [out]))
        g.types[out] = TensorType(F32, (1, width))
        prev = out
    g.outputs = [prev]
    return g


def time_compile(graph):
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        c = compile_model(graph, Path(tmp) / "out", "host", "int8", build=False)
        seconds = time.perf_counter() - t0
    verify(c.graph)
    ok = True
    if graph.name.startswith("relu"):  # fused into the dense + a chain of exact int8 relus
        x = np.random.default_rng(1).uniform(-1, 1, (8, 4)).astype(np.float32)
        env = interpret(c.graph, quantize_input(x, c.graph.types[c.graph.inputs[0]].exp), return_all=True)
        first = c.graph.nodes[0].outputs[0]
        ok = bool(np.array_equal(env[c.graph.outputs[0]], np.maximum(env[first], 0)))
    return seconds, ok


def asm_program(n):
    """n lines: a constant, a label and an instruction per group of three; sums the constants."""
    lines = ["_start:", "    LI P1, 0"]
    k = max(1, (n - 3) // 3)
    for i in range(k):
        lines += [f"c{i} = {i % 7}", f"l{i}:", f"    ADDI P1, P1, c{i}"]
    lines.append("    HALT")
    return "\n".join(lines) + "\n", sum(i % 7 for i in range(k))


def time_asm(n):
    text, want = asm_program(n)
    t0 = time.perf_counter()
    image = assemble(text, "bench.pasm")
    seconds = time.perf_counter() - t0
    sim = Simulator(image)
    st = sim.run(10 * n + 1000)
    return seconds, st.status != "fault" and sim.regs[1] == want


def main():
    quick = "--quick" in sys.argv
    cases = [("gemm chain", gemm_chain, (250, 500, 1000) if quick else (500, 1000, 2000)),
             ("relu chain", relu_chain, (2500, 5000, 10000) if quick else (5000, 10000, 20000))]
    rows, wrong = [], []
    for what, make, sizes in cases:
        for n in sizes:
            s, ok = time_compile(make(n))
            rows.append({"case": what, "n": n, "seconds": round(s, 2), "bit_exact": ok})
            wrong += [] if ok else [f"{what} {n}"]
    for n in ((12500, 25000) if quick else (25000, 50000, 100000)):
        s, ok = time_asm(n)
        rows.append({"case": "lbc asm lines", "n": n, "seconds": round(s, 2), "bit_exact": ok})
        wrong += [] if ok else [f"asm {n}"]
    print(f"{'case':<16} {'n':>7} {'seconds':>8} {'x per 2n':>9}  ok")
    prev = {}
    for r in rows:
        p = prev.get(r["case"])
        growth = f"{r['seconds'] / p['seconds']:.1f}" if p and p["seconds"] > 0 else "-"
        print(f"{r['case']:<16} {r['n']:>7} {r['seconds']:>8} {growth:>9}  {r['bit_exact']}")
        prev[r["case"]] = r
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    if wrong:
        print(f"WRONG OUTPUT: {', '.join(wrong)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
