"""Issue 13, data loss: lbc writes only into a folder it created, an empty one, or one holding an lbc
manifest; outputs that are not regular files are written to, never replaced; SIGTERM cleans up;
output folders and files get the user's umask."""

import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from cli_util import assert_one_error_line, lbc, lbc_here
from onnx_models import mlp, save

PASM = "_start:\n    LI P1, 7\n    HALT\n"


@pytest.fixture
def model(tmp_path):
    return save(mlp((6, 5, 3)), tmp_path / "m.onnx")


def test_user_folder_is_refused_and_kept(tmp_path, model):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    msg = assert_one_error_line(lbc_here("compile", model, "-o", mine, "--no-build"), "notes.txt", "--force")
    assert "did not write" in msg
    assert (mine / "notes.txt").read_text() == "my notes"
    assert sorted(os.listdir(mine)) == ["notes.txt"]


def test_force_adds_files_and_keeps_the_users(tmp_path, model):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    r = lbc_here("compile", model, "-o", mine, "--no-build", "--force")
    assert r.returncode == 0, r.stderr
    assert (mine / "notes.txt").read_text() == "my notes"
    assert (mine / "lbc.json").is_file() and (mine / "model.c").is_file()


def test_model_inside_the_output_folder_survives(tmp_path, model):
    proj = tmp_path / "proj"
    proj.mkdir()
    m = proj / "m.onnx"
    m.write_bytes(model.read_bytes())
    assert_one_error_line(lbc_here("compile", m, "-o", proj, "--no-build"), "m.onnx")
    assert m.read_bytes() == model.read_bytes()
    assert lbc_here("compile", m, "-o", proj, "--no-build", "--force").returncode == 0
    # now proj holds a manifest: a plain re-compile replaces lbc's files but never the model it reads
    assert lbc_here("compile", m, "-o", proj, "--no-build").returncode == 0
    assert m.read_bytes() == model.read_bytes()


def test_recompile_replaces_an_lbc_folder(tmp_path, model):
    out = tmp_path / "out"
    assert lbc_here("compile", model, "-o", out, "--no-build").returncode == 0
    (out / "stale.c").write_text("from an older compile")
    assert lbc_here("compile", model, "-o", out, "--no-build").returncode == 0
    assert not (out / "stale.c").exists() and (out / "lbc.json").is_file()
    assert not [e for e in os.listdir(out) if e.startswith(".lbc-")]


def test_existing_file_is_not_turned_into_a_folder(tmp_path, model):
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    assert_one_error_line(lbc_here("compile", model, "-o", notes, "--no-build", "--force"), "not a folder")
    assert notes.read_text() == "keep me"


def test_sibling_old_folder_is_untouched(tmp_path, model):
    out, old = tmp_path / "out", tmp_path / ".out.old"
    old.mkdir()
    (old / "precious").write_text("x")
    for _ in range(2):
        assert lbc_here("compile", model, "-o", out, "--no-build").returncode == 0
    assert (old / "precious").read_text() == "x"


@pytest.mark.parametrize("where", [".", ".."])
def test_dot_and_dotdot(tmp_path, model, where):
    cwd = tmp_path / "a" / "b"
    cwd.mkdir(parents=True)
    (cwd / "keep").write_text("k")
    assert_one_error_line(lbc_here("compile", model, "-o", where, "--no-build", cwd=cwd), "did not write")
    assert (cwd / "keep").read_text() == "k"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert lbc_here("compile", model, "-o", ".", "--no-build", cwd=empty).returncode == 0
    assert (empty / "lbc.json").is_file()


def test_parent_is_a_file_or_unwritable(tmp_path, model):
    f = tmp_path / "f"
    f.write_text("")
    assert_one_error_line(lbc_here("compile", model, "-o", f / "out", "--no-build"), "is not a folder")
    # /proc refuses new entries even for root
    assert_one_error_line(lbc_here("compile", model, "-o", "/proc/lbc-test/out", "--no-build"),
                          "cannot create output folder")


def test_failed_compile_leaves_nothing(tmp_path, model):
    out = tmp_path / "deep" / "er" / "out"
    r = lbc_here("compile", model, "-o", out, "--target", "rv32ec", "--flash", "64")
    assert_one_error_line(r, "rv32ec")
    assert not (tmp_path / "deep").exists()


@pytest.mark.parametrize("cmd", ["asm", "disasm"])
def test_device_output_is_written_not_replaced(tmp_path, cmd):
    src = tmp_path / "p.pasm"
    src.write_text(PASM)
    assert lbc_here("asm", src).returncode == 0
    arg = src if cmd == "asm" else tmp_path / "p.pent"
    r = lbc_here(cmd, arg, "-o", "/dev/null")
    assert r.returncode == 0, r.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_fifo_output_is_written_in_place(tmp_path):
    src = tmp_path / "p.pasm"
    src.write_text(PASM)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    r = lbc_here("asm", src, "-o", fifo)
    data = reader.communicate(timeout=30)[0]
    assert r.returncode == 0, r.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert lbc_here("asm", src, "-o", tmp_path / "p.pent").returncode == 0
    assert data == (tmp_path / "p.pent").read_bytes()


def test_sigterm_cleans_up_like_ctrl_c(tmp_path, digits):
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-m", "lbc.cli", "compile", digits["model"], "-o", out, "--target",
                          "rv32ec"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not (out.exists() and any(e.startswith(".lbc-tmp-") for e in os.listdir(out))):
        time.sleep(0.05)
    assert out.exists(), "the compile never started writing"
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode in (143, 0), err  # 0: it finished before the signal arrived
    if p.returncode == 143:
        assert not out.exists(), os.listdir(out)
        assert b"Traceback" not in err


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_output_folder_gets_the_umask(tmp_path, model, mask):
    out = tmp_path / "out"
    old = os.umask(mask)
    try:
        assert lbc_here("compile", model, "-o", out, "--no-build").returncode == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o777 & ~mask
    assert stat.S_IMODE(os.stat(out / "model.c").st_mode) == 0o666 & ~mask


def test_asm_output_gets_the_umask(tmp_path):
    src = tmp_path / "p.pasm"
    src.write_text(PASM)
    old = os.umask(0o022)
    try:
        assert lbc_here("asm", src).returncode == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "p.pent").st_mode) == 0o644


def test_subprocess_contract_for_a_refused_folder(tmp_path, model):
    """The same refusal through the real command (exit code 1, nothing touched)."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "a").write_text("a")
    assert_one_error_line(lbc("compile", model, "-o", mine, "--no-build"), "did not write")
    assert os.listdir(mine) == ["a"]
