"""The pentary simulator: programs with known results, exact semantics, cycle model, statistics."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbc.backends.pentary import asm, isa
from lbc.backends.pentary.sim import Simulator
from lbc.errors import LbcError

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples" / "pentary"
words = st.integers(-isa.WORD_MAX, isa.WORD_MAX)


def run(src, inputs=(), max_cycles=100_000, **regs):
    sim = Simulator(asm.assemble(src, "t.pasm"), inputs=inputs)
    for r, v in regs.items():
        sim.set_reg(r, v)
    stats = sim.run(max_cycles)
    return sim, stats


def result(src, reg="P1", **regs):
    sim, stats = run(src, **regs)
    assert stats.status == "halted", stats.fault
    return sim.reg(reg)


# ---------------------------------------------------------------- programs with known results

def test_seed_loop_leaves_p1_10():
    sim, stats = run((EX / "loop.pasm").read_text(encoding="utf-8"))
    assert stats.status == "halted" and stats.exit_code == 0
    assert sim.reg("P1") == 10
    assert sim.reg("P2") == 5
    assert (stats.instructions, stats.cycles) == (31, 37)     # pins the cycle model


def test_seed_simulator_demo_programs_verbatim():
    # tools/pentary_simulator.py main(): the three demos, with their numeric branch target
    p1 = "MOVI P1, 5\nMOVI P2, 3\nADD P3, P1, P2\nSUB P4, P1, P2\nMUL2 P5, P3\nHALT\n"
    sim, _ = run(p1)
    assert [sim.reg(f"P{i}") for i in range(1, 6)] == [5, 3, 8, 2, 16]
    p2 = ("# Sum from 1 to 10\nMOVI P1, 0\nMOVI P2, 1\nMOVI P3, 10\n# Loop start (line 3)\n"
          "ADD P1, P1, P2\nADDI P2, P2, 1\nSUB P4, P2, P3\nBLT P4, 3\nHALT\n")
    sim, _ = run(p2)
    assert (sim.reg("P1"), sim.reg("P2")) == (45, 10)   # the demo stops before adding 10
    p3 = ("MOVI P1, 10\nMOVI P2, 42\nSTORE P2, [P1 + 0]\nMOVI P3, 99\nSTORE P3, [P1 + 1]\n"
          "LOAD P4, [P1 + 0]\nLOAD P5, [P1 + 1]\nADD P6, P4, P5\nHALT\n")
    sim, stats = run(p3)
    assert sim.reg("P6") == 141 and sim.read(10, 2) == [42, 99]
    assert (stats.reads, stats.writes) == (2, 2)


def test_seed_pentary_literals():
    assert result("MOVI P1, ⊕⊖⊕\nMOVI P2, +⊕\nADD P1, P1, P2\nHALT\n") == 49


def test_call_example():
    sim, stats = run((EX / "call.pasm").read_text(encoding="utf-8"))
    assert stats.status == "halted"
    assert sim.output == "6! = 720\n"
    assert sim.reg("P1") == 720
    assert sim.reg("SP") == 0                    # balanced pushes and pops
    assert stats.writes == stats.op_counts["PUSH"] == 12


def _requant(acc, m, k, rnd, lo, hi):
    t = acc * m + ((1 << (k - 1)) if rnd and k else 0)
    return max(lo, min(hi, t >> k))


def test_dense_example_matches_reference():
    img = asm.assemble_file(str(EX / "dense.pasm"))
    sim = Simulator(img)
    x = sim.read("x")
    packed = sim.read("w")
    b = sim.read("b")
    stats = sim.run()
    assert stats.status == "halted"
    rows = [[d for wd in packed[2 * j:2 * j + 2] for d in isa.unpack_pents(wd)][:20] for j in range(3)]
    y = [max(0, _requant(sum(wi * xi for wi, xi in zip(r, x)) + bj, 3, 3, 1, -128, 127))
         for r, bj in zip(rows, b)]
    assert sim.read("y") == y
    assert sim.read("best") == [y.index(max(y))]
    assert sim.output == f"{y.index(max(y))}\n"
    nnz = sum(1 for wd in packed for d in isa.unpack_pents(wd) if d)
    assert stats.dot_lanes == 6 * 16 and stats.dot_zero_lanes == 96 - nnz
    assert stats.op_counts["DOT"] == 6


def test_dense_example_with_host_inputs():
    img = asm.assemble_file(str(EX / "dense.pasm"))
    sim = Simulator(img)
    sim.write("x", [127] * 20)
    sim.run()
    assert sim.read("x") == [127] * 20
    assert all(0 <= v <= 127 for v in sim.read("y"))


# ---------------------------------------------------------------- arithmetic, exactly

def _digit_serial_add(a, b):
    """The seed RTL adder: digit by digit with carry in {-1, 0, 1}; returns (sum, final carry)."""
    da, db = isa.to_pents(a), isa.to_pents(b)
    out, carry = [], 0
    for x, y in zip(da, db):
        s = x + y + carry
        carry = 0
        if s > 2:
            s, carry = s - 5, 1
        elif s < -2:
            s, carry = s + 5, -1
        out.append(s)
    return isa.from_pents(out), carry


@settings(max_examples=200, deadline=None)
@given(words, words)
def test_add_matches_digit_serial_adder_and_sets_v(a, b):
    sim, _ = run("ADD P3, P1, P2\nMFSR P4\nHALT\n", P1=a, P2=b)
    total, carry = _digit_serial_add(a, b)
    assert sim.reg("P3") == total
    assert isa.to_pents(sim.reg("P4"))[0] == carry            # SR.V
    assert isa.to_pents(sim.reg("P4"))[2] == (carry != 0)     # SR.VS sticky


@settings(max_examples=100, deadline=None)
@given(words, words)
def test_sub_mul_wrap(a, b):
    sim, stats = run("SUB P3, P1, P2\nMUL P4, P1, P2\nHALT\n", P1=a, P2=b)
    assert sim.reg("P3") == isa.wrap(a - b)
    assert sim.reg("P4") == isa.wrap(a * b)
    assert stats.overflowed == (abs(a * b) > isa.WORD_MAX or abs(a - b) > isa.WORD_MAX)


def test_overflow_flag_is_set_and_cleared():
    sim, stats = run("LI P1, 76293945312\nADDI P2, P1, 1\nMFSR P3\nADDI P2, P0, 1\nMFSR P4\n"
                     "MOVI P5, 0\nMTSR P5\nMFSR P6\nHALT\n")
    assert sim.reg("P2") == 1
    assert isa.to_pents(sim.reg("P3"))[:4] == [1, 0, 1, 0]    # V=+1, VS=1
    assert isa.to_pents(sim.reg("P4"))[:4] == [0, 0, 1, 0]    # V cleared, VS sticky
    assert sim.reg("P6") == 0
    assert not stats.overflowed                               # MTSR cleared VS


@settings(max_examples=100, deadline=None)
@given(words, st.integers(0, 16))
def test_shr_rounds_to_nearest_and_shl(x, n):
    sim, _ = run(f"SHR P2, P1, {n}\nSHL P3, P1, {n}\nSRA P4, P1, {min(n, 40)}\nHALT\n", P1=x)
    from fractions import Fraction
    q = Fraction(x, 5 ** n)
    assert sim.reg("P2") == round(q)            # no ties: 5^n is odd
    assert sim.reg("P3") == isa.wrap(x * 5 ** n)
    assert sim.reg("P4") == x >> n


def test_shift_examples_from_spec():
    assert result("MOVI P1, 34\nSHR P1, P1, 1\nHALT\n") == 7
    assert result("MOVI P1, -8\nSHR P1, P1, 1\nHALT\n") == -2
    assert result("MOVI P1, -7\nSRA P1, P1, 1\nHALT\n") == -4


@pytest.mark.parametrize("a,b,q,r", [(7, 2, 3, 1), (-7, 2, -3, -1), (7, -2, -3, 1), (-7, -2, 3, -1)])
def test_div_mod_truncate(a, b, q, r):
    sim, _ = run("DIV P3, P1, P2\nMOD P4, P1, P2\nHALT\n", P1=a, P2=b)
    assert (sim.reg("P3"), sim.reg("P4")) == (q, r)


def test_compare_and_select():
    src = ("CMP P3, P1, P2\nMIN P4, P1, P2\nMAX P5, P1, P2\nSIGN P6, P1\nNEG P7, P1\nABS P8, P1\n"
           "RELU P9, P1\nRELU P10, P2\nMUL2 P11, P1\nHALT\n")
    sim, _ = run(src, P1=-isa.WORD_MAX, P2=isa.WORD_MAX)
    assert [sim.reg(f"P{i}") for i in range(3, 12)] == [
        -1, -isa.WORD_MAX, isa.WORD_MAX, -1, isa.WORD_MAX, isa.WORD_MAX, 0, isa.WORD_MAX,
        isa.wrap(-2 * isa.WORD_MAX)]


@pytest.mark.parametrize("x,out,s", [(-5, -3, -1), (9, 4, 1), (2, 2, 0)])
def test_clamp_sets_s(x, out, s):
    sim, stats = run("MOVI P2, -3\nMOVI P3, 4\nCLAMP P4, P1, P2, P3\nMFSR P5\nHALT\n", P1=x)
    assert sim.reg("P4") == out
    assert isa.to_pents(sim.reg("P5"))[1] == s
    assert stats.saturated == (s != 0)


@settings(max_examples=200, deadline=None)
@given(st.integers(-10 ** 9, 10 ** 9), st.integers(-300, 300), st.integers(0, 40), st.integers(0, 1),
       st.integers(-7812, 7812), st.integers(-7812, 7812))
def test_quant_matches_requant_rule(acc, m, k, rnd, lo, hi):
    src = f"LOAD P4, [d]\nQUANT P3, P1, P2, P4\nHALT\nd: .qdesc {k}, {rnd}, {lo}, {hi}\n"
    sim, stats = run(src, P1=acc, P2=m)
    t = (acc * m + ((1 << (k - 1)) if rnd and k else 0)) >> k
    expect = lo if t < lo else hi if t > hi else t
    assert sim.reg("P3") == expect
    assert stats.saturated == (t < lo or t > hi)


# ---------------------------------------------------------------- DOT

@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(-2, 2), min_size=16, max_size=16),
       st.lists(st.integers(-128, 127), min_size=16, max_size=16), st.integers(-10 ** 6, 10 ** 6))
def test_dot_semantics_cycles_and_traffic(w, x, acc):
    src = "MOVI P1, w\nMOVI P2, x\nDOT P3, P1, P2\nHALT\nw: .pent " + ", ".join(map(str, w)) + \
          "\nx: .word " + ", ".join(map(str, x)) + "\n"
    img = asm.assemble(src)
    sim = Simulator(img)
    sim.set_reg("P3", acc)
    stats = sim.run()
    nnz = sum(1 for d in w if d)
    assert sim.reg("P3") == acc + sum(a * b for a, b in zip(w, x))
    assert sim.reg("P1") == img.address("w") + 1
    assert sim.reg("P2") == img.address("x") + 16
    assert stats.cycles == 1 + 1 + (2 + nnz) + 1
    assert stats.reads == 1 + nnz
    assert (stats.dot_lanes, stats.dot_zero_lanes) == (16, 16 - nnz)
    zeros = isa.zero_pents(isa.pack_pents(w)[0]) + sum(isa.zero_pents(v) for v, d in zip(x, w) if d)
    assert stats.zero_pents_read == zeros
    assert stats.zero_pent_fraction == zeros / (16 * (1 + nnz))


def test_dot_skips_zero_lanes_even_outside_memory():
    # activations start 3 words below the top of memory: lanes 3..15 would be outside,
    # but their weights are 0 so they are neither read nor faulted on
    src = "MOVI P1, w\nLI P2, 39060\nDOT P3, P1, P2\nHALT\nw: .pent 1, 2, -1\n"
    img = asm.assemble(src)
    sim = Simulator(img)
    sim.write(39060, [10, 20, 30])
    stats = sim.run()
    assert stats.status == "halted" and sim.reg("P3") == 10 + 40 - 30


def test_dot_walks_rows_with_post_increment():
    src = """
        MOVI P1, w
        MOVI P9, 0
        MOVI P2, x
        DOT  P9, P1, P2
        DOT  P9, P1, P2
        HALT
w:      .pent 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
        .pent 2
x:      .word 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 100
"""
    assert result(src, reg="P9") == 136 + 200


# ---------------------------------------------------------------- memory, stack, control flow, I/O

def test_stack_grows_down_from_zero():
    sim, stats = run("MOVI P1, 7\nPUSH P1\nPUSH SP\nPOP P3\nPOP P4\nHALT\n")
    assert sim.read(-2, 2) == [-1, 7]           # M[-2] = SP before the push (-1), M[-1] = 7
    assert (sim.reg("P3"), sim.reg("P4"), sim.reg("SP")) == (-1, 7, 0)


def test_jalr_jr_and_calls():
    src = """
_start: MOVI P5, f
        JALR P6, P5          ; P6 = return address
        MOVI P7, after
        JR   P7
        HALT 9
after:  CALL g
        HALT 3
f:      MOVI P1, 11
        JR   P6
g:      MOVI P2, 22
        RET
"""
    sim, stats = run(src)
    assert (stats.exit_code, sim.reg("P1"), sim.reg("P2")) == (3, 11, 22)


def test_branch_cycle_costs():
    # untaken branch 1 cycle, taken 2
    _, s1 = run("MOVI P1, 1\nBEQ P1, end\nend: HALT\n")
    _, s2 = run("MOVI P1, 0\nBEQ P1, end\nend: HALT\n")
    assert (s1.cycles, s2.cycles) == (3, 4)


def test_in_out():
    src = "IN P1, 0\nIN P2, 0\nIN P3, 0\nOUT P1, 1\nMOVI P4, 'k'\nOUT P4, 0\nHALT\n"
    sim, _ = run(src, inputs=[5, -6])
    assert (sim.reg("P1"), sim.reg("P2"), sim.reg("P3")) == (5, -6, -1)
    assert sim.output == "5\nk"


def test_exit_code_and_zero_word_halts():
    assert run("HALT 42\n")[1].exit_code == 42
    sim, stats = run("NOP\n")                   # runs into zeroed memory: HALT 0
    assert stats.status == "halted" and stats.exit_code == 0 and stats.instructions == 2


def test_self_modifying_code():
    src = "LOAD P1, [patch]\nSTORE P1, [slot]\nslot: HALT 1\nHALT 2\npatch: NOP\n"
    assert run(src)[1].exit_code == 2


def test_zero_pent_counting_on_loads():
    sim, stats = run("LOAD P1, [a]\nLOAD P2, [b]\nHALT\na: .word 0\nb: .word 42\n")
    assert stats.pents_read == 32
    assert stats.zero_pents_read == 16 + 13
    assert stats.zero_pent_fraction == 29 / 32


# ---------------------------------------------------------------- faults

@pytest.mark.parametrize("src,msg,addr", [
    ("MOVI P2, 0\nDIV P1, P1, P2\n", "division by zero", 1),
    ("LI P2, 39062\nLOAD P1, [P2 + 1]\n", "read outside memory at address 39063", 2),
    ("LI P2, -39062\nSTORE P1, [P2 - 1]\n", "write outside memory at address -39063", 2),
    ("NOP\n.word 9\n", "illegal instruction ⊕- (unknown opcode 9)", 1),
    ("NOP\n.word 5890770 + 6103515625\n", "illegal instruction +000+⊖00⊕00++-0 (ADD: unused pents [14] are not zero)", 1),
    ("LI P1, 40000\nJR P1\n", "PC 40000 is outside memory", 40000),
    ("MOVI P1, -1\nOUT P1, 0\n", "OUT port 0: -1 is not a character code", 1),
    ("MOVI P4, -1\nQUANT P1, P1, P1, P4\n",
     "QUANT: bad descriptor -1: QUANT descriptor has shift k=-1, not in 0..62", 1),
])
def test_faults(src, msg, addr):
    sim, stats = run(src)
    assert stats.status == "fault"
    assert stats.fault == msg
    assert sim.pc == stats.pc == addr


def test_faulting_instruction_has_no_effect():
    src = "MOVI P1, 5\nMOVI SP, -39062\nPUSH P1\n"
    sim, stats = run(src)
    assert stats.status == "fault" and sim.reg("SP") == -39062
    assert stats.instructions == 2 and stats.writes == 0
    src = "MOVI P1, w\nLI P2, 39060\nMOVI P3, 5\nDOT P3, P1, P2\nw: .pent 0, 0, 0, 1\n"
    sim, stats = run(src)
    assert stats.status == "fault" and stats.fault.startswith("DOT read outside memory at address 39063")
    assert (sim.reg("P1"), sim.reg("P3"), stats.reads, stats.dot_lanes) == (5, 5, 0, 0)


# ---------------------------------------------------------------- running, tracing, host API

def test_cycle_limit_and_resume():
    src = "loop: ADDI P1, P1, 1\nMOVI P2, 100\nBLT P1, P2, loop\nHALT\n"
    sim = Simulator(asm.assemble(src))
    stats = sim.run(max_cycles=10)
    assert stats.status == "limit" and stats.cycles >= 10
    stats = sim.run()
    assert stats.status == "halted" and sim.reg("P1") == 100
    full = Simulator(asm.assemble(src)).run()
    assert (full.cycles, full.instructions) == (stats.cycles, stats.instructions)


def test_breakpoints_stop_before_and_resume():
    src = "MOVI P1, 1\nspot: MOVI P1, 2\nHALT\n"
    sim = Simulator(asm.assemble(src))
    stats = sim.run(breakpoints=["spot"])
    assert stats.status == "break" and sim.pc == 1 and sim.reg("P1") == 1
    stats = sim.run(breakpoints=["spot"])
    assert stats.status == "halted" and sim.reg("P1") == 2


def test_trace_lines():
    lines = []
    sim = Simulator(asm.assemble("_start: MOVI P1, 3\nSTORE P1, [buf]\nBGT P1, end\nend: HALT\nbuf: .word 0\n"))
    sim.run(trace=lines.append)
    assert lines == [
        "       0      0: MOVI   P1, 3  ; P1=3",
        "       1      1: STORE  P1, [4]  ; M[4]=3",
        "       3      2: BGT    P1, end",
        "       5      3: HALT",
    ]


def test_runs_are_deterministic():
    img = asm.assemble_file(str(EX / "dense.pasm"))
    a, b = Simulator(img).run(), Simulator(img).run()
    assert a == b


def test_host_api_errors():
    sim = Simulator(asm.assemble_file(str(EX / "dense.pasm")))
    with pytest.raises(LbcError, match="did you mean x"):
        sim.read("xx")
    with pytest.raises(LbcError, match="do not fit in 'x'"):
        sim.write("x", [0] * 21)
    with pytest.raises(LbcError, match="does not fit in a 16-pent word"):
        sim.write("x", [isa.WORD_MAX + 1])
    with pytest.raises(LbcError, match="unknown register"):
        sim.reg("Q1")
    with pytest.raises(LbcError, match="outside memory"):
        sim.read(50000)


def test_simulator_accepts_bytes():
    img = asm.assemble_file(str(EX / "loop.pasm"))
    sim = Simulator(img.to_bytes())
    sim.run()
    assert sim.reg("P1") == 10


# ---------------------------------------------------------------- a whole MLP, as the backend will emit it

def _layer(name, n_in, n_out, xin, yout, relu):
    dots = "        DOT   P10, P1, P11\n" * ((n_in + 15) // 16)
    return f"""
        MOVI  P1, {name}_w
        MOVI  P2, {name}_b
        MOVI  P3, {yout}
        MOVI  P4, {n_out}
        LOAD  P6, [{name}_q]
        MOVI  P7, 3
{name}_row:
        LOAD  P10, [P2]
        MOVI  P11, {xin}
{dots}        QUANT P10, P10, P7, P6
{'        RELU  P10, P10' if relu else ''}
        STORE P10, [P3]
        ADDI  P2, P2, 1
        ADDI  P3, P3, 1
        ADDI  P4, P4, -1
        BGT   P4, {name}_row
"""


def test_mlp_matches_reference_and_is_fast():
    import random
    import time
    rng = random.Random(1)
    dims = [64, 32, 10]
    Ws = [[[rng.choice([-2, -1, 0, 0, 0, 1, 2]) for _ in range(dims[i])] for _ in range(dims[i + 1])]
          for i in range(2)]
    bs = [[rng.randint(-60, 60) for _ in range(dims[i + 1])] for i in range(2)]
    data = []
    for i, (W, b) in enumerate(zip(Ws, bs)):
        data.append(f"l{i}_w:")
        data += [f"  .word {w}" for w in isa.pack_rows(W)]
        data.append(f"l{i}_b: .word " + ", ".join(map(str, b)))
        data.append(f"l{i}_q: .qdesc 5, 1, -128, 127")
    src = ("_start:" + _layer("l0", 64, 32, "x", "h", True) + _layer("l1", 32, 10, "h", "y", False)
           + "        HALT\n        .data\n" + "\n".join(data)
           + "\n        .bss\nx: .space 64\nh: .space 32\ny: .space 10\n")
    img = asm.assemble(src)

    def reference(x):
        for i, (W, b) in enumerate(zip(Ws, bs)):
            x = [_requant(sum(w * v for w, v in zip(row, x)) + bj, 3, 5, 1, -128, 127)
                 for row, bj in zip(W, b)]
            if i == 0:
                x = [max(0, v) for v in x]
        return x

    start = time.perf_counter()
    for _ in range(50):
        x = [rng.randint(-128, 127) for _ in range(64)]
        sim = Simulator(img)
        sim.write("x", x)
        stats = sim.run()
        assert stats.status == "halted" and not stats.overflowed
        assert sim.read("y") == reference(x)
    assert time.perf_counter() - start < 5          # ~1 ms per inference in practice
    assert stats.dot_lanes == 16 * (32 * 4 + 10 * 2)


@settings(max_examples=100, deadline=None)
@given(st.integers(-2 ** 22, 2 ** 22), st.integers(0, 255), st.integers(0, 47))
def test_quant_is_the_ir_requant(acc, m, k):
    """QUANT with rounding mode 1 is lbc.ir.quant.requant, the contract every backend matches."""
    quant = pytest.importorskip("lbc.ir.quant")
    expect = int(quant.requant([acc], m, k, -128, 127)[0])
    src = f"LOAD P4, [d]\nQUANT P3, P1, P2, P4\nHALT\nd: .qdesc {k}, 1, -128, 127\n"
    sim, _ = run(src, P1=acc, P2=m)
    assert sim.reg("P3") == expect
