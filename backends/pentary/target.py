"""The pentary target: assembly for lbc's balanced base-5 machine (docs/pentary-isa.md), assembled
into a `.pent` image and run in the cycle-counting simulator.

Weights are stored natively as pents, 16 per word (pentary {-2..2}, ternary {-1..1} and int2
{-2..1} all fit a pent); activations are one int8 value per word. Dense and conv2d layers are
DOT / QUANT code (see `lower.py` for the cost model, layouts and register use).

Output folder: model.pasm (generated from templates/), model.pent (the image, assembled by the
real assembler), memory_map.txt (also in report.json), pentary_io.json (where the host writes the
input and reads the output, and their layout).
"""

import json
from pathlib import Path

import numpy as np

from lbc.backends.base import Target, header_lines, template_env
from lbc.errors import InternalError, LbcError, SourceError, ToolchainError

from . import asm, isa
from .image import Image
from .lower import (LANES, SUPPORTED_OPS, WEIGHT_DTYPES, Lowering, check as check_graph, element_offset,
                    loop_eligible)

HERE = Path(__file__).resolve().parent
MAX_CYCLES = 50_000_000          # per inference; a generated program never loops unboundedly
MEMORY_WORDS = isa.ADDR_MAX + 1  # sections are laid out from address 0 up to ADDR_MAX
UNROLL = ("auto", "always", "never")
IO_FILE = "pentary_io.json"      # where the host writes the input and reads the output


def lower(graph, unroll="auto"):
    """Lower with every dense layer unrolled; if that does not fit memory ("auto"), turn the
    dense layers with the most rows into loops, one at a time, until it fits (or none is left).
    unroll="always" / "never": all dense layers unrolled / loops."""
    if unroll not in UNROLL:
        raise LbcError(f"pentary unroll={unroll!r}; valid: {', '.join(UNROLL)}")
    low = Lowering(graph).lower()
    dense = [n for n in graph.nodes if loop_eligible(graph, low.mem, n)]
    if unroll == "never":
        return Lowering(graph, frozenset(n.name for n in dense)).lower()
    loops = set()
    # unrolled code grows with rows x (words per row + ~6); a loop's does not
    order = sorted(dense, key=lambda n: -graph.types[n.outputs[0]].size
                   * (graph.types[n.inputs[0]].shape[-1] // LANES + 4))
    while unroll == "auto" and sum(low.sizes().values()) > MEMORY_WORDS and len(loops) < len(order):
        loops.add(order[len(loops)].name)
        low = Lowering(graph, frozenset(loops)).lower()
    return low


def render(graph, unroll="auto"):
    """(assembly text, Lowering) for an integer graph that passed `check`."""
    low = lower(graph, unroll)
    mem = low.mem
    ctx = {
        "header": header_lines(graph, PentaryTarget.name, graph.meta.get("quant", "?")),
        "steps": low.steps,
        "weight_blocks": low.weight_blocks,
        "tables": low.tables,
        "luts": low.luts,
        "qdescs": [{"label": lab, "k": k, "lo": lo, "hi": hi} for (k, lo, hi), lab in sorted(low.qdescs.items())],
        "input_size": max(mem.size(mem.inp), 1),
        "output_size": 0 if mem.out == mem.inp else max(mem.size(mem.out), 1),
        "arena_size": mem.arena,
        "tensors": mem.equs,
    }
    text = template_env(HERE / "templates").get_template("model.pasm.j2").render(**ctx)
    return text, low


def memory_map(image, low, graph):
    """Address ranges of code, weights, descriptors, I/O buffers and activations."""
    sym = image.symbols
    sec = {s.name: s for s in image.sections}
    rows = []

    def add(region, start, size, what):
        if size <= 0:
            return
        rows.append({"region": region, "start": int(start), "end": int(start + size - 1), "words": int(size),
                     "contents": what})

    text = sec.get(".text")
    add("code", text.address, text.size, f"{text.size} instructions (unrolled rows: bias as MOVI immediate)")
    blocks = low.weight_blocks
    tstart, qstart = sym["tables"].value, sym["qdescs"].value
    for i, b in enumerate(blocks):
        start = sym[b["label"]].value
        end = sym[blocks[i + 1]["label"]].value if i + 1 < len(blocks) else tstart
        add(f"weights {b['label'][2:]}", start, end - start, b["comment"])
    for i, t in enumerate(low.tables):
        start = sym[t["bias"]["label"]].value
        end = sym[low.tables[i + 1]["bias"]["label"]].value if i + 1 < len(low.tables) else qstart
        add(f"tables {t['bias']['label'][3:-2]}", start, end - start, "bias, multiplier, descriptor per row")
    add("qdescs", qstart, len(low.qdescs), "QUANT descriptors")
    mem = low.mem
    add("input", sym["input"].value, mem.size(mem.inp), f"{graph.inputs[0]}: int8 input, written by the host")
    if mem.out != mem.inp:
        add("output", sym["output"].value, mem.size(mem.out), f"{graph.outputs[0]}: read by the host")
    add("arena", sym["arena"].value, mem.arena, "intermediate activations, shared by liveness")
    for t in mem.equs:
        if t["expr"].startswith("arena"):
            add(f"  {t['name']}", sym[t["name"]].value, t["size"], t["tensor"])
    end = image.end()
    add("free", end, MEMORY_WORDS - end, "unused")
    return rows


def format_map(rows, sizes):
    lines = ["# pentary memory map (word addresses; one word = 16 pents = 48 bits in model.pent)",
             f"# code {sizes['code']} words, data {sizes['data']} words, bss {sizes['bss']} words",
             f"{'region':<24} {'start':>7} {'end':>7} {'words':>7}  contents"]
    for r in rows:
        lines.append(f"{r['region'][:24]:<24} {r['start']:>7} {r['end']:>7} {r['words']:>7}  {r['contents']}")
    return "\n".join(lines) + "\n"


class PentaryTarget(Target):
    name = "pentary"
    description = "lbc's balanced base-5 machine: DOT over pent-packed weights, cycle-counting simulator"
    default_quant = "pentary"
    quants = ("pentary", "ternary", "int2")
    op_limits = {
        "add": "both operands activations of the output's shape (no broadcasting), operand shifts 0..15",
        "avgpool": "one requantisation per tensor", "global_avgpool": "one requantisation per tensor",
        "dense": "a conv2d output must be flattened before a dense layer reads it",
    }
    ops = SUPPORTED_OPS

    def __init__(self, flash_bytes=None, ram_bytes=None, unroll="auto"):
        super().__init__(flash_bytes, ram_bytes)
        if unroll not in UNROLL:
            raise LbcError(f"pentary unroll={unroll!r}; valid: {', '.join(UNROLL)}")
        self.unroll = unroll

    def options(self):
        opts = super().options()
        if self.unroll != "auto":
            opts["unroll"] = self.unroll
        return opts

    def check(self, graph):
        problems = super().check(graph)
        if graph.stateful:
            return problems
        problems += check_graph(graph)
        if problems:
            return problems
        low = lower(graph, self.unroll)
        sizes = low.sizes()
        total = sum(sizes.values())
        if total > MEMORY_WORDS:
            problems.append(
                f"the program needs {total} words (code {sizes['.text']}, data {sizes['.data']}, "
                f"activations {sizes['.bss']}) but memory holds {MEMORY_WORDS} words from address 0: "
                f"{total - MEMORY_WORDS} words too many; prune or shrink the model")
        return problems

    def weight_bytes(self, dtype_name, shape):
        # bytes of the .pent image: 16 pents per 48-bit word, rows padded to whole words
        if dtype_name in WEIGHT_DTYPES:
            row = int(np.prod(shape[1:]))
            return -(-row // LANES) * 6 * int(shape[0])
        return super().weight_bytes(dtype_name, shape)

    def emit(self, graph, outdir, options):
        text, low = render(graph, self.unroll)
        try:
            image = asm.assemble(text, "model.pasm")
        except SourceError as e:
            raise InternalError(f"generated pentary assembly is invalid: {e}") from None
        outdir = Path(outdir)
        (outdir / "model.pasm").write_text(text)
        sec = {s.name: s.size for s in image.sections}
        sizes = {"code": sec.get(".text", 0), "data": sec.get(".data", 0), "bss": sec.get(".bss", 0)}
        if {".text": sizes["code"], ".data": sizes["data"], ".bss": sizes["bss"]} != low.sizes():
            raise InternalError(f"pentary size model {low.sizes()} disagrees with the assembler {sizes}")
        rows = memory_map(image, low, graph)
        (outdir / "memory_map.txt").write_text(format_map(rows, sizes))
        mem = low.mem
        io = {"input": {"symbol": "input", "geometry": mem.geo(mem.inp)},
              "output": {"symbol": "output", "geometry": mem.geo(mem.out)}}
        (outdir / IO_FILE).write_text(json.dumps(io, indent=2, sort_keys=True) + "\n")
        self._image = (outdir, image)
        st = low.stats
        return {"files": ["model.pasm", "memory_map.txt", IO_FILE], "words": sizes, "memory_map": rows,
                "lowering": {"rows": st["rows"], "dot_instructions": st["dots"], "pointer_gaps": st["gaps"],
                             "weights": st["weights"], "nonzero_weights": st["nonzero_weights"],
                             "weight_words": st["weight_words"],
                             "zero_weight_words_dropped": st["weight_words_dense"] - st["weight_words"]}}

    def build(self, outdir):
        outdir = Path(outdir)
        cached = getattr(self, "_image", None)
        if cached and cached[0] == outdir:
            image = cached[1]
        else:
            image = asm.assemble_file(outdir / "model.pasm")
        data = image.to_bytes()
        (outdir / "model.pent").write_bytes(data)
        return {"image": "model.pent", "image_bytes": len(data)}

    def summary(self, report):
        w = report.get("emit", {}).get("words")
        if not w:
            return []
        b = report.get("build", {}).get("image_bytes")
        return [f"pentary image: code {w['code']} words, data {w['data']} words, activations {w['bss']} words"
                + (f"; model.pent {b} bytes" if b else "") + " (memory map: memory_map.txt)"]

    def run(self, outdir, manifest, xq):
        from .sim import Simulator
        path = Path(outdir) / "model.pent"
        if not path.exists():
            raise ToolchainError(f"{path} is missing; compile the model first (without --no-build)")
        image = Image.from_bytes(path.read_bytes(), str(path))
        io = json.loads((Path(outdir) / IO_FILE).read_text())
        n_in = int(np.prod(manifest["inputs"][0]["shape"][1:], dtype=np.int64))
        n_out = int(np.prod(manifest["outputs"][0]["shape"][1:], dtype=np.int64))
        inp, out = image.address(io["input"]["symbol"]), image.address(io["output"]["symbol"])
        in_at = [inp + element_offset(io["input"]["geometry"], i) for i in range(n_in)]
        out_at = [out + element_offset(io["output"]["geometry"], i) for i in range(n_out)]
        contiguous_in = in_at == list(range(inp, inp + n_in))
        out_dtype = np.int32 if manifest["outputs"][0]["dtype"] == "i32" else np.int8
        xq = np.asarray(xq)
        flat = xq.reshape(len(xq), -1).astype(np.int64)
        ys, cycles, instr = [], [], []
        reads = zeros = lanes = zlanes = 0
        overflow = False
        for row in flat:
            sim = Simulator(image)
            if contiguous_in:
                sim.write(inp, [int(v) for v in row])
            else:
                for a, v in zip(in_at, row):
                    sim.write(a, int(v))
            st = sim.run(MAX_CYCLES)
            if st.status != "halted":
                raise InternalError(f"the pentary program stopped with status {st.status} at PC {st.pc}"
                                    + (f": {st.fault}" if st.fault else ""))
            ys.append([sim.read_word(a) for a in out_at])
            cycles.append(st.cycles)
            instr.append(st.instructions)
            reads += st.reads
            zeros += st.zero_pents_read
            lanes += st.dot_lanes
            zlanes += st.dot_zero_lanes
            overflow |= st.overflowed
        y = np.asarray(ys, dtype=np.int64)
        if out_dtype == np.int8 and (y.min(initial=0) < -128 or y.max(initial=0) > 127):
            raise InternalError("the pentary program wrote an output outside int8")
        y = y.astype(out_dtype).reshape((len(xq),) + tuple(manifest["outputs"][0]["shape"][1:]))
        n = max(len(cycles), 1)
        stats = {
            "cycles_per_inference": round(sum(cycles) / n, 2),
            "instructions_per_inference": round(sum(instr) / n, 2),
            "zero_pent_fraction": round(zeros / (reads * isa.PENTS), 4) if reads else 0.0,
            "detail": {"cycles_min": min(cycles, default=0), "cycles_max": max(cycles, default=0),
                       "dot_lanes": lanes, "dot_zero_lane_fraction": round(zlanes / lanes, 4) if lanes else 0.0,
                       "words_read": reads, "overflowed": overflow},
            "cycles": cycles,
        }
        return y, stats
