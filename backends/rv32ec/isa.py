"""Static RV32EC conformance check of a built ELF.

The emulators accept more than the CH32V003 does (unicorn's CPU has M and 32 registers, qemu runs
x16..x31 even with E), so every built image is disassembled and rejected if its code

* uses an M-extension instruction (mul*, div*, rem*) or any other non-RV32EC mnemonic we know of,
* names a register x16..x31 (RV32E has 16),
* contains undecodable words (objdump decodes with the ELF's own arch tag, so an instruction outside
  rv32ec shows up as .word/.short/.insn),
* calls, or even links, a libgcc multiply/divide helper (__mulsi3, __muldi3, __divsi3, ...).
"""

import re
import subprocess

from lbc.backends.base import find_tool

BAD_MNEMONIC = re.compile(r"^(mul|div|rem|amo|lr\.|sc\.|f[a-z]|csr)")
HIGH_REG = re.compile(r"\bx(1[6-9]|2[0-9]|3[01])\b")
HELPER = re.compile(r"__(u?mul|u?div|u?mod)[sd]i3")
CODE_SECTIONS = (".init", ".text")


def disassemble(elf):
    objdump = find_tool("riscv64-unknown-elf-objdump", "binutils-riscv64-unknown-elf")
    args = [objdump, "-d", "-M", "numeric,no-aliases"] + [a for s in CODE_SECTIONS for a in ("-j", s)] + [str(elf)]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"objdump failed on {elf}: {r.stderr.strip()}")
    return r.stdout


def check_elf(elf):
    """Problems found in the image's code (empty list: conforms), plus the instruction count."""
    problems = []
    n = 0
    for line in disassemble(elf).splitlines():
        m = re.match(r"^\s*([0-9a-f]+):\s+([0-9a-f]+)\s+(\S+)\s*(.*)$", line)
        if not m:
            continue
        addr, _, mnem, ops = m.groups()
        n += 1
        where = f"0x{addr}: {mnem} {ops}".strip()
        if mnem.startswith(".") or mnem == "unknown":
            problems.append(f"undecodable word in code at {where}")
        elif BAD_MNEMONIC.match(mnem):
            problems.append(f"non-RV32EC instruction at {where}")
        if HIGH_REG.search(ops):
            problems.append(f"register x16..x31 used at {where}")
        if HELPER.search(ops):
            problems.append(f"call to a libgcc multiply/divide helper at {where}")
    for name in symbol_names(elf):
        if HELPER.fullmatch(name):
            problems.append(f"libgcc helper {name} is linked into the image")
    return problems, n


def symbol_names(elf):
    from elftools.elf.elffile import ELFFile
    with open(elf, "rb") as f:
        tab = ELFFile(f).get_section_by_name(".symtab")
        return [s.name for s in tab.iter_symbols()] if tab else []
