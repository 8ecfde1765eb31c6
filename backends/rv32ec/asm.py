"""Small RV32EC assembly helpers shared by the kernel generators: multiplier-free constant
multiplication (canonical signed digits), the requantisation tail, and a size estimate per line.

Everything here emits GNU `as` lines for rv32ec (x0..x15 only). No line ever uses mul/div or a libgcc
helper: a product by a compile-time constant becomes shifts and adds.
"""

# Registers the compressed (RVC) forms of sub/and/or/srli/c.lw... accept: x8..x15.
RVC_REGS = frozenset(("s0", "s1", "a0", "a1", "a2", "a3", "a4", "a5", "fp"))
ALL_REGS = ("zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4", "a5")


def csd(m):
    """Canonical signed-digit form of m >= 0 as [(bit position, +1 or -1)], least significant first.
    No two neighbouring digits are non-zero, so a product by m costs at most ~bits/2 additions."""
    digits, pos = [], 0
    while m:
        if m & 1:
            d = 2 - (m & 3)  # +1 when m = 1 (mod 4), -1 when m = 3 (mod 4)
            digits.append((pos, d))
            m -= d
        m >>= 1
        pos += 1
    return digits


def mul_const(r, t, m):
    """r = r * m in place for a constant m >= 0, using t as a scratch register (Horner over the
    canonical signed digits, most significant first). Wrapping intermediates are harmless: the result
    is exact modulo 2**32 and the quantiser guarantees it fits 32 bits."""
    if m == 0:
        return [f"li      {r}, 0"]
    digits = csd(m)[::-1]
    top = digits[0][0]
    if len(digits) == 1:
        return [f"slli    {r}, {r}, {top}"] if top else []
    lines = [f"mv      {t}, {r}"]
    prev = top
    for pos, sign in digits[1:]:
        lines.append(f"slli    {r}, {r}, {prev - pos}")
        lines.append(f"{'add' if sign > 0 else 'sub'}     {r}, {r}, {t}")
        prev = pos
    if prev:
        lines.append(f"slli    {r}, {r}, {prev}")
    return lines


def round_shift(r, k):
    """r = (r + 2**(k-1)) >> k (arithmetic), as ((r >> (k-1)) + 1) >> 1: the same value without
    forming the rounding constant."""
    if k <= 0:
        return []
    lines = [f"srai    {r}, {r}, {k - 1}"] if k > 1 else []
    return lines + [f"addi    {r}, {r}, 1", f"srai    {r}, {r}, 1"]


def clamp(r, t, lo, hi):
    """r = min(max(r, lo), hi) with constants lo <= hi (labels 8 and 9 are used locally)."""
    lines = [f"li      {t}, {hi}", f"bge     {t}, {r}, 9f", f"mv      {r}, {t}", "9:"]
    if lo == 0:
        lines += [f"bgez    {r}, 8f", f"li      {r}, 0", "8:"]
    else:
        lines += [f"li      {t}, {lo}", f"bge     {r}, {t}, 8f", f"mv      {r}, {t}", "8:"]
    return lines


def requant_const(r, t, m, k, lo, hi):
    """The integer requantisation clamp((r*m + round) >> k, lo, hi) with compile-time m, k."""
    return mul_const(r, t, m) + round_shift(r, k) + clamp(r, t, lo, hi)


def is_insn(line):
    s = line.strip()
    return bool(s) and not s.endswith(":") and not s.startswith((".", "#", "/*"))


def count_insns(lines):
    """Instructions in straight-line code (labels/directives excluded; li of a large constant = 2)."""
    n = 0
    for line in lines:
        if is_insn(line):
            n += 2 if _big_li(line) else 1
    return n


def _big_li(line):
    parts = line.replace(",", " ").split()
    if parts[0] != "li":
        return False
    v = int(parts[2], 0)
    return not -2048 <= v < 2048 and (v & 0xFFF) != 0


def insn_bytes(line):
    """Estimated encoded size of one line (2 when an RVC form exists, else 4; 0 for labels). Used to
    plan what fits in flash before the toolchain runs; the linker has the last word."""
    if not is_insn(line):
        return 0
    p = line.replace(",", " ").replace("(", " ").replace(")", " ").split()
    op, a = p[0], p[1:]
    rvc = lambda *regs: all(x in RVC_REGS for x in regs)  # noqa: E731
    if op in ("ret", "mv"):
        return 2
    if op == "li":
        v = int(a[1], 0)
        if -32 <= v < 32:
            return 2
        if -2048 <= v < 2048:
            return 4
        return 8 if (v & 0xFFF) else 4
    if op in ("add",):
        return 2 if (a[0] == a[1] or a[0] == a[2]) and a[0] != "zero" else 4
    if op in ("sub", "and", "or", "xor"):
        return 2 if a[0] == a[1] and rvc(a[0], a[2]) else 4
    if op == "addi":
        v = int(a[2], 0)
        if a[0] == a[1] and -32 <= v < 32 and v != 0:
            return 2
        if a[0] == "sp" and a[1] == "sp" and v % 16 == 0 and -512 <= v < 512:
            return 2
        return 4
    if op == "slli":
        return 2 if a[0] == a[1] else 4
    if op in ("srli", "srai"):
        return 2 if a[0] == a[1] and rvc(a[0]) else 4
    if op == "andi":
        v = int(a[2], 0)
        return 2 if a[0] == a[1] and rvc(a[0]) and -32 <= v < 32 else 4
    if op in ("lw", "sw"):
        off = int(a[1], 0)
        if a[2] == "sp" and 0 <= off < 256 and off % 4 == 0:
            return 2
        return 2 if rvc(a[0], a[2]) and 0 <= off < 128 and off % 4 == 0 else 4
    if op in ("beqz", "bnez"):
        return 2 if rvc(a[0]) else 4
    if op in ("j", "jr"):
        return 2
    if op in ("call", "la"):
        return 8
    return 4


def code_bytes(lines):
    return sum(insn_bytes(x) for x in lines)
