"""Window kernels of the NES target: convolution (regular, grouped/depthwise, pointwise; stride,
padding, dilation), average and global average pooling (a convolution whose weights are all 1) and
max pooling, on NCHW int8 tensors stored as unsigned bytes u = x + o (see target.Store).

A convolution's output channel at one position is a dense neuron over the window: its code is the
unrolled kernel of the dense layers (lower.emit_unrolled_neuron), specialised to the channel's
weights, reading every tap as `adc base+tap,y` (PLUSY/MINUSY: 7 cycles, 8 when it carries) with Y =
the window's position. One loop walks the output positions; its body holds, per output channel, the
channel's chain, its requantisation and the store (`sta out+channel*OH*OW,y`, Y = output position).
So the code grows with the weights (zero weights emit nothing) but not with the image, and every
channel's 16-bit chain is proven exact over its input range like a dense neuron's
(lower.unrolled_chain_plan). A channel whose sum cannot be proven in one 16-bit chain is split into
consecutive runs of taps that can, summed into a 24-bit accumulator (lbc_a0..a2) after each run.

Padding: the input is first copied into a padded buffer (lbc_pad, BSS) whose border bytes hold the
stored form of 0 (the convolution's padding value; max pooling pads with byte 0, which never wins over
an unsigned byte). Positions and taps are byte offsets within one channel plane of the (padded) input,
so the kernels need every plane's window positions below 256 (Y is 8 bits) - `check` says so otherwise.
"""

from dataclasses import dataclass

import numpy as np

from lbc.backends.nes.lower import Tmp, planes_of, unrolled_chain_plan
from lbc.ir.ops.windows import pool_out


@dataclass
class Geometry:
    C: int
    H: int
    W: int
    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    dw: int
    pads: tuple  # (top, left, bottom, right)
    OH: int = 0
    OW: int = 0

    def __post_init__(self):
        pt, pl, pb, pr = self.pads
        self.OH = pool_out(self.H, self.kh, self.sh, pt, pb, self.dh)
        self.OW = pool_out(self.W, self.kw, self.sw, pl, pr, self.dw)

    @property
    def padded(self):
        return any(self.pads)

    @property
    def Hp(self):
        return self.H + self.pads[0] + self.pads[2]

    @property
    def Wp(self):
        return self.W + self.pads[1] + self.pads[3]

    @property
    def plane(self):
        """Bytes of one channel plane of the (padded) input the window reads."""
        return self.Hp * self.Wp

    def tap(self, c, i, j):
        """Offset of tap (c, i, j) from the window's position in the (padded) input."""
        return c * self.plane + i * self.dh * self.Wp + j * self.dw

    def problems(self, what):
        out = []
        last = (self.OH - 1) * self.sh * self.Wp + (self.OW - 1) * self.sw
        if last > 255:
            out.append(f"{what}: the window positions of a {self.Hp}x{self.Wp} input plane reach byte {last}; "
                       f"the NES window kernels index positions with one byte (at most 255)")
        if self.padded and (self.H * self.W > 256 or
                            (self.pads[0] + self.H - 1) * self.Wp + self.pads[1] + self.W > 256):
            out.append(f"{what}: the padded copy of a {self.H}x{self.W} channel plane needs offsets past byte 255; "
                       f"the NES pad copy indexes with one byte")
        if self.OH * self.OW > 256:
            out.append(f"{what}: {self.OH}x{self.OW} output positions per channel; the NES window kernels take at "
                       f"most 256")
        return out


def emit_pad_copy(c, g, src, fill, lab):
    """Copy the [C, H, W] tensor at `src` into lbc_pad as [C, Hp, Wp] with borders = `fill`."""
    total = g.C * g.plane
    c.comment(f"pad: {g.C}x{g.H}x{g.W} to {g.C}x{g.Hp}x{g.Wp} in lbc_pad, border byte {fill}")
    c.imm("lda", fill)
    for base in range(0, total, 256):
        n = min(256, total - base)
        c.imm("ldx", n)
        c.label(f"{lab}_f{base}")
        c.absx("sta", f"lbc_pad+{base}-1,x")
        c.imp("dex")
        c.br("bne", f"{lab}_f{base}")
    start = g.pads[0] * g.Wp + g.pads[1]
    for ch in range(g.C):
        c.imm("ldx", 0)
        c.imm("ldy", start)
        c.imm("lda", g.H)
        c.zp("sta", Tmp.rc)
        c.label(f"{lab}_r{ch}")
        c.imm("lda", g.W)
        c.zp("sta", Tmp.cc)
        c.label(f"{lab}_c{ch}")
        c.absx("lda", f"a:{src}+{ch * g.H * g.W},x")  # a: absolute even when src is in the zero page
        c.ins(f"sta lbc_pad+{ch * g.plane},y", 3)
        c.imp("inx")
        c.imp("iny")
        c.zp("dec", Tmp.cc)
        c.br("bne", f"{lab}_c{ch}")
        if g.Wp != g.W:
            c.imp("tya")
            c.imp("clc")
            c.imm("adc", g.Wp - g.W)
            c.imp("tay")
        c.zp("dec", Tmp.rc)
        c.br("bne", f"{lab}_r{ch}")


def emit_position_loop(c, g, body, lab, pool=1):
    """for each output position (row-major): body, with lbc_ip = the window's input offset and lbc_op =
    the output offset. `body` is a Code; it may clobber A, X, Y. `pool` > 1: the positions of a fused
    max pooling (pool x pool windows of output positions, stride pool): every pool-th position."""
    OH, OW, sh, sw = g.OH // pool, g.OW // pool, g.sh * pool, g.sw * pool
    single = OH * OW == 1
    c.imm("lda", 0)
    c.zp("sta", Tmp.ip)
    c.zp("sta", Tmp.op)
    if single:
        c.extend(body)
        return
    c.imm("lda", OH)
    c.zp("sta", Tmp.rc)
    c.label(f"{lab}_row")
    c.imm("lda", OW)
    c.zp("sta", Tmp.cc)
    c.label(f"{lab}_col")
    c.extend(body)
    c.zp("inc", Tmp.op)
    c.zp("lda", Tmp.ip)
    c.imp("clc")
    c.imm("adc", sw)
    c.zp("sta", Tmp.ip)
    c.zp("dec", Tmp.cc)
    c.br("beq", "*+5")
    c.jmp(f"{lab}_col")
    step = (sh * g.Wp - OW * sw) & 0xFF
    if step:
        c.zp("lda", Tmp.ip)
        c.imp("clc")
        c.imm("adc", step)
        c.zp("sta", Tmp.ip)
    c.zp("dec", Tmp.rc)
    c.br("beq", "*+5")
    c.jmp(f"{lab}_row")


def emit_max_body(c, g, src, dst, flip):
    """Max pooling at one position, every channel: A = max of the window's bytes (unsigned compare),
    stored at dst + channel*OH*OW + lbc_op. `flip`: eor #$80 before the store (biased -> signed)."""
    c.zp("ldy", Tmp.ip)
    c.zp("ldx", Tmp.op)
    taps = [i * g.dh * g.Wp + j * g.dw for i in range(g.kh) for j in range(g.kw)]
    for ch in range(g.C):
        base = ch * g.plane
        c.ins(f"lda {src}+{base + taps[0]},y", 3)
        for t in taps[1:]:
            c.ins(f"cmp {src}+{base + t},y", 3)
            c.br("bcs", "*+5")
            c.ins(f"lda {src}+{base + t},y", 3)
        if flip:
            c.imm("eor", 0x80)
        c.absx("sta", f"a:{dst}+{ch * g.OH * g.OW},x")


def split_chains(vec, ul, uh, max_parts=16):
    """The fewest consecutive runs of taps whose 16-bit chains are each provable (lower.unrolled_chain_plan)
    for inputs in [ul, uh]: [(tap indices, planes, X0, off, rmin, rmax)], raw = sum of the runs' raws
    = V + sum(off). None when even 16 runs do not do (or the sum would pass 24 bits)."""
    n = len(vec)
    for parts in range(1, max_parts + 1):
        bounds = np.linspace(0, n, parts + 1).round().astype(int)
        out = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            planes = planes_of(vec[a:b])
            cp = unrolled_chain_plan(planes, ul, uh)
            if cp is None:
                break
            # planes_of indexes the run's taps from 0: shift them back to the channel's tap numbers
            planes = [(p, [(int(i) + int(a), s) for i, s in terms]) for p, terms in planes]
            out.append((list(range(a, b)), planes, *cp))
        else:
            if sum(pt[5] for pt in out) <= 0xFFFFFF:
                return out
    return None


def emit_sum24(c, first):
    """Add the chain result X:A into the 24-bit accumulator lbc_a0..a2 (the first run sets it)."""
    if first:
        c.zp("sta", Tmp.a0)
        c.zp("stx", Tmp.a1)
        c.imm("lda", 0)
        c.zp("sta", Tmp.a2)
        return
    c.imp("clc")
    c.zp("adc", Tmp.a0)
    c.zp("sta", Tmp.a0)
    c.imp("txa")
    c.zp("adc", Tmp.a1)
    c.zp("sta", Tmp.a1)
    c.br("bcc", "*+4")
    c.zp("inc", Tmp.a2)


def emit_max16(c, last, lab):
    """Fused max pooling: keep the larger of X:A and the running maximum (lbc_t1:lbc_t0, unsigned 16-bit).
    Before the last window position: the maximum goes to lbc_t1:t0; at the last: it is left in X:A."""
    if not last:
        c.zp("cpx", Tmp.t1)
        c.br("bcc", f"{lab}_k")
        c.br("bne", f"{lab}_n")
        c.zp("cmp", Tmp.t0)
        c.br("bcc", f"{lab}_k")
        c.label(f"{lab}_n")
        c.zp("sta", Tmp.t0)
        c.zp("stx", Tmp.t1)
        c.label(f"{lab}_k")
        return
    c.zp("cpx", Tmp.t1)
    c.br("bcc", f"{lab}_o")
    c.br("bne", f"{lab}_k")
    c.zp("cmp", Tmp.t0)
    c.br("bcs", f"{lab}_k")
    c.label(f"{lab}_o")
    c.zp("lda", Tmp.t0)
    c.zp("ldx", Tmp.t1)
    c.label(f"{lab}_k")
