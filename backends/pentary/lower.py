"""Lowering an integer graph to pentary kernel records.

Python decides every value here: where each tensor lives (one activation per word), how weights are
packed into DOT words, which QUANT descriptors exist, which constants stay in registers and which
instructions each output element needs. The templates in `templates/` only arrange these records
into assembly text.

Machine model used (docs/pentary-isa.md §6, §9): `DOT acc, P1, P2` adds the dot product of one
packed weight word (16 pent lanes) with the 16 activation words at P2, costs 2 + (nonzero lanes)
cycles and advances P1 by 1 and P2 by 16; zero lanes are free, whole words are not. So:

* Dense layers are straight-line code, one block per output element (a "row"): MOVI the bias into
  the accumulator, MOVI the activation address, the DOTs, QUANT (multiplier m and descriptor
  k/rounding/lo/hi from registers), STORE: 6 cycles besides the DOTs. A fused ReLU is QUANT's
  lo = 0; no RELU instruction.
* All weight rows of all layers form one stream that P1 walks from start to end.
* A weight word whose 16 lanes are all zero is neither stored nor executed: the activation pointer
  starts after leading zero words, and a gap in the middle costs one ADDI instead of a DOT.
* Per-channel multipliers and descriptors used more than once in a layer are loaded into registers
  before the layer; the rest are set per row (MOVI m, LOAD descriptor), skipping repeats.
* When the unrolled program does not fit memory, the largest dense layers become loops over
  per-row tables (`l_dense_loop`), ~8 cycles more per row.
* conv2d loops over output positions; the body computes all output channels unrolled. Its input
  is stored with zero borders and in the layout (NCHW or HWC) that needs fewer DOT words (`Memory`).

* Pools (max, average, global average) and the residual add are unrolled over one channel's
  positions (taps a padded window loses are left out: padding never wins a max and adds 0 to a
  sum) inside a loop over the channels, whose pointer registers step by each tensor's channel
  stride; tensors that are not 4-d have no loop. Sums end in QUANT like a dense row.

Registers: P1 weight pointer, P2 activation pointer, P3 accumulator, P4 multiplier, P5 descriptor,
P6..P28 cached constants (conv2d and dense loops: P6..P9 loop state). relu and argmax use P2..P5;
pools and add use P2, P6, P7 as channel pointers, P8 as a temporary, P9 as the channel count.
"""

from collections import Counter

import numpy as np

from lbc.backends.base import Namer, comment_safe
from lbc.ir.ops import OPS
from lbc.ir.ops import TABLE_OPS as POINTWISE_TABLE_OPS

from . import isa

LANES = isa.PENTS
WEIGHT_DTYPES = {"pentary": (-2, 2), "ternary": (-1, 1), "i2": (-2, 1)}
TABLE_OPS = frozenset({"table"}) | POINTWISE_TABLE_OPS  # every op whose integer form is the 256-entry `table`
SUPPORTED_OPS = frozenset({"dense", "conv2d", "relu", "reshape", "argmax", "maxpool", "avgpool", "global_avgpool",
                           "add"}) | TABLE_OPS
CHANNEL_REGS = ("P2", "P6", "P7")                          # pools and add: channel pointers
CACHE_REGS = tuple(f"P{i}" for i in range(6, 29))
CONV_CACHE_REGS = tuple(f"P{i}" for i in range(10, 29))   # P6..P9 are the loop state
IMM10 = isa.field_max(10)
Q_LIMIT = isa.QDESC_LIMIT


def _ints(v, n):
    v = [int(x) for x in v]
    return v * n if len(v) == 1 else v


def pack_pattern(offsets):
    """Group input columns by address into DOT words. `offsets[i]` is column i's address relative
    to the tensor base. Each word covers the 16 addresses starting at the lowest address not yet
    covered. Returns [(start, [(lane, column), ...]), ...] in address order."""
    words = []
    for col in sorted(range(len(offsets)), key=lambda i: offsets[i]):
        o = offsets[col]
        if not words or o >= words[-1][0] + LANES:
            words.append((o, []))
        words[-1][1].append((o - words[-1][0], col))
    return words


def strides(geo):
    """(channel, row, column) strides in words of a buffer geometry (C, H, W, pt, pb, pl, pr,
    channels_last) and the offset of element (0, 0, 0)."""
    c, h, w, pt, pb, pl, pr, last = geo
    hp, wp = h + pt + pb, w + pl + pr
    sc, sy, sx = (1, wp * c, c) if last else (hp * wp, wp, 1)
    return sc, sy, sx, pt * sy + pl * sx


def element_offset(geo, i):
    """Word offset of flat element i (row-major over C, H, W) in a buffer of geometry `geo`
    (None: stored flat, offset i)."""
    if geo is None:
        return i
    c, h, w = geo[:3]
    sc, sy, sx, base = strides(geo)
    ci, rest = divmod(i, h * w)
    y, x = divmod(rest, w)
    return base + ci * sc + y * sy + x * sx


def conv_pattern(n, geo, cg, kh, kw):
    """Offsets of a conv window's taps (ci, i, j) from the window origin in a buffer `geo`."""
    sc, sy, sx, _ = strides(geo)
    dh, dw = n.attr("dilations")
    return [ci * sc + i * dh * sy + j * dw * sx for ci in range(cg) for i in range(kh) for j in range(kw)]


def dot_cost(pattern):
    """DOT words and pointer gaps one output element needs over this address pattern (zero words
    aside): the part of a conv's cost that depends on the input layout."""
    words = pack_pattern(pattern)
    gaps = sum(b[0] != a[0] + LANES for a, b in zip(words, words[1:]))
    return 2 * len(words) + gaps


class Memory:
    """Word addresses of activation tensors: the input and output get their own buffers (the host
    writes and reads them), the rest share an arena by liveness. A reshape's output is its input's
    words (reshape emits no code).

    A tensor read by conv2d gets a geometry (C, H, W, pads top, bottom, left, right, channels_last):
    it is stored with zero borders as wide as the largest padding of its readers, so every window is
    the same address pattern and DOT needs no bounds tests; and channel-major (NCHW) or channel-minor
    (HWC), whichever makes its readers' windows fewer DOT words (HWC puts a kernel row of all
    channels in consecutive words, NCHW suits depthwise convs). Producers write the interior; the
    borders stay zero because a padded buffer is never shared with another tensor. Readers that
    are not convs use the same geometry (a dense packs its weights by address)."""

    def __init__(self, graph):
        g = self.g = graph
        self.names = Namer("t_")
        self.root = {}
        for n in g.nodes:
            if n.op == "reshape":
                self.root[n.outputs[0]] = self.root.get(n.inputs[0], n.inputs[0])
        self.inp = self.rootof(g.inputs[0])
        self.out = self.rootof(g.outputs[0])
        self.geometry, self.problems = {}, []
        readers = {}
        for n in g.nodes:
            if n.op == "conv2d":
                readers.setdefault(self.rootof(n.inputs[0]), []).append(n)
        for r, convs in readers.items():
            self._place(r, convs)
        self.offsets, self.arena = self._plan()
        self.equs = []
        for t in g.activation_tensors():
            r = self.rootof(t)
            if r == self.inp:
                expr = "input"
            elif r == self.out:
                expr = "output"
            else:
                expr = f"arena + {self.offsets[r]}" if self.offsets[r] else "arena"
            self.equs.append({"name": self.label(t), "expr": expr, "tensor": comment_safe(t),
                              "size": self.size(t)})

    def _place(self, r, convs):
        shapes = {tuple(self.g.types[n.inputs[0]].shape[1:]) for n in convs}
        if len(shapes) > 1:
            self.problems.append(f"conv2d {', '.join(n.name for n in convs)}: read one tensor as different "
                                 f"shapes {sorted(shapes)}")
            return
        (c, h, w), = shapes
        pads = [max(n.attr("pads")[i] for n in convs) for i in (0, 2, 1, 3)]   # top, bottom, left, right
        best = None
        for last in (False, True):
            geo = (c, h, w, *pads, last)
            cost = 0
            for n in convs:
                nout, cg, kh, kw = self.g.types[n.inputs[1]].shape
                positions = int(np.prod(self.g.types[n.outputs[0]].shape[2:]))
                cost += positions * nout * dot_cost(conv_pattern(n, geo, cg, kh, kw))
            if best is None or cost < best[0]:
                best = (cost, geo)
        if any(pads) or best[1][-1]:
            self.geometry[r] = best[1]

    def rootof(self, t):
        return self.root.get(t, t)

    def geo(self, t):
        """(C, H, W, pt, pb, pl, pr) of the buffer holding t, or None if it is stored flat."""
        return self.geometry.get(self.rootof(t))

    def padded(self, r):
        geo = self.geometry.get(r)
        return geo is not None and any(geo[3:7])

    def size(self, t):
        """Words of the buffer holding t (padding included)."""
        geo = self.geo(t)
        if geo is None:
            return self.g.types[t].size
        c, h, w, pt, pb, pl, pr, _ = geo
        return c * (h + pt + pb) * (w + pl + pr)

    def offset(self, t, i):
        """Word offset of element i (row-major over t's shape) in t's buffer."""
        return element_offset(self.geo(t), i)

    def label(self, t):
        return self.names(t)

    def addr(self, t, i=0):
        """Assembly expression for element i of tensor t."""
        off = self.offset(t, i)
        return f"{self.label(t)} + {off}" if off else self.label(t)

    def _plan(self):
        g = self.g
        start, end = {}, {}
        for i, n in enumerate(g.nodes):
            for t in n.inputs:
                if t not in g.consts:
                    r = self.rootof(t)
                    end[r] = max(end.get(r, i), i)
            for t in n.outputs:
                r = self.rootof(t)
                start.setdefault(r, i)
                end[r] = max(end.get(r, i), i)
        for r in self.geometry:                 # zero borders: never shared
            if self.padded(r):
                start[r], end[r] = -1, len(g.nodes)
        owners = sorted((r for r in start if r not in (self.inp, self.out)),
                        key=lambda r: (-self.size(r), start[r], r))
        placed, offsets = [], {}
        for r in owners:
            size, s, e = self.size(r), start[r], end[r]
            busy = sorted((o, sz) for o, sz, s2, e2 in placed if not (e2 < s or e < s2))
            off = 0
            for o, sz in busy:
                if off + size <= o:
                    break
                off = max(off, o + sz)
            placed.append((off, size, s, e))
            offsets[r] = off
        arena = max((o + sz for o, sz, _, _ in placed), default=0)
        return offsets, arena


class Lowering:
    """graph -> op records (`steps`), the weight stream (`weight_blocks`), QUANT descriptors."""

    def __init__(self, graph, loop_dense=frozenset()):
        self.g = graph
        self.loop_dense = loop_dense   # names of dense nodes compiled as a loop over table rows
        self.tables = []               # per-row bias / multiplier / descriptor tables of those
        self.luts = []                 # 256-entry tables of the table activations (sigmoid, tanh)
        self.table_words = 0
        self.mem = Memory(graph)
        self.nodes = Namer("n_")
        self.weight_blocks = []
        self.weight_words = 0          # words in the stream so far
        self.w_cursor = None           # where P1 points in the stream (None: unknown)
        self.qdescs = {}               # (k, lo, hi) -> label
        self.labels = 0
        self.steps = []
        self.stats = {"rows": 0, "dots": 0, "gaps": 0, "weights": 0, "weight_words": 0,
                      "weight_words_dense": 0, "nonzero_weights": 0}

    def local_label(self):
        self.labels += 1
        return f"_L{self.labels}"

    def lower(self):
        for n in self.g.nodes:
            step = {"op": n.op, "comment": comment_safe(f"{n.op} {n.name}: {', '.join(n.inputs[:1])} to "
                                                        f"{', '.join(n.outputs)}", 120)}
            getattr(self, "l_table" if n.op in TABLE_OPS else "l_" + n.op)(n, step)
            self.steps.append(step)
        return self

    def sizes(self):
        """Words per section: {".text", ".data", ".bss"}, as the assembler will lay them out."""
        mem = self.mem
        bss = max(mem.size(mem.inp), 1) + (0 if mem.out == mem.inp else max(mem.size(mem.out), 1)) + mem.arena
        return {".text": code_words(self.steps), ".data": self.weight_words + self.table_words + len(self.qdescs)
                + 256 * len(self.luts),
                ".bss": bss}

    # ------------------------------------------------------------------ constants and registers
    def qdesc(self, k, lo, hi):
        key = (int(k), int(lo), int(hi))
        if key not in self.qdescs:
            self.qdescs[key] = f"qd_k{key[0]}_lo{key[1]}_hi{key[2]}".replace("-", "m")
        return self.qdescs[key]

    @staticmethod
    def cache(ms, qs, regs, runs=1):
        """Registers for the multipliers and descriptors a layer uses more than once (`runs`: how
        often each row's code executes). Savings per extra use: a MOVI (1 cycle) for m, a LOAD
        (2 cycles) for a descriptor."""
        cand = [(c * runs - 1, "m", v) for v, c in Counter(ms).items()] + \
               [(2 * (c * runs - 1), "q", v) for v, c in Counter(qs).items()]
        cand = sorted((c for c in cand if c[0] > 0), key=lambda c: (-c[0], c[1], str(c[2])))
        chosen = {(kind, v): reg for (_, kind, v), reg in zip(cand, regs)}
        preload_m = [{"reg": reg, "op": "MOVI" if abs(v) <= IMM10 else "LI", "value": v}
                     for (kind, v), reg in chosen.items() if kind == "m"]
        preload_q = [{"reg": reg, "label": v} for (kind, v), reg in chosen.items() if kind == "q"]
        return chosen, {"preload_m": preload_m, "preload_q": preload_q}

    # ------------------------------------------------------------------ DOT rows
    def stream(self, n, w, pattern, keep_zero=False):
        """Append the weight rows of w [out, cols] to the stream, packed by the address pattern of
        the columns; all-zero words are dropped unless `keep_zero` (rows of a loop must be alike).
        Returns (block, per row: [word start address] of the words kept)."""
        dt = self.g.types[n.inputs[1]].dtype.name
        words = pack_pattern(pattern)
        label = "w_" + self.nodes(n.name)[2:]
        block = {"label": label, "start": self.weight_words, "rows": [],
                 "comment": comment_safe(f"{n.name}: {w.shape[0]} rows x {w.shape[1]} {dt} weights in "
                                         f"{len(words)} words per row"
                                         + ("" if keep_zero else " (all-zero words dropped)"), 120)}
        kept_starts = []
        for j in range(w.shape[0]):
            kept = []
            for start, lanes in words:
                vals = [0] * LANES
                for lane, col in lanes:
                    vals[lane] = int(w[j, col])
                if keep_zero or any(vals):
                    kept.append((start, vals))
            kept_starts.append([st for st, _ in kept])
            # one token per word: the assembler reads a 16-digit pentary literal much faster than
            # sixteen `.pent` operands, which matters for programs of tens of thousands of words
            block["rows"].append({"j": j, "words": [
                {"literal": "0p" + isa.pent_str(isa.from_pents(vals), LANES)} for _, vals in kept]})
            self.weight_words += len(kept)
        self.weight_blocks.append(block)
        block["end"] = self.weight_words
        st = self.stats
        st["weight_words"] += block["end"] - block["start"]
        st["weight_words_dense"] += w.shape[0] * len(words)
        st["weights"] += int(w.size)
        st["nonzero_weights"] += int(np.count_nonzero(w))
        return block, kept_starts

    def row(self, starts, bias, m, q, cached, scratch, x, out, comment, runs=1):
        """The record of one output element: bias, activation pointer, DOTs with pointer skips over
        dropped words, multiplier and descriptor registers, store. `x(start)` gives the operand that
        sets P2; `runs`: how often the code executes (for statistics)."""
        steps, prev = [], None
        for start in starts:
            if prev is not None and start != prev + LANES:
                steps.append({"op": "skip", "n": start - prev - LANES})
                self.stats["gaps"] += runs
            steps.append({"op": "dot"})
            prev = start
        self.stats["dots"] += len(starts) * runs
        self.stats["rows"] += runs
        b = int(bias)
        r = {"comment": comment, "bias_op": "MOVI" if abs(b) <= IMM10 else "LI", "bias": b,
             "x": x(starts[0]) if starts else None, "steps": steps, "out": out,
             "set_m": None, "load_q": None}
        mreg = cached.get(("m", m))
        if mreg is None:
            mreg = "P4"
            if scratch["P4"] != m:
                r["set_m"] = {"op": "MOVI" if abs(m) <= IMM10 else "LI", "value": m}
                scratch["P4"] = m
        qreg = cached.get(("q", q))
        if qreg is None:
            qreg = "P5"
            if scratch["P5"] != q:
                r["load_q"] = q
                scratch["P5"] = q
        r["m_reg"], r["q_reg"] = mreg, qreg
        return r

    def requant(self, n, nout):
        m, k = _ints(n.attr("m"), nout), _ints(n.attr("k"), nout)
        lo, hi = int(n.attr("lo")), int(n.attr("hi"))
        return m, [self.qdesc(kj, lo, hi) for kj in k]

    def bias(self, n, nout):
        g = self.g
        return g.consts[n.inputs[2]].astype(np.int64) if len(n.inputs) > 2 else np.zeros(nout, np.int64)

    # ------------------------------------------------------------------ ops
    def l_dense(self, n, s):
        if n.name in self.loop_dense:
            return self.l_dense_loop(n, s)
        return self.l_dense_unrolled(n, s)

    def l_dense_loop(self, n, s):
        """A loop over the output rows: bias, multiplier and descriptor come from per-row tables
        (hoisted when one value serves every row). About 8 cycles more per row than the unrolled
        form but the code does not grow with the rows: used when the unrolled program would not fit
        memory. P6 is the row index, P7 the row count."""
        g, mem = self.g, self.mem
        x, y = n.inputs[0], n.outputs[0]
        w = np.asarray(g.consts[n.inputs[1]], dtype=np.int64)
        nout, nin = w.shape
        bias = self.bias(n, nout)
        m, k = _ints(n.attr("m"), nout), _ints(n.attr("k"), nout)
        lo, hi = int(n.attr("lo")), int(n.attr("hi"))
        rows = int(np.prod(g.types[x].shape[1:-1], dtype=np.int64))
        block, starts = self.stream(n, w, [mem.offset(x, i) - mem.offset(x, 0) for i in range(nin)], keep_zero=True)
        steps, prev = [], None
        for start in starts[0]:
            if prev is not None and start != prev + LANES:
                steps.append({"op": "skip", "n": start - prev - LANES})
            steps.append({"op": "dot"})
            prev = start
        base = "tb_" + self.nodes(n.name)[2:]
        table = {"comment": comment_safe(f"{n.name}: per-row tables", 120),
                 "bias": {"label": f"{base}_b", "lines": _word_lines(bias)}, "m": None, "q": None}
        s["set_m"] = s["load_q"] = None
        if len(set(m)) == 1:
            s["set_m"] = {"op": "MOVI" if abs(m[0]) <= IMM10 else "LI", "value": m[0]}
        else:
            table["m"] = {"label": f"{base}_m", "lines": _word_lines(m)}
        if len(set(k)) == 1:
            s["load_q"] = self.qdesc(k[0], lo, hi)
        else:
            table["q"] = {"label": f"{base}_q", "descs": [{"k": kj, "lo": lo, "hi": hi} for kj in k]}
        self.tables.append(table)
        self.table_words += nout * (1 + (table["m"] is not None) + (table["q"] is not None))
        blocks = []
        for r in range(rows):
            blocks.append({"set_w": block["label"] if self.w_cursor != block["start"] else None,
                           "x": mem.addr(x, r * nin) + (f" + {starts[0][0]}" if starts[0][0] else ""),
                           "y": mem.addr(y, r * nout), "loop": self.local_label()})
            self.w_cursor = block["end"]
        st = self.stats
        st["rows"] += rows * nout
        st["dots"] += rows * nout * len(starts[0])
        st["gaps"] += rows * nout * (len(steps) - len(starts[0]))
        s.update(op="dense_loop", nout=nout, steps=steps, blocks=blocks, table=table)

    def l_dense_unrolled(self, n, s):
        """Straight-line rows. P1 continues from the previous layer's weights when they are
        adjacent in the stream (always, for a chain of dense layers)."""
        g, mem = self.g, self.mem
        x, y = n.inputs[0], n.outputs[0]
        w = np.asarray(g.consts[n.inputs[1]], dtype=np.int64)
        nout, nin = w.shape
        bias = self.bias(n, nout)
        m, qs = self.requant(n, nout)
        rows = int(np.prod(g.types[x].shape[1:-1], dtype=np.int64))
        block, starts = self.stream(n, w, [mem.offset(x, i) - mem.offset(x, 0) for i in range(nin)])
        cached, pre = self.cache(m * rows, qs * rows, CACHE_REGS)
        scratch = {"P4": None, "P5": None}
        blocks = []
        for r in range(rows):
            blk = {"set_w": block["label"] if self.w_cursor != block["start"] else None, "rows": []}
            base = r * nin
            for j in range(nout):
                blk["rows"].append(self.row(
                    starts[j], bias[j], m[j], qs[j], cached, scratch,
                    lambda st: mem.addr(x, base) + (f" + {st}" if st else ""),
                    mem.addr(y, r * nout + j), f"{j}" if rows == 1 else f"{r}, {j}"))
            self.w_cursor = block["end"]
            blocks.append(blk)
        s.update(pre, blocks=blocks)

    def l_conv2d(self, n, s):
        """Loops over output rows and columns; the body computes every output channel at that
        position (unrolled). P6 holds the window's offset in the (padded) input, P7 the output
        position's offset, P8 / P9 count columns / rows."""
        g, mem = self.g, self.mem
        x, y = n.inputs[0], n.outputs[0]
        w4 = np.asarray(g.consts[n.inputs[1]], dtype=np.int64)
        nout, cg, kh, kw = w4.shape
        _, c, h, wd = g.types[x].shape
        _, _, oh, ow = g.types[y].shape
        groups = n.attr("group")
        sh, sw = n.attr("strides")
        pt, pl = n.attr("pads")[0], n.attr("pads")[1]
        gx = mem.geo(x) or (c, h, wd, 0, 0, 0, 0, False)
        gy = mem.geo(y) or (nout, oh, ow, 0, 0, 0, 0, False)
        sc, sy, sx, _ = strides(gx)
        sco, syo, sxo, out0 = strides(gy)
        pattern = conv_pattern(n, gx, cg, kh, kw)
        bias = self.bias(n, nout)
        m, qs = self.requant(n, nout)
        block, starts = self.stream(n, w4.reshape(nout, -1), pattern)
        cached, pre = self.cache(m, qs, CONV_CACHE_REGS, runs=oh * ow)
        scratch = {"P4": None, "P5": None}   # unknown at the top of the loop body
        rows, mg, xl, yl = [], nout // groups, mem.label(x), mem.label(y)
        for j in range(nout):
            goff = (j // mg) * cg * sc
            rows.append(self.row(starts[j], bias[j], m[j], qs[j], cached, scratch,
                                 lambda st: f"{xl} + {goff + st}" if goff + st else xl,
                                 f"{yl} + {j * sco}" if j else yl, f"channel {j}", runs=oh * ow))
        self.w_cursor = block["end"]
        s.update(pre, rows=rows, w=block["label"], oh=oh, ow=ow, row_loop=self.local_label(),
                 col_loop=self.local_label(), layout="HWC" if gx[-1] else "NCHW",
                 win0=(gx[3] - pt) * sy + (gx[5] - pl) * sx, out0=out0, win_col=sw * sx, out_col=sxo,
                 win_row=sh * sy - ow * sw * sx, out_row=syo - ow * sxo)

    def channels(self, tensors):
        """Loop over axis 1 when the tensors are 4-d: (loop record or None, per tensor a function from
        the flat index of an element of channel 0 to its memory operand)."""
        mem, shape = self.mem, self.g.types[tensors[0]].shape
        if len(shape) != 4 or shape[1] == 1:
            return None, [lambda i, t=t: mem.addr(t, i) for t in tensors]
        ptrs = []
        for t, reg in zip(tensors, CHANNEL_REGS):
            per = self.g.types[t].size // shape[1]
            ptrs.append({"reg": reg, "step": mem.offset(t, per) - mem.offset(t, 0)})
        loop = {"label": self.local_label(), "count": shape[1], "ptrs": ptrs}
        return loop, [lambda i, t=t, reg=reg: f"{reg} + {mem.addr(t, i)}" for t, reg in zip(tensors, CHANNEL_REGS)]

    def tensor_requant(self, n, s):
        """P4 = m, P5 = descriptor of a per-tensor requantisation (check() allows no other)."""
        m = int(n.attr("m")[0])
        s.update(set_m={"op": "MOVI" if abs(m) <= IMM10 else "LI", "value": m},
                 load_q=self.qdesc(int(n.attr("k")[0]), int(n.attr("lo")), int(n.attr("hi"))))

    def pool(self, n, s, kernel, strides, pads):
        """Every output position of channel 0: its taps inside the input (row-major)."""
        x, y = n.inputs[0], n.outputs[0]
        _, c, h, w = self.g.types[x].shape
        _, _, oh, ow = self.g.types[y].shape
        loop, (xa, ya) = self.channels([x, y])
        outs = []
        for oy in range(oh):
            for ox in range(ow):
                taps = [xa(iy * w + ix) for iy in range(oy * strides[0] - pads[0], oy * strides[0] - pads[0] + kernel[0])
                        for ix in range(ox * strides[1] - pads[1], ox * strides[1] - pads[1] + kernel[1])
                        if 0 <= iy < h and 0 <= ix < w]
                outs.append({"first": taps[0] if taps else None, "rest": taps[1:], "y": ya(oy * ow + ox)})
        s.update(op="pool", loop=loop, outs=outs, set_m=None, load_q=None)

    def l_maxpool(self, n, s):
        self.pool(n, s, n.attr("kernel"), n.attr("strides"), n.attr("pads"))
        s.update(combine="MAX", quant=False)

    def l_avgpool(self, n, s):
        self.pool(n, s, n.attr("kernel"), n.attr("strides"), n.attr("pads"))
        s.update(combine="ADD", quant=True)
        self.tensor_requant(n, s)

    def l_global_avgpool(self, n, s):
        shape = self.g.types[n.inputs[0]].shape
        self.pool(n, s, shape[2:], (1, 1), (0, 0))
        s.update(combine="ADD", quant=True)
        self.tensor_requant(n, s)

    def l_add(self, n, s):
        """y = QUANT((a << sa) + (b << sb)); the shifts are MULI by 2**s."""
        a, b, y = n.inputs[0], n.inputs[1], n.outputs[0]
        loop, (aa, ba, ya) = self.channels([a, b, y])
        per = self.g.types[y].size // (loop["count"] if loop else 1)
        sa, sb = int(n.attr("sa")), int(n.attr("sb"))
        s.update(loop=loop, mul_a=1 << sa if sa else None, mul_b=1 << sb if sb else None,
                 elems=[{"a": aa(i), "b": ba(i), "y": ya(i)} for i in range(per)])
        self.tensor_requant(n, s)

    def l_reshape(self, n, s):
        s.update(x=self.mem.label(n.inputs[0]), y=self.mem.label(n.outputs[0]))

    def l_relu(self, n, s):
        mem = self.mem
        x, y = n.inputs[0], n.outputs[0]
        same = mem.geo(x) == mem.geo(y)
        s.update(x=mem.label(x), y=mem.label(y), n=mem.size(y), loop=self.local_label() if same else None,
                 elems=[] if same else [{"x": mem.addr(x, i), "y": mem.addr(y, i)}
                                        for i in range(self.g.types[y].size)])

    def l_table(self, n, s):
        """y = lut[x + 128], one word per entry: LOAD, LOAD indexed by the value, STORE per element."""
        self.l_relu(n, s)
        label = f"lut_{len(self.luts)}"
        self.luts.append({"label": label, "comment": comment_safe(f"{n.attr('fn') or n.op} {n.name}: entry x + 128 for x = "
                                                                  f"-128..127", 120),
                          "lines": [", ".join(str(int(v)) for v in n.attr("table")[i:i + 16])
                                    for i in range(0, 256, 16)]})
        s.update(op="table", lut=label)


    def l_argmax(self, n, s):
        x, y = n.inputs[0], n.outputs[0]
        shape = self.g.types[x].shape
        ax = n.attr("axis") % len(shape)
        outer = int(np.prod(shape[1:ax], dtype=np.int64))
        cnt, inner = shape[ax], int(np.prod(shape[ax + 1:], dtype=np.int64))
        groups = []
        for o in range(outer):
            for i in range(inner):
                base = o * cnt * inner + i
                rest = [{"addr": self.mem.addr(x, base + j * inner), "index": j, "label": self.local_label()}
                        for j in range(1, cnt)]
                groups.append({"first": self.mem.addr(x, base), "rest": rest,
                               "out": self.mem.addr(y, o * inner + i)})
        s["groups"] = groups


def _word_lines(values, per_line=16):
    vals = [str(int(v)) for v in values]
    return [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]


def loop_eligible(graph, mem, n):
    """A dense can be a loop over rows when its output rows are consecutive words."""
    y = n.outputs[0]
    return n.op == "dense" and mem.geo(y) is None


def _row_words(r):
    return ((2 if r["bias_op"] == "LI" else 1) + (r["x"] is not None) + len(r["steps"])
            + (0 if r["set_m"] is None else 2 if r["set_m"]["op"] == "LI" else 1) + (r["load_q"] is not None) + 2)


def _preload_words(s):
    return sum(2 if p["op"] == "LI" else 1 for p in s["preload_m"]) + len(s["preload_q"])


def code_words(steps):
    """Words of code the templates produce for these records (every instruction is one word, LI
    two). Lets `check` measure a program without assembling it; a test keeps it equal to the
    assembler's count."""
    n = 1                                                   # HALT
    for s in steps:
        if s["op"] == "dense":
            n += _preload_words(s) + sum((b["set_w"] is not None) + sum(_row_words(r) for r in b["rows"])
                                         for b in s["blocks"])
        elif s["op"] == "dense_loop":
            n += (0 if s["set_m"] is None else 2 if s["set_m"]["op"] == "LI" else 1) + (s["load_q"] is not None)
            n += sum((b["set_w"] is not None) + 2 + 2 + len(s["steps"]) + (s["table"]["m"] is not None)
                     + (s["table"]["q"] is not None) + 4 for b in s["blocks"])
        elif s["op"] == "conv2d":
            n += _preload_words(s) + 3 + 1 + 1 + sum(_row_words(r) for r in s["rows"]) + 4 + 4
        elif s["op"] == "relu":
            n += 7 if s["loop"] is not None else 3 * len(s["elems"])
        elif s["op"] == "table":
            n += 7 if s["loop"] is not None else 3 * len(s["elems"])
        elif s["op"] == "argmax":
            n += sum(3 + 4 * len(g["rest"]) for g in s["groups"])
        elif s["op"] in ("pool", "add"):
            if s["loop"] is not None:
                n += 2 * len(s["loop"]["ptrs"]) + 3
            if s["set_m"] is not None:
                n += (2 if s["set_m"]["op"] == "LI" else 1) + 1
            if s["op"] == "pool":
                n += sum(2 + 2 * len(o["rest"]) + s["quant"] for o in s["outs"])
            else:
                n += len(s["elems"]) * (5 + (s["mul_a"] is not None) + (s["mul_b"] is not None))
    return n


def _requant_problems(g, n, nout, bound):
    """What QUANT cannot do of node n's requantisation (nout channels, |accumulator| <= bound)."""
    problems = []
    lo, hi = int(n.attr("lo")), int(n.attr("hi"))
    if not -128 <= lo <= hi <= 127:
        problems.append(f"{n.op} {n.name}: requant bounds lo={lo}, hi={hi} are not an int8 range "
                        f"(-128 <= lo <= hi <= 127)")
    for name in ("m", "k"):
        v = n.attrs.get(name, OPS[n.op].attrs.get(name))
        if len(v) not in (1, nout):
            problems.append(f"{n.op} {n.name}: {len(v)} values of {name} for {nout} channels")
    ks = [int(v) for v in n.attr("k")]
    if not all(0 <= v <= isa.QDESC_K_MAX for v in ks):
        problems.append(f"{n.op} {n.name}: requant shift k={max(ks)} outside QUANT's 0..{isa.QDESC_K_MAX}")
    for name in ("lo", "hi"):
        if not -Q_LIMIT <= int(n.attr(name)) <= Q_LIMIT:
            problems.append(f"{n.op} {n.name}: requant {name}={n.attr(name)} outside QUANT's "
                            f"-{Q_LIMIT}..{Q_LIMIT}")
    ms = [int(v) for v in n.attr("m")]
    if max(abs(v) for v in ms) > isa.WORD_MAX:
        problems.append(f"{n.op} {n.name}: requant multiplier does not fit a word")
    if bound > isa.WORD_MAX:
        problems.append(f"{n.op} {n.name}: the accumulator can reach {bound}, beyond a word's {isa.WORD_MAX}")
    return problems


def _sum_op_problems(g, n):
    """An add or average pool: per-tensor requantisation, and an add of two same-shape activations."""
    if n.op == "add":
        shape = tuple(g.types[n.outputs[0]].shape)
        if any(i in g.consts or tuple(g.types[i].shape) != shape for i in n.inputs):
            return [f"add {n.name}: both operands must be activations of the output's shape {shape} "
                    f"(no constants, no broadcasting)"]
        sa, sb = int(n.attr("sa")), int(n.attr("sb"))
        if not (0 <= sa <= 15 and 0 <= sb <= 15):
            return [f"add {n.name}: operand shifts must be 0..15 (got {sa}, {sb})"]
        bound = (128 << sa) + (128 << sb)
    elif n.op == "avgpool":
        bound = 128 * int(np.prod(n.attr("kernel")))
    else:
        bound = 128 * int(np.prod(g.types[n.inputs[0]].shape[2:]))
    if len(n.attr("m")) != 1 or len(n.attr("k")) != 1:
        return [f"{n.op} {n.name}: per-channel requantisation is not supported for {n.op} (one m and k per "
                f"tensor, as the quantize passes choose)"]
    return _requant_problems(g, n, 1, bound)


def check(graph):
    """Every reason `graph` cannot be lowered, except memory (measured after rendering)."""
    g, problems = graph, []
    for n in g.nodes:
        if n.op in ("dense", "conv2d") and len(n.inputs) > 1:
            wt = g.types[n.inputs[1]].dtype.name
            if wt not in WEIGHT_DTYPES:
                problems.append(f"{n.op} {n.name}: weights are {wt}; the pentary target stores weights as pents "
                                f"(-2..2): use --quant pentary, ternary or int2")
                continue
            if n.inputs[1] not in g.consts:
                problems.append(f"{n.op} {n.name}: weights must be constants")
                continue
            if len(n.inputs) > 2 and n.inputs[2] not in g.consts:
                problems.append(f"{n.op} {n.name}: the bias must be a constant")
                continue
            w = np.asarray(g.consts[n.inputs[1]], dtype=np.int64)
            wlo, whi = WEIGHT_DTYPES[wt]
            if w.size and (w.min() < wlo or w.max() > whi):
                problems.append(f"{n.op} {n.name}: {wt} weights outside {wlo}..{whi}")
            bias = np.abs(g.consts[n.inputs[2]].astype(np.int64)).max() if len(n.inputs) > 2 else 0
            bound = int(np.abs(w).sum(axis=tuple(range(1, w.ndim))).max()) * 128 + int(bias)
            problems += _requant_problems(g, n, w.shape[0], bound)
        elif n.op in ("add", "avgpool", "global_avgpool"):
            problems += _sum_op_problems(g, n)
    if not problems:
        mem = Memory(g)
        problems += mem.problems
        for n in g.nodes:
            if n.op == "dense" and mem.geo(n.inputs[0]) is not None and len(g.types[n.inputs[0]].shape) > 2:
                problems.append(f"dense {n.name}: its input {n.inputs[0]} is laid out for a conv2d (padded or "
                                f"channels-last) and has more than one row; flatten it first")
    prods = g.producers()
    for t in g.activation_tensors():
        dt = g.types[t].dtype.name
        prod = prods.get(t)
        want = "i32" if prod is not None and prod.op == "argmax" else "i8"
        if dt != want:
            problems.append(f"tensor {t} is {dt}; the pentary target needs {want} activations "
                            f"(quantise the model: --quant pentary, ternary or int2)")
    return problems
