"""Hostile-input suite, model readers: ONNX (structural mutations and damaged bytes), .keras (mutated
config and bytes), .pt2 (damaged archive members) and, once a reader exists, .nir. Each case
compiles for a target drawn from all four, without running the toolchains (the generated sources
are checked instead); see contract.py for what every case must satisfy."""

import importlib.util
import io
import itertools
import json
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import numpy_helper

from contract import HOSTILE_NAMES, check, digest
from onnx_models import mlp, residual_cnn, small_cnn

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = dict(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
TARGETS = ["host", "nes", "pentary", "rv32ec"]
_ids = itertools.count()

# Seeds per reader. A reader added later (the .nir reader of issue 11) registers its seed files here
# and every byte-level case below picks them up.
SEEDS = {
    ".onnx": [ROOT / "examples/digits/mlp.onnx"],
    ".keras": [ROOT / "examples/nes_mlp/model.keras"],
    ".pt2": [ROOT / "examples/nes_mlp/qat.pt2", ROOT / "examples/bitnetmcu/float.pt2"],
    ".nir": [ROOT / "examples/spiking_digits/spiking_digits.nir"],  # more readers: add their seeds here
}


def case_dir(tmp_path_factory):
    return tmp_path_factory.mktemp(f"case{next(_ids)}", numbered=False)


def compile_case(worker, d, model, target, *extra):
    out = d / "out"
    inputs = [model]
    before = digest(inputs)
    r = worker.lbc("compile", model, "-o", out, "--target", target, "--no-build", *extra)
    check(r, out=out, inputs=inputs, before=before)
    return r


# ------------------------------------------------------------------------------------ ONNX

ONNX_SEEDS = [lambda: mlp((6, 5, 3)), lambda: small_cnn(), lambda: residual_cnn()]
HOSTILE_INTS = [0, -1, 1, 2, 3, 7, 2**31, -2**31, 10**12]
HOSTILE_FLOATS = [0.0, -0.0, 1e-45, 1e38, -1e38, float("inf"), float("-inf"), float("nan")]
ATTRS = ["kernel_shape", "strides", "pads", "dilations", "group", "axis", "perm", "alpha", "transB",
         "epsilon", "min", "max", "ceil_mode", "count_include_pad", "beta"]
OPS = ["Relu", "Gemm", "Conv", "MaxPool", "AveragePool", "Add", "Mul", "Div", "Reshape", "Transpose",
       "Flatten", "Concat", "Softmax", "Clip", "BatchNormalization", "Pad", "Sigmoid", "Identity", "Erf"]


@st.composite
def onnx_mutation(draw):
    kind = draw(st.sampled_from(["attr", "init_values", "init_shape", "name", "delete", "outputs", "op",
                                 "input_dim", "tensor_name"]))
    idx = draw(st.integers(0, 30))
    if kind == "attr":
        return kind, idx, draw(st.sampled_from(ATTRS)), draw(st.one_of(
            st.sampled_from(HOSTILE_INTS), st.lists(st.sampled_from(HOSTILE_INTS), min_size=0, max_size=9),
            st.sampled_from(HOSTILE_FLOATS)))
    if kind == "init_values":
        return kind, idx, draw(st.sampled_from(HOSTILE_FLOATS)), draw(st.booleans())
    if kind == "init_shape":
        return kind, idx, tuple(draw(st.lists(st.integers(0, 5), min_size=0, max_size=4))), None
    if kind in ("name", "tensor_name"):
        return kind, idx, draw(st.sampled_from(HOSTILE_NAMES)), None
    if kind == "op":
        return kind, idx, draw(st.sampled_from(OPS)), None
    if kind == "input_dim":
        return kind, idx, draw(st.sampled_from([0, -1, 1, 2**31, 10**15])), None
    return kind, idx, None, None


def _set_attr(node, name, value):
    keep = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend(keep)
    node.attribute.append(onnx.helper.make_attribute(name, value))


def mutate_onnx(m, mutation):
    kind, idx, a, b = mutation
    g = m.graph
    nodes, inits = g.node, g.initializer
    if kind == "attr" and nodes:
        try:
            _set_attr(nodes[idx % len(nodes)], a, b)
        except (ValueError, TypeError):
            pass
    elif kind == "init_values" and inits:
        t = inits[idx % len(inits)]
        arr = numpy_helper.to_array(t).astype(np.float32) if t.data_type == onnx.TensorProto.FLOAT else None
        if arr is not None and arr.size:
            arr = arr.copy()
            if b:
                arr.reshape(-1)[0] = a
            else:
                arr[...] = a
            t.CopyFrom(numpy_helper.from_array(arr, t.name))
    elif kind == "init_shape" and inits:
        t = inits[idx % len(inits)]
        t.CopyFrom(numpy_helper.from_array(np.ones(a, np.float32), t.name))
    elif kind == "name" and nodes:
        nodes[idx % len(nodes)].name = a
    elif kind == "tensor_name" and nodes:
        node = nodes[idx % len(nodes)]
        old = node.output[0]
        for other in nodes:
            for i, t in enumerate(other.input):
                if t == old:
                    other.input[i] = a
        for o in g.output:
            if o.name == old:
                o.name = a
        node.output[0] = a
    elif kind == "delete" and nodes:
        del nodes[idx % len(nodes)]
    elif kind == "outputs":
        del g.output[:]
    elif kind == "op" and nodes:
        nodes[idx % len(nodes)].op_type = a
    elif kind == "input_dim":
        dims = g.input[0].type.tensor_type.shape.dim
        dims[idx % len(dims)].dim_value = a
    return m


@settings(max_examples=30, **SETTINGS)
@given(seed=st.integers(0, len(ONNX_SEEDS) - 1), mutations=st.lists(onnx_mutation(), min_size=1, max_size=3),
       target=st.sampled_from(TARGETS))
def test_onnx_structural_mutations(worker, tmp_path_factory, seed, mutations, target):
    m = ONNX_SEEDS[seed]()
    for mu in mutations:
        m = mutate_onnx(m, mu)
    d = case_dir(tmp_path_factory)
    p = d / "m.onnx"
    p.write_bytes(m.SerializeToString())
    compile_case(worker, d, p, target)


@settings(max_examples=8, **SETTINGS)
@given(name=st.sampled_from(HOSTILE_NAMES[:4] + HOSTILE_NAMES[6:8]), target=st.sampled_from(TARGETS))
def test_hostile_names_compile_safely(worker, tmp_path_factory, name, target):
    """Every node and graph name hostile, the model otherwise fine: it compiles, and no name reaches the
    sources outside a comment (checked by the contract)."""
    m = mlp((6, 5, 3))
    for i, node in enumerate(m.graph.node):
        node.name = f"{name}{i}"
    m.graph.name = name
    d = case_dir(tmp_path_factory)
    p = d / "m.onnx"
    p.write_bytes(m.SerializeToString())
    quant = {"nes": "ternary", "pentary": "pentary"}.get(target, "int8")
    r = compile_case(worker, d, p, target, "--quant", quant)
    assert r["rc"] == 0, r["stderr"]


@st.composite
def byte_damage(draw, size):
    kind = draw(st.sampled_from(["truncate", "flip", "zero", "insert"]))
    at = draw(st.integers(0, max(size - 1, 0)))
    return kind, at, draw(st.integers(1, 64))


def damage_bytes(data, damage):
    kind, at, n = damage
    if kind == "truncate":
        return data[:at]
    if kind == "insert":
        return data[:at] + bytes(range(n)) + data[at:]
    b = bytearray(data)
    for i in range(at, min(at + n, len(b))):
        b[i] = b[i] ^ 0xFF if kind == "flip" else 0
    return bytes(b)


def _seed_cases(suffixes):
    return [(s, p) for s in suffixes for p in SEEDS[s]]


@settings(max_examples=20, **SETTINGS)
@given(seed=st.sampled_from(_seed_cases([".onnx", ".keras", ".pt2", ".nir"])), data=st.data())
def test_damaged_model_files(worker, tmp_path_factory, seed, data):
    suffix, path = seed
    raw = path.read_bytes()
    damages = data.draw(st.lists(byte_damage(len(raw)), min_size=1, max_size=3))
    for dmg in damages:
        raw = damage_bytes(raw, dmg)
    d = case_dir(tmp_path_factory)
    p = d / f"m{suffix}"
    p.write_bytes(raw)
    compile_case(worker, d, p, data.draw(st.sampled_from(["host", "pentary"])))


def _rezip(src, change):
    """A copy of zip archive `src` with `change(name, bytes) -> bytes or None (drop)` applied per member."""
    buf = io.BytesIO()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(buf, "w") as zout:
        for info in zin.infolist():
            new = change(info.filename, zin.read(info))
            if new is not None:
                zout.writestr(info.filename, new)
    return buf.getvalue()


def _json_paths(obj, prefix=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield prefix + (k,)
            yield from _json_paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield prefix + (i,)
            yield from _json_paths(v, prefix + (i,))


KERAS_VALUES = [0, -1, 2**31, 1e38, None, "relu6", "x\nPWN", [], {}, [0, 0], "same", "valid", True, "nan"]


@settings(max_examples=15, **SETTINGS)
@given(pick=st.integers(0, 10**6), value=st.sampled_from(KERAS_VALUES), drop=st.booleans(),
       target=st.sampled_from(["host", "nes"]))
def test_keras_config_mutations(worker, tmp_path_factory, pick, value, drop, target):
    """One field of the .keras config.json replaced by a hostile value (or removed)."""
    src = SEEDS[".keras"][0]

    def change(name, data):
        if name != "config.json":
            return data
        cfg = json.loads(data)
        paths = list(_json_paths(cfg))
        path = paths[pick % len(paths)]
        parent = cfg
        for k in path[:-1]:
            parent = parent[k]
        if drop and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
        return json.dumps(cfg).encode()
    d = case_dir(tmp_path_factory)
    p = d / "m.keras"
    p.write_bytes(_rezip(src, change))
    compile_case(worker, d, p, target)


@settings(max_examples=12, **SETTINGS)
@given(seed=st.sampled_from(SEEDS[".pt2"]), pick=st.integers(0, 10**6), data=st.data())
def test_pt2_member_damage(worker, tmp_path_factory, seed, pick, data):
    """One member of a .pt2 archive damaged (its bytes, or removed): the reader never unpickles."""
    with zipfile.ZipFile(seed) as z:
        names = z.namelist()
    victim = names[pick % len(names)]
    size = len(zipfile.ZipFile(seed).read(victim))
    dmg = data.draw(st.one_of(st.none(), byte_damage(max(size, 1))))

    def change(name, raw):
        if name != victim:
            return raw
        return None if dmg is None else damage_bytes(raw, dmg)
    d = case_dir(tmp_path_factory)
    p = d / "m.pt2"
    p.write_bytes(_rezip(seed, change))
    compile_case(worker, d, p, "host")


def test_every_reader_has_seeds():
    """A model reader joins this suite through its seed files in SEEDS (damaged-file cases draw from
    them); every format lbc reads must have one."""
    from lbc.frontends import _load  # noqa: F401 - the readers live behind it
    assert importlib.util.find_spec("lbc.frontends.nir") is not None
    for suffix, seeds in SEEDS.items():
        assert seeds and all(p.is_file() for p in seeds), suffix
