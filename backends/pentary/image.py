"""The `.pent` object file: a memory image plus its symbol table (docs/pentary-isa.md §12).

Same image -> byte-identical file: sections are kept in address order, symbols sorted by name,
and nothing time- or path-dependent is stored.
"""

import struct
from dataclasses import dataclass, field

from lbc.errors import LbcError

from . import isa

MAGIC = b"PENT"
VERSION = 1
_HEADER = struct.Struct("<4sHBBiIIIii")      # 32 bytes
_SECTION = struct.Struct("<iIB")
_SYMBOL = struct.Struct("<BqI")
KINDS = ("code", "data", "zero")
SYMBOL_KINDS = ("label", "const")


@dataclass
class Section:
    name: str
    address: int
    kind: str                    # "code" | "data" | "zero" (zero: no stored words)
    words: list = field(default_factory=list)
    zero_size: int = 0

    @property
    def size(self):
        return self.zero_size if self.kind == "zero" else len(self.words)

    @property
    def end(self):
        return self.address + self.size


@dataclass(frozen=True)
class Symbol:
    name: str
    value: int
    kind: str                    # "label" (an address) | "const" (.equ)
    size: int = 0                # words from the label to the next label or the section end


class Image:
    """An assembled program: sections of words at absolute addresses, symbols, entry point."""

    def __init__(self, sections, symbols, entry):
        self.sections = sorted(sections, key=lambda s: s.address)
        self.symbols = dict(sorted(symbols.items()))
        self.entry = entry

    def __eq__(self, other):
        return isinstance(other, Image) and self.to_bytes() == other.to_bytes()

    def __repr__(self):
        return (f"Image(entry={self.entry}, sections="
                f"{[(s.name, s.address, s.size) for s in self.sections]}, symbols={len(self.symbols)})")

    def address(self, name):
        """Address (or constant value) of a symbol; LbcError naming close matches if unknown."""
        try:
            return self.symbols[name].value
        except KeyError:
            import difflib
            close = difflib.get_close_matches(name, list(self.symbols), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise LbcError(f"unknown symbol '{name}'{hint}") from None

    def label_names(self):
        """address -> label at it (the alphabetically first if several); traces and disassembly."""
        names = {}
        for sym in self.symbols.values():
            if sym.kind == "label":
                names.setdefault(sym.value, sym.name)
        return names

    def words(self):
        """(address, word) for every stored word, in address order."""
        for s in self.sections:
            for i, w in enumerate(s.words):
                yield s.address + i, w

    def end(self):
        return max((s.end for s in self.sections), default=0)

    # ---- serialisation
    def to_bytes(self):
        out = bytearray(_HEADER.pack(MAGIC, VERSION, isa.PENTS, isa.BITS_PER_PENT, self.entry,
                                     len(self.sections), len(self.symbols), isa.MEM_WORDS,
                                     isa.ADDR_MIN, 0))
        for s in self.sections:
            name = s.name.encode("utf-8")
            out += bytes([len(name)]) + name
            out += _SECTION.pack(s.address, s.size, KINDS.index(s.kind))
            if s.kind != "zero":
                for w in s.words:
                    out += isa.word_to_bits(w).to_bytes(6, "little")
        for sym in self.symbols.values():
            name = sym.name.encode("utf-8")
            out += struct.pack("<H", len(name)) + name
            out += _SYMBOL.pack(SYMBOL_KINDS.index(sym.kind), sym.value, sym.size)
        return bytes(out)

    @classmethod
    def from_bytes(cls, data, filename="<image>"):
        def bad(why):
            return LbcError(f"{filename}: not a valid .pent image: {why}")

        if len(data) < _HEADER.size:
            raise bad("file too short")
        magic, ver, pents, bits, entry, nsec, nsym, memw, amin, _ = _HEADER.unpack_from(data, 0)
        if magic != MAGIC:
            raise bad("bad magic (expected 'PENT')")
        if ver != VERSION or pents != isa.PENTS or bits != isa.BITS_PER_PENT:
            raise bad(f"version {ver} / {pents} pents / {bits} bits per pent is not supported")
        if memw != isa.MEM_WORDS or amin != isa.ADDR_MIN:
            raise bad(f"memory of {memw} words from {amin} is not this machine's")
        pos = _HEADER.size
        try:
            sections = []
            for _ in range(nsec):
                n = data[pos]
                name = data[pos + 1:pos + 1 + n].decode("utf-8")
                pos += 1 + n
                addr, size, kind = _SECTION.unpack_from(data, pos)
                pos += _SECTION.size
                if kind >= len(KINDS):
                    raise bad(f"section {name!r} has unknown kind {kind}")
                if KINDS[kind] == "zero":
                    sections.append(Section(name, addr, "zero", [], size))
                    continue
                words = []
                for i in range(size):
                    chunk = data[pos:pos + 6]
                    if len(chunk) != 6:
                        raise bad("truncated section data")
                    try:
                        words.append(isa.bits_to_word(int.from_bytes(chunk, "little")))
                    except ValueError as e:
                        raise bad(f"section {name!r} word {i}: {e}") from None
                    pos += 6
                sections.append(Section(name, addr, KINDS[kind], words))
            symbols = {}
            for _ in range(nsym):
                (n,) = struct.unpack_from("<H", data, pos)
                name = data[pos + 2:pos + 2 + n].decode("utf-8")
                pos += 2 + n
                kind, value, size = _SYMBOL.unpack_from(data, pos)
                pos += _SYMBOL.size
                if kind >= len(SYMBOL_KINDS):
                    raise bad(f"symbol {name!r} has unknown kind {kind}")
                symbols[name] = Symbol(name, value, SYMBOL_KINDS[kind], size)
        except (struct.error, IndexError, UnicodeDecodeError):
            raise bad("truncated or corrupt") from None
        if pos != len(data):
            raise bad(f"{len(data) - pos} trailing bytes")
        for s in sections:
            if s.size and (s.address < isa.ADDR_MIN or s.end - 1 > isa.ADDR_MAX):
                raise bad(f"section {s.name!r} lies outside memory")
        return cls(sections, symbols, entry)
