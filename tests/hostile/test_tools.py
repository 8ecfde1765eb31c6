"""Hostile-input suite: calibration and input loaders (.npy/.npz), the pentary assembler, disassembler
and simulator, and `lbc run` on damaged build folders. See contract.py for what every case keeps."""

import io
import itertools
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import check, digest
from onnx_models import mlp, save
from test_readers import SETTINGS, byte_damage, case_dir, damage_bytes

ROOT = Path(__file__).resolve().parents[2]
_ids = itertools.count()


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    return save(mlp((6, 5, 3)), tmp_path_factory.mktemp("model") / "m.onnx")


@pytest.fixture(scope="module")
def built(worker, tmp_path_factory, small_model):
    out = tmp_path_factory.mktemp("built") / "out"
    r = worker.lbc("compile", small_model, "-o", out)
    assert r["rc"] == 0, r["stderr"]
    return out


# ------------------------------------------------------------------------------------ .npy / .npz

DTYPES = ["<f4", "<f8", ">f4", "<i8", "|u1", "|b1", "<c8", "<U3", "|S2", "|O", "<M8[s]", "|V4"]


@st.composite
def npy_bytes(draw):
    shape = tuple(draw(st.lists(st.sampled_from([0, 1, 2, 6, 3, 10**11]), min_size=0, max_size=3)))
    descr = draw(st.sampled_from(DTYPES))
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": draw(st.booleans()),
                                                  "shape": shape})
    body = draw(st.sampled_from([b"", b"\0" * 8, b"\x7f\xc0\x00\x00" * 48, b"\xff" * 500, b"\x80\x04N." * 10]))
    raw = header.getvalue() + body
    if draw(st.booleans()):
        raw = damage_bytes(raw, draw(byte_damage(len(raw))))
    return raw


@settings(max_examples=25, **SETTINGS)
@given(raw=npy_bytes(), as_npz=st.sampled_from([None, "x", "y", "other"]), use=st.sampled_from(["calibration", "run"]))
def test_npy_and_npz_loaders(worker, tmp_path_factory, small_model, built, raw, as_npz, use):
    d = case_dir(tmp_path_factory)
    if as_npz:
        p = d / "data.npz"
        with zipfile.ZipFile(p, "w") as z:
            z.writestr(f"{as_npz}.npy", raw)
    else:
        p = d / "data.npy"
        p.write_bytes(raw)
    inputs = [p, small_model]
    before = digest(inputs)
    if use == "calibration":
        out = d / "out"
        r = worker.lbc("compile", small_model, "-o", out, "--no-build", "--calibration", p)
        check(r, out=out, inputs=inputs, before=before)
    else:
        r = worker.lbc("run", built, "--input", p, "--output", d / "y.npy")
        check(r, inputs=inputs, before=before)
        if r["rc"] == 1:
            assert not (d / "y.npy").exists()


# ------------------------------------------------------------------------------------ assembler

TOKENS = ["_start:", "loop:", "x", "buf", "P1", "P2", "P31", "SP", "LI", "ADD", "ADDI", "LD", "ST", "JMP", "BEQ",
          "HALT", "OUT", "IN", "DOT", "QUANT", ".word", ".space", ".equ", ".set", ".data", ".text", ".bss",
          ".section", ".string", ".include", ".entry", ".qdesc", ".pent", "0", "1", "-1", "242", "0x7fff",
          "99999999999999999999", "0p⊕⊖", "'a'", '"s"', '"x.pasm"', "$", "+", "-", "*", "/", "%", "(", ")", "[",
          "]", ",", ":", "=", ";c", "\n", "\n", "\n", "\t", "\\", "\x00", "é", "L" * 300]


@settings(max_examples=40, **SETTINGS)
@given(tokens=st.lists(st.sampled_from(TOKENS), min_size=1, max_size=40))
def test_assembler(worker, tmp_path_factory, tokens):
    d = case_dir(tmp_path_factory)
    src = d / "p.pasm"
    src.write_text(" ".join(tokens) + "\n")
    before = digest([src])
    r = worker.lbc("asm", src, "-o", d / "p.pent")
    check(r, inputs=[src], before=before, located=True)
    if r["rc"] == 0:
        dis = worker.lbc("disasm", d / "p.pent", "-o", d / "p.s")
        check(dis, inputs=[src], before=before)


def _pent_seeds(worker, tmp_path_factory):
    d = tmp_path_factory.mktemp("pent")
    out = []
    for src in sorted((ROOT / "examples" / "pentary").glob("*.pasm")):
        r = worker.lbc("asm", src, "-o", d / f"{src.stem}.pent")
        assert r["rc"] == 0, r["stderr"]
        out.append((d / f"{src.stem}.pent").read_bytes())
    return out


@pytest.fixture(scope="module")
def pent_seeds(worker, tmp_path_factory):
    return _pent_seeds(worker, tmp_path_factory)


@settings(max_examples=20, **SETTINGS)
@given(pick=st.integers(0, 100), data=st.data())
def test_disassembler_and_simulator(worker, tmp_path_factory, pent_seeds, pick, data):
    raw = pent_seeds[pick % len(pent_seeds)]
    for dmg in data.draw(st.lists(byte_damage(len(raw)), min_size=1, max_size=3)):
        raw = damage_bytes(raw, dmg)
    d = case_dir(tmp_path_factory)
    p = d / "p.pent"
    p.write_bytes(raw)
    before = digest([p])
    check(worker.lbc("disasm", p), inputs=[p], before=before)
    check(worker.run({"sim": str(p), "cycles": 20000}), inputs=[p], before=before)


# ------------------------------------------------------------------------------------ lbc run

@settings(max_examples=15, **SETTINGS)
@given(pick=st.integers(0, 100), how=st.sampled_from(["truncate", "flip", "delete", "folder", "junk", "empty"]),
       at=st.integers(0, 10**6))
def test_run_on_damaged_build_folders(worker, tmp_path_factory, built, pick, how, at):
    d = case_dir(tmp_path_factory)
    folder = d / "build"
    shutil.copytree(built, folder)
    files = sorted(f for f in folder.iterdir() if f.is_file())
    victim = files[pick % len(files)]
    raw = victim.read_bytes()
    if how == "truncate":
        victim.write_bytes(raw[:at % max(len(raw), 1)])
    elif how == "flip" and raw:
        b = bytearray(raw)
        b[at % len(b)] ^= 0x55
        victim.write_bytes(bytes(b))
    elif how == "delete":
        victim.unlink()
    elif how == "folder":
        victim.unlink()
        victim.mkdir()
    elif how == "junk":
        victim.write_text('{"inputs": [{"shape": "x"}], "target": 7}')
    else:
        victim.write_bytes(b"")
    x = d / "x.npy"
    np.save(x, np.zeros((2, 6), np.float32))
    r = worker.lbc("run", folder, "--input", x)
    check(r, inputs=[x], before=digest([x]))
    assert r["rc"] == 1, r["stderr"]  # every change to a build folder is noticed
    assert "damaged" in r["stderr"] or "not an lbc output folder" in r["stderr"], r["stderr"]
