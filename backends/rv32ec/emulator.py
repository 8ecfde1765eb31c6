"""Unicorn harness for lbc's RV32EC firmware (CH32V003 memory map: flash at 0x0, SRAM at 0x20000000).

`Firmware(elf)` loads the image as a flasher would (every PT_LOAD at its load address), and runs it
from the reset entry to the `_exit` symbol:

* the input is written into the activation arena (symbol `lbc_ram` + offset) before reset - crt0 never
  zeroes that section - and the output is read back the same way;
* `count=True` adds a block hook that counts executed instructions exactly (per translation block,
  2-byte RVC or 4-byte encodings), the instructions inside `lbc_infer` alone, loads/stores, taken
  branches, and from those an estimate of CH32V003 cycles;
* RAM is filled with 0xA5 before every run; the stack peak is the lowest byte of the stack region that
  changed. A stack that reached the end of its region, a write below the stack bottom while sp is below
  it (checked when counting), or any access to the unmapped slack above the part's RAM is a fault.

The board firmware (main.c with -DLBC_BOARD) talks to peripherals; `Peripherals` models the few it
uses at register level: RCC (HSI/PLL ready flags follow their enable bits, SWS follows SW), FLASH
ACTLR and GPIO as plain registers, USART1 (STATR always reports TXE | TC, every byte written to DATAR
is captured in Stats.uart) and SysTick (CNT is the running cycle estimate while counting). Any other
peripheral address reads 0 and ignores writes.

unicorn's RISC-V CPU has the M extension and 32 registers; `isa.check_elf` rejects those statically and
the qemu cross-check runs a CPU without M.
"""

from dataclasses import dataclass, field

import numpy as np

from lbc.errors import InternalError, ToolchainError

FLASH_BASE = 0x00000000
RAM_BASE = 0x20000000
POISON = 0xA5
PAGE = 0x1000
TIMEOUT_US = 20_000_000  # a runaway program stops after 20 s (an instruction limit would force a per-instruction hook)

# CH32V003 timing model for code executing from flash (see the BitNetMCU measurement notes): 16-bit
# instructions 1 cycle, 32-bit 2 cycles (one flash wait state), +1 per load or store, +3 per taken
# branch or jump. An estimate, not a cycle-accurate simulation.
CYCLES_16, CYCLES_32, CYCLES_MEM, CYCLES_TAKEN = 1, 2, 1, 3


class FirmwareFault(InternalError):
    """The generated firmware crashed, overflowed its stack or ran away: a compiler bug."""


def _unicorn():
    try:
        import unicorn
        from unicorn import riscv_const
    except ImportError:
        raise ToolchainError("the RV32EC emulator needs the Python package unicorn (pip install unicorn; "
                             "make test installs it)") from None
    return unicorn, riscv_const


def _page(n):
    return (n + PAGE - 1) // PAGE * PAGE


PERIPH_BASE, PERIPH_SIZE = 0x40000000, 0x24000  # APB/AHB peripherals up to FLASH_R
SYSTICK_BASE, SYSTICK_SIZE = 0xE000F000, 0x1000
RCC_CTLR, RCC_CFGR0 = 0x40021000, 0x40021004
USART1_STATR, USART1_DATAR = 0x40013800, 0x40013804
STK_CTLR, STK_CNT = 0xE000F000, 0xE000F008
HSION, HSIRDY, PLLON, PLLRDY = 1 << 0, 1 << 1, 1 << 24, 1 << 25
USART_TXE, USART_TC = 1 << 7, 1 << 6


class Peripherals:
    """Register-level model of the CH32V003 peripherals the board firmware touches (see module doc)."""

    RESET = {RCC_CTLR: HSION | HSIRDY, RCC_CFGR0: 0x20}  # reset: HSI on, HCLK = SYSCLK / 3

    def __init__(self):
        self.regs, self.uart, self.cycles = dict(self.RESET), bytearray(), None

    def read(self, addr):
        v = self.regs.get(addr, 0)
        if addr == RCC_CTLR:
            v = (v & ~(HSIRDY | PLLRDY)) | (HSIRDY if v & HSION else 0) | (PLLRDY if v & PLLON else 0)
        elif addr == RCC_CFGR0:
            v = (v & ~0xC) | ((v & 3) << 2)
        elif addr == USART1_STATR:
            v = USART_TXE | USART_TC
        elif addr == STK_CNT and self.regs.get(STK_CTLR, 0) & 1 and self.cycles is not None:
            v = self.cycles() & 0xFFFFFFFF
        return v

    def write(self, addr, value):
        if addr == USART1_DATAR:
            self.uart.append(value & 0xFF)
        self.regs[addr] = value & 0xFFFFFFFF


@dataclass
class Stats:
    instructions: int = 0
    inference: int = 0
    n16: int = 0
    n32: int = 0
    mem: int = 0
    taken: int = 0
    cycles: int = 0
    inference_cycles: int = 0
    stack_peak: int = 0
    uart: bytes = b""  # what the firmware wrote to USART1

    def cycles_of(self, n16, n32, mem, taken):
        return n16 * CYCLES_16 + n32 * CYCLES_32 + mem * CYCLES_MEM + taken * CYCLES_TAKEN


@dataclass
class _Block:
    n: int
    n16: int
    n32: int
    mem: int


class Firmware:
    def __init__(self, elf, flash_bytes=16 * 1024, ram_bytes=2 * 1024):
        from elftools.elf.elffile import ELFFile
        self.elf = str(elf)
        self.flash_bytes, self.ram_bytes = int(flash_bytes), int(ram_bytes)
        self.symbols = {}
        self.segments = []
        with open(self.elf, "rb") as f:
            ef = ELFFile(f)
            self.entry = ef.header["e_entry"]
            for seg in ef.iter_segments():
                if seg["p_type"] == "PT_LOAD" and seg["p_filesz"]:
                    self.segments.append((seg["p_paddr"], seg.data()))
            for sym in ef.get_section_by_name(".symtab").iter_symbols():
                if sym.name:
                    self.symbols[sym.name] = (sym["st_value"], sym["st_size"])
        for need in ("_exit", "__stack_bottom", "__stack_top"):
            if need not in self.symbols:
                raise ToolchainError(f"{self.elf} has no symbol {need}; it was not linked with lbc's ch32v003.ld")
        self.exit = self.symbols["_exit"][0]
        self.stack_bottom = self.symbols["__stack_bottom"][0]
        self.stack_top = self.symbols["__stack_top"][0]
        self.infer = self.symbols.get("lbc_infer", (None,))[0]
        self._uc = None
        self._blocks = {}

    # ---------------------------------------------------------------- machine

    def _machine(self):
        if self._uc is not None:
            return self._uc
        unicorn, rc = _unicorn()
        uc = unicorn.Uc(unicorn.UC_ARCH_RISCV, unicorn.UC_MODE_RISCV32)
        uc.ctl_set_cpu_model(rc.UC_CPU_RISCV32_SIFIVE_E31)
        self.flash_map = _page(self.flash_bytes)
        self.ram_map = _page(self.ram_bytes + 1)  # at least one byte of guard above the part's RAM
        uc.mem_map(FLASH_BASE, self.flash_map, unicorn.UC_PROT_READ | unicorn.UC_PROT_EXEC)
        uc.mem_map(RAM_BASE, self.ram_map, unicorn.UC_PROT_ALL)
        flash = bytearray(self.flash_map)
        for addr, data in self.segments:
            if addr + len(data) > self.flash_bytes:
                raise FirmwareFault(f"{self.elf}: load segment at 0x{addr:x} ({len(data)} B) is outside the "
                                    f"{self.flash_bytes} B flash")
            flash[addr:addr + len(data)] = data
        uc.mem_write(FLASH_BASE, bytes(flash))
        self._guard_hit = None

        def guard(uc_, access, address, size, value, user):
            self._guard_hit = (address, uc_.reg_read(rc.UC_RISCV_REG_PC))
            uc_.emu_stop()
            return True

        uc.hook_add(unicorn.UC_HOOK_MEM_READ | unicorn.UC_HOOK_MEM_WRITE, guard,
                    begin=RAM_BASE + self.ram_bytes, end=RAM_BASE + self.ram_map - 1)
        self.periph = Peripherals()
        for base, size in ((PERIPH_BASE, PERIPH_SIZE), (SYSTICK_BASE, SYSTICK_SIZE)):
            uc.mmio_map(base, size, lambda uc_, off, sz, b: self.periph.read(b + off), base,
                        lambda uc_, off, sz, val, b: self.periph.write(b + off, val), base)
        self._uc = uc
        self._rc = rc
        self._unicorn = unicorn
        return uc

    def addr(self, symbol, offset=0):
        if symbol not in self.symbols:
            raise ToolchainError(f"{self.elf} has no symbol {symbol}")
        return self.symbols[symbol][0] + offset

    # ---------------------------------------------------------------- runs

    def _decode(self, uc, addr, size):
        code = bytes(uc.mem_read(addr, size))
        n = n16 = mem = 0
        i = 0
        while i < size:
            lo = code[i]
            if lo & 3 != 3:  # compressed
                half = lo | (code[i + 1] << 8)
                q, f3 = half & 3, half >> 13
                if (q == 0 and f3 in (2, 6)) or (q == 2 and f3 in (2, 6)):  # c.lw c.sw c.lwsp c.swsp
                    mem += 1
                n16 += 1
                i += 2
            else:
                if lo & 0x7F in (0x03, 0x23):  # LOAD, STORE
                    mem += 1
                i += 4
            n += 1
        b = _Block(n, n16, n - n16, mem)
        self._blocks[(addr, size)] = b
        return b

    def run(self, writes, reads, count=False, trace=None, on_code=()):
        """One reset-to-_exit run. writes: [(address, bytes)], reads: [(address, length)]. With count,
        `trace(address, instructions)` (if given) is called for every executed block. on_code:
        [(address, fn(uc, stats))] called whenever the core reaches that address (a streaming model's
        I/O point). Returns ([bytes per read], Stats)."""
        uc = self._machine()
        unicorn, rc = self._unicorn, self._rc
        uc.mem_write(RAM_BASE, bytes([POISON]) * self.ram_map)
        for a, data in writes:
            uc.mem_write(a, bytes(data))
        st = Stats()
        self.periph.__init__()
        if count:
            self.periph.cycles = lambda: st.cycles_of(st.n16, st.n32, st.mem, st.taken)
        hooks = []
        self._guard_hit = None
        self._stack_fault = None
        if count:
            state = {"next": self.entry, "ret": None}
            blocks = self._blocks

            def on_block(uc_, addr, size, user):
                b = blocks.get((addr, size)) or self._decode(uc_, addr, size)
                if addr != state["next"]:
                    st.taken += 1
                if addr == self.infer and state["ret"] is None:
                    state["ret"] = uc_.reg_read(rc.UC_RISCV_REG_RA)
                    state["start"] = (st.instructions, st.n16, st.n32, st.mem, st.taken)
                elif addr == state["ret"] and "end" not in state:
                    state["end"] = (st.instructions, st.n16, st.n32, st.mem, st.taken)
                st.instructions += b.n
                if trace is not None:
                    trace(addr, b.n)
                st.n16 += b.n16
                st.n32 += b.n32
                st.mem += b.mem
                state["next"] = addr + size

            def on_write(uc_, access, address, size, value, user):
                sp = uc_.reg_read(rc.UC_RISCV_REG_SP)
                if sp < self.stack_bottom and self._stack_fault is None:
                    self._stack_fault = (address, uc_.reg_read(rc.UC_RISCV_REG_PC), sp)
                    uc_.emu_stop()

            hooks.append(uc.hook_add(unicorn.UC_HOOK_BLOCK, on_block))
            hooks.append(uc.hook_add(unicorn.UC_HOOK_MEM_WRITE, on_write, begin=RAM_BASE,
                                     end=self.stack_bottom - 1))
        for addr, fn in on_code:
            hooks.append(uc.hook_add(unicorn.UC_HOOK_CODE, lambda uc_, a, size, user, fn=fn: fn(uc_, st),
                                     begin=addr, end=addr))
        try:
            uc.emu_start(self.entry, self.exit, timeout=TIMEOUT_US)
        except unicorn.UcError as e:
            pc = uc.reg_read(rc.UC_RISCV_REG_PC)
            raise FirmwareFault(f"{self.elf}: the firmware faulted at pc=0x{pc:x}{self._where(pc)}: {e}") from None
        finally:
            for h in hooks:
                uc.hook_del(h)
        pc = uc.reg_read(rc.UC_RISCV_REG_PC)
        if self._guard_hit:
            a, p = self._guard_hit
            raise FirmwareFault(f"{self.elf}: access to 0x{a:x}, beyond the {self.ram_bytes} B of RAM, at "
                                f"pc=0x{p:x}{self._where(p)}")
        if self._stack_fault:
            a, p, sp = self._stack_fault
            raise FirmwareFault(f"{self.elf}: stack overflow into data: write to 0x{a:x} with sp=0x{sp:x} below "
                                f"__stack_bottom=0x{self.stack_bottom:x} at pc=0x{p:x}{self._where(p)}")
        if pc != self.exit:
            raise FirmwareFault(f"{self.elf}: did not reach _exit within {TIMEOUT_US // 1000000} s "
                                f"(pc=0x{pc:x}{self._where(pc)})")
        stack = bytes(uc.mem_read(self.stack_bottom, self.stack_top - self.stack_bottom))
        used = next((i for i, b in enumerate(stack) if b != POISON), len(stack))
        st.stack_peak = len(stack) - used
        if used == 0:
            raise FirmwareFault(f"{self.elf}: stack overflow: all {len(stack)} B of the stack region were used")
        st.uart = bytes(self.periph.uart)
        if count:
            st.cycles = st.cycles_of(st.n16, st.n32, st.mem, st.taken)
            if "start" in state and "end" in state:
                d = [e - s for s, e in zip(state["start"], state["end"])]
                st.inference = d[0]
                st.inference_cycles = st.cycles_of(d[1], d[2], d[3], d[4])
        return [bytes(uc.mem_read(a, n)) for a, n in reads], st

    def _where(self, pc):
        best = None
        for name, (v, size) in self.symbols.items():
            if v <= pc < v + max(size, 1) and (best is None or v > best[1]):
                best = (name, v)
        return f" ({best[0]}+0x{pc - best[1]:x})" if best else ""


@dataclass
class BatchResult:
    outputs: np.ndarray
    counted: list = field(default_factory=list)  # Stats of the counted samples
    stack_peak: int = 0


def run_batch(fw, xq, in_addr, out_addr, out_dtype, out_shape, count=4):
    """Run every sample of xq (int8 [N, ...]); count instructions on the first `count` samples, run the
    rest without hooks (about a millisecond each)."""
    xq = np.ascontiguousarray(xq, dtype=np.int8)
    n = len(xq)
    out_dtype = np.dtype(out_dtype)
    size = int(np.prod(out_shape)) * out_dtype.itemsize
    ys, counted, peak = [], [], 0
    for i in range(n):
        (raw,), st = fw.run([(in_addr, xq[i].tobytes())], [(out_addr, size)], count=i < count)
        ys.append(np.frombuffer(raw, dtype=out_dtype.newbyteorder("<")).reshape(out_shape))
        peak = max(peak, st.stack_peak)
        if i < count:
            counted.append(st)
    y = np.stack(ys).astype(out_dtype) if ys else np.zeros((0,) + tuple(out_shape), dtype=out_dtype)
    return BatchResult(y, counted, peak)


def run_stream(fw, xq, in_addr, out_addr, steps_addr, sync_addr, out_dtype, out_shape, count=4):
    """Run sequences xq (int8 [N, T, ...]) through a streaming firmware: per sequence one reset-to-_exit
    run; at every call of lbc_io_sync the harness reads the previous step's output and writes the next
    step's input. Counted runs record the instructions from one sync to the next (one lbc_step call and
    the driver loop around it). Returns (outputs [N, T, ...], [per-step instruction lists], stack peak)."""
    xq = np.ascontiguousarray(xq, dtype=np.int8)
    n, steps = xq.shape[:2]
    out_dtype = np.dtype(out_dtype).newbyteorder("<")
    size = int(np.prod(out_shape)) * out_dtype.itemsize
    ys = np.zeros((n, steps) + tuple(out_shape), dtype=out_dtype.newbyteorder("="))
    per_step, peak = [], 0
    for i in range(n):
        seen = {"k": 0, "marks": []}

        def sync(uc, st, i=i, seen=seen):
            k = seen["k"]
            seen["marks"].append(st.instructions)
            if k > 0:
                ys[i, k - 1] = np.frombuffer(bytes(uc.mem_read(out_addr, size)), dtype=out_dtype).reshape(out_shape)
            if k < steps:
                uc.mem_write(in_addr, xq[i, k].tobytes())
            seen["k"] = k + 1

        counted = i < count
        _, st = fw.run([(steps_addr, int(steps).to_bytes(4, "little"))], [], count=counted,
                       on_code=[(sync_addr, sync)])
        if seen["k"] != steps + 1:
            raise FirmwareFault(f"{fw.elf}: the streaming driver synced {seen['k']} times for {steps} steps")
        if counted:
            per_step.append([b - a for a, b in zip(seen["marks"], seen["marks"][1:])])
        peak = max(peak, st.stack_peak)
    return ys, per_step, peak
