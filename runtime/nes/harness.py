"""Build and run 6502 code for the NES target: ca65/ld65, sim65 (cycle counts), py65 (exact cycles of
one routine in the real ROM image) and cynes (the .nes booting in an NES emulator).

Everything that touches those tools lives here, so the target, the tests and the benchmark share one
implementation.
"""

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from lbc.errors import ToolchainError

HERE = Path(__file__).resolve().parent
CC65_PACKAGE = "cc65"
SIM_MAX_CYCLES = 200_000_000


def tool(name):
    path = shutil.which(name)
    if not path:
        raise ToolchainError(f"{name} not found; install the Debian package {CC65_PACKAGE} "
                             f"(apt-get install {CC65_PACKAGE}; make test / make demo install it)")
    return path


def _run(cmd, cwd, what):
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode:
        raise ToolchainError(f"{what} failed ({' '.join(map(str, cmd))}):\n{(r.stdout + r.stderr).strip()}")
    return r


def assemble(cwd, sources, defines=()):
    """ca65 each source (relative to cwd) into <stem>.o; returns the object names."""
    ca65 = tool("ca65")
    objs = []
    for s in sources:
        o = Path(s).with_suffix(".o").name
        cmd = [ca65, "--cpu", "6502", "-g"]
        for d in defines:
            cmd += ["-D", d]
        _run(cmd + ["-o", o, str(s)], cwd, "ca65")
        objs.append(o)
    return objs


def link(cwd, config, objs, out, libs=(), map_file=None, labels=None):
    ld65 = tool("ld65")
    cmd = [ld65, "-C", str(config), "-o", out]
    if map_file:
        cmd += ["-m", map_file]
    if labels:
        cmd += ["-Ln", labels]
    _run(cmd + list(objs) + list(libs), cwd, "ld65")
    return Path(cwd) / out


def read_labels(path):
    """ld65 -Ln file -> {name: address} (names without the leading dot)."""
    out = {}
    for line in Path(path).read_text().splitlines():
        m = re.match(r"al\s+([0-9A-Fa-f]+)\s+\.(\S+)", line)
        if m:
            out[m.group(2)] = int(m.group(1), 16)
    return out


def read_segments(map_file):
    """ld65 map file -> {segment: size in bytes}."""
    out, on = {}, False
    for line in Path(map_file).read_text().splitlines():
        if line.startswith("Segment list:"):
            on = True
            continue
        if on:
            m = re.match(r"(\S+)\s+([0-9A-F]{6})\s+([0-9A-F]{6})\s+([0-9A-F]{6})", line)
            if m:
                out[m.group(1)] = int(m.group(4), 16)
            elif out and not line.strip():
                break
    return out


# ------------------------------------------------------------------------------------- sim65

def sim65_run(prg, stdin, payload, max_cycles=SIM_MAX_CYCLES):
    """Run a sim65 program that writes `payload` bytes; returns (those bytes, total cycles).

    `sim65 -c` prints "N cycles" right after the program's own output, so the payload is split off
    by its known length (a trailing ASCII digit would otherwise merge with the count)."""
    r = subprocess.run([tool("sim65"), "-c", "-x", str(max_cycles), str(prg)], input=stdin, capture_output=True,
                       timeout=600)
    if r.returncode in (126, 127) or r.returncode:
        raise ToolchainError(f"sim65 {prg} failed with exit code {r.returncode}: "
                             f"{(r.stderr or b'').decode(errors='replace').strip()}")
    m = re.fullmatch(rb"(\d+) cycles\n", r.stdout[payload:])
    if not m:
        raise ToolchainError(f"sim65 output does not end in {payload} bytes and a cycle count: {r.stdout[-80:]!r}")
    return r.stdout[:payload], int(m.group(1))


class Sim65Model:
    """The sim6502 build of a compiled model: stdin = mode byte + samples, stdout = outputs.

    Mode 0 runs lbc_run on each sample; mode 1 runs an empty routine instead (same harness path), so
    cycles(lbc_run incl. JSR and RTS) = total(mode 0) - total(mode 1) + 12."""

    def __init__(self, prg, in_bytes, out_bytes):
        self.prg, self.in_bytes, self.out_bytes = Path(prg), int(in_bytes), int(out_bytes)
        self._dry = {}

    def _dry_cycles(self, n):
        if n not in self._dry:
            _, c = sim65_run(self.prg, b"\x01" + bytes(self.in_bytes * n), self.out_bytes * n)
            self._dry[n] = c
        return self._dry[n]

    def run_batch(self, xq):
        """All samples in one sim65 process: outputs [N, out_bytes] and the mean cycles per inference."""
        xq = np.ascontiguousarray(xq, dtype=np.int8).reshape(len(xq), -1)
        out, total = sim65_run(self.prg, b"\x00" + xq.tobytes(), self.out_bytes * len(xq))
        y = np.frombuffer(out, dtype=np.uint8)
        mean = (total - self._dry_cycles(len(xq))) / len(xq) + 12
        return y.reshape(len(xq), self.out_bytes), mean

    def run_each(self, xq, workers=4):
        """One sim65 process per sample: outputs and exact cycles for every sample."""
        xq = np.ascontiguousarray(xq, dtype=np.int8).reshape(len(xq), -1)
        dry = self._dry_cycles(1)

        def one(row):
            out, total = sim65_run(self.prg, b"\x00" + row.tobytes(), self.out_bytes)
            return np.frombuffer(out, dtype=np.uint8), total - dry + 12

        with ThreadPoolExecutor(workers) as ex:
            res = list(ex.map(one, xq))
        y = np.stack([r[0] for r in res]) if res else np.zeros((0, self.out_bytes), np.uint8)
        return y, np.array([r[1] for r in res], dtype=np.int64)


# ------------------------------------------------------------------------------------- py65

def _mpu():
    try:
        from py65.devices.mpu6502 import MPU
    except ImportError:
        raise ToolchainError("py65 is not installed; pip install py65 (make test installs it)") from None
    return MPU


class Py65Rom:
    """The NES ROM's PRG loaded into py65: call one routine and count its exact cycles."""

    TRAMPOLINE = 0x6000  # cartridge RAM space, unused by NROM: free for the JSR stub

    def __init__(self, nes_file, labels):
        data = Path(nes_file).read_bytes()
        if data[:4] != b"NES\x1a":
            raise ToolchainError(f"{nes_file} is not an iNES file")
        prg = data[16:16 + data[4] * 16384]
        self.mem = [0] * 0x10000
        base = 0x10000 - len(prg)
        self.mem[base:0x10000] = list(prg)
        if len(prg) == 16384:
            self.mem[0x8000:0xC000] = list(prg)
        self.mem[0x2002] = 0x80  # PPUSTATUS reads "in vblank" so wait loops end
        self.labels = labels
        self.trampoline = self.TRAMPOLINE
        self.cpu = _mpu()(memory=self.mem)

    def poke(self, addr, values):
        for i, v in enumerate(np.asarray(values).reshape(-1)):
            self.mem[addr + i] = int(v) & 0xFF

    def peek(self, addr, n):
        return np.array(self.mem[addr:addr + n], dtype=np.uint8)

    def call(self, routine, max_cycles=50_000_000, stops=(), ranges=None):
        """JSR routine; returns (cycles including JSR and RTS, {stop label: cycles when first reached}).

        `ranges`: a sorted list of (start, end) addresses; the cycles of the instructions executed in
        them are added up into self.range_cycles (per range: self.range_each)."""
        target = self.labels[routine] if isinstance(routine, str) else routine
        t = self.trampoline
        self.mem[t:t + 3] = [0x20, target & 0xFF, target >> 8]
        cpu = self.cpu
        cpu.pc, cpu.sp, cpu.p = t, 0xFF, 0x24
        c0 = cpu.processorCycles
        marks, stop_at = {}, {self.labels[s]: s for s in stops}
        self.range_cycles = 0
        self.range_each = [0] * len(ranges or ())
        if ranges:
            import bisect
            starts = [a for a, _ in ranges]
        while cpu.pc != t + 3:
            if stop_at and cpu.pc in stop_at and stop_at[cpu.pc] not in marks:
                marks[stop_at[cpu.pc]] = cpu.processorCycles - c0
            if ranges:
                i = bisect.bisect_right(starts, cpu.pc) - 1
                inside = i >= 0 and cpu.pc < ranges[i][1]
                before = cpu.processorCycles
            cpu.step()
            if ranges and inside:
                self.range_cycles += cpu.processorCycles - before
                self.range_each[i] += cpu.processorCycles - before
            if cpu.processorCycles - c0 > max_cycles:
                raise ToolchainError(f"{routine} did not return within {max_cycles} cycles")
        return cpu.processorCycles - c0, marks


def py65_flat(binary, load, labels):
    """A flat binary (sim-less test builds) loaded at `load` into a fresh py65 memory."""
    rom = Py65Rom.__new__(Py65Rom)
    rom.mem = [0] * 0x10000
    rom.mem[load:load + len(binary)] = list(binary)
    rom.labels = labels
    rom.trampoline = 0xFFE0
    rom.cpu = _mpu()(memory=rom.mem)
    return rom


# ------------------------------------------------------------------------------------- cynes

class NesEmu:
    """The .nes file in cynes (headless): boot, press buttons, read RAM."""

    RIGHT, LEFT, A, B = 0x01, 0x02, 0x80, 0x40

    def __init__(self, nes_file, labels):
        try:
            from cynes import NES
        except ImportError:
            raise ToolchainError("cynes is not installed; pip install cynes (make test installs it)") from None
        self.nes = NES(str(nes_file))
        self.labels = labels

    def step(self, frames=1):
        fb = self.nes.step(frames=frames)
        if self.nes.has_crashed:
            raise ToolchainError("the ROM crashed in cynes (invalid opcode)")
        return fb

    def peek(self, addr, n=1):
        a = self.labels[addr] if isinstance(addr, str) else addr
        return np.array([self.nes[a + i] for i in range(n)], dtype=np.uint8)

    def wait(self, label, value, frames=120):
        for _ in range(frames):
            self.step()
            if self.peek(label)[0] == value:
                return True
        return False

    def press(self, buttons, frames=3):
        self.nes.controller = buttons
        self.step(frames)
        self.nes.controller = 0
        self.step(frames)
