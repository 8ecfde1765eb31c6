"""All problems at once (one error, each op type once with a count), `lbc inspect` showing every
graph it can read - marking what cannot be imported or emitted - and `lbc ops` / docs/ops.md derived
from the frontend's op table and the targets' declarations."""

import inspect as pyinspect
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from cli_util import assert_user_error, lbc
from lbc import opsupport
from lbc.backends import get_target
from lbc.cli import main
from lbc.frontends.onnx import ONNX_OPS, _Importer
from lbc.ir.ops import OPS
from multi_io_models import n, typed_model
from onnx_models import mlp, rng, save

ROOT = Path(__file__).resolve().parents[2]
F, I64 = TensorProto.FLOAT, TensorProto.INT64
# ONNX ops no part of lbc plans to import: stand-ins for "unsupported" that stay unsupported
ODD = ("Det", "Hardmax", "CumSum")


def run_cli(capsys, *args):
    """lbc in-process (the light models are large): (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def two_input_three_unsupported():
    r = rng(0)
    nodes = [n("MatMul", ["x", "w"], ["h"], name="fc"),
             n("Hardmax", ["h"], ["hm"], name="hardmax_1"),
             n("Det", ["sq"], ["d"], name="det_1"),
             n("CumSum", ["hm", "axis"], ["c1"], name="cumsum_1"),
             n("CumSum", ["c1", "axis"], ["c2"], name="cumsum_2"),
             n("Relu", ["c2"], ["y"], name="relu")]
    return typed_model(nodes, [("x", ["N", 4], F), ("sq", ["N", 3, 3], F), ("mask", ["N", "seq"], I64)],
                       [("y", ["N", 5], F), ("d", ["N"], F)],
                       [("w", r.standard_normal((4, 5)).astype(np.float32)), ("axis", np.array(1, np.int64))])


def test_two_inputs_three_unsupported_ops_one_error(tmp_path):
    p = save(two_input_three_unsupported(), tmp_path / "two.onnx")
    msg = assert_user_error(lbc("compile", p, "-o", tmp_path / "out"), "cannot import (opset 13)",
                            "unsupported op Det (node: det_1)", "unsupported op Hardmax (node: hardmax_1)",
                            "unsupported op CumSum (2 nodes: cumsum_1, cumsum_2)",
                            "input 'mask' has a dynamic dimension 1 (seq)")
    assert msg.count("\n") == 0
    assert not (tmp_path / "out").exists()


def test_inspect_shows_the_graph_and_marks_what_cannot_be_imported(tmp_path, capsys):
    p = save(two_input_three_unsupported(), tmp_path / "two.onnx")
    code, out, err = run_cli(capsys, "inspect", p)
    assert code == 1
    assert err.count("\n") == 1 and "unsupported op CumSum (2 nodes: cumsum_1, cumsum_2)" in err
    assert "inputs x f32[1, 4], sq f32[1, 3, 3], mask i32[1, 1]" in out
    rows = {ln.split()[0]: ln for ln in out.splitlines() if ln and ln.split()[0] in
            ("fc", "hardmax_1", "det_1", "cumsum_1", "cumsum_2", "relu")}
    assert re.search(r"fc\s+dense\s+\[1, 5\]\s+20\s+20\s*$", rows["fc"])
    assert "Hardmax (onnx)" in rows["hardmax_1"] and "!! cannot import: unsupported op Hardmax" in rows["hardmax_1"]
    assert "[1, 5]" in rows["cumsum_2"] and "!! cannot import: unsupported op CumSum" in rows["cumsum_2"]
    assert re.search(r"relu\s+relu\s+\[1, 5\]", rows["relu"])  # imported past the unsupported nodes


def test_thousands_of_bad_nodes_give_one_short_line(tmp_path):
    nodes, prev = [], "x"
    for i in range(2000):
        nodes.append(n("Hardmax", [prev], [f"h{i}"], name=f"hm{i}"))
        prev = f"h{i}"
    p = save(typed_model(nodes, [("x", [1, 4], F)], [(prev, [1, 4], F)]), tmp_path / "many.onnx")
    msg = assert_user_error(lbc("compile", p, "-o", tmp_path / "o"),
                            "unsupported op Hardmax (2000 nodes: hm0, hm1, hm2 and 1997 more)")
    assert len(msg) < 300 and msg.count("\n") == 0


def test_hostile_node_names_are_sanitised(tmp_path):
    p = save(typed_model([n("Hardmax", ["x"], ["y"], name="a\nb\x1b[31m" + "z" * 500)], [("x", [1, 4], F)],
                         [("y", [1, 4], F)]), tmp_path / "evil.onnx")
    msg = assert_user_error(lbc("compile", p, "-o", tmp_path / "o"), "unsupported op Hardmax")
    assert "\x1b" not in msg and msg.count("\n") == 0 and len(msg) < 300


LIGHT = sorted((Path(onnx.__file__).parent / "backend" / "test" / "data" / "light").glob("*.onnx"))


def test_the_wheel_ships_nine_light_models():
    assert len(LIGHT) == 9, LIGHT


@pytest.mark.parametrize("path", LIGHT, ids=[p.stem for p in LIGHT])
def test_light_models_inspect_or_one_line_of_genuinely_unsupported_ops(path, capsys):
    code, out, err = run_cli(capsys, "inspect", path)
    assert "conv2d" in out and re.search(r"^total\s+\d+\s+\d+", out, re.M)  # the graph is shown either way
    if code == 0:
        return
    assert code == 1 and err.count("\n") == 1 and err.startswith("lbc: error: ")
    problems = err.split("cannot import (opset 9): ", 1)[1].strip().split("; ")
    for p in problems:
        m = re.fullmatch(r"unsupported op (\w+) \((\d+ nodes|node): .*\)", p)
        assert m, p  # only unsupported ops: no crash, no converter refusal, no follow-on problem
        assert m.group(1) not in ONNX_OPS


def test_inspect_with_target_marks_what_it_cannot_emit(tmp_path, capsys):
    p = save(typed_model([n("MatMul", ["x", "w"], ["h"], name="fc"), n("ReduceMean", ["h"], ["s"], axes=[1], name="sig"),
                          n("ReduceMax", ["x2"], ["f"], axes=[1], name="fl"), n("Mul", ["s", "f"], ["y"], name="gate")],
                         [("x", [1, 4], F), ("x2", [1, 5], F)], [("y", [1, 1], F)],
                         [("w", rng(1).standard_normal((4, 5)).astype(np.float32))]), tmp_path / "gate.onnx")
    code, out, err = run_cli(capsys, "inspect", p, "--target", "rv32ec")
    assert code == 1
    rows = {ln.split()[0]: ln for ln in out.splitlines() if ln.strip()}
    assert "!! rv32ec cannot emit: op reduce_mean" in rows["sig"]
    assert "!! rv32ec cannot emit: op reduce_max" in rows["fl"]
    assert "!!" not in rows["fc"] and "!!" not in rows["gate"]
    assert "target rv32ec does not emit op reduce_mean (node: sig)" in err
    assert "target rv32ec does not emit op reduce_max (node: fl)" in err
    assert "at most 1 input(s); this one has 2 (x, x2)" in err and err.count("\n") == 1
    code, out, err = run_cli(capsys, "inspect", save(mlp((6, 5, 3)), tmp_path / "mlp.onnx"), "--target", "host")
    assert code == 0, err
    assert "target host: can emit this model" in out


def test_inspect_target_runs_the_full_check(tmp_path, capsys):
    """Ops and I/O are fine for the NES; its budget check still runs (a 300-wide layer does not fit)."""
    p = save(mlp((300, 300, 10)), tmp_path / "big.onnx")
    code, out, err = run_cli(capsys, "inspect", p, "--target", "nes")
    assert code == 1 and err.count("\n") == 1
    assert "!!" not in out
    assert "big.onnx: target nes cannot emit it: input x has 300 bytes; the NES target handles at most 256" in err


# ------------------------------------------------------------------ op support as data

def test_op_table_and_converters_agree():
    converters = {name[3:] for name, _ in pyinspect.getmembers(_Importer, callable) if name.startswith("op_")}
    assert converters <= set(ONNX_OPS), converters - set(ONNX_OPS)  # every converter is in the table
    folded = {op for op, ir in ONNX_OPS.items() if not ir}
    assert set(ONNX_OPS) - converters <= folded  # a row without a converter is evaluated at import
    for onnx_op, ir_ops in ONNX_OPS.items():
        assert set(ir_ops) <= set(OPS), onnx_op
    for t in opsupport.TARGETS:
        tgt = get_target(t)
        assert set(tgt.ops) <= set(OPS), t
        assert set(tgt.op_limits) <= set(tgt.ops), t


def test_lbc_ops_matrix(capsys):
    code, out, _ = run_cli(capsys, "ops")
    assert code == 0
    rows = {ln.split()[0]: ln.split()[1:] for ln in out.splitlines()[2:] if ln and ln.split()[0] in ONNX_OPS}
    assert set(rows) == set(ONNX_OPS)
    # derived from the declarations: nes emits dense but not conv2d; host emits all; Shape is folded at import
    assert rows["Gemm"][-4:] == ["yes", "yes", "yes", "yes"]
    assert rows["Shape"] == ["-", "import", "import", "import", "import"]
    for op, ir, cells in opsupport.matrix():
        for t, (status, missing) in cells.items():
            tgt = get_target(t)
            emitted = [o for o in ir if ("table" in tgt.ops if OPS[o].real is not None
                                         else o in tgt.ops or o in tgt.resolved_ops())]
            assert (status == "yes") == (bool(ir) and len(emitted) == len(ir)), (op, t)
            assert set(missing) == set(ir) - set(emitted)


def test_docs_ops_md_is_current():
    assert (ROOT / "docs" / "ops.md").read_text() == opsupport.markdown(), \
        "docs/ops.md is stale: regenerate with `lbc ops --markdown > docs/ops.md`"


def test_check_refuses_exactly_the_undeclared_ops(tmp_path):
    """check() reads the same declaration: on a graph using every IR op the host emits, each
    target refuses exactly the ops its `ops` lacks."""
    from lbc.driver import lower
    from onnx_models import small_cnn
    c = lower(save(small_cnn(), tmp_path / "cnn.onnx"), "host", "int8")
    for t in ("rv32ec", "nes", "pentary"):
        tgt = get_target(t)
        text = "\n".join(tgt.check(c.graph) if t != "rv32ec" else type(tgt).__mro__[1].check(tgt, c.graph))
        refused = set(re.findall(r"op (\w+) is not supported by target", text))
        # a table node is refused under the function it computes (sigmoid, tanh, ...)
        undeclared = {nd.attrs["fn"] if nd.op == "table" else nd.op for nd in c.graph.nodes if nd.op not in tgt.ops}
        assert refused == undeclared, t
        assert all(not opsupport.emits(tgt, op) for op in undeclared), t


def test_compile_lists_import_and_target_problems_together(tmp_path):
    p = save(typed_model([n("MatMul", ["x", "w"], ["h"], name="fc"), n("Hardmax", ["h"], ["hm"], name="hm"),
                          n("ReduceMax", ["x2"], ["s"], axes=[1], name="sig")],
                         [("x", [1, 4], F), ("x2", [1, 5], F)], [("hm", [1, 5], F), ("s", [1, 1], F)],
                         [("w", rng(1).standard_normal((4, 5)).astype(np.float32))]), tmp_path / "m.onnx")
    msg = assert_user_error(lbc("compile", p, "--target", "rv32ec", "-o", tmp_path / "o"),
                            "unsupported op Hardmax (node: hm)", "and target rv32ec cannot emit:",
                            "does not emit op reduce_max (node: sig)", "at most 1 input(s); this one has 2 (x, x2)")
    assert msg.count("\n") == 0
