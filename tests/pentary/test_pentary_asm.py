"""The pentary assembler: syntax, directives, symbols, errors (exact text and position), the image."""

from pathlib import Path

import pytest

from lbc.backends.pentary import asm, disasm, isa
from lbc.backends.pentary.image import Image
from lbc.errors import LbcError, SourceError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "pentary").glob("*.pasm"))


def words(src):
    img = asm.assemble(src, "t.pasm")
    return [w for _, w in img.words()]


def one(src):
    (w,) = words(src)
    return isa.decode(w)


def error(src, filename="t.pasm", **kw):
    with pytest.raises(SourceError) as e:
        asm.assemble(src, filename, **kw)
    return e.value


# ---------------------------------------------------------------- every error kind, exactly

@pytest.mark.parametrize("src,line,col,message", [
    # unknown mnemonic, with and without close matches
    ("  ADX P1, P2, P3\n", 1, 3, "unknown mnemonic 'ADX' (did you mean MAX, ADD?)"),
    ("  FROB P1\n", 1, 3, "unknown mnemonic 'FROB'"),
    ("  .wrod 1\n", 1, 3, "unknown directive '.wrod' (did you mean .word?)"),
    # bad operands
    ("  ADD P1, 5, P3\n", 1, 11,
     "bad operand 2 of ADD: expected a register (P0..P31, ZERO, FP, SP, LR), got '5'"),
    ("  MOVI P1, P2\n", 1, 12, "bad operand 2 of MOVI: expected a value, got 'P2'"),
    ("  LOAD P1, P2\n", 1, 12,
     "bad operand 2 of LOAD: expected a memory operand [register + offset], got 'P2'"),
    ("  LOAD P1, [P2 + P3]\n", 1, 12,
     "bad operand 2 of LOAD: expected a memory operand [register + offset], got '[P2 + P3]'"),
    ("  BEQ P1, P2\n", 1, 11, "bad operand 3 of BEQ: expected an address, got 'P2'"),
    ("  ADD P1, P2\n", 1, 3, "wrong number of operands for ADD: expected 3 (rd, rs1, rs2), got 2"),
    ("  BEQ P1\n", 1, 3,
     "wrong number of operands for BEQ: expected 2 or 3 (rs1, rs2?, target), got 1"),
    ("  RET P1\n", 1, 3, "wrong number of operands for RET: expected 0, got 1"),
    # immediates out of range, with the range
    ("  SHL P1, P2, 20\n", 1, 15, "immediate 20 out of range for SHL n: allowed range is 0..16"),
    ("  ADDI P1, P2, 50000\n", 1, 16,
     "immediate 50000 out of range for ADDI imm: allowed range is -39062..39062"),
    ("  MOVI P1, 5000000\n", 1, 12,
     "immediate 5000000 out of range for MOVI imm: allowed range is -4882812..4882812"),
    ("  HALT 256\n", 1, 8, "immediate 256 out of range for HALT code: allowed range is 0..255"),
    ("  JUMP 40000\n", 1, 8,
     "immediate 40000 out of range for JUMP target: allowed range is -39062..39062"),
    ("  LOAD P1, [P2 + 40000]\n", 1, 12,
     "immediate 40000 out of range for LOAD offset: allowed range is -39062..39062"),
    ("  .word 99999999999999\n", 1, 9,
     "immediate 99999999999999 out of range for .word: allowed range is "
     "-76293945312..76293945312"),
    ("  .pent 1, 3\n", 1, 12, "immediate 3 out of range for .pent: allowed range is -2..2"),
    # undefined and duplicate labels
    ("  JUMP lop\nloop: HALT\n", 1, 8, "undefined symbol 'lop' (did you mean loop?)"),
    ("  MOVI P1, nothing\n", 1, 12, "undefined symbol 'nothing'"),
    ("loop: NOP\nloop: HALT\n", 2, 1, "duplicate label 'loop' (first defined at t.pasm:1:1)"),
    ("x = 3\nx: NOP\n", 2, 1, "duplicate label 'x' (first defined at t.pasm:1:1)"),
    ("x: NOP\n.equ x, 1\n", 2, 6, "duplicate symbol 'x' (first defined at t.pasm:1:1)"),
    ("SP: NOP\n", 1, 1, "bad label 'SP': register names are reserved"),
    # syntax
    ("  ADD P1, P2, P3,\n", 1, 18, "syntax error: unexpected end of line"),
    ("  ADD P1 @ P2\n", 1, 10, "syntax error: unexpected character '@'"),
    ("  ADD P1, P2, P3 P4\n", 1, 18, "syntax error: unexpected 'P4'"),
    # others
    ("A = B\nB = A\n  .word A\n", 2, 5, "circular definition of 'A'"),
    ("  MOVI P1, 1/0\n", 1, 14, "division by zero in expression"),
    ("  .space n\nn: NOP\n", 1, 10,
     ".space count must be a constant known before layout (no labels)"),
    ("  .bss\n  .word 1\n", 2, 3, "only .space is allowed in .bss (it holds no data)"),
    ("  .space 40000\n  .space 1\n", 1, 3,
     "program does not fit in memory: it needs 40001 words from address 0, the last address is 39062"),
    ("  .entry 1\n  .entry 2\n", 2, 3, "duplicate .entry (first at t.pasm:1:3)"),
    ('  .include "nope.pasm"\n', 1, 12,
     None),  # message names the search path; checked below
])
def test_error_messages_and_positions(src, line, col, message):
    e = error(src)
    assert (e.filename, e.line, e.col) == ("t.pasm", line, col)
    if message is not None:
        assert e.message == message
    # str() is file:line:col: message, the source line, and a caret under the column
    head, shown, caret = str(e).split("\n")
    assert head == f"t.pasm:{line}:{col}: {e.message}"
    assert shown.strip() == src.split("\n")[line - 1].strip()
    assert caret.index("^") - 4 == col - 1


def test_missing_include_names_search_path(tmp_path):
    e = error('  .include "nope.pasm"\n', filename=str(tmp_path / "main.pasm"))
    assert e.message.startswith("cannot find include file 'nope.pasm' (searched: ")
    assert str(tmp_path) in e.message


def test_error_inside_include_points_into_included_file(tmp_path):
    (tmp_path / "lib.pasm").write_text("ok: NOP\n  ADD P1, P2\n", encoding="utf-8")
    main = tmp_path / "main.pasm"
    main.write_text('  .include "lib.pasm"\n  HALT\n', encoding="utf-8")
    with pytest.raises(SourceError) as e:
        asm.assemble_file(str(main))
    assert e.value.filename.endswith("lib.pasm") and e.value.line == 2


def test_include_cycle(tmp_path):
    (tmp_path / "a.pasm").write_text('.include "b.pasm"\n', encoding="utf-8")
    (tmp_path / "b.pasm").write_text('.include "a.pasm"\n', encoding="utf-8")
    with pytest.raises(SourceError, match="include cycle"):
        asm.assemble_file(str(tmp_path / "a.pasm"))


def test_unreadable_source_is_lbc_error(tmp_path):
    with pytest.raises(LbcError, match="cannot read assembly file"):
        asm.assemble_file(str(tmp_path / "missing.pasm"))


# ---------------------------------------------------------------- syntax and semantics

def test_mnemonics_and_registers_are_case_insensitive_labels_are_not():
    a = words("add p1, r2, P3\nAdd SP, fp, lr\n")
    assert isa.decode(a[0]) == (isa.BY_NAME["ADD"], (1, 2, 3))
    assert isa.decode(a[1]) == (isa.BY_NAME["ADD"], (30, 29, 31))
    assert words("Loop: JUMP Loop\n") == [isa.encode("JUMP", (0,))]
    e = error("Loop: JUMP loop\n")
    assert e.message == "undefined symbol 'loop' (did you mean Loop?)"


@pytest.mark.parametrize("literal,value", [
    ("42", 42), ("0x2A", 42), ("0b101010", 42), ("0p⊕⊖⊕", 42), ("0p2=2", 42), ("⊕⊖⊕", 42),
    ("+⊕", 7), ("0p+-", 4), ("-⊕", -3), ("-(⊕)", -2), ("- ⊕", -2), ("'A'", 65), ("'\\n'", 10),
    ("7 / 2", 3), ("-7 / 2", -3), ("-7 % 2", -1), ("2 * (3 + 4) - 1", 13), ("-+5", -5),
])
def test_literals_and_expressions(literal, value):
    assert one(f"MOVI P1, {literal}\n")[1] == (1, value)


def test_comments_labels_and_blank_lines():
    src = "# seed style\n; ca65 style\n\na: b:   ; two labels\n  NOP   # trailing\nc: HALT\n"
    img = asm.assemble(src)
    assert {n: s.value for n, s in img.symbols.items()} == {"a": 0, "b": 0, "c": 1}


def test_memory_operand_forms():
    load = isa.BY_NAME["LOAD"]
    src = "buf = 100\nLOAD P1, [P2]\nLOAD P1, [P2 + 3]\nLOAD P1, [P2 - 3]\nLOAD P1, [buf]\n" \
          "LOAD P1, [buf + P5]\nLOAD P1, [buf + 2*3 + P5 - 1]\nSTORE P1, [SP]\n"
    got = [isa.decode(w) for w in words(src)]
    assert got == [(load, (1, (2, 0))), (load, (1, (2, 3))), (load, (1, (2, -3))),
                   (load, (1, (0, 100))), (load, (1, (5, 100))), (load, (1, (5, 105))),
                   (isa.BY_NAME["STORE"], (1, (30, 0)))]


def test_optional_operands():
    assert one("BEQ P4, 7\n") == (isa.BY_NAME["BEQ"], (4, 0, 7))
    assert one("BLT P4, P5, 7\n") == (isa.BY_NAME["BLT"], (4, 5, 7))
    assert one("HALT\n") == (isa.BY_NAME["HALT"], (0,))
    assert one("HALT 3\n") == (isa.BY_NAME["HALT"], (3,))
    assert one("JMP 3\n") == (isa.BY_NAME["JUMP"], (3,))


def test_li_pseudo_builds_any_word():
    for v in (0, 1, -1, 39062, 39063, -39063, 123_456_789, isa.WORD_MAX, -isa.WORD_MAX):
        w = words(f"LI P7, {v}\n")
        assert len(w) == 2
        (lui, (rd, hi)), (addi, (rd2, rs, lo)) = isa.decode(w[0]), isa.decode(w[1])
        assert (lui.name, addi.name, rd, rd2, rs) == ("LUI", "ADDI", 7, 7, 7)
        assert hi * 5 ** 7 + lo == v


def test_label_arithmetic_and_forward_references():
    src = """
        MOVI P1, end - start       ; forward, difference of labels
        MOVI P2, table + 2
        MOVI P3, $                 ; address of this statement
        MOVI P4, SIZE * 2
        HALT
SIZE = N + 1                       ; constant defined after use, using a later one
.equ N, 4
        .data
start:  .word 1, 2, 3
table:  .word start, end, $
end:
"""
    img = asm.assemble(src)
    vals = [isa.decode(w)[1][1] for _, w in list(img.words())[:4]]
    start = img.address("start")
    assert start == 5
    assert vals == [6, start + 5, 2, 10]
    data = [w for a, w in img.words() if a >= img.address("table")]
    assert data == [start, start + 6, start + 3]   # $ = address of the .word statement
    assert img.symbols["SIZE"].kind == "const" and img.symbols["SIZE"].value == 5


def test_directives():
    src = """
        .data
a:      .word 1, -2, 0p⊕⊖⊕
p:      .pent 1, -1, 2, -2, 0
        .pent 1
s:      .string "Hi\\n"
t:      .ascii "ok"
q:      .qdesc 3, 1, -128, 127
f:      .space 3, 7
        .section consts
c:      .word 9
        .bss
z:      .space 4
z2:     .space 2
"""
    img = asm.assemble(src)
    got = {s.name: [w for a, w in img.words() if s.address <= a < s.end] for s in img.sections}
    assert got[".data"] == [1, -2, 42, isa.pack_pents([1, -1, 2, -2, 0])[0], 1,
                            ord("H"), ord("i"), 10, 0, ord("o"), ord("k"),
                            isa.qdesc(3, 1, -128, 127), 7, 7, 7]
    assert got[".consts"] == [9]
    bss = next(s for s in img.sections if s.name == ".bss")
    assert bss.kind == "zero" and bss.size == 6 and bss.words == []
    sym = img.symbols
    assert (sym["a"].size, sym["p"].size, sym["s"].size, sym["f"].size) == (3, 2, 4, 3)
    assert sym["z"].value == bss.address
    assert (sym["z"].size, sym["z2"].size) == (4, 2)
    # layout: text (empty), data, custom sections, then bss
    assert [s.name for s in img.sections] == [".data", ".consts", ".bss"]


def test_label_on_section_switch_line_belongs_to_new_section():
    img = asm.assemble("NOP\nNOP\nd: .data\n.word 5\n")
    assert img.address("d") == 2 and img.symbols["d"].size == 1


def test_entry_point():
    assert asm.assemble("NOP\n_start: HALT\n").entry == 1
    assert asm.assemble("NOP\nmain: HALT\n.entry main\n").entry == 1
    assert asm.assemble("NOP\nHALT\n").entry == 0


def test_include(tmp_path):
    inc = tmp_path / "inc"
    inc.mkdir()
    (inc / "consts.pasm").write_text("FIVE = 5\nhelper: RET\n", encoding="utf-8")
    main = tmp_path / "main.pasm"
    main.write_text('_start: MOVI P1, FIVE\n  CALL helper\n  HALT\n  .include "consts.pasm"\n',
                    encoding="utf-8")
    img = asm.assemble_file(str(main), include_paths=[str(inc)])
    assert img.address("helper") == 3 and img.address("FIVE") == 5


def test_global_is_checked():
    asm.assemble(".global main\nmain: HALT\n")
    assert error(".globl mian\nmain: HALT\n").message == "undefined symbol 'mian' (did you mean main?)"


# ---------------------------------------------------------------- the image

def test_image_bytes_deterministic_and_round_trip():
    for path in EXAMPLES:
        text = path.read_text(encoding="utf-8")
        a = asm.assemble(text, str(path)).to_bytes()
        b = asm.assemble(text, str(path)).to_bytes()
        assert a == b and a[:4] == b"PENT"
        img = Image.from_bytes(a)
        assert img.to_bytes() == a


def test_image_header_layout():
    data = asm.assemble("_start: NOP\nHALT\n").to_bytes()
    assert data[:8] == b"PENT\x01\x00\x10\x03"
    assert int.from_bytes(data[8:12], "little", signed=True) == 0           # entry
    assert int.from_bytes(data[20:24], "little") == 78125
    assert int.from_bytes(data[24:28], "little", signed=True) == -39062
    # section ".text": name, address 0, 2 words, kind code, then 6 bytes per word
    assert data[32:38] == b"\x05.text"
    zero_word = (0x492492492492).to_bytes(6, "little")
    assert data[38 + 9 + 6:38 + 9 + 12] == zero_word                         # HALT 0


@pytest.mark.parametrize("mutate,why", [
    (lambda d: b"PENX" + d[4:], "bad magic"),
    (lambda d: d[:-1], "truncated"),
    (lambda d: d + b"\x00", "trailing bytes"),
    (lambda d: d[:47] + bytes([0xFF]) + d[48:], "invalid pent code"),
])
def test_bad_images_rejected(mutate, why):
    data = asm.assemble("_start: NOP\nHALT\n").to_bytes()
    with pytest.raises(LbcError, match=why):
        Image.from_bytes(mutate(data), "x.pent")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_disassembly_reassembles_identically(path):
    img = asm.assemble_file(str(path))
    text = disasm.disassemble(img)
    again = asm.assemble(text, "disasm.pasm")
    assert again.to_bytes() == img.to_bytes()
    assert asm.assemble(disasm.disassemble(img, addresses=False)).to_bytes() == img.to_bytes()


def test_disassembly_names_targets_and_keeps_illegal_words():
    src = "_start: BGE P4, done\n  .word 9\ndone: HALT\n"
    text = disasm.disassemble(asm.assemble(src), addresses=False)
    assert "BGE    P4, done" in text
    assert ".word  9" in text
    assert asm.assemble(text).to_bytes() == asm.assemble(src).to_bytes()
