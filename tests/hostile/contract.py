"""The contract every hostile case must keep, and the worker that runs the cases.

For every case: exit 0, or exit 1 with one `lbc: error:` line (further lines indented detail, or the
located source excerpt of an assembler error); no traceback and no numpy warning; no hang (a time
limit per case) and no runaway memory (the worker's address-space limit); nothing left in the output
folder after a failure; no input file touched; and no model-supplied text in generated sources
except inside comments or sanitised into identifiers.
"""

import hashlib
import json
import os
import re
import select
import subprocess
import sys
from pathlib import Path

CASE_SECONDS = 60
MARK = "PWN"  # every hostile name carries it after a newline: it must never start a generated line
HOSTILE_NAMES = [f"n\n{MARK}0", f'q"\n{MARK}1 */ /*', f"x\r\n.byte 66 ;\n{MARK}2", f"\\\n{MARK}3\\", "",
                 f"{MARK}4" * 3000, f"\u2028{MARK}5\x1b[2J", f"lbc: error:\n{MARK}6", "0leading digit", "a b-c.d"]
SOURCE_SUFFIXES = {".c", ".h", ".s", ".S", ".inc", ".pasm", ".cfg", ".ld"}
COUNT = {"cases": 0}


class Worker:
    def __init__(self):
        self.proc = None

    def _start(self):
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("worker.py"))],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def run(self, case, timeout=CASE_SECONDS):
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        COUNT["cases"] += 1
        self.proc.stdin.write(json.dumps(dict(case, timeout=timeout)) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout + 60)
        line = self.proc.stdout.readline() if ready else ""
        if not line:  # killed (memory) or stuck outside Python: a contract failure either way
            self.close()
            return {"rc": None, "stdout": "", "stderr": "worker died or hung", "hang": True}
        return json.loads(line)

    def lbc(self, *argv, cwd=None, timeout=CASE_SECONDS):
        return self.run({"argv": [str(a) for a in argv], "cwd": str(cwd) if cwd else None}, timeout)

    def close(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def digest(paths):
    out = {}
    for p in paths:
        p = Path(p)
        out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
    return out


def check(r, out=None, inputs=(), before=None, located=False):
    """Assert the contract for one case result `r` (see the module doc)."""
    where = f"\nstdout: {r['stdout'][-3000:]}\nstderr: {r['stderr'][-3000:]}"
    assert not r["hang"], "hang or memory blow-up" + where
    assert r["rc"] in (0, 1), f"exit {r['rc']}" + where
    assert "Traceback" not in r["stderr"] and "Warning:" not in r["stderr"], where
    if r["rc"] == 1:
        lines = r["stderr"].strip("\n").splitlines()
        starts = [i for i, line in enumerate(lines) if line.startswith("lbc: error:")]
        assert starts == [0], where
        assert all(line.startswith(" ") for line in lines[1:]), where
        if located:
            assert re.match(r"lbc: error: (.+:\d+:\d+: |cannot read )", lines[0]), where
        if out is not None:
            assert not Path(out).exists(), f"output left behind after a failure: {os.listdir(out)}"
    if out is not None:
        parent = Path(out).parent
        assert not [e for e in os.listdir(parent) if e.startswith(".lbc-")], "staging folder left behind"
    if before is not None:
        assert digest(inputs) == before, "an input file was changed"
    if r["rc"] == 0 and out is not None and Path(out).is_dir():
        check_sources(Path(out))


def check_sources(folder):
    from lbc.ir.text import parse_graph
    if (folder / "model.lbc").is_file():  # the IR text quotes names: it must read back
        parse_graph((folder / "model.lbc").read_text(), "model.lbc")
    for f in folder.rglob("*"):
        if not f.is_file() or (f.suffix not in SOURCE_SUFFIXES and f.name != "Makefile"):
            continue
        for line in f.read_text(errors="replace").splitlines():
            if MARK not in line:
                continue
            head = line[:line.index(MARK)]
            commented = any(c in head for c in ("//", "/*", ";", "#")) or line.lstrip().startswith("*")
            ident = bool(head) and (head[-1].isalnum() or head[-1] == "_")
            assert commented or ident, f"{f.name}: model text outside a comment: {line[:200]!r}"
