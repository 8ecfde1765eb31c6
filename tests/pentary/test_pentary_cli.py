"""`lbc asm`, `lbc disasm`, `lbc sim` end to end through the real CLI entry point."""

from pathlib import Path

import pytest

from lbc.backends.pentary import asm

cli = pytest.importorskip("lbc.cli")

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples" / "pentary"


def lbc(*argv):
    return cli.main([str(a) for a in argv])


def test_asm_disasm_sim_round_trip(tmp_path, capsys):
    out = tmp_path / "loop.pent"
    assert lbc("asm", EX / "loop.pasm", "-o", out) == 0
    assert out.read_bytes() == asm.assemble_file(str(EX / "loop.pasm")).to_bytes()
    assert lbc("disasm", out) == 0
    text = capsys.readouterr().out
    assert "BGE    P4, done" in text
    assert lbc("disasm", out, "-o", tmp_path / "back.pasm", "--no-addresses") == 0
    assert lbc("asm", tmp_path / "back.pasm", "-o", tmp_path / "back.pent") == 0
    assert (tmp_path / "back.pent").read_bytes() == out.read_bytes()
    assert lbc("sim", out, "--dump", "P1,P2", "--stats") == 0
    got = capsys.readouterr().out.splitlines()
    assert got[:2] == ["P1 = 10  (⊕0)", "P2 = 5  (+0)"]
    assert "cycles: 37" in got


def test_asm_default_output_name(tmp_path):
    src = tmp_path / "p.pasm"
    src.write_text("HALT 3\n", encoding="utf-8")
    assert lbc("asm", src) == 0
    assert (tmp_path / "p.pent").exists()


def test_sim_exit_code_output_and_memory_dump(capsys):
    assert lbc("sim", EX / "call.pasm", "--dump", "msg:3,P1") == 0
    out = capsys.readouterr().out
    assert out == "6! = 720\nmsg = [54, 33, 32]\nP1 = 720  (++--0)\n"
    assert lbc("sim", EX / "dense.pasm", "--dump", "y,best") == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["y = [0, 114, 11]", "best = [1]"]


def test_sim_halt_code_is_exit_status(tmp_path):
    p = tmp_path / "h.pasm"
    p.write_text("HALT 7\n", encoding="utf-8")
    assert lbc("sim", p) == 7


def test_sim_trace_and_breakpoints(capsys):
    assert lbc("sim", EX / "loop.pasm", "--trace", "--break", "done") == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "       0      0: MOVI   P1, 0"
    assert "break at 8: P1=10 P2=5 P3=5" in err
    assert err[-1].endswith("8: HALT")


def test_assembler_error_is_located_and_writes_nothing(tmp_path, capsys):
    src = tmp_path / "bad.pasm"
    src.write_text("start:\n  ADDI P1, P1, 99999\n", encoding="utf-8")
    out = tmp_path / "bad.pent"
    out.write_bytes(b"old")
    assert lbc("asm", src, "-o", out) == 1
    err = capsys.readouterr().err
    assert err == (f"lbc: error: {src}:2:16: immediate 99999 out of range for ADDI imm: "
                   f"allowed range is -39062..39062\n      ADDI P1, P1, 99999\n                   ^\n")
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pasm", "bad.pent"]   # no temp left


def test_sim_fault_and_cycle_limit_are_errors(tmp_path, capsys):
    p = tmp_path / "f.pasm"
    p.write_text("MOVI P2, 0\nDIV P1, P1, P2\n", encoding="utf-8")
    assert lbc("sim", p) == 1
    assert capsys.readouterr().err == f"lbc: error: {p}: machine fault at PC 1: division by zero\n"
    q = tmp_path / "spin.pasm"
    q.write_text("spin: JUMP spin\n", encoding="utf-8")
    assert lbc("sim", q, "--max-cycles", "100") == 1
    assert "cycle limit of 100 reached at address 0" in capsys.readouterr().err


def test_bad_image_and_unknown_dump_symbol(tmp_path, capsys):
    p = tmp_path / "x.pent"
    p.write_bytes(b"NOPE" + bytes(40))
    assert lbc("sim", p) == 1
    assert "not a valid .pent image: bad magic" in capsys.readouterr().err
    assert lbc("sim", EX / "dense.pasm", "--dump", "yy") == 1
    assert "unknown symbol 'yy' (did you mean y?)" in capsys.readouterr().err


def test_sim_input_queue(tmp_path, capsys):
    p = tmp_path / "in.pasm"
    p.write_text("IN P1, 0\nIN P2, 0\nADD P1, P1, P2\nOUT P1, 1\nHALT\n", encoding="utf-8")
    assert lbc("sim", p, "--input", "40,2") == 0
    assert capsys.readouterr().out == "42\n"
