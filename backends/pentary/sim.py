"""The pentary simulator: word-exact, deterministic, with the cycle model of docs/pentary-isa.md §9.

Words are Python ints holding the balanced value; pents appear only when counting zeros (cached
per value). Dispatch is by mnemonic from `isa.OPS`: every table row has a `_x_<name>` method here,
checked when the class is defined. An instruction that faults has no effect.
"""

from collections import deque
from dataclasses import dataclass, field

from lbc.errors import LbcError

from . import isa
from .image import Image

OFF = isa.ADDR_MAX               # memory index = address + OFF
DEFAULT_MAX_CYCLES = 10_000_000
_P5_7 = 5 ** 7
WMAX = isa.WORD_MAX


class _Halt(Exception):
    def __init__(self, code):
        self.code = code


class _Fault(Exception):
    pass


@dataclass
class Stats:
    """What a run did. `status`: 'ready', 'halted', 'fault', 'limit' (max cycles) or 'break'."""
    status: str = "ready"
    exit_code: int = None
    fault: str = None
    pc: int = 0
    instructions: int = 0
    cycles: int = 0
    reads: int = 0               # data words read (LOAD, POP, DOT weight and activation words)
    writes: int = 0              # data words written (STORE, PUSH)
    zero_pents_read: int = 0     # zero pents among the data words read
    dot_lanes: int = 0           # weight lanes presented to DOT (16 per DOT)
    dot_zero_lanes: int = 0      # ... of which were zero (skipped: no read, no cycle)
    overflowed: bool = False     # sticky V: some wrapping result did not fit a word
    saturated: bool = False      # sticky S: some CLAMP/QUANT clipped
    op_counts: dict = field(default_factory=dict)

    @property
    def pents_read(self):
        return self.reads * isa.PENTS

    @property
    def zero_pent_fraction(self):
        """Fraction of the pents of all data words read that were zero (0.0 if nothing read)."""
        return self.zero_pents_read / self.pents_read if self.reads else 0.0

    @property
    def dot_zero_fraction(self):
        return self.dot_zero_lanes / self.dot_lanes if self.dot_lanes else 0.0

    def summary(self):
        lines = [
            f"status: {self.status}" + (f" (exit code {self.exit_code})" if self.status == "halted" else "")
            + (f": {self.fault}" if self.fault else ""),
            f"instructions: {self.instructions}",
            f"cycles: {self.cycles}",
            f"memory reads: {self.reads} words ({self.pents_read} pents, "
            f"{self.zero_pent_fraction:.1%} zero)",
            f"memory writes: {self.writes} words",
            f"DOT lanes: {self.dot_lanes} ({self.dot_zero_lanes} zero, {self.dot_zero_fraction:.1%})",
            f"overflow: {'yes' if self.overflowed else 'no'}, saturation: "
            f"{'yes' if self.saturated else 'no'}",
        ]
        return "\n".join(lines)


# decoded instructions shared by all simulators: word -> (Op, flattened operand values)
_DECODED = {}
_ZEROS = {}
_LANES = {}
_QDESC = {}


def _decode(word):
    op, values = isa.decode(word)
    args = []
    for v in values:
        if isinstance(v, tuple):
            args.extend(v)
        else:
            args.append(v)
    d = (op, tuple(args))
    _DECODED[word] = d
    return d


def _zeros(v):
    z = _ZEROS.get(v)
    if z is None:
        if len(_ZEROS) > 1 << 20:        # a cache, not a record: keep it bounded
            _ZEROS.clear()
        z = _ZEROS[v] = isa.zero_pents(v)
    return z


def _lanes(w):
    lanes = _LANES.get(w)
    if lanes is None:
        lanes = _LANES[w] = tuple((k, d) for k, d in enumerate(isa.to_pents(w)) if d)
    return lanes


def _wrap_quiet(x):
    return x if -WMAX <= x <= WMAX else isa.wrap(x)


class Simulator:
    """Run an `Image`. Registers, memory and stats are plain attributes; see `run`."""

    def __init__(self, image, inputs=(), out=None):
        if isinstance(image, (bytes, bytearray)):
            image = Image.from_bytes(image)
        self.image = image
        self.mem = [0] * isa.MEM_WORDS
        for addr, w in image.words():
            self.mem[addr + OFF] = w
        self.regs = [0] * isa.NREGS
        self.pc = image.entry
        self.v = self.s = self.vs = self.ss = 0     # SR pents 0..3
        self.sr_rest = 0                           # SR pents 4..15 (kept, unused by the machine)
        self.inputs = deque(self._check_word(v, "input value") for v in inputs)
        self.out = out
        self._out_chunks = []
        self.stats = Stats(pc=self.pc)
        self._handlers = {op.opcode: getattr(self, "_x_" + op.name.lower()) for op in isa.OPS}
        self.last_write = None
        self._names = None

    # ---- host interface
    @staticmethod
    def _check_word(v, what):
        if not isinstance(v, int) or not -WMAX <= v <= WMAX:
            raise LbcError(f"{what} {v!r} does not fit in a 16-pent word "
                           f"(allowed range is {-WMAX}..{WMAX})")
        return v

    def _where(self, where):
        if isinstance(where, str):
            return self.image.address(where)
        return where

    def _index(self, addr):
        if not isa.ADDR_MIN <= addr <= isa.ADDR_MAX:
            raise LbcError(f"address {addr} is outside memory ({isa.ADDR_MIN}..{isa.ADDR_MAX})")
        return addr + OFF

    def read(self, where, n=None):
        """Words at an address or symbol. n defaults to the symbol's size (1 for an address)."""
        addr = self._where(where)
        if n is None:
            n = max(self.image.symbols[where].size, 1) if isinstance(where, str) else 1
        return [self.mem[self._index(a)] for a in range(addr, addr + n)]

    def read_word(self, where):
        return self.mem[self._index(self._where(where))]

    def write(self, where, values):
        """Store one word or a list of words at an address or symbol (not counted in stats)."""
        addr = self._where(where)
        if isinstance(values, int):
            values = [values]
        values = list(values)
        if isinstance(where, str):
            size = self.image.symbols[where].size
            if size and len(values) > size:
                raise LbcError(f"{len(values)} words do not fit in '{where}' ({size} words)")
        for i, v in enumerate(values):
            self.mem[self._index(addr + i)] = self._check_word(v, "value")

    def reg(self, r):
        """Value of a register given as a number or a name ('P1', 'SP', ...)."""
        return self.regs[self._regno(r)]

    def set_reg(self, r, value):
        n = self._regno(r)
        if n:
            self.regs[n] = self._check_word(value, "register value")

    @staticmethod
    def _regno(r):
        n = isa.parse_reg(r) if isinstance(r, str) else r
        if n is None or not 0 <= n < isa.NREGS:
            raise LbcError(f"unknown register {r!r} (P0..P31, ZERO, FP, SP, LR)")
        return n

    @property
    def output(self):
        """Everything the program wrote with OUT, as text."""
        return "".join(self._out_chunks)

    def sr(self):
        return self.v + 5 * self.s + 25 * self.vs + 125 * self.ss + self.sr_rest

    # ---- execution
    def run(self, max_cycles=DEFAULT_MAX_CYCLES, breakpoints=(), trace=None):
        """Run until HALT, a fault, a breakpoint or `max_cycles` more cycles; return `self.stats`.

        `breakpoints`: addresses or symbol names; the machine stops *before* executing one
        (status 'break'), and a later `run` continues from there. `trace`: a callable taking one
        line of text per executed instruction (e.g. `print`)."""
        st = self.stats
        if st.status in ("halted", "fault"):
            return st
        bps = {self._where(b) for b in breakpoints}
        resume = st.status == "break"
        st.status = "running"
        st.fault = None
        limit = st.cycles + max_cycles
        mem, decoded, handlers, counts = self.mem, _DECODED, self._handlers, st.op_counts
        pc = self.pc
        try:
            while True:
                pc = self.pc
                if bps and pc in bps and not resume:
                    st.status = "break"
                    break
                resume = False
                if st.cycles >= limit:
                    st.status = "limit"
                    break
                idx = pc + OFF
                if not 0 <= idx < isa.MEM_WORDS:
                    raise _Fault(f"PC {pc} is outside memory")
                w = mem[idx]
                d = decoded.get(w)
                if d is None:
                    try:
                        d = _decode(w)
                    except isa.IllegalInstruction as e:
                        raise _Fault(f"illegal instruction {isa.pent_str(w)} ({e})") from None
                op, args = d
                self.pc = pc + 1
                if trace is not None:
                    before = list(self.regs)
                    self.last_write = None
                    start = st.cycles
                try:
                    extra = handlers[op.opcode](*args)
                except _Fault:
                    self.pc = pc
                    raise
                st.instructions += 1
                st.cycles += op.cycles + extra
                counts[op.name] = counts.get(op.name, 0) + 1
                if trace is not None:
                    trace(self._trace_line(start, pc, op, args, before))
        except _Halt as h:
            self.pc = pc
            st.instructions += 1
            st.cycles += 1
            counts["HALT"] = counts.get("HALT", 0) + 1
            st.status, st.exit_code = "halted", h.code
            if trace is not None:
                trace(self._trace_line(st.cycles - 1, pc, isa.BY_NAME["HALT"], (h.code,), self.regs))
        except _Fault as f:
            st.status, st.fault = "fault", str(f)
        st.pc = self.pc
        st.overflowed, st.saturated = bool(self.vs), bool(self.ss)
        return st

    def _trace_line(self, cycle, pc, op, args, before):
        values, i = [], 0
        for o in op.operands:
            if o.kind == "mem":
                values.append((args[i], args[i + 1]))
                i += 2
            else:
                values.append(args[i])
                i += 1
        if self._names is None:
            self._names = self.image.label_names()
        text = isa.format_instruction(op, values, self._names.get)
        effects = [f"{isa.reg_name(r)}={v}" for r, (b, v) in enumerate(zip(before, self.regs)) if b != v]
        if self.last_write is not None:
            effects.append(f"M[{self.last_write[0]}]={self.last_write[1]}")
        tail = ("  ; " + " ".join(effects)) if effects else ""
        return f"{cycle:>8} {pc:>6}: {text}{tail}"

    # ---- helpers used by the handlers
    def _fault(self, msg):
        raise _Fault(msg)

    def _wr(self, r, x):
        """Write a wrapping result: sets V from the exact value."""
        if -WMAX <= x <= WMAX:
            self.v = 0
        else:
            w = isa.wrap(x)
            self.v = 1 if x > w else -1
            self.vs = 1
            x = w
        if r:
            self.regs[r] = x

    def _set(self, r, x):
        if r:
            self.regs[r] = x

    def _read(self, addr):
        idx = addr + OFF
        if not 0 <= idx < isa.MEM_WORDS:
            raise _Fault(f"read outside memory at address {addr}")
        v = self.mem[idx]
        st = self.stats
        st.reads += 1
        st.zero_pents_read += _zeros(v)
        return v

    def _write(self, addr, v):
        idx = addr + OFF
        if not 0 <= idx < isa.MEM_WORDS:
            raise _Fault(f"write outside memory at address {addr}")
        self.mem[idx] = v
        self.stats.writes += 1
        self.last_write = (addr, v)

    def _clip(self, r, x, lo, hi):
        if x < lo:
            x, s = lo, -1
        elif x > hi:
            x, s = hi, 1
        else:
            s = 0
        self.s = s
        if s:
            self.ss = 1
        self._set(r, x)

    # ---- one method per table row: _x_<mnemonic>(*operand values) -> extra cycles
    def _x_halt(self, code):
        raise _Halt(code)

    def _x_nop(self):
        return 0

    def _x_out(self, a, port):
        v = self.regs[a]
        if port == 0:
            if not 0 <= v <= 0x10FFFF:
                raise _Fault(f"OUT port 0: {v} is not a character code")
            text = chr(v)
        else:
            text = f"{v}\n"
        self._out_chunks.append(text)
        if self.out is not None:
            self.out(text)
        return 0

    def _x_in(self, a, port):
        self._set(a, self.inputs.popleft() if self.inputs else -1)
        return 0

    def _x_mfsr(self, a):
        self._set(a, self.sr())
        return 0

    def _x_mtsr(self, a):
        d = isa.to_pents(self.regs[a])
        self.v, self.s, self.vs, self.ss = d[0], d[1], d[2], d[3]
        self.sr_rest = self.regs[a] - (d[0] + 5 * d[1] + 25 * d[2] + 125 * d[3])
        return 0

    def _x_movi(self, a, imm):
        self._set(a, imm)
        return 0

    def _x_lui(self, a, imm):
        self._wr(a, imm * _P5_7)
        return 0

    def _x_mov(self, a, b):
        self._set(a, self.regs[b])
        return 0

    def _x_add(self, a, b, c):
        self._wr(a, self.regs[b] + self.regs[c])
        return 0

    def _x_sub(self, a, b, c):
        self._wr(a, self.regs[b] - self.regs[c])
        return 0

    def _x_addi(self, a, b, imm):
        self._wr(a, self.regs[b] + imm)
        return 0

    def _x_neg(self, a, b):
        self._set(a, -self.regs[b])
        return 0

    def _x_abs(self, a, b):
        self._set(a, abs(self.regs[b]))
        return 0

    def _x_mul2(self, a, b):
        self._wr(a, 2 * self.regs[b])
        return 0

    def _x_mul(self, a, b, c):
        self._wr(a, self.regs[b] * self.regs[c])
        return 0

    def _x_muli(self, a, b, imm):
        self._wr(a, self.regs[b] * imm)
        return 0

    def _divmod(self, b, c):
        x, y = self.regs[b], self.regs[c]
        if y == 0:
            raise _Fault("division by zero")
        q = abs(x) // abs(y)
        if (x < 0) != (y < 0):
            q = -q
        return q, x - y * q

    def _x_div(self, a, b, c):
        self._set(a, self._divmod(b, c)[0])
        return 0

    def _x_mod(self, a, b, c):
        self._set(a, self._divmod(b, c)[1])
        return 0

    def _x_shl(self, a, b, n):
        self._wr(a, self.regs[b] * 5 ** n)
        return 0

    def _x_shr(self, a, b, n):
        x = self.regs[b]
        if n:
            m = 5 ** n
            h = (m - 1) // 2
            low = (x + h) % m - h            # the n low balanced pents
            x = (x - low) // m
        self._set(a, x)
        return 0

    def _x_sra(self, a, b, n):
        self._set(a, self.regs[b] >> n)
        return 0

    def _x_cmp(self, a, b, c):
        x, y = self.regs[b], self.regs[c]
        self._set(a, (x > y) - (x < y))
        return 0

    def _x_min(self, a, b, c):
        self._set(a, min(self.regs[b], self.regs[c]))
        return 0

    def _x_max(self, a, b, c):
        self._set(a, max(self.regs[b], self.regs[c]))
        return 0

    def _x_sign(self, a, b):
        x = self.regs[b]
        self._set(a, (x > 0) - (x < 0))
        return 0

    def _x_clamp(self, a, b, c, d):
        self._clip(a, self.regs[b], self.regs[c], self.regs[d])
        return 0

    def _x_load(self, a, b, off):
        self._set(a, self._read(self.regs[b] + off))
        return 0

    def _x_store(self, a, b, off):
        self._write(self.regs[b] + off, self.regs[a])
        return 0

    def _x_push(self, a):
        sp = self.regs[30] - 1
        self._write(sp, self.regs[a])
        self.regs[30] = sp
        return 0

    def _x_pop(self, a):
        v = self._read(self.regs[30])
        self.regs[30] = _wrap_quiet(self.regs[30] + 1)
        self._set(a, v)
        return 0

    def _branch(self, taken, target):
        if taken:
            self.pc = target
            return 1
        return 0

    def _x_beq(self, a, b, t):
        return self._branch(self.regs[a] == self.regs[b], t)

    def _x_bne(self, a, b, t):
        return self._branch(self.regs[a] != self.regs[b], t)

    def _x_blt(self, a, b, t):
        return self._branch(self.regs[a] < self.regs[b], t)

    def _x_bge(self, a, b, t):
        return self._branch(self.regs[a] >= self.regs[b], t)

    def _x_bgt(self, a, b, t):
        return self._branch(self.regs[a] > self.regs[b], t)

    def _x_ble(self, a, b, t):
        return self._branch(self.regs[a] <= self.regs[b], t)

    def _x_jump(self, t):
        self.pc = t
        return 0

    def _x_call(self, t):
        self.regs[31] = self.pc
        self.pc = t
        return 0

    def _x_ret(self):
        self.pc = self.regs[31]
        return 0

    def _x_jr(self, a):
        self.pc = self.regs[a]
        return 0

    def _x_jalr(self, a, b):
        t = self.regs[b]
        self._set(a, self.pc)
        self.pc = t
        return 0

    def _x_dot(self, a, b, c):
        regs = self.regs
        wa, xa = regs[b], regs[c]
        w = self._read(wa)
        lanes = _lanes(w)
        n = len(lanes)
        acc = regs[a]
        st = self.stats
        if n:
            base = xa + OFF
            if base + lanes[0][0] < 0 or base + lanes[-1][0] >= isa.MEM_WORDS:
                bad = next(xa + k for k, _ in lanes if not 0 <= base + k < isa.MEM_WORDS)
                st.reads -= 1                      # the instruction has no effect
                st.zero_pents_read -= _zeros(w)
                raise _Fault(f"DOT read outside memory at address {bad}")
            mem = self.mem
            zsum = 0
            zeros = _ZEROS
            for k, wk in lanes:
                x = mem[base + k]
                acc += wk * x
                z = zeros.get(x)
                if z is None:
                    z = _zeros(x)
                zsum += z
            st.reads += n
            st.zero_pents_read += zsum
        st.dot_lanes += isa.PENTS
        st.dot_zero_lanes += isa.PENTS - n
        if b:
            regs[b] = _wrap_quiet(wa + 1)
        if c:
            regs[c] = _wrap_quiet(xa + isa.PENTS)
        self._wr(a, acc)
        return n

    def _x_quant(self, a, b, c, d):
        desc = self.regs[d]
        q = _QDESC.get(desc)
        if q is None:
            try:
                q = _QDESC[desc] = isa.unpack_qdesc(desc)
            except ValueError as e:
                raise _Fault(f"QUANT: bad descriptor {desc}: {e}") from None
        k, rnd, lo, hi = q
        x = self.regs[b] * self.regs[c]
        if rnd and k:
            x += 1 << (k - 1)
        self._clip(a, x >> k, lo, hi)
        return 0

    def _x_relu(self, a, b):
        x = self.regs[b]
        self._set(a, x if x > 0 else 0)
        return 0


def _check_handlers():
    missing = [op.name for op in isa.OPS if not hasattr(Simulator, "_x_" + op.name.lower())]
    assert not missing, f"simulator lacks handlers for {missing}"


_check_handlers()


def run(image, inputs=(), max_cycles=DEFAULT_MAX_CYCLES):
    """Convenience: simulate `image` to completion and return (simulator, stats)."""
    sim = Simulator(image, inputs=inputs)
    return sim, sim.run(max_cycles)
