"""The kernel generators without a toolchain: the straight-line code they emit is interpreted by a tiny
RV32 model and compared with numpy; the flash layouts are checked with a model of each kernel."""

import re

import numpy as np
import pytest

from lbc.backends.rv32ec import asm
from lbc.backends.rv32ec import kernels as K
from lbc.ir.quant import requant

RAM = 0x20000000


class Mini:
    """Just enough RV32 to run generated straight-line code and simple loops (32-bit wrap-around)."""

    def __init__(self, lines):
        self.lines = [x.split("#")[0].strip() for x in lines]
        self.lines = [x for x in self.lines if x and not x.startswith(("/*", "*", "."))]
        self.labels = {}
        self.mem = bytearray(1 << 16)
        self.r = {"zero": 0, "sp": RAM + 0xF000}

    def reg(self, n):
        return self.r.get(n, 0)

    def set(self, n, v):
        if n != "zero":
            v &= 0xFFFFFFFF
            self.r[n] = v - (1 << 32) if v & 0x80000000 else v

    def load(self, a, n, signed=True):
        v = int.from_bytes(self.mem[a - RAM:a - RAM + n], "little", signed=signed)
        return v

    def store(self, a, n, v):
        self.mem[a - RAM:a - RAM + n] = (v & ((1 << 8 * n) - 1)).to_bytes(n, "little")

    def target(self, pc, label):
        num, d = label[:-1], label[-1]
        rng = range(pc + 1, len(self.lines)) if d == "f" else range(pc - 1, -1, -1)
        return next(i for i in rng if self.lines[i] == num + ":")

    def run(self, limit=10**6):
        pc = 0
        for _ in range(limit):
            if pc >= len(self.lines):
                return
            line = self.lines[pc]
            pc += 1
            if line.endswith(":"):
                continue
            op, *a = re.split(r"[,\s()]+", line.strip())
            a = [x for x in a if x]
            R, S = self.reg, self.set
            if op == "ret":
                return
            if op in ("lb", "lbu", "lh", "lw"):
                n = {"lb": 1, "lbu": 1, "lh": 2, "lw": 4}[op]
                S(a[0], self.load(R(a[2]) + int(a[1], 0), n, op != "lbu"))
            elif op in ("sb", "sh", "sw"):
                self.store(R(a[2]) + int(a[1], 0), {"sb": 1, "sh": 2, "sw": 4}[op], R(a[0]))
            elif op in ("add", "sub", "and", "or", "sra"):
                x, y = R(a[1]), R(a[2])
                S(a[0], {"add": x + y, "sub": x - y, "and": x & y, "or": x | y, "sra": x >> (y & 31)}[op])
            elif op == "neg":
                S(a[0], -R(a[1]))
            elif op == "mv":
                S(a[0], R(a[1]))
            elif op == "li":
                S(a[0], int(a[1], 0))
            elif op in ("addi", "andi", "slli", "srai", "srli"):
                x, i = R(a[1]), int(a[2], 0)
                S(a[0], {"addi": lambda: x + i, "andi": lambda: x & i, "slli": lambda: x << i,
                         "srai": lambda: x >> i, "srli": lambda: (x & 0xFFFFFFFF) >> i}[op]())
            elif op in ("bge", "bne", "blt"):
                x, y = R(a[0]), R(a[1])
                if {"bge": x >= y, "bne": x != y, "blt": x < y}[op]:
                    pc = self.target(pc - 1, a[2])
            elif op in ("bgez", "beqz", "bnez"):
                x = R(a[0])
                if {"bgez": x >= 0, "beqz": x == 0, "bnez": x != 0}[op]:
                    pc = self.target(pc - 1, a[1])
            else:
                raise NotImplementedError(line)
        raise RuntimeError("runaway")


def test_csd_is_canonical():
    for m in range(2000):
        d = asm.csd(m)
        assert sum(s << p for p, s in d) == m
        pos = [p for p, _ in d]
        assert all(b - a >= 2 for a, b in zip(pos, pos[1:]))


@pytest.mark.parametrize("seed", range(4))
def test_requant_const_matches_the_ir(seed):
    r = np.random.default_rng(seed)
    for _ in range(60):
        m, k = int(r.integers(0, 256)), int(r.integers(0, 24))
        lo, hi = [(-128, 127), (0, 127), (0, 48), (-20, 20)][int(r.integers(0, 4))]
        bound = (2**31 - 1 - (1 << max(k - 1, 0))) // max(m, 1)
        acc = int(r.integers(-min(bound, 2**24), min(bound, 2**24)))
        cpu = Mini(asm.requant_const("a4", "a5", m, k, lo, hi))
        cpu.set("a4", acc)
        cpu.run()
        assert cpu.reg("a4") == int(requant(np.array([acc]), (m,), (k,), lo, hi)[0]), (acc, m, k, lo, hi)


BUILDERS = [(3, -1, 4, False), (3, -1, 3, False), (3, -1, 2, False), (5, -2, 3, False), (5, -2, 2, False),
            (4, -2, 3, False), (4, -2, 2, False), (2, 0, 4, False), (2, 0, 4, True)]


@pytest.mark.parametrize("V,lo,g,interleaved", BUILDERS)
def test_table_builders(V, lo, g, interleaved):
    k = K.table_builder(V, lo, g, interleaved)
    cpu = Mini(k.ctx["lines"])
    x = np.random.default_rng(V * 10 + g).integers(-128, 128, size=3 * g)
    xa, ta = RAM + 0x100, RAM + 0x1000
    cpu.mem[0x100:0x100 + len(x)] = x.astype(np.int8).tobytes()
    E = V**g
    cpu.set("a0", xa)
    cpu.set("a1", ta)
    cpu.set("a2", ta + (3 * 2 if interleaved else 3 * 2 * E))
    cpu.run()
    for t in range(3):
        for code in range(E):
            w = [(code // V**i) % V + lo for i in range(g)]
            want = sum(wi * int(xi) for wi, xi in zip(w, x[t * g:(t + 1) * g]))
            addr = ta + (32 * code + 2 * t if interleaved else 2 * E * t + 2 * code)
            assert cpu.load(addr, 2) == want, (t, code)


@pytest.mark.parametrize("dtype", ["ternary", "pentary", "i4", "i8"])
@pytest.mark.parametrize("inline", [True, False])
def test_unrolled_dense(dtype, inline):
    r = np.random.default_rng(7)
    lo_w, nv = K.VALUE_SET[dtype]
    N, Kk = 11, 23
    w = r.integers(lo_w, lo_w + nv, size=(N, Kk))
    w[r.random(w.shape) < 0.3] = 0
    b = r.integers(-500, 500, size=N)
    m, k = tuple(int(v) for v in r.integers(1, 200, size=N)), tuple(int(v) for v in r.integers(6, 14, size=N))
    x = r.integers(0, 128, size=Kk)
    x[r.random(Kk) < 0.4] = 0
    kern = K.unrolled_dense("t", w, b, m, k, 0, 127, skip_zero_inputs=True, inline=inline)
    cpu = Mini(kern.ctx["lines"])
    cpu.mem[0x100:0x100 + Kk] = x.astype(np.int8).tobytes()
    cpu.set("a0", RAM + 0x100)
    cpu.set("a1", RAM + 0x400)
    cpu.run()
    acc = w @ x + b
    if inline:
        got = [cpu.load(RAM + 0x400 + j, 1) for j in range(N)]
        assert got == list(requant(acc, m, k, 0, 127))
    else:
        assert [cpu.load(RAM + 0x400 + 4 * j, 4) for j in range(N)] == list(acc)


def lut_model(data, w_shape, V, lo, g, C, x):
    N, Kk = w_shape
    nch = len(data) // (N * C)
    xs = np.zeros(nch * C * g, dtype=np.int64)
    xs[:Kk] = x
    d = data.reshape(nch, N, C).astype(np.int64)
    acc = np.zeros(N, dtype=np.int64)
    for c in range(nch):
        for gi in range(C):
            xg = xs[(c * C + gi) * g:(c * C + gi + 1) * g]
            code = d[c, :, gi] // 2
            for i in range(g):
                acc += ((code // V**i) % V + lo) * xg[i]
    return acc


@pytest.mark.parametrize("dtype,g,C", [("ternary", 4, 3), ("ternary", 3, 8), ("pentary", 3, 2), ("i2", 2, 4)])
def test_lut_layout(dtype, g, C):
    r = np.random.default_rng(1)
    lo, V = K.VALUE_SET[dtype]
    w = r.integers(lo, lo + V, size=(7, 37))
    x = r.integers(-128, 128, size=37)
    data, nch = K.pack_lut(w, V, lo, g, C)
    assert data.max() <= 2 * (V**g - 1) and data.dtype == np.uint8
    assert list(lut_model(data, w.shape, V, lo, g, C, x)) == list(w @ x)


@pytest.mark.parametrize("P,dtype", [(2, "ternary"), (3, "pentary"), (4, "i4"), (8, "i8")])
@pytest.mark.parametrize("W,paired", [(1, False), (2, False), (2, True), (4, True)])
def test_bit_plane_layouts(P, dtype, W, paired):
    r = np.random.default_rng(P)
    lo, V = K.VALUE_SET[dtype]
    N, Kk = 5, 150
    w = r.integers(lo, lo + V, size=(N, Kk))
    x = r.integers(-128, 128, size=Kk)
    data, nch = K.pack_bits(w, P, W, paired)
    d = data.reshape(nch, N, P, W).astype(np.int64)
    xs = np.zeros(nch * 32 * W, dtype=np.int64)
    xs[:Kk] = x
    acc = np.zeros(N, dtype=np.int64)
    for c in range(nch):
        xc = xs[c * 32 * W:(c + 1) * 32 * W]
        h = np.zeros(N, dtype=np.int64)
        for p in range(P):
            S = np.zeros(N, dtype=np.int64)
            for wi in range(W):
                for kk in range(8):
                    nib = (d[c, :, p, wi] >> (4 * kk)) & 15
                    grp = (4 * wi + kk // 2 + (kk % 2) * 4 * W) if paired else 8 * wi + kk
                    S += sum(((nib >> i) & 1) * xc[4 * grp + i] for i in range(4))
            h = S if p == 0 else 2 * h - S
        acc -= h
    assert list(acc) == list(w @ x)
