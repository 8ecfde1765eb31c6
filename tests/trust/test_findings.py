"""Issue 13, part 1: each crash class found by mutation, the NES injection, exit-0-with-garbage and the
"smaller" list, as a user error (exit 1, one `lbc: error:` line) or as working behaviour."""

import json
import os
import shutil
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cli_util import assert_one_error_line, lbc_here
from onnx_models import make_model, mlp, save

n = helper.make_node
f32 = np.float32


def gemm(w, b=None, x=("N", 4), y=("N", 3), **attrs):
    inits = [("w", np.asarray(w, f32))] + ([("b", np.asarray(b, f32))] if b is not None else [])
    return make_model([n("Gemm", ["x", "w"] + (["b"] if b is not None else []), ["y"], name="fc", **attrs)],
                      [("x", list(x))], [("y", list(y))], inits)


def with_clip(lo, hi):
    return make_model([n("Gemm", ["x", "w"], ["g"], name="fc"), n("Clip", ["g", "lo", "hi"], ["y"], name="cl")],
                      [("x", ["N", 4])], [("y", ["N", 3])],
                      [("w", np.ones((4, 3), f32)), ("lo", np.array(lo, f32)), ("hi", np.array(hi, f32))])


def conv(w_shape, x_shape=(1, 1, 3, 3), **attrs):
    return make_model([n("Conv", ["x", "w"], ["y"], name="c", **attrs)], [("x", list(x_shape))],
                      [("y", ["N", w_shape[0], 1, 1])], [("w", np.ones(w_shape, f32))])


def pool(**attrs):
    return make_model([n("MaxPool", ["x"], ["y"], name="p", **attrs)], [("x", ["N", 1, 4, 4])],
                      [("y", ["N", 1, 2, 2])])


def batchnorm(var):
    inits = [("w", np.ones((2, 1, 3, 3), f32)), ("s", np.ones(2, f32)), ("b", np.zeros(2, f32)),
             ("m", np.zeros(2, f32)), ("v", np.asarray(var, f32))]
    return make_model([n("Conv", ["x", "w"], ["c"], name="c"),
                       n("BatchNormalization", ["c", "s", "b", "m", "v"], ["y"], name="bn")],
                      [("x", ["N", 1, 4, 4])], [("y", ["N", 2, 2, 2])], inits)


def divide(d):
    return make_model([n("Gemm", ["x", "w"], ["g"], name="fc"), n("Div", ["g", "d"], ["y"], name="div")],
                      [("x", ["N", 4])], [("y", ["N", 3])], [("w", np.ones((4, 3), f32)), ("d", np.array(d, f32))])


def string_initializer():
    m = gemm(np.ones((4, 3)), np.ones(3))
    m.graph.initializer[1].CopyFrom(helper.make_tensor("b", TensorProto.STRING, [3], [b"a", b"b", b"c"]))
    return m


def no_outputs():
    m = mlp((4, 3))
    del m.graph.output[:]
    return m


def input_dim(value):
    m = mlp((4, 3))
    m.graph.input[0].type.tensor_type.shape.dim[1].dim_value = value
    return m


MODELS = {
    "zero-width layer": (lambda: gemm(np.zeros((4, 0)), np.zeros(0), y=("N", 0)), "zero-size"),
    "bias of the wrong length": (lambda: gemm(np.ones((4, 3)), np.ones(5)), "bias"),
    "kernel larger than input": (lambda: conv((2, 1, 5, 5)), "does not fit"),
    "pooling stride 0": (lambda: pool(kernel_shape=[2, 2], strides=[0, 0]), "stride 0"),
    "string initialiser": (string_initializer, "lbc needs numbers"),
    "NaN weights": (lambda: gemm(np.full((4, 3), np.nan), np.ones(3)), "NaN or infinite"),
    "infinite weights": (lambda: gemm(np.full((4, 3), np.inf)), "NaN or infinite"),
    "NaN bias": (lambda: gemm(np.ones((4, 3)), np.full(3, np.nan)), "NaN or infinite"),
    "NaN clip bound": (lambda: with_clip(np.nan, 6), "clip"),
    "3-d Gemm weights": (lambda: gemm(np.ones((2, 3, 4))), "2-d"),
    "graph with no outputs": (no_outputs, "no outputs"),
    "BatchNorm variance < 0": (lambda: batchnorm([-1, 1]), "variance"),
    "division by zero": (lambda: divide(0.0), "zero divisor"),
    "input dimension 0": (lambda: input_dim(0), "size 0"),
    "huge input dimension": (lambda: make_model([n("Relu", ["x"], ["y"], name="r")], [("x", ["N", 2**31])],
                                                [("y", ["N", 2**31])]), "elements per sample"),
}


@pytest.mark.parametrize("case", sorted(MODELS))
@pytest.mark.parametrize("target", ["host", "pentary"])
def test_bad_model_is_a_user_error(tmp_path, case, target):
    make, needle = MODELS[case]
    p = save(make(), tmp_path / "m.onnx")
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a numpy RuntimeWarning on the way is a failure too
        assert_one_error_line(lbc_here("compile", p, "-o", out, "--target", target, "--no-build"), needle)
    assert not out.exists()


def test_negative_dimension_is_not_called_dynamic(tmp_path):
    msg = assert_one_error_line(lbc_here("inspect", save(input_dim(-3), tmp_path / "m.onnx")), "size -3")
    assert "dynamic" not in msg


def test_external_data_is_read_beside_the_model_not_the_cwd(tmp_path):
    from onnx.external_data_helper import convert_model_to_external_data
    folder, elsewhere = tmp_path / "model", tmp_path / "cwd"
    folder.mkdir()
    elsewhere.mkdir()
    m = mlp((6, 5, 3))
    convert_model_to_external_data(m, all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    onnx.save(m, str(folder / "m.onnx"))
    r = lbc_here("compile", folder / "m.onnx", "-o", tmp_path / "out", "--no-build", cwd=elsewhere)
    assert r.returncode == 0, r.stderr


def test_external_data_may_not_leave_the_model_folder(tmp_path):
    from onnx.external_data_helper import convert_model_to_external_data
    folder = tmp_path / "model"
    folder.mkdir()
    m = mlp((6, 5, 3))
    convert_model_to_external_data(m, all_tensors_to_one_file=True, location="w.bin", size_threshold=0)
    onnx.save(m, str(tmp_path / "m.onnx"))  # writes tmp_path/w.bin, outside `folder`
    for t in m.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = "../w.bin"
    (folder / "m.onnx").write_bytes(m.SerializeToString())
    assert_one_error_line(lbc_here("compile", folder / "m.onnx", "-o", tmp_path / "out", "--no-build"),
                          "outside")


@pytest.fixture
def model(tmp_path):
    return save(mlp((6, 5, 3)), tmp_path / "m.onnx")


@pytest.mark.parametrize("args,needle", [
    (["--input-shape", "99999999999999999999,6"], "2**31"),
    (["--passes", ","], "names no pass"),
    (["--passes", "fold-constants", "--dump-after", "bogus"], "bogus"),
    (["--dump-after", "bogus"], "bogus"),
    (["--target", "rv32ec", "--flash", "0"], "positive"),
    (["--target", "rv32ec", "--ram", "-5"], "positive"),
    (["--granularity", "nope"], "invalid choice"),
])
def test_bad_options_are_user_errors(tmp_path, model, args, needle):
    assert_one_error_line(lbc_here("compile", model, "-o", tmp_path / "out", "--no-build", *args), needle)
    assert not (tmp_path / "out").exists()


def test_argparse_errors_exit_1():
    r = lbc_here("compile")
    assert_one_error_line(r, "model")
    assert_one_error_line(lbc_here("frobnicate"), "invalid choice")


@pytest.mark.parametrize("content,needle", [
    (b"", "not a .npy"),
    (None, "NaN or infinite"),
    ("object", "Python objects"),
    ("huge", "header claims"),
])
def test_bad_calibration_files(tmp_path, model, content, needle):
    p = tmp_path / "calib.npy"
    if content is None:
        np.save(p, np.full((4, 6), np.inf, f32))
    elif content == "object":
        with open(p, "wb") as fh:
            np.lib.format.write_array_header_1_0(fh, {"descr": "|O", "fortran_order": False, "shape": (2, 6)})
            fh.write(b"\x80\x04N." * 12)
    elif content == "huge":
        with open(p, "wb") as fh:
            np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (10**11, 6)})
            fh.write(b"\0" * 96)
    else:
        p.write_bytes(content)
    assert_one_error_line(lbc_here("compile", model, "-o", tmp_path / "out", "--no-build", "--calibration", p), needle)


def test_wide_input_calibrates_in_bounded_memory(tmp_path):
    """[1, 1e6] calibrated by default (256 samples) used to peak at 4.1 GB: run it under a 1.5 GB limit."""
    import subprocess
    import sys
    g = "\n".join([
        "import resource, numpy as np",
        "resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29))",
        "from lbc.ir.graph import Graph, Node, TensorType",
        "from lbc.ir.dtypes import F32",
        "from lbc.driver import lower",
        "g = Graph('wide', ['x'], ['y'], [Node('relu', 'r', ['x'], ['h']), Node('relu', 'r2', ['h'], ['y'])],",
        "          {'x': TensorType(F32, (1, 1000000)), 'h': TensorType(F32, (1, 1000000)),",
        "           'y': TensorType(F32, (1, 1000000))})",
        "c = lower(g, 'host', 'int8', passes=['quantize-int8'])",
        "print(c.graph.types['y'].exp)",
    ])
    r = subprocess.run([sys.executable, "-c", g], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "6"  # max |x| of 256e6 uniform [-1, 1) samples is just below 1: floor(log2(127.00..)) = 6


# ---------------------------------------------------------------------------------- lbc run

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("built")
    m = save(mlp((6, 5, 3)), d / "m.onnx")
    out = d / "out"
    assert lbc_here("compile", m, "-o", out).returncode == 0
    out4 = d / "out4"
    assert lbc_here("compile", m, "-o", out4, "--input-shape", "4,6").returncode == 0
    return out, out4


@pytest.mark.parametrize("x,needle", [
    (np.zeros((0, 6), f32), "no samples"),
    (np.array([["a"] * 6]), "expected numbers"),
    (np.zeros((2, 6), complex), "expected numbers"),
    (np.zeros((2, 7), f32), "does not match"),
    (np.full((2, 6), np.nan, f32), "NaN"),
])
def test_run_bad_batches(tmp_path, built, x, needle):
    p = tmp_path / "x.npy"
    np.save(p, x)
    assert_one_error_line(lbc_here("run", built[0], "--input", p), needle)


def test_run_fixed_batch_other_than_the_data(tmp_path, built):
    p = tmp_path / "x.npy"
    np.save(p, np.zeros((3, 6), f32))
    assert_one_error_line(lbc_here("run", built[1], "--input", p), "fixed batch of 4")
    np.save(p, np.zeros((8, 6), f32))
    assert lbc_here("run", built[1], "--input", p).returncode == 0


def test_run_output_names(tmp_path, built):
    p = tmp_path / "x.npy"
    np.save(p, np.zeros((2, 6), f32))
    r = lbc_here("run", built[0], "--input", p, "--output", tmp_path / "y")
    assert r.returncode == 0 and f"-> {tmp_path / 'y.npy'}" in r.stdout
    assert np.load(tmp_path / "y.npy").shape == (2, 3)
    assert_one_error_line(lbc_here("run", built[0], "--input", p, "--output", tmp_path), "is a folder")
    assert lbc_here("run", built[0], "--input", p, "--output", "/dev/null").returncode == 0
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")


@pytest.mark.parametrize("damage", ["lbc.json garbage", "lbc.json fields", "executable", "checksums", "no checksums",
                                    "executable is a folder"])
def test_run_damaged_build_folder(tmp_path, built, damage):
    d = tmp_path / "copy"
    shutil.copytree(built[0], d)
    if damage == "lbc.json garbage":
        (d / "lbc.json").write_text("{")
    elif damage == "lbc.json fields":
        m = json.loads((d / "lbc.json").read_text())
        m["inputs"][0]["shape"] = "wide"
        (d / "lbc.json").write_text(json.dumps(m))
    elif damage == "executable":
        (d / "model").write_bytes(b"\x7fELF garbage")
    elif damage == "checksums":
        (d / "lbc.sha256").write_text("zz")
    elif damage == "no checksums":
        (d / "lbc.sha256").unlink()
    else:
        (d / "model").unlink()
        (d / "model").mkdir()
    p = tmp_path / "x.npy"
    np.save(p, np.zeros((2, 6), f32))
    assert_one_error_line(lbc_here("run", d, "--input", p), "damaged")


# ---------------------------------------------------------------------------------- names

HOSTILE = 'x\n.byte 66,66 ;\n.error "PWN";\nlbc: error: forged'


def test_nes_node_names_never_reach_the_assembly_raw(tmp_path):
    m = mlp((6, 5, 3))
    for node in m.graph.node:
        node.name = HOSTILE + node.name
    out = tmp_path / "out"
    r = lbc_here("compile", save(m, tmp_path / "m.onnx"), "-o", out, "--target", "nes", "--quant", "ternary")
    assert r.returncode == 0, r.stderr
    for f in out.iterdir():
        if f.suffix in (".s", ".inc", ".cfg"):
            for line in f.read_text().splitlines():
                assert not line.lstrip().startswith((".byte 66", ".error")), (f.name, line)
                assert "PWN" not in line or line.lstrip().startswith(";"), (f.name, line)


def test_names_in_error_messages_cannot_forge_lines(tmp_path):
    m = make_model([n("Gemm", ["x", "w"], ["y"], name=HOSTILE)], [("x", ["N", 4])], [("y", ["N", 3])],
                   [("w", np.ones((2, 3, 4), f32))])
    r = lbc_here("compile", save(m, tmp_path / "m.onnx"), "-o", tmp_path / "out")
    assert_one_error_line(r)
    assert "\n.byte" not in r.stderr


def test_target_fit_error_is_one_line_then_detail(tmp_path, model):
    r = lbc_here("compile", model, "-o", tmp_path / "out", "--target", "rv32ec", "--flash", "64")
    assert_one_error_line(r)
    assert len(r.stderr.strip().splitlines()) > 1


# ---------------------------------------------------------------------------------- assembler

def asm(tmp_path, text, name="p.pasm"):
    p = tmp_path / name
    p.write_text(text)
    return lbc_here("asm", p, "-o", tmp_path / "p.pent")


def sim_p1(tmp_path, text):
    p = tmp_path / "s.pasm"
    p.write_text(text)
    r = lbc_here("sim", p, "--dump", "P1")
    assert r.returncode == 0, r.stderr
    return int(r.stdout.split("P1 = ")[1].split()[0])


def test_thousand_term_expression(tmp_path):
    assert sim_p1(tmp_path, "x = " + "+".join(["1"] * 1000) + "\n_start:\n    LI P1, x\n    HALT\n") == 1000


@pytest.mark.parametrize("order", ["forward", "backward"])
def test_thousand_chained_equ(tmp_path, order):
    if order == "forward":
        text = ".equ a0, 1\n" + "".join(f".equ a{i}, a{i - 1}+1\n" for i in range(1, 1000)) + "_start:\n    LI P1, a999\n"
    else:
        text = "".join(f".equ a{i}, a{i + 1}+1\n" for i in range(999)) + ".equ a999, 1\n_start:\n    LI P1, a0\n"
    assert sim_p1(tmp_path, text + "    HALT\n") == 1000


def test_deep_nesting_is_a_located_error(tmp_path):
    assert asm(tmp_path, "x = " + "(" * 1000 + "1" + ")" * 1000 + "\n").returncode == 0
    r = asm(tmp_path, "x = " + "-" * 1000 + "1\n")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("lbc: error: ") and "p.pasm:1:" in r.stderr and "nested" in r.stderr


def test_huge_label_is_a_located_error(tmp_path):
    r = asm(tmp_path, "L" * 70000 + ":\n    HALT\n")
    assert r.returncode == 1 and "p.pasm:1:1:" in r.stderr and "at most" in r.stderr
    assert len(r.stderr) < 3000


def test_assembler_error_does_not_echo_a_megabyte_line(tmp_path):
    r = asm(tmp_path, "    HALT " + "x" * 1_000_000 + " @\n")
    assert r.returncode == 1 and "p.pasm:1:" in r.stderr
    assert len(r.stderr) < 2000
    caret_line = r.stderr.rstrip("\n").splitlines()[-1]
    source_line = r.stderr.rstrip("\n").splitlines()[-2]
    assert source_line[len(caret_line) - 1] == "@"  # the caret still points at the offending character


def test_deep_include_chain_is_not_a_cycle(tmp_path):
    for i in range(34):
        (tmp_path / f"inc{i}.pasm").write_text(f'.include "inc{i + 1}.pasm"\n' if i < 33 else "_start:\n    HALT\n")
    r = lbc_here("asm", tmp_path / "inc0.pasm", "-o", tmp_path / "p.pent")
    assert r.returncode == 0, r.stderr
    for i in range(34, 70):
        (tmp_path / f"inc{i - 1}.pasm").write_text(f'.include "inc{i}.pasm"\n')
    (tmp_path / "inc69.pasm").write_text("HALT\n")
    r = lbc_here("asm", tmp_path / "inc0.pasm", "-o", tmp_path / "p.pent")
    assert r.returncode == 1 and "cycle" not in r.stderr and "nested more than" in r.stderr


# ---------------------------------------------------------------------------------- passes

def test_fuse_activation_builds_the_use_maps_once(monkeypatch):
    """A 2,000-node chain took minutes: consumers()/producers() were rebuilt for every relu."""
    from lbc.ir.graph import Graph
    from lbc.passes import PassContext, get_pass
    sys_path_bench = os.path.join(os.path.dirname(__file__), "..", "..", "bench")
    import sys
    sys.path.insert(0, sys_path_bench)
    try:
        from scaling import gemm_chain
    finally:
        sys.path.remove(sys_path_bench)
    g = gemm_chain(50)
    calls = {"consumers": 0, "producers": 0}
    for name in calls:
        real = getattr(Graph, name)

        def counted(self, _real=real, _name=name):
            calls[_name] += 1
            return _real(self)
        monkeypatch.setattr(Graph, name, counted)
    from lbc.ir.graph import Node, TensorType
    g2 = g.copy()
    for i, node in enumerate(list(g2.nodes)):  # a relu after every dense
        r = Node("relu", f"relu{i}", [node.outputs[0]], [f"{node.outputs[0]}.r"])
        g2.types[r.outputs[0]] = g2.types[node.outputs[0]]
        for later in g2.nodes:
            later.inputs = [r.outputs[0] if t == node.outputs[0] else t for t in later.inputs]
        g2.nodes.insert(g2.nodes.index(node) + 1, r)
    g2.outputs = [g2.nodes[-1].outputs[0]]
    out = get_pass("fuse-activation").run(g2, PassContext())
    assert [x.op for x in out.nodes] == ["dense"] * 50 and all(x.attr("act") == "relu" for x in out.nodes)
    assert calls["consumers"] <= 1 and calls["producers"] <= 1


def test_api_issues_python_warnings(tmp_path, model):
    import lbc
    from lbc.errors import LbcWarning
    with pytest.warns(LbcWarning, match="calibration"):
        lbc.compile(str(model), out=tmp_path / "out", build=False)


@pytest.mark.parametrize("target", ["host", "pentary", "nes", "rv32ec"])
def test_clip_min_above_max_compiles_with_onnx_semantics(tmp_path, target):
    """ONNX: when min > max every value becomes max. It used to crash; now it compiles (the pentary
    target, whose requantisation needs lo <= hi, refuses it in one line)."""
    p = save(with_clip(6, 0), tmp_path / "m.onnx")
    quant = {"nes": "ternary", "pentary": "pentary"}.get(target, "int8")
    r = lbc_here("compile", p, "-o", tmp_path / "out", "--target", target, "--quant", quant, "--no-build")
    if target == "pentary":
        assert_one_error_line(r, "requant bounds")
    else:
        assert r.returncode == 0, r.stderr
