"""The pentary backend: compiled models run in the simulator give outputs identical to the reference
interpreter; golden assembly; determinism; check() errors; the CLI end to end."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from lbc.backends.pentary import asm
from lbc.backends.pentary.image import Image
from lbc.backends.pentary.sim import Simulator
from lbc.driver import compile_model, run_compiled
from lbc.errors import TargetError
from lbc.ir.interpreter import run
from lbc.ir.quant import quantize_input
from onnx_models import make_model, mlp, residual_cnn, residual_mlp, rng, save
from golden_util import check_golden

ROOT = Path(__file__).resolve().parents[2]
LBC = [sys.executable, "-m", "lbc.cli"]


def check_identical(c, x):
    """Run the compiled folder on x; assert every output equals the interpreter's. Returns stats."""
    _, yq, stats = run_compiled(c.outdir, x)
    ref = run(c.graph, quantize_input(x, c.graph.meta["input_exp"]))[0]
    assert yq.dtype == ref.dtype and yq.shape == ref.shape
    np.testing.assert_array_equal(yq, ref)
    return stats


def small_cnn(argmax=False, seed=0):
    """conv (padded input) -> relu -> depthwise conv (stride 2, asymmetric pads) -> relu -> 1x1 conv
    -> flatten -> dense [-> argmax]."""
    r, f, n = rng(seed), np.float32, helper.make_node
    inits = [("cw", (r.standard_normal((4, 1, 3, 3)) * 0.5).astype(f)), ("cb", (r.standard_normal(4) * 0.1).astype(f)),
             ("dw", (r.standard_normal((4, 1, 3, 3)) * 0.5).astype(f)), ("db", (r.standard_normal(4) * 0.1).astype(f)),
             ("pw", (r.standard_normal((6, 4, 1, 1)) * 0.5).astype(f)),
             ("fw", (r.standard_normal((96, 10)) * 0.2).astype(f)), ("fb", (r.standard_normal(10) * 0.1).astype(f))]
    nodes = [n("Conv", ["x", "cw", "cb"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             n("Relu", ["c1"], ["r1"], name="relu1"),
             n("Conv", ["r1", "dw", "db"], ["c2"], name="dw", group=4, pads=[1, 0, 1, 1], strides=[2, 2]),
             n("Relu", ["c2"], ["r2"], name="relu2"),
             n("Conv", ["r2", "pw"], ["c3"], name="pw"),
             n("Flatten", ["c3"], ["fl"], name="flatten"),
             n("Gemm", ["fl", "fw", "fb"], ["y"], name="fc")]
    outs = [("y", ["N", 10])]
    if argmax:
        nodes.append(n("ArgMax", ["y"], ["idx"], name="argmax", axis=1, keepdims=0))
        outs = [("idx", ["N"])]
    return make_model(nodes, [("x", ["N", 1, 8, 8])], outs, inits, name="cnn")


# ------------------------------------------------------------------ bit-exact against the interpreter

@pytest.mark.parametrize("q", ["pentary", "ternary", "int2"])
def test_digits_matches_interpreter(tmp_path, digits, q):
    c = compile_model(digits["model"], tmp_path / "out", "pentary", q, digits["calib_path"])
    x = np.concatenate([digits["x"], digits["calib"][:100]])
    assert len(x) >= 100
    stats = check_identical(c, x)
    assert stats["cycles_per_inference"] > 0 and 0 < stats["zero_pent_fraction"] < 1
    assert not stats["detail"]["overflowed"]
    assert len(stats["cycles"]) == len(x)


@pytest.mark.parametrize("q,argmax", [("pentary", False), ("ternary", True)])
def test_cnn_matches_interpreter(tmp_path, q, argmax):
    model = save(small_cnn(argmax), tmp_path / "cnn.onnx")
    calib = rng(4).random((64, 1, 8, 8)).astype(np.float32)
    c = compile_model(model, tmp_path / "out", "pentary", q, calib)
    assert [n.op for n in c.graph.nodes][:3] == ["conv2d"] * 3
    x = rng(9).random((120, 1, 8, 8)).astype(np.float32) * 1.2 - 0.1
    check_identical(c, x)
    text = (c.outdir / "memory_map.txt").read_text()
    assert "weights conv1" in text and "input" in text
    pasm = (c.outdir / "model.pasm").read_text()
    assert "input stored NCHW" in pasm and "input stored HWC" in pasm     # depthwise vs 1x1 conv


def test_dense_loops_when_unrolled_code_does_not_fit(tmp_path, digits, monkeypatch):
    """unroll="auto" turns the largest dense layers into loops over per-row tables until the
    program fits; "never" makes every dense a loop. Both stay bit-exact."""
    from lbc.backends.pentary import target
    monkeypatch.setattr(target, "MEMORY_WORDS", 1300)       # the unrolled digits MLP needs 1510
    c = compile_model(digits["model"], tmp_path / "auto", "pentary", "pentary", digits["calib_path"])
    mm = (c.outdir / "memory_map.txt").read_text()
    assert "tables fc0" in mm and "tables fc1" not in mm
    assert sum(c.report["emit"]["words"].values()) <= 1300
    check_identical(c, digits["x"][:100])
    monkeypatch.undo()
    c = compile_model(digits["model"], tmp_path / "never", "pentary", "ternary", digits["calib_path"],
                      target_options={"unroll": "never"})
    assert c.report["emit"]["words"]["code"] < 60
    check_identical(c, digits["x"][:100])


def test_unfused_relu_rows_and_argmax_inner_axis(tmp_path):
    """A relu on the input (loop), a 3-d matmul (a dense over several rows) and an argmax over a
    middle axis."""
    r, f, n = rng(1), np.float32, helper.make_node
    m = make_model([n("Relu", ["x"], ["r"], name="relu_in"), n("MatMul", ["r", "w"], ["h"], name="mm"),
                    n("ArgMax", ["h"], ["idx"], name="am", axis=1, keepdims=0)],
                   [("x", ["N", 3, 20])], [("idx", ["N", 4])], [("w", r.standard_normal((20, 4)).astype(f))])
    x = r.standard_normal((150, 3, 20)).astype(f)
    c = compile_model(save(m, tmp_path / "m.onnx"), tmp_path / "out", "pentary", "pentary", x[:64])
    assert [n.op for n in c.graph.nodes] == ["relu", "dense", "argmax"]
    check_identical(c, x)


def test_relu_into_padded_conv(tmp_path):
    """The input is stored flat, the relu output with the conv's zero borders (asymmetric pads)."""
    r, f, n = rng(2), np.float32, helper.make_node
    m = make_model([n("Relu", ["x"], ["r"], name="relu_in"),
                    n("Conv", ["r", "w"], ["c"], name="conv", pads=[1, 2, 0, 1]),
                    n("Relu", ["c"], ["y"], name="r2")],
                   [("x", ["N", 2, 5, 6])], [("y", ["N", 3, 4, 5])], [("w", r.standard_normal((3, 2, 3, 3)).astype(f))])
    x = r.standard_normal((120, 2, 5, 6)).astype(f)
    c = compile_model(save(m, tmp_path / "m.onnx"), tmp_path / "out", "pentary", "int2", x[:64])
    check_identical(c, x)


def test_sparse_weights_skip_zero_words(tmp_path):
    """All-zero weight words are not stored: the pointer skips them (ADDI), zero rows have no DOT."""
    r = rng(3)
    w = r.standard_normal((50, 6)).astype(np.float32)
    w[16:32, :] = 0          # word 1 of every row is zero: a gap
    w[:, 2] = 0              # an all-zero row
    w[32:, 4] = 0            # a row whose trailing words are zero
    b = r.standard_normal(6).astype(np.float32)
    m = make_model([helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc")], [("x", ["N", 50])], [("y", ["N", 6])],
                   [("w", w), ("b", b)])
    x = r.standard_normal((120, 50)).astype(np.float32)
    c = compile_model(save(m, tmp_path / "m.onnx"), tmp_path / "out", "pentary", "pentary", x[:64])
    low = c.report["emit"]["lowering"]
    assert low["zero_weight_words_dropped"] >= 6 + 4 and low["pointer_gaps"] >= 4
    assert "ADDI    P2, P2, 16" in (c.outdir / "model.pasm").read_text()
    check_identical(c, x)


@pytest.mark.parametrize("q,pool,seed", [("pentary", "max", 0), ("ternary", "avg", 0), ("int2", "avg", 1)])
def test_residual_add_pools_match_interpreter(tmp_path, q, pool, seed):
    """conv -> relu -> conv + residual add (a padded operand) -> relu -> max or padded average pool ->
    global average pool -> dense; pools and add loop over channels."""
    model = save(residual_cnn(seed, pool=pool, avg_pads=(1, 1, 1, 1)), tmp_path / "res.onnx")
    x = rng(9).random((120, 1, 8, 8)).astype(np.float32) * 1.2 - 0.1
    c = compile_model(model, tmp_path / "out", "pentary", q, x[:64])
    assert {"add", "global_avgpool", "maxpool" if pool == "max" else "avgpool"} <= {n.op for n in c.graph.nodes}
    check_identical(c, x)
    assert "BGT     P9" in (c.outdir / "model.pasm").read_text()


def test_residual_add_on_vectors(tmp_path):
    x = rng(7).standard_normal((150, 12)).astype(np.float32)
    c = compile_model(save(residual_mlp(), tmp_path / "m.onnx"), tmp_path / "out", "pentary", "pentary", x[:64])
    assert "add" in {n.op for n in c.graph.nodes}
    check_identical(c, x)


# ------------------------------------------------------------------ golden, determinism, hygiene

def test_golden_pasm(tmp_path, digits):
    """The generated assembly and memory map of the digits MLP (pentary) equal the blessed copies.
    Re-bless deliberately with LBC_BLESS=1 after reviewing the diff."""
    c = compile_model(digits["model"], tmp_path / "out", "pentary", "pentary", digits["calib_path"])
    check_golden(c.outdir, ("model.pasm", "memory_map.txt"), "pentary/digits_pentary")


def test_compiling_twice_is_byte_identical(tmp_path, digits):
    outs = []
    for i in range(2):
        c = compile_model(digits["model"], tmp_path / f"o{i}", "pentary", "ternary", digits["calib_path"])
        outs.append({p.name: p.read_bytes() for p in sorted(c.outdir.iterdir())})
    assert {"model.pasm", "model.pent", "memory_map.txt", "lbc.json"} <= outs[0].keys()
    assert outs[0].keys() == outs[1].keys()
    for name in outs[0]:
        assert outs[0][name] == outs[1][name], name


def test_image_is_the_assembled_source_and_disassembles(tmp_path, digits):
    c = compile_model(digits["model"], tmp_path / "out", "pentary", "pentary", digits["calib_path"])
    text = (c.outdir / "model.pasm").read_text()
    data = (c.outdir / "model.pent").read_bytes()
    assert asm.assemble(text, "model.pasm").to_bytes() == data
    assert text.startswith("; Generated by lbc ") and str(tmp_path) not in text
    from lbc.backends.pentary.disasm import disassemble
    assert asm.assemble(disassemble(Image.from_bytes(data))).to_bytes() == data
    words = c.report["emit"]["words"]
    assert c.report["build"]["image_bytes"] == len(data)
    assert words["code"] + words["data"] == sum(s.size for s in Image.from_bytes(data).sections if s.kind != "zero")


def test_cycle_count_follows_the_cost_model(tmp_path, digits):
    """Every DOT costs 2 + its nonzero weight pents; the whole inference is input-independent."""
    c = compile_model(digits["model"], tmp_path / "out", "pentary", "pentary", digits["calib_path"])
    image = Image.from_bytes((c.outdir / "model.pent").read_bytes())
    x = quantize_input(digits["x"][:3], c.graph.meta["input_exp"])
    cycles = set()
    for row in x:
        sim = Simulator(image)
        sim.write("input", [int(v) for v in row])
        st = sim.run()
        cycles.add(st.cycles)
    nz = sum(int(np.count_nonzero(c.graph.consts[n.inputs[1]])) for n in c.graph.nodes)
    low = c.report["emit"]["lowering"]
    assert st.op_counts["DOT"] == low["dot_instructions"] == 64 * 4 + 32 * 4 + 10 * 2
    assert st.dot_lanes - st.dot_zero_lanes == nz
    assert len(cycles) == 1
    overhead = st.cycles - (2 * low["dot_instructions"] + nz)
    assert overhead < 8 * low["rows"]       # bias, pointer, QUANT, STORE per row; few m/descriptor loads


def test_hostile_names_are_sanitised(tmp_path):
    evil = 'fc*/ system("rm"); /*\n#include ;x\nHALT\n_start:'
    w = rng(0).standard_normal((40, 3)).astype(np.float32)
    m = make_model([helper.make_node("Gemm", ["x", evil], ["y"], name=evil)], [("x", ["N", 40])], [("y", ["N", 3])],
                   [(evil, w)], name=evil)
    x = rng(1).standard_normal((20, 40)).astype(np.float32)
    c = compile_model(save(m, tmp_path / "evil.onnx"), tmp_path / "out", "pentary", "pentary", x)
    lines = (c.outdir / "model.pasm").read_text().splitlines()
    assert sum(ln.split(";")[0].strip() == "HALT" for ln in lines) == 1
    assert sum(ln.startswith("_start:") for ln in lines) == 1
    check_identical(c, x)


# ------------------------------------------------------------------ check() and errors

def test_unsupported_ops_and_dtypes_are_all_listed(tmp_path):
    r, f, n = rng(0), np.float32, helper.make_node
    m = make_model([n("Conv", ["x", "w"], ["c"], name="conv"),
                    n("Transpose", ["c"], ["p"], name="tr", perm=[0, 1, 3, 2]),
                    n("Mul", ["p", "p"], ["y"], name="sq")],
                   [("x", ["N", 1, 6, 6])], [("y", ["N", 2, 4, 4])], [("w", r.standard_normal((2, 1, 3, 3)).astype(f))])
    calib = r.random((16, 1, 6, 6)).astype(f)
    with pytest.raises(TargetError) as e:
        compile_model(save(m, tmp_path / "m.onnx"), tmp_path / "out", "pentary", "pentary", calib)
    msg = str(e.value)
    assert "op transpose is not supported by target pentary (node: tr)" in msg
    assert "op mul is not supported by target pentary (node: sq)" in msg
    assert not (tmp_path / "out").exists()
    with pytest.raises(TargetError, match="cannot emit int8 weights"):
        compile_model(save(m, tmp_path / "m.onnx"), tmp_path / "out", "pentary", "int8", calib)


def test_model_too_big_reports_how_much(tmp_path):
    model = save(mlp((784, 512, 512, 10)), tmp_path / "big.onnx")
    with pytest.raises(TargetError, match=r"needs \d+ words .* memory holds 39063 words .* \d+ words too many"):
        compile_model(model, tmp_path / "out", "pentary", "pentary", rng(0).random((8, 784)).astype(np.float32))


def test_check_reports_requant_outside_quant_ranges(digits):
    from lbc.backends import get_target
    from lbc.driver import lower
    c = lower(digits["model"], "pentary", "pentary", digits["calib_path"])
    n = c.graph.nodes[0]
    n.attrs["k"] = (70,) * len(n.attr("k"))
    n.attrs["hi"] = 9000
    problems = get_target("pentary").check(c.graph)
    assert any("k=70 outside QUANT's 0..62" in p for p in problems)
    assert any("hi=9000 outside" in p for p in problems)


# ------------------------------------------------------------------ CLI

def test_cli_compile_and_run(tmp_path, digits):
    out = tmp_path / "p"
    r = subprocess.run(LBC + ["compile", str(digits["model"]), "--target", "pentary", "-o", str(out),
                              "--calibration", str(digits["calib_path"])], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "pentary image: code" in r.stdout
    assert {"model.pasm", "model.pent", "memory_map.txt"} <= {p.name for p in out.iterdir()}
    np.save(tmp_path / "x.npy", digits["x"][:4])
    r = subprocess.run(LBC + ["run", str(out), "--input", str(tmp_path / "x.npy"), "--raw",
                              "--output", str(tmp_path / "y.npy")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "cycles_per_inference" in r.stdout and "zero_pent_fraction" in r.stdout
    m = compile_model(digits["model"], tmp_path / "again", "pentary", "pentary", digits["calib_path"])
    ref = run(m.graph, quantize_input(digits["x"][:4], m.graph.meta["input_exp"]))[0]
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), ref)
    # the image also runs under `lbc sim` (zero input) and halts
    r = subprocess.run(LBC + ["sim", str(out / "model.pent"), "--stats"], capture_output=True, text=True)
    assert r.returncode == 0 and "cycles:" in r.stdout, r.stderr
