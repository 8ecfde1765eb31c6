"""The RV32EC dense kernels: what each one computes, how its weights are laid out in flash, what it
costs (instructions, flash, RAM), and the code it is rendered from.

Three families, all free of multiplies (the CH32V003 has no M extension):

* `lut`  - group-code lookup tables (T-MAC / bitnet.cpp style) for ternary, pentary and int2 weights.
  For every group of g inputs a table of all V**g partial sums sum_k w_k*x_k is built once per
  inference (V = number of weight values); each output then needs one table lookup per group. The
  weight byte stored in flash is 2*code, the byte offset of the entry, so a lookup is
  lbu + add + lh + add: 4 instructions for g multiply-accumulates.
* `bits` - bit-serial lookup tables for any two's-complement weight (int8, int4, int2, ternary,
  pentary): one 16-entry table of subset sums per group of 4 inputs, one nibble of each bit plane of the
  weights indexes it, Horner over the planes. 5 instructions per nibble: one per MAC at 4 bits.
* `unrolled` - weight-specialised straight-line code, input-stationary: up to 9 accumulators live in
  registers, each input is loaded once per block and added/subtracted (shifted for |w| > 1, canonical
  signed digits) into the accumulators whose weight is non-zero. Zero weights emit nothing, and after a
  ReLU an input that is zero at run time skips its additions. Fastest, but ~2-4 bytes of code per
  non-zero weight.

The planner (`plan_layers`) picks, per layer, the fastest kernel such that the whole model fits the
target's flash and RAM budgets.
"""

import itertools
from dataclasses import dataclass, field

import numpy as np

from lbc.backends.rv32ec import asm

# weight dtype -> (smallest value, number of values)
VALUE_SET = {"ternary": (-1, 3), "pentary": (-2, 5), "i2": (-2, 4), "i4": (-8, 16), "i8": (-128, 256)}
# two's-complement bit planes the bit-serial kernel needs per dtype
PLANES = {"ternary": 2, "i2": 2, "pentary": 3, "i4": 4, "i8": 8}
# group sizes with an index byte 2*code <= 254 (int16 entries)
GROUPS = {"ternary": (4, 3, 2), "pentary": (3, 2), "i2": (3, 2)}
LUT_CHUNKS = (2, 3, 4, 6, 8, 12)
BITS_WORDS = (1, 2)
UNROLL_REGS = ("s0", "s1", "a2", "a3", "a4", "a5", "t1", "t2", "ra")
STACK_MIN = 128  # bytes reserved for the stack of dense-only graphs (generated kernels peak below 64 B)
STACK_C_HELPERS = 256  # with conv/pool/add the C helpers of lbc_rt.c run too (measured peak about 160 B)
C_HELPER_OPS = frozenset({"conv2d", "maxpool", "avgpool", "global_avgpool", "add"})


def stack_reserve(graph):
    """Bytes of RAM the plan must leave for the stack of this graph's firmware."""
    return STACK_C_HELPERS if any(n.op in C_HELPER_OPS for n in graph.nodes) else STACK_MIN


def conv_io(graph, n):
    """Bytes of the buffers a conv2d needs besides its tensors: one window patch and one output position
    per group (the `io` of its options)."""
    w = graph.types[n.inputs[1]].shape
    groups = int(n.attr("group"))
    if groups > 1 and w[1] == 1:  # depthwise: one window over every channel (see the target's _conv)
        return groups * int(np.prod(w[1:])) + w[0] + 4
    return int(np.prod(w[1:])) + w[0] // groups + 4


FIXED_FLASH = 280  # crt0, main, lbc_infer's frame, lbc_run/lbc_input/lbc_output


def ceil_div(a, b):
    return -(-a // b)


def fmt(lines):
    """Indent instructions, keep labels at the margin."""
    return [line if line.endswith(":") else "    " + line for line in lines]


# ------------------------------------------------------------------------------------ kernels

@dataclass
class Kernel:
    key: tuple
    name: str
    template: str
    prototype: str
    ctx: dict
    text: str = ""
    bytes: int = 0

    def render(self, env):
        if not self.text:
            self.text = env.get_template(f"asm/{self.template}.S.j2").render(k=self.ctx)
            self.bytes = asm.code_bytes(self.text.splitlines())
        return self.text


def table_builder(V, lo, g, interleaved=False):
    """A function filling consecutive tables, one per group of g inputs:
    T[code] = sum_k w_k * x_k for every code = sum_k (w_k - lo) * V**k, stored as int16 at byte offset
    2*code (or, interleaved, at 32*code with the next group's table 2 bytes further). Straight-line per
    table: one add/sub and one store per entry."""
    entry = 32 if interleaved else 2
    pool = ["t0", "t1", "t2", "a3", "a4", "a5", "s0", "s1", "ra"]
    vals = list(range(lo, lo + V))
    mags = sorted({abs(v) for v in vals} - {0})
    if not set(mags) <= {1, 2}:
        raise ValueError(f"table builder supports weights in -2..2, not {vals}")
    xs = [pool.pop(0) for _ in range(g)]
    mult = {1: xs}
    if 2 in mags:
        mult[2] = [pool.pop(0) for _ in range(g)]
    lvl = {L: pool.pop(0) for L in range(g - 1, -1, -1)}
    used = set(xs) | set(mult.get(2, [])) | set(lvl.values())
    saved = [r for r in ("ra", "s0", "s1") if r in used]
    body = [f"lb      {xs[k]}, {k}(a0)" for k in range(g)]
    if 2 in mags:
        body += [f"add     {mult[2][k]}, {xs[k]}, {xs[k]}" for k in range(g)]

    def rec(L, pv, code):
        for d, w in enumerate(vals):
            c = code + d * V**L
            if w == 0:
                r = pv
            elif pv is None:
                src = mult[abs(w)][L]
                if w > 0:
                    r = src
                else:
                    body.append(f"neg     {lvl[L]}, {src}")
                    r = lvl[L]
            else:
                body.append(f"{'add' if w > 0 else 'sub'}     {lvl[L]}, {pv}, {mult[abs(w)][L]}")
                r = lvl[L]
            if L == 0:
                body.append(f"sh      {r or 'zero'}, {entry * c}(a1)")
            else:
                rec(L - 1, r, c)

    rec(g - 1, None, 0)
    E = V**g
    step = 2 if interleaved else 2 * E
    loop = ["1:"] + body + [f"addi    a0, a0, {g}", f"addi    a1, a1, {step}", "bne     a1, a2, 1b"]
    frame = 4 * len(saved)
    pro = ([f"addi    sp, sp, -{frame}"] + [f"sw      {r}, {4 * i}(sp)" for i, r in enumerate(saved)]) if saved else []
    epi = ([f"lw      {r}, {4 * i}(sp)" for i, r in enumerate(saved)] + [f"addi    sp, sp, {frame}"]) if saved else []
    kind = {(-1, 3): "t", (-2, 5): "p", (-2, 4): "q", (0, 2): "b"}[(lo, V)]
    name = f"lbc_tab_{kind}{g}" + ("i" if interleaved else "")
    what = "subset sums" if (lo, V) == (0, 2) else f"sums for weights {lo}..{lo + V - 1}"
    if interleaved:
        what += ", interleaved: entry i of table t at 32*i + 2*t"
    proto = f"void {name}(const int8_t *x, int16_t *tab, int16_t *tab_end)"
    k = Kernel(("tab", V, lo, g, interleaved), name, "function", proto,
               {"name": name, "lines": fmt(pro + loop + epi + ["ret"]),
                "doc": f"{name}: tables of the {E} {what} of each group of {g} inputs.\n"
                       f" * {proto}: one table per group until tab_end.\n"
                       f" * {asm.count_insns(loop) - 1} instructions per table (inputs past the tensor end are only"
                       f" ever paired with\n * zero weights, so the entries that read them are never looked up)."})
    k.ctx["per_table"] = asm.count_insns(loop)
    return k


def mac_lut(C, stride, jn):
    name = f"lbc_mac_lut{C}_{stride}" + ("_x2" if jn == 2 else "")
    outs = [{"acc": 4 * u, "lookups": [{"w": u * C + c, "table": c * stride} for c in range(C)]} for u in range(jn)]
    per = (jn * (4 * C + 2) + 3) / jn
    return Kernel(("mac_lut", C, stride, jn), name, "mac_lut",
                  f"void {name}(const uint8_t *w, int32_t *acc, int32_t *acc_end, const int16_t *tab)",
                  {"name": name, "C": C, "stride": stride, "outs": outs, "w_step": jn * C, "acc_step": 4 * jn,
                   "per_output": per, "macs": "g*" + str(C),
                   "doc": f"{name}: group-code table lookups, {C} groups per output"
                          + (", two outputs per iteration" if jn == 2 else "")})


def mac_bits(P, W):
    name = f"lbc_mac_bits{P}_{W}"
    planes = []
    for p in range(P):
        words = []
        for wi in range(W):
            nibbles = []
            for kk in range(8):
                g = 8 * wi + kk
                ext = "slli    a5, t0, 1" if kk == 0 else f"srli    a5, t0, {4 * kk - 1}"
                nibbles.append({"extract": ext, "table": 32 * g, "first": wi == 0 and kk == 0})
            words.append({"offset": 4 * (p * W + wi), "nibbles": nibbles})
        planes.append({"first": p == 0, "sum": "a4" if p == 0 else "t1", "words": words})
    per = P * (W * 41 - 1) + 2 * (P - 1) + 6
    return Kernel(("mac_bits", P, W), name, "mac_bits",
                  f"void {name}(const uint32_t *w, int32_t *acc, int32_t *acc_end, const int16_t *tab)",
                  {"name": name, "P": P, "msb": 2 ** (P - 1), "planes": planes, "w_step": 4 * P * W,
                   "per_output": per, "macs": 32 * W,
                   "doc": f"{name}: bit-serial table lookups, {P} planes, {32 * W} inputs per output and chunk"})


def mac_bits_paired(P, W):
    """Like mac_bits, but one shift serves two nibbles: after the shift one nibble sits in bits 1..4
    (a table with 2-byte entries) and the next in bits 5..8 (a table interleaved with its neighbours,
    entries 32 bytes apart), and the SRAM base 0x20000000 is or-ed in so that one `and` with a mask
    register yields the entry's address: shift, or, and, and, lh, lh, add, add per two lookups. Needs
    the tables in the first 2 KB of SRAM (lh offsets are %lo of the absolute address); the linker
    asserts it. Lo tables hold inputs 0..16W-1 of the chunk, hi tables inputs 16W..32W-1."""
    name = f"lbc_mac_bitsp{P}_{W}"
    planes = []
    for p in range(P):
        words = []
        for wi in range(W):
            pairs = []
            for q in range(4):
                t = 4 * wi + q  # lo table t (inputs 4t..4t+3) and hi table t (inputs 16W + 4t..)
                ext = "slli    a5, t0, 1" if q == 0 else f"srli    a5, t0, {8 * q - 1}"
                pairs.append({"extract": ext, "lo": 32 * t, "hi": 2 * t, "first": wi == 0 and q == 0})
            words.append({"offset": 4 * (p * W + wi), "pairs": pairs})
        planes.append({"first": p == 0, "sum": "a4" if p == 0 else "t1", "words": words})
    per = P * (W * 33 - 1) + 2 * (P - 1) + 6
    return Kernel(("mac_bitsp", P, W), name, "mac_bits_paired",
                  f"void {name}(const uint32_t *w, int32_t *acc, int32_t *acc_end)",
                  {"name": name, "P": P, "msb": 2 ** (P - 1), "planes": planes, "w_step": 4 * P * W,
                   "per_output": per, "macs": 32 * W,
                   "doc": f"{name}: bit-serial table lookups, two nibbles per shift, {P} planes, {32 * W} inputs "
                          f"per output and chunk"})


def rq_channel(mbits):
    name = f"lbc_rq_channel{mbits}"
    bits = [{"mask": 1 << b, "shift": b} for b in range(mbits)]
    return Kernel(("rq_channel", mbits), name, "rq_channel",
                  f"void {name}(const int32_t *acc, int8_t *y, int n, const uint8_t *mk, int lo, int hi)",
                  {"name": name, "bits": bits, "mbits": mbits,
                   "doc": f"{name}: per-channel requantisation, multipliers below {1 << mbits}"})


def rq_tensor(ident, m, k, lo, hi):
    name = f"lbc_rq_{ident}"
    body = fmt(asm.requant_const("a4", "a5", m, k, lo, hi))
    return Kernel(("rq_tensor", m, k, lo, hi), name, "rq_tensor",
                  f"void {name}(const int32_t *acc, int8_t *y, int n)",
                  {"name": name, "m": m, "k": k, "lo": lo, "hi": hi, "body": body,
                   "doc": f"{name}: per-tensor requantisation"})


def rq_channel_cost(mbits):
    return 21 + 3 * mbits  # loads, rounding, clamp, store and loop + ~3 per multiplier bit


def rq_tensor_cost(m, k, lo, hi):
    return asm.count_insns(asm.requant_const("a4", "a5", m, k, lo, hi)) + 5


# ------------------------------------------------------------------------------------ unrolled

def unrolled_dense(ident, w, bias, m, k, lo, hi, skip_zero_inputs, inline=True, x_offsets=None, y_stride=1):
    """Straight-line input-stationary code for one row: void f(const int8_t *x, int8_t *y) requantising
    each accumulator in place (inline), or void f(const int8_t *x, int32_t *acc) leaving the raw sums
    for a shared requantisation routine (much less code per output). `x_offsets` (input i at byte
    x_offsets[i]) and `y_stride` (output j at byte j * y_stride) let a convolution read its window
    straight from the input tensor and write one pixel of every channel: no gather, no scatter."""
    N, K = w.shape
    nb = ceil_div(N, len(UNROLL_REGS))
    sizes = [N // nb + (1 if b < N % nb else 0) for b in range(nb)]
    lines = ["addi    sp, sp, -16", "sw      ra, 12(sp)", "sw      s0, 8(sp)", "sw      s1, 4(sp)",
             "sw      a1, 0(sp)", "mv      t0, a0"]
    j0 = 0
    for size in sizes:
        regs = UNROLL_REGS[:size]
        lines.append(f"# outputs {j0}..{j0 + size - 1}")
        for idx in range(size):
            lines.append(f"li      {regs[idx]}, {int(bias[j0 + idx]) if bias is not None else 0}")
        for i in range(K):
            terms = []
            for idx in range(size):
                v = int(w[j0 + idx, i])
                if v:
                    terms += [(pos, sign * (1 if v > 0 else -1), regs[idx]) for pos, sign in asm.csd(abs(v))]
            if not terms:
                continue
            lines.append(f"lb      a0, {i if x_offsets is None else x_offsets[i]}(t0)")
            skip = skip_zero_inputs and len(terms) >= 3
            if skip:
                lines.append("beqz    a0, 1f")
            for s in sorted({t[0] for t in terms}):
                src = "a0"
                if s:
                    lines.append(f"slli    a1, a0, {s}")
                    src = "a1"
                for pos, sign, r in terms:
                    if pos == s:
                        lines.append(f"{'add' if sign > 0 else 'sub'}     {r}, {r}, {src}")
            if skip:
                lines.append("1:")
        lines.append("lw      a0, 0(sp)")
        for idx in range(size):
            j = j0 + idx
            if inline:
                mj, kj = (m[j], k[j]) if len(m) > 1 else (m[0], k[0])
                lines += asm.requant_const(regs[idx], "a1", int(mj), int(kj), lo, hi)
                lines.append(f"sb      {regs[idx]}, {j * y_stride}(a0)")
            else:
                lines.append(f"sw      {regs[idx]}, {4 * j}(a0)")
        j0 += size
    lines += ["lw      ra, 12(sp)", "lw      s0, 8(sp)", "lw      s1, 4(sp)", "addi    sp, sp, 16", "ret"]
    name = f"lbc_{'conv' if x_offsets is not None else 'dense'}_{ident}" + ("" if inline else "_acc")
    n = asm.count_insns(lines)
    proto = f"void {name}(const int8_t *x, int8_t *y)" if inline else f"void {name}(const int8_t *x, int32_t *acc)"
    kern = Kernel(("unrolled", ident, inline), name, "function", proto,
                  {"name": name, "lines": fmt(lines),
                   "doc": f"{name}: weight-specialised dense {K} -> {N}, {len(sizes)} block(s) of register "
                          f"accumulators;\n * zero weights emit nothing"
                          f"{'; inputs that are zero at run time skip their additions' if skip_zero_inputs else ''}.\n"
                          f" * {proto}: at most {n} instructions per row"
                          + ("." if inline else ", then a shared routine requantises acc[].")})
    kern.ctx["instr"] = n
    return kern


# ------------------------------------------------------------------------------------ packing

def pack_lut(w, V, lo, g, C):
    """[chunk][output][group in chunk] bytes, each 2 * sum_k (w_k - lo) * V**k; padding weights are 0."""
    N, K = w.shape
    nch = ceil_div(ceil_div(K, g), C)
    wp = np.zeros((N, nch * C * g), dtype=np.int64)
    wp[:, :K] = w
    digits = wp.reshape(N, nch, C, g) - lo
    code = sum(digits[..., k] * V**k for k in range(g))
    return (2 * code).transpose(1, 0, 2).reshape(-1).astype(np.uint8), nch


def pack_bits(w, P, W, paired=False):
    """[chunk][output][plane, most significant first][word] uint32; word = 8 nibbles, nibble k (bits
    4k..4k+3) = bit `plane` of the 4 weights of group 8*word + k, weight i of the group in bit i.
    Paired layout: nibble 2q of word wi is group 4*wi + q, nibble 2q+1 is group 4W + 4*wi + q."""
    N, K = w.shape
    span = 32 * W
    nch = ceil_div(K, span)
    wp = np.zeros((N, nch * span), dtype=np.int64)
    wp[:, :K] = w
    u = wp & ((1 << P) - 1)
    words = np.zeros((nch, N, P, W), dtype=np.uint64)
    grp = u.reshape(N, nch, W, 8, 4)
    if paired:
        g = u.reshape(N, nch, 2, W, 4, 4)  # half (lo inputs / hi inputs), word, q, input
        grp = np.stack([g[:, :, 0], g[:, :, 1]], axis=4).reshape(N, nch, W, 8, 4)
    for pi, b in enumerate(range(P - 1, -1, -1)):
        bit = (grp >> b) & 1
        nib = sum(bit[..., i] << i for i in range(4))  # N, nch, W, 8
        word = sum(nib[..., kk].astype(np.uint64) << np.uint64(4 * kk) for kk in range(8))
        words[:, :, pi, :] = word.transpose(1, 0, 2)
    return words.reshape(-1).astype(np.uint32), nch


# ------------------------------------------------------------------------------------ options

@dataclass
class Option:
    kind: str  # unrolled | lut | bits
    params: dict
    instr: float  # estimated instructions per inference
    flash: int  # private flash bytes (weights, constants, glue) besides the code of `private` kernels
    ram: int  # scratch bytes (accumulators + tables)
    acc: int = 0  # accumulator bytes
    tab: int = 0  # table bytes
    shared: tuple = ()  # kernels whose code is shared between layers
    private: tuple = ()  # kernels only this layer uses
    summary: str = ""
    io: int = 0  # convolution patch + output buffer bytes
    parts: tuple = ()  # a convolution's per-group options


@dataclass
class DenseLayer:
    node: object
    ident: str
    w: np.ndarray  # [N, K] int
    dtype: str
    bias: np.ndarray | None
    m: tuple
    k: tuple
    lo: int
    hi: int
    rows: int
    skip_zero_inputs: bool
    options: list = field(default_factory=list)
    macs_per_row: int = None  # the real multiply-accumulates when w is block-diagonal (depthwise)

    @property
    def N(self):
        return self.w.shape[0]

    @property
    def K(self):
        return self.w.shape[1]

    @property
    def macs(self):
        return (self.macs_per_row or self.N * self.K) * self.rows


def bias_bytes(bias):
    if bias is None:
        return 0
    fits16 = np.all((bias >= -32768) & (bias <= 32767))
    return len(bias) * (2 if fits16 else 4)


def requant_option(layer, env, shared):
    """(instructions, private flash, shared kernels, private kernels) of requantising acc[] into y."""
    if len(layer.m) == 1:
        kern = rq_tensor(layer.ident, int(layer.m[0]), int(layer.k[0]), layer.lo, layer.hi)
        kern.render(env)
        return layer.N * rq_tensor_cost(int(layer.m[0]), int(layer.k[0]), layer.lo, layer.hi) + 6, 0, (), (kern,)
    mbits = max(1, max(int(v) for v in layer.m).bit_length())
    kern = shared(("rq_channel", mbits), lambda: rq_channel(mbits))
    return layer.N * rq_channel_cost(mbits) + 10, 2 * layer.N, (kern,), ()


def layer_options(layer, env, flash_budget, ram_free, force=None, cache=None, low_tables=False):
    """Every kernel that can run this layer, with its estimated cost. `force` restricts the choice to one
    family: lut (bits where the dtype has no group code), bits, bitsp (paired bits) or unrolled."""
    cache = {} if cache is None else cache
    opts = []
    N, K, rows = layer.N, layer.K, layer.rows
    init_instr = 4 * N + 8
    glue = 90
    bflash = bias_bytes(layer.bias)

    def shared(key, make):
        if key not in cache:
            cache[key] = make()
            cache[key].render(env)
        return cache[key]

    rq_instr, rq_flash, rq_shared, rq_private = requant_option(layer, env, shared)

    if layer.dtype in GROUPS and force in (None, "lut"):
        lo, V = VALUE_SET[layer.dtype]
        for g in GROUPS[layer.dtype]:
            E = V**g
            stride = 2 * E
            builder = shared(("tab", V, lo, g, False), lambda: table_builder(V, lo, g))
            G = ceil_div(K, g)
            for C in LUT_CHUNKS:
                if (C - 1) * stride > 2047 or (C > G and C != LUT_CHUNKS[0]):
                    continue
                nch = ceil_div(G, C)
                ram = C * stride + 4 * N
                if ram > ram_free:
                    continue
                jn = 2 if N % 2 == 0 else 1
                mac = shared(("mac_lut", C, stride, jn), lambda: mac_lut(C, stride, jn))
                per_chunk = C * builder.ctx["per_table"] + 10 + N * mac.ctx["per_output"] + 8
                instr = rows * (nch * per_chunk + init_instr + rq_instr)
                flash = nch * N * C + bflash + rq_flash + glue
                opts.append(Option("lut", {"V": V, "lo": lo, "g": g, "C": C, "jn": jn, "chunks": nch, "stride": stride},
                                   instr, flash, ram, 4 * N, C * stride, (builder, mac) + rq_shared, rq_private,
                                   f"lut g={g} ({E} entries) x {C} groups/chunk"))
    if force in (None, "bits") or (force == "lut" and layer.dtype not in GROUPS):
        P = PLANES[layer.dtype]
        builder = shared(("tab", 2, 0, 4, False), lambda: table_builder(2, 0, 4))
        for W in BITS_WORDS:
            nch = ceil_div(K, 32 * W)
            if W > 1 and ceil_div(K, 32) < 2:
                continue
            ram = 8 * W * 32 + 4 * N
            if ram > ram_free:
                continue
            mac = shared(("mac_bits", P, W), lambda: mac_bits(P, W))
            per_chunk = 8 * W * builder.ctx["per_table"] + 10 + N * mac.ctx["per_output"] + 8
            instr = rows * (nch * per_chunk + init_instr + rq_instr)
            flash = nch * N * P * W * 4 + bflash + rq_flash + glue
            opts.append(Option("bits", {"P": P, "W": W, "chunks": nch}, instr, flash, ram, 4 * N, 8 * W * 32,
                               (builder, mac) + rq_shared, rq_private, f"bits {P} planes x {8 * W} groups/chunk"))
    if force in (None, "bitsp") and low_tables:
        P = PLANES[layer.dtype]
        blo = shared(("tab", 2, 0, 4, False), lambda: table_builder(2, 0, 4))
        bhi = shared(("tab", 2, 0, 4, True), lambda: table_builder(2, 0, 4, True))
        for W in (2, 4):
            if W > 2 and ceil_div(K, 64) < 2:
                continue
            nch = ceil_div(K, 32 * W)
            tab = 128 * W + 512
            ram = tab + 4 * N
            if ram > ram_free:
                continue
            mac = shared(("mac_bitsp", P, W), lambda: mac_bits_paired(P, W))
            per_chunk = 8 * W * blo.ctx["per_table"] + 16 + N * mac.ctx["per_output"] + 12
            instr = rows * (nch * per_chunk + init_instr + rq_instr)
            flash = nch * N * P * W * 4 + bflash + rq_flash + glue + 16
            opts.append(Option("bitsp", {"P": P, "W": W, "chunks": nch}, instr, flash, ram, 4 * N, tab,
                               (blo, bhi, mac) + rq_shared, rq_private,
                               f"bits {P} planes x {8 * W} groups/chunk, paired nibbles"))
    if force in (None, "unrolled"):
        # a cheap bound first: ~2 bytes of code per non-zero weight
        fits_imm = K <= 2048 and 4 * N <= 2048  # lb/sb/sw offsets are 12-bit immediates
        if fits_imm and (2 * int(np.count_nonzero(layer.w)) < flash_budget or force == "unrolled"):
            for inline in (True, False):
                kern = unrolled_dense(layer.ident, layer.w, layer.bias, layer.m, layer.k, layer.lo, layer.hi,
                                      layer.skip_zero_inputs, inline)
                kern.render(env)
                if inline:
                    opts.append(Option("unrolled", {"inline": True}, rows * (kern.ctx["instr"] + 4), 40, 0, 0, 0, (),
                                       (kern,), "unrolled, weight-specialised"))
                else:
                    opts.append(Option("unrolled", {"inline": False}, rows * (kern.ctx["instr"] + 4 + rq_instr),
                                       40 + rq_flash, 4 * N, 4 * N, 0, rq_shared, (kern,) + rq_private,
                                       "unrolled, weight-specialised, shared requantisation"))
    return opts


@dataclass
class ConvUnit:
    """A conv2d: one DenseLayer per group over the im2col patch of each output position."""
    node: object
    ident: str
    groups: list
    taps: list  # (offset, dy, dx) per patch element
    geom: dict
    options: list = field(default_factory=list)

    @property
    def N(self):
        return sum(g.N for g in self.groups)

    @property
    def K(self):
        return self.groups[0].K

    @property
    def dtype(self):
        return self.groups[0].dtype

    @property
    def w(self):
        return np.concatenate([g.w for g in self.groups])

    @property
    def macs(self):
        return sum(g.macs for g in self.groups)


def direct_option(unit, env, flash_budget):
    """A convolution without padding (every window inside the input, e.g. inside a patch stage) and one
    group: an unrolled kernel per output pixel that reads the window at its tap offsets and stores each
    channel at its plane - no gather, no scatter, no buffers."""
    gl = unit.groups[0]
    offs = [t[0] for t in unit.taps]
    ystride = unit.geom["OH"] * unit.geom["OW"]
    if len(unit.groups) != 1 or any(unit.geom[p] for p in ("pt", "pl")) or not unit.geom.get("no_pad") \
            or max(offs) > 2047 or (gl.N - 1) * ystride > 2047 or 2 * int(np.count_nonzero(gl.w)) >= flash_budget:
        return []
    kern = unrolled_dense(unit.ident, gl.w, gl.bias, gl.m, gl.k, gl.lo, gl.hi, gl.skip_zero_inputs, True, offs,
                          ystride)
    kern.render(env)
    return [Option("unrolled", {"inline": True, "direct": True}, gl.rows * (kern.ctx["instr"] + 6), 40, 0, 0, 0,
                   (), (kern,), "unrolled, weight-specialised, reads the window in place")]


def combine_groups(unit, per_group):
    """Options for a convolution: the same kernel family for every group, plus the patch gather and the
    strided scatter of each output position."""
    rows = unit.groups[0].rows
    keyed = [{(o.kind, o.summary): o for o in opts} for opts in per_group]
    out = []
    for key in keyed[0]:
        if not all(key in k for k in keyed):
            continue
        parts = tuple(k[key] for k in keyed)
        shared = {}
        for o in parts:
            for kern in o.shared:
                shared[kern.key] = kern
        extra = rows * sum(10 * g.K + 4 * g.N + 30 for g in unit.groups)
        out.append(Option(key[0], dict(parts[0].params), sum(o.instr for o in parts) + extra,
                          sum(o.flash for o in parts) + 4 * unit.K + 160, max(o.ram for o in parts),
                          max(o.acc for o in parts), max(o.tab for o in parts), tuple(shared.values()),
                          tuple(k for o in parts for k in o.private), parts[0].summary,
                          io=unit.K + max(g.N for g in unit.groups) + 4, parts=parts))
    return out


@dataclass
class Plan:
    layers: list
    choice: list  # Option per layer
    flash: int  # estimated flash bytes
    ram_scratch: int
    acc_bytes: int
    tab_bytes: int
    io_bytes: int
    instr: float
    kernels: list  # every Kernel to emit, shared ones once


def _evaluate(layers, choice, fixed_flash):
    shared = {}
    flash = fixed_flash
    for opt in choice:
        flash += opt.flash + sum(k.bytes for k in opt.private)
        for k in opt.shared:
            shared[k.key] = k
    flash += sum(k.bytes for k in shared.values())
    acc = max([o.acc for o in choice] + [0])
    tab = max([o.tab for o in choice] + [0]) + max([o.io for o in choice] + [0])
    return flash, acc, tab, sum(o.instr for o in choice), shared


def _fits(choice, ram_free, io_free):
    """Do the layers' scratch buffers fit: accumulators, tables and convolution buffers in ram_free, or
    (io_free given) accumulators and tables in ram_free and the convolution buffers in io_free?"""
    acc = max([o.acc for o in choice] + [0])
    tab = max([o.tab for o in choice] + [0])
    io = max([o.io for o in choice] + [0])
    if io_free is None:
        return acc + tab + io <= ram_free
    return acc + tab <= ram_free and io <= io_free


def prune(options, keep=2):
    """Per kernel family (kind and table shape), the `keep` fastest variants; they differ only in how
    many groups a chunk holds, i.e. in RAM, which is shared (max) between layers."""
    fam = {}
    for o in options:
        key = (o.kind, o.params.get("g"), o.params.get("inline"))
        fam.setdefault(key, []).append(o)
    out = []
    for group in fam.values():
        out.extend(sorted(group, key=lambda o: (o.instr, o.ram))[:keep])
    return out


def plan_layers(layers, flash_budget, fixed_flash, ram_free, io_free=None):
    """Fastest combination of per-layer kernels within the flash budget (exhaustive when small, else
    greedy upgrades by instructions saved per byte). Returns (plan, smallest flash any plan needs).
    Scratch RAM: see `_fits`."""
    if not layers:
        return Plan([], [], fixed_flash, 0, 0, 0, 0, 0, []), fixed_flash
    for layer in layers:
        if not layer.options:
            return None, None
        layer.options = prune(layer.options)
    space = 1
    for layer in layers:
        space *= len(layer.options)
    best = None
    smallest = None
    if space <= 30000:
        for choice in itertools.product(*[layer.options for layer in layers]):
            flash, acc, tab, instr, shared = _evaluate(layers, choice, fixed_flash)
            if not _fits(choice, ram_free, io_free):
                continue
            smallest = flash if smallest is None else min(smallest, flash)
            if flash <= flash_budget and (best is None or (instr, flash) < (best[3], best[0])):
                best = (flash, acc, tab, instr, shared, choice)
    else:
        choice = [min(layer.options, key=lambda o: (o.flash + sum(k.bytes for k in o.private + o.shared), o.instr))
                  for layer in layers]
        flash, acc, tab, instr, shared = _evaluate(layers, choice, fixed_flash)
        smallest = flash
        if flash <= flash_budget:
            improved = True
            while improved:
                improved = False
                cands = []
                for li, layer in enumerate(layers):
                    for o in layer.options:
                        trial = list(choice)
                        trial[li] = o
                        f, a, t, i, s = _evaluate(layers, trial, fixed_flash)
                        if f <= flash_budget and _fits(trial, ram_free, io_free) and i < instr:
                            cands.append(((instr - i) / max(f - flash, 1), trial))
                if cands:
                    choice = max(cands, key=lambda c: c[0])[1]
                    flash, acc, tab, instr, shared = _evaluate(layers, choice, fixed_flash)
                    improved = True
            best = (flash, acc, tab, instr, shared, tuple(choice))
    if best is None:
        return None, smallest
    flash, acc, tab, instr, shared, choice = best
    kernels = list(shared.values())
    for o in choice:
        kernels.extend(o.private)
    io = max([o.io for o in choice] + [0])
    return Plan(layers, list(choice), flash, acc + tab, acc, tab - io, io, instr, kernels), smallest
