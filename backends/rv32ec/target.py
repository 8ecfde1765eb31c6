"""The RV32EC target: firmware for the WCH CH32V003 (RV32EC: 16 registers, compressed instructions, no
multiplier; 16 KB flash, 2 KB SRAM) and bigger RV32E/RV32I parts (--flash/--ram).

Output folder (also a firmware project): model.c/model.h (constants, layer sequence, documented API),
lbc_kernels.S (the generated multiplier-free kernels, see kernels.py), lbc_rt.c/.h, crt0.S and
ch32v003.ld (runtime/rv32ec), main.c (test driver), Makefile; after the build model.elf, model.bin,
model.map. firmware.json tells the emulator harness where the input and output live.

Each dense layer gets the fastest kernel that lets the whole model fit (kernels.plan_layers); `check`
reports ops, dtypes and budgets it cannot meet before anything is written.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

from lbc.backends.base import Namer, Target, c_array, comment_safe, find_tool, header_lines, template_env
from lbc.backends.rv32ec import kernels as K
from lbc.errors import InternalError, LbcError, TargetError, ToolchainError
from lbc.ir import patch as P
from lbc.ir.graph import TensorType
from lbc.ir.ops import TABLE_OPS as POINTWISE_TABLE_OPS
from lbc.ir.quant import requant_fits

HERE = Path(__file__).resolve().parent
RUNTIME = HERE.parent.parent / "runtime" / "rv32ec"
RUNTIME_FILES = ("crt0.S", "ch32v003.ld", "lbc_rt.c", "lbc_rt.h")
GCC, GCC_PKG = "riscv64-unknown-elf-gcc", "gcc-riscv64-unknown-elf"
OBJCOPY, BINUTILS_PKG = "riscv64-unknown-elf-objcopy", "binutils-riscv64-unknown-elf"
ARCH = ["-march=rv32ec", "-mabi=ilp32e"]
CFLAGS = ["-Os", "-g", "-ffreestanding", "-fno-builtin", "-fno-tree-loop-distribute-patterns", "-ffunction-sections",
          "-fdata-sections", "-Wall", "-Wextra", "-Wno-unused-parameter"]
SRCS = ["crt0.S", "main.c", "model.c", "lbc_rt.c", "lbc_kernels.S"]
BIN_SECTIONS = ["-j", ".init", "-j", ".text", "-j", ".rodata", "-j", ".data"]
DEFAULT_FLASH, DEFAULT_RAM = 16 * 1024, 2 * 1024
BOARD_SAMPLES = 8  # inputs compiled into the board firmware at most
STEP_FLASH = 60  # C glue of a non-dense step (relu, clip, argmax)
# code of the runtime helper each requantising non-dense op links in (once per model)
RQ_HELPER_FLASH = {"add": 90, "mul": 160, "global_avgpool": 70, "avgpool": 200}
TILE_FLASH, STAGE_FLASH = 330, 160  # lbc_tile_crop/mask/place; one patch stage's loop
TABLE_OPS = frozenset({"table"}) | POINTWISE_TABLE_OPS  # pointwise functions: the 256-entry `table` op
LAYOUT_FLASH = {"pad": 120, "transpose": 100, "concat": 100}  # lbc_move and its callers


def _align(n, a=4):
    return (n + a - 1) // a * a


class _Lowering:
    """The integer graph as dense-layer records, a kernel plan, constant arrays and C steps."""

    def __init__(self, target, graph, env):
        self.t, self.env = target, env
        self.stages = {st.nodes[0].name: st for st in P.stages_of(graph)}
        self.repeat = {n.name: st.grid[0] * st.grid[1] for st in self.stages.values() for n in st.nodes}
        self.g = _expand_stages(graph, self.stages.values())
        self.names = Namer("lbc_")
        self.layer_names = Namer("")
        self.offsets = graph.meta.get("memory_plan", {}).get("offsets", {})
        self.arena = _align(max(graph.meta.get("memory_plan", {}).get("arena_bytes", 0), 4))
        self.stack = K.stack_reserve(graph)
        self.problems = []
        self.rq_kernels = {}  # (m, k, lo, hi) -> rq_tensor Kernel of the adds and average pools
        self.rq_of = {}  # node name -> its rq_tensor Kernel
        self.layers = []
        self.consts = []
        self.steps = []
        self.plan = None
        self.min_flash = None
        self.kernel_block = None  # accumulators and tables inside the arena (after a patch stage)

    # ------------------------------------------------------------------ analysis

    def _nonneg(self, t):
        """Is tensor t never negative (a ReLU output, possibly reshaped or max-pooled)?"""
        prod = self.g.producers()
        while t in prod and prod[t].op in ("reshape", "maxpool"):
            t = prod[t].inputs[0]
        p = prod.get(t)
        if p is None:
            return False
        if p.op in ("dense", "clip"):
            return p.attr("lo") >= 0
        return p.op == "relu"

    def _dense_params(self, n):
        """(weights as int64, dtype, bias, m, k) of a dense or conv2d node, or None after a problem."""
        g = self.g
        if len(n.inputs) < 2 or n.inputs[1] not in g.consts:
            self.problems.append(f"{n.op} {n.name}: weights must be constant")
            return None
        dt = g.types[n.inputs[1]].dtype.name
        if dt not in K.VALUE_SET:
            self.problems.append(f"{n.op} {n.name}: weight dtype {dt} cannot be emitted (supported: "
                                 f"{', '.join(K.VALUE_SET)}); quantise the model first")
            return None
        w = np.asarray(g.consts[n.inputs[1]], dtype=np.int64)
        b = np.asarray(g.consts[n.inputs[2]], dtype=np.int64) if len(n.inputs) > 2 else None
        m, k = tuple(int(v) for v in n.attr("m")), tuple(int(v) for v in n.attr("k"))
        if any(v < 0 or v > 255 for v in m) or any(v < 0 or v > 31 for v in k):
            self.problems.append(f"{n.op} {n.name}: requantisation multipliers must be 0..255 and shifts 0..31 "
                                 f"(got m up to {max(m)}, k up to {max(k)})")
            return None
        if g.types[n.inputs[0]].dtype.name != "i8" or g.types[n.outputs[0]].dtype.name != "i8":
            self.problems.append(f"{n.op} {n.name}: needs int8 activations")
            return None
        # the kernels multiply the 32-bit accumulator by m in a 32-bit register (shifts and adds)
        bound = np.abs(w.reshape(len(w), -1)).sum(axis=1) * 128 + (np.abs(b) if b is not None else 0)
        mm, kk = np.broadcast_to(np.array(m), bound.shape), np.broadcast_to(np.array(k), bound.shape)
        bad = [j for j in range(len(bound)) if not requant_fits(bound[j], mm[j], kk[j])]
        if bad:
            j = bad[0]
            self.problems.append(f"{n.op} {n.name}: output {j}'s accumulator (|acc| <= {int(bound[j])}) times its "
                                 f"multiplier {int(mm[j])} does not fit 32 bits")
            return None
        return w, dt, b, m, k

    def _conv(self, n):
        p = self._dense_params(n)
        if p is None:
            return
        w, dt, b, m, k = p
        _, C, H, W = self.g.types[n.inputs[0]].shape
        _, M, OH, OW = self.g.types[n.outputs[0]].shape
        Mo, Cg, kh, kw = w.shape
        grp = int(n.attr("group"))
        Mg = M // grp
        (sy, sx), (dh, dw), pads = n.attr("strides"), n.attr("dilations"), n.attr("pads")
        taps = [(c * H * W + ky * dh * W + kx * dw, ky * dh, kx * dw)
                for c in range(Cg) for ky in range(kh) for kx in range(kw)]
        if max(t[0] for t in taps) > 32767 or (kh - 1) * dh > 127 or (kw - 1) * dw > 127 or H * W * C > 32767:
            self.problems.append(f"conv2d {n.name}: input {C}x{H}x{W} or window too large for 16-bit tap offsets")
            return
        ident = self.layer_names(n.name)
        groups = []
        rows = OH * OW * self.repeat.get(n.name, 1)  # tiles of a patch stage each compute OH x OW
        if grp > 1 and Cg == 1:
            # depthwise: one kernel over the window of every channel with a block-diagonal weight matrix
            # (zero weights emit no code in unrolled kernels), not one small kernel per channel
            taps = [(c * H * W + o, dy, dx) for c in range(C) for o, dy, dx in taps]
            wd = np.zeros((M, C * kh * kw), dtype=np.int64)
            for j in range(M):
                c = j // Mg
                wd[j, c * kh * kw:(c + 1) * kh * kw] = w[j].reshape(-1)
            groups.append(K.DenseLayer(n, ident, wd, dt, b, m, k, int(n.attr("lo")), int(n.attr("hi")), rows,
                                       self._nonneg(n.inputs[0]), macs_per_row=M * kh * kw))
            grp, Mg, Cg = 1, M, C
        else:
            for gi in range(grp):
                sl = slice(gi * Mg, (gi + 1) * Mg)
                groups.append(K.DenseLayer(
                    n, f"{ident}_g{gi}" if grp > 1 else ident, w[sl].reshape(Mg, -1), dt,
                    None if b is None else b[sl], m if len(m) == 1 else m[sl], k if len(k) == 1 else k[sl],
                    int(n.attr("lo")), int(n.attr("hi")), rows, self._nonneg(n.inputs[0])))
        geom = {"C": C, "H": H, "W": W, "M": M, "OH": OH, "OW": OW, "Cg": Cg, "Mg": Mg, "group": grp,
                "sy": sy, "sx": sx, "pt": pads[0], "pl": pads[1], "no_pad": not any(pads)}
        self.layers.append(K.ConvUnit(n, ident, groups, taps, geom))

    def _rq_op(self, n):
        """An add, mul or average pool: per-element sums or products in C, requantised by a generated
        per-tensor rq_tensor kernel (multiplier-free) called through a function pointer."""
        g = self.g
        if n.op in ("add", "mul"):
            out = tuple(g.types[n.outputs[0]].shape)
            if any(tuple(g.types[i].shape) != out and len(g.types[i].shape) > len(out) for i in n.inputs):
                self.problems.append(f"{n.op} {n.name}: operands of higher rank than the output")
                return
            if len(out) > 5:
                self.problems.append(f"{n.op} {n.name}: more than 4 dimensions besides the batch")
                return
            if n.op == "add":
                sa, sb = int(n.attr("sa")), int(n.attr("sb"))
                if not (0 <= sa <= 16 and 0 <= sb <= 16):
                    self.problems.append(f"add {n.name}: operand shifts must be 0..16 (got {sa}, {sb})")
                    return
                bound = (128 << sa) + (128 << sb)
            else:
                bound = 128 * 128
        elif n.op == "avgpool":
            bound = 128 * int(np.prod(n.attr("kernel")))
        else:
            bound = 128 * int(np.prod(g.types[n.inputs[0]].shape[2:]))
        m, k = n.attr("m"), n.attr("k")
        if len(m) != 1 or len(k) != 1:
            self.problems.append(f"{n.op} {n.name}: per-channel requantisation is not supported for {n.op} "
                                 f"(one m and k per tensor, as the quantize passes choose)")
            return
        m, k, lo, hi = int(m[0]), int(k[0]), int(n.attr("lo")), int(n.attr("hi"))
        if not (0 <= m <= 255 and 0 <= k <= 31) or bound * m + (1 << k >> 1) >= 2**31:
            self.problems.append(f"{n.op} {n.name}: requantisation m={m}, k={k} must be 0..255 and 0..31 with "
                                 f"|sum| * m < 2**31 (sums reach {bound})")
            return
        key = (m, k, lo, hi)
        if key not in self.rq_kernels:
            self.rq_kernels[key] = K.rq_tensor(self.layer_names(n.name), m, k, lo, hi)
            self.rq_kernels[key].render(self.env)
        self.rq_of[n.name] = self.rq_kernels[key]

    def _layout_op(self, n):
        """Problems of a pad, transpose or concat (data movement through lbc_move's 4-d walk)."""
        g = self.g
        shapes = [g.types[i].shape for i in n.inputs] + [g.types[n.outputs[0]].shape]
        if max(len(s) for s in shapes) > 5:
            self.problems.append(f"{n.op} {n.name}: more than 4 dimensions besides the batch")
        elif max(int(np.prod(s[1:])) for s in shapes) > 32767:
            self.problems.append(f"{n.op} {n.name}: tensors above 32767 elements")
        elif n.op == "pad" and min(n.attr("pads")) < 0:
            self.problems.append(f"pad {n.name}: negative pads (cropping) are not supported")
        elif n.op == "concat" and any(int(s) < 0 or int(s) > 7 for s in (n.attr("shifts") or (0,))):
            self.problems.append(f"concat {n.name}: input rescaling shifts must be 0..7 (got {n.attr('shifts')})")
        elif any(i in g.consts for i in n.inputs):
            self.problems.append(f"{n.op} {n.name}: constant operands are not supported (fold them first)")

    def analyse(self):
        g = self.g
        for n in g.nodes:
            if n.op == "conv2d":
                self._conv(n)
            if n.op in RQ_HELPER_FLASH:
                self._rq_op(n)
            if n.op in ("pad", "transpose", "concat"):
                self._layout_op(n)
            if n.op == "leaky_relu" and (len(n.attr("m")) != 1 or not 0 <= int(n.attr("m")[0]) <= 255
                                         or not 0 <= int(n.attr("k")[0]) <= 31):
                self.problems.append(f"leaky_relu {n.name}: one slope multiplier 0..255 with a shift 0..31 expected")
            if n.op != "dense":
                continue
            p = self._dense_params(n)
            if p is None:
                continue
            w, dt, b, m, k = p
            xs = g.types[n.inputs[0]].shape
            rows = int(np.prod(xs[1:-1])) if len(xs) > 2 else 1
            self.layers.append(K.DenseLayer(n, self.layer_names(n.name), w, dt, b, m, k, int(n.attr("lo")),
                                            int(n.attr("hi")), rows, self._nonneg(n.inputs[0])))
        for name in g.activation_tensors():
            dt = g.types[name].dtype.name
            if dt not in ("i8", "i32") or (dt == "i32" and g.producers().get(name, None) is None):
                self.problems.append(f"tensor {name}: {dt} activations cannot be emitted (int8 only)")
        return self

    def fixed_flash(self):
        ops = [n.op for n in self.g.nodes]
        other = sum(1 for op in ops if op in ("relu", "clip", "leaky_relu", "argmax", "maxpool") or op in RQ_HELPER_FLASH
                    or op in LAYOUT_FLASH or op in TABLE_OPS)
        helpers = sum(RQ_HELPER_FLASH[op] for op in set(ops) & set(RQ_HELPER_FLASH))
        helpers += sum(LAYOUT_FLASH[op] for op in set(ops) & set(LAYOUT_FLASH))
        helpers += 256 * sum(1 for op in ops if op in TABLE_OPS) + (20 if set(ops) & TABLE_OPS else 0)
        rq = sum(kern.bytes for kern in self.rq_kernels.values())
        tiles = (TILE_FLASH + sum(STAGE_FLASH + STEP_FLASH * len(st.nodes) for st in self.stages.values())
                 if self.stages else 0)
        return K.FIXED_FLASH + STEP_FLASH * other + helpers + rq + tiles

    def choose(self):
        t = self.t
        ram_free = t.ram_bytes - self.arena - self.stack - 16
        budget = t.flash_bytes - t.flash_slack
        cache = {}
        max_n = max([gl.N for la in self.layers for gl in getattr(la, "groups", [la])] + [0])
        # the paired bit-plane kernel addresses its tables with %lo() of absolute addresses: they must sit
        # in the first 2 KB of SRAM (always true on a 2 KB part; the linker asserts it)
        self.low_tables = self.arena + 4 * max_n + 1024 + 64 <= 2048
        kb = self.g.meta.get("memory_plan", {}).get("kernel_block")
        io_free = None
        if kb:
            # after a patch stage, accumulators and tables live in the arena's kernel block; the layers
            # up to the stage's end get unrolled kernels (no scratch besides the convolution buffers)
            names = [n.name for n in self.g.nodes]
            after = set(names[names.index(kb["after"]):]) if kb["after"] in names else set()
            io_free = ram_free
        for layer in self.layers:
            free = max(ram_free, 0) if not kb else (kb["bytes"] if layer.node.name in after else 0)
            layer.options = [o for o in self._options(layer, budget, free, cache) if kb is None or o.ram <= free]
        if self.problems:
            return self
        self.plan, self.min_flash = K.plan_layers(self.layers, budget, self.fixed_flash(),
                                                  kb["bytes"] if kb else max(ram_free, 0), io_free)
        self.kernel_block = kb
        if self.plan is None or ram_free < 0:
            self.plan = None
            self._no_fit(budget, cache)
        return self

    def _options(self, layer, budget, ram_free, cache):
        if isinstance(layer, K.ConvUnit):
            per_group = [K.layer_options(gl, self.env, budget, ram_free, self.t.kernel, cache, self.low_tables)
                         for gl in layer.groups]
            direct = K.direct_option(layer, self.env, budget) if self.t.kernel in (None, "unrolled") else []
            return K.combine_groups(layer, per_group) + direct
        return K.layer_options(layer, self.env, budget, ram_free, self.t.kernel, cache, self.low_tables)

    def _no_fit(self, budget, cache):
        """Say what does not fit, for each memory, with the bytes needed and available."""
        t = self.t
        unlimited = []
        for layer in self.layers:
            layer.options = self._options(layer, budget, 1 << 30, cache)  # unrolled code only if it could fit
            unlimited.append(min((o.ram + o.io for o in layer.options), default=0))
        scratch = max(unlimited + [0])
        ram_need = self.arena + scratch + self.stack + 16
        if ram_need > t.ram_bytes:
            self.problems.append(
                f"RAM: the model needs at least {ram_need} B (activation arena {self.arena} B + kernel scratch "
                f"{scratch} B + stack {self.stack} B + alignment 16 B) but the target has {t.ram_bytes} B: "
                f"{ram_need - t.ram_bytes} B more (a part with more RAM: --ram; or narrower layers){self._tried()}")
        plan, smallest = K.plan_layers(self.layers, 1 << 30, self.fixed_flash(), 1 << 30)
        if smallest is not None and smallest > budget:
            consts = sum(min([o.flash for o in la.options if o.kind != "unrolled"] or [0]) for la in self.layers)
            self.problems.append(
                f"flash: the model needs at least {smallest} B (packed weights and constants ~{consts} B, code "
                f"~{smallest - consts} B) but the target has {budget} B: {smallest - budget} B more (a part with "
                f"more flash: --flash; or fewer parameters or weight bits)")
        if not self.problems:
            self.problems.append(f"no combination of kernels fits both {budget} B of flash and {t.ram_bytes} B of "
                                 f"RAM (smallest flash {smallest} B with unlimited RAM; RAM {ram_need} B with "
                                 f"unlimited flash)")

    def _tried(self):
        """What the memory planner tried, for the RAM error."""
        mp = self.g.meta.get("memory_plan", {})
        tried = mp.get("tried", [])
        if not tried:
            return ""
        what = "; ".join(f"{t['plan']}: arena {t['arena_bytes']} B" for t in tried)
        return (f"; memory plans tried (arena budget {mp.get('budget_bytes')} B): {what}; the smallest proven "
                f"bound for the chosen plan is {mp.get('lower_bound_bytes')} B")

    # ------------------------------------------------------------------ code

    def ptr(self, t):
        return f"(LBC_RAM + {self.offsets[t]})"

    def operand(self, t, n):
        """Pointer to an activation, or to a constant operand stored in flash."""
        if t in self.g.consts:
            return self.const(f"{n.name}_{t}", "int8_t", self.g.consts[t], f"{n.name}: constant operand {t}")
        return self.ptr(t)

    def walk(self, base, dims, sx, sy):
        """An lbc_walk_t over `dims` (batch axis first, dropped) with element strides sx, sy per axis."""
        dims, sx, sy = list(dims[1:]), list(sx[1:]), list(sy[1:])
        while len(dims) < 4:
            dims, sx, sy = [1] + dims, [0] + sx, [0] + sy
        dx = [sx[j] - (dims[j + 1] * sx[j + 1] if j < 3 else 0) for j in range(4)]
        dy = [sy[j] - (dims[j + 1] * sy[j + 1] if j < 3 else 0) for j in range(4)]
        vals = dims + dx + dy
        if max(abs(v) for v in vals) > 32767:
            raise InternalError(f"{base}: walk beyond 16 bits")
        ident = self.names(base)
        self.consts.append({"ident": ident, "ctype": "lbc_walk_t", "len": 1,
                            "body": "{{" + ", ".join(map(str, dims)) + "}, {" + ", ".join(map(str, dx)) + "}, {"
                                    + ", ".join(map(str, dy)) + "}}",
                            "comment": comment_safe(f"{base}: counts, x steps, y steps")})
        return ident

    def const(self, base, ctype, values, comment, fmt=str):
        ident = self.names(base)
        vals = np.asarray(values).reshape(-1)
        self.consts.append({"ident": ident, "ctype": ctype, "len": max(len(vals), 1),
                            "body": c_array(vals if len(vals) else [0], fmt=fmt),
                            "comment": comment_safe(comment, 200)})
        return ident

    def tile_geom(self, st, i):
        la = st.layers[i]
        vals = [la.channels, la.th, la.tw, la.h, la.w, la.h * la.w, la.fill]
        if max(abs(v) for v in vals) > 32767:
            raise InternalError(f"tile geometry of {la.tensor} beyond 16 bits")
        ident = self.names(f"{la.tensor}_tile")
        self.consts.append({"ident": ident, "ctype": "lbc_tile_t", "len": 1,
                            "body": "{" + ", ".join(map(str, vals)) + "}",
                            "comment": comment_safe(f"tile of {la.tensor}: c th tw h w h*w fill")})
        return ident

    def stage_steps(self, st, where):
        """The loop over the tiles of a patch stage (where="begin") or its end (where="end")."""
        L = len(st.nodes)
        lay = [{"i": i, "sy": la.step_y, "sx": la.step_x, "oy": la.off_y, "ox": la.off_x,
                "row_step": la.step_y * la.w, "row0": la.off_y * la.w} for i, la in enumerate(st.layers)]
        if where == "end":
            return {"comment": comment_safe(f"place the tile into {st.output}; next tile"), "template": "tile_end",
                    "t": self.ptr(P.tile_tensor(st, L)), "y": self.ptr(st.output), "geom": self.tile_geom(st, L),
                    "L": L, "layers": lay}
        for i in (0, L):
            if max(abs(v) for v in lay[i].values()) > 32767:
                raise InternalError(f"tile origins of {st.layers[i].tensor} beyond 16 bits")
        return {"comment": comment_safe(f"patch-based execution of {st.nodes[0].name}..{st.nodes[-1].name}: "
                                        f"{st.grid[0]}x{st.grid[1]} tiles of {st.tile[0]}x{st.tile[1]} pixels", 200),
                "template": "tile_begin", "layers": lay, "L": L, "ny": st.grid[0], "nx": st.grid[1],
                "x": self.ptr(st.input), "t": self.ptr(P.tile_tensor(st, 0)), "geom": self.tile_geom(st, 0)}

    def lower(self):
        by_node = {la.node.name: (la, opt) for la, opt in zip(self.plan.layers, self.plan.choice)}
        stage_of = {n.name: (st, i) for st in self.stages.values() for i, n in enumerate(st.nodes)}
        for n in self.g.nodes:
            st, ti = stage_of.get(n.name, (None, None))
            if ti == 0:
                self.steps.append(self.stage_steps(st, "begin"))
            self._lower_node(n, by_node)
            if st is not None and ti + 1 < len(st.nodes):
                self.steps.append({"comment": comment_safe(f"padding of {st.layers[ti + 1].tensor} at the map's edge"),
                                   "template": "tile_mask", "t": self.ptr(n.outputs[0]),
                                   "geom": self.tile_geom(st, ti + 1), "i": ti + 1})
            elif st is not None:
                self.steps.append(self.stage_steps(st, "end"))
        return self

    def _lower_node(self, n, by_node):
        s = {"comment": comment_safe(f"{n.op} {n.name}"), "x": self.ptr(n.inputs[0]), "y": self.ptr(n.outputs[0])}
        if n.op == "dense":
            la, opt = by_node[n.name]
            getattr(self, "dense_" + opt.kind)(la, opt, s)
        elif n.op == "conv2d":
            self.conv(*by_node[n.name], s)
        elif n.op in ("maxpool", "avgpool"):
            _, C, H, W = self.g.types[n.inputs[0]].shape
            _, _, OH, OW = self.g.types[n.outputs[0]].shape
            (kh, kw), (sy, sx), pads = n.attr("kernel"), n.attr("strides"), n.attr("pads")
            geom = [C, H, W, OH, OW, kh, kw, sy, sx, pads[0], pads[1], sy * W, H * W, -pads[0] * W]
            if max(abs(v) for v in geom) > 32767:
                raise InternalError(f"{n.op} {n.name}: geometry beyond 16 bits")
            s.update(template=n.op, geom=self.const(
                f"{n.name}_geom", "int16_t", geom,
                f"{n.name} geometry: c h w oh ow kh kw sy sx pt pl sy*w h*w -pt*w"))
            if n.op == "avgpool":
                s["rq"] = self.rq_of[n.name].name
        elif n.op == "global_avgpool":
            shape = self.g.types[n.inputs[0]].shape
            s.update(template=n.op, c=shape[1], hw=int(np.prod(shape[2:])), rq=self.rq_of[n.name].name)
        elif n.op in ("add", "mul"):
            out = self.g.types[n.outputs[0]].shape
            a, b = (self.operand(i, n) for i in n.inputs)
            sa, sb = (int(n.attr("sa")), int(n.attr("sb"))) if n.op == "add" else (0, 0)
            if n.op == "add" and all(tuple(self.g.types[i].shape) == tuple(out) for i in n.inputs):
                s.update(template="add", a=a, b=b, n=self.g.types[n.outputs[0]].size, sa=sa, sb=sb,
                         rq=self.rq_of[n.name].name)
            else:
                walk = self.walk(f"{n.name}_walk", out, bstrides(self.g.types[n.inputs[0]].shape, out),
                                 bstrides(self.g.types[n.inputs[1]].shape, out))
                s.update(template="binary", a=a, b=b, walk=walk, opcode=int(n.op == "mul"), sa=sa, sb=sb,
                         rq=self.rq_of[n.name].name)
        elif n.op == "leaky_relu":
            s.update(template="leaky_relu", n=self.g.types[n.outputs[0]].size, m=int(n.attr("m")[0]),
                     k=int(n.attr("k")[0]))
        elif n.op in TABLE_OPS:
            tab = self.const(f"{n.name}_table", "int8_t", n.attr("table"),
                             f"{n.name}: {n.attrs.get('fn', n.op)} of x at table[x + 128]")
            s.update(template="table", n=self.g.types[n.outputs[0]].size, table=tab)
        elif n.op == "transpose":
            shape = self.g.types[n.inputs[0]].shape
            st = strides(shape)
            out = self.g.types[n.outputs[0]].shape
            walk = self.walk(f"{n.name}_walk", out, [st[p] for p in n.attr("perm")], strides(out))
            s.update(template="move", walk=walk, shift=0)
        elif n.op == "pad":
            shape, out = self.g.types[n.inputs[0]].shape, self.g.types[n.outputs[0]].shape
            begin = n.attr("pads")[:len(shape)]
            yst = strides(out)
            off = sum(b * st for b, st in zip(begin, yst))
            walk = self.walk(f"{n.name}_walk", shape, strides(shape), yst)
            s.update(template="pad", walk=walk, n=self.g.types[n.outputs[0]].size, value=int(n.attr("qvalue")),
                     y_inner=f"{s['y']} + {off}")
        elif n.op == "concat":
            out = self.g.types[n.outputs[0]].shape
            ax = n.attr("axis") % len(out)
            yst = strides(out)
            parts, off = [], 0
            shifts = n.attr("shifts") or (0,) * len(n.inputs)
            for j, (i, sh) in enumerate(zip(n.inputs, shifts)):
                shape = self.g.types[i].shape
                walk = self.walk(f"{n.name}_walk{j}", shape, strides(shape), yst)
                parts.append({"x": self.ptr(i), "walk": walk, "shift": int(sh), "y": f"{s['y']} + {off * yst[ax]}"})
                off += shape[ax]
            s.update(template="concat", parts=parts)
        elif n.op in ("relu", "clip"):
            s.update(template=n.op, n=self.g.types[n.outputs[0]].size)
            if n.op == "clip":
                s.update(lo=int(n.attr("lo")), hi=int(n.attr("hi")))
        elif n.op == "reshape":
            s["template"] = "reshape"
        elif n.op == "argmax":
            shape = self.g.types[n.inputs[0]].shape
            ax = n.attr("axis") % len(shape)
            inner = int(np.prod(shape[ax + 1:]))
            s.update(template="argmax", outer=int(np.prod(shape[1:ax])), n=shape[ax], inner=inner,
                     span=shape[ax] * inner)
        else:  # check() rejects these first
            raise InternalError(f"rv32ec cannot lower op {n.op}")
        self.steps.append(s)

    def conv(self, unit, opt, s):
        gm = unit.geom
        if opt.params.get("direct"):
            s.update(template="conv2d_direct", fn=opt.private[0].name, OH=gm["OH"], OW=gm["OW"], sx=gm["sx"],
                     row_step=gm["sy"] * gm["W"])
            return
        taps = self.names(f"{unit.node.name}_taps")
        self.consts.append({"ident": taps, "ctype": "lbc_tap_t", "len": len(unit.taps),
                            "body": ",\n    ".join(", ".join(f"{{{o}, {dy}, {dx}}}" for o, dy, dx in unit.taps[i:i + 6])
                                                   for i in range(0, len(unit.taps), 6)),
                            "comment": comment_safe(f"{unit.node.name}: window taps (input offset, row, column)")})
        hw = self.names(f"{unit.node.name}_hw")
        self.consts.append({"ident": hw, "ctype": "lbc_hw_t", "len": 1, "body": f"{{{gm['H']}, {gm['W']}}}",
                            "comment": comment_safe(f"{unit.node.name}: input height, width")})
        groups = []
        for gi, (gl, part) in enumerate(zip(unit.groups, opt.parts)):
            gs = {"comment": comment_safe(f"group {gi}"), "x": "LBC_PATCH", "y": "LBC_OUT"}
            getattr(self, "dense_" + part.kind)(gl, part, gs)
            gs["rows"] = 1
            groups.append({"step": gs, "x_off": gi * gm["Cg"] * gm["H"] * gm["W"],
                           "y_off": gi * gm["Mg"] * gm["OH"] * gm["OW"], "N": gl.N})
        s.update(template="conv2d", groups=groups, taps=taps, hw=hw, K=unit.K, OH=gm["OH"], OW=gm["OW"],
                 sy=gm["sy"], sx=gm["sx"], iy0=-gm["pt"], ix0=-gm["pl"], row0=-gm["pt"] * gm["W"] - gm["pl"],
                 row_step=gm["sy"] * gm["W"], ohw=gm["OH"] * gm["OW"])

    def _bias_init(self, la):
        if la.bias is None:
            return f"lbc_acc_zero(LBC_ACC, {la.N})"
        if K.bias_bytes(la.bias) == 2 * la.N:
            ident = self.const(f"{la.ident}_bias", "int16_t", la.bias, f"{la.node.name} biases (int16)")
            return f"lbc_acc_bias16(LBC_ACC, {ident}, {la.N})"
        ident = self.const(f"{la.ident}_bias", "int32_t", la.bias, f"{la.node.name} biases")
        return f"lbc_acc_bias32(LBC_ACC, {ident}, {la.N})"

    def _requant(self, la, opt, first=0):
        """(function, arguments after acc, y, n) of the requantisation of LBC_ACC into y."""
        if len(la.m) == 1:
            return {"fn": opt.private[first].name, "extra": ""}
        kern = next(k for k in opt.shared if k.key[0] == "rq_channel")
        mk = np.stack([np.asarray(la.m), np.asarray(la.k)], axis=1)
        ident = self.const(f"{la.ident}_rq", "uint8_t", mk, f"{la.node.name} requantisation: m, k per channel")
        return {"fn": kern.name, "extra": f", {ident}, {la.lo}, {la.hi}"}

    def _dense_common(self, la, opt, s):
        s.update(template="dense_table", rows=la.rows, K=la.K, N=la.N, init=self._bias_init(la),
                 requant=self._requant(la, opt), chunks=opt.params["chunks"])

    def dense_lut(self, la, opt, s):
        p = opt.params
        data, nch = K.pack_lut(la.w, p["V"], p["lo"], p["g"], p["C"])
        ident = self.const(f"{la.ident}_w", "uint8_t", data,
                           f"{la.node.name} {la.dtype} weights [{la.N}, {la.K}] as group codes: {nch} chunk(s) x "
                           f"{la.N} outputs x {p['C']} groups of {p['g']}, byte = 2 * code")
        builder, mac = opt.shared[0], opt.shared[1]
        self._dense_common(la, opt, s)
        s.update(wtype="uint8_t", w=ident, build=builder.name, mac=mac.name, tab_len=p["C"] * p["V"] ** p["g"],
                 x_step=p["C"] * p["g"], w_step=la.N * p["C"])

    def dense_bits(self, la, opt, s):
        p = opt.params
        data, nch = K.pack_bits(la.w, p["P"], p["W"])
        ident = self.const(f"{la.ident}_w", "uint32_t", data,
                           f"{la.node.name} {la.dtype} weights [{la.N}, {la.K}] as bit planes: {nch} chunk(s) x "
                           f"{la.N} outputs x {p['P']} planes x {p['W']} word(s)", fmt=lambda v: f"0x{v:08x}")
        builder, mac = opt.shared[0], opt.shared[1]
        self._dense_common(la, opt, s)
        s.update(wtype="uint32_t", w=ident, build=builder.name, mac=mac.name, tab_len=8 * p["W"] * 16,
                 x_step=32 * p["W"], w_step=la.N * p["P"] * p["W"])

    def dense_bitsp(self, la, opt, s):
        p = opt.params
        data, nch = K.pack_bits(la.w, p["P"], p["W"], paired=True)
        ident = self.const(f"{la.ident}_w", "uint32_t", data,
                           f"{la.node.name} {la.dtype} weights [{la.N}, {la.K}] as bit planes, paired nibbles: {nch} "
                           f"chunk(s) x {la.N} outputs x {p['P']} planes x {p['W']} word(s)",
                           fmt=lambda v: f"0x{v:08x}")
        blo, bhi, mac = opt.shared[0], opt.shared[1], opt.shared[2]
        self._dense_common(la, opt, s)
        s.update(template="dense_paired", wtype="uint32_t", w=ident, build_lo=blo.name, build_hi=bhi.name,
                 mac=mac.name, lo_len=4 * p["W"] * 16, hi_len=4 * p["W"], half=16 * p["W"], x_step=32 * p["W"],
                 w_step=la.N * p["P"] * p["W"])

    def dense_unrolled(self, la, opt, s):
        kern = opt.private[0]
        s.update(template="dense_unrolled", fn=kern.name, rows=la.rows, K=la.K, N=la.N)
        if not opt.params["inline"]:
            s["requant"] = self._requant(la, opt, 1)


class Rv32ecTarget(Target):
    name = "rv32ec"
    streams = True
    description = "RV32EC microcontrollers (WCH CH32V003): multiplier-free C and assembly, gcc, unicorn"
    default_quant = "int4"
    quants = ("int8", "int4", "int2", "ternary", "pentary")
    ops = frozenset({"dense", "conv2d", "maxpool", "avgpool", "global_avgpool", "add", "mul", "relu", "clip",
                     "leaky_relu", "reshape", "argmax", "pad", "transpose", "concat", "lif"}) | TABLE_OPS  # lif: streaming (stream.py)
    flash_bytes = DEFAULT_FLASH
    ram_bytes = DEFAULT_RAM
    # per-element kernels that read element i before writing it: the memory plan may run them in place
    inplace_ops = frozenset({"relu", "clip", "leaky_relu", "add", "mul"}) | TABLE_OPS
    KERNELS = ("auto", "lut", "bits", "bitsp", "unrolled")  # auto: the planner picks per layer
    op_limits = {
        "add": "both operands activations of the output's shape (no broadcasting), operand shifts 0..16",
        "avgpool": "one requantisation per tensor", "global_avgpool": "one requantisation per tensor",
        "conv2d": "input and window small enough for 16-bit tap offsets",
    }

    def __init__(self, flash_bytes=None, ram_bytes=None, kernel=None, samples=None):
        super().__init__(flash_bytes, ram_bytes)
        self.samples = samples  # .npz/.npy of inputs compiled into the board firmware (model.hex)
        if kernel not in (None,) + self.KERNELS:
            raise LbcError(f"unknown rv32ec kernel {kernel!r}; valid: {', '.join(self.KERNELS)}")
        self.kernel = None if kernel in (None, "auto") else kernel
        self.flash_slack = 0  # flash the planner leaves free after a link overflowed its estimate
        self._emitted = None
        self._stack = K.STACK_MIN  # set per graph by emit()

    def options(self):
        o = super().options()
        if self.kernel:
            o["kernel"] = self.kernel
        return o

    def _env(self):
        return template_env(HERE / "templates")

    def arena_budget(self, graph):
        """RAM the activation arena may use: the part's RAM minus the stack reserve, alignment and the
        smallest convolution buffers (window patch, one output position; unrolled kernels need no more)."""
        conv = [K.conv_io(graph, n) for n in graph.nodes if n.op == "conv2d"]
        return self.ram_bytes - K.stack_reserve(graph) - 16 - max(conv + [0])

    def _lowering(self, graph):
        return _Lowering(self, graph, self._env()).analyse()

    def check(self, graph):
        """Unsupported ops, weight dtypes and activation types, then (if those are fine) whether any
        combination of kernels fits the flash and RAM budgets - all before a file is written."""
        if graph.stateful:
            from lbc.backends.rv32ec.stream import StreamLowering
            problems = StreamLowering(graph).problems
            if self.samples is not None:
                problems.append("--samples: a streaming model (with state) gets no board firmware yet; compile it "
                                "without --samples and step it with lbc_reset/lbc_step")
            if len(graph.inputs) != 1 or len(graph.outputs) != 1:
                problems.append("target rv32ec compiles graphs with one input and one output")
            return problems
        problems = super().check(graph)
        low = self._lowering(graph)
        problems += low.problems
        if not problems:
            problems += low.choose().problems
        return problems

    # ------------------------------------------------------------------ emit

    def _emit_stream(self, graph, outdir):
        """A model with state: streaming firmware, one lbc_step() per time step (see stream.py)."""
        from lbc.backends.rv32ec.stream import StreamLowering
        low = StreamLowering(graph)
        self._board_samples = None
        if low.problems:
            raise TargetError("the model cannot be compiled for rv32ec:\n  - " + "\n  - ".join(low.problems))
        plan = graph.meta["memory_plan"]
        offsets = plan["offsets"]
        consts, body, resets, kmax, pmax, kernels = low.render(offsets)
        inp, out = graph.inputs[0], graph.outputs[0]
        arena = _align(max(plan["arena_bytes"], 4))
        self._stack = K.STACK_MIN
        ctx = {"header": header_lines(graph, self.name, graph.meta.get("quant", "?")), "consts": consts,
               "body": body, "resets": resets, "kmax": kmax, "kernels": kernels, "pmax": pmax, "arena_bytes": arena,
               "state_bytes": plan.get("state_bytes", 0), "act_bytes": 4 * kmax, "ram_bytes": arena,
               "stack_bytes": self._stack, "input_size": graph.types[inp].size,
               "input_shape": list(graph.types[inp].shape), "output_size": graph.types[out].size,
               "output_shape": list(graph.types[out].shape), "output_ptr": f"(LBC_RAM + {offsets[out]})",
               "flash": self.flash_bytes, "ram": self.ram_bytes, "arch": " ".join(ARCH), "cflags": " ".join(CFLAGS),
               "ldflags": " ".join(self._ldflags()), "srcs": " ".join(SRCS), "bin_sections": " ".join(BIN_SECTIONS)}
        env = self._env()
        files = {"model.c": "model_stream.c.j2", "model.h": "model_stream.h.j2", "main.c": "main_stream.c.j2",
                 "Makefile": "Makefile.j2"}
        for name, tpl in files.items():
            (outdir / name).write_text(env.get_template(tpl).render(**ctx))
        (outdir / "lbc_kernels.S").write_text(env.get_template("lbc_kernels.S.j2").render(
            header=ctx["header"], low_tables=False,
            kernels=[{"text": env.get_template("asm/colsum.S.j2").render(**k)} for k in kernels]))
        for name in RUNTIME_FILES:
            shutil.copyfile(RUNTIME / name, outdir / name)
        info = {"stream": True, "input_bytes": graph.types[inp].size, "output_dtype": "int8",
                "output_shape": list(graph.types[out].shape[1:]), "macs": low.macs(),
                "flash_bytes": self.flash_bytes, "ram_bytes": self.ram_bytes,
                "ram_layout": {"arena": arena, "states": plan.get("state_bytes", 0), "active_list": 4 * kmax}}
        (outdir / "firmware.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        self._emitted = None
        return {"files": sorted(list(files) + list(RUNTIME_FILES) + ["lbc_kernels.S", "firmware.json"]),
                "ram_layout": info["ram_layout"], "macs": info["macs"], "stream": True}

    def emit(self, graph, outdir, options):
        outdir = Path(outdir)
        if graph.stateful:
            return self._emit_stream(graph, outdir)
        env = self._env()
        low = _Lowering(self, graph, env).analyse().choose()
        if low.problems:
            raise TargetError("the model cannot be compiled for rv32ec", details=low.problems)
        low.lower()
        plan = low.plan
        inp, out = graph.inputs[0], graph.outputs[0]
        out_dt = graph.types[out].dtype.name
        header = header_lines(graph, self.name, graph.meta.get("quant", "?"))
        kb = low.kernel_block
        acc_off = kb["offset"] if kb else low.arena
        tab_off = acc_off + plan.acc_bytes
        self._paired = any(o.kind == "bitsp" for o in plan.choice)
        convs = [la for la in plan.layers if isinstance(la, K.ConvUnit)]
        patch_off = low.arena if kb else tab_off + plan.tab_bytes
        out_off = patch_off + max([la.K for la in convs] + [0])
        ram_total = _align(out_off + max([gl.N for la in convs for gl in la.groups] + [0]))
        layer_info = []
        plan_lines = []
        for la, opt in zip(plan.layers, plan.choice):
            layer_info.append({"name": la.node.name, "kernel": opt.kind, "detail": opt.summary, "dtype": la.dtype,
                               "shape": [la.K, la.N], "macs": la.macs, "est_instructions": int(round(opt.instr)),
                               "zero_weights": float(np.mean(la.w == 0))})
            plan_lines.append(comment_safe(f"{la.node.name}: {la.node.op} {la.K} to {la.N}, {la.dtype}, {opt.summary}, "
                                           f"about {int(round(opt.instr))} instructions", 200))
        kernels = sorted(plan.kernels + list(low.rq_kernels.values()), key=lambda k: k.name)
        for k in kernels:
            k.render(env)
        ctx = {
            "header": header, "consts": low.consts, "steps": low.steps, "kernels": kernels, "plan_lines": plan_lines,
            "arena_bytes": low.arena, "acc_bytes": plan.acc_bytes, "tab_bytes": plan.tab_bytes,
            "acc_offset": acc_off, "tab_offset": tab_off, "tab_hi": tab_off, "tab_lo": tab_off + 512,
            "patch_offset": patch_off, "out_offset": out_off, "io_bytes": ram_total - patch_off,
            "ram_bytes": ram_total, "stack_bytes": low.stack,
            "input_size": graph.types[inp].size, "input_exp": graph.types[inp].exp,
            "input_shape": list(graph.types[inp].shape),
            "output_size": graph.types[out].size, "output_shape": list(graph.types[out].shape),
            "output_exp": graph.types[out].exp if graph.types[out].exp is not None else 0,
            "output_ctype": "int32_t" if out_dt == "i32" else "int8_t",
            "input_ptr": f"(LBC_RAM + {low.offsets[inp]})",
            "output_ptr": f"(lbc_output_t *)(LBC_RAM + {low.offsets[out]})",
            "flash": self.flash_bytes, "ram": self.ram_bytes, "low_tables": self._paired,
            "arch": " ".join(ARCH), "cflags": " ".join(CFLAGS), "ldflags": " ".join(self._ldflags()),
            "srcs": " ".join(SRCS), "bin_sections": " ".join(BIN_SECTIONS),
        }
        ctx["model_name"] = re.sub(r"[^A-Za-z0-9_.-]", "_", graph.name or "model")[:40]
        files = {"model.c": "model.c.j2", "model.h": "model.h.j2", "main.c": "main.c.j2",
                 "lbc_kernels.S": "lbc_kernels.S.j2", "Makefile": "Makefile.j2"}
        for name, tpl in files.items():
            (outdir / name).write_text(env.get_template(tpl).render(**ctx))
        self._board_samples = self._sample_set(graph)
        self._write_samples(outdir, header, graph, len(self._board_samples[0]))
        for name in RUNTIME_FILES:
            shutil.copyfile(RUNTIME / name, outdir / name)
        info = {
            "ram_symbol": "lbc_ram", "input_offset": low.offsets[inp], "input_bytes": graph.types[inp].size,
            "output_offset": low.offsets[out], "output_dtype": "int32" if out_dt == "i32" else "int8",
            "output_shape": list(graph.types[out].shape[1:]), "macs": int(sum(la.macs for la in plan.layers)),
            "flash_bytes": self.flash_bytes, "ram_bytes": self.ram_bytes, "layers": layer_info,
            "ram_layout": {"arena": low.arena, "accumulators": plan.acc_bytes, "tables": plan.tab_bytes,
                           "accumulators_and_tables_in_arena": bool(kb),
                           "conv_patch_and_output": ram_total - patch_off,
                           "stack_min": low.stack},
            "est_flash": plan.flash, "est_instructions": int(round(plan.instr)),
        }
        info["ram_steps"] = self._ram_steps(graph, low, plan)
        (outdir / "firmware.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        self._emitted = (graph, options, plan.flash)
        self._stack = low.stack
        return {"files": sorted(list(files) + list(RUNTIME_FILES) + ["firmware.json", "samples.c", "samples.h"]),
                "layers": layer_info,
                "ram_steps": info["ram_steps"], "memory_plan": {k: v for k, v in graph.meta.get("memory_plan", {}).items()
                                                                if k not in ("offsets", "steps")},
                "ram_layout": info["ram_layout"], "est_flash": plan.flash, "est_instructions": info["est_instructions"],
                "macs": info["macs"]}

    @staticmethod
    def _ram_steps(graph, low, plan):
        """RAM at each step of the memory plan: live activations (tiles included), the scratch of the
        step's kernels (accumulators, tables, convolution buffers) and the stack reserve."""
        scratch = {la.node.name: o.acc + o.tab + o.io for la, o in zip(plan.layers, plan.choice)}
        stages = {f"patches {st.nodes[0].name}..{st.nodes[-1].name}": st for st in low.stages.values()}
        rows = []
        for st in graph.meta.get("memory_plan", {}).get("steps", []):
            names = [n.name for n in stages[st["step"]].nodes] if st["step"] in stages else [st["step"]]
            k = max([scratch.get(n, 0) for n in names] + [0])
            rows.append({"step": st["step"], "activations": st["live_bytes"], "kernel_scratch": k,
                         "stack_reserve": low.stack, "total": st["live_bytes"] + k + low.stack})
        return rows


    def _sample_set(self, graph):
        """(quantised inputs, source text) of the board firmware: --samples, else fixed random inputs."""
        from lbc.ir.quant import quantize_input
        exp = graph.types[graph.inputs[0]].exp
        if self.samples:
            from lbc.driver import check_batch, load_batch
            x, _ = load_batch(self.samples, "--samples")
            x = check_batch(x, graph, f"--samples {self.samples}")[:BOARD_SAMPLES]
            source = f"--samples {Path(self.samples).name}"
        else:
            shape = tuple(graph.types[graph.inputs[0]].shape[1:])
            x = np.random.default_rng(0).uniform(-1.0, 1.0, (2,) + shape).astype(np.float32)
            source = "2 uniform random inputs in [-1, 1] (seed 0; pass --samples for real ones)"
        return quantize_input(x, exp).reshape(len(x), -1), source

    def _write_samples(self, outdir, header, graph, n):
        xq, source = self._board_samples
        env = self._env()
        ctx = {"header": header, "samples": [", ".join(str(int(v)) for v in row) for row in xq[:n]],
               "input_exp": graph.types[graph.inputs[0]].exp, "source": comment_safe(source, 120)}
        for name in ("samples.c", "samples.h"):
            (outdir / name).write_text(env.get_template(name + ".j2").render(**ctx))
        self._samples_header = header

    def _build_board(self, outdir, gcc):
        """model_board.elf and model.hex (the board firmware); fewer samples when flash is short.
        Returns the build facts, or a note saying why there is no board image."""
        xq, _ = self._board_samples
        n = len(xq)
        while n:
            r = subprocess.run([gcc, *ARCH, *CFLAGS, "-DLBC_BOARD", *SRCS, "samples.c", *self._ldflags(), "-o",
                                "model_board.elf"], cwd=outdir, capture_output=True, text=True)
            if not r.returncode:
                break
            if "overflowed" not in r.stderr and "less than __stack_min" not in r.stderr:
                raise InternalError(f"the board firmware failed to build:\n{r.stderr.strip()}")
            n -= 1
            self._write_samples(outdir, self._samples_header, self._emitted[0], n)
        if not n:
            (outdir / "model_board.elf").unlink(missing_ok=True)
            return {"hex": None, "hex_note": "the board firmware does not fit beside the model (not even one sample)"}
        objcopy = find_tool(OBJCOPY, BINUTILS_PKG)
        r = subprocess.run([objcopy, "-O", "ihex", *BIN_SECTIONS, "model_board.elf", "model.hex"], cwd=outdir,
                           capture_output=True, text=True)
        if r.returncode:
            raise InternalError(f"objcopy failed: {r.stderr.strip()}")
        return {"hex": "model.hex", "board_elf": "model_board.elf", "board_samples": n}

    def run_board(self, outdir):
        """Run the board firmware in the emulator (clock, USART1 and SysTick modelled): what it printed."""
        from lbc.backends.rv32ec.emulator import Firmware
        elf = Path(outdir) / "model_board.elf"
        if not elf.exists():
            raise ToolchainError(f"{elf} is missing; compile the model first (without --no-build)")
        _, st = Firmware(elf, self.flash_bytes, self.ram_bytes).run([], [], count=True)
        return st.uart.decode("ascii", "replace")

    def _ldflags(self):
        flags = ["-nostdlib", "-nostartfiles", "-T", "ch32v003.ld", "-Wl,--gc-sections",
                 f"-Wl,--defsym=__stack_min={self._stack}"]
        if getattr(self, "_paired", False):
            flags.append("-Wl,--defsym=__lbc_low_tables=1")
        if self.flash_bytes != DEFAULT_FLASH:
            flags.append(f"-Wl,--defsym=__flash_size={self.flash_bytes}")
        if self.ram_bytes != DEFAULT_RAM:
            flags.append(f"-Wl,--defsym=__ram_size={self.ram_bytes}")
        return flags

    # ------------------------------------------------------------------ build

    def build(self, outdir):
        outdir = Path(outdir)
        gcc = find_tool(GCC, GCC_PKG)
        for attempt in range(4):
            cmd = [gcc, *ARCH, *CFLAGS, *SRCS, *self._ldflags(), "-Wl,-Map=model.map", "-o", "model.elf"]
            r = subprocess.run(cmd, cwd=outdir, capture_output=True, text=True)
            if not r.returncode:
                break
            over = re.search(r"region `FLASH' overflowed by (\d+) bytes", r.stderr)
            if over and self._emitted and attempt < 3:
                # the size estimate was optimistic: plan again so that the estimate is that much smaller
                est = self._emitted[2]
                self.flash_slack = max(self.flash_slack + 64, self.flash_bytes - (est - int(over.group(1)) - 64))
                graph, options, _ = self._emitted
                try:
                    self.emit(graph, outdir, options)
                except TargetError:
                    break
                continue
            break
        if r.returncode:
            over = re.search(r"region `(FLASH|RAM)' overflowed by (\d+) bytes", r.stderr)
            if over:
                part, n = over.groups()
                have = self.flash_bytes if part == "FLASH" else self.ram_bytes
                raise TargetError(f"the firmware does not fit: {part.lower()} needs {have + int(n)} B, the target "
                                  f"has {have} B ({n} B more)")
            if "less than __stack_min" in r.stderr:
                raise TargetError(f"the firmware does not fit: less than {self._stack} B of the {self.ram_bytes} B "
                                  f"of RAM are left for the stack")
            raise InternalError(f"the generated firmware failed to build:\n{r.stderr.strip()}")
        objcopy = find_tool(OBJCOPY, BINUTILS_PKG)
        r = subprocess.run([objcopy, "-O", "binary", *BIN_SECTIONS, "model.elf", "model.bin"], cwd=outdir,
                           capture_output=True, text=True)
        if r.returncode:
            raise InternalError(f"objcopy failed: {r.stderr.strip()}")
        from lbc.backends.rv32ec import isa
        problems, n_insns = isa.check_elf(outdir / "model.elf")
        if problems:
            raise InternalError("the firmware is not RV32EC-clean:\n  " + "\n  ".join(problems[:20]))
        sizes = elf_sizes(outdir / "model.elf")
        sizes.update(elf="model.elf", bin="model.bin", map="model.map", flash_bytes=self.flash_bytes,
                     ram_bytes=self.ram_bytes, code_instructions=n_insns, isa="rv32ec (checked: no M, x0-x15)")
        if self._board_samples is not None:
            sizes.update(self._build_board(outdir, gcc))
        else:
            sizes["board"] = "no board firmware for a streaming model (the test driver steps through lbc_io_sync)"
        return sizes

    # ------------------------------------------------------------------ run

    def run(self, outdir, manifest, xq, count=16):
        from lbc.backends.rv32ec.emulator import Firmware, run_batch
        outdir = Path(outdir)
        elf = outdir / "model.elf"
        if not elf.exists():
            raise ToolchainError(f"{elf} is missing; compile the model first (without --no-build)")
        info = json.loads((outdir / "firmware.json").read_text())
        fw = Firmware(elf, self.flash_bytes, self.ram_bytes)
        if info.get("stream"):
            return self._run_stream(fw, info, elf, xq, count)
        xq = np.asarray(xq, dtype=np.int8).reshape(len(xq), -1)
        res = run_batch(fw, xq, fw.addr(info["ram_symbol"], info["input_offset"]),
                        fw.addr(info["ram_symbol"], info["output_offset"]), info["output_dtype"],
                        info["output_shape"], count=min(count, len(xq)))
        y = res.outputs.reshape((len(xq),) + tuple(manifest["outputs"][0]["shape"][1:]))
        stats = {"emulator": "unicorn, CH32V003 memory map"}
        if res.counted:
            inf = [s.inference for s in res.counted]
            cyc = [s.inference_cycles for s in res.counted]
            macs = info["macs"]
            stats.update({
                "instructions_per_inference": int(round(np.mean(inf))),
                "instructions_per_inference_range": f"{min(inf)}..{max(inf)} over {len(inf)} sample(s)",
                "instructions_per_mac": round(float(np.mean(inf)) / macs, 3) if macs else None,
                "instructions_reset_to_exit": res.counted[0].instructions,
                "est_ch32v003_cycles": int(round(np.mean(cyc))),
                "macs": macs,
            })
        stats["stack_peak_bytes"] = res.stack_peak
        sizes = elf_sizes(elf)
        stats["flash_used_bytes"] = f"{sizes['flash_used']} of {self.flash_bytes}"
        stats["ram_used_bytes"] = f"{sizes['ram_static'] + res.stack_peak} of {self.ram_bytes} " \
                                  f"(static {sizes['ram_static']} + stack peak {res.stack_peak})"
        stats["per_sample"] = [{"instructions": s.inference, "cycles": s.inference_cycles} for s in res.counted]
        return y, stats

    def _run_stream(self, fw, info, elf, xq, count):
        from lbc.backends.rv32ec.emulator import run_stream
        xq = np.asarray(xq, dtype=np.int8).reshape(xq.shape[:2] + (-1,))
        y, per_step, peak = run_stream(fw, xq, fw.addr("lbc_io_in"), fw.addr("lbc_io_out"), fw.addr("lbc_io_steps"),
                                       fw.addr("lbc_io_sync"), "int8", info["output_shape"], count=min(count, len(xq)))
        flat = [i for seq in per_step for i in seq]
        stats = {"emulator": "unicorn, CH32V003 memory map", "stack_peak_bytes": peak}
        if flat:
            stats.update({"instructions_per_step": int(round(np.mean(flat))),
                          "instructions_per_step_range": f"{min(flat)}..{max(flat)} over {len(flat)} step(s)",
                          "note": "per step: one lbc_step call plus the driver loop and sync call (~10 instructions)",
                          "per_sequence_steps": per_step})
        sizes = elf_sizes(elf)
        stats["flash_used_bytes"] = f"{sizes['flash_used']} of {self.flash_bytes}"
        stats["ram_used_bytes"] = f"{sizes['ram_static'] + peak} of {self.ram_bytes} " \
                                  f"(static {sizes['ram_static']} + stack peak {peak})"
        return y, stats

    def summary(self, report):
        b, e = report.get("build") or {}, report.get("emit") or {}
        lines = []
        for la in e.get("layers", []):
            lines.append(f"  {la['name']}: {la['detail']} (~{la['est_instructions']} instructions for "
                         f"{la['macs']} MACs)")
        steps = e.get("ram_steps", [])
        if steps:
            lines.append("  RAM per step (activations + kernel scratch + stack reserve): " + ", ".join(
                f"{r['step']} {r['activations']}+{r['kernel_scratch']}+{r['stack_reserve']}={r['total']}"
                for r in steps))
        mp = e.get("memory_plan", {})
        if mp.get("patches"):
            p = mp["patches"][0]
            lines.append(f"  patch-based execution of {p['nodes'][0]}..{p['nodes'][-1]}: {p['grid'][0]}x{p['grid'][1]} "
                         f"tiles of {p['tile'][0]}x{p['tile'][1]} (plain plan {mp['tried'][0]['arena_bytes']} B of "
                         f"activations; this plan {mp['activation_bytes']} B, proven bound {mp['lower_bound_bytes']} B, "
                         f"arena with the kernel block {mp['arena_bytes']} B; "
                         f"{mp['extra_macs']} MACs recomputed)")
        if b:
            lines.append(f"rv32ec: flash {b['flash_used']} of {b['flash_bytes']} B (code {b['code']} B, constants "
                         f"{b['rodata']} B); RAM {b['ram_static']} of {b['ram_bytes']} B static + {b['stack']} B left "
                         f"for the stack (needs >= {e['ram_layout'].get('stack_min', K.STACK_MIN)})")
        elif e:
            lines.append(f"rv32ec: estimated flash {e['est_flash']} of {self.flash_bytes} B (not built)")
        return lines


def _expand_stages(graph, stages):
    """The graph as the firmware runs it: each patch stage's nodes replaced by the same nodes over the
    tile buffers (no padding, tile shapes; the tile loop, crop, mask and place are steps around them)."""
    g = graph.copy()
    for st in stages:
        names = [P.tile_tensor(st, i) for i in range(len(st.layers))]
        for name, la in zip(names, st.layers):
            g.types[name] = TensorType(g.types[la.tensor].dtype, (1, la.channels, la.th, la.tw), g.types[la.tensor].exp)
        i = next(j for j, n in enumerate(g.nodes) if n.name == st.nodes[0].name)
        g.nodes[i:i + len(st.nodes)] = [st.tile_node(j, names) for j in range(len(st.nodes))]
        for la in st.layers[1:-1]:
            del g.types[la.tensor]
    return g


def strides(shape):
    """Element strides of a contiguous tensor."""
    st = [1] * len(shape)
    for j in range(len(shape) - 2, -1, -1):
        st[j] = st[j + 1] * shape[j + 1]
    return st


def bstrides(shape, out):
    """Strides reading a tensor broadcast to `out` (right-aligned, 0 on broadcast axes)."""
    shape = (1,) * (len(out) - len(shape)) + tuple(shape)
    st = strides(shape)
    return [0 if d == 1 and o != 1 else v for d, o, v in zip(shape, out, st)]


def elf_sizes(elf):
    """Flash and RAM use of a linked image, from its section headers."""
    from elftools.elf.elffile import ELFFile
    with open(elf, "rb") as f:
        ef = ELFFile(f)
        sec = {s.name: s["sh_size"] for s in ef.iter_sections()}
        syms = {s.name: s["st_value"] for s in ef.get_section_by_name(".symtab").iter_symbols()}
    code = sec.get(".init", 0) + sec.get(".text", 0)
    rodata, data = sec.get(".rodata", 0), sec.get(".data", 0)
    static = syms["__stack_bottom"] - 0x20000000
    return {"flash_used": code + rodata + data, "code": code, "rodata": rodata, "data": data,
            "ram_static": static, "stack": syms["__stack_top"] - syms["__stack_bottom"]}
