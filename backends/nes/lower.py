"""Lowering of an integer graph to 6502 code (ca65 syntax) for the NES target.

Python holds every value here; the templates in templates/ only lay the file out. The 6502 has no
multiply, so a dense layer becomes, per output neuron, one of three kernels:

* **unrolled** (code specialised to the weights): the weights are split into bit planes of |w|
  (ternary and int2/pentary/int4 alike); each plane is a straight run of `adc u_i` / `sbc u_i` on the
  *unsigned* inputs u = x + o (o = 128 for signed tensors, 0 after a ReLU), zero weights emit
  nothing. The accumulator low byte lives in A and the carries are counted in X:

      adc u_i ; bcc *+3 ; inx        (6 cycles, 7 when it carries; 5 bytes)
      sbc u_i ; bcs *+3 ; dex

  The carry that `inx` leaves set leaks +1 into the next add; the leaks are exactly accounted for
  by one fix-up per plane (`stx t ; sbc t ; bcs *+3 ; dex`), which is valid when the value
  Z = 255*X0 + S + C0 stays in [2, 65279] (CHAIN_ZMIN, CHAIN_ZMAX) for every possible input (proved per neuron from the
  weight signs and the input range, by choosing the start value X0). See `_chain_math` below.
* **loop** (loops over packed weights): per neuron and plane a bit mask of the positive and of the
  negative weights (2 bits per weight and plane), walked by one small routine per layer that adds
  into a 16- or 24-bit zero-page accumulator. Slower (~25 cycles per weight) but ~2 bits per weight
  of ROM instead of ~5 bytes per nonzero weight.
* **table** (partial-sum tables, see "table kernel" below): per layer, the sums of every subset of each
  group of g inputs go into RAM; each neuron then does one lookup and one 16-bit add per group and bit
  plane (~26 cycles per 4 inputs and plane), from a routine shared by the layer's neurons.

The accumulator is never allowed to wrap: its width (16 or 24 bits) is chosen per layer from the
exact range of sum(w*u) over all inputs, and `check`/emit refuse what does not fit.

Requantisation clamp(((acc*m + r) >> k), lo, hi) is specialised per neuron: the two clamp
thresholds are compared on the raw accumulator, and in the middle region y = q0 + (D*m + c) >> k with
D = raw - B, where the compile-time base B is chosen so that c (the constant remainder) is a multiple
of 2**k (or of 256), so only the high bytes of D*m are needed. D*m uses quarter-square tables
(a*b = f(a+b) - f(|a-b|), f(n) = n*n/4) addressed with the neuron's m folded into the table address
(`lda SQL+m,y`), so no multiply setup is executed. Every plan is checked in Python over the whole
raw range before any code is emitted.
"""

import re
from dataclasses import dataclass, field

import numpy as np

from lbc.backends.base import comment_safe
from lbc.errors import InternalError, TargetError

# ------------------------------------------------------------------------------------- assembler


class Code:
    """ca65 source lines with the exact byte size of every instruction.

    Each item is (text, size, branch_at, dead): `branch_at` is the offset of a branch opcode inside
    the item, `dead` marks a place that is never executed (after a jmp/rts), where `layout` may put
    padding bytes."""

    def __init__(self):
        self.items = []
        self.size = 0

    @property
    def lines(self):
        return [t for t, _, _, dead in self.items if not dead]

    def ins(self, text, size, branch_at=None):
        self.items.append(("    " + text, size, branch_at, False))
        self.size += size

    def raw(self, text, size=0):
        self.items.append((text, size, None, False))
        self.size += size

    def label(self, name):
        self.raw(f"{name}:")

    def comment(self, text):
        self.raw(f"    ; {comment_safe(text, 100)}")

    def dead(self):
        self.items.append(("", 0, None, True))

    def extend(self, other):
        self.items.extend(other.items)
        self.size += other.size

    # addressing-mode helpers (sizes are those of the 6502 encodings)
    def imp(self, m):
        self.ins(m, 1)

    def imm(self, m, v):
        self.ins(f"{m} #${int(v) & 0xFF:02X}", 2)

    def imms(self, m, expr):
        self.ins(f"{m} #{expr}", 2)

    def zp(self, m, sym):
        self.ins(f"{m} {sym}", 2)

    def mem(self, m, loc):
        self.ins(f"{m} {loc.expr}", 2 if loc.zp else 3)

    def absx(self, m, expr, zp=False):
        self.ins(f"{m} {expr}", 2 if zp else 3)

    def br(self, m, target):
        self.ins(f"{m} {target}", 2, branch_at=0)

    def jmp(self, target):
        self.ins(f"jmp {target}", 3)

    def jsr(self, target):
        self.ins(f"jsr {target}", 3)


def _bad(pos):
    return pos % 256 >= 254


def layout(code, offset):
    """Lines of `code` placed at `offset` from a page start, with no branch opcode in the last two
    bytes of a page.

    Why: sim65 (cc65 2.19) charges a taken branch's page-crossing cycle by comparing the branch's own
    address with the target, the 6502 (and py65) the address after the branch; the two differ only for
    branches at $xxFE/$xxFF. Keeping branches off those bytes makes sim65's counts exact. The padding
    goes where the code is never executed (`dead` places, e.g. after a requant's `jmp`), so it costs no
    cycles; only when no such place precedes a conflict a `nop` (2 cycles) is executed instead.
    Returns (lines, end offset, padding bytes, nops)."""
    segs, cur = [], []
    for it in code.items:
        if it[3]:
            segs.append(cur)
            cur = []
        else:
            cur.append(it)
    segs.append(cur)
    out, off, pad_total, nops = [], offset, 0, 0
    for si, seg in enumerate(segs):
        if si:
            for pad in range(16):
                o, ok = off + pad, True
                for text, size, br, _ in seg:
                    if br is not None and _bad(o + br):
                        ok = False
                        break
                    o += size
                if ok:
                    break
            else:
                pad = 0
            if pad:
                out.append(f"    .res {pad}, $EA   ; padding (never executed): keeps branches off $xxFE/$xxFF")
                off += pad
                pad_total += pad
        for text, size, br, _ in seg:
            while br is not None and _bad(off + br):
                out.append("    nop   ; keeps the next branch off $xxFE/$xxFF (see layout)")
                off += 1
                nops += 1
            out.append(text)
            off += size
    return out, off, pad_total, nops


@dataclass(frozen=True)
class Loc:
    expr: str
    zp: bool
    y: bool = False  # indexed by Y (expr,y: absolute, 3 bytes)

    @property
    def operand(self):
        return f"{self.expr},y" if self.y else self.expr

    @property
    def bytes(self):
        return 3 if self.y or not self.zp else 2


class Tmp:
    """Zero-page scratch bytes used by the generated code (reserved in model.s)."""
    t = "lbc_t"
    h = "lbc_h"
    t0 = "lbc_t0"
    t1 = "lbc_t1"
    a0 = "lbc_a0"
    a1 = "lbc_a1"
    a2 = "lbc_a2"
    mp = "lbc_mp"
    mn = "lbc_mn"
    wp = "lbc_wp"
    pm, pmh, pn, pnh = "lbc_pm", "lbc_pmh", "lbc_pn", "lbc_pnh"
    ip, op, rc, cc = "lbc_ip", "lbc_op", "lbc_rc", "lbc_cc"  # window loops: input/output index, counters
    ALL = (("lbc_t", 1), ("lbc_h", 1), ("lbc_t0", 1), ("lbc_t1", 1), ("lbc_a0", 1), ("lbc_a1", 1),
           ("lbc_a2", 1), ("lbc_mp", 1), ("lbc_mn", 1), ("lbc_wp", 2), ("lbc_pm", 2), ("lbc_pmh", 2),
           ("lbc_pn", 2), ("lbc_pnh", 2), ("lbc_ip", 1), ("lbc_op", 1), ("lbc_rc", 1), ("lbc_cc", 1))
    BYTES = 23

    @classmethod
    def used(cls, lines):
        """The scratch bytes the given code refers to."""
        text = "\n".join(lines)
        return tuple((n, b) for n, b in cls.ALL if re.search(rf"\b{n}\b", text))


SQL, SQH, NQL, NQH = "lbc_sqlo", "lbc_sqhi", "lbc_nqlo", "lbc_nqhi"

# The two instructions of the unrolled kernels, as ca65 macros (one source line per nonzero weight).
MACROS = """; PLUS u / MINUS u: A +/-= u, the carry (borrow) counted in X: 6 cycles, 7 when it carries, 5 bytes
; (one more cycle and byte when u is not in the zero page). The carry left set leaks +1 into the next
; add; the fix-up after each run (stx lbc_t / sbc lbc_t / bcs *+3 / dex) accounts for all of them.
.macro PLUS u
    adc u
    bcc *+3
    inx
.endmacro
.macro MINUS u
    sbc u
    bcs *+3
    dex
.endmacro
; PLUSY u / MINUSY u: the same on u,y (the window kernels: Y = the window's position): 7 cycles, 8 when
; it carries (one more when u+y crosses a page), 6 bytes
.macro PLUSY u
    adc u,y
    bcc *+3
    inx
.endmacro
.macro MINUSY u
    sbc u,y
    bcs *+3
    dex
.endmacro"""
TABLE_BYTES = 4 * 512

# ------------------------------------------------------------------------------------- requant


def canonical_mk(m, k):
    """Same function, odd m (or k = 0): (acc*2m' + 2**(k-1)) >> k == (acc*m' + 2**(k-2)) >> (k-1)."""
    m, k = int(m), int(k)
    while m and m % 2 == 0 and k > 0:
        m //= 2
        k -= 1
    return m, k


def _rnd(k):
    return (1 << (k - 1)) if k > 0 else 0


def requant_ref(acc, m, k, lo, hi):
    acc = np.asarray(acc, dtype=np.int64)
    return np.clip((acc * m + _rnd(k)) >> k, lo, hi)


@dataclass
class RequantPlan:
    kind: str  # const | thresholds | multiply
    value: int = 0  # const: stored byte
    thresholds: list = field(default_factory=list)  # [(T, stored byte for raw >= T)], ascending T
    below: int = 0  # thresholds: stored byte for raw < first T
    m: int = 0
    k: int = 0
    B: int = 0  # multiply: D = raw - B
    L1: int | None = None  # raw < L1 -> lo
    DH: int | None = None  # D >= DH -> hi
    lo_s: int = 0
    hi_s: int = 0
    c_hi: int = 0  # added to floor(D*m/256) before the shift (k >= 8)
    q: int = 0  # added (mod 256) to the shifted value: q0 + output offset
    dmax: int = 0


def plan_requant(rmin, rmax, K, m, k, lo, hi, o_out):
    """Plan y = clamp(((raw+K)*m + r) >> k, lo, hi) for raw in [rmin, rmax] (stored as (y+o_out)&255)."""
    m, k = canonical_mk(m, k)
    r = _rnd(k)

    def F(raw):
        return ((raw + K) * m + r) >> k

    def Fc(raw):
        return min(max(F(raw), lo), hi)

    def st(v):
        return (int(v) + o_out) & 0xFF

    if m == 0 or Fc(rmin) == Fc(rmax):
        return RequantPlan("const", value=st(Fc(rmin)))

    def first_ge(t):  # smallest raw with F(raw) >= t
        return -((r - (t << k)) // m) - K

    L1 = first_ge(lo + 1)  # raw < L1  <=>  F(raw) <= lo
    RH = first_ge(hi)  # raw >= RH  <=>  F(raw) >= hi
    need_lo, need_hi = L1 > rmin, RH <= rmax
    L, H = max(L1, rmin), min(RH - 1, rmax)
    levels = []  # (first raw, stored value)
    if need_lo:
        levels.append((rmin, st(lo)))
    if L <= H:
        if F(H) - F(L) + 1 + need_lo + need_hi <= 4:
            for v in range(F(L), F(H) + 1):
                levels.append((max(first_ge(v), L), st(v)))
        else:
            levels = None
    if levels is not None:
        if need_hi:
            levels.append((max(RH, rmin), st(hi)))
        levels[0] = (rmin, levels[0][1])
        return RequantPlan("thresholds", below=levels[0][1], thresholds=levels[1:])

    # multiply path: pick B <= L so that c = E mod 2**j == 0 (j = k, else 8 when k >= 8)
    def base_for(j):
        if k == 0:
            return L
        mod = 1 << j
        inv = pow(m, -1, mod)
        b0 = (-K - r * inv) % mod
        return L - ((L - b0) % mod)

    B = None
    for j in ((k, 8) if k > 8 else (k,)):
        cand = base_for(j)
        # D = raw - B must fit 16 bits up to H; with a 16-bit raw (no third byte to test) up to rmax too,
        # since the high clamp compares D itself
        if H - cand <= 0xFFFF and (rmax > 0xFFFF or rmax - cand <= 0xFFFF):
            B = cand
            break
    if B is None:
        raise TargetError(f"requantisation scale {m}/2^{k} is too small for a 16-bit multiplier input "
                          f"over an accumulator range of {rmax - rmin + 1} values")
    E = (B + K) * m + r
    q0 = E >> k
    c = E - (q0 << k)
    if k >= 8:
        if c % 256:
            raise InternalError("requant base does not zero the low byte")
        c_hi = c >> 8
        if (H - B) * m // 256 + c_hi > 0xFFFF:
            raise TargetError(f"requantisation {m}/2^{k} needs more than 16 bits after the multiply")
    else:
        if c:
            raise InternalError("requant base does not zero the remainder")
        c_hi = 0
    return RequantPlan("multiply", m=m, k=k, B=B, L1=L1 if need_lo else None,
                       DH=(RH - B) if need_hi else None, lo_s=st(lo), hi_s=st(hi), c_hi=c_hi,
                       q=st(q0), dmax=H - B)


def simulate_requant(p, raw):
    """What the emitted code computes for each raw value (numpy int64 array) -> stored byte."""
    raw = np.asarray(raw, dtype=np.int64)
    if p.kind == "const":
        return np.full(raw.shape, p.value, dtype=np.int64)
    if p.kind == "thresholds":
        out = np.full(raw.shape, p.below, dtype=np.int64)
        for t, v in p.thresholds:
            out = np.where(raw >= t, v, out)
        return out
    D = raw - p.B
    if raw.size and raw.max() <= 0xFFFF:  # a 16-bit raw: the code forms D modulo 2**16
        D = D & 0xFFFF
    if p.k >= 8:
        hi16 = (D * p.m) >> 8
        y = ((hi16 + p.c_hi) >> (p.k - 8)) & 0xFF
    else:
        y = ((D * p.m) >> p.k) & 0xFF
    y = (y + p.q) & 0xFF
    if p.DH is not None:
        y = np.where(D >= p.DH, p.hi_s, y)
    if p.L1 is not None:
        y = np.where(raw < p.L1, p.lo_s, y)
    return y


def verify_requant(p, rmin, rmax, K, m, k, lo, hi, o_out, rng=None):
    """Check the plan on every raw value (or on a dense sample plus the edges when the range is huge)."""
    n = rmax - rmin + 1
    if n <= 1 << 18:
        raw = np.arange(rmin, rmax + 1, dtype=np.int64)
    else:
        rng = rng or np.random.default_rng(0)
        pts = [rmin, rmax]
        for t in (p.L1, p.B, (p.B + p.DH) if p.DH is not None else None):
            if t is not None:
                pts += [t - 2, t - 1, t, t + 1]
        raw = np.unique(np.clip(np.concatenate([np.array(pts, dtype=np.int64),
                                                rng.integers(rmin, rmax + 1, 1 << 16)]), rmin, rmax))
    want = (requant_ref(raw + K, m, k, lo, hi) + o_out) & 0xFF
    got = simulate_requant(p, raw)
    bad = np.nonzero(want != got)[0]
    if len(bad):
        i = bad[0]
        raise InternalError(f"requant plan wrong at raw={raw[i]}: want {want[i]}, got {got[i]} ({p})")


def _cmp16_lt(c, xreg, lreg, value, target, ok):
    """Branch to `target` when (xreg:lreg) < value (16-bit unsigned). xreg is X, lreg A or Y."""
    hi, lo = (value >> 8) & 0xFF, value & 0xFF
    cpl = "cmp" if lreg == "a" else "cpy"
    c.imm("cpx", hi)
    c.br("bcc", target)
    if lo:
        c.br("bne", ok)
        c.imm(cpl, lo)
        c.br("bcc", target)
        c.label(ok)


def _cmp16_ge(c, lreg, value, target, ok):
    hi, lo = (value >> 8) & 0xFF, value & 0xFF
    cpl = "cmp" if lreg == "a" else "cpy"
    c.imm("cpx", hi)
    if lo:
        c.br("bcc", ok)
        c.br("bne", target)
        c.imm(cpl, lo)
        c.br("bcs", target)
        c.label(ok)
    else:
        c.br("bcs", target)


SHIFT_TABLE = "lbc_shl"  # lbc_shl<n>[x] = (x << n) & 255, 256 bytes each, page aligned


def shift_table_used(k, call):
    """The left-shift table an inline requant with this k uses (None: plain shifts)."""
    s = k - 8 if k >= 8 else k
    if call or not 1 <= s <= 6:
        return None
    return 8 - s


def emit_shift(c, s, table=False):
    """(X:A) >> s, low 8 bits into A. With `table`: A >> s, OR the table lbc_shl<8-s>[X] (1 <= s <= 6)."""
    if table and 1 <= s <= 6:
        for _ in range(s):
            c.imp("lsr a")
        c.ins(f"ora {SHIFT_TABLE}{8 - s},x", 3)
        return
    if s <= 0:
        return
    if s <= 4:
        c.zp("stx", Tmp.t)
        for _ in range(s):
            c.zp("lsr", Tmp.t)
            c.imp("ror a")
    elif s < 8:
        c.zp("stx", Tmp.t)
        for _ in range(8 - s):
            c.imp("asl a")
            c.zp("rol", Tmp.t)
        c.zp("lda", Tmp.t)
    elif s < 16:
        c.imp("txa")
        for _ in range(s - 8):
            c.imp("lsr a")
    else:
        c.imm("lda", 0)


MUL_HI, MUL_LO = "lbc_mulh", "lbc_mull"


def emit_mul_routines(c):
    """The shared multiply of the compact requant: A = m, X = D_h, Y = D_l.

    lbc_mulh: (X:A) = floor(D*m / 256);  lbc_mull: (X:A) = D*m mod 65536.
    The tables are addressed through zero-page pointers whose low bytes are m and 255-m (their high
    bytes are set once by lbc_run)."""
    for name, high in ((MUL_HI, True), (MUL_LO, False)):
        c.dead()
        c.label(name)
        for ptr in (Tmp.pm, Tmp.pmh):
            c.zp("sta", ptr)
        c.imm("eor", 0xFF)
        for ptr in (Tmp.pn, Tmp.pnh):
            c.zp("sta", ptr)
        c.imp("sec")  # P0 = D_l * m
        c.ins(f"lda ({Tmp.pm}),y", 2)
        c.ins(f"sbc ({Tmp.pn}),y", 2)
        if not high:
            c.zp("sta", Tmp.t0)
        c.ins(f"lda ({Tmp.pmh}),y", 2)
        c.ins(f"sbc ({Tmp.pnh}),y", 2)
        c.zp("sta", Tmp.t1)
        c.imp("txa")
        c.imp("tay")
        c.imp("sec")  # P1 = D_h * m
        c.ins(f"lda ({Tmp.pm}),y", 2)
        c.ins(f"sbc ({Tmp.pn}),y", 2)
        if high:
            c.zp("sta", Tmp.t0)
            c.ins(f"lda ({Tmp.pmh}),y", 2)
            c.ins(f"sbc ({Tmp.pnh}),y", 2)
            c.imp("tax")
            c.zp("lda", Tmp.t0)
            c.imp("clc")
            c.zp("adc", Tmp.t1)
            c.br("bcc", "*+3")
            c.imp("inx")
        else:
            c.imp("clc")
            c.zp("adc", Tmp.t1)
            c.imp("tax")
            c.zp("lda", Tmp.t0)
        c.imp("rts")


def emit_mul_init(c):
    """lbc_run's prologue when the shared multiply is used: the pointers' high bytes."""
    for ptr, table in ((Tmp.pm, SQL), (Tmp.pmh, SQH), (Tmp.pn, NQL), (Tmp.pnh, NQH)):
        c.imms("lda", f">{table}")
        c.zp("sta", f"{ptr}+1")


def _emit_chi(c, p):
    if p.c_hi:
        c.imp("clc")
        c.imm("adc", p.c_hi & 0xFF)
        if p.c_hi >> 8:
            c.imp("pha")
            c.imp("txa")
            c.imm("adc", p.c_hi >> 8)
            c.imp("tax")
            c.imp("pla")
        else:
            c.br("bcc", "*+3")
            c.imp("inx")


def emit_multiply(c, p, call=False):
    """X = D_h, Y = D_l -> A = low byte of the shifted product (before adding q)."""
    if call:
        c.imm("lda", p.m)
        c.jsr(MUL_HI if p.k >= 8 else MUL_LO)
        if p.k >= 8:
            _emit_chi(c, p)
            emit_shift(c, p.k - 8)
        else:
            emit_shift(c, p.k)
        return
    m, nm = p.m, 255 - p.m
    sql, sqh, nql, nqh = f"{SQL}+{m}", f"{SQH}+{m}", f"{NQL}+{nm}", f"{NQH}+{nm}"
    if p.k == 0:
        c.imp("sec")
        c.ins(f"lda {sql},y", 3)
        c.ins(f"sbc {nql},y", 3)
        return
    if p.dmax <= 0xFF and not (p.k >= 8 and p.c_hi):  # D_h = 0 wherever the multiply runs: P1 = 0
        c.imp("sec")
        c.ins(f"lda {sql},y", 3)
        c.ins(f"sbc {nql},y", 3)
        if p.k >= 8:
            c.ins(f"lda {sqh},y", 3)  # floor(D*m / 256) < 256
            c.ins(f"sbc {nqh},y", 3)
            for _ in range(p.k - 8):
                c.imp("lsr a")
            return
        c.zp("sta", Tmp.t0)
        c.ins(f"lda {sqh},y", 3)
        c.ins(f"sbc {nqh},y", 3)
        c.imp("tax")
        c.zp("lda", Tmp.t0)
        emit_shift(c, p.k, table=True)
        return
    if p.k >= 8:
        c.imp("sec")  # P0 = D_l*m: only its high byte (and the borrow into it) matters
        c.ins(f"lda {sql},y", 3)
        c.ins(f"sbc {nql},y", 3)
        c.ins(f"lda {sqh},y", 3)
        c.ins(f"sbc {nqh},y", 3)
        c.zp("sta", Tmp.t0)
        c.imp("txa")
        c.imp("tay")
        c.imp("sec")  # P1 = D_h*m
        c.ins(f"lda {sql},y", 3)
        c.ins(f"sbc {nql},y", 3)
        c.zp("sta", Tmp.t1)
        c.ins(f"lda {sqh},y", 3)
        c.ins(f"sbc {nqh},y", 3)
        c.imp("tax")
        c.zp("lda", Tmp.t1)
        c.imp("clc")
        c.zp("adc", Tmp.t0)
        c.br("bcc", "*+3")
        c.imp("inx")  # (X:A) = floor(D*m / 256)
        _emit_chi(c, p)
        emit_shift(c, p.k - 8, table=True)
        return
    c.imp("sec")  # 1 <= k <= 7: need P0 in full and the low byte of P1
    c.ins(f"lda {sql},y", 3)
    c.ins(f"sbc {nql},y", 3)
    c.zp("sta", Tmp.t0)
    c.ins(f"lda {sqh},y", 3)
    c.ins(f"sbc {nqh},y", 3)
    c.zp("sta", Tmp.t1)
    c.imp("txa")
    c.imp("tay")
    c.imp("sec")
    c.ins(f"lda {sql},y", 3)
    c.ins(f"sbc {nql},y", 3)
    c.imp("clc")
    c.zp("adc", Tmp.t1)
    c.imp("tax")
    c.zp("lda", Tmp.t0)
    emit_shift(c, p.k, table=True)


def _cmp24_lt(c, value, target, ok):
    """Branch to `target` when lbc_a2:a1:a0 < value (24-bit unsigned)."""
    value &= 0xFFFFFF
    for i, reg in ((2, Tmp.a2), (1, Tmp.a1), (0, Tmp.a0)):
        c.zp("lda", reg)
        c.imm("cmp", (value >> (8 * i)) & 0xFF)
        c.br("bcc", target)
        if i:
            c.br("bne", ok)
    c.label(ok)


def _store(c, out, store_y):
    if store_y:
        c.zp("ldy", store_y)
    c.ins(f"sta {out.operand}", out.bytes)


def emit_requant(c, p, out, lab, raw24=False, call=False, store_y=None):
    """Requantise the raw accumulator (X:A, or lbc_a0..a2 when raw24) and store the byte at `out`.
    `call`: the multiply goes through the shared routine (smaller, ~30 cycles slower). `store_y`: a
    zero-page byte loaded into Y before the store (`out` indexed by Y; the requant clobbers Y)."""
    store = f"{lab}_st"
    if p.kind == "const":
        c.imm("lda", p.value)
        _store(c, out, store_y)
        return
    if p.kind == "thresholds":
        stubs = []
        for i, (t, v) in enumerate(p.thresholds):
            tgt = f"{lab}_v{i}"
            stubs.append((tgt, p.below if i == 0 else p.thresholds[i - 1][1]))
            if raw24:
                _cmp24_lt(c, t, tgt, f"{lab}_n{i}")
            else:
                _cmp16_lt(c, "x", "a", t, tgt, f"{lab}_n{i}")
        c.imm("lda", p.thresholds[-1][1])
        c.jmp(store)
        c.dead()
        for tgt, v in stubs:
            c.label(tgt)
            c.imm("lda", v)
            if tgt != stubs[-1][0]:
                c.jmp(store)
        c.label(store)
        _store(c, out, store_y)
        return
    # multiply path
    sat_lo, sat_hi = f"{lab}_lo", f"{lab}_hi"
    if raw24:
        _emit_checks24(c, p, sat_lo, sat_hi, lab)
    else:
        if p.L1 is not None:
            _cmp16_lt(c, "x", "a", p.L1 & 0xFFFF, sat_lo, f"{lab}_ok")
        B = p.B & 0xFFFF
        if B & 0xFF:
            c.imp("sec")
            c.imm("sbc", B & 0xFF)
            c.imp("tay")
            c.imp("txa")
            c.imm("sbc", B >> 8)
            c.imp("tax")
        else:
            c.imp("tay")
            if B:
                c.imp("txa")
                c.imp("sec")
                c.imm("sbc", B >> 8)
                c.imp("tax")
        if p.DH is not None:
            _cmp16_ge(c, "y", p.DH, sat_hi, f"{lab}_ok2")
    emit_multiply(c, p, call)
    if p.q:
        c.imp("clc")
        c.imm("adc", p.q)
    if p.L1 is not None or p.DH is not None:
        c.jmp(store)
        c.dead()
        if p.DH is not None:
            c.label(sat_hi)
            c.imm("lda", p.hi_s)
            if p.L1 is not None:
                c.jmp(store)
        if p.L1 is not None:
            c.label(sat_lo)
            c.imm("lda", p.lo_s)
        c.label(store)
    _store(c, out, store_y)


def _emit_checks24(c, p, sat_lo, sat_hi, lab):
    """raw in lbc_a0..a2 (A already = a0): branch to the stubs, leave X = D_h, Y = D_l."""
    if p.L1 is not None:
        _cmp24_lt(c, p.L1, sat_lo, f"{lab}_ok")
    B = p.B & 0xFFFFFF
    c.zp("lda", Tmp.a0)
    c.imp("sec")
    c.imm("sbc", B & 0xFF)
    c.imp("tay")
    c.zp("lda", Tmp.a1)
    c.imm("sbc", (B >> 8) & 0xFF)
    c.imp("tax")
    c.zp("lda", Tmp.a2)
    c.imm("sbc", B >> 16)
    if p.DH is not None:
        c.br("bne", sat_hi)
        _cmp16_ge(c, "y", p.DH, sat_hi, f"{lab}_ok2")


# ------------------------------------------------------------------------------------- byte maps


def emit_map(c, src, dst, n, how, lab):
    """dst[i] = f(src[i]) for i < n, one loop per 256 bytes (X = i). `how`: None (copy), "flip"
    (eor #$80: a biased store to a signed one or back), "relu" / "relu_biased" (max(x, 0) of a signed /
    biased byte, stored signed) or the label of a 256-byte table indexed by the byte."""
    for base in range(0, n, 256):
        cnt = min(256, n - base)
        c.imm("ldx", 0)
        c.label(f"{lab}_m{base}")
        c.absx("lda", f"a:{src}+{base},x")  # a: absolute addressing even when the arena is in the zero page
        if how in ("flip", "relu_biased"):
            c.imm("eor", 0x80)
        if how in ("relu", "relu_biased"):
            c.br("bpl", "*+4")
            c.imm("lda", 0)
        elif how not in (None, "flip"):
            c.imp("tay")
            c.absx("lda", f"{how},y")
        c.absx("sta", f"a:{dst}+{base},x")
        c.imp("inx")
        if cnt < 256:
            c.imm("cpx", cnt)
        c.br("bne", f"{lab}_m{base}")


# ------------------------------------------------------------------------------------- unrolled


def planes_of(w):
    """Bit planes of |w| for one neuron, top first: [(plane, [(input, sign)])]; empty list if all zero."""
    mags = np.abs(np.asarray(w, dtype=np.int64))
    top = int(mags.max()).bit_length() if len(mags) else 0
    out = []
    for p in range(top - 1, -1, -1):
        out.append((p, [(int(i), 1 if w[i] > 0 else -1) for i in np.nonzero((mags >> p) & 1)[0]]))
    return out


def _plane_range(terms, ul, uh):
    lo = sum(ul if s > 0 else -uh for _, s in terms)
    hi = sum(uh if s > 0 else -ul for _, s in terms)
    return lo, hi


CHAIN_ZMIN, CHAIN_ZMAX = 2, 65279  # a leaky chain is exact while Z stays in [CHAIN_ZMIN, CHAIN_ZMAX]
CHAIN_DOUBLE_MAX = 0x7FFF  # raw must double between planes without losing bit 15
ACC16_MAX, ACC24_MAX = 0xFFFF, 0xFFFFFF  # the loop and table kernels' raw sums are proven to stay within these


def unrolled_chain_range(planes, X0, ul, uh):
    """The extremes of the chain started at X0 over every input in [ul, uh]:
    (lowest Z, highest Z, highest raw before a doubling, off, vlo, vhi), raw = V + off in [vlo+off, vhi+off]."""
    zmin, zmax, dbl = None, None, None
    vlo = vhi = off = 0
    for idx, (p, terms) in enumerate(planes):
        slo, shi = _plane_range(terms, ul, uh)
        if idx == 0:
            vlo, vhi = slo, shi
            zlo, zhi = 255 * X0 + vlo, 255 * X0 + vhi
            off = 255 * X0 - 1
        else:
            dbl = vhi + off if dbl is None else max(dbl, vhi + off)
            if not terms:
                vlo, vhi, off = 2 * vlo, 2 * vhi, 2 * off
                continue
            zlo, zhi = 2 * (vlo + off) + slo, 2 * (vhi + off) + shi
            vlo, vhi, off = 2 * vlo + slo, 2 * vhi + shi, 2 * off - 1
        zmin = zlo if zmin is None else min(zmin, zlo)
        zmax = zhi if zmax is None else max(zmax, zhi)
    return zmin, zmax, dbl, off, vlo, vhi


def chain_exact(zmin, zmax, dbl):
    return zmin >= CHAIN_ZMIN and zmax <= CHAIN_ZMAX and (dbl is None or dbl <= CHAIN_DOUBLE_MAX)


def unrolled_chain_plan(planes, ul, uh, prefer=None):
    """Choose X0 for the first plane so that every leaky chain stays provably exact.

    Returns (X0, off, rmin, rmax) with raw = V + off, V = sum(w*u), or None if 16 bits cannot hold
    it. Math: a chain started at Q0 = 256*X0 + A0 with carry C0 = 0 ends with
    (after the fix-up) raw = Z - 1, Z = Q0 + S + C0 - X0, provided Z is in [CHAIN_ZMIN, CHAIN_ZMAX]
    = [2, 65279] for every plane and input (tests/nes/test_nes_proof_edges.py runs neurons at both
    ends and one past them). `prefer(off) -> bool`: among the feasible X0, take the first whose offset
    it accepts."""
    if not planes:
        return 0, 0, 0, 0
    first = None
    for X0 in range(256):
        zmin, zmax, dbl, off, vlo, vhi = unrolled_chain_range(planes, X0, ul, uh)
        if chain_exact(zmin, zmax, dbl):
            if first is None:
                first = (X0, off, vlo + off, vhi + off)
            if prefer is None or prefer(off):
                return X0, off, vlo + off, vhi + off
    return first


def emit_unrolled_neuron(c, planes, X0, in_locs, lab=None):
    """The MAC part of one neuron: leaves raw (= V + off, see unrolled_chain_plan) in X:A.

    With `lab`, the hot code (the add/subtract runs and the shifts between planes) is bracketed by
    the labels <lab>_c and <lab>_f (they cost nothing; the benchmark counts the cycles between them)."""
    for idx, (p, terms) in enumerate(planes):
        if idx == 0:
            pos = [t for t in terms if t[1] > 0]
            c.imm("ldx", X0)
            if lab:
                c.label(f"{lab}_c")
            if pos:
                loc = in_locs[pos[0][0]]
                c.ins(f"lda {loc.operand}", loc.bytes)
                rest = [t for t in terms if t is not pos[0]]
            else:
                c.imm("lda", 0)
                rest = terms
            c.imp("clc")
        else:
            if not terms:  # an empty plane only doubles
                c.imp("asl a")
                c.imp("pha")
                c.imp("txa")
                c.imp("rol a")
                c.imp("tax")
                c.imp("pla")
                continue
            c.zp("stx", Tmp.h)  # (X:A) *= 2; the new high byte h is added back as a chain term
            c.imp("asl a")
            c.zp("rol", Tmp.h)
            c.zp("ldx", Tmp.h)
            rest = terms
        for i, s in rest:
            loc = in_locs[i]
            n = loc.bytes
            mac = ("PLUS" if s > 0 else "MINUS") + ("Y" if loc.y else "")
            c.ins(f"{mac:6} {loc.expr}", n + 3, branch_at=n)
        if idx:
            c.zp("adc", Tmp.h)
            c.br("bcc", "*+3")
            c.imp("inx")
        if lab and idx == len(planes) - 1:
            c.label(f"{lab}_f")
        c.zp("stx", Tmp.t)  # fix-up: (X:A) = Z - 1 exactly
        c.zp("sbc", Tmp.t)
        c.br("bcs", "*+3")
        c.imp("dex")


# ------------------------------------------------------------------------------------- loop kernel


def loop_masks(planes, K):
    """Per nonempty plane: bytes [pos0, neg0, pos1, neg1, ...] with bit j of byte b = input 8b+j."""
    nb = (K + 7) // 8
    out = []
    for p, terms in planes:
        if not terms:
            out.append((p, None))
            continue
        buf = np.zeros((nb, 2), dtype=np.int64)
        for i, s in terms:
            buf[i // 8, 0 if s > 0 else 1] |= 1 << (i % 8)
        out.append((p, buf.reshape(-1)))
    return out


def emit_plane_routine(c, name, in_base, in_zp, K, acc24):
    """One routine per loop layer: (lbc_wp) -> masks of one plane; acc += sum(pos u) - sum(neg u).
    X indexes the inputs (8 per mask byte, abs,x): at most 256 of them."""
    if K > 256:
        raise TargetError(f"{K} inputs exceed the 8-bit input index (at most 256)")
    nb = (K + 7) // 8
    c.dead()
    c.label(name)
    c.imm("ldy", 0)
    c.imm("ldx", 0)
    c.label(f"{name}_b")
    c.ins(f"lda ({Tmp.wp}),y", 2)
    c.zp("sta", Tmp.mp)
    c.imp("iny")
    c.ins(f"lda ({Tmp.wp}),y", 2)
    c.zp("sta", Tmp.mn)
    c.imp("iny")
    c.zp("ora", Tmp.mp)
    c.br("bne", f"{name}_go")
    c.jmp(f"{name}_nx")
    c.label(f"{name}_go")
    for j in range(8):
        ex = f"{in_base}+{j},x"
        c.zp("lsr", Tmp.mp)
        c.br("bcc", f"{name}_p{j}")
        c.zp("lda", Tmp.a0)
        c.imp("clc")
        c.absx("adc", ex, in_zp)
        c.zp("sta", Tmp.a0)
        c.br("bcc", f"{name}_p{j}")
        if acc24:
            c.zp("inc", Tmp.a1)
            c.br("bne", f"{name}_p{j}")
            c.zp("inc", Tmp.a2)
        else:
            c.zp("inc", Tmp.a1)
        c.label(f"{name}_p{j}")
        c.zp("lsr", Tmp.mn)
        c.br("bcc", f"{name}_n{j}")
        c.zp("lda", Tmp.a0)
        c.imp("sec")
        c.absx("sbc", ex, in_zp)
        c.zp("sta", Tmp.a0)
        c.br("bcs", f"{name}_n{j}")
        if acc24:
            c.zp("lda", Tmp.a1)
            c.br("bne", f"{name}_d{j}")
            c.zp("dec", Tmp.a2)
            c.label(f"{name}_d{j}")
        c.zp("dec", Tmp.a1)
        c.label(f"{name}_n{j}")
    c.label(f"{name}_nx")
    c.imp("txa")
    c.imp("clc")
    c.imm("adc", 8)
    c.imp("tax")
    c.imm("cpy", 2 * nb)
    c.br("beq", f"{name}_x")
    c.jmp(f"{name}_b")
    c.label(f"{name}_x")
    c.imp("rts")


def loop_offset(planes, ul, uh, K):
    """Start value so the final raw = V + off is in [0, 2**bits): (off_start, off_final, rmin, rmax, bits)."""
    vlo = vhi = 0
    for idx, (p, terms) in enumerate(planes):
        slo, shi = _plane_range(terms, ul, uh)
        vlo, vhi = (2 * vlo + slo, 2 * vhi + shi) if idx else (slo, shi)
    scale = 1 << max(len(planes) - 1, 0)
    off0 = -(vlo // scale) if vlo < 0 else 0
    offf = off0 * scale
    rmin, rmax = vlo + offf, vhi + offf
    bits = 16 if rmax <= ACC16_MAX else 24
    if rmax > ACC24_MAX:
        return None
    return off0, offf, rmin, rmax, bits


def emit_loop_neuron(c, planes, masks, mask_labels, routine, off0, acc24):
    c.imm("lda", off0 & 0xFF)
    c.zp("sta", Tmp.a0)
    c.imm("lda", (off0 >> 8) & 0xFF)
    c.zp("sta", Tmp.a1)
    if acc24:
        c.imm("lda", (off0 >> 16) & 0xFF)
        c.zp("sta", Tmp.a2)
    for idx, ((p, terms), (_, mbytes), lab) in enumerate(zip(planes, masks, mask_labels)):
        if idx:
            c.zp("asl", Tmp.a0)
            c.zp("rol", Tmp.a1)
            if acc24:
                c.zp("rol", Tmp.a2)
        if mbytes is None:
            continue
        c.imms("lda", f"<{lab}")
        c.zp("sta", Tmp.wp)
        c.imms("lda", f">{lab}")
        c.zp("sta", f"{Tmp.wp}+1")
        c.jsr(routine)
    if not acc24:
        c.zp("lda", Tmp.a0)
        c.zp("ldx", Tmp.a1)


# ------------------------------------------------------------------------------------- table kernel
#
# Partial-sum tables (T-MAC style). Once per layer, for every group of g consecutive inputs, the 2**g
# sums of every subset of the group go into two RAM pages (TLO/THI: low and high bytes; group i at
# entries i*2**g .. i*2**g + 2**g - 1, so an indexed read never crosses a page). The weights are split
# into the P bit planes of their two's complement (the top plane counts -2**(P-1)), so a neuron is
#
#     V = sum(w*u) = -2**(P-1) * S[P-1] + sum_{p<P-1} 2**p * S[p],   S[p] = sum over groups of T[mask]
#
# and each (plane, group) "slot" costs one table lookup and one 16-bit add or subtract, whatever the
# weights are (~26 cycles for g inputs, ~6.5 per input and plane at g = 4). The masks are stored column
# by column (slot s: one byte per neuron), so one routine per layer, unrolled over the slots, serves all
# neurons with X = the neuron. The sum is Horner over the planes, computed modulo 2**16 (clc/sec
# before every add, asl/rol between planes): that is exact arithmetic modulo 2**16, and the compiler
# proves the final value 2**(P-1)*s0 + V lies in [0, 65535] for every input (s0: the neuron's start
# value), so the 16-bit result is the exact value; a layer where that cannot hold gets no table kernel.

TLO, THI = "lbc_tlo", "lbc_thi"
TABLE_ENTRIES = 256  # per page: g is the largest group size whose ceil(K/g) * 2**g entries fit
TABLE_Q = (Tmp.t0, Tmp.t1, Tmp.mp, Tmp.mn)  # the group's inputs while its table is built


def table_group(K):
    """Inputs per group for a layer of K inputs (None: K is too large for one table page)."""
    for g in (4, 3, 2, 1):
        if -(-K // g) << g <= TABLE_ENTRIES:
            return g
    return None


def twos_planes(w_min, w_max):
    """Bits P of the two's complement that holds every weight in [w_min, w_max] (at least 1)."""
    P = 1
    while not (-(1 << (P - 1)) <= w_min and w_max <= (1 << (P - 1)) - 1):
        P += 1
    return P


def table_slots(w, P, g):
    """Masks of every (plane, group) slot, top plane first: [(plane, group, column of M mask bytes)].

    Bit b of the mask of neuron j, group i, plane p is bit p of w[j, i*g + b] (two's complement)."""
    w = np.asarray(w, dtype=np.int64)
    M, K = w.shape
    G = -(-K // g)
    bits = np.zeros((M, G * g), dtype=np.int64)
    bits[:, :K] = w & ((1 << P) - 1)
    out = []
    for p in range(P - 1, -1, -1):
        b = (bits >> p) & 1
        masks = sum(b[:, i::g][:, :G] << i for i in range(g))
        for gi in range(G):
            out.append((p, gi, masks[:, gi]))
    return out


def table_offset(w, ul, uh, P):
    """Start value s0 and the raw range: raw = 2**(P-1)*s0 + V in [rmin, rmax] (None: not 16 bits)."""
    w = np.asarray(w, dtype=np.int64)
    pos, neg = w[w > 0].sum(), w[w < 0].sum()
    vlo, vhi = int(pos * ul + neg * uh), int(pos * uh + neg * ul)
    scale = 1 << (P - 1)
    s0 = -(vlo // scale)
    rmin, rmax = vlo + s0 * scale, vhi + s0 * scale
    if rmax > ACC16_MAX:
        return None
    return s0, s0 * scale, rmin, rmax


def emit_table_build(c, g):
    """The shared routine that fills the tables: (lbc_wp) = the layer's first input, A = the end offset
    (groups * 2**g) & 255. Entry m of a group is the sum of the inputs whose bit is set in m."""
    name = f"lbc_tb{g}"
    n = 1 << g
    c.dead()
    c.label(name)
    c.zp("sta", Tmp.t)
    c.imm("ldx", 0)
    c.label(f"{name}_g")
    c.imm("ldy", 0)
    for b in range(g):
        c.ins(f"lda ({Tmp.wp}),y", 2)
        c.zp("sta", TABLE_Q[b])
        if b < g - 1:
            c.imp("iny")
    c.zp("lda", Tmp.wp)
    c.imp("clc")
    c.imm("adc", g)
    c.zp("sta", Tmp.wp)
    c.br("bcc", "*+4")
    c.zp("inc", f"{Tmp.wp}+1")
    c.imm("lda", 0)
    c.absx("sta", f"{TLO},x")
    c.absx("sta", f"{THI},x")
    c.zp("lda", TABLE_Q[0])
    c.absx("sta", f"{TLO}+1,x")
    c.imm("lda", 0)
    c.absx("sta", f"{THI}+1,x")
    for b in range(1, g):
        for m in range(1 << b):
            c.absx("lda", f"{TLO}+{m},x")
            c.imp("clc")
            c.zp("adc", TABLE_Q[b])
            c.absx("sta", f"{TLO}+{m + (1 << b)},x")
            c.absx("lda", f"{THI}+{m},x")
            c.imm("adc", 0)
            c.absx("sta", f"{THI}+{m + (1 << b)},x")
    c.imp("txa")
    c.imp("clc")
    c.imm("adc", n)
    c.imp("tax")
    c.zp("cpx", Tmp.t)
    c.br("beq", f"{name}_x")
    c.jmp(f"{name}_g")
    c.label(f"{name}_x")
    c.imp("rts")


def emit_table_fill(c, g, in_expr, groups):
    """A layer's call of the table build routine."""
    c.imms("lda", f"<({in_expr})")
    c.zp("sta", Tmp.wp)
    c.imms("lda", f">({in_expr})")
    c.zp("sta", f"{Tmp.wp}+1")
    c.imm("lda", (groups << g) & 0xFF)
    c.jsr(f"lbc_tb{g}")


def emit_table_mac(c, name, slots, P, g, col_label, s0_label):
    """One routine per layer: X = neuron -> X:A = 2**(P-1)*s0 + V (mod 2**16, proven exact).

    `slots`: [(plane, group)] in order (top plane first), the all-zero slots left out; the mask column of
    slot s is at col_label(s)."""
    c.dead()
    c.label(name)
    c.absx("lda", f"{s0_label}l,x")
    c.zp("sta", Tmp.a0)
    c.absx("lda", f"{s0_label}h,x")
    c.zp("sta", Tmp.a1)
    plane = P - 1
    for s, (p, gi) in enumerate(slots):
        while plane > p:
            c.zp("asl", Tmp.a0)
            c.zp("rol", Tmp.a1)
            plane -= 1
        base = gi << g
        op = "sbc" if p == P - 1 else "adc"
        c.absx("ldy", f"{col_label(s)},x")
        c.imp("sec" if op == "sbc" else "clc")
        c.zp("lda", Tmp.a0)
        c.absx(op, f"{TLO}+{base},y")
        c.zp("sta", Tmp.a0)
        c.zp("lda", Tmp.a1)
        c.absx(op, f"{THI}+{base},y")
        c.zp("sta", Tmp.a1)
    while plane > 0:
        c.zp("asl", Tmp.a0)
        c.zp("rol", Tmp.a1)
        plane -= 1
    c.zp("lda", Tmp.a0)
    c.zp("ldx", Tmp.a1)
    c.imp("rts")
