"""The NES target: ca65 assembly for the 6502 (Ricoh 2A03), a bootable NROM-256 cartridge (.nes)
with a demo shell, and a sim65 build used by `lbc run`, the tests and the benchmark.

Output folder (see model.inc for the calling convention of the inference routine):

    model.s, model.inc    the inference routine and its include file: take these two into a game
    shell.s, samples.s, chr.s, nrom.cfg    the demo cartridge: shows a sample as a picture, runs the
                          network, shows the class and the cycles it took; the controller steps
                          through the samples compiled into the ROM (--samples data.npz)
    sim_main.s, sim6502.cfg               the sim65 build: raw int8 samples on stdin, outputs on stdout
    model.nes, model_sim.prg              the two builds of the same routine (after `build`)

Both builds link the same model.o; its code and tables start on page boundaries, so the cycle
counts (which depend on page crossings) are identical in the ROM and under sim65.
"""

import itertools
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lbc.backends.base import Namer, Target, comment_safe, header_lines, template_env
from lbc.backends.nes import lower as L
from lbc.backends.nes import window as WK
from lbc.errors import InternalError, LbcError, TargetError, ToolchainError
from lbc.ir.ops import TABLE_OPS as POINTWISE_TABLE_OPS
from lbc.ir.quant import quantize_input, rounding_shift

HERE = Path(__file__).resolve().parent
RUNTIME = HERE.parent.parent / "runtime" / "nes"

PRG_BYTES = 32768  # NROM-256: 2 x 16 KB PRG-ROM at $8000-$FFFF
VECTOR_BYTES = 6
RAM_BYTES = 2048  # $0000-$07FF
STACK_BYTES = 256  # $0100-$01FF
STACK_USE_BYTES = 4  # lbc_run's own use of the stack (model.inc: at most 4 bytes)
SHELL_RAM_BYTES = 256  # $0200-$02FF: the demo shell's variables (and room for a game's OAM page)
ZP_SHELL_BYTES = 32  # zero page kept for the demo shell (and the cc65 runtime in the sim build)
ZP_MODEL_MAX = 192  # zero page the model may take: scratch + the activation arena when it fits
SHELL_ROM_BYTES = 1280  # PRG of the demo shell's code and text (measured 1,049 B; kept with margin)
ALIGN_PAD_BYTES = 510  # worst case padding of the two page-aligned segments (CODE, RODATA)
LAYOUT_PAD_BYTES = 3  # budgeted per never-executed place where lower.layout may pad (measured ~1.5)
MAX_IO_BYTES = 256
MAX_SAMPLES = 16  # samples taken from --samples for the ROM
SYNTHETIC_SAMPLES = 4  # without --samples: deterministic random inputs
WEIGHT_DTYPES = ("ternary", "pentary", "i2", "i4")
UNSIGNED_OPS = frozenset({"dense", "conv2d", "maxpool", "avgpool", "global_avgpool", "add"})  # read u = x + o
# int8 -> int8 through the node's 256-entry `table` (the generic integer form of pointwise functions)
TABLE_OPS = frozenset({"table"}) | POINTWISE_TABLE_OPS  # every op whose integer form is `table`
SUPPORTED_OPS = frozenset({"dense", "relu", "reshape", "argmax", "conv2d", "maxpool", "avgpool", "global_avgpool",
                           "add", "concat"}) | TABLE_OPS
CYCLES_NTSC_FRAME = 29780
STREAM_RECORDS = 512  # time steps per sim65 process of a streaming model (~100k cycles each at most)


@dataclass
class Store:
    """How an activation tensor is stored: byte = value + o, value in [vlo, vhi]."""
    o: int
    vlo: int
    vhi: int
    off: int  # arena offset

    @property
    def urange(self):
        return self.vlo + self.o, self.vhi + self.o


@dataclass
class LayerPlan:
    node: object
    name: str
    K: int
    M: int
    nnz: int
    zeros: int
    dtype: str
    variants: dict = field(default_factory=dict)  # kernel -> dict(code, sub, data, bytes, cycles, acc_bits)
    kernel: str = ""
    problems: list = field(default_factory=list)
    allowed: list = field(default_factory=list)
    positions: int = 1  # window kernels: output positions the code runs at
    macs: int | None = None  # multiply-accumulates per inference (None: K * M, a dense layer)
    fused: object = None  # window kernels: the max pooling fused into this convolution
    shape: str = ""  # what the layer maps, for comments and the report (window kernels)


def _round16(n):
    return -(-n // 16) * 16


def _est_requant_cycles(p):
    return {"const": 5, "thresholds": 25}.get(p.kind, 125)


class Lowering:
    """Integer graph -> per-step ca65 lines for the NES (see lower.py for the kernels)."""

    def __init__(self, graph, kernel="auto", ram_free=None):
        self.g = graph
        self.kernel = kernel
        self.ram_free = ram_free  # RAM outside the zero page the model may use (None: no limit)
        self.problems = []
        self.names = Namer("lbc_")
        mp = graph.meta.get("memory_plan")
        if mp is None:
            raise InternalError("the NES target needs the plan-memory pass")
        self.offsets = mp["offsets"]
        self.arena_bytes = max(int(mp["arena_bytes"]), 1)
        self.arena_zp = self.arena_bytes + L.Tmp.BYTES <= ZP_MODEL_MAX
        self.store = {}
        self.layers = []
        self.steps = []
        self.needs_tables = False
        self.pad_bytes = 0  # the padded copy of a window kernel's input (BSS)
        self._plan_storage()

    # -------------------------------------------------------------------- storage of activations
    def loc(self, t, i=0):
        return L.Loc(f"lbc_arena+{self.store[t].off + i}", self.arena_zp)

    def _plan_storage(self):
        """Store every tensor as unsigned bytes u = x + o where the kernels add or compare bytes: o = 128
        for a tensor with negative values, 0 otherwise; graph outputs are stored as they are (o = 0).
        A reshape shares its input's bytes and store; the graph input is flipped in place (o = 128)
        when a kernel that needs unsigned bytes reads it (through reshapes too)."""
        g = self.g
        root = {}
        for n in g.nodes:
            if n.op == "reshape":
                root[n.outputs[0]] = root.get(n.inputs[0], n.inputs[0])
        self.root = root
        out_roots = {root.get(t, t) for t in g.outputs}
        inp = g.inputs[0]
        self.flip_input = any(n.op in UNSIGNED_OPS and root.get(t, t) == inp
                              for n in g.nodes for t in n.inputs[:1] + (n.inputs[1:2] if n.op == "add" else []))
        self.store[inp] = Store(128 if self.flip_input else 0, -128, 127, self.offsets[inp])

        def biased(lo, t):
            return 128 if lo < 0 and root.get(t, t) not in out_roots else 0

        for n in g.nodes:
            out = n.outputs[0]
            ins = [self.store.get(t) for t in n.inputs]
            if n.op in ("dense", "conv2d", "add", "avgpool", "global_avgpool"):
                lo, hi = n.attr("lo"), n.attr("hi")
                self.store[out] = Store(biased(lo, out), lo, hi, self.offsets[out])
            elif n.op == "relu":
                s = ins[0]
                self.store[out] = Store(0, max(s.vlo, 0), max(s.vhi, 0), self.offsets[out])
            elif n.op == "reshape":
                s = ins[0]
                self.store[out] = Store(s.o, s.vlo, s.vhi, self.offsets[out])
            elif n.op == "maxpool":
                s = ins[0]
                self.store[out] = Store(biased(s.vlo, out), s.vlo, s.vhi, self.offsets[out])
            elif n.op in TABLE_OPS:
                s = ins[0]
                vals = self._table_values(n)[s.vlo + 128:s.vhi + 129]
                lo, hi = int(vals.min()), int(vals.max())
                self.store[out] = Store(biased(lo, out), lo, hi, self.offsets[out])
            elif n.op == "concat":
                shifts = n.attr("shifts") or (0,) * len(ins)
                lo = min(int(np.clip(rounding_shift(s.vlo, sh), -128, 127)) for s, sh in zip(ins, shifts))
                hi = max(int(np.clip(rounding_shift(s.vhi, sh), -128, 127)) for s, sh in zip(ins, shifts))
                self.store[out] = Store(biased(lo, out), lo, hi, self.offsets[out])
            elif n.op == "argmax":
                self.store[out] = Store(0, 0, 0, self.offsets[out])
            else:  # an op the target does not take (check names it): plan the rest as if it were int8
                self.store[out] = Store(biased(-128, out), -128, 127, self.offsets[out])
            reads = n.inputs[:2] if n.op == "add" else n.inputs[:1]
            for t in reads:
                st = self.store.get(t)
                if n.op in UNSIGNED_OPS and st is not None and st.vlo + st.o < 0:
                    self.problems.append(f"{n.op} {n.name} reads {t}, which is also a graph output (stored as "
                                         f"signed int8); the NES target needs the inputs of {n.op} stored "
                                         f"unsigned (x + 128)")

    def _table_values(self, n):
        """The 256 int8 results of a table op, indexed by x + 128."""
        return np.asarray(n.attr("table"), dtype=np.int64).reshape(-1)

    # -------------------------------------------------------------------- dense layers
    def plan_dense(self, idx, n):
        g = self.g
        x, wt = n.inputs[0], n.inputs[1]
        w = np.asarray(g.consts[wt], dtype=np.int64)
        b = np.asarray(g.consts[n.inputs[2]], dtype=np.int64) if len(n.inputs) > 2 else np.zeros(w.shape[0], np.int64)
        M, K = w.shape
        lp = LayerPlan(n, f"lbc_L{idx}", K, M, int(np.count_nonzero(w)), int(w.size - np.count_nonzero(w)),
                       g.types[wt].dtype.name)
        ms = np.broadcast_to(np.asarray(n.attr("m"), dtype=np.int64), (M,))
        ks = np.broadcast_to(np.asarray(n.attr("k"), dtype=np.int64), (M,))
        lo, hi = n.attr("lo"), n.attr("hi")
        si, so = self.store[x], self.store[n.outputs[0]]
        lp.x_off, lp.y_off = si.off, so.off
        ul, uh = si.urange
        in_locs = [L.Loc(f"{lp.name}_x+{i}", self.arena_zp) for i in range(K)]
        outs = [L.Loc(f"{lp.name}_y+{j}", self.arena_zp) for j in range(M)]
        planes = [L.planes_of(w[j]) for j in range(M)]
        Kb = lp.Kb = [int(b[j]) - si.o * int(w[j].sum()) for j in range(M)]

        def requant(j, rmin, rmax, off):
            p = L.plan_requant(rmin, rmax, Kb[j] - off, int(ms[j]), int(ks[j]), lo, hi, so.o)
            L.verify_requant(p, rmin, rmax, Kb[j] - off, int(ms[j]), int(ks[j]), lo, hi, so.o)
            return p

        def sgn(v):
            return f"+ {v}" if v >= 0 else f"- {-v}"

        # unrolled: every neuron needs a provable 16-bit chain; requant inline or through the shared multiply
        try:
            chains = []
            for j in range(M):
                cp = L.unrolled_chain_plan(planes[j], ul, uh)
                if cp is None:
                    raise TargetError(f"neuron {j} needs more than a 16-bit accumulator "
                                      f"(sum|w| = {int(np.abs(w[j]).sum())}, inputs in [{ul}, {uh}])")
                p = requant(j, cp[2], cp[3], cp[1])
                if p.kind == "multiply" and p.L1 is not None and len(planes[j]) == 1 and p.L1 % 256:
                    # start X0 so the low-clamp threshold is a multiple of 256: one compare instead of two
                    l1v = p.L1 - cp[1]
                    cp2 = L.unrolled_chain_plan(planes[j], ul, uh, prefer=lambda off: (l1v + off) % 256 == 0)
                    if cp2 != cp:
                        cp, p = cp2, requant(j, cp2[2], cp2[3], cp2[1])
                chains.append((cp, p))
            for call in (False, True):
                code, cycles, adds, uses_mul, chain_bytes = L.Code(), 0, 0, False, 0
                for j, ((X0, off, rmin, rmax), p) in enumerate(chains):
                    lab = f"{lp.name}n{j}"
                    code.comment(f"neuron {j}: raw in [{rmin}, {rmax}], acc = raw {sgn(Kb[j] - off)}")
                    if p.kind != "const" and planes[j]:
                        before = code.size
                        L.emit_unrolled_neuron(code, planes[j], X0, in_locs, lab)
                        chain_bytes += code.size - before
                        n_adds = sum(len(t) for _, t in planes[j])
                        adds += n_adds
                        cycles += 6.3 * n_adds + 12 + 30 * (len(planes[j]) - 1)
                    uses_mul |= p.kind == "multiply"
                    L.emit_requant(code, p, outs[j], lab, call=call)
                    cycles += _est_requant_cycles(p) + (32 if call and p.kind == "multiply" else 0)
                shl = {L.shift_table_used(p.k, call) for _, p in chains if p.kind == "multiply"} - {None}
                lp.variants["unrolled_call" if call else "unrolled"] = {
                    "code": code, "sub": L.Code(), "data": [], "bytes": code.size, "cycles": cycles,
                    "acc_bits": 16, "mul": uses_mul, "call": call and uses_mul, "adds": adds,
                    "chain_bytes": chain_bytes, "shl": shl}
        except TargetError as e:
            lp.problems.append(f"unrolled: {e}")

        # loop over packed plane masks: 16-bit accumulator when the range allows, else 24
        try:
            offs = [L.loop_offset(planes[j], ul, uh, K) if planes[j] else (0, 0, 0, 0, 16) for j in range(M)]
            if any(o is None for o in offs):
                raise TargetError("needs more than a 24-bit accumulator")
            acc24 = any(o[4] == 24 for o in offs)
            code, sub, data, cycles, uses_mul = L.Code(), L.Code(), [], 0, False
            routine = f"{lp.name}_plane"
            L.emit_plane_routine(sub, routine, f"{lp.name}_x", self.arena_zp, K, acc24)
            nbytes = (K + 7) // 8
            for j in range(M):
                lab = f"{lp.name}n{j}"
                off0, off, rmin, rmax, bits = offs[j]
                p = requant(j, rmin, rmax, off)
                code.comment(f"neuron {j}: raw in [{rmin}, {rmax}], acc = raw {sgn(Kb[j] - off)}")
                if p.kind != "const" and planes[j]:
                    masks = L.loop_masks(planes[j], K)
                    labels = [f"{lab}_m{pi}" for pi in range(len(planes[j]))]
                    for (pl, mb), ml in zip(masks, labels):
                        if mb is not None:
                            data.append((ml, [int(v) for v in mb]))
                    L.emit_loop_neuron(code, planes[j], masks, labels, routine, off0, acc24)
                    n_planes = sum(1 for _, t in planes[j] if t)
                    n_adds = sum(len(t) for _, t in planes[j])
                    cycles += n_planes * (40 + nbytes * 30 + K * 16) + n_adds * 14
                uses_mul |= p.kind == "multiply"
                L.emit_requant(code, p, outs[j], lab, raw24=acc24 and p.kind != "const", call=True)
                cycles += _est_requant_cycles(p) + 32 + (20 if acc24 else 0)
            dbytes = sum(len(v) for _, v in data)
            lp.variants["loop"] = {"code": code, "sub": sub, "data": data, "bytes": code.size + sub.size + dbytes,
                                   "cycles": cycles, "acc_bits": 24 if acc24 else 16, "mul": uses_mul,
                                   "call": uses_mul, "mask_bytes": dbytes, "shl": set()}
        except TargetError as e:
            lp.problems.append(f"loop: {e}")
        # partial-sum tables (see lower.py): needs one table page pair of RAM and a provable 16-bit sum
        try:
            self._plan_table(lp, w, planes, ul, uh, requant, sgn, outs)
        except TargetError as e:
            lp.problems.append(f"table: {e}")
        if not lp.variants:
            self.problems.append(f"dense {n.name}: no NES kernel fits ({'; '.join(lp.problems)})")
        return lp

    def _plan_table(self, lp, w, planes, ul, uh, requant, sgn, outs):
        M, K = w.shape
        g = L.table_group(K)
        if g is None:
            raise TargetError(f"{K} inputs do not fit one table page ({L.TABLE_ENTRIES} entries)")
        groups = -(-K // g)
        if self.ram_free is not None and self.ram_free < 2 * _round16(groups << g) + (
                0 if self.arena_zp else self.arena_bytes):
            raise TargetError("the tables do not fit the RAM left")
        P = L.twos_planes(int(w.min()), int(w.max()))
        offs = [L.table_offset(w[j], ul, uh, P) for j in range(M)]
        if any(o is None for o in offs):
            raise TargetError("a neuron's sum does not fit 16 bits")
        slots = [(p, gi, col) for p, gi, col in L.table_slots(w, P, g) if col.any()]
        name = f"{lp.name}_mac"
        data = [(f"{lp.name}_s0l", [o[0] & 0xFF for o in offs]), (f"{lp.name}_s0h", [(o[0] >> 8) & 0xFF for o in offs])]
        data += [(f"{lp.name}_c{s}", [int(v) for v in col]) for s, (_, _, col) in enumerate(slots)]
        sub = L.Code()
        L.emit_table_mac(sub, name, [(p, gi) for p, gi, _ in slots], P, g, lambda s: f"{lp.name}_c{s}",
                         f"{lp.name}_s0")
        plans = []
        for j in range(M):
            _, off, rmin, rmax = offs[j]
            plans.append((requant(j, rmin, rmax, off), rmin, rmax, off))
        mac_cycles = 40 + 26 * len(slots) + 10 * (P - 1)
        for call in (False, True):
            code, cycles, uses_mul = L.Code(), 30 + 400 * groups, False
            code.comment(f"partial-sum tables of {groups} groups of {g} inputs")
            L.emit_table_fill(code, g, f"{lp.name}_x", groups)
            for j, (p, rmin, rmax, off) in enumerate(plans):
                lab = f"{lp.name}n{j}"
                code.comment(f"neuron {j}: raw in [{rmin}, {rmax}], acc = raw {sgn(lp.Kb[j] - off)}")
                if p.kind != "const" and planes[j]:
                    code.imm("ldx", j)
                    code.jsr(name)
                    cycles += mac_cycles
                uses_mul |= p.kind == "multiply"
                L.emit_requant(code, p, outs[j], lab, call=call)
                cycles += _est_requant_cycles(p) + (32 if call and p.kind == "multiply" else 0)
            shl = {L.shift_table_used(p.k, call) for p, *_ in plans if p.kind == "multiply"} - {None}
            dbytes = sum(len(v) for _, v in data)
            lp.variants["table_call" if call else "table"] = {
                "code": code, "sub": sub, "data": data, "bytes": code.size + sub.size + dbytes, "cycles": cycles,
                "acc_bits": 16, "mul": uses_mul, "call": call and uses_mul, "shl": shl, "mask_bytes": dbytes,
                "table_group": g, "table_entries": groups << g}

    # -------------------------------------------------------------------- window kernels (window.py)
    def _window_geometry(self, n):
        """(Geometry, weights [M, C/group, kh, kw], bias, group, dtype) of a conv2d or average pooling."""
        g = self.g
        _, C, H, W = g.types[n.inputs[0]].shape
        if n.op == "conv2d":
            w = np.asarray(g.consts[n.inputs[1]], dtype=np.int64)
            b = (np.asarray(g.consts[n.inputs[2]], dtype=np.int64) if len(n.inputs) > 2
                 else np.zeros(w.shape[0], np.int64))
            geo = WK.Geometry(C, H, W, w.shape[2], w.shape[3], *n.attr("strides"), *n.attr("dilations"),
                              tuple(n.attr("pads")))
            return geo, w, b, n.attr("group"), g.types[n.inputs[1]].dtype.name
        if n.op == "avgpool":
            (kh, kw), st, pads = n.attr("kernel"), n.attr("strides"), tuple(n.attr("pads"))
        else:  # global_avgpool
            (kh, kw), st, pads = (H, W), (1, 1), (0, 0, 0, 0)
        geo = WK.Geometry(C, H, W, kh, kw, st[0], st[1], 1, 1, pads)
        return geo, np.ones((C, 1, kh, kw), np.int64), np.zeros(C, np.int64), C, "pool"

    def plan_window(self, idx, n, pool=None):
        """conv2d / avgpool / global_avgpool: per output channel a proven 16-bit chain over the window,
        in a loop over the output positions (see window.py). `pool`: a max pooling (kernel = stride, no
        padding) that reads only this layer's output, fused: the requantisation is monotone, so the
        maximum of the raw sums over each pooling window is requantised once (lp.fused says whether
        it was; channels that need 24 bits are not fused)."""
        g = self.g
        x, out = n.inputs[0], n.outputs[0]
        geo, w, b, group, dtype = self._window_geometry(n)
        M, cg = w.shape[:2]
        mg = M // group
        kp = pool.attr("kernel")[0] if pool is not None else 1
        PH, PW = geo.OH // kp, geo.OW // kp
        lp = LayerPlan(n, f"lbc_L{idx}", cg * geo.kh * geo.kw, M, int(np.count_nonzero(w)),
                       int(w.size - np.count_nonzero(w)), dtype, positions=PH * kp * PW * kp)
        lp.fused = pool
        lp.macs = geo.OH * geo.OW * int(w.size)
        lp.shape = (f"{geo.C}x{geo.H}x{geo.W} to {M}x{geo.OH}x{geo.OW}, window {geo.kh}x{geo.kw}"
                    + (f", then max pooling {kp}x{kp} to {M}x{PH}x{PW}" if pool is not None else ""))
        probs = geo.problems(f"{n.op} {n.name}")
        if probs:
            self.problems += probs
            return lp
        si, so = self.store[x], self.store[pool.outputs[0] if pool is not None else out]
        ul, uh = si.urange
        if geo.padded:  # the padding bytes hold the stored 0
            ul, uh = min(ul, si.o), max(uh, si.o)
            self.pad_bytes = max(self.pad_bytes, geo.C * geo.plane)
        src = "lbc_pad" if geo.padded else f"lbc_arena+{si.off}"
        ms = np.broadcast_to(np.asarray(n.attr("m"), dtype=np.int64), (M,))
        ks = np.broadcast_to(np.asarray(n.attr("k"), dtype=np.int64), (M,))
        lo, hi = n.attr("lo"), n.attr("hi")
        subs = [a * geo.sh * geo.Wp + c * geo.sw for a in range(kp) for c in range(kp)]  # pooled positions
        chans = []
        for m in range(M):
            gi = m // mg
            vec = w[m].reshape(-1)
            taps = [geo.tap(gi * cg + c, i, j) for c in range(cg) for i in range(geo.kh) for j in range(geo.kw)]
            parts = WK.split_chains(vec, ul, uh)
            if parts is None:
                self.problems.append(f"{n.op} {n.name}: output channel {m} needs more than a 24-bit accumulator")
                return lp
            if pool is not None and len(parts) > 1:
                return self.plan_window(idx, n)  # the fused maximum compares 16-bit sums
            off, rmin, rmax = (sum(pt[k] for pt in parts) for k in (3, 4, 5))
            Kb = int(b[m]) - si.o * int(vec.sum())
            try:
                rq = L.plan_requant(rmin, rmax, Kb - off, int(ms[m]), int(ks[m]), lo, hi, so.o)
            except TargetError as e:
                self.problems.append(f"{n.op} {n.name}: output channel {m}: {e}")
                return lp
            L.verify_requant(rq, rmin, rmax, Kb - off, int(ms[m]), int(ks[m]), lo, hi, so.o)
            chains = [(planes, X0) for _, planes, X0, *_ in parts if planes]  # an all-zero run adds 0
            chans.append((chains, taps, len(parts) > 1, rq, rmin, rmax, Kb - off))
        for call in (False, True):
            code, body = L.Code(), L.Code()
            if geo.padded:
                WK.emit_pad_copy(code, geo, f"lbc_arena+{si.off}", si.o, f"{lp.name}p")
            adds = chain_bytes = 0
            cyc = 0.0
            acc24 = False
            for m, (parts, taps, wide, rq, rmin, rmax, K) in enumerate(chans):
                lab = f"{lp.name}n{m}"
                acc24 |= wide
                body.comment(f"channel {m}: raw in [{rmin}, {rmax}], acc = raw {'+' if K >= 0 else '-'} {abs(K)}"
                             + (f", {len(parts)} chains summed into 24 bits" if wide else "")
                             + (f", the maximum over {len(subs)} positions" if len(subs) > 1 else ""))
                if rq.kind != "const" and parts:
                    body.zp("ldy", L.Tmp.ip)
                    before = body.size
                    for si_, sub in enumerate(subs):
                        locs = [L.Loc(f"{src}+{t + sub}", False, y=True) for t in taps]
                        for pi, (planes, X0) in enumerate(parts):
                            L.emit_unrolled_neuron(body, planes, X0, locs)
                            n_adds = sum(len(t) for _, t in planes)
                            adds += n_adds
                            cyc += 7.3 * n_adds + 15 + 30 * (len(planes) - 1)
                            if wide:
                                WK.emit_sum24(body, first=pi == 0)
                        if len(subs) > 1:
                            if si_ == 0:
                                body.zp("sta", L.Tmp.t0)
                                body.zp("stx", L.Tmp.t1)
                            else:
                                WK.emit_max16(body, si_ == len(subs) - 1, f"{lab}_x{si_}")
                            cyc += 12
                    chain_bytes += body.size - before
                L.emit_requant(body, rq, L.Loc(f"lbc_arena+{so.off + m * PH * PW}", False, y=True), lab,
                               raw24=wide and rq.kind != "const", call=call, store_y=L.Tmp.op)
                cyc += _est_requant_cycles(rq) + 6 + (32 if call and rq.kind == "multiply" else 0)
            WK.emit_position_loop(code, geo, body, lp.name, kp)
            mul = any(rq.kind == "multiply" for _, _, _, rq, *_ in chans)
            shl = {L.shift_table_used(rq.k, call) for _, _, _, rq, *_ in chans if rq.kind == "multiply"} - {None}
            lp.variants[("fused" if pool is not None else "window") + ("_call" if call else "")] = {
                "code": code, "sub": L.Code(), "data": [], "bytes": code.size, "acc_bits": 24 if acc24 else 16,
                "cycles": PH * PW * (cyc + 25) + (geo.C * geo.plane * 12 if geo.padded else 0),
                "mul": mul, "call": call and mul, "adds": adds * PH * PW, "chain_bytes": chain_bytes,
                "weight_adds": adds // len(subs), "shl": shl}
        if pool is not None:  # the alternative (less ROM): the plain convolution, then the max pooling
            plain, mp = self.plan_window(idx, n), self.plan_maxpool(idx, pool, f"{lp.name}m")
            for name, v in plain.variants.items():
                code = L.Code()
                code.extend(v["code"])
                code.extend(mp.variants["max"]["code"])
                lp.variants[name] = {**v, "code": code, "bytes": code.size, "cycles": v["cycles"] +
                                     mp.variants["max"]["cycles"]}
        return lp

    def _fusable_pool(self, n, users):
        """A max pooling that alone reads this convolution's output, kernel = stride, no padding."""
        out = n.outputs[0]
        if out in self.g.outputs or len(users.get(out, [])) != 1:
            return False
        p = users[out][0]
        k, st = p.attr("kernel"), p.attr("strides")
        return p.op == "maxpool" and k[0] == k[1] == st[0] == st[1] and not any(p.attr("pads"))

    def plan_maxpool(self, idx, n, name=None):
        g = self.g
        x, out = n.inputs[0], n.outputs[0]
        _, C, H, W = g.types[x].shape
        (kh, kw), st = n.attr("kernel"), n.attr("strides")
        geo = WK.Geometry(C, H, W, kh, kw, st[0], st[1], 1, 1, tuple(n.attr("pads")))
        lp = LayerPlan(n, name or f"lbc_L{idx}", kh * kw, C, 0, 0, "max", positions=geo.OH * geo.OW)
        lp.macs = 0
        lp.shape = f"{C}x{H}x{W} to {C}x{geo.OH}x{geo.OW}, window {kh}x{kw}"
        probs = geo.problems(f"maxpool {n.name}")
        if probs:
            self.problems += probs
            return lp
        si, so = self.store[x], self.store[out]
        code, body = L.Code(), L.Code()
        if geo.padded:  # byte 0 never wins over an unsigned byte (the input is stored unsigned)
            self.pad_bytes = max(self.pad_bytes, geo.C * geo.plane)
            WK.emit_pad_copy(code, geo, f"lbc_arena+{si.off}", 0, f"{lp.name}p")
        WK.emit_max_body(body, geo, "lbc_pad" if geo.padded else f"lbc_arena+{si.off}", f"lbc_arena+{so.off}",
                         si.o != so.o)
        WK.emit_position_loop(code, geo, body, lp.name)
        lp.variants["max"] = {"code": code, "sub": L.Code(), "data": [], "bytes": code.size, "acc_bits": 8,
                              "cycles": lp.positions * (25 + C * kh * kw * 8), "mul": False, "call": False,
                              "adds": 0, "chain_bytes": 0, "shl": set()}
        return lp

    def plan_add(self, idx, n):
        """Residual add: raw = (ua << sa) + (ub << sb) in X:A (unsigned, at most 16 bits), requantised per
        channel; one loop per channel over its positions."""
        g = self.g
        a, b, out = n.inputs[0], n.inputs[1], n.outputs[0]
        shape = tuple(g.types[out].shape)
        lp = LayerPlan(n, f"lbc_L{idx}", 2, int(np.prod(shape)), 0, 0, "add")
        lp.macs = 0
        lp.shape = "x".join(str(d) for d in shape[1:])
        if tuple(g.types[a].shape) != shape or tuple(g.types[b].shape) != shape:
            self.problems.append(f"add {n.name}: inputs {list(g.types[a].shape)} and {list(g.types[b].shape)}; the "
                                 f"NES target adds tensors of the same shape only")
            return lp
        per_channel = np.asarray(n.attr("m")).size > 1 or np.asarray(n.attr("k")).size > 1
        C = shape[1] if per_channel else 1  # the interpreter's requant axis is 1
        HW = int(np.prod(shape)) // C
        if HW > 256:
            self.problems.append(f"add {n.name}: {HW} values per {'channel' if per_channel else 'tensor'}; the NES "
                                 f"add loop takes at most 256")
            return lp
        sa, sb = n.attr("sa"), n.attr("sb")
        A, B, so = self.store[a], self.store[b], self.store[out]
        rmin = (A.urange[0] << sa) + (B.urange[0] << sb)
        rmax = (A.urange[1] << sa) + (B.urange[1] << sb)
        if rmax > 0xFFFF:
            self.problems.append(f"add {n.name}: shifts {sa}, {sb} need more than a 16-bit sum")
            return lp
        K = -(A.o << sa) - (B.o << sb)
        ms = np.broadcast_to(np.asarray(n.attr("m"), dtype=np.int64), (C,))
        ks = np.broadcast_to(np.asarray(n.attr("k"), dtype=np.int64), (C,))
        lo, hi = n.attr("lo"), n.attr("hi")
        plans = []
        for ch in range(C):
            rq = L.plan_requant(rmin, rmax, K, int(ms[ch]), int(ks[ch]), lo, hi, so.o)
            L.verify_requant(rq, rmin, rmax, K, int(ms[ch]), int(ks[ch]), lo, hi, so.o)
            plans.append(rq)
        for call in (False, True):
            c = L.Code()
            for ch, rq in enumerate(plans):
                lab = f"{lp.name}c{ch}"
                pa, pb = f"lbc_arena+{A.off + ch * HW}", f"lbc_arena+{B.off + ch * HW}"
                c.comment(f"channel {ch}: raw = (ua << {sa}) + (ub << {sb}) in [{rmin}, {rmax}], acc = raw - {-K}")
                c.imm("lda", 0)
                c.zp("sta", L.Tmp.ip)
                c.label(f"{lab}_l")
                if rq.kind != "const":
                    c.zp("ldy", L.Tmp.ip)
                    if sa == sb == 0:
                        c.ins(f"lda {pa},y", 3)
                        c.imp("clc")
                        c.ins(f"adc {pb},y", 3)
                        c.imm("ldx", 0)
                        c.br("bcc", "*+3")
                        c.imp("inx")
                    else:
                        for ptr, sh, hreg, lreg in ((pa, sa, L.Tmp.t1, L.Tmp.t0), (pb, sb, L.Tmp.h, None)):
                            c.imm("lda", 0)
                            c.zp("sta", hreg)
                            c.ins(f"lda {ptr},y", 3)
                            for _ in range(sh):
                                c.imp("asl a")
                                c.zp("rol", hreg)
                            if lreg:
                                c.zp("sta", lreg)
                        c.imp("clc")
                        c.zp("adc", L.Tmp.t0)
                        c.zp("sta", L.Tmp.t0)
                        c.zp("lda", L.Tmp.t1)
                        c.zp("adc", L.Tmp.h)
                        c.imp("tax")
                        c.zp("lda", L.Tmp.t0)
                L.emit_requant(c, rq, L.Loc(f"lbc_arena+{so.off + ch * HW}", False, y=True), lab, call=call,
                               store_y=L.Tmp.ip)
                c.zp("inc", L.Tmp.ip)
                c.zp("lda", L.Tmp.ip)
                c.imm("cmp", HW & 0xFF)
                c.br("beq", "*+5")
                c.jmp(f"{lab}_l")
            mul = any(rq.kind == "multiply" for rq in plans)
            shl = {L.shift_table_used(rq.k, call) for rq in plans if rq.kind == "multiply"} - {None}
            lp.variants["add_call" if call else "add"] = {
                "code": c, "sub": L.Code(), "data": [], "bytes": c.size, "acc_bits": 16, "mul": mul,
                "call": call and mul, "adds": 0, "chain_bytes": 0, "shl": shl,
                "cycles": HW * sum(40 + _est_requant_cycles(rq) + (32 if call else 0) for rq in plans)}
        return lp

    # -------------------------------------------------------------------- other ops
    def _concat(self, n, c, data):
        """Block copies: along the axis, each input's inner block goes after the previous ones'; a block
        is copied as it is, with its sign bit flipped (stores differ) or through a table (shifts)."""
        g = self.g
        out = n.outputs[0]
        shape = tuple(g.types[out].shape)
        ax = n.attr("axis") % len(shape)
        outer = int(np.prod(shape[:ax]))
        shifts = n.attr("shifts") or (0,) * len(n.inputs)
        so = self.store[out]
        inner = [int(np.prod(g.types[t].shape[ax:])) for t in n.inputs]
        if outer * len(n.inputs) > 64:
            self.problems.append(f"concat {n.name}: {outer * len(n.inputs)} blocks; the NES target copies at most 64")
            return
        lab = self.names(f"concat_{n.name}")
        dst = so.off
        for o in range(outer):
            for i, (t, sh, size) in enumerate(zip(n.inputs, shifts, inner)):
                si = self.store[t]
                if sh:
                    tl = f"{lab}_t{i}"
                    if o == 0:
                        x = ((np.arange(256) - si.o + 128) & 0xFF) - 128  # the value of each stored byte
                        vals = np.clip(rounding_shift(x, sh), -128, 127)
                        data.append((tl, [(int(v) + so.o) & 0xFF for v in vals]))
                    how = tl
                else:
                    how = "flip" if si.o != so.o else None
                L.emit_map(c, f"lbc_arena+{si.off + o * size}", f"lbc_arena+{dst}", size, how, f"{lab}_{o}_{i}")
                dst += size

    def small_step(self, n, data):
        c = L.Code()
        g = self.g
        if n.op == "reshape":
            c.comment("reshape: shares its input's bytes, no code")
        elif n.op == "relu":
            si, so = self.store[n.inputs[0]], self.store[n.outputs[0]]
            L.emit_map(c, f"lbc_arena+{si.off}", f"lbc_arena+{so.off}", g.types[n.inputs[0]].size,
                       "relu_biased" if si.o else "relu", self.names(f"relu_{n.name}"))
        elif n.op in TABLE_OPS:
            si, so = self.store[n.inputs[0]], self.store[n.outputs[0]]
            vals = self._table_values(n)
            u = np.arange(256)
            tab = [(int(vals[(v - si.o + 128) & 0xFF]) + so.o) & 0xFF for v in u]
            lab = self.names(f"{n.op}_{n.name}")
            data.append((f"{lab}_t", tab))
            c.comment(f"{n.op}: the op's 256-entry table, indexed by the stored byte")
            L.emit_map(c, f"lbc_arena+{si.off}", f"lbc_arena+{so.off}", g.types[n.inputs[0]].size, f"{lab}_t", lab)
        elif n.op == "concat":
            self._concat(n, c, data)
        elif n.op == "argmax":
            shape = g.types[n.inputs[0]].shape
            if len(shape) != 2:
                self.problems.append(f"argmax {n.name}: only [1, N] inputs are supported on the NES target")
                return c
            si = self.store[n.inputs[0]]
            N = shape[1]
            flip = 0 if si.o else 0x80  # compare as unsigned: biased bytes already are
            c.imm("ldy", 0)
            c.mem("lda", self.loc(n.inputs[0], 0))
            if flip:
                c.imm("eor", flip)
            c.zp("sta", L.Tmp.t)
            c.imm("ldx", 1)
            lab = self.names(f"am_{n.name}")
            c.label(f"{lab}_l")
            c.absx("lda", f"lbc_arena+{si.off},x", False)
            if flip:
                c.imm("eor", flip)
            c.zp("cmp", L.Tmp.t)
            c.br("bcc", f"{lab}_n")
            c.br("beq", f"{lab}_n")
            c.zp("sta", L.Tmp.t)
            c.imp("txa")
            c.imp("tay")
            c.label(f"{lab}_n")
            c.imp("inx")
            c.imm("cpx", N)
            c.br("bne", f"{lab}_l")
            c.imp("tya")
            out = n.outputs[0]
            c.mem("sta", self.loc(out, 0))
            c.imm("lda", 0)
            for i in range(1, 4):
                c.mem("sta", self.loc(out, i))
        return c

    # -------------------------------------------------------------------- whole graph
    def run(self):
        g = self.g
        users, fused = g.consumers(), {}
        for n in g.nodes:
            if n.op not in SUPPORTED_OPS:
                continue  # reported by check (Target.check)
            if n.op == "dense":
                shp = g.types[n.inputs[0]].shape
                if len(shp) != 2:
                    self.problems.append(f"dense {n.name}: input shape {list(shp)}; the NES target takes [1, K]")
                    continue
                dt = g.types[n.inputs[1]].dtype.name
                if dt not in WEIGHT_DTYPES:
                    self.problems.append(f"dense {n.name}: weights of dtype {dt} are not supported on the NES target")
                    continue
                lp = self.plan_dense(len(self.layers), n)
            elif n.op == "maxpool" and n.name in fused:
                self.steps.append({"op": "maxpool", "code": L.Code(), "node": n, "data": [],
                                   "comment": f"maxpool {n.name}: with {fused[n.name].name} (fused, or right after it)"})
                continue
            elif n.op in ("conv2d", "avgpool", "global_avgpool", "maxpool", "add"):
                if n.op == "conv2d" and g.types[n.inputs[1]].dtype.name not in WEIGHT_DTYPES:
                    self.problems.append(f"conv2d {n.name}: weights of dtype {g.types[n.inputs[1]].dtype.name} are "
                                         f"not supported on the NES target")
                    continue
                if n.op != "add" and len(g.types[n.inputs[0]].shape) != 4:
                    self.problems.append(f"{n.op} {n.name}: input shape {list(g.types[n.inputs[0]].shape)}; the NES "
                                         f"target takes [1, C, H, W]")
                    continue
                if n.op == "conv2d" and self._fusable_pool(n, users):
                    lp = self.plan_window(len(self.layers), n, users[n.outputs[0]][0])
                    if lp.fused is not None:
                        fused[lp.fused.name] = n
                else:
                    plan = {"maxpool": self.plan_maxpool, "add": self.plan_add}.get(n.op, self.plan_window)
                    lp = plan(len(self.layers), n)
            else:
                data = []
                self.steps.append({"op": n.op, "code": self.small_step(n, data), "node": n, "data": data})
                continue
            self.layers.append(lp)
            self.steps.append({"op": n.op, "layer": lp})
        # prologue: flip the input's sign bits (u = x + 128) in place
        self.prologue = L.Code()
        if self.flip_input:
            size = g.types[g.inputs[0]].size
            z = 2 if self.arena_zp else 3
            self.prologue.raw(f".repeat {size}, I\n    lda lbc_input+I\n    eor #$80\n    sta lbc_input+I\n"
                              f".endrepeat", size * (2 * z + 2))
        return self

    def _fixed_bytes(self):
        return self.prologue.size + 16 + sum(s["code"].size + sum(len(v) for _, v in s["data"])
                                             for s in self.steps if "layer" not in s)

    def choose(self, budget):
        """Pick a kernel per layer: the smallest ROM first, then the switch with the most cycles saved per
        extra byte, as long as the ROM budget allows. Returns the model's PRG bytes."""
        for lp in self.layers:
            if not lp.variants:
                continue
            if self.kernel != "auto":
                names = [k for k in lp.variants if k.split("_")[0] == self.kernel]
                if not names:
                    lp.problems.append(f"kernel {self.kernel} not possible")
                    names = list(lp.variants)
            else:
                names = list(lp.variants)
            lp.allowed = names
            lp.kernel = min(names, key=lambda k: (lp.variants[k]["bytes"], lp.variants[k]["cycles"]))
        while True:
            total = self.rom_bytes()
            best = None
            for lp in self.layers:
                if not lp.kernel:
                    continue
                cur = lp.variants[lp.kernel]
                for name in lp.allowed:
                    v = lp.variants[name]
                    gain = cur["cycles"] - v["cycles"]
                    if name == lp.kernel or gain <= 0:
                        continue
                    old = lp.kernel
                    lp.kernel = name
                    extra = self.rom_bytes() - total
                    lp.kernel = old
                    if total + extra <= budget:
                        score = gain / max(extra, 1)
                        if best is None or score > best[0]:
                            best = (score, lp, name)
            if best is None:
                break
            best[1].kernel = best[2]
        self._search(budget)
        return self.rom_bytes()

    def _search(self, budget, limit=4096):
        """Improve on the greedy choice by trying every combination when there are few (the greedy step
        can spend the ROM on a layer whose best switch is cheap, leaving none for a bigger win)."""
        layers = [lp for lp in self.layers if lp.kernel]
        if not layers or int(np.prod([len(lp.allowed) for lp in layers])) > limit:
            return
        start = [lp.kernel for lp in layers]

        def score():
            return sum(lp.variants[lp.kernel]["cycles"] for lp in layers), self.rom_bytes()

        best = (score(), start) if self.rom_bytes() <= budget else None
        for combo in itertools.product(*[lp.allowed for lp in layers]):
            for lp, k in zip(layers, combo):
                lp.kernel = k
            sc = score()
            if sc[1] <= budget and (best is None or sc < best[0]):
                best = (sc, list(combo))
        for lp, k in zip(layers, best[1] if best else start):
            lp.kernel = k

    def _uses(self, key):
        return any(lp.kernel and lp.variants[lp.kernel][key] for lp in self.layers)

    def rom_bytes(self):
        total = self._fixed_bytes() + sum(lp.variants[lp.kernel]["bytes"] for lp in self.layers if lp.kernel)
        self.shift_tables = sorted(set().union(*[lp.variants[lp.kernel]["shl"] for lp in self.layers if lp.kernel]))
        total += 256 * len(self.shift_tables)
        total += LAYOUT_PAD_BYTES * sum(sum(1 for it in lp.variants[lp.kernel]["code"].items if it[3])
                                        for lp in self.layers if lp.kernel)
        self.needs_tables, self.needs_mul = self._uses("mul"), self._uses("call")
        if self.needs_mul:
            c = L.Code()
            L.emit_mul_routines(c)
            L.emit_mul_init(c)
            total += c.size
        total += self.table_code().size
        return total + (L.TABLE_BYTES if self.needs_tables else 0) + ALIGN_PAD_BYTES

    def mul_code(self):
        init, rout = L.Code(), L.Code()
        if self.needs_mul:
            L.emit_mul_init(init)
            L.emit_mul_routines(rout)
        return init, rout

    def table_layers(self):
        return [lp for lp in self.layers if lp.kernel.startswith("table")]

    def table_code(self):
        """The shared table build routines (one per group size in use)."""
        c = L.Code()
        for g in sorted({lp.variants[lp.kernel]["table_group"] for lp in self.table_layers()}):
            L.emit_table_build(c, g)
        return c

    def table_bytes(self):
        """Bytes of each of the two table pages (low and high bytes of the partial sums)."""
        return max([_round16(lp.variants[lp.kernel]["table_entries"]) for lp in self.table_layers()], default=0)

    def ram(self):
        zp = L.Tmp.BYTES + (self.arena_bytes if self.arena_zp else 0)
        return {"zp": zp, "ram": (0 if self.arena_zp else self.arena_bytes) + 2 * self.table_bytes() + self.pad_bytes}


def _load_samples(path, graph, limit):
    from lbc.driver import check_batch, load_batch
    x, y = load_batch(path, "--samples")
    x = check_batch(x, graph, f"--samples {path}")[:limit]
    labels = [int(v) for v in np.asarray(y)[:limit].reshape(-1)] if y is not None else [None] * len(x)
    return x, labels


class NesTarget(Target):
    name = "nes"
    streams = True  # spiking models: lbc_reset / lbc_step (stream.py), sim65 only
    description = "NES / 6502 (Ricoh 2A03): ca65 assembly, NROM-256 .nes cartridge and sim65 build"
    default_quant = "ternary"
    quants = ("ternary", "pentary", "int2", "int4")
    ops = SUPPORTED_OPS
    # plan-memory may give these ops' output their input's bytes: their loops read byte i before writing byte i
    inplace_ops = frozenset({"relu", "add"}) | TABLE_OPS
    flash_bytes = PRG_BYTES
    ram_bytes = RAM_BYTES
    op_limits = {"dense": "a [1, K] input", "argmax": "a [1, N] input"}

    def __init__(self, flash_bytes=None, ram_bytes=None, samples=None, kernel="auto", demo=True):
        super().__init__(flash_bytes, ram_bytes)
        if kernel not in ("auto", "unrolled", "table", "loop"):
            raise LbcError(f"kernel {kernel!r}: valid kernels are auto, unrolled, table, loop")
        self.samples, self.kernel, self.demo = samples, kernel, bool(demo)
        self._cache = None

    def options(self):
        opts = super().options()
        if self.kernel != "auto":
            opts["kernel"] = self.kernel
        if not self.demo:
            opts["demo"] = False
        return opts

    def weight_bytes(self, dtype_name, shape):
        """Bytes of packed plane masks (the loop kernel's format): 2 bits per weight and plane."""
        planes = {"ternary": 1, "i2": 2, "pentary": 2, "i4": 4, "i8": 8}.get(dtype_name, 8)
        return planes * 2 * ((int(np.prod(shape[1:])) + 7) // 8) * int(shape[0])

    # ---------------------------------------------------------------- budgets
    def _budgets(self):
        ram_model = self.ram_bytes - 256 - STACK_BYTES - SHELL_RAM_BYTES
        return {"ram_model": ram_model, "zp_model": ZP_MODEL_MAX}

    def _samples_bytes(self, graph, n):
        size = graph.types[graph.inputs[0]].size
        return n * (size + 16 + 12) + 256 + 128

    def _lower(self, graph):
        if self._cache is not None and self._cache[0] is graph:
            return self._cache[1]
        low = Lowering(graph, self.kernel, self._budgets()["ram_model"]).run()
        self._cache = (graph, low)
        return low

    def check(self, graph):
        """Every problem: unsupported ops, inputs/outputs, each layer the kernels cannot take, RAM, ROM."""
        if graph.stateful:
            from lbc.backends.nes.stream import NesStream
            problems = list(NesStream(graph).problems)
            if len(graph.inputs) != 1 or len(graph.outputs) != 1:
                problems.append("target nes compiles graphs with one input and one output")
            return problems
        problems = super().check(graph)
        if len(graph.inputs) != 1 or len(graph.outputs) != 1:
            return problems
        inp, out = graph.inputs[0], graph.outputs[0]
        if graph.types[inp].dtype.name != "i8":
            problems.append(f"input {inp} is {graph.types[inp].dtype.name}; the NES target takes int8 inputs")
        for t, what in ((inp, "input"), (out, "output")):
            nbytes = graph.types[t].size * (4 if graph.types[t].dtype.name == "i32" else 1)
            if nbytes > MAX_IO_BYTES:
                problems.append(f"{what} {t} has {nbytes} bytes; the NES target handles at most {MAX_IO_BYTES}")
        low = self._lower(graph)
        problems += low.problems
        b = self._budgets()
        ram = low.ram()
        if ram["ram"] > b["ram_model"]:
            problems.append(f"activations need {ram['ram']} bytes of RAM; the NES has {b['ram_model']} left for the "
                            f"model (2 KB minus zero page, stack and the demo shell): over by "
                            f"{ram['ram'] - b['ram_model']} bytes")
        if all(lp.variants for lp in low.layers) and all(n.op in SUPPORTED_OPS for n in graph.nodes):
            budget = self._rom_budget(graph, len(self._sample_set(graph)[0]))
            need = low.choose(budget)
            if need > budget:
                per = ", ".join(f"{lp.node.name} {lp.variants[lp.kernel]['bytes']} B ({lp.kernel})"
                                for lp in low.layers if lp.kernel)
                problems.append(f"weights and code need {need} bytes of PRG-ROM; {budget} are left for the model "
                                f"(32 KB NROM-256 minus the demo shell and samples): over by {need - budget} bytes "
                                f"[{per}]")
        return problems

    def _sample_set(self, graph):
        """The quantised samples compiled into the ROM and their labels (None = unknown)."""
        if self.samples:
            xs, labels = _load_samples(self.samples, graph, MAX_SAMPLES)
        else:
            rng = np.random.default_rng(0)
            shape = tuple(graph.types[graph.inputs[0]].shape[1:])
            xs = rng.uniform(0.0, 1.0, (SYNTHETIC_SAMPLES,) + shape).astype(np.float32)
            labels = [None] * SYNTHETIC_SAMPLES
        return quantize_input(xs, graph.types[graph.inputs[0]].exp), labels

    def _rom_budget(self, graph, nsamples):
        return self.flash_bytes - VECTOR_BYTES - SHELL_ROM_BYTES - self._samples_bytes(graph, nsamples)

    # ---------------------------------------------------------------- emit
    def _emit_stream(self, graph, outdir):
        """A spiking model with state: model.s/model.inc with lbc_reset/lbc_step and the sim65 build (no
        demo cartridge)."""
        from lbc.backends.nes.stream import NesStream
        st = NesStream(graph)
        if st.problems:
            raise TargetError("the model cannot be compiled for nes:\n  - " + "\n  - ".join(st.problems))
        code, resets, data, bss, bss_bytes = st.render()
        inp, out = graph.inputs[0], graph.outputs[0]
        ctx = {"header": header_lines(graph, self.name, graph.meta.get("quant", "?")), "code": code,
               "resets": resets, "data": data, "bss": bss, "input_size": graph.types[inp].size,
               "output_size": graph.types[out].size, "ram_bytes": bss_bytes + graph.types[inp].size + 1
               + graph.types[out].size, "state_bytes": sum(2 * la["M"] for la in st.layers)}  # int16 membranes
        env = template_env(HERE / "templates")
        outdir = Path(outdir)
        (outdir / "model.s").write_text(env.get_template("model_stream.s.j2").render(**ctx))
        (outdir / "model.inc").write_text(env.get_template("model_stream.inc.j2").render(**ctx))
        for name in ("sim_main.s", "sim6502.cfg"):
            shutil.copyfile(RUNTIME / name, outdir / name)
        (outdir / "stream.json").write_text(json.dumps({"stream": True, "state_bytes": ctx["state_bytes"],
                                                        "ram_bytes": ctx["ram_bytes"]}) + "\n")
        return {"files": ["model.inc", "model.s", "sim6502.cfg", "sim_main.s", "stream.json"], "stream": True,
                "macs": st.macs(), "ram_bytes": ctx["ram_bytes"], "state_bytes": ctx["state_bytes"]}

    def emit(self, graph, outdir, options):
        if graph.stateful:
            return self._emit_stream(graph, outdir)
        outdir = Path(outdir)
        low = self._lower(graph)
        if low.problems:
            raise TargetError("the model cannot be compiled for nes", details=low.problems)
        xq, labels = self._sample_set(graph)
        budget = self._rom_budget(graph, len(xq))
        need = low.choose(budget)
        if need > budget:
            raise TargetError(f"weights and code need {need} bytes of PRG-ROM; {budget} are left: over by {need - budget}")
        inp, out = graph.inputs[0], graph.outputs[0]
        out_i32 = graph.types[out].dtype.name == "i32"
        quant = graph.meta.get("quant", "?")
        header = header_lines(graph, self.name, quant)
        steps, layer_rows, data = [], [], []
        pre = L.Code()
        pre.imp("cld")
        init, routines = low.mul_code()
        pre.extend(init)
        if low.flip_input:
            pre.comment("the input as unsigned bytes u = x + 128 (in place): the dense kernels add unsigned bytes")
            pre.extend(low.prologue)
        tail = L.Code()
        tail.imp("rts")
        pre_lines, off, pad, nops = L.layout(pre, 0)
        offsets = {}
        for s in low.steps:
            if "layer" in s:
                lp = s["layer"]
                v = lp.variants[lp.kernel]
                offsets[lp.name] = off
                lines, off, p1, n1 = L.layout(v["code"], off)
                if lp.node.op == "dense":
                    what = f"{lp.K} -> {lp.M}, {lp.dtype} weights, {lp.kernel.split('_')[0]} kernel"
                else:
                    what = f"{lp.shape}, {'' if lp.dtype in ('max', 'pool', 'add') else lp.dtype + ' weights, '}" \
                           f"{lp.kernel.split('_')[0]} kernel"
                steps.append({"op": "dense" if lp.node.op == "dense" else "layer", "label": lp.name, "lines": lines,
                              "x_off": getattr(lp, "x_off", 0), "y_off": getattr(lp, "y_off", 0),
                              "comment": comment_safe(f"{lp.node.op} {lp.node.name}: {what}, {v['acc_bits']}-bit "
                                                      f"accumulator, {'shared' if v['call'] else 'inline'} multiply",
                                                      160)})
                tail.extend(v["sub"])
                data.extend(v["data"])
                layer_rows.append(self._layer_row(lp))
            else:
                lines, off, p1, n1 = L.layout(s["code"], off)
                data.extend(s["data"])
                steps.append({"op": s["op"] if s["op"] in ("relu", "reshape", "argmax") else "code", "label": None,
                              "lines": lines, "comment": comment_safe(s.get("comment", f"{s['op']} {s['node'].name}"))})
            pad, nops = pad + p1, nops + n1
        tail.extend(routines)
        tail.extend(low.table_code())
        tail_lines, off, p1, n1 = L.layout(tail, off)
        pad, nops = pad + p1, nops + n1
        temps = L.Tmp.used(pre_lines + tail_lines + [ln for st in steps for ln in st["lines"]])
        ram = low.ram()
        ram["zp"] = sum(b for _, b in temps) + (low.arena_bytes if low.arena_zp else 0)
        ctx = {
            "header": header,
            "temps": temps,
            "arena_zp": low.arena_zp, "arena_bytes": low.arena_bytes,
            "input_off": low.store[inp].off, "output_off": low.store[out].off,
            "input_size": graph.types[inp].size, "output_size": graph.types[out].size,
            "output_bytes": graph.types[out].size * (4 if out_i32 else 1), "output_argmax": int(out_i32),
            "input_exp": graph.types[inp].exp or 0,
            "output_exp": graph.types[out].exp if graph.types[out].exp is not None else 0,
            "output_doc": ("the class index as a 32-bit little-endian int" if out_i32 else
                           f"int8, real value = q * 2^-{graph.types[out].exp}, shape {list(graph.types[out].shape)}"),
            "input_shape": list(graph.types[inp].shape), "output_shape": list(graph.types[out].shape),
            "zp_bytes": ram["zp"], "ram_bytes": ram["ram"],
            "pre": pre_lines, "steps": steps, "tail": tail_lines, "tables": low.needs_tables,
            "shift_tables": low.shift_tables, "table_bytes": low.table_bytes(), "pad_bytes": low.pad_bytes,
            "data": [{"label": lab, "body": ", ".join(str(v) for v in vals)} for lab, vals in data],
            "layers": layer_rows, "flip_input": low.flip_input, "macros": L.MACROS,
        }
        env = template_env(HERE / "templates")
        files = {"model.s": "model.s.j2", "model.inc": "model.inc.j2"}
        for name, tpl in files.items():
            (outdir / name).write_text(env.get_template(tpl).render(**ctx))
        for name in ("shell.s", "sim_main.s", "nrom.cfg", "sim6502.cfg"):
            shutil.copyfile(RUNTIME / name, outdir / name)
        from lbc.runtime.nes import chr as chrgen
        (outdir / "chr.s").write_text(chrgen.chr_source(header))
        (outdir / "samples.s").write_text(self._samples_source(env, graph, header, xq, labels))
        (outdir / "samples.json").write_text(json.dumps({"labels": labels, "xq": xq.reshape(len(xq), -1).tolist()}) + "\n")
        (outdir / "layout.json").write_text(json.dumps({"offsets": offsets}, sort_keys=True) + "\n")
        rep = {"kernels": {r["layer"]: r["kernel"] for r in layer_rows}, "layers": layer_rows,
               "code_bytes": off, "layout": {"offsets": offsets, "padding_bytes": pad, "nops": nops},
               "model_rom_bytes": low.rom_bytes(), "zp_bytes": ram["zp"], "ram_bytes": ram["ram"],
               "ram_peak_bytes": ram["zp"] + ram["ram"] + STACK_USE_BYTES, "pad_buffer_bytes": low.pad_bytes,
               "arena_in_zero_page": low.arena_zp, "samples": len(xq),
               "files": ["model.s", "model.inc", "shell.s", "samples.s", "chr.s", "sim_main.s", "nrom.cfg",
                         "sim6502.cfg"]}
        return rep

    def _layer_row(self, lp):
        v = lp.variants[lp.kernel]
        row = {"layer": lp.node.name, "op": lp.node.op, "kernel": lp.kernel.split("_")[0],
               "requant": "shared multiply" if v["call"] else "inline", "dtype": lp.dtype, "in": lp.K, "out": lp.M,
               "positions": lp.positions, "macs": lp.K * lp.M if lp.macs is None else lp.macs, "nonzero": lp.nnz, "zeros": lp.zeros,
               "acc_bits": v["acc_bits"],
               "rom_bytes": v["bytes"], "est_cycles": int(v["cycles"]),
               "alternatives": {k: {"rom_bytes": a["bytes"], "est_cycles": int(a["cycles"])}
                                for k, a in lp.variants.items()}}
        row["adds"] = v.get("adds", 0)
        if lp.kernel.startswith("unrolled") and v["adds"]:
            per_add = v["chain_bytes"] / v["adds"]
            row["zeros_saved"] = {"rom_bytes": int(round(lp.zeros * per_add * v["adds"] / max(lp.nnz, 1))),
                                  "cycles": int(round(lp.zeros * 6.3 * v["adds"] / max(lp.nnz, 1)))}
        elif lp.kernel.startswith(("window", "fused")) and v["weight_adds"]:  # a zero weight emits no add at any position
            per_add = v["chain_bytes"] / v["weight_adds"]
            row["zeros_saved"] = {"rom_bytes": int(round(lp.zeros * per_add)),
                                  "cycles": int(round(lp.zeros * 7.3 * lp.positions))}
        elif lp.kernel in ("max", "add", "add_call") or lp.kernel.startswith(("window", "fused")):
            row["zeros_saved"] = {"rom_bytes": 0, "cycles": 0}
        elif lp.kernel.startswith("table"):  # a table lookup costs the same whatever the weights
            row["zeros_saved"] = {"rom_bytes": 0, "cycles": 0}
        else:
            row["zeros_saved"] = {"rom_bytes": 0, "cycles": int(lp.zeros * 14)}
        return row

    def _samples_source(self, env, graph, header, xq, labels):
        shape = tuple(graph.types[graph.inputs[0]].shape[1:])
        size = int(np.prod(shape))
        if len(shape) >= 2:
            h, w = int(np.prod(shape[:-1])), int(shape[-1])
        else:
            side = int(round(np.sqrt(size)))
            h, w = (side, side) if side * side == size else ((size + 15) // 16, min(size, 16))
        if h > 16 or w > 16:
            h, w = (size + 15) // 16, min(size, 16)
        scale = 2 if h <= 10 and w <= 8 else 1
        flat = xq.reshape(len(xq), -1).astype(np.int64)
        lo, hi = int(flat.min()), int(flat.max())
        vals = np.where(np.arange(256) < 128, np.arange(256), np.arange(256) - 256)
        lv = np.zeros(256, np.int64) if hi == lo else np.clip(((vals - lo) * 4) // (hi - lo + 1), 0, 3)
        levels = [", ".join(f"${0x80 + int(v):02X}" for v in lv[i:i + 16]) for i in range(0, 256, 16)]
        rows = []
        top, left = 6, 2
        for r in range(h):
            for sr in range(scale):
                rows.append(0x2000 + (top + r * scale + sr) * 32 + left)
        samples = []
        for i in range(len(xq)):
            lab = labels[i]
            samples.append({"input": ", ".join(str(int(v) & 0xFF) for v in np.pad(flat[i], (0, h * w - size))),
                            "label": 0xFF if lab is None else int(lab) & 0xFF})
        title = comment_safe(graph.name, 20).upper()
        title = "".join(ch if 0x20 <= ord(ch) < 0x60 else " " for ch in title)
        quant = str(graph.meta.get("quant", "")).upper() + "  " + "X".join(str(d) for d in shape)
        ctx = {"header": header, "samples": samples, "n": len(xq), "h": h, "w": w, "scale": scale,
               "rows": rows, "title": title, "quant": quant[:28], "levels": levels}
        return env.get_template("samples.s.j2").render(**ctx)

    # ---------------------------------------------------------------- build
    def build(self, outdir):
        from lbc.runtime.nes import harness as H
        outdir = Path(outdir)
        if (outdir / "stream.json").exists():
            H.assemble(outdir, ["model.s", "sim_main.s"])
            H.link(outdir, "sim6502.cfg", ["sim_main.o", "model.o"], "model_sim.prg", libs=["sim6502.lib"],
                   map_file="model_sim.map", labels="model_sim.lbl")
            segs = H.read_segments(outdir / "model_sim.map")
            return {"sim": "model_sim.prg", "segments": segs}
        H.assemble(outdir, ["model.s", "sim_main.s", "shell.s", "samples.s", "chr.s"])
        H.link(outdir, "sim6502.cfg", ["sim_main.o", "model.o"], "model_sim.prg", libs=["sim6502.lib"],
               map_file="model_sim.map", labels="model_sim.lbl")
        H.link(outdir, "nrom.cfg", ["shell.o", "model.o", "samples.o", "chr.o"], "model.nes",
               map_file="model.map", labels="model.lbl")
        segs = H.read_segments(outdir / "model.map")
        labels = H.read_labels(outdir / "model.lbl")
        rep = json.loads((outdir / "layout.json").read_text()) if (outdir / "layout.json").exists() else {}
        for name, off in rep.get("offsets", {}).items():
            if labels[name] - labels["lbc_run"] != off or labels["lbc_run"] % 256:
                raise InternalError(f"{name} is at lbc_run+{labels[name] - labels['lbc_run']}, the layout "
                                    f"expected +{off}")
        # measure every sample's inference under sim65 and write the counts into the ROM's table
        man = json.loads((outdir / "samples.json").read_text())
        xq = np.array(man["xq"], dtype=np.int64).astype(np.int8)
        sim = H.Sim65Model(outdir / "model_sim.prg", xq.shape[1], self._out_bytes(outdir))
        _, cycles = sim.run_each(xq)
        rom = bytearray((outdir / "model.nes").read_bytes())
        base = labels["sh_cycles"] - 0x8000 + 16
        for i, c in enumerate(cycles):
            rom[base + 6 * i:base + 6 * i + 6] = f"{int(c):>6d}"[-6:].encode()
        (outdir / "model.nes").write_bytes(bytes(rom))
        man["cycles"] = [int(c) for c in cycles]
        (outdir / "samples.json").write_text(json.dumps(man) + "\n")
        prg_used = sum(v for k, v in segs.items() if k not in ("ZEROPAGE", "BSS", "CHARS", "HEADER"))
        return {"nes": "model.nes", "sim": "model_sim.prg", "segments": segs, "prg_used_bytes": prg_used,
                "sample_cycles": man["cycles"]}

    def _out_bytes(self, outdir):
        for line in (Path(outdir) / "model.inc").read_text().splitlines():
            if line.startswith("LBC_OUTPUT_BYTES"):
                return int(line.split("=")[1].split(";")[0])
        raise InternalError("model.inc has no LBC_OUTPUT_BYTES")

    # ---------------------------------------------------------------- run
    def run(self, outdir, manifest, xq):
        from lbc.runtime.nes import harness as H
        outdir = Path(outdir)
        prg = outdir / "model_sim.prg"
        if not prg.exists():
            raise ToolchainError(f"{prg} is missing; compile the model first (without --no-build)")
        out_bytes = self._out_bytes(outdir)
        if manifest.get("stateful"):
            return self._run_stream(H, prg, manifest, xq, out_bytes)
        sim = H.Sim65Model(prg, int(np.prod(manifest["inputs"][0]["shape"][1:])), out_bytes)
        xq = np.asarray(xq, dtype=np.int8).reshape(len(xq), -1)
        y, cycles = sim.run_each(xq)
        if manifest["outputs"][0]["dtype"] == "i32":
            yq = y.view(np.uint8).reshape(len(xq), -1, 4).copy().view("<i4").reshape(len(xq), -1)
        else:
            yq = y.view(np.int8)
        yq = yq.reshape((len(xq),) + tuple(manifest["outputs"][0]["shape"][1:]))
        stats = {"cycles_mean": round(float(cycles.mean()), 1), "cycles_min": int(cycles.min()),
                 "cycles_max": int(cycles.max()), "ntsc_frames_max": round(int(cycles.max()) / CYCLES_NTSC_FRAME, 3),
                 "cycles": [int(c) for c in cycles]}
        return yq, stats

    @staticmethod
    def _run_stream(H, prg, manifest, xq, out_bytes):
        """Sequences [N, T, ...] in one sim65 process: one record per step (reset flag on each sequence's
        first step, then the input spikes). Cycles per step: (total - the same records through the dry
        routine) / steps + 12 (JSR and RTS), including lbc_run's reset-flag test."""
        xq = np.asarray(xq, dtype=np.int8)
        n, steps = xq.shape[:2]
        flags = np.zeros((n, steps, 1), dtype=np.int8)
        flags[:, 0] = 1
        rec = np.concatenate([flags, xq.reshape(n, steps, -1)], axis=2).reshape(n * steps, -1)
        sim = H.Sim65Model(prg, rec.shape[1], out_bytes)
        ys, means = [], []
        per = max(1, STREAM_RECORDS // steps) * steps  # whole sequences per sim65 process (its cycle limit)
        for i in range(0, len(rec), per):
            y, mean = sim.run_batch(rec[i:i + per])
            ys.append(y)
            means.append((mean, len(y)))
        y = np.concatenate(ys)
        mean = sum(m * k for m, k in means) / len(y)
        yq = y.view(np.int8).reshape((n, steps) + tuple(manifest["outputs"][0]["shape"][1:]))
        return yq, {"cycles_per_step_mean": round(float(mean), 1),
                    "note": "per step, including lbc_run's reset-flag test (~10 cycles)"}

    def summary(self, report):
        e = report.get("emit", {})
        if e.get("stream"):
            segs = (report.get("build") or {}).get("segments", {})
            return [f"nes: streaming spiking model (lbc_reset / lbc_step), RAM {e['ram_bytes']} B; sim65 build "
                    f"model_sim.prg (segments {', '.join(f'{k} {v} B' for k, v in sorted(segs.items()))}); "
                    f"no demo cartridge for models with state"]
        out = []
        for r in e.get("layers", []):
            z = r["zeros_saved"]
            out.append(f"nes: {r['layer']}: {r['kernel']} kernel, {r['acc_bits']}-bit accumulator, {r['requant']} "
                       f"requant, {r['rom_bytes']} B; "
                       f"zeros saved {z['rom_bytes']} B and ~{z['cycles']} cycles")
        if e:
            out.append(f"nes: model PRG {e.get('model_rom_bytes')} B, zero page {e.get('zp_bytes')} B, "
                       f"RAM {e.get('ram_bytes')} B (padded copies {e.get('pad_buffer_bytes', 0)} B); peak "
                       f"{e.get('ram_peak_bytes')} B with {STACK_USE_BYTES} B of stack")
        b = report.get("build", {})
        if b.get("sample_cycles"):
            c = b["sample_cycles"]
            out.append(f"nes: model.nes built; cycles per inference on the {len(c)} ROM samples: "
                       f"min {min(c)}, mean {sum(c) / len(c):.0f}, max {max(c)} "
                       f"({max(c) / CYCLES_NTSC_FRAME:.2f} NTSC frames)")
        return out
