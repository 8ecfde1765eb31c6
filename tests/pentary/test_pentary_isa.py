"""The pentary ISA table, word helpers, encoder/decoder, and the spec's copy of the table."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbc.backends.pentary import asm, isa

ROOT = Path(__file__).resolve().parents[2]

words = st.integers(-isa.WORD_MAX, isa.WORD_MAX)


# ---------------------------------------------------------------- numbers

@pytest.mark.parametrize("value,text", [
    (0, "0"), (1, "+"), (-1, "-"), (2, "⊕"), (-2, "⊖"), (3, "+⊖"), (7, "+⊕"),
    (42, "⊕⊖⊕"), (-42, "⊖⊕⊖"), (34, "+⊕-"), (12, "⊕⊕"),
])
def test_pent_strings(value, text):
    assert isa.pent_str(value) == text
    assert isa.parse_pent_digits(text) == value


def test_ascii_pent_digits():
    assert isa.parse_pent_digits("2=2") == 42
    assert isa.parse_pent_digits("1-") == 4


def test_word_range_and_zero_pattern():
    assert isa.WORD_MAX == 76_293_945_312
    assert isa.word_to_bits(0) == isa.ZERO_WORD_BITS == 0x492492492492
    assert isa.word_to_bits(isa.WORD_MAX) == int("100" * 16, 2)
    assert isa.word_to_bits(-isa.WORD_MAX) == 0
    with pytest.raises(ValueError):
        isa.to_pents(isa.WORD_MAX + 1)


def test_invalid_pent_codes_rejected():
    for code in (5, 6, 7):
        with pytest.raises(ValueError, match="invalid pent code"):
            isa.bits_to_word(isa.ZERO_WORD_BITS & ~(7 << 9) | (code << 9))


@given(words)
def test_word_bits_round_trip(v):
    assert isa.bits_to_word(isa.word_to_bits(v)) == v
    assert isa.from_pents(isa.to_pents(v)) == v
    assert isa.zero_pents(v) == isa.to_pents(v).count(0)


@given(st.integers(-10 * isa.WORD_MOD, 10 * isa.WORD_MOD))
def test_wrap_is_low_16_pents(x):
    w = isa.wrap(x)
    assert -isa.WORD_MAX <= w <= isa.WORD_MAX
    assert (x - w) % isa.WORD_MOD == 0


@given(st.lists(st.integers(-2, 2), max_size=40))
def test_pack_pents(values):
    words_ = isa.pack_pents(values)
    assert len(words_) == -(-len(values) // 16)
    flat = [d for w in words_ for d in isa.unpack_pents(w)]
    assert flat[:len(values)] == values and not any(flat[len(values):])


@given(st.integers(0, 62), st.integers(0, 1), st.integers(-7812, 7812), st.integers(-7812, 7812))
def test_qdesc_round_trip(k, rnd, lo, hi):
    assert isa.unpack_qdesc(isa.qdesc(k, rnd, lo, hi)) == (k, rnd, lo, hi)


def test_qdesc_rejects_bad_fields():
    with pytest.raises(ValueError):
        isa.qdesc(63, 0, 0, 0)
    with pytest.raises(ValueError):
        isa.qdesc(1, 2, 0, 0)
    with pytest.raises(ValueError):
        isa.unpack_qdesc(-1)       # k = -1


# ---------------------------------------------------------------- the table

def test_table_is_sound():
    assert len({op.name for op in isa.OPS}) == len(isa.OPS)
    assert len({op.opcode for op in isa.OPS}) == len(isa.OPS)
    assert isa.BY_OPCODE[0].name == "HALT"            # the zero word halts
    assert isa.decode(0) == (isa.BY_NAME["HALT"], (0,))
    for name in ("DOT", "QUANT", "RELU", "CLAMP", "SRA", "HALT", "CALL", "RET", "PUSH", "POP"):
        assert name in isa.BY_NAME


def _value_strategy(o):
    if o.kind == "reg":
        return st.integers(0, 31)
    if o.kind == "mem":
        return st.tuples(st.integers(0, 31), st.integers(o.lo, o.hi))
    return st.integers(o.lo, o.hi)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_encode_decode_round_trip_every_entry(data):
    op = data.draw(st.sampled_from(isa.OPS))
    values = tuple(data.draw(_value_strategy(o)) for o in op.operands)
    word = isa.encode(op, values)
    assert -isa.WORD_MAX <= word <= isa.WORD_MAX
    assert isa.decode(word) == (op, values)
    assert isa.bits_to_word(isa.word_to_bits(word)) == word
    # the text form assembles back to the same word
    image = asm.assemble(isa.format_instruction(op, values) + "\n")
    assert image.sections[0].words == [word]


@pytest.mark.parametrize("op", isa.OPS, ids=lambda o: o.name)
def test_every_entry_extremes(op):
    for pick in (lambda o: o.lo, lambda o: o.hi):
        values = []
        for o in op.operands:
            if o.kind == "reg":
                values.append(31)
            elif o.kind == "mem":
                values.append((31, pick(o)))
            else:
                values.append(pick(o))
        values = tuple(values)
        assert isa.decode(isa.encode(op, values)) == (op, values)


def test_encode_rejects_out_of_range():
    with pytest.raises(ValueError):
        isa.encode("SHL", (1, 2, 17))
    with pytest.raises(ValueError):
        isa.encode("ADD", (1, 2, 32))


def test_decode_rejects_illegal_words():
    with pytest.raises(isa.IllegalInstruction, match="unknown opcode"):
        isa.decode(9)                                      # opcode 9 is unassigned
    word = isa.encode("ADD", (1, 2, 3))
    with pytest.raises(isa.IllegalInstruction, match="unused pents"):
        isa.decode(word + 5 ** 14)                         # stray pent in the unused D field
    with pytest.raises(isa.IllegalInstruction, match="register field"):
        isa.decode(isa.encode("MOV", (1, 2)) + 30 * 5 ** 6)  # field B = 32
    shl = isa.encode("SHL", (1, 2, 16)) + 5 ** 9           # n = 17
    with pytest.raises(isa.IllegalInstruction, match="not in 0..16"):
        isa.decode(shl)


def test_worked_encoding_examples_in_spec():
    assert isa.encode("ADD", (1, 2, 3)) == 5_890_770
    assert isa.word_to_bits(isa.encode("ADD", (1, 2, 3))) == 0x4924C25126CA
    assert isa.encode("LOAD", (10, (2, -3))) == -5_826_835
    assert isa.encode("MOVI", (1, 42)) == 656_385
    assert isa.word_to_bits(isa.encode("DOT", (10, 1, 11))) == 0x49251A4D451C


def test_spec_table_matches_isa_table():
    doc = (ROOT / "docs" / "pentary-isa.md").read_text(encoding="utf-8")
    table = isa.doc_table(doc)
    assert table is not None, "docs/pentary-isa.md lost its isa-table markers"
    assert table.strip() == isa.markdown_table().strip(), (
        "docs/pentary-isa.md is out of date: run "
        "`python -m lbc.backends.pentary.isa --update docs/pentary-isa.md`")
