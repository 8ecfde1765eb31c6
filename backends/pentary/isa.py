"""The pentary ISA: word and pent helpers, and THE instruction table.

Everything else reads `OPS` (this module's one table): the encoder and decoder below, the assembler
(operand kinds and ranges), the disassembler (operand rendering) and the simulator (cycle costs and
dispatch by mnemonic). `docs/pentary-isa.md` carries a copy of `markdown_table()`, and a test checks
the two agree.

Numbers are balanced base 5. A pent is a digit in {-2,-1,0,+1,+2}; a word is 16 pents, least
significant first, so its value is sum(d[i] * 5**i) and lies in [-WORD_MAX, WORD_MAX]. Inside
Python a word is simply that int; pents only matter when encoding, counting zeros or printing.
"""

from dataclasses import dataclass

PENTS = 16                       # pents per word
BITS_PER_PENT = 3                # stored as value + 2: 000=-2 001=-1 010=0 011=+1 100=+2
WORD_MOD = 5 ** PENTS            # 152,587,890,625
WORD_MAX = (WORD_MOD - 1) // 2   # 76,293,945,312; the range is symmetric
ZERO_WORD_BITS = int("010" * PENTS, 2)   # 0x492492492492: the 48-bit pattern of the word 0

# Memory: 5**7 words with *balanced* addresses, so a 7-pent field reaches every word.
ADDR_PENTS = 7
MEM_WORDS = 5 ** ADDR_PENTS      # 78,125
ADDR_MAX = (MEM_WORDS - 1) // 2  # 39,062
ADDR_MIN = -ADDR_MAX

PENT_SYMBOLS = {-2: "⊖", -1: "-", 0: "0", 1: "+", 2: "⊕"}
PENT_VALUES = {"⊖": -2, "=": -2, "-": -1, "0": 0, "+": 1, "1": 1, "⊕": 2, "2": 2}


# --------------------------------------------------------------------------- words and pents

def fits(value, pents=PENTS):
    """True if `value` is representable in `pents` balanced pents."""
    return abs(value) <= (5 ** pents - 1) // 2


def field_max(pents):
    return (5 ** pents - 1) // 2


def wrap(value):
    """Reduce an integer modulo 5**16 into the balanced word range (what the hardware keeps)."""
    if -WORD_MAX <= value <= WORD_MAX:
        return value
    return (value + WORD_MAX) % WORD_MOD - WORD_MAX


def to_pents(value, n=PENTS):
    """Balanced digits of `value`, least significant first. Raises if it needs more than n pents."""
    digits = []
    v = value
    for _ in range(n):
        r = v % 5
        if r > 2:
            r -= 5
        digits.append(r)
        v = (v - r) // 5
    if v:
        raise ValueError(f"{value} does not fit in {n} pents")
    return digits


def from_pents(digits):
    """Inverse of `to_pents` (least significant digit first)."""
    v = 0
    for d in reversed(digits):
        if d not in (-2, -1, 0, 1, 2):
            raise ValueError(f"not a pent: {d}")
        v = v * 5 + d
    return v


def zero_pents(value):
    """How many of the 16 pents of a word are 0 (what the power model calls 'free')."""
    return to_pents(value).count(0)


def pent_str(value, width=0):
    """Most-significant-first pent string, e.g. 42 -> '⊕⊖⊕' ; padded with '0' to `width`."""
    if value == 0 and width == 0:
        return "0"
    digits = to_pents(value, max(PENTS, width))
    while len(digits) > max(width, 1) and digits[-1] == 0:
        digits.pop()
    return "".join(PENT_SYMBOLS[d] for d in reversed(digits))


def parse_pent_digits(text):
    """Value of a pent-digit string written most significant first ('⊕⊖⊕' -> 42).

    Accepts ⊖ or '=' for -2, '-' for -1, '0', '+' or '1' for +1, ⊕ or '2' for +2."""
    v = 0
    for ch in text:
        if ch not in PENT_VALUES:
            raise ValueError(f"{ch!r} is not a pent digit")
        v = v * 5 + PENT_VALUES[ch]
    return v


def word_to_bits(value):
    """The 48-bit storage pattern of a word: pent i in bits 3i..3i+2 as (pent + 2)."""
    bits = 0
    for i, d in enumerate(to_pents(value)):
        bits |= (d + 2) << (3 * i)
    return bits


def bits_to_word(bits):
    """Inverse of `word_to_bits`. Codes 101, 110, 111 are invalid and raise ValueError."""
    if not 0 <= bits < 1 << (PENTS * BITS_PER_PENT):
        raise ValueError("word pattern wider than 48 bits")
    digits = []
    for i in range(PENTS):
        code = (bits >> (3 * i)) & 7
        if code > 4:
            raise ValueError(f"invalid pent code {code:03b} in pent {i}")
        digits.append(code - 2)
    return from_pents(digits)


def pack_pents(values):
    """Pack pent values (-2..2) sixteen per word, lane k of a word = pent k; pads with 0."""
    values = list(values)
    words = []
    for start in range(0, len(values), PENTS):
        chunk = values[start:start + PENTS]
        chunk += [0] * (PENTS - len(chunk))
        words.append(from_pents(chunk))
    return words


def pack_rows(matrix):
    """Pack a weight matrix [out][in] of pent values the way DOT reads it: row-major, each row
    padded with zeros to ceil(in / 16) words (spec §6.1)."""
    words = []
    for row in matrix:
        words.extend(pack_pents(row))
    return words


def unpack_pents(word):
    """The 16 lanes of a packed weight word, lane 0 first."""
    return to_pents(word)


# QUANT descriptor word: k in pents 0-2, rounding mode in pent 3, lo in pents 4-9, hi in 10-15.
QDESC_FIELDS = (("k", 0, 3), ("rnd", 3, 1), ("lo", 4, 6), ("hi", 10, 6))
QDESC_K_MAX = 62
QDESC_LIMIT = field_max(6)       # 7,812


def qdesc(k, rnd, lo, hi):
    """Build the QUANT descriptor word for clamp((x*m + r) >> k, lo, hi), r = 2**(k-1) if rnd."""
    if not 0 <= k <= QDESC_K_MAX:
        raise ValueError(f"QUANT shift k={k} not in 0..{QDESC_K_MAX}")
    if rnd not in (0, 1):
        raise ValueError(f"QUANT rounding mode {rnd} not in 0..1")
    for name, v in (("lo", lo), ("hi", hi)):
        if not -QDESC_LIMIT <= v <= QDESC_LIMIT:
            raise ValueError(f"QUANT {name}={v} not in {-QDESC_LIMIT}..{QDESC_LIMIT}")
    return k + rnd * 5 ** 3 + lo * 5 ** 4 + hi * 5 ** 10


def unpack_qdesc(word):
    """(k, rnd, lo, hi) of a descriptor word; raises ValueError if k or rnd is out of range."""
    d = to_pents(word)
    k, rnd = from_pents(d[0:3]), d[3]
    lo, hi = from_pents(d[4:10]), from_pents(d[10:16])
    if not 0 <= k <= QDESC_K_MAX:
        raise ValueError(f"QUANT descriptor has shift k={k}, not in 0..{QDESC_K_MAX}")
    if rnd not in (0, 1):
        raise ValueError(f"QUANT descriptor has rounding mode {rnd}, not in 0..1")
    return k, rnd, lo, hi


# --------------------------------------------------------------------------- registers

NREGS = 32
REG_ALIASES = {"ZERO": 0, "FP": 29, "SP": 30, "LR": 31}
REG_DISPLAY = {29: "FP", 30: "SP", 31: "LR"}


def parse_reg(name):
    """Register number for P0..P31, R0..R31, ZERO, FP, SP, LR (any case); None if not a register."""
    u = name.upper()
    if u in REG_ALIASES:
        return REG_ALIASES[u]
    if len(u) >= 2 and u[0] in "PR" and u[1:].isdigit() and (u[1:] == "0" or u[1] != "0"):
        n = int(u[1:])
        if n < NREGS:
            return n
    return None


def reg_name(n):
    return REG_DISPLAY.get(n, f"P{n}")


# --------------------------------------------------------------------------- the table

# Field positions inside an instruction word: name -> (first pent, number of pents).
FIELDS = {
    "OP": (0, 3),    # opcode, balanced value (only 0..59 are assigned)
    "A": (3, 3),     # register (0..31)
    "B": (6, 3),     # register
    "C": (9, 3),     # register
    "D": (12, 3),    # register
    "I7": (9, 7),    # 7-pent immediate, -39062..39062
    "I10": (6, 10),  # 10-pent immediate, -4882812..4882812
}
I7_MAX = field_max(7)
I10_MAX = field_max(10)


@dataclass(frozen=True)
class Operand:
    """One operand as written in assembly.

    kind "reg": one register field. kind "imm": one immediate field with range lo..hi.
    kind "addr": an absolute address (branch/jump target) in an immediate field.
    kind "mem": `[base + offset]`, a register field plus an immediate field.
    `default` makes the operand optional (a register name or an integer)."""
    name: str
    kind: str
    fields: tuple
    lo: int = 0
    hi: int = 0
    default: object = None

    def syntax(self):
        if self.kind == "mem":
            return f"[{self.name} + off]"
        return self.name if self.default is None else f"{self.name}?"


def _r(name, field, default=None):
    return Operand(name, "reg", (field,), default=default)


def _i(name, field, lo=None, hi=None, default=None):
    m = FIELDS[field][1]
    return Operand(name, "imm", (field,), -field_max(m) if lo is None else lo,
                   field_max(m) if hi is None else hi, default)


def _addr(name="target"):
    return Operand(name, "addr", ("I7",), ADDR_MIN, ADDR_MAX)


def _mem(base="rs"):
    return Operand(base, "mem", ("B", "I7"), -I7_MAX, I7_MAX)


@dataclass(frozen=True)
class Op:
    name: str
    opcode: int
    operands: tuple
    cycles: int          # base cost; `extra` says when more is added
    flags: str           # "V", "S" or "" (which SR pents the instruction writes)
    summary: str         # semantics, one line (the spec expands on it)
    group: str
    extra: str = ""      # variable part of the cycle cost

    def syntax(self):
        return ", ".join(o.syntax() for o in self.operands)

    def used_fields(self):
        return [f for o in self.operands for f in o.fields]


def _op(group, name, opcode, operands, cycles, flags, summary, extra=""):
    return Op(name, opcode, tuple(operands), cycles, flags, summary, group, extra)


_RD, _RS, _RS1, _RS2 = _r("rd", "A"), _r("rs", "B"), _r("rs1", "B"), _r("rs2", "C")

OPS = (
    # system and I/O
    _op("system", "HALT", 0, [_i("code", "I7", 0, 255, default=0)], 1, "",
        "stop; the host sees exit code `code` (the all-zero word is HALT 0)"),
    _op("system", "NOP", 1, [], 1, "", "do nothing"),
    _op("system", "OUT", 2, [_r("rs", "A"), _i("port", "I7", 0, 1)], 1, "",
        "port 0: write character U+rs to the host; port 1: write rs in decimal and a newline"),
    _op("system", "IN", 3, [_r("rd", "A"), _i("port", "I7", 0, 0)], 1, "",
        "rd <- next value of the host input queue, or -1 when it is empty"),
    _op("system", "MFSR", 4, [_r("rd", "A")], 1, "", "rd <- SR"),
    _op("system", "MTSR", 5, [_r("rs", "A")], 1, "", "SR <- rs"),
    # moves
    _op("move", "MOVI", 10, [_RD, _i("imm", "I10")], 1, "", "rd <- imm"),
    _op("move", "LUI", 11, [_RD, _i("imm", "I10")], 1, "V", "rd <- wrap(imm * 5^7)"),
    _op("move", "MOV", 12, [_RD, _RS], 1, "", "rd <- rs"),
    # arithmetic
    _op("arith", "ADD", 20, [_RD, _RS1, _RS2], 1, "V", "rd <- wrap(rs1 + rs2)"),
    _op("arith", "SUB", 21, [_RD, _RS1, _RS2], 1, "V", "rd <- wrap(rs1 - rs2)"),
    _op("arith", "ADDI", 22, [_RD, _RS, _i("imm", "I7")], 1, "V", "rd <- wrap(rs + imm)"),
    _op("arith", "NEG", 23, [_RD, _RS], 1, "", "rd <- -rs (every pent negated; never overflows)"),
    _op("arith", "ABS", 24, [_RD, _RS], 1, "", "rd <- abs(rs) (never overflows)"),
    _op("arith", "MUL2", 25, [_RD, _RS], 1, "V", "rd <- wrap(2 * rs)"),
    _op("arith", "MUL", 26, [_RD, _RS1, _RS2], 3, "V", "rd <- wrap(rs1 * rs2)"),
    _op("arith", "MULI", 27, [_RD, _RS, _i("imm", "I7")], 3, "V", "rd <- wrap(rs * imm)"),
    _op("arith", "DIV", 28, [_RD, _RS1, _RS2], 16, "",
        "rd <- rs1 / rs2 truncated toward zero; fault if rs2 = 0"),
    _op("arith", "MOD", 29, [_RD, _RS1, _RS2], 16, "",
        "rd <- rs1 - rs2 * (rs1 / rs2), sign of rs1; fault if rs2 = 0"),
    _op("arith", "SHL", 30, [_RD, _RS, _i("n", "I7", 0, 16)], 1, "V", "rd <- wrap(rs * 5^n)"),
    _op("arith", "SHR", 31, [_RD, _RS, _i("n", "I7", 0, 16)], 1, "",
        "rd <- rs / 5^n rounded to nearest (drop the n low pents)"),
    _op("arith", "SRA", 32, [_RD, _RS, _i("n", "I7", 0, 40)], 1, "",
        "rd <- floor(rs / 2^n) (binary arithmetic shift right)"),
    # compare and select
    _op("compare", "CMP", 35, [_RD, _RS1, _RS2], 1, "", "rd <- sign(rs1 - rs2), exact: -1, 0 or +1"),
    _op("compare", "MIN", 36, [_RD, _RS1, _RS2], 1, "", "rd <- min(rs1, rs2)"),
    _op("compare", "MAX", 37, [_RD, _RS1, _RS2], 1, "", "rd <- max(rs1, rs2)"),
    _op("compare", "SIGN", 38, [_RD, _RS], 1, "", "rd <- sign(rs): -1, 0 or +1"),
    _op("compare", "CLAMP", 39, [_RD, _RS, _r("rlo", "C"), _r("rhi", "D")], 1, "S",
        "rd <- rlo if rs < rlo, else rhi if rs > rhi, else rs"),
    # memory
    _op("memory", "LOAD", 40, [_RD, _mem("rs")], 2, "", "rd <- M[rs + off]"),
    _op("memory", "STORE", 41, [_r("rs", "A"), _mem("rb")], 2, "", "M[rb + off] <- rs"),
    _op("memory", "PUSH", 42, [_r("rs", "A")], 2, "", "SP <- SP - 1; M[SP] <- rs"),
    _op("memory", "POP", 43, [_r("rd", "A")], 2, "", "rd <- M[SP]; SP <- SP + 1"),
    # control flow: targets are absolute addresses
    _op("control", "BEQ", 45, [_r("rs1", "A"), _r("rs2", "B", default="P0"), _addr()], 1, "",
        "if rs1 = rs2: PC <- target", extra="+1 if taken"),
    _op("control", "BNE", 46, [_r("rs1", "A"), _r("rs2", "B", default="P0"), _addr()], 1, "",
        "if rs1 != rs2: PC <- target", extra="+1 if taken"),
    _op("control", "BLT", 47, [_r("rs1", "A"), _r("rs2", "B", default="P0"), _addr()], 1, "",
        "if rs1 < rs2: PC <- target", extra="+1 if taken"),
    _op("control", "BGE", 48, [_r("rs1", "A"), _r("rs2", "B", default="P0"), _addr()], 1, "",
        "if rs1 >= rs2: PC <- target", extra="+1 if taken"),
    _op("control", "BGT", 49, [_r("rs1", "A"), _r("rs2", "B", default="P0"), _addr()], 1, "",
        "if rs1 > rs2: PC <- target", extra="+1 if taken"),
    _op("control", "BLE", 50, [_r("rs1", "A"), _r("rs2", "B", default="P0"), _addr()], 1, "",
        "if rs1 <= rs2: PC <- target", extra="+1 if taken"),
    _op("control", "JUMP", 51, [_addr()], 2, "", "PC <- target"),
    _op("control", "CALL", 52, [_addr()], 2, "", "LR <- PC + 1; PC <- target"),
    _op("control", "RET", 53, [], 2, "", "PC <- LR"),
    _op("control", "JR", 54, [_r("rs", "A")], 2, "", "PC <- rs"),
    _op("control", "JALR", 55, [_RD, _RS], 2, "", "t <- rs; rd <- PC + 1; PC <- t"),
    # neural network
    _op("nn", "DOT", 57, [_RD, _r("rw", "B"), _r("rx", "C")], 2, "V",
        "rd <- wrap(rd + sum_k w_k * M[rx + k]) with w = M[rw]; rw <- rw + 1; rx <- rx + 16",
        extra="+1 per nonzero pent of w"),
    _op("nn", "QUANT", 58, [_RD, _RS, _r("rm", "C"), _r("rq", "D")], 2, "S",
        "rd <- clamp(floor((rs * rm + r) / 2^k), lo, hi), exact; (k, rnd, lo, hi) unpacked "
        "from rq; r = 2^(k-1) if rnd = 1 and k > 0, else 0"),
    _op("nn", "RELU", 59, [_RD, _RS], 1, "", "rd <- max(rs, 0)"),
)

BY_NAME = {op.name: op for op in OPS}
BY_OPCODE = {op.opcode: op for op in OPS}
ALIASES = {"JMP": "JUMP"}
GROUP_TITLES = {
    "system": "System and I/O", "move": "Moves", "arith": "Arithmetic",
    "compare": "Compare and select", "memory": "Memory", "control": "Control flow",
    "nn": "Neural network",
}


def _check_table():
    """Guard the table itself: unique names/opcodes, opcodes fit, fields do not overlap."""
    assert len(BY_NAME) == len(OPS) and len(BY_OPCODE) == len(OPS)
    for op in OPS:
        assert abs(op.opcode) <= field_max(3), op
        used = set()
        for f in op.used_fields():
            start, n = FIELDS[f]
            span = set(range(start, start + n))
            assert not span & used and not span & {0, 1, 2}, (op.name, f)
            used |= span
        for o in op.operands:
            if o.kind in ("imm", "addr", "mem"):
                m = FIELDS[o.fields[-1]][1]
                assert -field_max(m) <= o.lo <= o.hi <= field_max(m), (op.name, o)


_check_table()


# --------------------------------------------------------------------------- encode / decode

class IllegalInstruction(ValueError):
    """A word that is not a valid instruction (unknown opcode, bad field, stray pents)."""


def _put(digits, field, value):
    start, n = FIELDS[field]
    digits[start:start + n] = to_pents(value, n)


def encode(op, values):
    """Encode `op` (an Op or mnemonic) with one value per operand (mem operands: (reg, off)).

    Registers are ints 0..31. Raises ValueError when a value is out of its range."""
    if isinstance(op, str):
        op = BY_NAME[op]
    if len(values) != len(op.operands):
        raise ValueError(f"{op.name} takes {len(op.operands)} operands, got {len(values)}")
    digits = [0] * PENTS
    _put(digits, "OP", op.opcode)
    for o, v in zip(op.operands, values):
        if o.kind == "reg":
            _check_reg(op, o, v)
            _put(digits, o.fields[0], v)
        elif o.kind == "mem":
            reg, off = v
            _check_reg(op, o, reg)
            _check_imm(op, o, off)
            _put(digits, o.fields[0], reg)
            _put(digits, o.fields[1], off)
        else:
            _check_imm(op, o, v)
            _put(digits, o.fields[0], v)
    return from_pents(digits)


def _check_reg(op, o, v):
    if not (isinstance(v, int) and 0 <= v < NREGS):
        raise ValueError(f"{op.name} {o.name}: register {v!r} not in 0..31")


def _check_imm(op, o, v):
    if not (isinstance(v, int) and o.lo <= v <= o.hi):
        raise ValueError(f"{op.name} {o.name}: {v!r} not in {o.lo}..{o.hi}")


def _get(digits, field):
    start, n = FIELDS[field]
    return from_pents(digits[start:start + n])


def decode(word):
    """(Op, values) of an instruction word; IllegalInstruction if it is not one."""
    digits = to_pents(word)
    opcode = _get(digits, "OP")
    op = BY_OPCODE.get(opcode)
    if op is None:
        raise IllegalInstruction(f"unknown opcode {opcode}")
    used = {0, 1, 2}
    values = []
    for o in op.operands:
        for f in o.fields:
            start, n = FIELDS[f]
            used.update(range(start, start + n))
        if o.kind == "reg":
            v = _get(digits, o.fields[0])
            if not 0 <= v < NREGS:
                raise IllegalInstruction(f"{op.name}: register field {o.name} = {v}")
        elif o.kind == "mem":
            reg, off = _get(digits, o.fields[0]), _get(digits, o.fields[1])
            if not 0 <= reg < NREGS:
                raise IllegalInstruction(f"{op.name}: register field {o.name} = {reg}")
            v = (reg, off)
        else:
            v = _get(digits, o.fields[0])
            if not o.lo <= v <= o.hi:
                raise IllegalInstruction(f"{op.name}: {o.name} = {v} not in {o.lo}..{o.hi}")
        values.append(v)
    stray = [i for i in range(PENTS) if i not in used and digits[i] != 0]
    if stray:
        raise IllegalInstruction(f"{op.name}: unused pents {stray} are not zero")
    return op, tuple(values)


def format_operands(op, values, target_name=None):
    """Assembly text of the operands (the disassembler and the trace use this).

    Optional operands equal to their default are left out (`BGE P4, done`, `HALT`)."""
    parts = []
    for o, v in zip(op.operands, values):
        if o.default is not None and v == (parse_reg(o.default) if o.kind == "reg" else o.default):
            continue
        if o.kind == "reg":
            parts.append(reg_name(v))
        elif o.kind == "mem":
            reg, off = v
            if reg == 0:
                parts.append(f"[{off}]")
            else:
                parts.append(f"[{reg_name(reg)}]" if off == 0 else
                             f"[{reg_name(reg)} {'-' if off < 0 else '+'} {abs(off)}]")
        elif o.kind == "addr" and target_name is not None:
            name = target_name(v)
            parts.append(name if name is not None else str(v))
        else:
            parts.append(str(v))
    return ", ".join(parts)


def format_instruction(op, values, target_name=None):
    ops = format_operands(op, values, target_name)
    return f"{op.name:<6} {ops}".rstrip() if ops else op.name


# --------------------------------------------------------------------------- documentation

def _fields_doc(op):
    out = []
    for o in op.operands:
        for f in o.fields:
            start, n = FIELDS[f]
            label = o.name if o.kind != "mem" or f != "I7" else "off"
            out.append(f"{label}={f}")
    return " ".join(out) if out else "-"


def markdown_table():
    """The instruction table of docs/pentary-isa.md, generated from OPS."""
    lines = []
    for group, title in GROUP_TITLES.items():
        lines.append(f"#### {title}")
        lines.append("")
        lines.append("| Mnemonic | Operands | Opcode | Fields | Cycles | Flags | Semantics |")
        lines.append("|---|---|---|---|---|---|---|")
        for op in OPS:
            if op.group != group:
                continue
            cycles = str(op.cycles) + (f" ({op.extra})" if op.extra else "")
            ranges = []
            for o in op.operands:
                if o.kind == "imm" and (o.lo, o.hi) != (-field_max(FIELDS[o.fields[0]][1]),
                                                        field_max(FIELDS[o.fields[0]][1])):
                    ranges.append(f"{o.name} in {o.lo}..{o.hi}")
                if o.default is not None:
                    ranges.append(f"{o.name} defaults to {o.default}")
            sem = op.summary + (f" ({'; '.join(ranges)})" if ranges else "")
            operands = op.syntax() or "-"
            lines.append(f"| `{op.name}` | `{operands}` | {op.opcode} | {_fields_doc(op)} | "
                         f"{cycles} | {op.flags or '-'} | {sem} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


DOC_BEGIN = "<!-- isa-table:begin"
DOC_END = "<!-- isa-table:end -->"


def doc_table(text):
    """The generated table as it stands in the spec text (between the markers), or None."""
    i, j = text.find(DOC_BEGIN), text.find(DOC_END)
    if i < 0 or j < i:
        return None
    return text[text.index("\n", i) + 1:j].strip("\n") + "\n"


def update_doc(text):
    """Spec text with the generated table put between the markers."""
    i, j = text.find(DOC_BEGIN), text.find(DOC_END)
    if i < 0 or j < i:
        raise ValueError("the isa-table markers are missing")
    start = text.index("\n", i) + 1
    return text[:start] + "\n" + markdown_table() + "\n" + text[j:]


if __name__ == "__main__":
    # python -m lbc.backends.pentary.isa              print the instruction table
    # python -m lbc.backends.pentary.isa --update F   rewrite the table inside the spec F
    import sys
    if len(sys.argv) == 3 and sys.argv[1] == "--update":
        with open(sys.argv[2], encoding="utf-8") as f:
            doc = f.read()
        with open(sys.argv[2], "w", encoding="utf-8") as f:
            f.write(update_doc(doc))
    else:
        print(markdown_table(), end="")
